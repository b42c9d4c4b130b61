"""Calls that end while the hub is down: the hub is stopped with a call up, the call ends at the fake
Asterisk, and a new hub process (a new app over the same database) starts, logs in and resyncs.
The call the earlier run left ringing or talking ends with the last moment known of it and what
follows from it; a call still up at the new login stays open and ends when Asterisk says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from hub.config import Config
from hub.crm import call_intake, users
from hub.crm.models import Call, Task
from hub.db import Database
from hub.telephony.ami import CONNECTED
from tests.fakes.ami_server import LOGIN_ARTIFACTS, FakeAmiServer, Replay, load_trace
from tests.integration import test_telephony_chain
from tests.integration.conftest import until

config = test_telephony_chain.config  # the hub's [asterisk] on the fake Asterisk below


@pytest.fixture
async def ami_server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        yield fake


@pytest.fixture
async def agent(database: Database) -> int:
    async with database.transaction() as s:
        created = await users.create_or_update_user(s, "agent", "Ivan-secret-2026", "agent",
                                                    name="Иван Агентов", extensions=["101"])
    return int(created["id"])


@asynccontextmanager
async def running_hub(config: Config) -> AsyncIterator[web.Application]:
    """One run of the hub: started as ``crmhub run`` starts it (migrate, connect), then stopped."""
    from hub.app import AMI, create_app

    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        ami = app[AMI]
        await until(lambda: ami.state == CONNECTED and "101" in (ami.tracker.extensions or ()))
        yield app
    finally:
        await runner.cleanup()


def index_of(scenario: str, event: str) -> int:
    """Where ``event`` first comes in a trace (as ``push`` counts: events, login artefacts out)."""
    events = [m for m in load_trace(scenario) if "Event" in m and m["Event"] not in LOGIN_ARTIFACTS]
    return next(i for i, m in enumerate(events) if m["Event"] == event)


async def the_call(app: web.Application, replay: Replay) -> Call | None:
    from hub.web.keys import DB

    async with app[DB].reading() as s:
        return (await s.scalars(select(Call).where(Call.linkedid == replay.linkedids[0]))).first()


async def resynced(app: web.Application) -> None:
    from hub.app import AMI

    await until(lambda: app[AMI].resync_closings >= 1)


# the hub stops while 101 rings (before the dial's end) or while they talk (before the hangup)
@pytest.mark.parametrize(("scenario", "cut", "state"), [("inbound_missed", "DialEnd", "ringing"),
                                                         ("inbound_answered", "HangupRequest", "talking")])
async def test_a_call_that_ended_while_the_hub_was_down_ends_at_the_next_start(
        config: Config, ami_server: FakeAmiServer, agent: int, scenario: str, cut: str, state: str) -> None:
    async with running_hub(config) as first:
        replay = await ami_server.push(scenario, stop_before=cut)
        left = await until(lambda: _in_state(first, replay, state))
    # the hub is down; the call ends at the PBX
    await ami_server.push(scenario, start_at=index_of(scenario, cut), rewriter=replay.rewriter)
    assert not ami_server.channels

    async with running_hub(config) as second:
        await resynced(second)
        call = await until(lambda: _ended(second, replay))
        from hub.web.keys import DB

        async with second[DB].reading() as s:
            callbacks = (await s.scalars(select(Task).where(Task.id == call.callback_task_id))).all()
    assert call.agent_id == agent and call.external_number == left.external_number
    if state == "ringing":  # nobody took it: missed, at the last moment known (it rang), a callback due
        assert call.status == "missed" and call.ended_at == left.started_at and call.talk_seconds == 0
        assert len(callbacks) == 1 and callbacks[0].completed_at is None
    else:  # answered: ends at the answer (the talk time after it is unknown); no callback
        assert call.status == "answered" and call.answered_at == left.answered_at
        assert call.ended_at == left.answered_at and call.talk_seconds == 0
        assert call.timeline_entry_id is not None and not callbacks


async def test_a_call_still_up_at_the_next_start_stays_open_and_ends_when_asterisk_says_so(
        config: Config, ami_server: FakeAmiServer, agent: int) -> None:
    async with running_hub(config) as first:
        replay = await ami_server.push("inbound_answered", stop_before="HangupRequest")
        await until(lambda: _in_state(first, replay, "talking"))
    assert ami_server.channels  # still talking at the PBX

    async with running_hub(config) as second:
        await resynced(second)
        call = await the_call(second, replay)
        assert call is not None and call.ended_at is None and call.status == "talking"
        await ami_server.push("inbound_answered", start_at=index_of("inbound_answered", "HangupRequest"),
                              rewriter=replay.rewriter)
        call = await until(lambda: _ended(second, replay))
    assert call.status == "answered" and call.agent_id == agent


async def test_closing_leaves_alone_what_the_pbx_still_has_and_what_this_run_handles(
        database: Database, agent: int) -> None:
    """The core's side alone: rows left ringing and talking; one of them is live, one is this
    intake's own; only the third ends."""
    from datetime import UTC, datetime, timedelta

    from hub.crm.ports import CallAnsweredFact, CallRinging

    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    earlier = call_intake.CallIntake(database)  # the run before
    for key, number in (("live", "+79161110001"), ("left", "+79161110002")):
        await earlier.ringing(CallRinging(call_key=key, direction="inbound", number=number, did=None,
                                          extension="101", at=at))
    await earlier.answered(CallAnsweredFact(call_key="left", direction="inbound", number="+79161110002",
                                            did=None, extension="101", at=at + timedelta(seconds=7),
                                            wait_seconds=7))
    now = call_intake.CallIntake(database)  # this run
    await now.ringing(CallRinging(call_key="mine", direction="inbound", number="+79161110003", did=None,
                                  extension="101", at=at))

    closed = await now.close_unfinished(frozenset({"live"}))

    assert [c["status"] for c in closed] == ["answered"]
    async with database.reading() as s:
        rows = {c.linkedid: c for c in (await s.scalars(select(Call))).all()}
    assert rows["live"].ended_at is None and rows["mine"].ended_at is None
    left = rows["left"]
    assert left.status == "answered" and left.wait_seconds == 7 and left.talk_seconds == 0
    assert _naive(left.ended_at) == _naive(at + timedelta(seconds=7))
    assert await now.close_unfinished(frozenset({"live"})) == []  # once is enough


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if value is not None else None


async def _in_state(app: web.Application, replay: Replay, state: str) -> Call | None:
    call = await the_call(app, replay)
    return call if call is not None and call.status == state and call.ended_at is None else None


async def _ended(app: web.Application, replay: Replay) -> Call | None:
    call = await the_call(app, replay)
    return call if call is not None and call.ended_at is not None else None
