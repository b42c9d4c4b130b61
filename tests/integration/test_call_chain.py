"""The captured AMI traces through the pure tracker, the telephony→CRM bridge and the call intake into
the database and the bus (no socket: the AMI connection is tested against the fake Asterisk
elsewhere) — on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.bus import Event
from hub.crm import deals
from hub.crm.call_intake import CallIntake
from hub.crm.models import Call, ContactPoint, Lead, Task, TimelineEntry, UserExtension
from hub.crm.ports import CallSettings
from hub.db import Database
from hub.telephony.ami_parse import iter_jsonl
from hub.telephony.crm_bridge import CrmBridge
from hub.telephony.tracker import Tracker
from tests.integration.test_deals import make_client, make_user, record
from tests.paths import AMI_FIXTURES

FIXTURES = AMI_FIXTURES
CALLER = "+79161234567"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="the AMI fixtures are not here")


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        manager = await make_user(s, "manager", "manager", "Мария")
        agents = {}
        for ext in ("101", "102", "103", "104"):
            agents[ext] = await make_user(s, f"agent{ext}", "agent", f"Агент {ext}")
            s.add(UserExtension(extension=ext, user_id=agents[ext].id))
        client = await make_client(s, "ООО Ромашка", manager.id, phone=CALLER)
    async with database.transaction() as s:
        deal = await deals.create_deal(s, manager, {"title": "Поставка", "client_id": client.id})
    return {"manager": manager, "agents": agents, "client": client, "deal": deal}


async def play(database: Database, *names: str, settings: CallSettings | None = None) -> list[Event]:
    published = record(database)
    bridge = CrmBridge(CallIntake(database, settings or CallSettings()))
    tracker = Tracker(trunks=["trunk"], extensions=("101", "102", "103", "104"))
    for name in names:
        for message in iter_jsonl(FIXTURES / f"{name}.jsonl"):
            for fact in tracker.feed(message):
                await bridge(fact)
    return published


async def calls(database: Database) -> list[Call]:
    async with database.reading() as s:
        return list((await s.scalars(select(Call).order_by(Call.id))).all())


async def test_inbound_answered_pops_and_logs_on_the_deal(database: Database, world: dict) -> None:
    published = await play(database, "inbound_answered")
    agent = world["agents"]["101"]
    [ring] = [e for e in published if e.name == "call.ringing"]
    assert ring.users == {agent.id} and ring.data["number"] == CALLER
    assert ring.data["matches"][0]["id"] == world["client"].id
    [call] = await calls(database)
    assert (call.direction, call.status, call.external_number) == ("inbound", "answered", CALLER)
    assert call.agent_id == agent.id and call.deal_id == world["deal"]["id"]
    assert call.talk_seconds == 3 and call.wait_seconds == 2 and call.hangup_cause == 16
    assert call.recording == "inbound-20261123-164016-79161234567-101-1795452014.1.wav"
    names = [e.name for e in published]
    assert names.index("call.ringing") < names.index("call.answered") < names.index("call.ended")
    async with database.reading() as s:
        entry = await s.get(TimelineEntry, call.timeline_entry_id)
    assert entry is not None and entry.deal_id == world["deal"]["id"]


async def test_missed_then_click_to_call_completes_the_callback(database: Database, world: dict) -> None:
    await play(database, "inbound_missed")
    async with database.reading() as s:
        [task] = (await s.scalars(select(Task))).all()
    assert task.kind == "callback" and task.assignee_id == world["manager"].id and task.completed_at is None
    await play(database, "click_to_call")
    outbound = (await calls(database))[-1]
    assert outbound.direction == "outbound" and outbound.status == "answered"
    assert outbound.agent_id == world["agents"]["101"].id
    async with database.reading() as s:
        task = await s.get(Task, task.id)
    assert task is not None and task.completed_at is not None


async def test_queue_pops_on_each_agent_rung_and_closes_on_all(database: Database, world: dict) -> None:
    published = await play(database, "queue_answered")
    a101, a102 = world["agents"]["101"].id, world["agents"]["102"].id
    assert [e.users for e in published if e.name == "call.ringing"] == [{a101}, {a102}]
    [answered] = [e for e in published if e.name == "call.answered"]
    assert answered.users == {a101, a102} and answered.data["agent"]["id"] == a102
    [call] = await calls(database)
    assert call.status == "answered" and call.agent_id == a102


async def test_unknown_caller_abandoned_in_the_queue(database: Database, world: dict) -> None:
    async with database.transaction() as s:
        await s.execute(TimelineEntry.__table__.delete())
        await s.execute(ContactPoint.__table__.delete())  # nobody knows the caller now
    await play(database, "queue_abandoned", settings=CallSettings(unknown_caller="auto"))
    async with database.reading() as s:
        [lead] = (await s.scalars(select(Lead))).all()
        [task] = (await s.scalars(select(Task))).all()
    [call] = await calls(database)
    assert lead.unsorted and call.lead_id == lead.id and call.status in ("abandoned", "missed")
    assert task.lead_id == lead.id and task.assignee_id == world["agents"]["101"].id


async def test_internal_call_logs_no_person(database: Database, world: dict) -> None:
    await play(database, "internal_call", settings=CallSettings(unknown_caller="auto"))
    [call] = await calls(database)
    assert call.direction == "internal" and call.client_id is None and call.lead_id is None
    async with database.reading() as s:
        assert (await s.scalars(select(Lead))).all() == []
