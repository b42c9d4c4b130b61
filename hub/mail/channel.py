"""The e-mail channel: a folder watcher per mailbox in, the SMTP sender out.

Every letter a watcher finds is parsed (``hub.mail.parse``) and handed to the core as an
``InboundMessage`` with the delivery key ``mailbox:folder:uidvalidity:uid`` and the provider id of
its Message-ID (a letter without one: the SHA-256 of its bytes), so a letter read twice — after a
restart, a reconnect or a UIDVALIDITY change — is stored once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from hub.config import MailboxConfig
from hub.crm.ports import InboundFile, InboundMessage, MessageIntakePort, OutgoingMessage, SendReceipt
from hub.mail import parse
from hub.mail.imap import FolderWatcher, LetterRef, OnLetter, OnLetters
from hub.mail.smtp import SmtpSender

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 50 * 1024 * 1024  # a bigger attachment is noted on the letter, not stored
NO_SENDER = "unknown-sender@invalid"


def provider_id(letter: parse.ParsedLetter, raw: bytes) -> str:
    if letter.message_id:
        return letter.message_id[:300]
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@crmhub.invalid>"


def inbound(letter: parse.ParsedLetter, raw: bytes, mailbox: MailboxConfig) -> InboundMessage:
    """The core's view of a parsed letter that came to ``mailbox``."""
    ours = mailbox.from_address.lower()
    files, too_big = [], []
    for attachment in letter.attachments:
        if attachment.size > MAX_FILE_BYTES:
            too_big.append(f"{attachment.filename} ({attachment.size} bytes)")
            continue
        files.append(InboundFile(filename=attachment.filename, content_type=attachment.content_type,
                                 data=attachment.data, content_id=attachment.content_id,
                                 inline=attachment.inline))
    extra: dict[str, object] = {}
    if letter.reasons:
        extra["automated"] = list(letter.reasons)
    if letter.defects:
        extra["defects"] = list(letter.defects)[:10]
    if too_big:
        extra["files_not_stored"] = too_big
    if letter.has_remote_images:
        extra["remote_images"] = True
    bounce = letter.bounce
    reason = None
    if bounce is not None and bounce.recipients:
        first = bounce.recipients[0]
        reason = f"{first.address}: {first.diagnostic or first.status or first.action}".strip()
    text = letter.new_text or letter.body_text
    return InboundMessage(
        channel="email", provider_id=provider_id(letter, raw), address=letter.from_addr or NO_SENDER,
        text=text, sender_name=letter.from_name, files=tuple(files), at=letter.date,
        subject=letter.subject, html=letter.body_html,
        full_text=letter.body_text if letter.body_text != text else None,
        thread_ids=tuple(parse.thread_ids(letter)),
        recipients=tuple(a.addr for a in (*letter.to, *letter.cc) if a.addr != ours),
        mailbox=mailbox.name, lead_allowed=not letter.is_automated,
        bounce_of=bounce.original_message_id if bounce else None, bounce_reason=reason,
        extra=extra or None, to_address=ours, assignee=mailbox.assignee or None)


POOL_FROM = 8  # letters in one batch from which they are parsed in worker processes


Read = tuple[InboundMessage, tuple[str, ...]]  # the letter for the core, and its parsing defects


def _read(raw: bytes, mailbox: MailboxConfig) -> Read:
    letter = parse.parse(raw)
    return inbound(letter, raw, mailbox), letter.defects


def _read_safely(raw: bytes, mailbox: MailboxConfig) -> Read | BaseException:
    try:
        return _read(raw, mailbox)
    except Exception as error:
        return error


class MailChannel:
    """``start``/``stop`` with the hub; ``send`` for the outbox; ``healths()`` per mailbox."""

    name = "email"

    def __init__(self, mailboxes: list[MailboxConfig], *, intake: MessageIntakePort,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.mailboxes = mailboxes
        self.intake = intake
        batches = isinstance(intake, BatchIntake)
        self.watchers = [FolderWatcher(m, store=intake, on_letter=self._taker(m), ssl_context=ssl_context,
                                       on_letters=self._batch_taker(m) if batches else None)
                         for m in mailboxes]
        self.sender = SmtpSender([m for m in mailboxes], ssl_context=ssl_context)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def healths(self) -> dict[str, Callable[[], str]]:
        return {f"mail:{w.mailbox.name}": self._health(w) for w in self.watchers}

    def _health(self, watcher: FolderWatcher) -> Callable[[], str]:
        """The watcher's state, unless sending from the mailbox fails for its configuration:
        ``smtp_failed: <why> (IMAP: <the watcher's state>)``."""
        def health() -> str:
            problem = self.sender.problem(watcher.mailbox.name)
            return f"smtp_failed: {problem} (IMAP: {watcher.health()})" if problem else watcher.health()

        return health

    async def start(self) -> None:
        for watcher in self.watchers:
            await watcher.start()

    async def stop(self) -> None:
        for watcher in self.watchers:
            await watcher.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        receipt = await self.sender.send(message)
        return receipt

    async def _read_all(self, letters: list[tuple[LetterRef, bytes]],
                        mailbox: MailboxConfig) -> list[Read | BaseException]:
        """Parse the letters: a backlog's in worker processes (the other CPU cores), so that parsing
        does not hold up the event loop that stores them; a few letters right here."""
        if len(letters) < POOL_FROM:
            return [_read_safely(raw, mailbox) for _, raw in letters]
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=min(4, os.cpu_count() or 1), mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self._pool, _read, raw, mailbox) for _, raw in letters]
        return list(await asyncio.gather(*jobs, return_exceptions=True))

    def _taker(self, mailbox: MailboxConfig) -> OnLetter:
        async def take(ref: LetterRef, raw: bytes) -> None:
            letter = parse.parse(raw)
            if letter.defects:
                log.info("mailbox %s: letter %s: %s", mailbox.name, ref.key, "; ".join(letter.defects[:3]))
            await self.intake.received(inbound(letter, raw, mailbox), delivery_key=ref.key)

        return take

    def _batch_taker(self, mailbox: MailboxConfig) -> OnLetters:
        async def take(letters: list[tuple[LetterRef, bytes]], cursor_name: str) -> int:
            items: list[tuple[InboundMessage, str | None, str | None]] = []
            for (ref, _), read in zip(letters, await self._read_all(letters, mailbox), strict=True):
                if isinstance(read, BaseException):
                    log.error("mailbox %s: letter %s could not be read: %r", mailbox.name, ref.key, read)
                    break  # the letters before it are taken; this one is offered again
                message, defects = read
                if defects:
                    log.info("mailbox %s: letter %s: %s", mailbox.name, ref.key, "; ".join(defects[:3]))
                items.append((message, ref.key, ref.position))
            if not items:
                return 0
            assert isinstance(self.intake, BatchIntake)
            results = await self.intake.received_batch(items, cursor=cursor_name)
            return next((n for n, r in enumerate(results) if isinstance(r, Exception)), len(results))

        return take


@runtime_checkable
class BatchIntake(Protocol):
    """An intake that takes several messages in one unit of work (``hub.crm.messages.MessageIntake``,
    on the write engine): a message that fails is retried alone, the others commit without it; the
    channel cursor is saved after them (a letter offered again is dropped by its delivery key)."""

    async def received_batch(self, items: Sequence[tuple[InboundMessage, str | None, str | None]], *,
                             cursor: str | None = None) -> list[dict[str, Any] | Exception | None]: ...
