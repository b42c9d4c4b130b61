"""A finished call in the timeline: its entry on the person's open deal (the placement rule) or on
the person, in one statement."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events
from hub.crm.call_intake.rows import agent_ref
from hub.crm.call_intake.unit import Agent, CallUnit
from hub.crm.calls import CALL_STATUS_WORDS, recording_refs
from hub.crm.models import Call, Client, ContactPerson, Deal, Lead, Stage, TimelineEntry, User, utcnow
from hub.crm.resources import Ref
from hub.crm.timeline import entry_dict, storable, storable_json, user_refs
from hub.crm.validate import iso
from hub.texts import say


async def deal_for(session: AsyncSession, client_id: int | None, lead_id: int | None,
                   unit: CallUnit | None = None) -> Deal | None:
    """The placement rule: the single open deal, else the most recently active open one, else None."""
    if client_id is None and lead_id is None:
        return None
    owner_key = ("client", client_id) if client_id is not None else ("lead", cast(int, lead_id))
    cached = unit.deals.get(owner_key) if unit is not None else None
    if cached is not None:  # the batch's prefetch (with this unit of work's own changes to them)
        return max(cached, key=lambda d: (d.last_activity_at, d.id), default=None)
    owner = Deal.client_id == client_id if client_id is not None else Deal.lead_id == lead_id
    return await session.scalar(
        select(Deal).join(Stage, Stage.id == Deal.stage_id).where(owner, Stage.kind == "active")
        .order_by(Deal.last_activity_at.desc(), Deal.id.desc()).limit(1))


def _call_text(call: Call, name: str | None) -> str:
    """The entry's text in the hub's language (for the API and the search); pages render the call
    from its payload in the reader's language (``_timeline_entry.html``)."""
    who = name or call.external_number or "?"
    if call.direction == "internal":
        what = say("Internal call")
    elif call.direction == "outbound":
        what = say("Outgoing call to %(who)s", who=who)
    else:
        what = say("Incoming call from %(who)s", who=who)
    if call.status == "answered":
        how = say("%(seconds)s s", seconds=call.talk_seconds or 0)
    else:
        how = say(CALL_STATUS_WORDS.get(call.status, call.status))
    return f"{what} ({how})"


def _entry_payload(call: Call, agent: Agent | User | None, name: str | None) -> dict[str, Any]:
    return {
        "call_id": call.id, "name": name, "call_key": call.linkedid, "direction": call.direction,
        "status": call.status,
        "number": call.external_number, "did": call.did, "agent": agent_ref(call, agent),
        "started_at": iso(call.started_at), "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at), "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds, "hangup_cause": call.hangup_cause,
        "recording_url": f"/api/v1/calls/{call.id}/recording" if call.recording else None,
        "recordings": recording_refs(call),
    }


async def person_name(session: AsyncSession, call: Call, unit: CallUnit | None = None) -> str | None:
    # session.get: the row stays in the identity map, where the timeline entry's checks find it
    owner: ContactPerson | Client | Lead | None = None
    if call.contact_id is not None:
        owner = await session.get(ContactPerson, call.contact_id)
    elif call.client_id is not None:
        owner = await session.get(Client, call.client_id)
    elif call.lead_id is not None:
        owner = await session.get(Lead, call.lead_id)
    if owner is None:
        return None
    if unit is not None:
        unit.keep.append(owner)  # the identity map holds rows weakly
    return owner.name


async def log_call(session: AsyncSession, call: Call, agent: Agent | User | None, name: str | None,
                   deal: Deal | bool | None = True) -> None:
    """The call's timeline entry on its person's open deal (placement rule) or on the person.

    What ``timeline.add_entry`` does, in one statement instead of seven: the targets are rows this
    unit of work has (the call's person, the deal just found), the author is the call's agent, and
    the external key ``call:<Linkedid>`` makes a second entry impossible (INSERT … ON CONFLICT DO
    NOTHING; the call's row lock already makes a replay return before it gets here)."""
    if deal is True:  # not looked up by the caller
        deal = await deal_for(session, call.client_id, call.lead_id)
    assert deal is None or isinstance(deal, Deal)
    call.deal_id = deal.id if deal is not None else None
    key = storable(f"call:{call.linkedid}")
    now = utcnow()
    values: dict[str, Any] = {
        "kind": "call", "direction": "out" if call.direction == "outbound" else "in",
        "occurred_at": call.started_at or now, "author_id": call.agent_id,
        "text": storable(_call_text(call, name)), "payload": storable_json(_entry_payload(call, agent, name)),
        "pinned": False, "deal_id": call.deal_id, "client_id": call.client_id, "lead_id": call.lead_id,
        "external_key": key, "created_at": now,
    }
    table = TimelineEntry.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (insert(table).values(**values)
                 .on_conflict_do_nothing(index_elements=[table.c.external_key]).returning(table.c.id))
    with session.no_autoflush:  # the call's row is flushed once, with its timeline_entry_id
        entry_id = (await session.execute(statement)).scalar()
    if entry_id is None:  # the entry exists already: link it, announce nothing
        call.timeline_entry_id = await session.scalar(
            select(TimelineEntry.id).where(TimelineEntry.external_key == key))
        return
    call.timeline_entry_id = entry_id
    if deal is not None and (deal.last_activity_at is None or values["occurred_at"] > deal.last_activity_at):
        deal.last_activity_at = values["occurred_at"]
    entry = TimelineEntry(id=entry_id, attachments=[], **values)  # not added: only for its API shape
    if agent is not None and agent.id == call.agent_id:
        authors = {agent.id: Ref(id=agent.id, name=agent.name)}
    else:
        authors = await user_refs(session, [call.agent_id])
    events.emit(session, "timeline.added", {"entry": entry_dict(entry, authors)},
                scope=await _entry_scope(session, call, deal))


async def _entry_scope(session: AsyncSession, call: Call, deal: Deal | None) -> dict[str, Any]:
    """What the bus's access filter needs to know who may see the entry."""
    scope: dict[str, Any] = {}
    if deal is not None:
        scope["responsible_id"] = deal.responsible_id
    if call.client_id is not None:
        client = await session.get(Client, call.client_id)
        scope["manager_id"] = client.manager_id if client is not None else None
    elif call.lead_id is not None:
        lead = await session.get(Lead, call.lead_id)
        scope["manager_id"] = lead.manager_id if lead is not None else None
        scope["unassigned"] = scope["manager_id"] is None
    return scope
