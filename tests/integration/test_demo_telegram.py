"""``crmhub demo``'s simulated Telegram (hub.messengers.simulator) with the whole hub in polling mode on
each test database: the demo people's messages reach the CRM (their clients recognised, a newcomer a
lead), an agent's answer reaches the simulator and the person writes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.app import OUTBOX
from hub.config import Config
from hub.crm import demo
from hub.messengers.simulator import ANSWERS, CLIENT_ANSWERS, DEMO_PEOPLE, TelegramSimulator, window_png
from hub.web.keys import CONFIG, DB, TELEGRAM
from tests.integration.conftest import Api, until


@pytest.fixture
async def sim() -> AsyncIterator[TelegramSimulator]:
    simulator = TelegramSimulator(seed=7)
    simulator.reply_delay = (0.05, 0.1)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def config(config: Config, sim: TelegramSimulator) -> Config:
    config.telegram.token = sim.token
    config.telegram.mode = "polling"
    config.telegram.api_url = sim.url
    return config


@pytest.fixture
async def client(app: web.Application, aiohttp_client: Any) -> TestClient:
    channel = app[TELEGRAM]
    channel.poll_timeout = 1
    channel.request_timeout = 2.0
    channel.backoff_base = 0.05
    channel.backoff_cap = 0.3
    app[OUTBOX].poll_seconds = 0.05
    hub = await aiohttp_client(app)
    await until(lambda: channel.health() == "polling", within=10)
    return hub


async def conversation(api: Api, chat: int) -> dict[str, Any] | None:
    items = (await api.get("/api/v1/conversations", params={"limit": "100"}))["items"]
    found = [c for c in items if c["channel"] == "telegram" and c["address"] == str(chat)]
    return (await api.get(f"/api/v1/conversations/{found[0]['id']}")) if found else None


async def test_the_simulated_people_write_and_answer_the_agent(app: web.Application, sim: TelegramSimulator,
                                                               admin: Api) -> None:
    await demo.fill(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    olga = DEMO_PEOPLE[0]  # linked to a demo client

    # a demo client writes (with a photo): the message lands in her client's conversation and timeline
    sim.write(olga, "Вот окно на кухне, посмотрите, пожалуйста.", photo=window_png((150, 190, 230)))

    async def taken() -> dict[str, Any] | None:
        conv = await conversation(admin, olga.id)
        if conv and any(m["text"].startswith("Вот окно") for m in conv["messages"]):
            return conv
        return None

    conv = await until(taken, within=10)
    photo = next(m for m in conv["messages"] if m["text"].startswith("Вот окно"))
    assert photo["direction"] == "in" and photo["entry"] is not None
    assert photo["entry"]["kind"] == "telegram" and len(photo["entry"]["attachments"]) == 1
    client_id = photo["entry"]["client_id"]
    assert client_id is not None

    # somebody new: a lead in Unsorted
    newcomer = sim.new_person()
    sim.write(newcomer, "Здравствуйте! Сколько стоит поменять два окна в панельном доме?")
    fresh = await until(lambda: conversation(admin, newcomer.id), within=10)
    [first] = fresh["messages"]
    assert first["entry"] is not None and first["entry"]["lead_id"] is not None

    # the people play: a message every 0.2 s or so, answers to the bot
    play = asyncio.create_task(sim.play((0.2, 0.3)))
    try:
        before = len(sim.written)
        await until(lambda: len(sim.written) >= before + 2, within=5)
        # the agent answers the client: it reaches Telegram, the client writes back
        text = "Добрый день! Мастер приедет в субботу к 10:00."
        queued = await admin.post("/api/v1/messages", {"channel": "telegram", "client_id": client_id,
                                                       "text": text}, expect=201)
        assert queued["conversation_id"] == conv["id"]
        await until(lambda: any(m.get("text", "").startswith("Добрый день! Мастер")
                                for m in sim.sent.get(olga.id, [])), within=10)

        async def answered() -> bool:
            conv = await conversation(admin, olga.id)
            assert conv is not None
            [ours] = [m["id"] for m in conv["messages"] if m["text"].startswith("Добрый день! Мастер")]
            return any(m["direction"] == "in" and m["id"] > ours and m["text"] in ANSWERS + CLIENT_ANSWERS
                       for m in conv["messages"])

        await until(answered, within=10)
        statuses = {m["status"] for m in (await conversation(admin, olga.id) or {})["messages"]
                    if m["direction"] == "out" and m["text"].startswith("Добрый день! Мастер")}
        assert statuses <= {"sent", "delivered"} and statuses
    finally:
        play.cancel()
        with pytest.raises(asyncio.CancelledError):
            await play
    # everything the people wrote was taken in once (the offset kept, the ids never reused)
    assert app[TELEGRAM].health() == "polling"
