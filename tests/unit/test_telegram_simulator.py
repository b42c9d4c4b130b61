"""The simulated Telegram of ``crmhub demo`` (hub.messengers.simulator) on its own: the Bot API's
answers over HTTP, the demo people's messages and answers, the generated photo."""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Any

import aiohttp

from hub.messengers.simulator import (
    ANSWERS,
    CLIENT_ANSWERS,
    DEMO_PEOPLE,
    NEW_NAMES,
    TelegramSimulator,
    window_png,
)


async def test_the_bot_api_the_channel_polls() -> None:
    sim = TelegramSimulator(seed=3)
    sim.reply_delay = (0.01, 0.02)
    await sim.start()
    play = asyncio.create_task(sim.play((30.0, 30.0)))  # answering on, no message of its own meanwhile
    base = f"{sim.url}/bot{sim.token}"
    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            async def call(method: str, **params: Any) -> tuple[int, Any]:
                async with http.post(f"{base}/{method}", json=params) as r:
                    return r.status, await r.json()

            assert (await call("getMe"))[1]["result"]["is_bot"] is True
            async with http.post(f"{sim.url}/bot1:wrong/getMe") as r:
                assert r.status == 401
            assert (await call("setWebhook", url="http://127.0.0.1:1/x"))[0] == 200
            assert (await call("getUpdates"))[0] == 409
            assert (await call("deleteWebhook"))[1]["result"] is True
            assert (await call("getUpdates", timeout=0))[1]["result"] == []

            olga = DEMO_PEOPLE[0]
            first = sim.write(olga, "Окно", photo=window_png((150, 190, 230)))
            _, body = await call("getUpdates", timeout=1)
            [update] = body["result"]
            assert update == first and update["message"]["chat"]["id"] == olga.id
            [size] = update["message"]["photo"]
            assert (size["width"], size["height"]) == (160, 120)
            _, body = await call("getFile", file_id=size["file_id"])
            async with http.get(f"{sim.url}/file/bot{sim.token}/{body['result']['file_path']}") as r:
                assert await r.read() == sim.files[size["file_id"]][0]

            # a long poll waits for the next update; the offset confirms the previous ones
            waiting = asyncio.create_task(call("getUpdates", offset=update["update_id"] + 1, timeout=5))
            _, body = await call("sendMessage", chat_id=olga.id, text="Добрый день!")
            assert body["result"]["chat"]["first_name"] == olga.first_name
            _, body = await waiting
            [answer] = body["result"]
            assert answer["update_id"] > update["update_id"]
            assert answer["message"]["text"] in ANSWERS + CLIENT_ANSWERS
            assert answer["message"]["message_id"] > body_id(first)
            assert (await call("answerCallbackQuery", callback_query_id="1"))[1]["result"] is True
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)
        await sim.stop()


def body_id(update: dict[str, Any]) -> int:
    return int(update["message"]["message_id"])


def test_somebody_new_now_and_then_each_with_a_name_of_their_own() -> None:
    sim = TelegramSimulator(seed=11)
    senders = [sim.write_something()["message"]["from"] for _ in range(200)]
    known = {p.id for p in DEMO_PEOPLE}
    new = {s["id"] for s in senders if s["id"] not in known}
    assert 3 <= len(new) and len(new) < len(senders) / 2
    names = [(p.first_name, p.last_name) for p in sim.people if p.id not in known]
    assert len(set(names[:len(NEW_NAMES)])) == min(len(names), len(NEW_NAMES))
    assert any("photo" in m for m in sim.written)


def test_the_photo_is_a_valid_png() -> None:
    data = window_png((150, 190, 230))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    _, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and struct.unpack(">II", data[16:24]) == (160, 120)
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4:idat])[0]
    assert len(zlib.decompress(data[idat + 4:idat + 4 + size])) == 120 * (1 + 160 * 3)
