"""Sending letters: the outbox's sender for ``email`` (aiosmtplib), with a copy APPENDed to Sent.

Each letter gets its own Message-ID (``<crm.<message id>.<random>@<our domain>>``, the provider id
the outbox stores, so a reply's In-Reply-To finds it) and, when it answers a letter, In-Reply-To and
References. SMTP answers map to the outbox's outcomes: 4xx and a connection that could not be made
→ try again later; 5xx → failed with the server's reason; a connection lost or timed out after the
letter's data was sent → the result is unknown (the server may have taken it).

Logging in follows the mailbox's ``smtp_auth``: unset — only when the server offers AUTH after EHLO
(a local relay that takes mail by IP offers none) and there are credentials; ``false`` — never;
``true`` — always, and a server that offers no AUTH fails every letter at once (``PermanentFailure``,
no retries) and is shown in the mailbox's state (``problem``) until a letter goes again.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

import aiosmtplib

from hub.config import MailboxConfig
from hub.crm.ports import OutgoingMessage, PermanentFailure, RetryLater, SendReceipt
from hub.mail.imap import append_copy, ssl_context_for

log = logging.getLogger(__name__)

TIMEOUT = 60.0


def domain_of(address: str) -> str:
    return address.rpartition("@")[2] or "crmhub.local"


def build_letter(mailbox: MailboxConfig, message: OutgoingMessage) -> EmailMessage:
    letter = EmailMessage()
    letter["From"] = formataddr((mailbox.from_name, mailbox.from_address)) if mailbox.from_name \
        else mailbox.from_address
    letter["To"] = formataddr((message.to_name, message.address)) if message.to_name else message.address
    letter["Subject"] = message.subject
    letter["Date"] = format_datetime(datetime.now(UTC))
    letter["Message-ID"] = f"<crm.{message.id}.{uuid.uuid4().hex[:16]}@{domain_of(mailbox.from_address)}>"
    if message.reply_to_provider_id:
        letter["In-Reply-To"] = message.reply_to_provider_id
        references = list(message.references) or [message.reply_to_provider_id]
        letter["References"] = " ".join(references[-20:])
    letter["Auto-Submitted"] = "no"
    letter.set_content(message.text or "", charset="utf-8")
    for file in message.files:
        maintype, _, subtype = file.content_type.partition("/")
        letter.add_attachment(Path(file.path).read_bytes(), maintype=maintype or "application",
                              subtype=subtype or "octet-stream", filename=file.filename)
    return letter


class SmtpSender:
    """``send`` for the outbox; ``mailboxes`` by name (a message without one goes from the first)."""

    def __init__(self, mailboxes: list[MailboxConfig], *, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = TIMEOUT) -> None:
        if not mailboxes:
            raise ValueError("no mailbox to send from")
        self.mailboxes = {m.name: m for m in mailboxes}
        self.default = mailboxes[0]
        self.ssl_context = ssl_context
        self.timeout = timeout
        self._problems: dict[str, str] = {}  # mailbox name → why it cannot send (its configuration)

    def problem(self, mailbox: str) -> str:
        """Why the mailbox cannot send, when the SMTP server contradicts its configuration; else ""."""
        return self._problems.get(mailbox, "")

    def mailbox_for(self, message: OutgoingMessage) -> MailboxConfig:
        return self.mailboxes.get(message.mailbox or "", self.default)

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        mailbox = self.mailbox_for(message)
        letter = build_letter(mailbox, message)
        await self._deliver(mailbox, letter)
        self._problems.pop(mailbox.name, None)
        if mailbox.sent_folder:
            try:
                await append_copy(mailbox, mailbox.sent_folder, letter.as_bytes(),
                                  ssl_context=self.ssl_context)
            except Exception as error:  # the letter went; only our copy of it is missing
                log.warning("mailbox %s: the copy of %s was not saved to %s: %s", mailbox.name,
                            letter["Message-ID"], mailbox.sent_folder, error)
        return SendReceipt(provider_id=str(letter["Message-ID"]), status="sent")

    async def _must_log_in(self, mailbox: MailboxConfig, client: aiosmtplib.SMTP) -> bool:
        if mailbox.smtp_auth is False:
            return False
        if client.is_ehlo_or_helo_needed:  # the extensions the server offers (after STARTTLS, if any)
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()  # an old server without ESMTP: no AUTH either
        offered = client.supports_extension("auth")
        if mailbox.smtp_auth is None:
            return offered and bool(mailbox.smtp_username)
        where = f"{mailbox.smtp_host}:{mailbox.smtp_port}"
        if not offered:
            reason = (f"the SMTP server {where} offers no AUTH, but the mailbox says smtp_auth = true "
                      "(set smtp_auth = false to send through it without a login)")
        elif not mailbox.smtp_username:
            reason = "the mailbox says smtp_auth = true but has no SMTP username"
        else:
            return True
        self._problems[mailbox.name] = reason
        log.error("mailbox %s: %s", mailbox.name, reason)
        raise PermanentFailure(reason, "smtp_auth")

    async def _deliver(self, mailbox: MailboxConfig, letter: EmailMessage) -> None:
        context = self.ssl_context or ssl_context_for(mailbox)
        client = aiosmtplib.SMTP(hostname=mailbox.smtp_host, port=mailbox.smtp_port, timeout=self.timeout,
                                 use_tls=mailbox.smtp_tls == "ssl", start_tls=mailbox.smtp_tls == "starttls",
                                 tls_context=context)
        try:
            await client.connect()
            if await self._must_log_in(mailbox, client):
                await client.login(mailbox.smtp_username, mailbox.smtp_password)
        except PermanentFailure:
            await _goodbye(client)
            raise
        except aiosmtplib.SMTPAuthenticationError as error:
            raise PermanentFailure(f"the SMTP server refused our login: {error.code} {error.message}",
                                   str(error.code)) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise RetryLater(f"could not reach the SMTP server: {error}") from error
        try:
            await client.send_message(letter)
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0] if error.recipients else None
            code = refused.code if refused is not None else 550
            reason = f"{code} {refused.message}" if refused is not None else "recipient refused"
            if 400 <= code < 500:
                raise RetryLater(f"the server deferred the recipient: {reason}") from error
            raise PermanentFailure(f"the server refused the recipient: {reason}", str(code)) from error
        except aiosmtplib.SMTPResponseException as error:
            if 400 <= error.code < 500:
                raise RetryLater(f"the server deferred the letter: {error.code} {error.message}") from error
            raise PermanentFailure(f"the server refused the letter: {error.code} {error.message}",
                                   str(error.code)) from error
        finally:
            await _goodbye(client)


async def _goodbye(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except Exception:
        client.close()
