"""A ring: who is calling (identified, or a lead made for an unknown inbound caller), the call's row,
and the screen-pop for the rung agent."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events, identify
from hub.crm.call_intake.caller_leads import unknown_caller_lead
from hub.crm.call_intake.rows import add_rung, external_number, person_columns, person_of, set_person
from hub.crm.call_intake.screen_pop import POP_MATCHES, colleague_match, enrich, fresh, pop_payload
from hub.crm.call_intake.unit import DEFAULT_SETTINGS, Agent, CallUnit, agent_of, call_row, find_call
from hub.crm.models import Call, User, utcnow
from hub.crm.ports import CallRinging, CallSettings

Made = tuple[dict[str, Any], list[dict[str, Any]]]  # a lead made in this unit: (its match, the copies)


@dataclass(slots=True)
class Caller:
    """Who a ring is from, as its unit of work decided."""

    matches: list[dict[str, Any]] = field(default_factory=list)
    enriched: list[dict[str, Any]] | None = None  # the matches as enriched before this unit of work
    person: dict[str, Any] | None = None  # the match the call belongs to
    made: Made | None = None  # a lead for the number made in this unit (by this ring or another)
    created_here: bool = False  # by this ring

    @property
    def lead_created(self) -> int | None:
        return self.made[0]["id"] if self.created_here and self.made is not None else None


async def ring(session: AsyncSession, fact: CallRinging, settings: CallSettings = DEFAULT_SETTINGS,
               pre: list[dict[str, Any]] | None = None,
               unchanged: Callable[[str], bool] | None = None, *,
               unit: CallUnit | None = None, popped: bool = False) -> dict[str, Any]:
    """The screen-pop payload for the rung agent (also sent as ``call.ringing`` to that user).

    ``pre``: the number's matches, already enriched, read just before this unit of work (see
    ``CallIntake.ringing``). When there were none, the number is identified again in here (where
    the decision to make a lead is taken) unless ``unchanged(number)`` says no lead was made for
    it since. ``popped``: the popup went out before this unit of work (``CallIntake.ringing``), so
    the agent gets ``call.recorded`` (the same payload, with the call's and a new lead's ids) instead
    of ``call.ringing``."""
    number = external_number(fact.number, settings.region)
    call = await find_call(session, fact.call_key, unit)  # a new call's row is written once, below
    agent = await agent_of(session, fact.extension, unit)
    live = call is None or call.ended_at is None  # a ringing fact replayed after the end pops nothing
    direction = call.direction if call is not None else fact.direction
    if direction == "internal":
        caller = await _colleague(session, fact, unit)
    elif number:
        caller = await _known_caller(session, number, settings, pre, unchanged, unit)
        if not caller.matches and live and (call is None or call.lead_id is None):  # not a colleague's mobile
            await _lead_for_unknown(session, caller, direction, number, fact, settings, unit)
    else:
        caller = Caller()
    call = await _record_ring(session, fact, call, agent, number, caller, live, unit)
    payload = pop_payload(fact, settings, call_id=call.id, direction=call.direction, number=number,
                          started_at=call.started_at, matches=await _shown(session, caller),
                          lead_created=caller.lead_created)
    _ids_after_flush(unit, payload, call, caller)
    if agent is not None and live:  # popped before this unit (CallIntake): now the ids it lacked
        events.emit(session, "call.recorded" if popped else "call.ringing", payload, users=[agent.id])
    return payload


async def _colleague(session: AsyncSession, fact: CallRinging, unit: CallUnit | None) -> Caller:
    """An internal call: the pop names the colleague calling."""
    extension = fact.caller_extension or fact.number
    colleague = await agent_of(session, extension, unit) if extension else None
    return Caller([colleague_match(colleague.id, colleague.name)] if colleague is not None else [])


async def _known_caller(session: AsyncSession, number: str, settings: CallSettings,
                        pre: list[dict[str, Any]] | None, unchanged: Callable[[str], bool] | None,
                        unit: CallUnit | None) -> Caller:
    """Who owns the number: a lead another ring of this batch made, what was read before this unit of
    work, nobody when that read found nobody and no lead was made since, else identified here."""
    deferred = unit.deferred if unit is not None else None
    if deferred is not None and number in deferred.leads:
        made = deferred.leads[number]
        match = dict(made[0])
        made[1].append(match)
        return Caller([match], person=person_of([match]), made=made)
    if pre:
        return Caller(pre, enriched=pre, person=person_of(pre))
    if pre is not None and unchanged is not None and unchanged(number):
        return Caller()
    matches = await identify.identify(session, phone=number, region=settings.region)
    return Caller(matches, person=person_of(matches))


async def _lead_for_unknown(session: AsyncSession, caller: Caller, direction: str, number: str,
                            fact: CallRinging, settings: CallSettings, unit: CallUnit | None) -> None:
    person = await unknown_caller_lead(session, direction, number, settings, fact.caller_name, unit)
    if person is not None:
        caller.made = (person, person.pop("refs"))
        caller.created_here = True
        caller.person = person
        caller.matches.append(person)


async def _record_ring(session: AsyncSession, fact: CallRinging, call: Call | None,
                       agent: Agent | User | None, number: str | None, caller: Caller, live: bool,
                       unit: CallUnit | None) -> Call:
    """The call's row: new (with the batch's other new calls when it defers its writes), or the one
    stored, with the agent rung, the number and whose call it is."""
    if call is None:
        call = await _new_call(session, fact, agent, number, caller, unit)
    if agent is not None and live:
        add_rung(call, [agent.id])
    if number and not call.external_number:
        call.external_number = number
    if caller.person is not None and call.client_id is None and call.lead_id is None:
        deferred = unit.deferred if unit is not None else None
        if deferred is None or caller.made is None:
            set_person(call, caller.person)
        elif call in session:  # a call already stored: its new lead's id comes with the leads' flush
            deferred.first.append(functools.partial(_add_call, session, call, caller.made))
    return call


async def _new_call(session: AsyncSession, fact: CallRinging, agent: Agent | User | None, number: str | None,
                    caller: Caller, unit: CallUnit | None) -> Call:
    columns: dict[str, Any] = {
        "direction": fact.direction, "status": "ringing", "external_number": number, "did": fact.did,
        "started_at": fact.started_at or fact.at or utcnow(),
        "rung_user_ids": [agent.id] if agent is not None else []}
    deferred = unit.deferred if unit is not None else None
    if deferred is None:
        person = person_columns(caller.person) if caller.person is not None else {}
        return await call_row(session, fact.call_key, unit, **columns, **person)
    assert unit is not None
    person = person_columns(caller.person) if caller.person is not None and caller.made is None else {}
    call = Call(linkedid=fact.call_key, created_at=utcnow(), **columns, **person)
    if unit.calls is not None:
        unit.calls[fact.call_key] = call
    deferred.first.append(functools.partial(_add_call, session, call, caller.made))
    return call


def _add_call(session: AsyncSession, call: Call, made: Made | None) -> None:
    if made is not None and call.client_id is None and call.lead_id is None:
        call.lead_id = made[0]["id"]
    session.add(call)


async def _shown(session: AsyncSession, caller: Caller) -> list[dict[str, Any]]:
    """The matches as the popup shows them: enriched (a lead made just now is fresh: nothing to read)."""
    if caller.enriched is not None:
        return caller.enriched
    shown: list[dict[str, Any]] = []
    last = len(caller.matches) - 1
    for i, match in enumerate(caller.matches):
        if caller.made is not None and i == last:  # the lead made for this number just now
            shown.append(fresh(match))
            caller.made[1].append(shown[-1])
        else:
            shown.append(await enrich(session, match) if i < POP_MATCHES else match)
    return shown


def _ids_after_flush(unit: CallUnit | None, payload: dict[str, Any], call: Call, caller: Caller) -> None:
    """A batch of rings writes its calls and leads together: the payload gets their ids then."""
    deferred = unit.deferred if unit is not None else None
    if deferred is None or (payload["call_id"] is not None and caller.made is None):
        return

    def ids() -> None:
        payload["call_id"] = call.id
        if caller.created_here and caller.made is not None:
            payload["lead_created"] = caller.made[0]["id"]

    deferred.second.append(ids)
