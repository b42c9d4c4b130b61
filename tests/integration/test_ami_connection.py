"""``AmiConnection`` against the fake Asterisk on 127.0.0.1: login and /healthz, facts in order,
wrong credentials, a drop mid-call with the CoreShowChannels resync, a frozen server caught by the
Ping watchdog, click-to-call refused while down, a quick stop."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.bus import Event
from hub.config import Config
from hub.telephony.ami import (
    AUTH_FAILED,
    CONNECTED,
    AmiConnection,
    AmiUnavailable,
)
from hub.telephony.events import AgentRinging, CallAnswered, CallEnded, CallStarted, Fact
from hub.telephony.tracker import Tracker
from tests.fakes.ami_server import FakeAmiServer
from tests.integration.conftest import until

TIMINGS: dict[str, float] = {}  # measured, printed with -s




class Facts(list[Fact]):
    async def __call__(self, fact: Fact) -> None:
        self.append(fact)

    def of(self, kind: type, call_id: str | None = None) -> list[Any]:
        return [f for f in self if isinstance(f, kind) and (call_id is None or f.call_id == call_id)]


@pytest.fixture
async def server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        yield fake


@pytest.fixture
def facts() -> Facts:
    return Facts()


@pytest.fixture
async def connect(server: FakeAmiServer, facts: Facts) -> AsyncIterator[Callable[..., Any]]:
    made: list[AmiConnection] = []

    async def make(**options: Any) -> AmiConnection:
        options.setdefault("secret", "hubsecret")
        options.setdefault("on_fact", facts)
        options.setdefault("extensions", ["101", "102", "103"])
        options.setdefault("backoff_initial", 0.1)
        options.setdefault("ping_interval", 5.0)
        conn = AmiConnection(server.host, server.port, "hub", options.pop("secret"), **options)
        made.append(conn)
        await conn.start()
        return conn

    yield make
    for conn in made:
        await conn.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")], "leaked tasks"


async def test_healthz_shows_the_live_state_through_create_app(
        server: FakeAmiServer, sqlite_template: Path, tmp_path: Path, aiohttp_client: Any) -> None:
    from hub.app import AMI, create_app
    from hub.web.keys import BUS

    shutil.copy(sqlite_template, tmp_path / "hub.db")
    config = Config()
    config.database.url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    config.server.secret_key = "test-secret"
    config.asterisk.host, config.asterisk.port = server.host, server.port
    config.asterisk.username, config.asterisk.secret = "hub", "hubsecret"
    config.asterisk.trunks = ["trunk"]
    app = create_app(config)
    published: list[Event] = []
    app[BUS].subscribe(lambda e: published.append(e) if e.name.startswith("call.") else None)
    client: TestClient = await aiohttp_client(app)

    async def health() -> dict[str, Any]:
        response = await client.get("/healthz")
        return dict(await response.json())

    await until(lambda: app[AMI].state == CONNECTED)
    assert (await health())["channels"] == {"asterisk": "connected"}
    replay = await server.push("inbound_answered")  # the facts go on into the CRM: the call is logged
    ended = await until(lambda: [e for e in published if e.name == "call.ended"])
    assert ended[0].data["call_key"] == replay.linkedids[0]

    await server.drop()
    server.fail_auth = True  # it comes back refusing us: the state says so, with the reason
    await until(lambda: app[AMI].state == AUTH_FAILED)
    assert (await health())["channels"] == {"asterisk": "auth_failed: Authentication failed"}


async def test_a_replayed_trace_yields_the_facts_in_order(
        server: FakeAmiServer, connect: Any, facts: Facts) -> None:
    conn = await connect()
    await until(lambda: conn.resyncs == 1)
    replay = await server.push("inbound_answered")
    await until(lambda: facts.of(CallEnded))
    expected = Tracker(trunks=["trunk"], extensions=["101", "102", "103"]).feed_all(replay.messages)
    assert facts == expected
    assert [type(f) for f in facts] == [CallStarted, AgentRinging, CallAnswered, CallEnded]
    assert all(f.call_id == replay.linkedids[0] for f in facts)


async def test_on_fact_failures_are_logged_and_the_consumer_goes_on(
        server: FakeAmiServer, connect: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Fact] = []

    async def flaky(fact: Fact) -> None:
        seen.append(fact)
        if isinstance(fact, CallStarted):
            raise RuntimeError("intake down")

    conn = await connect(on_fact=flaky)
    await until(lambda: conn.resyncs == 1)
    await server.push("inbound_missed")
    await server.push("agent_busy")
    await until(lambda: len([f for f in seen if isinstance(f, CallEnded)]) == 2)
    assert any("on_fact failed for CallStarted" in r.getMessage() for r in caplog.records)


async def test_wrong_secret_is_auth_failed_with_the_reason_and_no_tight_loop(
        server: FakeAmiServer, connect: Any) -> None:
    conn = await connect(secret="wrong", auth_retry=0.4)
    await until(lambda: conn.state == AUTH_FAILED)
    first = time.monotonic()
    assert conn.health() == "auth_failed: Authentication failed"
    assert server.login_failures == 1
    await until(lambda: server.login_failures == 2)
    assert time.monotonic() - first >= 0.3  # the retry waits auth_retry, not the quick backoff
    assert conn.health() == "auth_failed: Authentication failed"  # stays put while retrying
    with pytest.raises(AmiUnavailable):
        await conn.originate("101", "+79161234567", "c2c-1")


async def test_auth_failed_recovers_when_asterisk_accepts_again(server: FakeAmiServer, connect: Any) -> None:
    server.fail_auth = True
    conn = await connect(auth_retry=0.2)
    await until(lambda: conn.state == AUTH_FAILED)
    server.fail_auth = False
    await until(lambda: conn.state == CONNECTED)
    assert conn.health() == "connected"


async def test_drop_mid_call_reconnects_and_resync_closes_and_picks_up(
        server: FakeAmiServer, connect: Any, facts: Facts) -> None:
    conn = await connect(backoff_initial=0.2)
    await until(lambda: conn.resyncs == 1)
    first = await server.push("inbound_answered", stop_before="HangupRequest")  # in conversation
    a = first.linkedids[0]
    await until(lambda: facts.of(CallAnswered, a))

    dropped = time.monotonic()
    await server.drop()
    # during the outage: call A ends, call B starts and is answered
    rest_a = await server.push("inbound_answered", start_at=len(first.messages), rewriter=first.rewriter)
    assert rest_a.messages and conn.logins == 1  # all of it happened before we were back
    second = await server.push("inbound_answered", stop_before="HangupRequest",
                               numbers={"+79161234567": "+79035550011"})
    b = second.linkedids[0]
    assert not facts.of(CallEnded, a) and not facts.of(CallStarted, b)

    await until(lambda: conn.logins == 2)
    TIMINGS["reconnect_after_drop_s"] = time.monotonic() - dropped
    await until(lambda: conn.resyncs == 2)
    TIMINGS["drop_to_resync_s"] = time.monotonic() - dropped
    await until(lambda: conn.facts_in_hand == 0)  # the resync's facts are through their calls' lanes
    assert conn.last_resync_seconds is not None
    TIMINGS["login_to_resync_s"] = conn.last_resync_seconds

    (end_a,) = facts.of(CallEnded, a)
    assert end_a.resynced and end_a.status == "answered" and end_a.agent == "101"
    assert [type(f) for f in facts if f.call_id == b] == [CallStarted, AgentRinging, CallAnswered]
    (start_b,) = facts.of(CallStarted, b)
    assert start_b.direction == "inbound" and start_b.external_number == "+79035550011"
    assert conn.tracker.active_calls == 1

    # B goes on after the reconnect and ends by its own Hangup events
    await server.push("inbound_answered", start_at=len(second.messages), rewriter=second.rewriter)
    (end_b,) = await until(lambda: facts.of(CallEnded, b))
    assert not end_b.resynced and end_b.status == "answered" and end_b.agent == "101"
    assert conn.tracker.active_calls == 0
    assert [a["Action"] for a in server.actions].count("CoreShowChannels") == 2


@pytest.mark.parametrize("status_refused", [False, True])
async def test_the_resync_asks_status_first_and_goes_on_without_it(
        server: FakeAmiServer, connect: Any, facts: Facts, monkeypatch: pytest.MonkeyPatch,
        status_refused: bool) -> None:
    """The resync sends Status (with the tracker's variables) before CoreShowChannels: a call already
    up gets its DID; an Asterisk that refuses Status still gets the call picked up, without it."""
    if status_refused:
        def refuse(client: Any, reply: dict[str, Any], action: dict[str, Any]) -> None:
            server._send(client, {"Response": "Error", **reply, "Message": "Permission denied"})

        monkeypatch.setattr(server, "_status", refuse)
    replay = await server.push("inbound_answered", stop_before="HangupRequest")
    conn = await connect()
    await until(lambda: conn.resyncs == 1)
    await until(lambda: conn.facts_in_hand == 0)
    lists = [a["Action"] for a in server.actions if a["Action"] in ("Status", "CoreShowChannels")]
    assert lists == ["Status", "CoreShowChannels"]
    assert next(a for a in server.actions if a["Action"] == "Status")["Variables"] == (
        "MIXMONITOR_FILENAME,CDR(billsec)")
    call = replay.linkedids[0]
    assert [type(f) for f in facts if f.call_id == call] == [CallStarted, AgentRinging, CallAnswered]
    (started,) = facts.of(CallStarted, call)
    assert started.did == (None if status_refused else "74951234567")
    (answered,) = facts.of(CallAnswered, call)
    assert answered.wait_seconds == (0.0 if status_refused else 2.0)  # whole seconds: 5 s up, 3 s talking


async def test_a_frozen_server_is_caught_by_the_ping_watchdog(server: FakeAmiServer, connect: Any) -> None:
    conn = await connect(ping_interval=0.1, ping_timeout=0.2, connect_timeout=0.5)
    await until(lambda: conn.resyncs == 1)
    frozen = time.monotonic()
    server.freeze()
    await until(lambda: conn.watchdog_aborts == 1)
    TIMINGS["freeze_to_abort_s"] = time.monotonic() - frozen
    assert conn.state != CONNECTED
    server.unfreeze()
    await until(lambda: conn.state == CONNECTED and conn.resyncs == 2)
    TIMINGS["freeze_to_resynced_s"] = time.monotonic() - frozen
    assert conn.watchdog_aborts == 1 and conn.logins == 2


async def test_originate_sends_async_and_is_refused_while_down(
        server: FakeAmiServer, connect: Any, facts: Facts) -> None:
    conn = await connect(backoff_initial=0.3)
    await until(lambda: conn.resyncs == 1)
    answer = await conn.originate("101", "+79161234567", "c2c-42")
    assert answer["Response"] == "Success"
    (sent,) = [a for a in server.actions if a["Action"] == "Originate"]
    assert sent["Async"] == "true" and sent["ActionID"] == "c2c-42" and sent["Channel"] == "PJSIP/101"
    (end,) = await until(lambda: facts.of(CallEnded))
    assert (end.direction, end.status, end.originate_action_id) == ("outbound", "answered", "c2c-42")

    await server.drop()
    await until(lambda: conn.state != CONNECTED)
    with pytest.raises(AmiUnavailable, match="not connected"):
        await conn.originate("101", "+79161234567", "c2c-43")
    await until(lambda: conn.logins == 2 and conn.resyncs == 2)
    assert [a["ActionID"] for a in server.actions if a["Action"] == "Originate"] == ["c2c-42"]  # no replay


async def test_stop_is_quick_in_every_state(server: FakeAmiServer, facts: Facts) -> None:
    async def timed_stop(conn: AmiConnection) -> float:
        started = time.monotonic()
        await conn.stop()
        return time.monotonic() - started

    up = AmiConnection(server.host, server.port, "hub", "hubsecret", on_fact=facts, ping_interval=30)
    await up.start()
    await until(lambda: up.resyncs == 1)
    await server.push("inbound_answered", stop_before="HangupRequest")
    TIMINGS["stop_connected_s"] = await timed_stop(up)

    refused = AmiConnection(server.host, server.port, "hub", "wrong", on_fact=facts)
    await refused.start()
    await until(lambda: refused.state == AUTH_FAILED)  # now waiting auth_retry (30 s)
    TIMINGS["stop_auth_failed_s"] = await timed_stop(refused)

    await server.stop()
    away = AmiConnection(server.host, server.port, "hub", "hubsecret", on_fact=facts, backoff_initial=10,
                         backoff_max=10)
    await away.start()
    await until(lambda: away.attempts >= 1 and away.state == "disconnected")
    TIMINGS["stop_backing_off_s"] = await timed_stop(away)

    # a stop that waited for the backoff (5-10 s with the jitter) or the auth retry (30 s) would take that
    # long: 4 s is far below both and far above a stop on a loaded 2-core box (milliseconds when quiet)
    assert max(TIMINGS[k] for k in ("stop_connected_s", "stop_auth_failed_s", "stop_backing_off_s")) < 4.0
    assert up.health() == refused.health() == away.health() == "disconnected"
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")]
    print("\nAMI timings:", {k: round(v, 4) for k, v in TIMINGS.items()})


async def test_calls_go_on_concurrently_each_in_its_own_order(
        server: FakeAmiServer, connect: Any) -> None:
    """A call whose facts are slow to hand on (its unit of work waits) holds up no other call; each
    call's facts still arrive in order."""
    gate = asyncio.Event()
    blocked: list[str] = []
    seen: list[Fact] = []

    async def slow(fact: Fact) -> None:
        if not blocked:
            blocked.append(fact.call_id)
        if fact.call_id == blocked[0]:
            await gate.wait()
        seen.append(fact)

    conn = await connect(on_fact=slow)
    await until(lambda: conn.resyncs == 1)
    first = await server.push("inbound_answered")
    second = await server.push("inbound_answered", numbers={"+79161234567": "+79035550011"})
    a, b = first.linkedids[0], second.linkedids[0]
    await until(lambda: [f for f in seen if isinstance(f, CallEnded) and f.call_id == b])
    assert blocked == [a] and not [f for f in seen if f.call_id == a]
    assert conn.facts_in_hand == 4  # call A's, waiting in its lane
    gate.set()
    await until(lambda: [f for f in seen if isinstance(f, CallEnded) and f.call_id == a])
    tracker = Tracker(trunks=["trunk"], extensions=["101", "102", "103"])
    expected = tracker.feed_all(first.messages + second.messages)
    for key in (a, b):
        assert [f for f in seen if f.call_id == key] == [f for f in expected if f.call_id == key]
    assert conn.facts_in_hand == 0


async def test_stop_hands_on_what_the_lanes_hold(server: FakeAmiServer, connect: Any) -> None:
    seen: list[Fact] = []

    async def slowish(fact: Fact) -> None:
        await asyncio.sleep(0.01)
        seen.append(fact)

    conn = await connect(on_fact=slowish)
    await until(lambda: conn.resyncs == 1)
    await server.push("inbound_answered")
    await server.push("inbound_missed", numbers={"+79161234567": "+79035550011"})
    def ends_handed() -> int:  # through on_fact already, or waiting in a lane
        waiting = [f for lane in conn._lanes.values() for f in lane if all(f is not g for g in seen)]
        return len([f for f in seen + waiting if isinstance(f, CallEnded)])

    # both calls went through the tracker; some of their facts still wait in the lanes
    await until(lambda: ends_handed() == 2 and conn.facts_in_hand > 0, within=5)
    await conn.stop()
    assert len([f for f in seen if isinstance(f, CallEnded)]) == 2
    assert conn.facts_in_hand == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")]
