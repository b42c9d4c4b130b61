"""A call ends: the outcome stored (idempotent on the call key), its timeline entry, a callback task
for a missed inbound call or the callback done by an answered outbound one, ``call.ended``. And the
ends of the calls a previous run left unfinished."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events, identify, routing
from hub.crm.call_intake.call_log import deal_for, log_call, person_name
from hub.crm.call_intake.callbacks import callback, complete_callbacks
from hub.crm.call_intake.caller_leads import unknown_caller_lead
from hub.crm.call_intake.rows import (
    add_rung,
    external_number,
    is_ignored,
    person_of,
    recipients,
    seconds,
    set_person,
)
from hub.crm.call_intake.unit import DEFAULT_SETTINGS, Agent, CallUnit, agents_by_extension, call_row
from hub.crm.calls import call_shape, recordings_of
from hub.crm.extensions import extensions_of
from hub.crm.models import Call, Client, Lead, User, utcnow
from hub.crm.ports import CallDirection, CallEndedFact, CallSettings, CallStatus


async def end(session: AsyncSession, fact: CallEndedFact, settings: CallSettings = DEFAULT_SETTINGS, *,
              board: routing.Board | None = None, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """Store the finished call and what follows from it; a replayed end changes nothing (→ None).
    ``board``: who is free, for ``route_to_free_agent`` (the callback task of a missed call)."""
    ended_at = fact.ended_at or utcnow()
    number = external_number(fact.number, settings.region)
    call = await call_row(session, fact.call_key, unit, direction=fact.direction, status=fact.status,
                          external_number=number, did=fact.did, started_at=fact.started_at or ended_at)
    if call.ended_at is not None:
        return None
    extensions = {e for e in (fact.agent_extension, *fact.rung_extensions) if e}
    by_ext = await agents_by_extension(session, extensions, unit)
    agent = by_ext.get(fact.agent_extension) if fact.agent_extension else None
    if not fact.agent_extension and call.agent_id is not None:
        agent = await session.get(User, call.agent_id)

    # Reads first, the call's own changes after: its row is then written once (with the timeline
    # entry's id), not flushed half-done by the reads' autoflush.
    number = number or call.external_number
    await _find_person(session, call, fact, number, settings, unit)
    name = await person_name(session, call, unit)
    logged = fact.direction != "internal" and (call.client_id is not None or call.lead_id is not None)
    deal = await deal_for(session, call.client_id, call.lead_id, unit) if logged else None
    _store_end(call, fact, number, ended_at, agent, by_ext)

    if logged:
        await log_call(session, call, agent, name, deal)
    missed = call.direction == "inbound" and call.status != "answered"
    if number and missed and not is_ignored(number, settings):
        await callback(session, call, name, settings, board)
    if number and call.direction == "outbound" and call.status == "answered":
        await complete_callbacks(session, call)
    return await _announce_end(session, call, agent)


async def _find_person(session: AsyncSession, call: Call, fact: CallEndedFact, number: str | None,
                       settings: CallSettings, unit: CallUnit | None) -> None:
    """A call nobody's yet: the number's owner, else a lead for an unknown inbound caller."""
    if not number or fact.direction == "internal" or call.client_id is not None or call.lead_id is not None:
        return
    matches = await identify.identify(session, phone=number, region=settings.region)
    person = person_of(matches)
    if not matches:
        person = await unknown_caller_lead(session, fact.direction, number, settings, fact.caller_name, unit)
    if person is not None:
        set_person(call, person)


def _store_end(call: Call, fact: CallEndedFact, number: str | None, ended_at: datetime,
               agent: Agent | User | None, by_ext: Mapping[str, Agent | User]) -> None:
    call.direction = fact.direction
    call.status = fact.status
    call.external_number = number or call.external_number
    call.did = fact.did or call.did
    if fact.started_at is not None:
        call.started_at = fact.started_at
    call.answered_at = fact.answered_at or (call.answered_at if fact.status == "answered" else None)
    call.ended_at = ended_at
    call.wait_seconds = seconds(fact.wait_seconds) or call.wait_seconds
    call.talk_seconds = seconds(fact.talk_seconds)
    call.hangup_cause = fact.hangup_cause
    call.recordings = _fact_recordings(fact)
    call.recording = call.recordings[0]["file"] if call.recordings else None
    if fact.agent_extension:
        call.agent_extension = fact.agent_extension
        call.agent_id = agent.id if agent else None
    add_rung(call, [by_ext[e].id for e in fact.rung_extensions if e in by_ext])


def _fact_recordings(fact: CallEndedFact) -> list[dict[str, Any]]:
    """The ended call's recordings as stored (``Call.recordings``): in order, once each, with the agent
    extension of the leg that made each where known."""
    names = fact.recordings or ((fact.recording,) if fact.recording else ())
    found: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        if not name or any(r["file"] == name for r in found):
            continue
        ext = fact.recording_extensions[i] if i < len(fact.recording_extensions) else None
        found.append({"file": name[:300], "agent_extension": ext[:32] if ext else None})
    return found


async def _ref(session: AsyncSession, model: type[Client] | type[Lead],
               key: int | None) -> dict[str, Any] | None:
    if key is None:
        return None
    row: Client | Lead | None = await session.get(model, key)  # usually in the identity map already
    return {"id": key, "name": row.name if row is not None else None}


async def _announce_end(session: AsyncSession, call: Call, agent: Agent | User | None) -> dict[str, Any]:
    """``call.ended`` to everyone the call rang (to whoever may see it when it rang nobody)."""
    result = call_shape(call, agent.name if agent is not None and agent.id == call.agent_id else None,
                        await _ref(session, Client, call.client_id), await _ref(session, Lead, call.lead_id))
    data = {"call_id": call.id, "call_key": call.linkedid, "status": call.status,
            "direction": call.direction, "number": call.external_number,
            "talk_seconds": call.talk_seconds, "wait_seconds": call.wait_seconds,
            "agent": result["agent"], "client_id": call.client_id, "lead_id": call.lead_id,
            "deal_id": call.deal_id}
    users = recipients(call)
    if users:
        events.emit(session, "call.ended", data, users=users)
    else:
        events.emit(session, "call.ended", data)
    return result


async def unfinished_calls(session: AsyncSession, keep: Collection[str]) -> list[CallEndedFact]:
    """The ends of the calls stored as ringing or talking, but for those in ``keep``: the last moment
    known of each (its answer, else its start), answered when it was, else missed (failed when
    outbound); the talk time after the last moment known is unknown, so none is counted."""
    rows = (await session.scalars(select(Call).where(Call.ended_at.is_(None)).order_by(Call.id))).all()
    return [_end_of_unfinished(call, await _last_agent_extension(session, call))
            for call in rows if call.linkedid not in keep]


async def _last_agent_extension(session: AsyncSession, call: Call) -> str | None:
    """The phone of the agent who answered, else of the last one it rang (as the tracker names it)."""
    if call.agent_extension or not call.rung_user_ids:
        return call.agent_extension
    found = await extensions_of(session, int(call.rung_user_ids[-1]))
    return found[0] if found else None


def _end_of_unfinished(call: Call, agent_extension: str | None) -> CallEndedFact:
    answered = call.answered_at is not None or call.status == "talking"
    status: CallStatus = "answered" if answered else "failed" if call.direction == "outbound" else "missed"
    last_known = call.answered_at or call.started_at
    waited = (call.answered_at - call.started_at).total_seconds() if call.answered_at else 0.0
    return CallEndedFact(
        call_key=call.linkedid, direction=cast(CallDirection, call.direction), status=status,
        number=call.external_number, did=call.did, agent_extension=agent_extension,
        started_at=call.started_at, answered_at=call.answered_at, ended_at=last_known,
        wait_seconds=float(call.wait_seconds) or waited, recording=call.recording,
        recordings=tuple(r["file"] for r in recordings_of(call)),
        recording_extensions=tuple(r["agent_extension"] for r in recordings_of(call)))
