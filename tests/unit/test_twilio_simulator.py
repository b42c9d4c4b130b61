"""The simulated Twilio of ``crmhub demo`` (hub.messengers.twilio_simulator) on its own: the Messages
API's answers over HTTP (the fixture's shape, its errors), the status callbacks and inbound SMS it
posts — each with a signature twilio's ``RequestValidator`` accepts —, the demo people's messages and
answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.messengers.simulator import ANSWERS, CLIENT_ANSWERS, CLIENT_TEXTS, NEW_TEXTS
from hub.messengers.twilio_simulator import (
    DEMO_ACCOUNT_SID,
    DEMO_NUMBER,
    SmsPerson,
    TwilioSimulator,
    segments,
)
from tests.paths import TWILIO_FIXTURES

PUBLIC_URL = "https://crm.example.ru"
TOKEN = "12345678901234567890123456789012"
CLIENT = SmsPerson("+79161234567")


class Hub:
    """A stand-in for the hub's two webhooks: checks each signature as the hub does (public_url + path)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bool]] = []  # (path, form, signature valid)
        self.validator = RequestValidator(TOKEN)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        valid = self.validator.validate(PUBLIC_URL + request.raw_path, form,
                                        request.headers.get("X-Twilio-Signature", ""))
        self.received.append((request.path, form, valid))
        if not valid:
            return web.Response(status=403)
        if request.path.endswith("/sms"):
            return web.Response(text="<Response/>", content_type="text/xml")
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/twilio/{kind}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    def of(self, kind: str) -> list[dict[str, str]]:
        return [form for path, form, _ in self.received if path == f"/webhooks/twilio/{kind}"]


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    stand_in = Hub()
    await stand_in.start()
    yield stand_in
    assert stand_in.runner is not None
    await stand_in.runner.cleanup()


@pytest.fixture
async def sim(hub: Hub) -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(DEMO_ACCOUNT_SID, TOKEN, hub_url=hub.url, public_url=PUBLIC_URL,
                                people=[CLIENT], seed=5)
    simulator.status_delays = (0.01, 0.02, 0.03)
    simulator.reply_delay = (0.01, 0.02)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def until(condition: Any, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_messages_api_then_the_status_callbacks_and_the_answer(sim: TwilioSimulator,
                                                                         hub: Hub) -> None:
    play = asyncio.create_task(sim.play((30.0, 30.0)))  # answering on, no message of its own meanwhile
    create = f"{sim.url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json"
    ours = {"To": CLIENT.phone, "From": DEMO_NUMBER, "Body": "Добрый день! Замер в субботу в 10:00.",
            "StatusCallback": PUBLIC_URL + "/webhooks/twilio/status"}
    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            async def post(form: dict[str, str], token: str) -> tuple[int, Any]:
                headers = {"Authorization": aiohttp.encode_basic_auth(DEMO_ACCOUNT_SID, token)}
                async with http.post(create, data=form, headers=headers) as r:
                    return r.status, await r.json()

            good = TOKEN
            status, body = await post(ours, "wrong")
            assert (status, body["code"]) == (401, 20003)
            status, body = await post({"From": DEMO_NUMBER, "Body": "x"}, good)
            assert (status, body["code"]) == (400, 21604)
            status, body = await post({**ours, "Body": "я" * 1601}, good)
            assert (status, body["code"]) == (400, 21617)
            assert hub.received == []

            status, body = await post(ours, good)
            assert status == 201
            shape = json.loads((TWILIO_FIXTURES / "Messages_create_201.json").read_text(encoding="utf-8"))
            assert set(body) == set(shape)
            assert body["sid"].startswith("SM") and len(body["sid"]) == 34
            assert (body["to"], body["from"], body["body"], body["status"]) == (
                CLIENT.phone, DEMO_NUMBER, ours["Body"], "queued")
            assert body["num_segments"] == "1" and body["account_sid"] == DEMO_ACCOUNT_SID
            assert body["uri"] == f"/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages/{body['sid']}.json"

        # queued → sent → delivered, then the person answers: every webhook signed as Twilio signs it
        # (the simulator notes each webhook's answer after the hub has seen it: wait for both)
        await until(lambda: len(hub.of("sms")) == 1 and len(sim.callbacks) == 4)
        assert [f["MessageStatus"] for f in hub.of("status")] == ["queued", "sent", "delivered"]
        assert all(f["MessageSid"] == body["sid"] and f["To"] == CLIENT.phone for f in hub.of("status"))
        assert "RawDlrDoneDate" in hub.of("status")[-1]
        [answer] = hub.of("sms")
        assert answer["From"] == CLIENT.phone and answer["To"] == DEMO_NUMBER
        assert answer["Body"] in ANSWERS + CLIENT_ANSWERS and answer["MessageSid"].startswith("SM")
        assert answer["AccountSid"] == DEMO_ACCOUNT_SID and answer["NumMedia"] == "0"
        assert all(valid for _, _, valid in hub.received) and len(hub.received) == 4
        assert [c.status for c in sim.callbacks] == [204, 204, 204, 200]
        # a hub with another auth token refuses them: the signature is the token's
        wrong = TwilioSimulator(DEMO_ACCOUNT_SID, "another-token", hub_url=hub.url, public_url=PUBLIC_URL)
        await wrong.start()
        try:
            assert (await wrong.write(CLIENT, "Здравствуйте"))[0] == 403
        finally:
            await wrong.stop()
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)


async def test_no_answer_unless_playing_and_no_callbacks_without_a_status_callback(sim: TwilioSimulator,
                                                                                   hub: Hub) -> None:
    async with aiohttp.ClientSession(trust_env=False) as http:
        async with http.post(f"{sim.url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json",
                             data={"To": CLIENT.phone, "MessagingServiceSid": "MG" + "0" * 32, "Body": "Ок"},
                             headers={"Authorization": aiohttp.encode_basic_auth(DEMO_ACCOUNT_SID,
                                                                                 TOKEN)}) as r:
            assert r.status == 201 and (await r.json())["status"] == "accepted"
    await asyncio.sleep(0.3)
    assert hub.received == [] and len(sim.created) == 1


async def test_the_demo_people_write_somebody_new_now_and_then(sim: TwilioSimulator, hub: Hub) -> None:
    lead = SmsPerson("+79263418805", client=False)

    async def source() -> list[SmsPerson]:
        return [CLIENT, lead]

    sim.people_source = source
    for _ in range(40):
        await sim.write_something()
    senders = [f["From"] for f in hub.of("sms")]
    assert len(senders) == 40 and all(valid for _, _, valid in hub.received)
    new = set(senders) - {CLIENT.phone, lead.phone}
    assert 3 <= len(new) < 20 and all(p.startswith("+79") and len(p) == 12 for p in new)
    assert CLIENT.phone in senders and lead.phone in senders
    for form in hub.of("sms"):
        if form["From"] == CLIENT.phone:
            assert form["Body"] in CLIENT_TEXTS
        elif form["From"] not in new:
            assert form["Body"] not in CLIENT_TEXTS  # a lead asks, it has no order yet
    firsts = {}
    for form in hub.of("sms"):
        firsts.setdefault(form["From"], form["Body"])
    assert all(firsts[p] in NEW_TEXTS for p in new)


def test_segments() -> None:
    assert segments("Hello") == 1 and segments("a" * 160) == 1 and segments("a" * 161) == 2
    assert segments("я" * 70) == 1 and segments("я" * 71) == 2 and segments("я" * 135) == 3
    assert segments("👍" * 35) == 1 and segments("👍" * 36) == 2
