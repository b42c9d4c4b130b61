"""A ring stops, a call is answered: the popups close."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events
from hub.crm.call_intake.rows import agent_ref, external_number, recipients, seconds
from hub.crm.call_intake.unit import DEFAULT_SETTINGS, CallUnit, agent_of, call_row, find_call, valid_key
from hub.crm.models import utcnow
from hub.crm.ports import CallAnsweredFact, CallRingEnded, CallSettings


async def stop_ringing(session: AsyncSession, fact: CallRingEnded, settings: CallSettings = DEFAULT_SETTINGS,
                       *, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """``call.ring_ended`` to the agent whose phone stopped ringing, while the call is still waiting
    for an answer: their popup closes (the next queue member's opens with its own ring)."""
    call = await find_call(session, fact.call_key, unit) if valid_key(fact.call_key) else None
    if call is None or call.ended_at is not None or call.answered_at is not None:
        return None
    agent = await agent_of(session, fact.extension, unit)
    if agent is None:
        return None
    data = {"call_id": call.id, "call_key": call.linkedid, "extension": fact.extension,
            "reason": fact.reason}
    events.emit(session, "call.ring_ended", data, users=[agent.id])
    return data


async def answer(session: AsyncSession, fact: CallAnsweredFact, settings: CallSettings = DEFAULT_SETTINGS,
                 *, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """Who took the call; ``call.answered`` to everyone it rang (their popups close)."""
    at = fact.at or utcnow()
    number = external_number(fact.number, settings.region)
    call = await call_row(session, fact.call_key, unit, direction=fact.direction, status="talking",
                          external_number=number, did=fact.did, started_at=at)
    if call.ended_at is not None:
        return None
    agent = await agent_of(session, fact.extension, unit) if fact.extension else None
    changed = call.status != "talking" or call.agent_extension != fact.extension
    call.status = "talking"
    if call.answered_at is None:
        call.answered_at = at
        call.wait_seconds = seconds(fact.wait_seconds)
    if fact.extension:
        call.agent_extension = fact.extension
        call.agent_id = agent.id if agent else None
    if number and not call.external_number:
        call.external_number = number
    data = {"call_id": call.id, "call_key": call.linkedid, "direction": call.direction,
            "number": call.external_number, "agent": agent_ref(call, agent)}
    if changed and (users := recipients(call)):
        events.emit(session, "call.answered", data, users=users)
    return data
