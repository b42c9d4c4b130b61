"""The simulated Twilio of ``crmhub demo`` (hub.messengers.twilio_simulator) on its own: the Messages
API's answers over HTTP (the fixture's shape, its errors), the status callbacks and inbound SMS it
posts — each with a signature twilio's ``RequestValidator`` accepts —, the demo people's messages and
answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.messengers.simulator import ANSWERS, CLIENT_ANSWERS, CLIENT_TEXTS, NEW_NAMES, NEW_TEXTS
from hub.messengers.twilio_simulator import (
    DEMO_ACCOUNT_SID,
    DEMO_NUMBER,
    DEMO_WHATSAPP_NUMBER,
    DEMO_WHATSAPP_TEMPLATES,
    SmsPerson,
    TwilioSimulator,
    WhatsAppPerson,
    render_template,
    segments,
)
from tests.paths import TWILIO_FIXTURES

PUBLIC_URL = "https://crm.example.ru"
TOKEN = "12345678901234567890123456789012"
CLIENT = SmsPerson("+79161234567")
ANNA = WhatsAppPerson("+79161234567", "Анна Соколова")  # the same phone on WhatsApp: another address
SENDER = "whatsapp:" + DEMO_WHATSAPP_NUMBER
REMINDER = DEMO_WHATSAPP_TEMPLATES[0]


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
        await until(lambda: len(hub.of("sms")) == 1 and len(sim.callbacks) == 4
                    and all(c.status for c in sim.callbacks))
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


@pytest.fixture
async def wa_sim(hub: Hub) -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(DEMO_ACCOUNT_SID, TOKEN, hub_url=hub.url, public_url=PUBLIC_URL,
                                people=[CLIENT], seed=5, whatsapp_number=SENDER,
                                templates=DEMO_WHATSAPP_TEMPLATES)
    simulator.status_delays = (0.01, 0.02, 0.03)
    simulator.read_delay = 0.02
    simulator.reply_delay = (0.01, 0.02)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def create(sim: TwilioSimulator, form: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession(trust_env=False) as http:
        async with http.post(f"{sim.url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json", data=form,
                             headers={"Authorization": aiohttp.encode_basic_auth(DEMO_ACCOUNT_SID,
                                                                                 TOKEN)}) as r:
            return r.status, await r.json()


def to_anna(**fields: str) -> dict[str, str]:
    return {"To": ANNA.address, "From": SENDER, "StatusCallback": PUBLIC_URL + "/webhooks/twilio/status",
            **fields}


async def test_a_whatsapp_person_writes_with_a_profile_name_and_answers_after_reading(
        wa_sim: TwilioSimulator, hub: Hub) -> None:
    assert (await wa_sim.write(ANNA, "Добрый день! Когда замер?"))[0] == 200
    [inbound] = hub.of("sms")  # the same webhook as SMS
    assert (inbound["From"], inbound["To"]) == ("whatsapp:+79161234567", SENDER)
    assert (inbound["ProfileName"], inbound["WaId"]) == ("Анна Соколова", "79161234567")
    assert inbound["Body"] == "Добрый день! Когда замер?" and inbound["MessageSid"].startswith("SM")
    assert inbound["AccountSid"] == DEMO_ACCOUNT_SID and inbound["NumMedia"] == "0"
    assert wa_sim.known[ANNA.address] == ANNA and wa_sim.known[CLIENT.phone] == CLIENT  # two addresses

    play = asyncio.create_task(wa_sim.play((30.0, 30.0)))  # answering on
    try:
        status, body = await create(wa_sim, to_anna(Body="Здравствуйте! В субботу в 11:00 🙂"))
        assert status == 201
        assert (body["to"], body["from"], body["status"], body["num_segments"]) == (
            ANNA.address, SENDER, "queued", "1")
        # queued → sent → delivered → read, then Анна answers on WhatsApp
        await until(lambda: len(hub.of("sms")) == 2 and len(wa_sim.callbacks) == 6)
        statuses = hub.of("status")
        assert [f["MessageStatus"] for f in statuses] == ["queued", "sent", "delivered", "read"]
        assert all(f["MessageSid"] == body["sid"] and f["To"] == ANNA.address and f["From"] == SENDER
                   and f["ChannelPrefix"] == "whatsapp" and "ErrorCode" not in f for f in statuses)
        answer = hub.of("sms")[1]
        assert (answer["From"], answer["ProfileName"]) == (ANNA.address, "Анна Соколова")
        assert answer["Body"] in ANSWERS + CLIENT_ANSWERS
        assert all(valid for _, _, valid in hub.received)
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)


async def test_whatsapp_templates_and_refusals(wa_sim: TwilioSimulator, hub: Hub) -> None:
    variables = json.dumps({"1": "Анна", "2": "в субботу в 11:00"}, ensure_ascii=False)
    status, body = await create(wa_sim, to_anna(ContentSid=REMINDER["sid"], ContentVariables=variables))
    assert status == 201  # a template goes though Анна never wrote
    assert body["body"] == ("Здравствуйте, Анна! Напоминаем: замер окон в субботу в 11:00, мастер позвонит "
                            "за час. Если время не подходит, ответьте на это сообщение.")
    assert body["to"] == ANNA.address and body["status"] == "queued"
    for form, code in ((to_anna(ContentSid="HX" + "0" * 32), 21655),
                       (to_anna(ContentSid=REMINDER["sid"], ContentVariables='{"1": "Анна"}'), 21656),
                       (to_anna(ContentSid=REMINDER["sid"], ContentVariables="Анна"), 21656),
                       (to_anna(), 21602),
                       ({**to_anna(Body="Здравствуйте"), "From": DEMO_NUMBER}, 21910),
                       ({**to_anna(Body="Здравствуйте"), "To": CLIENT.phone}, 21910)):
        status, error = await create(wa_sim, form)
        assert (status, error["code"]) == (400, code), form
    await until(lambda: len(hub.of("status")) == 4)
    assert [f["MessageStatus"] for f in hub.of("status")] == ["queued", "sent", "delivered", "read"]
    assert len(wa_sim.created) == 1


async def test_free_text_outside_the_24_hour_window_is_accepted_then_fails_63016(
        wa_sim: TwilioSimulator, hub: Hub) -> None:
    asked: list[str] = []

    async def last_written(phone: str) -> datetime | None:  # crmhub demo: the hub's database
        asked.append(phone)
        return datetime.now(UTC) - timedelta(hours=25) if phone == ANNA.phone else None

    wa_sim.window_source = last_written
    play = asyncio.create_task(wa_sim.play((30.0, 30.0)))
    try:
        status, body = await create(wa_sim, to_anna(Body="Добрый день!"))
        assert status == 201 and body["status"] == "queued"  # accepted, as Twilio does
        await until(lambda: len(hub.of("status")) == 2)
        assert asked == [ANNA.phone]
        queued, failed = hub.of("status")
        assert (queued["MessageStatus"], failed["MessageStatus"]) == ("queued", "failed")
        assert failed["ErrorCode"] == "63016" and failed["MessageSid"] == body["sid"]
        assert all(valid for _, _, valid in hub.received)
        # she writes: the window opens, free text goes (and the simulator no longer asks)
        await wa_sim.write(ANNA, "Здравствуйте, перезвоните")
        status, body = await create(wa_sim, to_anna(Body="Перезваниваем!"))
        await until(lambda: [f["MessageStatus"] for f in hub.of("status") if f["MessageSid"] == body["sid"]]
                    == ["queued", "sent", "delivered", "read"])
        assert asked == [ANNA.phone]
        await until(lambda: len(hub.of("sms")) == 2)  # her message and her answer to ours
        # 25 hours after her last message: refused again; nobody answers a failed message
        wa_sim.last_written[ANNA.phone] -= timedelta(hours=25)
        status, body = await create(wa_sim, to_anna(Body="Вы тут?"))
        await until(lambda: any(f["MessageSid"] == body["sid"] and f["MessageStatus"] == "failed"
                                for f in hub.of("status")))
        assert [f["ErrorCode"] for f in hub.of("status") if f["MessageStatus"] == "failed"] == ["63016"] * 2
        await asyncio.sleep(0.2)
        assert len(hub.of("sms")) == 2  # nobody answers a message that never came
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)


async def test_the_demo_people_write_on_whatsapp_too(wa_sim: TwilioSimulator, hub: Hub) -> None:
    known = WhatsAppPerson("+79031112233", "Ольга Кузнецова")

    async def whatsapp_people() -> list[WhatsAppPerson]:
        return [known]

    wa_sim.whatsapp_source = whatsapp_people
    for _ in range(40):
        await wa_sim.write_something()
    forms = hub.of("sms")
    whatsapp = [f for f in forms if f["From"].startswith("whatsapp:")]
    assert 10 <= len(whatsapp) <= 30 and len(forms) == 40
    assert all(f["To"] == SENDER and f["ProfileName"] for f in whatsapp)
    assert all(f["To"] == DEMO_NUMBER and "ProfileName" not in f for f in forms if f not in whatsapp)
    assert any(f["From"] == known.address and f["ProfileName"] == "Ольга Кузнецова" for f in whatsapp)
    new = [f for f in whatsapp if f["From"] != known.address]
    assert new and all(tuple(f["ProfileName"].split()) in NEW_NAMES for f in new)
    assert all(f["WaId"] == f["From"].removeprefix("whatsapp:+") for f in whatsapp)


def test_render_template() -> None:
    assert render_template("Здравствуйте, {{1}}! Замер {{ 2 }}.", {"1": "Анна", "2": "завтра"}) == \
        "Здравствуйте, Анна! Замер завтра."
    with pytest.raises(KeyError):
        render_template("{{1}} {{2}}", {"1": "a"})
