"""What the hub learns when it logs in to an Asterisk that is already busy, through ``create_app`` and
the fake Asterisk: a call in conversation before the hub started is logged, once it ends, with its
DID, its recording and its wait (the resync's ``Status``); the phones' states listed at login
(``ExtensionStateList``, ``PresenceStateList``) are on the presence board."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from hub.config import Config
from hub.crm.models import Call
from hub.telephony.ami import CONNECTED
from tests.fakes.ami_server import FakeAmiServer, Replay
from tests.integration import test_call_restart, test_telephony_chain
from tests.integration.conftest import MakeApi, until
from tests.integration.test_call_restart import index_of, running_hub, the_call

config = test_telephony_chain.config  # the hub's [asterisk] on the fake Asterisk below
agent = test_call_restart.agent  # agent 101 (Иван Агентов)

TRACE_WAIT = 3.622337 - 1.612012  # inbound_answered: the trunk's Newchannel → the DialEnd ANSWER (_t)


@pytest.fixture
async def ami_server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        yield fake


async def test_a_call_up_before_the_hub_started_keeps_its_did_recording_and_wait(
        config: Config, ami_server: FakeAmiServer, agent: int) -> None:
    replay = await ami_server.push("inbound_answered", stop_before="HangupRequest")  # they talk
    recording = next(m["File"] for m in replay.messages if m.get("Event") == "UserEvent")

    async with running_hub(config) as app:
        await until(lambda: _talking(app, replay))
        status = next(a for a in ami_server.actions if a["Action"] == "Status")
        assert status["Variables"].split(",") == ["MIXMONITOR_FILENAME", "CDR(billsec)"]
        await ami_server.push("inbound_answered", start_at=index_of("inbound_answered", "HangupRequest"),
                              rewriter=replay.rewriter)
        call = await until(lambda: _ended(app, replay))

    assert call.status == "answered" and call.agent_id == agent and call.external_number == "+79161234567"
    assert call.did == "74951234567"  # the trunk's DNID, not where its dialplan went (101)
    assert call.recording == recording and [r["file"] for r in call.recordings] == [recording]
    assert abs(float(call.wait_seconds) - TRACE_WAIT) < 1.0  # Asterisk's whole seconds
    assert call.answered_at is not None and call.started_at is not None
    assert abs((call.answered_at - call.started_at).total_seconds() - TRACE_WAIT) < 1.0
    assert float(call.talk_seconds) >= 3.0


@pytest.fixture
async def busy_phones(ami_server: FakeAmiServer) -> FakeAmiServer:
    """What only the lists tell before the hub connects: 101 idle but in do-not-disturb (its presence
    state), 102 idle by its hint alone (no device state, no contact)."""
    await ami_server.push([
        {"Event": "DeviceStateChange", "Device": "PJSIP/101", "State": "NOT_INUSE"},
        {"Event": "PresenceStateChange", "Presentity": "CustomPresence:101", "Status": "dnd", "Subtype": "",
         "Message": ""},
        {"Event": "ExtensionStatus", "Exten": "102", "Context": "ext-local", "Hint": "Custom:102",
         "Status": "0", "StatusText": "Idle"},
    ])
    return ami_server


async def test_the_presence_lists_at_login_set_the_board(
        busy_phones: FakeAmiServer, app: web.Application, make_api: MakeApi) -> None:
    from hub.app import AMI

    ivan = await make_api("ivan", "agent", "Иван Петров", ["101"])
    await make_api("maria", "agent", "Мария Смирнова", ["102"])
    await until(lambda: app[AMI].state == CONNECTED and app[AMI].presence.known())

    async def board() -> dict[str, str]:
        items = (await ivan.get("/api/v1/presence"))["items"]
        return {item["extension"]: item["state"] for item in items}

    await until(lambda: _both_listed(board))
    assert await board() == {"101": "dnd", "102": "free"}
    listed = [a["Action"] for a in busy_phones.actions if a["Action"].endswith(("List", "Contacts"))]
    assert listed == ["DeviceStateList", "ExtensionStateList", "PresenceStateList", "PJSIPShowContacts"]


async def _both_listed(board: Callable[[], Awaitable[dict[str, str]]]) -> bool:
    states = await board()
    return states.get("101") == "dnd" and states.get("102") == "free"


async def _talking(app: web.Application, replay: Replay) -> Call | None:
    call = await the_call(app, replay)
    return call if call is not None and call.status == "talking" else None


async def _ended(app: web.Application, replay: Replay) -> Call | None:
    call = await the_call(app, replay)
    return call if call is not None and call.ended_at is not None else None
