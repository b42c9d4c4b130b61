"""Leads from calls: made for an unknown inbound caller on the ring (``unknown_caller = "auto"``), or
by an agent's click on the screen-pop or in the journal (``unknown_caller = "ask"``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import contact_points, events, identify, leads
from hub.crm.call_intake.call_log import log_call
from hub.crm.call_intake.rows import is_ignored, person_of
from hub.crm.call_intake.unit import DEFAULT_SETTINGS, CallUnit
from hub.crm.calls import call_dict, visible_call
from hub.crm.errors import Conflict, ValidationError
from hub.crm.models import ContactPoint, Lead, Task, User, utcnow
from hub.crm.ports import CallSettings
from hub.crm.validate import Fields
from hub.texts import N_, say

LEAD_SOURCE = N_("phone call")  # a caller's lead's source, stored as say(LEAD_SOURCE)


async def create_lead(session: AsyncSession, number: str, settings: CallSettings,
                      name: str | None = None, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """An unsorted, unassigned lead owning the caller's number; ``lead.created`` as
    ``leads.create_lead`` announces it (the same shape), in two INSERTs instead of its four
    statements (a brand-new lead has no contact points to replace nor to read back)."""
    points = contact_points.normalise(phones=[number], region=settings.region)
    phones_found = points.phones
    if points.errors or not phones_found:
        return None  # a number the lead cannot keep (not a valid phone): the agent decides
    lead = Lead(name=name or number, source=say(LEAD_SOURCE), manager_id=None, comment="", utm={},
                unsorted=True, converted_client_id=None, converted_at=None, created_at=utcnow())
    session.add(lead)
    deferred = None
    if unit is not None:
        unit.keep.append(lead)
        deferred = unit.deferred
        if unit.on_lead is not None:
            unit.on_lead(number)
    data = leads.lead_shape_of(lead, {**leads.NO_POINTS, "phones": [value for value, _, _ in phones_found]})
    person: dict[str, Any] = {"type": "lead", "id": None, "name": lead.name, "client_id": None,
                              "open_deals": []}
    refs: list[dict[str, Any]] = [data, person]

    def ids() -> None:  # the lead has its id: its contact points, and the id where it is shown
        session.add_all([ContactPoint(kind="phone", value=value, tail=tail, raw=raw, lead_id=lead.id)
                         for value, tail, raw in phones_found])
        for ref in refs:
            ref["id"] = lead.id

    if deferred is None:
        await session.flush()
        ids()
    else:  # a batch of rings: all their leads in one INSERT, then contact points and calls in one each
        deferred.first.append(ids)
        deferred.leads[number] = (person, refs)
    events.emit(session, "lead.created", {"lead": data}, scope={"manager_id": None, "unassigned": True})
    person["refs"] = refs  # taken out by ring(): copies of the match register there
    return person


async def unknown_caller_lead(session: AsyncSession, direction: str, number: str | None,
                              settings: CallSettings, name: str | None = None,
                              unit: CallUnit | None = None) -> dict[str, Any] | None:
    if (direction != "inbound" or settings.unknown_caller != "auto" or not number
            or not number.startswith("+") or is_ignored(number, settings)):
        return None
    return await create_lead(session, number, settings, name, unit)


async def lead_from_call(session: AsyncSession, actor: User, call_id: Any, data: Any = None,
                         settings: CallSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """An unknown caller made a lead by an agent's click: the lead lands in Unsorted with the call's
    number (``name`` defaults to the number); a finished call goes into its timeline at once, a call
    in progress when it ends. → ``{"lead", "call"}``. Conflict when the call already has a person."""
    v = Fields({} if data is None else data)
    name = v.text("name", max_len=300)
    v.check()
    call = await visible_call(session, actor, call_id, lock=True)
    if call.client_id is not None or call.lead_id is not None:
        raise Conflict("the call already belongs to a client or lead")
    number = call.external_number
    if call.direction == "internal" or not number or not number.startswith("+"):
        raise ValidationError({"number": "the call has no external phone number a lead can keep"})
    person = person_of(await identify.identify(session, phone=number, region=settings.region))
    if person is not None:
        raise Conflict(f"the number belongs to {person['type']} {person['id']} already")
    lead = await leads.create_lead(session, None, {"name": name or number, "phones": [number],
                                                   "source": say(LEAD_SOURCE), "unsorted": True},
                                   region=settings.region)
    call.lead_id = lead["id"]
    await session.flush()
    if call.ended_at is not None:
        agent = await session.get(User, call.agent_id) if call.agent_id is not None else None
        await log_call(session, call, agent, lead["name"])
        if call.callback_task_id is not None:
            task = await session.get(Task, call.callback_task_id)
            if task is not None and task.client_id is None and task.lead_id is None:
                task.lead_id = lead["id"]
        await session.flush()
    return {"lead": lead, "call": await call_dict(session, call)}
