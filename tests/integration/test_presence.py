"""Who is free, through ``create_app``: the fake Asterisk's device states → the AMI connection's presence
tracker → the core's board → GET /api/v1/presence, ``presence.changed`` on every user's stream and the
header's panel; the states listed at each (re)connect; no telephony."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hub.telephony.ami import CONNECTED
from tests.fakes.ami_server import FakeAmiServer
from tests.integration import test_telephony_chain
from tests.integration.conftest import Api, MakeApi, until
from tests.integration.test_sse import Stream, open_stream

config = test_telephony_chain.config  # the hub's [asterisk] on the fake Asterisk below


@pytest.fixture
async def ami_server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        # what the PBX knows before the hub connects: DeviceStateList answers it
        fake.devices.update({"PJSIP/101": "NOT_INUSE", "PJSIP/102": "UNAVAILABLE"})
        yield fake


async def states(api: Api) -> dict[str, str]:
    return {item["extension"]: item["state"] for item in (await api.get("/api/v1/presence"))["items"]}


async def until_state(api: Api, extension: str, state: str) -> None:
    async def reached() -> bool:
        return (await states(api)).get(extension) == state

    await until(reached)


async def presence_events(stream: Stream, user_id: int, count: int) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    while len(found) < count:
        event = await stream.until_event("presence.changed")
        if event["data"]["user_id"] == user_id:
            found.append((event["data"]["extension"], event["data"]["state"]))
    return found


async def test_a_call_takes_the_agent_from_free_to_ringing_on_call_and_back(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi) -> None:
    from hub.app import AMI

    ivan = await make_api("ivan", "agent", "Иван Петров", ["101"])
    maria = await make_api("maria", "agent", "Мария Смирнова", ["102"])
    await make_api("nophone", "agent", "Без Телефона")  # no extension: not listed
    await until(lambda: app[AMI].state == CONNECTED and app[AMI].presence.known())
    await until_state(ivan, "101", "free")  # listed at login: 101 idle, 102 offline
    body = await maria.get("/api/v1/presence")
    assert body == {"items": [
        {"user_id": ivan.id, "name": "Иван Петров", "extension": "101", "state": "free"},
        {"user_id": maria.id, "name": "Мария Смирнова", "extension": "102", "state": "unavailable"},
    ]}
    lists = ("DeviceStateList", "PJSIPShowContacts")
    listed = [a["Action"] for a in ami_server.actions if a["Action"] in lists]
    assert listed == ["DeviceStateList", "PJSIPShowContacts"]

    ivans, marias = await open_stream(ivan), await open_stream(maria)  # maria sees ivan's changes too
    replay = await ami_server.push("inbound_answered", stop_before="HangupRequest")  # talking now
    await until_state(maria, "101", "on_call")
    await ami_server.push("inbound_answered", start_at=len(replay.messages), rewriter=replay.rewriter)
    await until_state(maria, "101", "free")
    expected = [("101", "ringing"), ("101", "on_call"), ("101", "free")]
    assert await presence_events(ivans, ivan.id, 3) == expected
    assert await presence_events(marias, ivan.id, 3) == expected

    # Asterisk goes away: every phone is unavailable; back: the listing says 101 is free again
    await ami_server.drop()
    assert await presence_events(marias, ivan.id, 2) == [("101", "unavailable"), ("101", "free")]
    assert (await states(maria))["101"] == "free"
    assert [a["Action"] for a in ami_server.actions].count("DeviceStateList") >= 2
    for stream in (ivans, marias):
        stream.response.close()


async def test_a_user_with_two_phones_shows_the_busiest(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi) -> None:
    from hub.app import AMI

    oleg = await make_api("oleg", "agent", "Олег Сидоров", ["102", "101"])
    await until(lambda: app[AMI].state == CONNECTED and app[AMI].presence.known())
    await until_state(oleg, "101", "free")  # 101 free beats 102 offline
    await ami_server.push("queue_answered")  # 101 rings, then 102 rings and answers, then hangs up
    await until(lambda: ami_server.devices.get("PJSIP/102") == "NOT_INUSE")
    await until_state(oleg, "101", "free")  # both free: the smallest extension stands for them
    page = await oleg.client.get("/presence", headers=oleg.auth())
    html = await page.text()
    assert page.status == 200 and 'data-state="free"' in html and "Олег Сидоров" in html
    assert 'id="presence-free"' in html and ">1</span>" in html
