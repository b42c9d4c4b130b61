"""The SMS channel (hub.messengers.twilio_sms) through the whole app, on both databases.

The hub's ``[twilio]`` is the fixtures' account (``tests/fixtures/twilio``) with ``api_url`` on the
fake Twilio REST server (tests/fakes/twilio_api.py) and ``public_url = https://crm.example.ru``, so
the fixture webhooks are posted with their real, known-good signatures. The real twilio ``Client``
sends through the outbox to the fake.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from hub.app import JOURNAL, OUTBOX
from hub.config import Config, TwilioConfig
from hub.crm import deals, messages
from hub.crm.models import (
    Attachment,
    ContactPoint,
    InboundDelivery,
    Lead,
    Message,
    TimelineEntry,
    User,
    utcnow,
)
from hub.crm.outgoing import OutgoingStore
from hub.crm.ports import OutgoingMessage, PermanentFailure, RetryLater
from hub.db import Database
from hub.messengers.twilio_sms import TwilioChannel
from hub.outbox import Outbox
from hub.web import webhooks
from hub.web.keys import DB, TWILIO
from hub.web.webhooks import EMPTY_TWIML
from tests.fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FIXTURES,
    PUBLIC_URL,
    SERVICE_SID,
    FakeTwilio,
    Fault,
    fixture_fields,
    fixture_form,
    fixture_signature,
    fresh_sid,
    sign,
)
from tests.integration.conftest import until
from tests.integration.test_deals import make_client, make_user

INBOUND = ("inbound_sms_russian", "inbound_sms_emoji", "inbound_mms_two_media")
SID = {"A": "SMcc31280d6899af94a3c7236b52949b50", "B": "SM119fce30161ed0c74f1cba86b353bb05",
       "C": "SM79c9106270eb5a65c72e2976ca18f87c", "D": "SM57aad11420a85d014b567557d391c37f"}
PHONE = {"A": "+79214567812", "B": "+79818806431", "C": "+79006130078", "D": "+79602718845"}


@pytest.fixture
async def fake() -> Any:
    server = FakeTwilio()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def config(config: Config, fake: FakeTwilio) -> Config:
    config.server.public_url = PUBLIC_URL
    config.twilio = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                 messaging_service_sid=SERVICE_SID, api_url=fake.url)
    return config


@pytest.fixture
def db(app: web.Application) -> Database:
    return app[DB]


async def post(client: TestClient, path: str, body: bytes | str, signature: str | None) -> Any:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    async with client.post(path, data=body, headers=headers) as response:
        return response.status, await response.text(), response.content_type


async def post_fixture(client: TestClient, name: str) -> Any:
    path = "/webhooks/twilio/sms" if name.startswith("inbound") else "/webhooks/twilio/status"
    return await post(client, path, fixture_form(name), fixture_signature(name))


async def post_signed(client: TestClient, path: str, fields: dict[str, str]) -> Any:
    return await post(client, path, urlencode(fields), sign(AUTH_TOKEN, PUBLIC_URL + path, fields))


async def settle(app: web.Application) -> None:
    """Until the journal worker has taken in every webhook delivery that is due."""
    async def done() -> bool:
        return not await count(app[DB], InboundDelivery, InboundDelivery.status == "pending",
                               InboundDelivery.next_attempt_at <= datetime.now(UTC))

    await until(done, within=10, interval=0.01)


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- signatures -------------------------------------------------------------------------------------------

def test_fixture_signatures_are_what_twilio_computes() -> None:
    vectors = json.loads((FIXTURES / "signatures.json").read_text(encoding="utf-8"))["vectors"]
    validator = RequestValidator(AUTH_TOKEN)
    for name, vector in vectors.items():
        fields = fixture_fields(name)
        assert vector["url"].startswith(PUBLIC_URL + "/webhooks/twilio/")
        assert validator.validate(vector["url"], fields, vector["x_twilio_signature"]), name
        assert sign(AUTH_TOKEN, vector["url"], fields) == vector["x_twilio_signature"], name
        changed = {**fields, "To": fields["To"] + "0"}
        assert not validator.validate(vector["url"], changed, vector["x_twilio_signature"]), name


# --- inbound ---------------------------------------------------------------------------------------------

async def test_fixture_sms_from_unknown_numbers_become_leads_once(client: TestClient, app: web.Application,
                                                                  db: Database) -> None:
    for name in ("inbound_sms_russian", "inbound_sms_emoji"):
        status, text, content_type = await post_fixture(client, name)
        assert (status, text, content_type) == (200, EMPTY_TWIML, "text/xml")
        await settle(app)
        assert (await post_fixture(client, name))[0] == 200  # Twilio delivered it again
        await settle(app)
    assert await count(db, InboundDelivery) == 2
    async with db.reading() as s:
        for name in ("inbound_sms_russian", "inbound_sms_emoji"):
            fields = fixture_fields(name)
            lead_id = await s.scalar(select(ContactPoint.lead_id).where(
                ContactPoint.kind == "phone", ContactPoint.value == fields["From"]))
            lead = await s.get(Lead, lead_id)
            assert lead is not None and lead.unsorted and lead.source == "sms"
            entries = (await s.scalars(select(TimelineEntry).where(TimelineEntry.kind == "sms",
                                                                   TimelineEntry.lead_id == lead.id))).all()
            assert [e.text for e in entries] == [fields["Body"]]  # Cyrillic and emoji intact, once
            assert entries[0].direction == "in" and entries[0].payload["address"] == fields["From"]
            message = await s.scalar(select(Message).where(Message.provider_id == fields["MessageSid"]))
            assert message is not None and message.channel == "sms" and message.status == "received"
    assert await count(db, Message) == 2


async def test_known_clients_sms_lands_on_the_open_deal(client: TestClient, app: web.Application,
                                                        db: Database) -> None:
    async with db.transaction() as s:
        manager = await make_user(s, "manager", "manager")
        # the client's phone as a person writes it; the SMS comes as +79214567812
        company = await make_client(s, "Анна Соколова", manager.id, phone="+79214567812")
    async with db.transaction() as s:
        deal = await deals.create_deal(s, manager, {"title": "Окна на кухню", "client_id": company.id})
    assert (await post_fixture(client, "inbound_sms_russian"))[0] == 200
    await settle(app)
    async with db.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.kind == "sms"))
        assert entry is not None and entry.deal_id == deal["id"]
        assert entry.text.startswith("Здравствуйте! Это Анна Соколова")
    assert await count(db, Lead) == 0


async def test_bad_signatures_are_refused_and_nothing_stored(client: TestClient, db: Database) -> None:
    body = fixture_form("inbound_sms_russian")
    good = fixture_signature("inbound_sms_russian")
    path = "/webhooks/twilio/sms"
    assert (await post(client, path, body, None))[0] == 403  # no header
    assert (await post(client, path, body, good[:-2] + "A="))[0] == 403  # wrong signature
    changed = body.replace(b"Body=%D0%97", b"Body=%D0%98")  # one letter of the text changed
    assert changed != body and (await post(client, path, changed, good))[0] == 403
    signed_elsewhere = sign(AUTH_TOKEN, "https://evil.example.com/webhooks/twilio/sms",
                            fixture_fields("inbound_sms_russian"))
    assert (await post(client, path, body, signed_elsewhere))[0] == 403
    other_token = sign("0" * 32, PUBLIC_URL + path, fixture_fields("inbound_sms_russian"))
    assert (await post(client, path, body, other_token))[0] == 403
    status_body = fixture_form("status_A3_delivered")
    assert (await post(client, "/webhooks/twilio/status", status_body, good))[0] == 403
    assert await count(db, Message) == 0 and await count(db, TimelineEntry) == 0
    assert await count(db, Lead) == 0 and await count(db, InboundDelivery) == 0


async def test_missing_fields_are_named(client: TestClient, db: Database) -> None:
    fields = fixture_fields("inbound_sms_emoji")
    del fields["MessageSid"]
    status, text, _ = await post_signed(client, "/webhooks/twilio/sms", fields)
    assert status == 400 and "MessageSid" in text
    fields = fixture_fields("inbound_sms_emoji")
    del fields["From"]
    status, text, _ = await post_signed(client, "/webhooks/twilio/sms", fields)
    assert status == 400 and "From" in text
    fields = fixture_fields("status_A2_sent")
    del fields["MessageStatus"]
    status, text, _ = await post_signed(client, "/webhooks/twilio/status", fields)
    assert status == 400 and "MessageStatus" in text
    assert await count(db, Message) == 0 and await count(db, InboundDelivery) == 0


async def test_fixture_mms_with_two_media(client: TestClient, app: web.Application, db: Database,
                                          fake: FakeTwilio) -> None:
    fields = fixture_fields("inbound_mms_two_media")
    jpeg, png = b"\xff\xd8\xff\xe0 fake jpeg", b"\x89PNG\r\n\x1a\n fake png"
    # the fixture's media URLs are on api.twilio.com: the hub fetches them from api_url (the fake)
    fake.add_media(fields["MediaUrl0"].removeprefix("https://api.twilio.com"), jpeg, "image/jpeg")
    fake.add_media(fields["MediaUrl1"].removeprefix("https://api.twilio.com"), png, "image/png")
    assert (await post_fixture(client, "inbound_mms_two_media"))[0] == 200
    await settle(app)
    assert len(fake.media_requests) == 2
    assert all(r.headers["Authorization"].startswith("Basic ") for r in fake.media_requests)
    async with db.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.kind == "sms"))
        assert entry is not None and entry.text == fields["Body"]
        files = (await s.scalars(select(Attachment).where(Attachment.entry_id == entry.id)
                                 .order_by(Attachment.id))).all()
        assert [(a.filename, a.content_type, a.size) for a in files] == [
            ("MEd6909d4585e48b7f8b97acc97187c257.jpg", "image/jpeg", len(jpeg)),
            ("ME354d2c366eb5300ff4ea9117e51cd4d8.png", "image/png", len(png))]


async def test_media_that_cannot_be_downloaded_keeps_the_message(client: TestClient, app: web.Application,
                                                                 db: Database, fake: FakeTwilio) -> None:
    good = fake.add_media("/media/MEgood", b"%PDF-1.4", "application/pdf")
    fields = {"MessageSid": "MM" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": "+79161112233",
              "To": "+16282904173", "Body": "Договор во вложении", "NumMedia": "2",
              "MediaUrl0": good, "MediaContentType0": "application/pdf",
              "MediaUrl1": fake.url + "/media/MEgone", "MediaContentType1": "image/jpeg"}
    assert (await post_signed(client, "/webhooks/twilio/sms", fields))[0] == 200
    await settle(app)
    async with db.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.kind == "sms"))
        assert entry is not None
        assert entry.text == "Договор во вложении\n[вложение «MEgone.jpg» не загружено: HTTP 404]"
        assert [a.filename for a in (await s.scalars(select(Attachment)))] == ["MEgood.pdf"]
        failed = entry.payload["extra"]["media_not_downloaded"]
        assert [(f["url"], f["reason"]) for f in failed] == [(fake.url + "/media/MEgone", "HTTP 404")]


async def test_journal_failure_answers_5xx(client: TestClient, app: web.Application, db: Database) -> None:
    channel = app[TWILIO]
    journal = channel.intake.journal

    async def broken(*_: Any, **__: Any) -> None:
        raise ConnectionError("database down")

    channel.intake.journal = broken  # type: ignore[method-assign]
    assert (await post_fixture(client, "inbound_sms_emoji"))[0] == 500
    assert (await post_fixture(client, "status_A2_sent"))[0] == 500
    channel.intake.journal = journal  # type: ignore[method-assign]
    assert (await post_fixture(client, "inbound_sms_emoji"))[0] == 200  # Twilio's retry is taken
    await settle(app)
    assert await count(db, Message) == 1


async def test_missing_public_url_refuses_webhooks(aiohttp_client: Any) -> None:
    class NoIntake:
        async def received(self, *_: Any, **__: Any) -> None:
            raise AssertionError("must not be reached")

    channel = TwilioChannel(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                         messaging_service_sid=SERVICE_SID),
                            public_url="", intake=NoIntake())  # type: ignore[arg-type]
    assert channel.health().startswith("misconfigured: [server] public_url")
    app = web.Application()
    app.router.add_post("/webhooks/twilio/sms", lambda request: webhooks.twilio_sms(channel, request))
    client = await aiohttp_client(app)
    status, text, _ = await post(client, "/webhooks/twilio/sms", fixture_form("inbound_sms_emoji"),
                                 fixture_signature("inbound_sms_emoji"))
    assert status == 503 and "public_url" in text


# --- outbound and status callbacks -----------------------------------------------------------------------

async def _clients(db: Database, *letters: str) -> tuple[User, dict[str, int]]:
    async with db.transaction() as s:
        agent = await make_user(s, "agent", "agent", "Иван")
        ids = {}
        for letter in letters:
            ids[letter] = (await make_client(s, f"Клиент {letter}", agent.id, phone=PHONE[letter])).id
    return agent, ids


async def _queue(db: Database, actor: User, client_id: int, text: str) -> int:
    async with db.transaction() as s:
        [queued] = await messages.queue_message(s, actor, {"channel": "sms", "client_id": client_id,
                                                           "text": text})
    return int(queued["id"])


async def _message(db: Database, message_id: int) -> tuple[Message, dict[str, Any]]:
    async with db.reading() as s:
        message = await s.get(Message, message_id)
        assert message is not None
        entry = await s.get(TimelineEntry, message.entry_id)
        assert entry is not None
        return message, dict(entry.payload)


async def _drained(app: web.Application) -> None:
    """Send what is due now and wait for every attempt to end (the app's own worker, woken by the
    queued message, may have claimed it first: a message is claimed once)."""
    await app[OUTBOX].drain_once()
    db = app[DB]

    async def settled() -> bool:
        return not (await count(db, Message, Message.status == "sending") or await count(
            db, Message, Message.status == "queued", Message.next_attempt_at <= utcnow()))

    await until(settled, within=10)


async def test_send_and_status_callbacks(client: TestClient, app: web.Application, db: Database,
                                         fake: FakeTwilio) -> None:
    agent, ids = await _clients(db, "A", "B", "C", "D")
    fake.next_sids.extend(SID[letter] for letter in "ABCD")
    queued = {}
    for letter in "ABCD":  # one at a time, so the fake's SIDs go in this order
        queued[letter] = await _queue(db, agent, ids[letter], f"Сообщение {letter}: замер в субботу 🙂")
        await _drained(app)
        message, payload = await _message(db, queued[letter])
        assert message.status == "accepted" and message.provider_id == SID[letter], letter
        assert payload["status"] == "accepted"
    sent = fake.created
    assert [(f["To"], f["Body"], f["MessagingServiceSid"], f["StatusCallback"]) for f in sent] == [
        (PHONE[letter], f"Сообщение {letter}: замер в субботу 🙂", SERVICE_SID,
         "https://crm.example.ru/webhooks/twilio/status") for letter in "ABCD"]
    assert "From" not in sent[0]

    expected = {"status_A1_queued": "accepted", "status_A2_sent": "sent", "status_A3_delivered": "delivered",
                "status_D1_delivered_arrives_first": "delivered",
                "status_D2_sent_arrives_second": "delivered",  # late "sent" does not move it back
                "status_B_undelivered_30003": "undelivered", "status_C_failed_30006": "failed"}
    for name, status in expected.items():
        code, text, _ = await post_fixture(client, name)
        assert code in (200, 204), (name, code, text)
        await settle(app)
        letter = name.split("_")[1][0]
        message, payload = await _message(db, queued[letter])
        assert message.status == status and payload["status"] == status, name
    message, payload = await _message(db, queued["B"])
    assert (message.error_code, payload["error_code"]) == ("30003", "30003")
    assert "Unreachable destination handset" in payload["error"]
    message, payload = await _message(db, queued["C"])
    assert (message.error_code, payload["error_code"]) == ("30006", "30006")
    assert "Landline or unreachable carrier" in payload["error"]
    # a replayed callback changes nothing
    assert (await post_fixture(client, "status_A2_sent"))[0] in (200, 204)
    await settle(app)
    assert (await _message(db, queued["A"]))[0].status == "delivered"
    assert await count(db, InboundDelivery, InboundDelivery.status == "done") == len(expected)


async def test_429_is_retried_later_honouring_retry_after(client: TestClient, app: web.Application,
                                                          db: Database, fake: FakeTwilio) -> None:
    agent, ids = await _clients(db, "A")
    fake.faults.append(Fault(429, retry_after=120))
    message_id = await _queue(db, agent, ids["A"], "Повторим позже")
    await _drained(app)
    message, _ = await _message(db, message_id)
    assert message.status == "queued" and "429" in (message.error or "")
    assert message.next_attempt_at is not None
    assert message.next_attempt_at.replace(tzinfo=None) >= (utcnow() + timedelta(seconds=100)).replace(
        tzinfo=None)
    assert fake.created == []
    async with db.transaction() as s:  # the time has come
        await s.execute(update(Message).where(Message.id == message_id).values(next_attempt_at=utcnow()))
    await _drained(app)
    message, _ = await _message(db, message_id)
    assert message.status == "accepted" and [f["Body"] for f in fake.created] == ["Повторим позже"]
    assert message.attempts == 2


async def test_invalid_number_fails_with_the_reason(client: TestClient, app: web.Application,
                                                    db: Database, fake: FakeTwilio) -> None:
    agent, ids = await _clients(db, "A")
    fake.faults.append(Fault(400, code=21211))
    message_id = await _queue(db, agent, ids["A"], "Не дойдёт")
    await _drained(app)
    message, payload = await _message(db, message_id)
    assert message.status == "failed" and message.error_code == "21211"
    assert "Invalid 'To' Phone Number" in (message.error or "") and payload["status"] == "failed"
    assert len(fake.requests) == 1  # not retried


async def test_timeout_after_sending_is_unknown(client: TestClient, app: web.Application, db: Database,
                                                fake: FakeTwilio) -> None:
    agent, ids = await _clients(db, "A")
    app[TWILIO].request_timeout = 0.3
    fake.faults.append(Fault(delay=1.5))
    message_id = await _queue(db, agent, ids["A"], "Дошло ли?")
    await _drained(app)
    message, payload = await _message(db, message_id)
    assert message.status == "unknown" and payload["status"] == "unknown"
    assert len(fake.requests) == 1  # it reached Twilio; not resent blindly
    await _drained(app)
    assert len(fake.requests) == 1


async def test_a_status_callback_ahead_of_its_send_is_taken_in_later(
        client: TestClient, app: web.Application, db: Database, fake: FakeTwilio) -> None:
    """Twilio may call back before our create request has returned and its SID been stored: the
    callback is journaled, tried again after the send, and applied — not dropped."""
    agent, ids = await _clients(db, "A")
    fake.next_sids.append(SID["A"])
    fake.faults.append(Fault(delay=1.0))  # the send is in flight for a second
    message_id = await _queue(db, agent, ids["A"], "Замер в субботу")
    sending = asyncio.create_task(_drained(app))

    async def in_flight() -> bool:
        return bool(await count(db, Message, Message.id == message_id, Message.status == "sending"))

    await until(in_flight, within=5, interval=0.01)
    fields = {"MessageSid": SID["A"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID,
              "To": PHONE["A"]}
    assert (await post_signed(client, "/webhooks/twilio/status", fields))[0] == 204

    async def tried_once() -> bool:
        return bool(await count(db, InboundDelivery, InboundDelivery.attempts == 1,
                                InboundDelivery.status == "pending"))

    await until(tried_once, within=5, interval=0.01)  # the send has not returned: postponed
    await sending
    assert (await _message(db, message_id))[0].status == "accepted"
    async with db.transaction() as s:  # (not waiting out the backoff)
        await s.execute(update(InboundDelivery).values(next_attempt_at=utcnow()))
    app[JOURNAL].wake()
    await settle(app)
    message, payload = await _message(db, message_id)
    assert (message.status, payload["status"]) == ("delivered", "delivered")
    assert await count(db, InboundDelivery, InboundDelivery.status == "done") == 1


async def test_a_status_callback_for_a_message_we_never_sent_is_dropped(
        client: TestClient, app: web.Application, db: Database) -> None:
    fields = {"MessageSid": fresh_sid(), "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    assert (await post_signed(client, "/webhooks/twilio/status", fields))[0] == 204
    await settle(app)
    assert await count(db, InboundDelivery, InboundDelivery.status == "done") == 1


# --- the sender alone (no database): error mapping ------------------------------------------------------

def _outgoing(text: str = "Тест") -> OutgoingMessage:
    return OutgoingMessage(id=1, channel="sms", address="+79214567812", text=text)


async def _channel(api_url: str, **config: str) -> TwilioChannel:
    channel = TwilioChannel(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=api_url,
                                         **config), public_url="", intake=None)  # type: ignore[arg-type]
    await channel.start()
    return channel


async def test_sender_error_mapping(fake: FakeTwilio) -> None:
    channel = await _channel(fake.url, from_number="+16282904173")
    try:
        receipt = await channel.send(_outgoing())
        assert receipt.status == "queued" and receipt.provider_id and receipt.provider_id.startswith("SM")
        assert fake.created[-1]["From"] == "+16282904173" and "StatusCallback" not in fake.created[-1]
        fake.faults.extend([Fault(500), Fault(503), Fault(429), Fault(400, code=21610)])
        with pytest.raises(RetryLater) as retry:
            await channel.send(_outgoing())
        assert "500" in retry.value.reason
        with pytest.raises(RetryLater):
            await channel.send(_outgoing())
        with pytest.raises(RetryLater) as retry:
            await channel.send(_outgoing())
        assert "20429" in retry.value.reason and retry.value.after is None
        with pytest.raises(PermanentFailure) as failure:
            await channel.send(_outgoing())
        assert failure.value.code == "21610"
    finally:
        await channel.stop()


async def test_connection_refused_is_retried(unused_tcp_port: int) -> None:
    channel = await _channel(f"http://127.0.0.1:{unused_tcp_port}", messaging_service_sid=SERVICE_SID)
    try:
        with pytest.raises(RetryLater) as retry:
            await channel.send(_outgoing())
        assert "unreachable" in retry.value.reason
    finally:
        await channel.stop()


# --- restart ---------------------------------------------------------------------------------------------

async def test_restart_sends_each_queued_message_exactly_once(database: Database, fake: FakeTwilio,
                                                              tmp_path: Path) -> None:
    agent, ids = await _clients(database, "A")
    queued = [await _queue(database, agent, ids["A"], f"Сообщение {n}") for n in range(1, 4)]
    channel = await _channel(fake.url, messaging_service_sid=SERVICE_SID)
    try:
        fake.faults.append(Fault(delay=3))  # the first send hangs at Twilio...
        first = Outbox(OutgoingStore(database, tmp_path), database.bus, {"sms": channel})
        worker = asyncio.create_task(first.drain_once())
        await until(lambda: fake.requests)
        worker.cancel()  # ...and the hub is killed mid-send
        with pytest.raises(asyncio.CancelledError):
            await worker
        statuses = [(await _message(database, m))[0].status for m in queued]
        assert statuses == ["sending", "queued", "queued"]

        second = Outbox(OutgoingStore(database, tmp_path), database.bus, {"sms": channel})
        await second.start()  # the restart: the one in flight is unknown, the rest go once
        try:
            async def statuses() -> list[str]:
                return [(await _message(database, m))[0].status for m in queued]

            async def done() -> bool:
                return await statuses() == ["unknown", "accepted", "accepted"]

            await until(done)
        finally:
            await second.stop()
        third = Outbox(OutgoingStore(database, tmp_path), database.bus, {"sms": channel})
        await third.recover()
        await third.drain_once()  # another restart sends nothing again
        bodies = [r.form["Body"] for r in fake.requests]
        assert sorted(bodies) == ["Сообщение 1", "Сообщение 2", "Сообщение 3"]
    finally:
        await channel.stop()


async def test_health_and_api_url(client: TestClient, app: web.Application, fake: FakeTwilio) -> None:
    async with client.get("/healthz") as response:
        assert (await response.json())["channels"]["sms"] == "ready"
    channel = app[TWILIO]
    assert channel.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json") == (
        fake.url + "/2010-04-01/Accounts/AC1/Messages.json")
    assert channel.rewrite("https://cdn.example.com/x.jpg") == "https://cdn.example.com/x.jpg"
    unsent = TwilioChannel(TwilioConfig(account_sid=ACCOUNT_SID), public_url=PUBLIC_URL,
                           intake=None)  # type: ignore[arg-type]
    assert unsent.health() == "misconfigured: [twilio] auth_token not set"
    with pytest.raises(RetryLater):  # kept queued until the config is fixed
        await unsent.send(_outgoing())
