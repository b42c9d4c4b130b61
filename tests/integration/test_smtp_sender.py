"""The e-mail sender (hub.mail.smtp) against aiosmtpd, with the Sent copy in a real Dovecot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import MailboxConfig
from hub.crm.ports import OutgoingFile, OutgoingMessage, PermanentFailure, RetryLater
from hub.mail.smtp import SmtpSender
from tests.fakes import dovecot
from tests.fakes.smtp_server import SmtpServer

pytestmark = pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd is not installed")
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
