"""The whole e-mail chain through ``create_app``: letters APPENDed to a real Dovecot → IMAP watcher →
parser → message intake → timeline and event stream; replies from the card → outbox → SMTP
(aiosmtpd), threaded, with a copy in Sent. On both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from hub.config import Config, MailboxConfig
from hub.crm.models import Attachment, Conversation, Lead, Message, TimelineEntry, User
from tests.fakes import dovecot
from tests.fakes.smtp_server import SmtpServer
from tests.integration.conftest import Api, until
from tests.integration.test_sse import open_stream
from tests.paths import MAIL_FIXTURES

pytestmark = pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd is not installed")

MAILBOX = "zayavki@crm.example.ru"
FIXTURES = MAIL_FIXTURES


def fixture(name: str) -> bytes:
    return next(FIXTURES.glob(f"{name}*.eml")).read_bytes()


@pytest.fixture(scope="module")
def imap_server() -> Iterator[dovecot.Dovecot]:
    server = dovecot.Dovecot()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def mailbox_user(imap_server: dovecot.Dovecot, request: pytest.FixtureRequest) -> str:
    """A fresh mailbox per test (the Dovecot instance is shared by the module)."""
    user = f"t{abs(hash(request.node.nodeid)) % 10**8}@crm.example.ru"
    imap_server.add_user(user, "secret")
    return user


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def config(config: Config, imap_server: dovecot.Dovecot, smtp_server: SmtpServer,
           mailbox_user: str) -> Config:
    config.mailboxes = [MailboxConfig(
        name="zayavki", imap_host="127.0.0.1", imap_port=imap_server.tls_port, imap_tls="ssl",
        username=mailbox_user, password="secret", smtp_host="127.0.0.1", smtp_port=smtp_server.port,
        smtp_tls="none", smtp_username="", from_address=MAILBOX, from_name="Комфорт Дом — заявки",
        ca_file=str(imap_server.cert))]
    return config


async def deliver(server: dovecot.Dovecot, user: str, raw: bytes) -> int:
    return await asyncio.to_thread(server.append, user, raw)


async def entries(app: web.Application, **where: Any) -> list[TimelineEntry]:
    from hub.web.keys import DB

    async with app[DB].reading() as s:
        query = select(TimelineEntry).where(TimelineEntry.kind == "email")
        for name, value in where.items():
            query = query.where(getattr(TimelineEntry, name) == value)
        return list((await s.scalars(query.order_by(TimelineEntry.id))).all())


async def count(app: web.Application, model: Any) -> int:
    from hub.web.keys import DB

    async with app[DB].reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_known_clients_letter_lands_live_on_her_deal_with_its_pdf(
        app: web.Application, admin: Api, imap_server: dovecot.Dovecot, mailbox_user: str) -> None:
    client = await admin.post("/api/v1/clients", {"name": "Анна Соколова", "kind": "person",
                                                  "emails": ["Anna.Sokolova@mail.ru"]}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Остекление балкона", "client_id": client["id"]},
                            expect=201)
    stream = await open_stream(admin)
    await deliver(imap_server, mailbox_user, fixture("07_"))
    received = await stream.until_event("message.received", within=30)
    message = received["data"]["message"]
    assert message["channel"] == "email" and message["entry"]["deal_id"] == deal["id"]
    assert message["subject"] == "Смета на остекление — сравните, пожалуйста"
    [entry] = await entries(app, deal_id=deal["id"])
    assert "Сможете предложить дешевле" in entry.text
    from hub.web.keys import DB

    async with app[DB].reading() as s:
        files = (await s.scalars(select(Attachment).where(Attachment.entry_id == entry.id))).all()
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("Смета №1042 на остекление балкона и замену окон (Лесной пр., 12).pdf", "application/pdf", 749)]
    stream.response.close()


async def test_unknown_senders_become_leads_but_robots_do_not(
        app: web.Application, admin: Api, imap_server: dovecot.Dovecot, mailbox_user: str) -> None:
    for name in ("01_", "02_", "10_", "12_", "15_"):
        await deliver(imap_server, mailbox_user, fixture(name))
    await until(lambda: count(app, Message), within=30)
    await until(lambda: _is(count(app, Message), 5), within=30)
    from hub.web.keys import DB

    async with app[DB].reading() as s:
        leads = {lead.name: lead for lead in (await s.scalars(select(Lead))).all()}
        assert set(leads) == {"Иван Петров", "Ольга Смирнова"}
        assert leads["Иван Петров"].source == "e-mail" and leads["Иван Петров"].unsorted
        kept_out = (await s.scalars(select(Message).where(Message.entry_id.is_(None)))).all()
        # the auto-reply comes from Ольга, who is a lead by then: it goes on her timeline, not into a new lead
        assert sorted(m.subject for m in kept_out) == [
            "Новый отзыв о компании «Комфорт Дом»", "Скидки до 30% на профиль REHAU — только до 30 ноября"]
        conversations = (await s.scalars(select(Conversation))).all()
        assert len(conversations) == 4


async def _is(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def test_reply_from_the_card_is_threaded_and_the_answer_comes_back_to_the_deal(
        app: web.Application, admin: Api, imap_server: dovecot.Dovecot, mailbox_user: str,
        smtp_server: SmtpServer) -> None:
    await deliver(imap_server, mailbox_user, fixture("01_"))
    [first] = await until(lambda: entries(app), within=30)
    lead_id = first.lead_id
    deal = await admin.post("/api/v1/deals", {"title": "Замена окон", "lead_id": lead_id}, expect=201)
    from hub.app import OUTBOX
    from hub.crm import messages
    from hub.web.keys import DB

    async with app[DB].transaction() as s:
        actor = await s.scalar(select(User).where(User.login == "admin"))
        [queued] = await messages.queue_message(s, actor, {"channel": "email", "reply_to": first.id,
                                                           "text": "Иван, замер в субботу в 11:00."})
    app[OUTBOX].wake()
    await until(lambda: smtp_server.received, within=30)
    [letter] = smtp_server.letters()
    assert letter["Subject"] == "Re: Заявка на замену окон, Лесной пр."
    original_id = first.payload["message_id"]
    assert letter["In-Reply-To"] == original_id and original_id in letter["References"]
    sent = await until(lambda: asyncio.to_thread(imap_server.messages, mailbox_user, "Sent"), within=30)
    assert len(sent) == 1 and original_id.encode() in sent[0]

    async def sent_message() -> Message | None:
        async with app[DB].reading() as s:
            message = await s.get(Message, queued["id"])
            return message if message is not None and message.status == "sent" else None

    ours = await until(sent_message, within=30)
    assert ours.provider_id == letter["Message-ID"].strip()
    answer = (f"From: =?utf-8?b?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= <ivan.petrov.1978@mail.ru>\r\n"
              f"To: {MAILBOX}\r\nSubject: Re: Re: Заявка\r\nMessage-ID: <answer-1@mail.ru>\r\n"
              f"In-Reply-To: {ours.provider_id}\r\nReferences: {original_id} {ours.provider_id}\r\n"
              f"Content-Type: text/plain; charset=utf-8\r\n\r\nСуббота подходит.\r\n").encode()
    await deliver(imap_server, mailbox_user, answer)
    await until(lambda: _is(_len(entries(app, deal_id=deal["id"])), 2), within=30)


async def _len(value: Any) -> int:
    return len(await value)


async def test_a_bounce_marks_our_letter_undelivered(
        app: web.Application, admin: Api, imap_server: dovecot.Dovecot, mailbox_user: str) -> None:
    from hub.web.keys import DB

    lead = await admin.post("/api/v1/leads", {"name": "Иван", "emails": ["petrov.ivan.1978@mail.ru"]},
                            expect=201)
    async with app[DB].transaction() as s:
        conversation = Conversation(channel="email", address="petrov.ivan.1978@mail.ru", lead_id=lead["id"])
        s.add(conversation)
        await s.flush()
        s.add(Message(channel="email", direction="out", status="sent", conversation_id=conversation.id,
                      provider_id="<out-44@crm.example.ru>", text="Ваша заявка №1044"))
    await deliver(imap_server, mailbox_user, fixture("11_"))

    async def bounced() -> bool:
        async with app[DB].reading() as s:
            ours = await s.scalar(select(Message).where(Message.provider_id == "<out-44@crm.example.ru>"))
            return ours.status == "undelivered" and "user not found" in (ours.error or "")

    await until(bounced, within=30)
    assert await count(app, Lead) == 1


async def test_restart_and_new_uidvalidity_neither_miss_nor_double(
        app: web.Application, client: Any, imap_server: dovecot.Dovecot, mailbox_user: str) -> None:
    from hub.app import MAIL

    for name in ("01_", "03_"):
        await deliver(imap_server, mailbox_user, fixture(name))
    await until(lambda: _is(_len(entries(app)), 2), within=30)
    await app[MAIL].stop()
    for name in ("04_", "05_"):  # arrive while the hub is away
        await deliver(imap_server, mailbox_user, fixture(name))
    await asyncio.to_thread(imap_server.reset_uidvalidity, mailbox_user)
    await app[MAIL].start()
    await until(lambda: _is(_len(entries(app)), 4), within=30)
    await asyncio.sleep(0.5)
    assert len(await entries(app)) == 4
    assert await count(app, Message) == 4


async def test_a_20_mb_attachment_is_stored(app: web.Application, client: Any, imap_server: dovecot.Dovecot,
                                           mailbox_user: str) -> None:
    from email.message import EmailMessage

    letter = EmailMessage()
    letter["From"] = "Наталья <n.egorova.spb@gmail.com>"
    letter["To"] = MAILBOX
    letter["Subject"] = "Чертежи"
    letter["Message-ID"] = "<big-1@gmail.com>"
    letter.set_content("Прикладываю чертежи.")
    payload = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    letter.add_attachment(payload, maintype="application", subtype="octet-stream", filename="plan.dwg")
    await deliver(imap_server, mailbox_user, letter.as_bytes())
    [entry] = await until(lambda: entries(app), within=30)
    from hub.web.keys import DB

    async with app[DB].reading() as s:
        [stored] = (await s.scalars(select(Attachment).where(Attachment.entry_id == entry.id))).all()
    assert stored.size == len(payload) and stored.filename == "plan.dwg"


async def test_the_mailbox_state_is_in_healthz_and_on_the_inbox_page(
        app: web.Application, admin: Api, client: Any) -> None:
    from hub.app import MAIL

    await until(lambda: app[MAIL].watchers[0].state == "idle", within=30)
    health = await (await client.get("/healthz")).json()
    assert health["channels"]["mail:zayavki"] == "idle"
    page = await admin.client.get("/inbox", headers=admin.auth())
    text = await page.text()
    assert "✉ zayavki: ждёт писем" in text and 'title="idle"' in text  # the word; the state in the tooltip


async def test_a_backlog_is_parsed_in_worker_processes_and_stored_once(
        app: web.Application, client: Any, imap_server: dovecot.Dovecot, mailbox_user: str) -> None:
    from hub.app import MAIL

    await app[MAIL].stop()  # the letters pile up while the hub is away
    for n in range(12):
        raw = (f"From: Клиент {n} <backlog{n}@example.ru>\r\nTo: {MAILBOX}\r\nSubject: Заявка {n}\r\n"
               f"Message-ID: <backlog-{n}@example.ru>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               f"Нужен замер, заявка {n}.\r\n").encode()
        await deliver(imap_server, mailbox_user, raw)
    await app[MAIL].start()
    await until(lambda: _is(_len(entries(app)), 12), within=30)
    assert app[MAIL]._pool is not None  # the batch went through the worker processes
    subjects = sorted(e.payload["subject"] for e in await entries(app))
    assert subjects == sorted(f"Заявка {n}" for n in range(12))
