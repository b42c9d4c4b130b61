"""The fake Asterisk against panoramisk's real Manager: login, replayed events, Ping, CoreShowChannels,
Originate, reconnect after a drop, a frozen server, wrong credentials."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from panoramisk import Manager

from hub.telephony.events import CallEnded, CallStarted
from hub.telephony.tracker import Tracker
from tests.fakes.ami_server import FakeAmiServer
from tests.integration.conftest import until

ORIGINAL_LINKEDID = "1795452014.0"




class Client:
    """panoramisk's Manager whose callbacks only queue what arrives (as the hub will do)."""

    def __init__(self, server: FakeAmiServer, secret: str = "hubsecret") -> None:
        self.events: list[dict[str, Any]] = []
        self.logins = 0
        self.disconnects = 0
        self.manager = Manager(
            loop=asyncio.get_running_loop(), host=server.host, port=server.port, username="hub",
            secret=secret, ping_delay=3600, reconnect_timeout=1,
            on_login=self._on_login, on_disconnect=self._on_disconnect,
        )
        self.manager.register_event("*", self._on_event)

    def _on_login(self, manager: Manager) -> None:
        self.logins += 1

    def _on_disconnect(self, manager: Manager, exc: Exception | None) -> None:
        self.disconnects += 1

    def _on_event(self, manager: Manager, message: Any) -> None:
        self.events.append({k: v for k, v in message.items() if k != "content"})

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("Event") == event]


@pytest.fixture
async def server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        yield fake


@pytest.fixture
async def client(server: FakeAmiServer) -> AsyncIterator[Client]:
    c = Client(server)
    c.manager.connect()
    await until(lambda: c.logins == 1)
    yield c
    c.manager.close()


async def test_login_and_replayed_events_with_fresh_ids(server: FakeAmiServer, client: Client) -> None:
    login = server.actions[0]
    assert login["Action"] == "Login" and login["Username"] == "hub" and "ActionID" in login
    replay = await server.push("inbound_answered")
    await until(lambda: len(client.named("Hangup")) == 2)
    assert len(client.events) >= len(replay.messages)
    linkedids = {e["Linkedid"] for e in client.events if "Linkedid" in e}
    assert linkedids == set(replay.linkedids) and ORIGINAL_LINKEDID not in linkedids
    tracker = Tracker(trunks=["trunk"], extensions=["101", "102", "103"])
    facts = tracker.feed_all(client.events)
    end = next(f for f in facts if isinstance(f, CallEnded))
    assert end.call_id == replay.linkedids[0]
    assert (end.status, end.agent, end.external_number) == ("answered", "101", "+79161234567")
    assert end.recording is not None and "1795452014" not in end.recording  # ids rewritten in file names too


async def test_two_replays_of_one_trace_are_two_calls(server: FakeAmiServer, client: Client) -> None:
    first = await server.push("queue_answered")
    second = await server.push("queue_answered", numbers={"+79161234567": "+79990001122"})
    await until(lambda: len(client.named("Hangup")) == 6)
    tracker = Tracker(trunks=["trunk"], extensions=["101", "102"])
    ends = [f for f in tracker.feed_all(client.events) if isinstance(f, CallEnded)]
    assert [e.call_id for e in ends] == [first.linkedids[0], second.linkedids[0]]
    assert [e.external_number for e in ends] == ["+79161234567", "+79990001122"]
    assert all(e.status == "answered" and e.agent == "102" for e in ends)


async def test_ping(server: FakeAmiServer, client: Client) -> None:
    response = await asyncio.wait_for(client.manager.send_action({"Action": "Ping"}), 2)
    assert response.success and response["Ping"] == "Pong"


async def test_core_show_channels_feeds_a_resync(server: FakeAmiServer, client: Client) -> None:
    replay = await server.push("inbound_answered", stop_before="HangupRequest")  # in conversation
    assert len(server.channels) == 2
    listed = await asyncio.wait_for(client.manager.send_action({"Action": "CoreShowChannels"}), 2)
    channels = [m for m in listed if m.get("Event") == "CoreShowChannel"]
    assert {c["Uniqueid"] for c in channels} == set(server.channels)
    assert listed[-1]["Event"] == "CoreShowChannelsComplete" and listed[-1]["ListItems"] == "2"
    tracker = Tracker(trunks=["trunk"], extensions=["101"])
    facts = tracker.resync(channels)
    assert [type(f).__name__ for f in facts] == ["CallStarted", "AgentRinging", "CallAnswered"]
    started = facts[0]
    assert isinstance(started, CallStarted)
    assert started.call_id == replay.linkedids[0] and started.direction == "inbound"
    assert facts[2].extension == "101"
    # the rest of the call arrives after the reconnect: it ends normally
    await server.push("inbound_answered", start_at=len(replay.messages), rewriter=replay.rewriter)
    await until(lambda: len(client.named("Hangup")) == 2)
    rest = [e for e in client.events if e.get("Timestamp", "") > replay.messages[-1]["Timestamp"]]
    end = next(f for f in tracker.feed_all(rest) if isinstance(f, CallEnded))
    assert end.status == "answered" and end.agent == "101" and end.call_id == started.call_id


async def test_status_answers_each_channel_with_the_variables_asked(server: FakeAmiServer,
                                                                     client: Client) -> None:
    """Asterisk 22's Status: a Status event per channel (DNID, Seconds, BridgeID, one ``Variable``
    line per name asked, functions too), then StatusComplete; read on the trace's clock."""
    replay = await server.push("inbound_answered", stop_before="HangupRequest")
    trunk_id, agent_id = replay.linkedids[0], next(u for u in server.channels if u != replay.linkedids[0])
    listed = await asyncio.wait_for(client.manager.send_action({
        "Action": "Status", "ActionID": "st-1", "Variables": "MIXMONITOR_FILENAME,CDR(billsec),NOPE"}), 2)
    assert listed[0]["Response"] == "Success" and listed[0]["EventList"] == "start"
    assert listed[-1]["Event"] == "StatusComplete" and listed[-1]["EventList"] == "Complete"
    assert listed[-1]["ListItems"] == listed[-1]["Items"] == "2" and listed[-1]["ActionID"] == "st-1"
    found = {m["Uniqueid"]: m for m in listed if m.get("Event") == "Status"}
    trunk, agent = found[trunk_id], found[agent_id]
    assert trunk["Channel"].startswith("PJSIP/trunk-") and trunk["DNID"] == "74951234567"
    assert trunk["Exten"] == "101" and trunk["Context"] == "dial-agent"  # where the dialplan went since
    # the trace's clock: the last event replayed is at 6.628 s; the call came at 1.612, 101 at 1.613,
    # and they talk since 3.623
    assert trunk["Seconds"] == "5" and agent["Seconds"] == "5"
    assert trunk["BridgeID"] and trunk["BridgeID"] == agent["BridgeID"] and agent["DNID"] == ""
    assert trunk["Variable"] == ["MIXMONITOR_FILENAME=", "CDR(billsec)=3", "NOPE="]
    recording = agent["Variable"][0].partition("=")[2]
    assert recording.startswith("/var/spool/asterisk/monitor/inbound-")
    assert recording.endswith(f"-{agent_id}.wav")  # the recording leg's (fresh) Uniqueid
    one = await asyncio.wait_for(client.manager.send_action({
        "Action": "Status", "Channel": agent["Channel"], "Variables": "MIXMONITOR_FILENAME"}), 2)
    assert [m.get("Event") for m in one[1:]] == ["Status", "StatusComplete"]
    assert one[1]["Variable"] == f"MIXMONITOR_FILENAME={recording}"


async def test_the_presence_lists_answer_what_the_replays_set(server: FakeAmiServer, client: Client) -> None:
    """ExtensionStateList, PresenceStateList and PJSIPShowContacts as Asterisk 22 answers them, from
    the device states replayed (a hint and a contact per phone) and the hint, presence and contact
    events replayed (they win)."""
    await server.push("inbound_answered", stop_before="HangupRequest")  # 101 in use
    await server.push([
        {"Event": "DeviceStateChange", "Device": "PJSIP/102", "State": "UNAVAILABLE"},
        {"Event": "ExtensionStatus", "Exten": "103", "Context": "ext-local",
         "Hint": "PJSIP/103&Custom:DND103", "Status": "4", "StatusText": "Unavailable"},
        {"Event": "PresenceStateChange", "Presentity": "CustomPresence:101", "Status": "dnd", "Subtype": "",
         "Message": "lunch"},
        {"Event": "ContactStatus", "URI": "sip:103@127.0.0.1:5103", "ContactStatus": "Unreachable",
         "AOR": "103", "EndpointName": "103", "RoundtripUsec": "0"},
    ])

    hints = await asyncio.wait_for(client.manager.send_action({"Action": "ExtensionStateList"}), 2)
    assert hints[0]["EventList"] == "start" and hints[-1]["Event"] == "ExtensionStateListComplete"
    by_exten = {m["Exten"]: m for m in hints if m.get("Event") == "ExtensionStatus"}
    assert hints[-1]["ListItems"] == str(len(by_exten))
    assert {k: by_exten["101"][k] for k in ("Context", "Hint", "Status", "StatusText")} == {
        "Context": "from-internal", "Hint": "PJSIP/101", "Status": "1", "StatusText": "InUse"}
    assert (by_exten["102"]["Status"], by_exten["102"]["StatusText"]) == ("4", "Unavailable")
    assert by_exten["103"]["Hint"] == "PJSIP/103&Custom:DND103" and by_exten["103"]["Context"] == "ext-local"

    presence = await asyncio.wait_for(client.manager.send_action({"Action": "PresenceStateList"}), 2)
    assert presence[-1]["Event"] == "PresenceStateListComplete" and presence[-1]["ListItems"] == "1"
    item = presence[1]
    assert (item["Event"], item["Presentity"], item["Status"], item["Message"]) == (
        "PresenceStateChange", "CustomPresence:101", "dnd", "lunch")

    contacts = await asyncio.wait_for(client.manager.send_action({"Action": "PJSIPShowContacts"}), 2)
    assert contacts[-1]["Event"] == "ContactListComplete" and contacts[-1]["EventList"] == "Complete"
    by_uri = {m["Uri"]: m for m in contacts if m.get("Event") == "ContactList"}
    assert contacts[-1]["ListItems"] == str(len(by_uri))
    assert by_uri["sip:101@127.0.0.1:5101"]["Endpoint"] == "101"
    assert by_uri["sip:101@127.0.0.1:5101"]["Status"] == "Reachable"
    assert by_uri["sip:101@127.0.0.1:5101"]["ObjectName"] == "101/sip:101@127.0.0.1:5101"
    assert by_uri["sip:103@127.0.0.1:5103"]["Status"] == "Unreachable"
    assert not any(m["Endpoint"] == "102" for m in by_uri.values())  # unavailable: not registered


async def test_originate_then_the_click_to_call_trace(server: FakeAmiServer, client: Client) -> None:
    result = await asyncio.wait_for(client.manager.send_action({
        "Action": "Originate", "ActionID": "c2c-77", "Channel": "PJSIP/101", "Context": "from-internal",
        "Exten": "+79161234567", "Priority": "1", "Timeout": "30000", "Async": "true",
    }), 5)
    assert [m.get("Response") for m in result] == ["Success", "Success"]
    assert result[-1]["Event"] == "OriginateResponse" and result[-1]["ActionID"] == "c2c-77"
    await until(lambda: len(client.named("Hangup")) == 2)
    tracker = Tracker(trunks=["trunk"], extensions=["101"])
    tracker.originate_requested("c2c-77", "101", "+79161234567")
    facts = tracker.feed_all(client.events)
    end = next(f for f in facts if isinstance(f, CallEnded))
    assert (end.direction, end.status, end.agent, end.originate_action_id) == (
        "outbound", "answered", "101", "c2c-77")


async def test_reconnects_after_a_drop(server: FakeAmiServer, client: Client) -> None:
    await server.drop()
    await until(lambda: client.disconnects == 1)
    await until(lambda: client.logins == 2, within=5)
    assert server.logins == 2 and server.connections == 2
    await server.push("agent_busy")
    await until(lambda: len(client.named("Hangup")) == 2)
    response = await asyncio.wait_for(client.manager.send_action({"Action": "Ping"}), 2)
    assert response.success


async def test_a_frozen_server_answers_nothing(server: FakeAmiServer, client: Client) -> None:
    server.freeze()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(client.manager.send_action({"Action": "Ping"})), 0.3)
    await server.push("agent_busy")  # events are lost while frozen (an outage), channels still move
    await asyncio.sleep(0.1)
    assert client.named("Newchannel") == []
    server.unfreeze()
    response = await asyncio.wait_for(client.manager.send_action({"Action": "Ping"}), 2)
    assert response.success
    assert server.actions[-1]["Action"] == "Ping"


async def test_wrong_credentials_fail_cleanly(server: FakeAmiServer) -> None:
    bad = Client(server, secret="wrong")
    bad.manager.connect()
    try:
        await until(lambda: server.login_failures == 1)
        await until(lambda: bad.manager.authenticated_future is None)
        assert bad.manager.authenticated is False and bad.logins == 0
    finally:
        bad.manager.close()


async def test_fail_auth_switch(server: FakeAmiServer) -> None:
    server.fail_auth = True
    c = Client(server)
    c.manager.connect()
    try:
        await until(lambda: server.login_failures == 1)
        await until(lambda: c.manager.authenticated_future is None)
        assert c.logins == 0
        await server.push("inbound_missed")
        await asyncio.sleep(0.05)
        assert c.events == []  # nothing for a client that is not logged in
    finally:
        c.manager.close()
