"""``crmhub demo``'s simulated Twilio playing WhatsApp people (hub.messengers.twilio_simulator), with
the whole hub wired as the demo wires it ([twilio] whatsapp_from and the demo's approved templates), on
each test database: a demo client writes on WhatsApp (signed as Twilio signs it) and the message lands
in their card, somebody new becomes a lead named by their profile; the agent's answer goes out through
the outbox and the real twilio client, is delivered and read (its status callbacks) and the person
answers; 24 hours later only a template goes — the simulator renders it —, and a free text the
simulated Twilio refuses fails with 63016."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from hub.app import JOURNAL, OUTBOX
from hub.cli import demo_whatsapp_people, whatsapp_last_written
from hub.config import Config, TwilioConfig
from hub.crm import demo
from hub.crm.models import Message, utcnow
from hub.messengers.simulator import ANSWERS, CLIENT_ANSWERS
from hub.messengers.twilio_simulator import (
    DEMO_NUMBER,
    DEMO_WHATSAPP_NUMBER,
    DEMO_WHATSAPP_TEMPLATES,
    TwilioSimulator,
)
from hub.web.keys import CONFIG, DB, TWILIO
from tests.integration.conftest import Api, until

PUBLIC_URL = "https://crm.example.ru"
SENDER = "whatsapp:" + DEMO_WHATSAPP_NUMBER


@pytest.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(public_url=PUBLIC_URL, seed=7, whatsapp_number=SENDER,
                                templates=DEMO_WHATSAPP_TEMPLATES)
    simulator.status_delays = (0.05, 0.1, 0.2)
    simulator.read_delay = 0.1
    simulator.reply_delay = (0.05, 0.1)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def config(config: Config, sim: TwilioSimulator) -> Config:
    config.server.public_url = PUBLIC_URL
    config.twilio = TwilioConfig(account_sid=sim.account_sid, auth_token=sim.auth_token,
                                 from_number=DEMO_NUMBER, api_url=sim.url, whatsapp_from=SENDER,
                                 whatsapp_templates=[dict(t) for t in DEMO_WHATSAPP_TEMPLATES])
    return config


@pytest.fixture
async def client(app: web.Application, aiohttp_client: Any, sim: TwilioSimulator) -> TestClient:
    app[OUTBOX].poll_seconds = 0.05
    app[JOURNAL].poll_seconds = 0.05
    hub = await aiohttp_client(app)
    sim.hub_url = str(hub.make_url("")).rstrip("/")
    await until(lambda: app[TWILIO].health() == "ready", within=10)
    return hub


async def conversation(api: Api, phone: str) -> dict[str, Any] | None:
    items = (await api.get("/api/v1/conversations", params={"channel": "whatsapp", "limit": "100"}))["items"]
    found = [c for c in items if c["address"] == phone]
    return (await api.get(f"/api/v1/conversations/{found[0]['id']}")) if found else None


async def ours(api: Api, phone: str, text: str) -> dict[str, Any]:
    conv = await conversation(api, phone)
    assert conv is not None
    [mine] = [m for m in conv["messages"] if m["direction"] == "out" and m["text"] == text]
    return dict(mine)


async def test_a_demo_whatsapp_person_writes_and_answers_the_agent(
        app: web.Application, client: TestClient, sim: TwilioSimulator, admin: Api) -> None:
    await demo.fill(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    # the people crmhub demo plays on WhatsApp: demo clients on their mobiles, named as in the CRM
    people = await demo_whatsapp_people(app[DB])
    assert len(people) == 3 and all(p.client and p.phone.startswith("+79") and p.name for p in people)
    person = people[0]
    text = "Добрый день! Замерщик в субботу точно приедет?"
    assert await whatsapp_last_written(app[DB], person.phone) is None
    assert (await sim.write(person, text))[0] == 200

    # the message lands in the client's WhatsApp conversation and timeline
    conv = await until(lambda: conversation(admin, person.phone), within=10)
    assert conv["channel"] == "whatsapp" and conv["title"] == person.name
    [first] = conv["messages"]
    assert first["text"] == text and first["entry"]["kind"] == "whatsapp"
    client_id = first["entry"]["client_id"]
    assert client_id is not None and conv["person"]["type"] == "client"
    written = await whatsapp_last_written(app[DB], person.phone)
    assert written is not None and utcnow() - written < timedelta(minutes=1)
    assert (await demo_whatsapp_people(app[DB]))[0] == person  # the conversation's person comes first

    # somebody new on WhatsApp: a lead named by their profile
    newcomer = sim.new_whatsapp_person()
    assert (await sim.write(newcomer, "Здравствуйте! Сколько стоит поменять два окна?"))[0] == 200
    fresh = await until(lambda: conversation(admin, newcomer.phone), within=10)
    assert fresh["title"] == newcomer.name and fresh["person"]["type"] == "lead"

    play = asyncio.create_task(sim.play((30.0, 30.0)))  # the people answer; none writes meanwhile
    try:
        # the agent answers within the 24 hours: free text, through the outbox and the twilio client
        answer = "Добрый день! Два окна — от 28 000 ₽ с монтажом. Когда удобно принять замерщика?"
        await admin.post("/api/v1/messages", {"channel": "whatsapp", "client_id": client_id, "text": answer},
                         expect=201)
        created = await until(lambda: [m for m in sim.created if m["body"] == answer], within=10)
        assert (created[0]["from"], created[0]["to"]) == (SENDER, person.address)

        async def answered() -> bool:
            conv = await conversation(admin, person.phone)
            assert conv is not None
            [mine] = [m for m in conv["messages"] if m["text"] == answer]
            return mine["status"] == "read" and any(
                m["direction"] == "in" and m["id"] > mine["id"] and m["text"] in ANSWERS + CLIENT_ANSWERS
                for m in conv["messages"])

        await until(answered, within=15)
        statuses = [c.form["MessageStatus"] for c in sim.callbacks
                    if c.form.get("MessageSid") == created[0]["sid"]]
        assert statuses == ["queued", "sent", "delivered", "read"]

        # 25 hours later: the hub takes only a template, the simulator renders it
        async with app[DB].transaction() as s:
            await s.execute(update(Message).where(Message.conversation_id == conv["id"])
                            .values(created_at=utcnow() - timedelta(hours=25)))
        sim.last_written[person.phone] -= timedelta(hours=25)
        refused = await admin.post("/api/v1/messages", {"channel": "whatsapp", "client_id": client_id,
                                                        "text": "Добрый день!"}, expect=422)
        assert "template" in refused["error"]["fields"]
        thanks = DEMO_WHATSAPP_TEMPLATES[1]
        await admin.post("/api/v1/messages", {"channel": "whatsapp", "client_id": client_id, "template": {
            "sid": thanks["sid"], "variables": {"1": "Анна", "2": "№1042"}}}, expect=201)
        rendered = "Анна, спасибо за заказ в «Комфорт Дом»! Номер заказа №1042, менеджер свяжется с вами " \
                   "в течение дня."
        await until(lambda: any(m["body"] == rendered for m in sim.created), within=10)
        await until(lambda: ours(admin, person.phone, rendered), within=10)

        async def read() -> bool:
            return (await ours(admin, person.phone, rendered))["status"] == "read"

        await until(read, within=15)

        # she answers the template: the window is open again — for the hub; Twilio's clock says her
        # message is older than 24 hours: a free text is accepted, then fails with 63016, and the
        # agent sees why
        async def answered_again() -> bool:
            conv = await conversation(admin, person.phone)
            assert conv is not None
            last = conv["messages"][-1]
            return last["direction"] == "in" and last["text"] in ANSWERS + CLIENT_ANSWERS

        await until(answered_again, within=15)
        sim.last_written[person.phone] -= timedelta(hours=25)
        late = "А замер в субботу подойдёт?"
        await admin.post("/api/v1/messages", {"channel": "whatsapp", "client_id": client_id, "text": late},
                         expect=201)

        async def failed() -> dict[str, Any] | None:
            mine = await ours(admin, person.phone, late)
            return mine if mine["status"] == "failed" else None

        mine = await until(failed, within=15)
        assert mine["error_code"] == "63016" and "24-hour window" in mine["error"]
        [refusal] = [c.form for c in sim.callbacks if c.form.get("MessageStatus") == "failed"]
        assert refusal["ErrorCode"] == "63016"
    finally:
        play.cancel()
        with pytest.raises(asyncio.CancelledError):
            await play
    # every webhook was taken (signed right, journaled): none refused
    assert sim.callbacks and all(c.status in (200, 204) for c in sim.callbacks)
    assert app[TWILIO].health() == "ready"
    assert json.dumps(app[CONFIG].twilio.whatsapp_templates, ensure_ascii=False).count("HX") == 3
