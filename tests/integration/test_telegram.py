"""The Telegram channel through the whole hub (create_app) on each test database: the real
python-telegram-bot ``Bot`` talks to the fake Bot API (tests/fakes/telegram_api.py), which also plays
Telegram delivering updates to the hub's webhook.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from hub.app import OUTBOX, create_app
from hub.config import Config
from hub.crm import messages
from hub.crm.attachments import store_bytes, stored_path
from hub.crm.errors import ValidationError
from hub.crm.models import (
    ChannelCursor,
    ContactPoint,
    Conversation,
    InboundDelivery,
    Lead,
    Message,
    TimelineEntry,
    User,
    utcnow,
)
from hub.db import Database
from hub.messengers.telegram import parse_utm, start_payload
from hub.web.keys import BUS, DB, TELEGRAM
from tests.fakes.telegram_api import TOKEN, FakeTelegramApi, fixture
from tests.integration.conftest import Api, until

SECRET = "s3cret-webhook-token_42"
ANNA = 6038471925
HOSTILE = ("<b>Ваш заказ</b> & <script>alert(1)</script> *жирный* _курсив_ [ссылка](http://x.y) "
           "`код` ~зачёркнуто~ > # + - = | { } . ! \\ 😊👍🏻")


@pytest.fixture
async def tg_api() -> AsyncIterator[FakeTelegramApi]:
    api = FakeTelegramApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def port(unused_tcp_port: int) -> int:
    return unused_tcp_port


@pytest.fixture
def config(config: Config, tg_api: FakeTelegramApi, port: int) -> Config:
    config.telegram.token = TOKEN
    config.telegram.mode = "webhook"
    config.telegram.webhook_secret = SECRET
    config.telegram.api_url = tg_api.url
    config.server.public_url = f"http://127.0.0.1:{port}"
    return config


Start = Any


@pytest.fixture
def start_hub(aiohttp_client: Any, port: int, tg_api: FakeTelegramApi) -> Start:
    """Start an app (the fixture's, or a fresh one on the same database: a restart) with quick knobs;
    each webhook delivery the hub answers is then taken in from the journal before ``deliver`` returns."""

    async def start(app: web.Application, mode: str = "webhook", wait: bool = True) -> TestClient:
        tg_api.after_delivery = lambda: settle(app)
        channel = app[TELEGRAM]
        channel.config.mode = mode
        channel.poll_timeout = 1
        channel.request_timeout = 1.0
        channel.backoff_base = 0.05
        channel.backoff_cap = 0.3
        app[OUTBOX].poll_seconds = 0.05
        client = await aiohttp_client(app, server_kwargs={"port": port})
        if wait:
            await until(lambda: channel.health() == mode)
        return client

    return start


@pytest.fixture
async def client(app: web.Application, start_hub: Start) -> TestClient:
    """The conftest's client (and so ``admin``, ``make_api``): the hub started with the channel."""
    return await start_hub(app)


@pytest.fixture
def hub(client: TestClient) -> TestClient:
    return client


async def settle(app: web.Application) -> None:
    """Until the journal worker has taken in every delivery that is due."""
    async def done() -> bool:
        return not await count(app[DB], InboundDelivery, InboundDelivery.status == "pending",
                               InboundDelivery.next_attempt_at <= datetime.now(UTC))

    await until(done, within=10, interval=0.01)


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def rows(db: Database, query: Any) -> list[Any]:
    async with db.reading() as s:
        return list((await s.scalars(query)).all())


async def actor(db: Database, login: str) -> User:
    async with db.reading() as s:
        user = await s.scalar(select(User).where(User.login == login))
        assert user is not None
        return user


async def queue(db: Database, user: User, data: dict[str, Any],
                files: list[tuple[str, str, str, int]] | None = None) -> list[dict[str, Any]]:
    async with db.transaction() as s:
        return await messages.queue_message(s, user, data, files or [])


async def message_of(db: Database, message_id: int) -> Message:
    async with db.reading() as s:
        message = await s.get(Message, message_id, populate_existing=True)
        assert message is not None
        return message


async def status_is(db: Database, message_id: int, *statuses: str) -> Message | None:
    message = await message_of(db, message_id)
    return message if message.status in statuses else None


async def inbound_entry(db: Database, provider_id: str) -> TimelineEntry:
    async with db.reading() as s:
        message = await s.scalar(select(Message).where(Message.provider_id == provider_id))
        assert message is not None, provider_id
        entry = await s.get(TimelineEntry, message.entry_id)
        assert entry is not None
        await s.refresh(entry, ["attachments"])
        return entry


# --- pure helpers -----------------------------------------------------------------------------------------

def test_deep_link_payloads() -> None:
    assert start_payload("/start utm_source-yandex_campaign-ac") == "utm_source-yandex_campaign-ac"
    assert start_payload("/start@komfortdom_crm_bot promo") == "promo"
    assert start_payload("/start") == ""
    assert start_payload("/starting now") is None and start_payload("hello") is None
    assert parse_utm("utm_source-yandex_campaign-ac") == {"utm_source": "yandex", "utm_campaign": "ac"}
    assert parse_utm("utm_source-vk_utm_medium-cpc_campaign-winter_sale") == {
        "utm_source": "vk", "utm_medium": "cpc", "utm_campaign": "winter_sale"}
    assert parse_utm("promo2026") is None


# --- webhook intake ---------------------------------------------------------------------------------------

async def test_webhook_registered_and_a_new_user_becomes_a_lead(app: web.Application, hub: TestClient,
                                                                tg_api: FakeTelegramApi,
                                                                admin: Api, port: int) -> None:
    assert tg_api.webhook is not None
    assert tg_api.webhook["url"] == f"http://127.0.0.1:{port}/webhooks/telegram"
    assert tg_api.webhook["secret_token"] == SECRET
    assert set(tg_api.webhook["allowed_updates"]) >= {"message", "edited_message", "my_chat_member",
                                                      "callback_query"}
    health = await admin.get("/healthz")
    assert health["channels"]["telegram"] == "webhook"

    published: list[Any] = []
    app[BUS].subscribe(published.append)
    update = fixture("message_text_new_user")
    assert await tg_api.deliver(update) == (200, {"ok": True})
    assert (await tg_api.deliver(update))[0] == 200  # Telegram retried: nothing more
    [received] = [e for e in published if e.name == "message.received"]
    assert received.data["message"]["text"] == update["message"]["text"]
    db = app[DB]
    [lead] = await rows(db, select(Lead))
    assert lead.name == "Анна Соколова" and lead.unsorted and lead.source == "telegram"
    assert await count(db, Message) == 1
    assert await count(db, TimelineEntry, TimelineEntry.kind == "telegram") == 1
    timeline = await admin.get(f"/api/v1/leads/{lead.id}/timeline")
    [entry] = [e for e in timeline["items"] if e["kind"] == "telegram"]
    assert entry["text"] == update["message"]["text"] and entry["direction"] == "in"
    points = {(p.kind, p.value) for p in await rows(db, select(ContactPoint).where(
        ContactPoint.lead_id == lead.id))}
    assert ("telegram_id", str(ANNA)) in points


async def test_wrong_or_missing_secret_and_bad_json(app: web.Application, hub: TestClient,
                                                    tg_api: FakeTelegramApi) -> None:
    update = fixture("message_text_new_user")
    status, body = await tg_api.deliver(update, secret="wrong")
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await tg_api.deliver(update, secret="")
    assert status == 403
    async with hub.post("/webhooks/telegram", data=b'{"update_id": 1, "message": ',
                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_json"
    async with hub.post("/webhooks/telegram", json=[1, 2],
                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
        assert response.status == 400
    # security findings 9 and 11: JSON nested past the parser's depth was a 500, a boolean update_id
    # was taken as the number 1
    for body in (b'{"update_id": 2, "message": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                 b'{"update_id": true, "message": {}}'):
        async with hub.post("/webhooks/telegram", data=body,
                            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
            assert response.status == 400, await response.text()
    db = app[DB]
    assert await count(db, Message) == 0 and await count(db, InboundDelivery) == 0
    assert await count(db, Lead) == 0


async def test_intake_failure_answers_503_and_the_redelivery_is_taken(app: web.Application, hub: TestClient,
                                                                      tg_api: FakeTelegramApi) -> None:
    channel = app[TELEGRAM]
    real = channel.intake

    class Down:
        def __getattr__(self, name: str) -> Any:
            async def fail(*args: Any, **kwargs: Any) -> Any:
                raise OSError("database unreachable")
            return fail

    channel.intake = Down()  # type: ignore[assignment]
    update = fixture("message_text_new_user")
    status, body = await tg_api.deliver(update)
    assert status == 503 and body["error"]["code"] == "unavailable"
    channel.intake = real
    assert (await tg_api.deliver(update))[0] == 200
    assert await count(app[DB], Message) == 1


async def test_edited_message_updates_the_entry(app: web.Application, hub: TestClient,
                                                tg_api: FakeTelegramApi) -> None:
    await tg_api.deliver(fixture("message_text_new_user"))
    edited = fixture("edited_message_first")
    assert (await tg_api.deliver(edited))[0] == 200
    entry = await inbound_entry(app[DB], f"{ANNA}:5")
    assert entry.text == edited["edited_message"]["text"] and "edited_at" in entry.payload
    assert await count(app[DB], Message) == 1


async def test_shared_own_contact_links_to_the_client(app: web.Application, hub: TestClient,
                                                      tg_api: FakeTelegramApi, admin: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "Соколова Анна", "kind": "person",
                                                  "phones": ["+7 921 456-78-12"]}, expect=201)
    other = await admin.post("/api/v1/clients", {"name": "Петров", "kind": "person",
                                                 "phones": ["+79167773344"]}, expect=201)
    await tg_api.deliver(fixture("message_text_new_user"))
    db = app[DB]
    [conversation] = await rows(db, select(Conversation))
    assert conversation.lead_id is not None
    await tg_api.deliver(fixture("message_contact_other"))  # someone else's card: not linked
    [conversation] = await rows(db, select(Conversation))
    assert conversation.client_id is None
    assert await count(db, ContactPoint, ContactPoint.client_id == other["id"],
                       ContactPoint.kind == "telegram_id") == 0
    await tg_api.deliver(fixture("message_contact_self"))  # her own number: the client's phone
    [conversation] = await rows(db, select(Conversation))
    assert conversation.client_id == client["id"]
    assert await count(db, ContactPoint, ContactPoint.client_id == client["id"],
                       ContactPoint.kind == "telegram_id", ContactPoint.value == str(ANNA)) == 1
    entry = await inbound_entry(db, f"{ANNA}:13")
    assert "79214567812" in entry.text and entry.payload["extra"]["contact"]["own"] is True


async def test_document_with_a_cyrillic_name_is_downloaded(app: web.Application, hub: TestClient,
                                                           tg_api: FakeTelegramApi, config: Config) -> None:
    update = fixture("message_document_pdf")
    document = update["message"]["document"]
    pdf = b"%PDF-1.4\n% smeta\n" + "Смета".encode() * 100
    tg_api.add_file(document["file_id"], pdf, "documents/file_3.pdf")
    assert (await tg_api.deliver(update))[0] == 200
    entry = await inbound_entry(app[DB], f"{ANNA}:8")
    assert entry.text == update["message"]["caption"]
    [attachment] = entry.attachments
    assert attachment.filename == "Смета на остекление балкона.pdf"
    assert attachment.content_type == "application/pdf" and attachment.size == len(pdf)
    assert stored_path(config.server.attachments_dir, attachment.sha256).read_bytes() == pdf
    assert [c["file_id"] for c in tg_api.calls("getFile")] == [document["file_id"]]


async def test_media_stickers_locations_and_a_too_big_file(app: web.Application, hub: TestClient,
                                                           tg_api: FakeTelegramApi) -> None:
    photo = fixture("message_photo_caption")
    largest = photo["message"]["photo"][-1]
    tg_api.add_file(largest["file_id"], b"\xff\xd8\xff jpeg", "photos/file_1.jpg")
    voice = fixture("message_voice")
    tg_api.add_file(voice["message"]["voice"]["file_id"], b"OggS voice", "voice/file_2.oga")
    app[TELEGRAM].download_limit = 200_000
    tg_api.fault("getFile", "500")  # the photo's first getFile fails: tried again
    for name in ("message_photo_caption", "message_voice", "message_sticker", "message_location",
                 "message_document_pdf"):
        assert (await tg_api.deliver(fixture(name)))[0] == 200
    db = app[DB]
    entry = await inbound_entry(db, f"{ANNA}:7")
    assert [(a.filename, a.content_type) for a in entry.attachments] == [("photo_7.jpg", "image/jpeg")]
    assert tg_api.calls("getFile")[0]["file_id"] == largest["file_id"]
    entry = await inbound_entry(db, f"{ANNA}:9")
    assert [(a.filename, a.content_type) for a in entry.attachments] == [("voice_9.ogg", "audio/ogg")]
    entry = await inbound_entry(db, f"{ANNA}:11")
    assert entry.text == "[стикер 👍]" and not entry.attachments
    entry = await inbound_entry(db, f"{ANNA}:12")
    assert "59.974128, 30.342031" in entry.text
    assert entry.payload["extra"]["location"] == {"latitude": 59.974128, "longitude": 30.342031}
    entry = await inbound_entry(db, f"{ANNA}:8")  # 245,871 bytes, over the (lowered) limit: kept, noted
    assert not entry.attachments and "не загружен" in entry.text
    assert entry.payload["extra"]["file_not_downloaded"]["reason"] == "too_big"
    assert len(tg_api.calls("getFile")) == 3  # neither the sticker nor the too-big file was fetched


async def test_deep_link_source_and_utm_on_the_lead(app: web.Application, hub: TestClient,
                                                    tg_api: FakeTelegramApi) -> None:
    assert (await tg_api.deliver(fixture("message_start_deeplink")))[0] == 200
    [lead] = await rows(app[DB], select(Lead))
    assert lead.name == "Игорь Морозов"
    assert lead.source == "utm_source-yandex_campaign-ac"
    assert lead.utm == {"utm_source": "yandex", "utm_campaign": "ac"}


async def test_kicked_blocks_the_conversation_and_the_callback_and_group(
        app: web.Application, hub: TestClient, tg_api: FakeTelegramApi, admin: Api) -> None:
    db = app[DB]
    await tg_api.deliver(fixture("message_text_new_user"))
    assert (await tg_api.deliver(fixture("callback_query_inline_button")))[0] == 200
    entry = await inbound_entry(db, f"{ANNA}:cb2595483718269470213")
    assert entry.text == "[кнопка] ✅ Подтверждаю"
    assert [str(c["callback_query_id"]) for c in tg_api.calls("answerCallbackQuery")] == [
        "2595483718269470213"]
    assert (await tg_api.deliver(fixture("message_group")))[0] == 200
    group = await inbound_entry(db, "-5031847269:214")
    assert group.payload["from"] == "Дмитрий Волков"
    assert group.payload["extra"]["chat"] == {"type": "group", "title": "Ремонт на Лесном, 12 — Комфорт Дом"}

    kicked = fixture("my_chat_member_kicked")
    assert (await tg_api.deliver(kicked))[0] == 200
    assert (await tg_api.deliver(kicked))[0] == 200
    conversation = (await rows(db, select(Conversation).where(Conversation.address == str(ANNA))))[0]
    assert conversation.state == "blocked"
    assert await count(db, InboundDelivery, InboundDelivery.key == str(kicked["update_id"])) == 1
    with pytest.raises(ValidationError):
        await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": conversation.lead_id,
                                                   "text": "Вы тут?"})


# --- polling ---------------------------------------------------------------------------------------------

async def test_polling_keeps_the_offset_and_repeats_nothing_after_a_restart(
        app: web.Application, start_hub: Start, tg_api: FakeTelegramApi, config: Config) -> None:
    db = app[DB]
    tg_api.webhook = {"url": "https://old.example/webhook"}  # a webhook left set: polling removes it
    client = await start_hub(app, "polling")
    assert tg_api.webhook is None and tg_api.calls("deleteWebhook")
    tg_api.push(fixture("message_text_new_user"), fixture("message_start_deeplink"),
                fixture("message_text_second"))
    await until(lambda: _count_is(db, 3))
    await until(lambda: _cursor_is(db, "418730554"))
    polls = tg_api.calls("getUpdates")
    assert polls[0].get("timeout") == 1
    assert set(polls[0]["allowed_updates"]) == {"message", "edited_message", "my_chat_member",
                                                "callback_query"}
    await client.close()
    first_poll = len(tg_api.calls("getUpdates"))

    # a crash after the intake but before the offset was saved: the offset is behind
    async with db.transaction() as s:
        (await s.get(ChannelCursor, "telegram.offset")).value = "418730552"  # type: ignore[union-attr]
    tg_api.confirmed = 0  # and Telegram serves the unconfirmed updates again
    tg_api.push(fixture("edited_message_first"))
    second = create_app(config)
    await start_hub(second, "polling")
    await until(lambda: _cursor_is(second[DB], "418730555"))
    assert tg_api.calls("getUpdates")[first_poll]["offset"] == 418730552
    assert await count(second[DB], Message) == 3  # the repeated ones added nothing
    entry = await inbound_entry(second[DB], f"{ANNA}:5")
    assert entry.text == fixture("edited_message_first")["edited_message"]["text"]


async def _count_is(db: Database, n: int) -> bool:
    return await count(db, Message) == n


async def _cursor_is(db: Database, value: str) -> bool:
    async with db.reading() as s:
        stored = await s.scalar(select(ChannelCursor.value).where(ChannelCursor.name == "telegram.offset"))
        return stored == value


# --- outbound --------------------------------------------------------------------------------------------

async def _anna_writes(app: web.Application, tg_api: FakeTelegramApi) -> TimelineEntry:
    assert (await tg_api.deliver(fixture("message_text_new_user")))[0] == 200
    return await inbound_entry(app[DB], f"{ANNA}:5")


async def test_reply_goes_out_as_literal_text_with_reply_to(app: web.Application, hub: TestClient,
                                                            tg_api: FakeTelegramApi, admin: Api) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    [queued] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "reply_to": inbound.id,
                                                          "text": HOSTILE})
    sent = await until(lambda: status_is(db, queued["id"], "sent"))
    [call] = tg_api.calls("sendMessage")
    assert call["chat_id"] == ANNA and call["text"] == HOSTILE
    assert "parse_mode" not in call
    assert call["reply_parameters"]["message_id"] == 5
    assert call["reply_parameters"]["allow_sending_without_reply"] is True
    assert sent.provider_id == f"{ANNA}:{tg_api.sent[ANNA][0]['message_id']}"


async def test_the_client_answers_our_message_and_hostile_text_comes_in_literally(
        app: web.Application, hub: TestClient, tg_api: FakeTelegramApi, admin: Api) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    tg_api._message_ids = itertools.count(15)  # our answer becomes message 15 of the story
    [ours] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                       "text": "Анна, подтвердите время замера"})
    sent = await until(lambda: status_is(db, ours["id"], "sent"))
    assert sent.provider_id == f"{ANNA}:15"
    for name in ("message_reply_to_bot", "callback_query_inline_button", "message_special_chars_emoji",
                 "message_long_4096"):
        assert (await tg_api.deliver(fixture(name)))[0] == 200
    async with db.reading() as s:
        replies = (await s.scalars(select(Message.provider_id).where(Message.reply_to_id == ours["id"])
                                   .order_by(Message.id))).all()
    assert replies == [f"{ANNA}:16", f"{ANNA}:cb2595483718269470213"]
    special = fixture("message_special_chars_emoji")["message"]["text"]
    assert (await inbound_entry(db, f"{ANNA}:17")).text == special
    long_text = fixture("message_long_4096")["message"]["text"]
    assert len(long_text) == 4096 and (await inbound_entry(db, f"{ANNA}:18")).text == long_text


async def test_the_token_never_reaches_the_log(app: web.Application, hub: TestClient,
                                             tg_api: FakeTelegramApi, admin: Api,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").disabled = False  # (alembic's logging setup turns it off)
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    tg_api.fault("sendMessage", "delay", seconds=1.6)
    [queued] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                          "text": "Добрый день"})
    await until(lambda: status_is(db, queued["id"], "unknown"))
    [second] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                          "text": "Вы получили?"})
    await until(lambda: status_is(db, second["id"], "sent"))
    assert caplog.records and TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


async def test_long_text_is_split_and_a_file_goes_with_its_caption(app: web.Application, hub: TestClient,
                                                                   tg_api: FakeTelegramApi, admin: Api,
                                                                   config: Config) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    user = await actor(db, "admin")
    long_text = ("Абзац про окна. " * 300).strip()  # 4,799 characters
    parts = await queue(db, user, {"channel": "telegram", "lead_id": inbound.lead_id, "text": long_text})
    assert len(parts) == 2
    pdf = b"%PDF-1.4 offer"
    digest = await store_bytes(config.server.attachments_dir, pdf)
    [with_file] = await queue(db, user, {"channel": "telegram", "lead_id": inbound.lead_id,
                                         "text": "Коммерческое предложение"},
                              [("КП для Анны.pdf", "application/pdf", digest, len(pdf))])
    await until(lambda: status_is(db, with_file["id"], "sent"))
    texts = [c["text"] for c in tg_api.calls("sendMessage")]
    assert len(texts) == 2 and all(len(t) <= 4096 for t in texts)
    assert " ".join(texts).split() == long_text.split()
    [document] = tg_api.calls("sendDocument")
    assert document["caption"] == "Коммерческое предложение" and "parse_mode" not in document
    [files] = tg_api.call_files("sendDocument")
    assert files["document"][0] == "КП для Анны.pdf" and files["document"][2] == pdf


async def test_flood_control_retry_after_is_honoured(app: web.Application, hub: TestClient,
                                                     tg_api: FakeTelegramApi, admin: Api) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    tg_api.fault("sendMessage", "429", retry_after=1)
    [queued] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                          "text": "Добрый день"})
    waiting = await until(lambda: status_is(db, queued["id"], "queued") if tg_api.calls("sendMessage")
                          else None)
    assert waiting.error and "retry after 1" in waiting.error
    await until(lambda: status_is(db, queued["id"], "sent"), within=6)
    first, second = [c for c in tg_api.requests if c.method == "sendMessage"]
    assert second.at - first.at >= 0.95
    assert (await message_of(db, queued["id"])).attempts == 2


async def test_bot_blocked_fails_with_the_reason(app: web.Application, hub: TestClient,
                                                 tg_api: FakeTelegramApi, admin: Api) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    tg_api.fault("sendMessage", "403")
    [queued] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                          "text": "Добрый день"})
    failed = await until(lambda: status_is(db, queued["id"], "failed"))
    assert failed.error == "Forbidden: bot was blocked by the user" and failed.error_code == "forbidden"
    [conversation] = await rows(db, select(Conversation))
    assert conversation.state == "blocked"
    assert len(tg_api.calls("sendMessage")) == 1


async def hurry(app: web.Application, message_id: int) -> None:
    """Make a message waiting for its retry due now (the outbox's backoff is seconds long)."""
    async with app[DB].transaction() as s:
        message = await s.get(Message, message_id)
        assert message is not None
        message.next_attempt_at = utcnow()
    app[OUTBOX].wake()


async def test_chat_not_found_and_5xx(app: web.Application, hub: TestClient, tg_api: FakeTelegramApi,
                                      admin: Api) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    user = await actor(db, "admin")
    tg_api.fault("sendMessage", "500")
    tg_api.fault("sendMessage", "down")  # a proxy's 502 with an HTML body
    [retried] = await queue(db, user, {"channel": "telegram", "lead_id": inbound.lead_id, "text": "раз"})
    waiting = await until(lambda: status_is(db, retried["id"], "queued") if tg_api.calls("sendMessage")
                          else None)
    assert "Internal Server Error" in (waiting.error or "")
    await hurry(app, retried["id"])
    waiting = await until(lambda: status_is(db, retried["id"], "queued")
                          if len(tg_api.calls("sendMessage")) == 2 else None)
    assert "Bad Gateway" in (waiting.error or "")
    await hurry(app, retried["id"])
    await until(lambda: status_is(db, retried["id"], "sent"))
    tg_api.fault("sendMessage", "400")
    [refused] = await queue(db, user, {"channel": "telegram", "lead_id": inbound.lead_id, "text": "два"})
    failed = await until(lambda: status_is(db, refused["id"], "failed"))
    assert failed.error == "Chat not found" and failed.error_code == "bad_request"
    assert [c["text"] for c in tg_api.calls("sendMessage")] == ["раз"] * 3 + ["два"]


async def test_timeout_leaves_the_result_unknown(app: web.Application, hub: TestClient,
                                                 tg_api: FakeTelegramApi, admin: Api) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    tg_api.fault("sendMessage", "delay", seconds=1.6)  # the client waits 1 s
    [queued] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                          "text": "Добрый день"})
    unknown = await until(lambda: status_is(db, queued["id"], "unknown"))
    assert unknown.error and "TimedOut" in unknown.error
    await until(lambda: ANNA in tg_api.sent)  # Telegram did deliver it, late
    await asyncio.sleep(0.3)
    assert len(tg_api.calls("sendMessage")) == 1  # and it is not sent again on its own


async def test_restart_with_queued_messages_sends_each_once(app: web.Application, client: TestClient,
                                                            start_hub: Start, tg_api: FakeTelegramApi,
                                                            admin: Api, config: Config) -> None:
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    tg_api.fault("sendMessage", "delay", seconds=0.8)  # the first send hangs (the client waits 1 s)...
    user = await actor(db, "admin")
    ids = []
    for n in range(1, 4):
        [queued] = await queue(db, user, {"channel": "telegram", "lead_id": inbound.lead_id, "text": f"№{n}"})
        ids.append(queued["id"])
    await until(lambda: tg_api.calls("sendMessage"))
    await client.close()  # ...and the hub stops mid-send

    second = create_app(config)
    await start_hub(second)
    db2 = second[DB]
    await until(lambda: status_is(db2, ids[2], "sent"))
    assert (await message_of(db2, ids[0])).status == "unknown"  # may have gone: not resent blindly
    assert (await message_of(db2, ids[1])).status == "sent"
    await asyncio.sleep(0.2)
    assert [c["text"] for c in tg_api.calls("sendMessage")] == ["№1", "№2", "№3"]


async def test_a_crash_between_the_parts_of_a_message_repeats_none_on_retry(
        app: web.Application, client: TestClient, start_hub: Start, tg_api: FakeTelegramApi, admin: Api,
        config: Config) -> None:
    """A text too long for a caption, then a file: the text goes, the hub dies while the file is on its
    way; after the restart the message is "unknown" (the file may have gone) and the agent's retry
    sends the file only — the text is not sent twice."""
    db = app[DB]
    inbound = await _anna_writes(app, tg_api)
    pdf = b"%PDF-1.4 offer"
    digest = await store_bytes(config.server.attachments_dir, pdf)
    text = "Подробное коммерческое предложение. " * 40  # over 1,024 characters: no caption
    tg_api.fault("sendDocument", "delay", seconds=0.8)  # the file hangs (the client waits 1 s)...
    [queued] = await queue(db, await actor(db, "admin"), {"channel": "telegram", "lead_id": inbound.lead_id,
                                                          "text": text},
                           [("КП.pdf", "application/pdf", digest, len(pdf))])
    await until(lambda: tg_api.calls("sendDocument"))
    halfway = await message_of(db, queued["id"])
    assert halfway.parts_sent == 1 and halfway.provider_id == f"{ANNA}:{tg_api.sent[ANNA][0]['message_id']}"
    await client.close()  # ...and the hub stops mid-send

    second = create_app(config)
    await start_hub(second)
    db2 = second[DB]
    unknown = await until(lambda: status_is(db2, queued["id"], "unknown"))
    assert unknown.parts_sent == 1
    async with db2.transaction() as s:
        await messages.retry_message(s, await actor(db2, "admin"), queued["id"])
    sent = await until(lambda: status_is(db2, queued["id"], "sent"))
    assert len(tg_api.calls("sendMessage")) == 1  # the text once
    assert len(tg_api.calls("sendDocument")) == 2  # the file again: its first try's fate was unknown
    assert sent.provider_id == halfway.provider_id and sent.parts_sent == 2


async def test_health_says_when_telegram_is_away(app: web.Application, start_hub: Start,
                                                 tg_api: FakeTelegramApi) -> None:
    tg_api.fault("getMe", "down", times=3)
    tg_api.fault("setWebhook", "500", times=1)
    hub = await start_hub(app, wait=False)
    assert hub is not None
    channel = app[TELEGRAM]
    await until(lambda: channel.health().startswith("error:"))
    await until(lambda: channel.health() == "webhook")
    assert len(tg_api.calls("setWebhook")) == 2


async def test_bad_token_is_auth_failed_and_no_secret_refuses_webhooks(
        aiohttp_client: Any, config: Config, tg_api: FakeTelegramApi, start_hub: Start) -> None:
    config.telegram.token = "8291746530:WRONG"
    config.telegram.webhook_secret = ""
    app = create_app(config)
    client = await start_hub(app, wait=False)
    channel = app[TELEGRAM]
    assert channel.health().startswith("error: webhook mode needs [telegram] webhook_secret")
    async with client.post("/webhooks/telegram", data=json.dumps(fixture("message_text_new_user")),
                           headers={"X-Telegram-Bot-Api-Secret-Token": ""}) as response:
        assert response.status == 403
    assert await count(app[DB], Message) == 0
    assert "WRONG" not in channel.health()

    config.telegram.webhook_secret = SECRET
    polling = create_app(config)
    channel2 = polling[TELEGRAM]
    channel2.backoff_base = channel2.backoff_cap = 0.05
    await channel2.start()
    try:
        await until(lambda: channel2.health().startswith("auth_failed"))
        assert "WRONG" not in channel2.health()
    finally:
        await channel2.stop()  # (a stop that hangs is the per-test timeout's to catch)


# --- the channel alone (no database) ---------------------------------------------------------------------

class NoIntake:
    def __init__(self) -> None:
        self.parts: list[tuple[int, int, str]] = []

    async def blocked(self, channel: str, address: str, blocked: bool) -> None:
        return None

    async def part_sent(self, message_id: int, parts: int, first_part_id: str) -> None:
        self.parts.append((message_id, parts, first_part_id))


async def test_unreachable_api_is_retry_later_and_parts_are_not_repeated(tg_api: FakeTelegramApi,
                                                                         tmp_path: Any) -> None:
    from hub.config import TelegramConfig
    from hub.crm.ports import OutgoingFile, OutgoingMessage, RetryLater
    from hub.messengers.telegram import TelegramChannel

    closed = TelegramChannel(TelegramConfig(token=TOKEN, mode="polling", api_url="http://127.0.0.1:9"),
                             public_url="", intake=NoIntake())  # type: ignore[arg-type]
    closed.backoff_base = 0.05
    await closed.start()
    try:
        with pytest.raises(RetryLater, match=r"unreachable|unavailable"):
            await closed.send(OutgoingMessage(id=1, channel="telegram", address=str(ANNA), text="Привет"))
        await until(lambda: closed.health().startswith("error: cannot reach the Bot API"))
    finally:
        await closed.stop()

    photo = tmp_path / "window.jpg"
    photo.write_bytes(b"\xff\xd8\xff jpeg")
    channel = TelegramChannel(TelegramConfig(token=TOKEN, mode="webhook", webhook_secret=SECRET,
                                             api_url=tg_api.url),
                              public_url="http://127.0.0.1:1", intake=NoIntake())  # type: ignore[arg-type]
    await channel.start()
    try:
        long_text = "Замер. " * 200  # longer than a caption: the text goes first
        message = OutgoingMessage(id=7, channel="telegram", address=str(ANNA), text=long_text,
                                  files=(OutgoingFile(filename="окно.jpg", content_type="image/jpeg",
                                                      path=str(photo)),),
                                  reply_to_provider_id=f"{ANNA}:16")
        tg_api.fault("sendPhoto", "429", retry_after=3)
        with pytest.raises(RetryLater) as retry:
            await channel.send(message)
        assert retry.value.after == 3
        receipt = await channel.send(message)
        assert [c["text"] for c in tg_api.calls("sendMessage")] == [long_text]  # not repeated
        assert tg_api.calls("sendMessage")[0]["reply_parameters"]["message_id"] == 16
        assert len(tg_api.calls("sendPhoto")) == 2 and "caption" not in tg_api.calls("sendPhoto")[1]
        assert receipt.provider_id == f"{ANNA}:{tg_api.sent[ANNA][0]['message_id']}"
    finally:
        await channel.stop()
