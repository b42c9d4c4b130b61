"""The e-mail sender (hub.mail.smtp) against aiosmtpd, with the Sent copy in a real Dovecot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from hub.config import ConfigError, MailboxConfig, load_config
from hub.crm.ports import OutgoingFile, OutgoingMessage, PermanentFailure, RetryLater
from hub.mail.channel import MailChannel
from hub.mail.smtp import SmtpSender
from hub.web.views.inbox import channel_states
from tests.fakes import dovecot
from tests.fakes.smtp_server import SmtpServer

pytestmark = [pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd is not installed"),
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]  # the fake's AUTH
USER = "zayavki@crm.example.ru"


@pytest.fixture(scope="module")
def imap() -> Iterator[dovecot.Dovecot]:
    server = dovecot.Dovecot()
    server.add_user(USER, "secret")
    server.start()
    yield server
    server.remove()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def sender(imap: dovecot.Dovecot, smtp: SmtpServer) -> SmtpSender:
    box = MailboxConfig(name="zayavki", imap_host="127.0.0.1", imap_port=imap.port, imap_tls="none",
                        username=USER, password="secret", smtp_host="127.0.0.1", smtp_port=smtp.port,
                        smtp_tls="none", smtp_username="", from_address=USER,
                        from_name="Комфорт Дом — заявки")
    return SmtpSender([box], ssl_context=imap.ssl_context(), timeout=5)


def reply(tmp_path: Path, **kw: object) -> OutgoingMessage:
    pdf = tmp_path / "smeta.pdf"
    pdf.write_bytes(b"%PDF-1.4 smeta")
    values: dict[str, object] = dict(
        id=42, channel="email", address="anna.sokolova@mail.ru", to_name="Анна Соколова",
        text="Здравствуйте, Анна!\nЗамер в субботу в 11:00.", subject="Re: Смета на остекление",
        reply_to_provider_id="<CAK7-anna-1@mail.gmail.com>",
        references=("<first@mail.ru>", "<CAK7-anna-1@mail.gmail.com>"),
        files=(OutgoingFile(filename="Смета №1042.pdf", content_type="application/pdf", path=str(pdf)),))
    values.update(kw)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


async def test_a_threaded_reply_with_a_file_and_its_sent_copy(imap: dovecot.Dovecot, smtp: SmtpServer,
                                                             tmp_path: Path) -> None:
    receipt = await sender(imap, smtp).send(reply(tmp_path))
    [letter] = smtp.letters()
    assert letter["Message-ID"].strip() == receipt.provider_id
    assert receipt.provider_id.startswith("<crm.42.") and receipt.provider_id.endswith("@crm.example.ru>")
    assert letter["In-Reply-To"] == "<CAK7-anna-1@mail.gmail.com>"
    assert letter["References"] == "<first@mail.ru> <CAK7-anna-1@mail.gmail.com>"
    assert letter["Subject"] == "Re: Смета на остекление"
    assert letter["To"].addresses[0].display_name == "Анна Соколова"
    assert "Замер в субботу" in letter.get_body(("plain",)).get_content()
    [attachment] = list(letter.iter_attachments())
    assert attachment.get_filename() == "Смета №1042.pdf"
    assert attachment.get_content() == b"%PDF-1.4 smeta"
    sent = await asyncio.to_thread(imap.messages, USER, "Sent")
    assert any(receipt.provider_id.encode() in raw for raw in sent)


async def test_a_temporary_refusal_is_retried(imap: dovecot.Dovecot, smtp: SmtpServer,
                                              tmp_path: Path) -> None:
    smtp.fail_rcpt = "451 4.7.1 Greylisted, try again later"
    with pytest.raises(RetryLater, match="451"):
        await sender(imap, smtp).send(reply(tmp_path))
    assert smtp.received == []


async def test_a_permanent_refusal_fails_with_the_reason(imap: dovecot.Dovecot, smtp: SmtpServer,
                                                        tmp_path: Path) -> None:
    smtp.fail_data = "554 5.7.1 Message rejected as spam"
    with pytest.raises(PermanentFailure, match=r"554 5\.7\.1 Message rejected as spam") as failure:
        await sender(imap, smtp).send(reply(tmp_path))
    assert failure.value.code == "554"


async def test_an_unreachable_server_is_retried(imap: dovecot.Dovecot, tmp_path: Path) -> None:
    smtp = SmtpServer()  # never started: nothing listens on its port
    with pytest.raises(RetryLater, match="could not reach"):
        await sender(imap, smtp).send(reply(tmp_path))


# --- smtp_auth: unset (log in when the server offers AUTH), true (always), false (never) -----------------

def configured(tmp_path: Path, imap: dovecot.Dovecot, smtp: SmtpServer, *, password: str = "secret",
               smtp_auth: str = "") -> MailboxConfig:
    """The mailbox as the hub reads it from its TOML file (SMTP credentials default to the IMAP ones)."""
    path = tmp_path / "crmhub.toml"
    path.write_text(f"""
[[mailboxes]]
name = "zayavki"
imap_host = "127.0.0.1"
imap_port = {imap.port}
imap_tls = "none"
username = "{USER}"
password = "{password}"
sent_folder = ""
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
smtp_tls = "none"
from_address = "{USER}"
{f"smtp_auth = {smtp_auth}" if smtp_auth else ""}
""", encoding="utf-8")
    [box] = load_config(path, env={}).mailboxes
    return box


def test_smtp_auth_is_read_from_the_file(tmp_path: Path, imap: dovecot.Dovecot, smtp: SmtpServer) -> None:
    box = configured(tmp_path, imap, smtp)
    assert box.smtp_auth is None and box.smtp_username == USER and box.smtp_password == "secret"
    assert configured(tmp_path, imap, smtp, smtp_auth="true").smtp_auth is True
    assert configured(tmp_path, imap, smtp, smtp_auth="false").smtp_auth is False
    with pytest.raises(ConfigError, match=r"mailboxes\[0\]\.smtp_auth: expected true or false"):
        configured(tmp_path, imap, smtp, smtp_auth='"no"')


async def test_a_relay_without_auth_takes_the_letter_with_no_login(imap: dovecot.Dovecot, smtp: SmtpServer,
                                                                   tmp_path: Path) -> None:
    """A local Postfix that offers no AUTH: the IMAP credentials are configured, and not used for SMTP."""
    box = configured(tmp_path, imap, smtp)
    receipt = await SmtpSender([box], timeout=5).send(reply(tmp_path))
    [letter] = smtp.letters()
    assert letter["Message-ID"].strip() == receipt.provider_id


async def test_a_server_that_offers_auth_gets_the_login(imap: dovecot.Dovecot, tmp_path: Path) -> None:
    for smtp_auth in ("", "true"):
        smtp = SmtpServer(accounts={USER: "secret"}, auth_required=True)
        smtp.start()
        try:
            box = configured(tmp_path, imap, smtp, smtp_auth=smtp_auth)
            await SmtpSender([box], timeout=5).send(reply(tmp_path))
            assert smtp.logins == [USER] and len(smtp.received) == 1
        finally:
            smtp.stop()


async def test_a_refused_login_fails_with_the_reason(imap: dovecot.Dovecot, tmp_path: Path) -> None:
    smtp = SmtpServer(accounts={USER: "secret"}, auth_required=True)
    smtp.start()
    try:
        box = configured(tmp_path, imap, smtp, password="wrong")
        with pytest.raises(PermanentFailure, match="refused our login: 535"):
            await SmtpSender([box], timeout=5).send(reply(tmp_path))
        assert set(smtp.refused_logins) == {USER} and smtp.logins == [] and smtp.received == []  # each method
    finally:
        smtp.stop()


async def test_smtp_auth_false_never_logs_in(imap: dovecot.Dovecot, tmp_path: Path) -> None:
    smtp = SmtpServer(accounts={USER: "secret"})  # offers AUTH, takes mail without it
    smtp.start()
    try:
        box = configured(tmp_path, imap, smtp, smtp_auth="false")
        await SmtpSender([box], timeout=5).send(reply(tmp_path))
        assert len(smtp.received) == 1 and smtp.logins == [] and smtp.refused_logins == []
    finally:
        smtp.stop()
    strict = SmtpServer(accounts={USER: "secret"}, auth_required=True)  # no mail before a login
    strict.start()
    try:
        box = configured(tmp_path, imap, strict, smtp_auth="false")
        with pytest.raises(PermanentFailure, match="530"):
            await SmtpSender([box], timeout=5).send(reply(tmp_path))
        assert strict.logins == [] and strict.refused_logins == [] and strict.received == []
    finally:
        strict.stop()


async def test_smtp_auth_true_against_a_server_without_auth_is_a_configuration_failure(
        imap: dovecot.Dovecot, smtp: SmtpServer, tmp_path: Path) -> None:
    box = configured(tmp_path, imap, smtp, smtp_auth="true")
    channel = MailChannel([box], intake=cast(Any, object()))
    health = channel.healths()["mail:zayavki"]
    assert health() == "connecting"  # the IMAP watcher's state (not started here)
    for _ in range(2):  # each message fails for good at once: the outbox does not retry it
        with pytest.raises(PermanentFailure, match=r"offers no AUTH.*smtp_auth = true") as failure:
            await channel.send(reply(tmp_path))
        assert failure.value.code == "smtp_auth"
    assert smtp.received == []
    state = health()
    assert state.startswith("smtp_failed: the SMTP server 127.0.0.1:") and "offers no AUTH" in state
    assert state.endswith("(IMAP: connecting)")
    [shown] = channel_states({"mail:zayavki": health})  # the inbox's head marks it bad
    assert shown["state"] == state and not shown["ok"]
    fixed = SmtpServer(accounts={USER: "secret"})  # the server's admin turned AUTH on
    fixed.start()
    try:
        box.smtp_port = fixed.port
        await channel.send(reply(tmp_path))
        assert fixed.logins == [USER] and len(fixed.received) == 1
        assert health() == "connecting"
    finally:
        fixed.stop()
