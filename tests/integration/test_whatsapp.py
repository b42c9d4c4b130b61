"""WhatsApp through Twilio (hub.messengers.twilio_sms), on both databases.

The same account, webhook and Messages API as SMS; the addresses carry ``whatsapp:``. Webhooks are
signed with Twilio's real algorithm (the twilio library's ``RequestValidator`` checks them), the
real twilio ``Client`` sends through the outbox to the fake Twilio (tests/fakes/twilio_api.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from hub.config import Config, ConfigError, TwilioConfig, load_config
from hub.crm.models import ContactPoint, Conversation, Lead, Message, TimelineEntry, utcnow
from hub.db import Database
from hub.web.keys import DB
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, SERVICE_SID, FakeTwilio, fresh_sid
from tests.integration.conftest import Api, MakeApi
from tests.integration.test_twilio import _drained, post_signed, settle

SENDER = "whatsapp:+14155238886"
PERSON = "+79161234567"
TEMPLATES = [
    {"sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e", "name": "Напоминание о замере",
     "text": "Здравствуйте, {{1}}! Напоминаем о замере {{2}}. "
             "Ответьте на это сообщение, если время не подходит."},
    {"sid": "HX350d429d32e64a552466cafecbe95f3c", "name": "Спасибо", "text": "Спасибо за обращение!"},
]


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
                                 messaging_service_sid=SERVICE_SID, api_url=fake.url,
                                 whatsapp_from=SENDER, whatsapp_templates=TEMPLATES)
    return config


@pytest.fixture
def db(app: web.Application) -> Database:
    return app[DB]


def inbound(text: str, *, sid: str | None = None, name: str = "Анна Соколова",
            sender: str = PERSON) -> dict[str, str]:
    """The form of an inbound WhatsApp message as Twilio posts it."""
    sid = sid or fresh_sid()
    return {"SmsMessageSid": sid, "NumMedia": "0", "ProfileName": name, "MessageType": "text",
            "SmsSid": sid, "WaId": sender.lstrip("+"), "SmsStatus": "received", "Body": text,
            "To": SENDER, "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid,
            "AccountSid": ACCOUNT_SID, "From": "whatsapp:" + sender, "ApiVersion": "2010-04-01"}


def status(sid: str, state: str, code: str | None = None) -> dict[str, str]:
    form = {"ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01", "MessageStatus": state,
            "SmsSid": sid, "SmsStatus": state, "ChannelInstallSid": "XEcc20d939f803ee381f2442185d0d5dc5",
            "To": "whatsapp:" + PERSON, "From": SENDER, "MessageSid": sid, "AccountSid": ACCOUNT_SID}
    if code:
        form["ErrorCode"] = code
    return form


async def receive(client: TestClient, app: web.Application, form: dict[str, str]) -> None:
    code, _, _ = await post_signed(client, "/webhooks/twilio/sms", form)
    assert code == 200
    await settle(app)


async def lead_of(db: Database) -> tuple[Conversation, Lead]:
    async with db.reading() as s:
        conversation = await s.scalar(select(Conversation).where(Conversation.channel == "whatsapp"))
        assert conversation is not None and conversation.lead_id is not None
        lead = await s.get(Lead, conversation.lead_id)
        assert lead is not None
        return conversation, lead


async def test_an_unknown_whatsapp_sender_becomes_a_lead_named_by_their_profile(
        client: TestClient, app: web.Application, db: Database) -> None:
    form = inbound("Здравствуйте! Можно замер в субботу?")
    await receive(client, app, form)
    await receive(client, app, form)  # Twilio delivered it again: nothing doubles
    conversation, lead = await lead_of(db)
    assert (conversation.address, conversation.title) == (PERSON, "Анна Соколова")
    assert (lead.name, lead.source) == ("Анна Соколова", "whatsapp")
    async with db.reading() as s:
        rows = (await s.execute(select(Message.channel, Message.direction, Message.text, Message.provider_id)
                                )).all()
        assert rows == [("whatsapp", "in", "Здравствуйте! Можно замер в субботу?", form["MessageSid"])]
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.lead_id == lead.id))
        assert entry is not None and entry.kind == "whatsapp"
        phones = (await s.scalars(select(ContactPoint.value).where(ContactPoint.lead_id == lead.id,
                                                                   ContactPoint.kind == "phone"))).all()
        assert list(phones) == [PERSON]
    # an SMS from the same number is its own conversation of the same person
    sms = {**inbound("И по SMS"), "From": PERSON, "To": "+16282904173"}
    for key in ("ProfileName", "WaId", "MessageType", "ReferralNumMedia"):
        del sms[key]
    await receive(client, app, sms)
    async with db.reading() as s:
        chats = (await s.execute(select(Conversation.channel, Conversation.lead_id)
                                 .order_by(Conversation.id))).all()
    assert chats == [("whatsapp", lead.id), ("sms", lead.id)]


async def test_a_reply_inside_the_window_goes_as_free_text_and_follows_its_statuses(
        client: TestClient, app: web.Application, db: Database, fake: FakeTwilio, make_api: MakeApi) -> None:
    agent = await make_api("agent", "agent", "Иван")
    await receive(client, app, inbound("Когда приедет замерщик?"))
    _, lead = await lead_of(db)
    sid = fresh_sid()
    fake.next_sids.append(sid)
    queued = await agent.post("/api/v1/messages", {"channel": "whatsapp", "lead_id": lead.id,
                                                   "text": "В субботу в 11:00 🙂"}, expect=201)
    await _drained(app)
    [sent] = fake.created
    assert (sent["From"], sent["To"], sent["Body"]) == (SENDER, "whatsapp:" + PERSON, "В субботу в 11:00 🙂")
    assert "ContentSid" not in sent and "MessagingServiceSid" not in sent
    assert sent["StatusCallback"] == PUBLIC_URL + "/webhooks/twilio/status"
    for state in ("sent", "delivered", "read"):
        code, _, _ = await post_signed(client, "/webhooks/twilio/status", status(sid, state))
        assert code in (200, 204)
        await settle(app)
        async with db.reading() as s:
            message = await s.get(Message, queued["id"])
            assert message is not None and (message.channel, message.status) == ("whatsapp", state)


async def test_outside_the_window_only_a_template_goes(client: TestClient, app: web.Application, db: Database,
                                                       fake: FakeTwilio, make_api: MakeApi) -> None:
    agent = await make_api("agent", "agent", "Иван")
    await receive(client, app, inbound("Перезвоните мне"))
    conversation, lead = await lead_of(db)
    async with db.transaction() as s:  # the person wrote 25 hours ago
        await s.execute(update(Message).where(Message.conversation_id == conversation.id)
                        .values(created_at=utcnow() - timedelta(hours=25)))
    refused = await agent.post("/api/v1/messages", {"channel": "whatsapp", "lead_id": lead.id,
                                                    "text": "Добрый день!"}, expect=422)
    assert "24 hours" in refused["error"]["fields"]["template"]
    first = TEMPLATES[0]["sid"]
    for body, field in (
            ({"template": {"sid": "HX00000000000000000000000000000000"}}, "template.sid"),
            ({"template": {"sid": first, "variables": {"1": "Анна"}}}, "template.variables.2"),
            ({"template": {"sid": first, "variables": {"1": "Анна", "2": " "}}}, "template.variables.2"),
            ({"template": {"sid": first, "variables": ["Анна"]}}, "template.variables"),
            ({"template": "Спасибо"}, "template"),
            ({"template": {"sid": first, "variables": {"1": "А" * 900, "2": "Б" * 900}}},
             "template.variables"),
            ({"template": {"sid": first, "variables": {"1": "А", "2": "Б"}}, "text": "и ещё"}, "text")):
        answer = await agent.post("/api/v1/messages", {"channel": "whatsapp", "lead_id": lead.id, **body},
                                  expect=422)
        assert field in answer["error"]["fields"], (body, answer)
    assert fake.created == []
    queued = await agent.post("/api/v1/messages", {
        "channel": "whatsapp", "lead_id": lead.id,
        "template": {"sid": first, "variables": {"1": "Анна", "2": "в субботу в 11:00"}}}, expect=201)
    await _drained(app)
    [sent] = fake.created
    assert (sent["From"], sent["To"], sent["ContentSid"]) == (SENDER, "whatsapp:" + PERSON, first)
    assert json.loads(sent["ContentVariables"]) == {"1": "Анна", "2": "в субботу в 11:00"}
    assert "Body" not in sent
    async with db.reading() as s:
        message = await s.get(Message, queued["id"])
        assert message is not None and message.status == "accepted"
        assert message.text.startswith("Здравствуйте, Анна! Напоминаем о замере в субботу в 11:00.")
        entry = await s.get(TimelineEntry, message.entry_id)
        assert entry is not None and entry.payload["template"]["name"] == "Напоминание о замере"


async def test_the_composer_form_sends_a_template(client: TestClient, app: web.Application, db: Database,
                                                  fake: FakeTwilio, make_api: MakeApi) -> None:
    agent = await make_api("agent", "agent", "Иван")
    await agent.post("/api/v1/leads", {"name": "Пётр", "phones": [PERSON]}, expect=201)
    async with db.reading() as s:
        lead_id = await s.scalar(select(Lead.id))
    form = FormData(default_to_multipart=True)  # as the browser sends the composer
    for key, value in (("channel", "whatsapp"), ("lead_id", str(lead_id)), ("text", ""),
                       ("template_sid", TEMPLATES[0]["sid"]), ("template_var_1", "Пётр"),
                       ("template_var_2", "завтра в 10:00")):
        form.add_field(key, value)
    async with client.post("/api/v1/messages", data=form, headers=agent.auth()) as response:
        assert response.status == 201, await response.text()
    await _drained(app)
    [sent] = fake.created
    assert json.loads(sent["ContentVariables"]) == {"1": "Пётр", "2": "завтра в 10:00"}


async def test_a_failed_status_says_why(client: TestClient, app: web.Application, db: Database,
                                        fake: FakeTwilio, make_api: MakeApi) -> None:
    agent = await make_api("agent", "agent", "Иван")
    await receive(client, app, inbound("Привет"))
    _, lead = await lead_of(db)
    sid = fresh_sid()
    fake.next_sids.append(sid)
    queued = await agent.post("/api/v1/messages", {"channel": "whatsapp", "lead_id": lead.id,
                                                   "text": "Здравствуйте"}, expect=201)
    await _drained(app)
    await post_signed(client, "/webhooks/twilio/status", status(sid, "failed", "63016"))
    await settle(app)
    async with db.reading() as s:
        message = await s.get(Message, queued["id"])
        assert message is not None and (message.status, message.error_code) == ("failed", "63016")
        assert "24-hour window" in (message.error or "")


async def test_whatsapp_is_a_channel_of_the_health_and_the_inbox(client: TestClient, app: web.Application,
                                                                  admin: Api) -> None:
    async with client.get("/healthz") as response:
        health = await response.json()
    assert health["channels"]["whatsapp"] == "ready"
    await receive(client, app, inbound("Здравствуйте"))
    page = await admin.get("/api/v1/conversations", params={"channel": "whatsapp"})
    assert [c["address"] for c in page["items"]] == [PERSON]
    async with client.get("/inbox?channel=whatsapp", headers=admin.auth()) as response:
        html = await response.text()
    assert response.status == 200 and "Анна Соколова" in html


def test_the_templates_are_checked_at_start(tmp_path: Any) -> None:
    def load(templates: str) -> Config:
        path = tmp_path / "hub.toml"
        path.write_text(f'[twilio]\nwhatsapp_from = "+14155238886"\nwhatsapp_templates = {templates}\n',
                        encoding="utf-8")
        return load_config(path, env={})

    loaded = load('[{sid = "HX1", name = "Привет", text = "Здравствуйте, {{1}}!"}]')
    assert loaded.twilio.whatsapp_templates == [
        {"sid": "HX1", "name": "Привет", "text": "Здравствуйте, {{1}}!"}]
    for bad, reason in (('["HX1"]', "must be a table"), ('[{sid = "MG1", name = "a", text = "b"}]', "HX"),
                        ('[{sid = "HX1", name = "a"}]', "text is required"),
                        ('[{sid = "HX1", name = "a", text = "b", lang = "ru"}]', "unknown key: lang"),
                        ('[{sid = "HX1", name = "a", text = "b"}, {sid = "HX1", name = "c", text = "d"}]',
                         "each sid must differ")):
        with pytest.raises(ConfigError, match=reason):
            load(bad)
