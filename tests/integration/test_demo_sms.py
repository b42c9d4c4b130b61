"""``crmhub demo``'s simulated Twilio (hub.messengers.twilio_simulator) with the whole hub wired as the
demo wires it, on each test database: a demo person's SMS (signed as Twilio signs it) reaches the CRM
— their client's conversation and timeline, a new number a lead —, the agent's answer goes out through
the real twilio client to the simulator, is delivered (its status callbacks) and the person answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.app import JOURNAL, OUTBOX
from hub.config import Config, TwilioConfig
from hub.crm import demo
from hub.messengers.simulator import ANSWERS, CLIENT_ANSWERS
from hub.messengers.twilio_simulator import DEMO_ACCOUNT_SID, DEMO_NUMBER, SmsPerson, TwilioSimulator
from hub.web.keys import CONFIG, DB, TWILIO
from tests.integration.conftest import Api, until

PUBLIC_URL = "https://crm.example.ru"  # what the signatures are checked against (posts: the test server)


@pytest.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(public_url=PUBLIC_URL, seed=7)
    simulator.status_delays = (0.05, 0.1, 0.2)
    simulator.reply_delay = (0.05, 0.1)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def config(config: Config, sim: TwilioSimulator) -> Config:
    config.server.public_url = PUBLIC_URL
    config.twilio = TwilioConfig(account_sid=sim.account_sid, auth_token=sim.auth_token,
                                 from_number=DEMO_NUMBER, api_url=sim.url)
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
    items = (await api.get("/api/v1/conversations", params={"channel": "sms", "limit": "100"}))["items"]
    found = [c for c in items if c["address"] == phone]
    return (await api.get(f"/api/v1/conversations/{found[0]['id']}")) if found else None


async def test_the_simulated_people_text_and_answer_the_agent(app: web.Application, sim: TwilioSimulator,
                                                              admin: Api) -> None:
    assert sim.account_sid == DEMO_ACCOUNT_SID
    await demo.fill(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    async with app[DB].reading() as s:
        people = [SmsPerson(phone, client) for phone, client in await demo.sms_people(s)]
    # the demo data's SMS conversations: three clients and a number that became a lead
    assert [p.client for p in people].count(True) >= 3 and [p.client for p in people].count(False) == 1
    person = next(p for p in people if p.client)

    # a demo client texts: the SMS lands in their client's conversation and timeline
    text = "Здравствуйте! Когда будет готова смета по нашим окнам?"
    assert (await sim.write(person, text))[0] == 200

    async def taken() -> dict[str, Any] | None:
        conv = await conversation(admin, person.phone)
        return conv if conv and any(m["text"] == text for m in conv["messages"]) else None

    conv = await until(taken, within=10)
    inbound = next(m for m in conv["messages"] if m["text"] == text)
    assert inbound["direction"] == "in" and inbound["entry"] is not None
    assert inbound["entry"]["kind"] == "sms"
    client_id = inbound["entry"]["client_id"]
    assert client_id is not None and conv["person"]["type"] == "client"

    # a number nobody knows: a lead in Unsorted
    newcomer = sim.new_person()
    assert (await sim.write(newcomer, "Здравствуйте! Сколько стоит поменять два окна?"))[0] == 200
    fresh = await until(lambda: conversation(admin, newcomer.phone), within=10)
    [first] = fresh["messages"]
    assert first["entry"] is not None and first["entry"]["lead_id"] is not None

    # the people play (a message every 0.2–0.3 s, from the demo's SMS people), answers to the agent
    async def source() -> list[SmsPerson]:
        async with app[DB].reading() as s:
            return [SmsPerson(phone, client) for phone, client in await demo.sms_people(s)]

    sim.people_source = source
    play = asyncio.create_task(sim.play((0.2, 0.3)))
    try:
        before = len(sim.written)
        await until(lambda: len(sim.written) >= before + 2, within=5)
        # the agent answers the client: through the real twilio client to the simulator, delivered
        ours = "Добрый день! Смета будет готова завтра до 12:00."
        queued = await admin.post("/api/v1/messages", {"channel": "sms", "client_id": client_id,
                                                       "text": ours}, expect=201)
        assert queued["conversation_id"] == conv["id"]
        await until(lambda: any(m["body"] == ours and m["to"] == person.phone for m in sim.created),
                    within=10)
        [created] = [m for m in sim.created if m["body"] == ours]
        assert created["from"] == DEMO_NUMBER

        async def answered() -> bool:
            conv = await conversation(admin, person.phone)
            assert conv is not None
            [mine] = [m for m in conv["messages"] if m["text"] == ours]
            return mine["status"] == "delivered" and any(
                m["direction"] == "in" and m["id"] > mine["id"] and m["text"] in ANSWERS + CLIENT_ANSWERS
                for m in conv["messages"])

        await until(answered, within=15)
        statuses = [c.form["MessageStatus"] for c in sim.callbacks
                    if c.form.get("MessageSid") == created["sid"]]
        assert statuses == ["queued", "sent", "delivered"]
    finally:
        play.cancel()
        with pytest.raises(asyncio.CancelledError):
            await play
    # every webhook was taken (signed right, journaled): none refused
    assert sim.callbacks and all(c.status in (200, 204) for c in sim.callbacks)
    assert app[TWILIO].health() == "ready"
