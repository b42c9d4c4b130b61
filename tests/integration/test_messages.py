"""Message intake, queueing and the outbox (hub.crm.messages, hub.outbox) on both databases.

The channel adapters' own tests drive these through the real client libraries and fake servers;
here the outbox's sender is a recording one, so the outbox's rules are tested on their own.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hub.crm import deals, messages
from hub.crm.errors import ValidationError
from hub.crm.messages import inbound
from hub.crm.models import ContactPoint, Conversation, Deal, Lead, Message, TimelineEntry
from hub.crm.outgoing import OutgoingStore
from hub.crm.ports import (
    DeliveryStatus,
    InboundFile,
    InboundMessage,
    OutgoingMessage,
    PermanentFailure,
    RetryLater,
    SendReceipt,
)
from hub.db import Database
from hub.outbox import Outbox
from tests.integration.test_deals import make_client, make_user, record

T0 = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)


def tg(message_id: int, text: str = "Здравствуйте", *, user: str = "6038471925", **kw: Any) -> InboundMessage:
    return InboundMessage(channel="telegram", provider_id=f"{user}:{message_id}", address=user, text=text,
                          sender_name=kw.pop("name", "Анна Соколова"), sender_id=user,
                          username=kw.pop("username", "anna_sokolova_spb"), at=T0, **kw)


def sms(sid: str, phone: str, text: str = "Добрый день") -> InboundMessage:
    return InboundMessage(channel="sms", provider_id=sid, address=phone, text=text, sender_name=phone, at=T0)


@pytest.fixture
def intake(database: Database, tmp_path: Path) -> messages.MessageIntake:
    return messages.MessageIntake(database, attachments_dir=tmp_path / "files")


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        manager = await make_user(s, "manager", "manager", "Мария")
        agent = await make_user(s, "anna", "agent", "Анна")
        client = await make_client(s, "ООО Ромашка", agent.id, phone="+79161234567")
    async with database.transaction() as s:
        deal = await deals.create_deal(s, manager, {"title": "Окна", "client_id": client.id,
                                                    "responsible_id": agent.id})
    return {"manager": manager, "agent": agent, "client": client, "deal": deal}


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_unknown_telegram_sender_becomes_a_lead_once(database: Database, intake: Any) -> None:
    events = record(database)
    first = await intake.received(tg(5), delivery_key="418730551")
    assert first is not None and first["person"]["type"] == "lead"
    assert await intake.received(tg(5), delivery_key="418730551") is None  # the webhook retried
    assert await intake.received(tg(5), delivery_key="418730599") is None  # the same message again
    async with database.reading() as s:
        lead = await s.get(Lead, first["person"]["id"])
        assert lead is not None and lead.name == "Анна Соколова"
        assert lead.unsorted and lead.source == "telegram"
        points = {(p.kind, p.value) for p in await s.scalars(select(ContactPoint).where(
            ContactPoint.lead_id == lead.id))}
        assert points == {("telegram_id", "6038471925"), ("telegram_username", "anna_sokolova_spb")}
    assert await count(database, TimelineEntry, TimelineEntry.kind == "telegram") == 1
    received = [e for e in events if e.name == "message.received"]
    assert len(received) == 1 and received[0].data["message"]["text"] == "Здравствуйте"
    second = await intake.received(tg(6, "Ещё вопрос"), delivery_key="418730553")
    assert second["person"] == first["person"]  # the conversation remembers her
    async with database.reading() as s:
        conversation = await s.scalar(select(Conversation))
        assert conversation.unread == 2 and conversation.last_text == "Ещё вопрос"


async def test_edit_replaces_the_text(database: Database, intake: Any) -> None:
    await intake.received(tg(5, "Сколько стоит окно?"))
    edited = await intake.received(tg(5, "Сколько стоят два окна?", edited=True), delivery_key="418730554")
    assert edited is not None and edited["text"] == "Сколько стоят два окна?"
    async with database.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.kind == "telegram"))
        assert entry.text == "Сколько стоят два окна?" and "edited_at" in entry.payload
    assert await count(database, Message) == 1


async def test_known_client_message_lands_on_the_open_deal(database: Database, intake: Any,
                                                          world: dict[str, Any]) -> None:
    stored = await intake.received(sms("SM1", "89161234567"))  # the client's phone, as an SMS may carry it
    assert stored["person"] == {"type": "client", "id": world["client"].id, "client_id": world["client"].id}
    assert stored["entry"]["deal_id"] == world["deal"]["id"]


async def test_found_by_username_keeps_the_telegram_id(database: Database, intake: Any,
                                                       world: dict[str, Any]) -> None:
    async with database.transaction() as s:
        s.add(ContactPoint(kind="telegram_username", value="anna_sokolova_spb", raw="@anna_sokolova_spb",
                           client_id=world["client"].id))
    stored = await intake.received(tg(5))
    assert stored["person"]["id"] == world["client"].id
    async with database.reading() as s:
        assert await s.scalar(select(ContactPoint.client_id).where(
            ContactPoint.kind == "telegram_id", ContactPoint.value == "6038471925")) == world["client"].id


async def test_shared_own_contact_links_the_chat_to_the_client(database: Database, intake: Any,
                                                               world: dict[str, Any]) -> None:
    first = await intake.received(tg(5))
    assert first["person"]["type"] == "lead"
    shared = await intake.received(tg(17, "", shared_phone="79161234567", shared_own_phone=True))
    assert shared["person"]["type"] == "client" and shared["person"]["id"] == world["client"].id
    later = await intake.received(tg(18, "Это я"))
    assert later["person"]["id"] == world["client"].id and later["entry"]["deal_id"] == world["deal"]["id"]


async def test_shared_contact_of_someone_else_is_not_linked(database: Database, intake: Any,
                                                           world: dict[str, Any]) -> None:
    stored = await intake.received(tg(18, "", shared_phone="+79161234567", shared_own_phone=False))
    assert stored["person"]["type"] == "lead"


async def test_files_are_stored_on_the_entry(database: Database, intake: Any, tmp_path: Path) -> None:
    pdf = InboundFile(filename="Смета.pdf", content_type="application/pdf", data=b"%PDF-1.4 test")
    stored = await intake.received(tg(7, "Смета", files=(pdf,)))
    async with database.reading() as s:
        entry = await s.get(TimelineEntry, stored["entry_id"], options=[])
        await s.refresh(entry, ["attachments"])
        assert [(a.filename, a.content_type, a.size) for a in entry.attachments] == [
            ("Смета.pdf", "application/pdf", 13)]


# --- outgoing and the outbox ------------------------------------------------------------------------------

class RecordingSender:
    def __init__(self, outcomes: list[Any] | None = None) -> None:
        self.outcomes = list(outcomes or [])
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        self.sent.append(message)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            raise outcome
        return SendReceipt(provider_id=f"{message.address}:{100 + len(self.sent)}")


async def _chat(database: Database, intake: Any, world: dict[str, Any]) -> dict[str, Any]:
    async with database.transaction() as s:
        s.add(ContactPoint(kind="telegram_id", value="6038471925", raw="6038471925",
                           client_id=world["client"].id))
    return await intake.received(tg(5))


async def queue(database: Database, actor: Any, data: dict[str, Any]) -> list[dict[str, Any]]:
    async with database.transaction() as s:
        return await messages.queue_message(s, actor, data)


async def status_of(database: Database, message_id: int) -> Message:
    async with database.reading() as s:
        message = await s.get(Message, message_id)
        assert message is not None
        return message


async def test_reply_is_sent_once_with_reply_to(database: Database, intake: Any, world: dict[str, Any],
                                                tmp_path: Path) -> None:
    inbound = await _chat(database, intake, world)
    [queued] = await queue(database, world["agent"], {"channel": "telegram", "reply_to": inbound["entry_id"],
                                                      "text": "<b>Добрый день</b> *Анна*"})
    assert queued["status"] == "queued"
    sender = RecordingSender()
    outbox = Outbox(OutgoingStore(database, tmp_path), database.bus, {"telegram": sender})
    assert await outbox.drain_once() is False
    assert await outbox.drain_once() is False
    assert [(m.address, m.text, m.reply_to_provider_id) for m in sender.sent] == [
        ("6038471925", "<b>Добрый день</b> *Анна*", "6038471925:5")]
    message = await status_of(database, queued["id"])
    assert message.status == "sent" and message.provider_id == "6038471925:101"
    async with database.reading() as s:
        entry = await s.get(TimelineEntry, message.entry_id)
        assert entry.payload["status"] == "sent" and entry.deal_id == world["deal"]["id"]


async def test_message_to_a_deal_finds_the_clients_chat(database: Database, intake: Any,
                                                        world: dict[str, Any], tmp_path: Path) -> None:
    await _chat(database, intake, world)
    await queue(database, world["agent"], {"channel": "telegram", "deal_id": world["deal"]["id"],
                                           "text": "Замер в пятницу"})
    sender = RecordingSender()
    await Outbox(OutgoingStore(database, tmp_path), database.bus, {"telegram": sender}).drain_once()
    assert sender.sent[0].address == "6038471925" and sender.sent[0].reply_to_provider_id is None


async def test_no_chat_is_a_clear_error(database: Database, world: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as error:
        await queue(database, world["agent"], {"channel": "telegram", "client_id": world["client"].id,
                                               "text": "Здравствуйте"})
    assert "channel" in error.value.fields


async def test_long_telegram_text_is_split_and_long_sms_refused(database: Database, intake: Any,
                                                               world: dict[str, Any]) -> None:
    await _chat(database, intake, world)
    long_text = ("Слово " * 1500).strip()  # 8,999 characters
    parts = await queue(database, world["agent"], {"channel": "telegram", "client_id": world["client"].id,
                                                   "text": long_text})
    assert len(parts) == 3 and all(len(p["text"]) <= 4096 for p in parts)
    assert " ".join(p["text"] for p in parts) == long_text
    with pytest.raises(ValidationError) as error:
        await queue(database, world["agent"], {"channel": "sms", "client_id": world["client"].id,
                                               "text": "я" * 1601})
    assert "1600" in error.value.fields["text"]


async def test_retry_after_then_permanent_failure(database: Database, intake: Any, world: dict[str, Any],
                                                  tmp_path: Path) -> None:
    await _chat(database, intake, world)
    [first] = await queue(database, world["agent"], {"channel": "telegram", "client_id": world["client"].id,
                                                     "text": "Раз"})
    sender = RecordingSender([RetryLater("Too Many Requests: retry after 35", after=35),
                              PermanentFailure("Forbidden: bot was blocked by the user", code="403")])
    outbox = Outbox(OutgoingStore(database, tmp_path), database.bus, {"telegram": sender})
    await outbox.drain_once()
    message = await status_of(database, first["id"])
    assert message.status == "queued" and message.attempts == 1
    assert (message.next_attempt_at - datetime.now(UTC)).total_seconds() > 30
    await outbox.drain_once()
    assert len(sender.sent) == 1  # not due yet
    async with database.transaction() as s:
        await s.execute(update(Message).values(next_attempt_at=datetime.now(UTC)))
    await outbox.drain_once()
    message = await status_of(database, first["id"])
    assert message.status == "failed" and "blocked" in message.error and message.attempts == 2
    async with database.transaction() as s:
        retried = await messages.retry_message(s, world["agent"], first["id"])
    assert retried["status"] == "queued"
    await outbox.drain_once()
    assert (await status_of(database, first["id"])).status == "sent"


async def test_a_crash_mid_send_leaves_the_message_unknown_not_resent(database: Database, intake: Any,
                                                                     world: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    await _chat(database, intake, world)
    [first, second] = [
        (await queue(database, world["agent"], {"channel": "telegram", "client_id": world["client"].id,
                                                "text": text}))[0] for text in ("Первое", "Второе")]
    started, never = asyncio.Event(), asyncio.Event()

    class Hanging:
        async def send(self, message: OutgoingMessage) -> SendReceipt:
            started.set()
            await never.wait()
            raise AssertionError("unreachable")

    crashed = Outbox(OutgoingStore(database, tmp_path), database.bus, {"telegram": Hanging()})
    task = asyncio.create_task(crashed.drain_once())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()  # the process dies mid-send
    with pytest.raises(asyncio.CancelledError):
        await task
    sender = RecordingSender()
    restarted = Outbox(OutgoingStore(database, tmp_path), database.bus, {"telegram": sender})
    assert await restarted.recover() == 1
    await restarted.drain_once()
    assert [m.text for m in sender.sent] == ["Второе"]
    assert (await status_of(database, first["id"])).status == "unknown"
    assert (await status_of(database, second["id"])).status == "sent"


async def test_status_never_moves_backwards(database: Database, intake: Any, world: dict[str, Any],
                                            tmp_path: Path) -> None:
    [queued] = await queue(database, world["agent"], {"channel": "sms", "client_id": world["client"].id,
                                                      "text": "Ваш заказ готов"})

    class Twilio:
        async def send(self, message: OutgoingMessage) -> SendReceipt:
            return SendReceipt(provider_id="SM57aad1", status="accepted")

    await Outbox(OutgoingStore(database, tmp_path), database.bus, {"sms": Twilio()}).drain_once()
    assert (await status_of(database, queued["id"])).status == "accepted"
    assert await intake.status(DeliveryStatus(channel="sms", provider_id="SM57aad1", status="delivered"))
    assert await intake.status(DeliveryStatus(channel="sms", provider_id="SM57aad1", status="sent")) is None
    assert (await status_of(database, queued["id"])).status == "delivered"
    assert await intake.status(DeliveryStatus(channel="sms", provider_id="SMunknown", status="sent")) is None


async def test_cursor_round_trip(intake: Any) -> None:
    assert await intake.cursor("telegram.offset") is None
    await intake.set_cursor("telegram.offset", "418730556")
    await intake.set_cursor("telegram.offset", "418730557")
    assert await intake.cursor("telegram.offset") == "418730557"


# --- the lean intake: races and the shapes of what it announces -----------------------------------------

async def test_concurrent_deliveries_of_one_message_store_one_entry(database: Database, intake: Any,
                                                                    world: dict[str, Any]) -> None:
    results = await asyncio.gather(*(intake.received(sms("SM9", "+79161234567", "Один раз"),
                                                     delivery_key=f"key-{n}") for n in range(4)))
    assert sum(r is not None for r in results) == 1
    assert await count(database, Message) == 1
    assert await count(database, TimelineEntry, TimelineEntry.kind == "sms") == 1
    async with database.reading() as s:
        assert (await s.scalar(select(Conversation))).unread == 1


async def test_two_first_messages_of_a_new_sender_at_once_make_one_lead(database: Database,
                                                                        intake: Any) -> None:
    results = await asyncio.gather(intake.received(tg(1, "Первое"), delivery_key="u1"),
                                   intake.received(tg(2, "Второе"), delivery_key="u2"))
    assert all(r is not None for r in results)
    assert results[0]["person"] == results[1]["person"]
    assert await count(database, Lead) == 1
    assert await count(database, Conversation) == 1
    assert await count(database, TimelineEntry, TimelineEntry.kind == "telegram") == 2
    async with database.reading() as s:
        assert (await s.scalar(select(Conversation))).unread == 2


async def test_a_replayed_delivery_key_or_journal_entry_stores_nothing(database: Database,
                                                                        intake: Any) -> None:
    assert await intake.received(sms("SM1", "+79035550011"), delivery_key="d1") is not None
    assert await intake.received(sms("SM2", "+79035550011"), delivery_key="d1") is None
    assert await intake.delivery_seen("sms", "d2") is True
    assert await intake.delivery_seen("sms", "d2") is False
    assert await count(database, Message) == 1


async def test_what_the_intake_announces_matches_what_the_api_reads(database: Database, intake: Any,
                                                                  world: dict[str, Any]) -> None:
    from hub.crm import leads, timeline

    events = record(database)
    pdf = InboundFile(filename="Смета.pdf", content_type="application/pdf", data=b"%PDF-1.4 test")
    taken = await intake.received(tg(3, "Привет", files=(pdf,), utm={"utm_source": "ya"}, source="promo"))
    known = await intake.received(sms("SM3", "+79161234567", "Клиент пишет"))
    assert taken is not None and known is not None
    names = [e.name for e in events]
    assert names == ["lead.created", "timeline.added", "message.received", "timeline.updated",
                     "timeline.added", "message.received"]
    manager = world["manager"]
    async with database.reading() as s:
        lead = await leads.get_lead(s, manager, taken["person"]["id"])
        assert events[0].data == {"lead": lead}
        assert events[0].scope == {"manager_id": None, "unassigned": True}
        listed = (await timeline.list_timeline(s, manager, "lead", lead["id"])).items
        assert events[3].data == {"entry": listed[0]}
        assert events[1].data == {"entry": {**listed[0], "attachments": []}}
        assert events[1].scope == await timeline.entry_scope(s, await s.get(TimelineEntry, listed[0]["id"]))
        deal = await s.get(Deal, world["deal"]["id"])
        assert deal is not None and deal.last_activity_at == T0  # the message is the deal's latest activity
        on_deal = (await timeline.list_timeline(s, manager, "deal", world["deal"]["id"])).items
        assert events[4].data == {"entry": on_deal[0]} and on_deal[0]["client_id"] == world["client"].id
        assert events[4].scope == {"responsible_id": world["agent"].id, "manager_id": world["agent"].id}
        for event, result in ((events[2], taken), (events[5], known)):
            conversation = await s.get(Conversation, result["conversation_id"])
            row = await s.get(Message, result["id"])
            expected = messages.message_dict(row, conversation)
            assert event.data["message"] == {**expected, "entry": result["entry"], "person": result["person"]}
            assert event.scope == await messages._recipients(s, conversation)


async def test_a_batch_keeps_the_others_when_one_fails(database: Database, intake: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    events = record(database)
    touch = inbound._touch

    async def failing_touch(session: Any, conversation: Any, message: InboundMessage, *args: Any,
                            **kw: Any) -> None:
        if message.provider_id == "SM-bad":
            raise RuntimeError("the database said no")
        await touch(session, conversation, message, *args, **kw)

    monkeypatch.setattr(inbound, "_touch", failing_touch)
    items = [(sms("SM-1", "+79035550001"), "k1", "7:1"), (sms("SM-2", "+79035550002"), "k2", "7:2"),
             (sms("SM-bad", "+79035550003"), "k3", "7:3"), (sms("SM-4", "+79035550004"), "k4", "7:4"),
             (sms("SM-1", "+79035550001"), "k5", "7:5")]
    results = await intake.received_batch(items, cursor="imap:test")
    assert [type(r).__name__ for r in results] == ["dict", "dict", "RuntimeError", "dict", "NoneType"]
    assert await intake.cursor("imap:test") == "7:2"  # the failed one is offered again
    assert await count(database, Message) == 3
    assert await count(database, Lead) == 3  # the failed message's lead was rolled back with it
    assert await count(database, Conversation) == 3
    received = [e.data["message"]["provider_id"] for e in events if e.name == "message.received"]
    assert received == ["SM-1", "SM-2", "SM-4"]
    assert sum(e.name == "lead.created" for e in events) == 3
    # offered again (the ones after it are dropped by their delivery keys), it is taken
    monkeypatch.setattr(inbound, "_touch", touch)
    again = await intake.received_batch(items[2:4], cursor="imap:test")
    assert again[0] is not None and again[1] is None
    assert await intake.cursor("imap:test") == "7:4"
    assert await count(database, Message) == 4


def letter(n: int, sender: str, **kw: Any) -> InboundMessage:
    return InboundMessage(channel="email", provider_id=f"<l{n}@mail.example.ru>", address=sender,
                          text=kw.pop("text", "Добрый день"), sender_name=kw.pop("name", ""),
                          subject=kw.pop("subject", "Окна"), at=T0, mailbox="zayavki", **kw)


async def test_a_letter_of_one_of_ours_goes_to_the_client_in_copy_and_makes_no_lead(
        database: Database, intake: Any, world: dict[str, Any]) -> None:
    async with database.transaction() as s:
        s.add(ContactPoint(kind="email", value="anna@crm.example.ru", raw="anna@crm.example.ru",
                           user_id=world["agent"].id))
        s.add(ContactPoint(kind="email", value="info@romashka.ru", raw="info@romashka.ru",
                           client_id=world["client"].id))
    alone = await intake.received(letter(2, "anna@crm.example.ru", recipients=("nobody@example.ru",)))
    assert alone["person"] is None and alone["entry"] is None  # one of ours: never a lead
    ours = await intake.received(letter(1, "anna@crm.example.ru",
                                        recipients=("nobody@example.ru", "info@romashka.ru")))
    assert ours["person"] == {"type": "client", "id": world["client"].id, "client_id": world["client"].id}
    assert ours["entry"]["deal_id"] == world["deal"]["id"]
    automated = await intake.received(letter(3, "noreply@shop.example.ru", lead_allowed=False))
    assert automated["person"] is None and automated["entry"] is None
    assert await count(database, Lead) == 0
    # a reply in the thread of a letter on the deal lands on that deal, whoever answers
    reply = await intake.received(letter(4, "someone.else@example.ru", thread_ids=("<l1@mail.example.ru>",)))
    assert reply["person"]["type"] == "client" and reply["entry"]["deal_id"] == world["deal"]["id"]
    assert reply["reply_to_id"] == ours["id"]
    assert await count(database, Lead) == 0
