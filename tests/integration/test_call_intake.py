"""Call intake (hub.crm.call_intake): screen-pop, unknown callers, the call log, missed calls and callbacks,
and the events it publishes — on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hub.crm import deals
from hub.crm.call_intake import scheduling as intake
from hub.crm.models import Call, ContactPoint, Deal, Lead, Notification, Task, TimelineEntry, UserExtension
from hub.crm.ports import CallAnsweredFact, CallEndedFact, CallRingEnded, CallRinging, CallSettings
from hub.db import Database
from tests.integration.test_deals import make_client, make_user, record

T0 = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)
CLIENT_PHONE = "+79161234567"
UNKNOWN = "+79035550099"
AUTO = CallSettings(unknown_caller="auto", ignored_numbers=("8 (800) 555-35-35",))
ASK = CallSettings(unknown_caller="ask")


@pytest.fixture
async def world(database: Database) -> dict[str, Any]:
    async with database.transaction() as s:
        anna = await make_user(s, "anna", "agent", "Анна")
        boris = await make_user(s, "boris", "agent", "Борис")
        manager = await make_user(s, "manager", "manager", "Мария")
        s.add_all([UserExtension(extension="101", user_id=anna.id),
                   UserExtension(extension="102", user_id=boris.id)])
        client = await make_client(s, "ООО Ромашка", manager.id, phone=CLIENT_PHONE)
    async with database.transaction() as s:
        deal = await deals.create_deal(s, manager, {"title": "Поставка", "client_id": client.id,
                                                    "responsible_id": manager.id})
    return {"anna": anna, "boris": boris, "manager": manager, "client": client, "deal": deal}


def ringing(key: str, number: str | None, ext: str = "101", **kw: Any) -> CallRinging:
    return CallRinging(call_key=key, direction=kw.pop("direction", "inbound"), number=number,
                       did="+74951234567", extension=ext, at=T0, started_at=T0, **kw)


def ended(key: str, number: str | None, status: str = "answered", ext: str | None = "101",
          rung: tuple[str, ...] = ("101",), direction: str = "inbound", **kw: Any) -> CallEndedFact:
    answered = status == "answered"
    return CallEndedFact(
        call_key=key, direction=direction, status=status, number=number, did="+74951234567",  # type: ignore[arg-type]
        agent_extension=ext, started_at=T0, answered_at=T0 + timedelta(seconds=5) if answered else None,
        ended_at=T0 + timedelta(seconds=65 if answered else 20), wait_seconds=5 if answered else 20,
        talk_seconds=60 if answered else 0, hangup_cause=16, recording="rec-1.wav" if answered else None,
        rung_extensions=rung, **kw)


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_known_client_rings_the_agent_with_the_client_and_open_deals(
        database: Database, world: dict) -> None:
    published = record(database)
    # a Russian trunk presents the number without +7
    pop = await intake.call_ringing(database, ringing("L1", "89161234567"), AUTO)
    assert pop["number"] == CLIENT_PHONE and pop["direction"] == "inbound" and pop["unknown"] is False
    assert isinstance(pop["call_id"], int) and pop["extension"] == "101"
    [match] = pop["matches"]
    assert match["type"] == "client" and match["id"] == world["client"].id and match["name"] == "ООО Ромашка"
    assert [d["id"] for d in match["open_deals"]] == [world["deal"]["id"]]
    assert match["manager"] == {"id": world["manager"].id, "name": "Мария"}
    assert isinstance(match["last_interactions"], list) and match["open_tasks"] == []
    [event] = [e for e in published if e.name == "call.ringing"]
    assert event.users == {world["anna"].id} and event.data == pop
    assert await count(database, Lead) == 0


async def test_screen_pop_carries_the_last_three_interactions_and_open_tasks(
        database: Database, world: dict) -> None:
    for i in range(4):
        await intake.call_ended(database, ended(f"H{i}", CLIENT_PHONE), AUTO)
    await intake.call_ended(database, ended("H-missed", CLIENT_PHONE, "missed"), AUTO)
    pop = await intake.call_ringing(database, ringing("L2", CLIENT_PHONE), AUTO)
    match = pop["matches"][0]
    assert len(match["last_interactions"]) == 3
    assert all(e["kind"] == "call" for e in match["last_interactions"])
    assert [e["status"] for e in match["last_interactions"]] == ["missed", "answered", "answered"]
    assert match["last_interactions"][0]["occurred_at"] == T0.isoformat().replace("+00:00", "Z") or \
        match["last_interactions"][0]["occurred_at"].startswith("2030-06-15T09:00")
    assert [t["kind"] for t in match["open_tasks"]] == ["callback"]
    assert match["manager"] == {"id": world["manager"].id, "name": "Мария"}


async def test_unknown_number_auto_creates_an_unsorted_lead_once(database: Database, world: dict) -> None:
    published = record(database)
    pop = await intake.call_ringing(database, ringing("L3", "9035550099"), AUTO)
    assert pop["unknown"] is False and pop["lead_created"]
    [match] = pop["matches"]
    assert match["type"] == "lead" and match["name"] == UNKNOWN
    # a queue rings a second agent: the same lead, no second one
    pop2 = await intake.call_ringing(database, ringing("L3", UNKNOWN, "102"), AUTO)
    assert pop2["lead_created"] is None and pop2["matches"][0]["id"] == match["id"]
    async with database.reading() as s:
        [lead] = (await s.scalars(select(Lead))).all()
        call = await s.scalar(select(Call).where(Call.linkedid == "L3"))
    assert lead.unsorted and lead.source == "звонок" and lead.manager_id is None
    assert call.lead_id == lead.id and set(call.rung_user_ids) == {world["anna"].id, world["boris"].id}
    rings = [e for e in published if e.name == "call.ringing"]
    assert [e.users for e in rings] == [{world["anna"].id}, {world["boris"].id}]
    # the call, answered, lands in the lead's timeline
    await intake.call_ended(database, ended("L3", UNKNOWN, rung=("101", "102")), AUTO)
    async with database.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.external_key == "call:L3"))
    assert entry is not None and entry.lead_id == lead.id and entry.kind == "call"


async def test_unknown_number_ask_creates_no_lead(database: Database, world: dict) -> None:
    pop = await intake.call_ringing(database, ringing("L4", UNKNOWN), ASK)
    assert pop["unknown"] is True and pop["matches"] == [] and pop["lead_created"] is None
    assert pop["unknown_caller"] == "ask"
    await intake.call_ended(database, ended("L4", UNKNOWN), ASK)
    assert await count(database, Lead) == 0
    assert await count(database, Call, Call.linkedid == "L4", Call.ended_at.is_not(None)) == 1
    assert await count(database, TimelineEntry, TimelineEntry.kind == "call") == 0


async def test_ignored_number_makes_no_lead_and_no_callback(database: Database, world: dict) -> None:
    pop = await intake.call_ringing(database, ringing("L5", "+78005553535"), AUTO)
    assert pop["ignored"] is True and pop["lead_created"] is None and pop["matches"] == []
    await intake.call_ended(database, ended("L5", "+78005553535", "missed"), AUTO)
    assert await count(database, Lead) == 0
    assert await count(database, Task) == 0
    assert await count(database, Notification) == 0
    assert await count(database, Call, Call.status == "missed") == 1


async def test_answered_call_is_logged_once_on_the_single_open_deal(database: Database, world: dict) -> None:
    published = record(database)
    await intake.call_ringing(database, ringing("L6", CLIENT_PHONE), AUTO)
    answered = await intake.call_answered(database, CallAnsweredFact(
        call_key="L6", direction="inbound", number=CLIENT_PHONE, did=None, extension="101",
        at=T0 + timedelta(seconds=5), wait_seconds=5), AUTO)
    assert answered is not None and answered["agent"]["id"] == world["anna"].id
    result = await intake.call_ended(database, ended("L6", CLIENT_PHONE), AUTO)
    assert result is not None
    assert result["status"] == "answered" and result["talk_seconds"] == 60 and result["wait_seconds"] == 5
    assert result["agent"] == {"id": world["anna"].id, "name": "Анна", "extension": "101"}
    assert result["client_id"] == world["client"].id and result["deal_id"] == world["deal"]["id"]
    assert result["recording_url"] == f"/api/v1/calls/{result['id']}/recording"
    assert result["external_number"] == CLIENT_PHONE and result["hangup_cause"] == 16
    # the same end fact again (AMI resync, a replay): nothing new
    assert await intake.call_ended(database, ended("L6", CLIENT_PHONE), AUTO) is None
    assert await count(database, Call) == 1
    async with database.reading() as s:
        [entry] = (await s.scalars(select(TimelineEntry).where(TimelineEntry.kind == "call"))).all()
        call = await s.scalar(select(Call))
    assert entry.deal_id == world["deal"]["id"] and entry.client_id == world["client"].id
    assert entry.external_key == "call:L6" and entry.direction == "in" and entry.author_id == world["anna"].id
    assert entry.payload["status"] == "answered" and entry.payload["call_id"] == call.id
    assert call.timeline_entry_id == entry.id
    names = [e.name for e in published]
    assert names.count("call.ringing") == 1 and names.count("call.answered") == 1
    assert names.count("call.ended") == 1
    [answered_event] = [e for e in published if e.name == "call.answered"]
    assert answered_event.users == {world["anna"].id}
    [end_event] = [e for e in published if e.name == "call.ended"]
    assert end_event.users == {world["anna"].id}
    assert end_event.data["status"] == "answered" and end_event.data["talk_seconds"] == 60


async def test_placement_most_recently_active_deal_else_the_person(database: Database, world: dict) -> None:
    async with database.transaction() as s:
        other = await deals.create_deal(s, world["manager"],
                                        {"title": "Монтаж", "client_id": world["client"].id})
        await s.execute(update(Deal).where(Deal.id == world["deal"]["id"])
                        .values(last_activity_at=T0 + timedelta(days=1)))
        await s.execute(update(Deal).where(Deal.id == other["id"]).values(last_activity_at=T0))
    result = await intake.call_ended(database, ended("P1", CLIENT_PHONE), AUTO)
    assert result is not None and result["deal_id"] == world["deal"]["id"]
    # a client with no open deal: the client's own timeline
    async with database.transaction() as s:
        lone = await make_client(s, "ИП Одинокий", None, phone="+79261112233")
    result = await intake.call_ended(database, ended("P2", "+79261112233"), AUTO)
    assert result is not None and result["deal_id"] is None and result["client_id"] == lone.id
    async with database.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.external_key == "call:P2"))
    assert entry is not None and entry.deal_id is None and entry.client_id == lone.id


async def test_missed_calls_make_one_callback_task_done_by_an_answered_outbound_call(
        database: Database, world: dict) -> None:
    published = record(database)
    manager = world["manager"]
    await intake.call_ringing(database, ringing("M1", CLIENT_PHONE), AUTO)
    result = await intake.call_ended(database, ended("M1", CLIENT_PHONE, "missed"), AUTO)
    assert result is not None and result["status"] == "missed" and result["callback_task_id"]
    async with database.reading() as s:
        [task] = (await s.scalars(select(Task))).all()
        [note] = (await s.scalars(select(Notification))).all()
    assert task.kind == "callback" and task.assignee_id == manager.id and task.completed_at is None
    assert task.client_id == world["client"].id and task.due_at is not None
    assert note.user_id == manager.id and note.kind == "missed_call" and note.payload["task_id"] == task.id
    bell = [e for e in published if e.name == "notification.created"]
    assert [e.users for e in bell] == [{manager.id}]
    # the call still goes to the deal's timeline, flagged missed (the desktop's inbound list reads it)
    async with database.reading() as s:
        entry = await s.scalar(select(TimelineEntry).where(TimelineEntry.external_key == "call:M1"))
    assert entry is not None and entry.payload["status"] == "missed"

    # the same number misses again (abandoned in the queue): the same task, a second bell item
    second = await intake.call_ended(
        database, ended("M2", "9161234567", "abandoned", ext=None, rung=()), AUTO)
    assert second is not None and second["callback_task_id"] == task.id
    assert await count(database, Task) == 1
    assert await count(database, Notification) == 2
    async with database.reading() as s:
        task = await s.get(Task, task.id)
        last = await s.scalar(select(Notification).order_by(Notification.id.desc()))
    assert task is not None and task.description.count("Пропущенный звонок") == 2
    assert last is not None and last.payload["count"] == 2

    # an outbound call to the number that is not answered changes nothing
    await intake.call_ended(database, ended("O1", CLIENT_PHONE, "busy", direction="outbound"), AUTO)
    assert await count(database, Task, Task.completed_at.is_(None)) == 1
    # answered: the callback is done
    await intake.call_ended(database, ended("O2", "+7 916 123-45-67", direction="outbound", rung=()), AUTO)
    async with database.reading() as s:
        task = await s.get(Task, task.id)
        done = await s.scalar(select(TimelineEntry).where(TimelineEntry.kind == "task"))
        outbound = await s.scalar(select(Call).where(Call.linkedid == "O2"))
    assert task is not None and task.completed_at is not None and task.percent == 100
    assert done is not None and done.payload["event"] == "completed"
    assert outbound is not None and outbound.direction == "outbound" and outbound.agent_id == world["anna"].id
    # the next miss opens a new task
    await intake.call_ended(database, ended("M3", CLIENT_PHONE, "missed"), AUTO)
    assert await count(database, Task, Task.completed_at.is_(None)) == 1
    assert await count(database, Task) == 2


async def test_missed_unknown_caller_goes_to_the_rung_agents(database: Database, world: dict) -> None:
    published = record(database)
    await intake.call_ringing(database, ringing("Q1", UNKNOWN, "101"), ASK)
    await intake.call_ringing(database, ringing("Q1", UNKNOWN, "102"), ASK)
    await intake.call_ended(database, ended("Q1", UNKNOWN, "missed", ext="102", rung=("101", "102")), ASK)
    async with database.reading() as s:
        [task] = (await s.scalars(select(Task))).all()
        notes = (await s.scalars(select(Notification).order_by(Notification.user_id))).all()
    assert task.assignee_id == world["anna"].id and task.client_id is None and UNKNOWN in task.subject
    assert sorted(n.user_id for n in notes) == sorted([world["anna"].id, world["boris"].id])
    [end_event] = [e for e in published if e.name == "call.ended"]
    assert end_event.users == {world["anna"].id, world["boris"].id}
    assert end_event.data["status"] == "missed"


async def test_answered_goes_to_every_agent_rung(database: Database, world: dict) -> None:
    published = record(database)
    await intake.call_ringing(database, ringing("Q2", CLIENT_PHONE, "101"), AUTO)
    await intake.call_ringing(database, ringing("Q2", CLIENT_PHONE, "102"), AUTO)
    await intake.call_answered(database, CallAnsweredFact(
        call_key="Q2", direction="inbound", number=CLIENT_PHONE, did=None, extension="102"), AUTO)
    [event] = [e for e in published if e.name == "call.answered"]
    assert event.users == {world["anna"].id, world["boris"].id}
    assert event.data["agent"]["id"] == world["boris"].id and event.data["call_id"]


async def test_a_queue_moving_on_closes_the_first_agents_popup_only(database: Database, world: dict) -> None:
    published = record(database)
    door = intake.CallIntake(database, AUTO)

    def stopped(ext: str) -> CallRingEnded:
        return CallRingEnded(call_key="Q3", direction="inbound", number=CLIENT_PHONE, did=None, extension=ext,
                             reason="NOANSWER")

    await door.ringing(ringing("Q3", CLIENT_PHONE, "101"))
    sent = await door.ring_ended(stopped("101"))  # 8 s: the queue moves on to 102
    await door.ringing(ringing("Q3", CLIENT_PHONE, "102"))
    [event] = [e for e in published if e.name == "call.ring_ended"]
    assert event.users == {world["anna"].id} and sent == event.data
    assert event.data["call_id"] == next(e.data["call_id"] for e in published if e.name == "call.recorded")
    assert (event.data["extension"], event.data["reason"]) == ("101", "NOANSWER")
    await door.answered(answered_fact("Q3", CLIENT_PHONE, "102"))
    assert await door.ring_ended(stopped("103")) is None  # answered: call.answered closed every popup
    assert await door.ring_ended(CallRingEnded(call_key="nope", direction="inbound", number=None, did=None,
                                               extension="101")) is None  # an unknown call
    assert await door.ring_ended(stopped("999")) is None
    assert [e.name for e in published if e.name == "call.ring_ended"] == ["call.ring_ended"]


async def test_the_callers_display_name_names_the_new_lead_and_a_hidden_number_makes_none(
        database: Database, world: dict[str, Any]) -> None:
    pop = await intake.call_ringing(database, ringing("N1", "+79169990011", caller_name="Иванов Пётр"), AUTO)
    assert pop["caller_name"] == "Иванов Пётр" and pop["lead_created"] is not None
    async with database.reading() as s:
        lead = await s.get(Lead, pop["lead_created"])
    assert lead is not None and lead.name == "Иванов Пётр"
    hidden = await intake.call_ringing(database, ringing("N2", None, hidden_number=True), AUTO)
    assert hidden["hidden_number"] and hidden["unknown"] and hidden["lead_created"] is None
    await intake.call_ended(database, ended("N2", None, "missed"), AUTO)
    async with database.reading() as s:
        call = (await s.scalars(select(Call).where(Call.linkedid == "N2"))).one()
        leads = (await s.scalars(select(Lead))).all()
    assert call.status == "missed" and call.lead_id is None and len(leads) == 1


async def test_an_internal_call_pops_with_the_colleagues_name(database: Database,
                                                           world: dict[str, Any]) -> None:
    pop = await intake.call_ringing(database, ringing("I0", None, ext="101", direction="internal",
                                                      caller_extension="102"), AUTO)
    assert not pop["unknown"] and pop["lead_created"] is None
    assert [(m["type"], m["id"], m["name"]) for m in pop["matches"]] == [("user", world["boris"].id, "Борис")]
    stranger = await intake.call_ringing(database, ringing("I9", None, direction="internal",
                                                           caller_extension="109"), AUTO)
    assert stranger["unknown"] and stranger["matches"] == []  # an extension nobody has: no lead either
    async with database.reading() as s:
        calls = (await s.scalars(select(Call).where(Call.linkedid.in_(["I0", "I9"])))).all()
    assert all(c.client_id is None and c.lead_id is None for c in calls)


async def test_internal_calls_touch_no_person_and_a_rolled_back_fact_publishes_nothing(
        database: Database, world: dict) -> None:
    result = await intake.call_ended(database, ended("I1", None, direction="internal"), AUTO)
    assert result is not None and result["client_id"] is None and result["timeline_entry_id"] is None
    published = record(database)
    with pytest.raises(Exception):  # noqa: B017 - a bad key is refused before anything is written
        await intake.call_ringing(database, ringing("", CLIENT_PHONE), AUTO)
    assert published == []


async def test_concurrent_facts_of_one_call_make_one_row(database: Database, world: dict) -> None:
    await asyncio.gather(intake.call_ringing(database, ringing("C1", CLIENT_PHONE, "101"), AUTO),
                         intake.call_ringing(database, ringing("C1", CLIENT_PHONE, "102"), AUTO))
    await asyncio.gather(*(intake.call_ended(database, ended("C1", CLIENT_PHONE), AUTO) for _ in range(3)))
    assert await count(database, Call) == 1
    assert await count(database, TimelineEntry, TimelineEntry.kind == "call") == 1


async def test_a_colleagues_mobile_is_no_unknown_caller(database: Database, world: dict) -> None:
    from hub.crm.models import ContactPoint

    async with database.transaction() as s:
        s.add(ContactPoint(kind="phone", value="+79267778899", raw="+79267778899", tail="9267778899",
                           user_id=world["boris"].id))
    pop = await intake.call_ringing(database, ringing("U1", "+79267778899"), AUTO)
    assert pop["unknown"] is False and pop["lead_created"] is None
    assert [m["type"] for m in pop["matches"]] == ["user"]
    await intake.call_ended(database, ended("U1", "+79267778899"), AUTO)
    assert await count(database, Lead) == 0


async def test_the_lead_made_for_an_unknown_caller_is_announced_as_the_api_shows_it(
        database: Database, world: dict) -> None:
    from hub.crm import leads

    published = record(database)
    pop = await intake.call_ringing(database, ringing("L9", "9035550099"), AUTO)
    [created] = [e for e in published if e.name == "lead.created"]
    async with database.reading() as s:
        assert created.data["lead"] == await leads.get_lead(s, world["manager"], pop["lead_created"])
    assert created.scope == {"manager_id": None, "unassigned": True}


def answered_fact(key: str, number: str, ext: str = "101") -> CallAnsweredFact:
    return CallAnsweredFact(call_key=key, direction="inbound", number=number, did=None, extension=ext,
                            at=T0 + timedelta(seconds=5), wait_seconds=5)


async def test_the_intake_applies_waiting_facts_together_rings_first_each_call_in_order(
        database: Database, world: dict) -> None:
    published = record(database)
    door = intake.CallIntake(database, AUTO)
    numbers = [f"+7903555{i:04d}" for i in range(11)]
    # every fact arrives at once: call B0's three, then five other calls end, then five more ring
    results = await asyncio.gather(
        door.ringing(ringing("B0", numbers[0])), door.answered(answered_fact("B0", numbers[0])),
        door.ended(ended("B0", numbers[0])),
        *(door.ended(ended(f"E{i}", numbers[i], status="missed")) for i in range(1, 6)),
        *(door.ringing(ringing(f"R{i}", numbers[i], "102")) for i in range(6, 11)),
    )
    assert door.applied == 13 and door.units < door.applied
    names = [(e.name, e.data.get("call_key")) for e in published if e.name.startswith("call.")]
    # every ring popped before its unit of work (no call id yet), then got its ids after it
    pops = [e.data for e in published if e.name == "call.ringing"]
    assert {p["call_key"] for p in pops} == {"B0", "R6", "R7", "R8", "R9", "R10"}
    assert all(p["call_id"] is None for p in pops)
    assert len({e.data["call_id"] for e in published if e.name == "call.recorded"}) == 6
    assert [n for n in names if n[1] == "B0"] == [("call.ringing", "B0"), ("call.recorded", "B0"),
                                                 ("call.answered", "B0"), ("call.ended", "B0")]
    assert results[2]["status"] == "answered" and results[2]["wait_seconds"] == 5
    async with database.reading() as s:
        stored = {c.linkedid: c for c in (await s.scalars(select(Call))).all()}
    assert len(stored) == 11 and stored["E3"].status == "missed" and stored["R7"].ended_at is None
    assert await count(database, Lead) == 11  # one lead per unknown number
    assert await count(database, Task, Task.kind == "callback") == 5


async def test_a_failing_fact_fails_alone_the_batch_goes_on(database: Database, world: dict) -> None:
    published = record(database)
    door = intake.CallIntake(database, AUTO)
    good, bad, other = await asyncio.gather(
        door.ringing(ringing("G1", CLIENT_PHONE)), door.ringing(ringing("x" * 201, CLIENT_PHONE)),
        door.ended(ended("G2", UNKNOWN)), return_exceptions=True)
    assert isinstance(bad, Exception) and not isinstance(good, Exception) and not isinstance(other, Exception)
    assert good["matches"][0]["id"] == world["client"].id and other["status"] == "answered"
    names = sorted(e.name for e in published if e.name.startswith("call."))
    # the popup went out before its unit (no id yet), the id after it; the rolled-back attempt
    # published nothing twice, and the refused key no popup at all
    assert names == ["call.ended", "call.recorded", "call.ringing"]
    assert await count(database, Call) == 2


async def test_calls_from_one_unknown_number_at_once_make_one_lead(database: Database, world: dict) -> None:
    published = record(database)
    door = intake.CallIntake(database, AUTO)
    pops = await asyncio.gather(door.ringing(ringing("D1", UNKNOWN)),
                                door.ringing(ringing("D2", UNKNOWN, "102")),
                                door.ringing(ringing("D3", UNKNOWN)))
    assert await count(database, Lead) == 1
    assert len([p for p in pops if p["lead_created"]]) == 1
    [lead_id] = [p["lead_created"] for p in pops if p["lead_created"]]
    assert {p["matches"][0]["id"] for p in pops} == {lead_id}
    # the writer busy with another call: three rings of a new number read it unknown, then go in one
    # unit together — still one lead, its id in every popup and in its lead.created
    other = "+79035550077"
    pops = await asyncio.gather(door.ringing(ringing("D4", CLIENT_PHONE)),
                                *(door.ringing(ringing(f"D{i}", other)) for i in (5, 6, 7)))
    made = [p["lead_created"] for p in pops if p["lead_created"]]
    assert len(made) == 1 and all(p["matches"][0]["id"] == made[0] for p in pops[1:])
    assert all(isinstance(p["call_id"], int) for p in pops) and len({p["call_id"] for p in pops}) == 4
    assert await count(database, Lead) == 2
    async with database.reading() as s:
        calls = {c.linkedid: c for c in (await s.scalars(select(Call))).all()}
        assert {calls[f"D{i}"].lead_id for i in (5, 6, 7)} == {made[0]}
        assert (await s.scalar(select(ContactPoint.lead_id).where(ContactPoint.value == other))) == made[0]
    [created] = [e for e in published if e.name == "lead.created" and e.data["lead"]["phones"] == [other]]
    assert created.data["lead"]["id"] == made[0]
    rung = [e.data for e in published if e.name == "call.recorded" and e.data["number"] == other]
    assert sorted(d["call_id"] for d in rung) == sorted(calls[f"D{i}"].id for i in (5, 6, 7))
    assert all(d["lead_created"] == made[0] or d["matches"][0]["id"] == made[0] for d in rung)


async def test_the_popup_goes_out_before_the_call_is_written_and_its_ids_follow(
        database: Database, world: dict) -> None:
    published = record(database)
    door = intake.CallIntake(database, AUTO)
    order: list[str] = []
    database.bus.subscribe(lambda e: order.append(e.name) if e.name.startswith("call.") else None)
    pop = await door.ringing(ringing("P1", CLIENT_PHONE))
    early, recorded = [e for e in published if e.name in ("call.ringing", "call.recorded")]
    assert order[:2] == ["call.ringing", "call.recorded"]
    assert early.users == recorded.users == {world["anna"].id}
    assert early.data["call_id"] is None and recorded.data["call_id"] == pop["call_id"] is not None
    assert early.data["matches"] == recorded.data["matches"]  # what was read is what was written
    assert {k: v for k, v in early.data.items() if k != "call_id"} == \
        {k: v for k, v in recorded.data.items() if k != "call_id"}
    # an unknown caller: the popup says so at once, the new lead comes with call.recorded
    await door.ringing(ringing("P2", "+79035550123"))
    early, recorded = [e.data for e in published if e.name in ("call.ringing", "call.recorded")
                       and e.data["call_key"] == "P2"]
    assert early["unknown"] and early["lead_created"] is None and early["matches"] == []
    assert recorded["lead_created"] and recorded["matches"][0]["id"] == recorded["lead_created"]


async def test_a_popup_whose_call_cannot_be_written_is_taken_back(database: Database, world: dict,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    published = record(database)
    door = intake.CallIntake(database, AUTO)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(intake, "ring", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        await door.ringing(ringing("F1", CLIENT_PHONE))
    events = [(e.name, e.data["call_key"], e.data.get("reason"), e.users) for e in published
              if e.name.startswith("call.")]
    assert events == [("call.ringing", "F1", None, {world["anna"].id}),
                      ("call.ring_ended", "F1", "not_recorded", {world["anna"].id})]
    assert await count(database, Call) == 0


async def test_a_fact_given_up_while_waiting_for_its_turn_holds_up_no_later_one(
        database: Database, world: dict) -> None:
    door = intake.CallIntake(database, AUTO)
    ring_task = asyncio.create_task(door.ringing(ringing("T1", CLIENT_PHONE)))
    await asyncio.sleep(0)  # the ring has its turn and reads the popup
    gone = asyncio.create_task(door.answered(answered_fact("T1", CLIENT_PHONE)))
    await asyncio.sleep(0)
    gone.cancel()
    end_task = asyncio.create_task(door.ended(ended("T1", CLIENT_PHONE)))
    pop, call = await asyncio.wait_for(asyncio.gather(ring_task, end_task), 10)
    assert pop["call_id"] == call["id"] and call["status"] == "answered"
    assert gone.cancelled() and not door._turns
