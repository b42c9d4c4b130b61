"""The screen-pop: who is calling whom, each match enriched with its manager, last interactions and
open tasks, as the rung agent's popup shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import identify
from hub.crm.call_intake.rows import external_number, is_ignored
from hub.crm.call_intake.unit import AGENT, RING_STATE
from hub.crm.models import Client, Lead, Task, TimelineEntry, User, utcnow
from hub.crm.ports import CallRinging, CallSettings
from hub.crm.validate import iso
from hub.db import Prepared

INTERACTION_KINDS = ("call", "sms", "whatsapp", "telegram", "email", "note")
POP_MATCHES = 5  # matches enriched with history and tasks in a screen-pop
POP_TASKS = 5


def pop_payload(fact: CallRinging, settings: CallSettings, *, call_id: int | None, direction: str,
                number: str | None, started_at: datetime | None, matches: list[dict[str, Any]],
                lead_created: int | None) -> dict[str, Any]:
    """The screen-pop: who is calling whom (``call_id`` None while the call's row is not written)."""
    return {
        "call_id": call_id, "call_key": fact.call_key, "direction": direction, "number": number,
        "did": fact.did, "extension": fact.extension, "started_at": iso(started_at),
        "matches": matches, "unknown": not matches, "ignored": is_ignored(number, settings),
        "caller_name": fact.caller_name, "hidden_number": fact.hidden_number and not number,
        "lead_created": lead_created, "unknown_caller": settings.unknown_caller,
    }


def colleague_match(user_id: int, name: str) -> dict[str, Any]:
    """An internal call: the pop names the colleague calling."""
    return {"type": "user", "id": user_id, "name": name, "client_id": None, "open_deals": []}


def fresh(match: dict[str, Any]) -> dict[str, Any]:
    """A lead made for this very ring: nobody manages it, it has no history and no tasks yet."""
    return {**match, "manager": None, "last_interactions": [], "open_tasks": []}


def _pop_queries(model: type[Client] | type[Lead], entries_owner: Any,
                 tasks_owner: Any) -> tuple[Prepared, ...]:
    owner: BindParameter[Any] = bindparam("owner")
    head = Prepared(select(model.name, User.id, User.name).select_from(model)
                    .outerjoin(User, User.id == model.manager_id).where(model.id == owner))
    entries = Prepared(
        select(TimelineEntry.id, TimelineEntry.kind, TimelineEntry.direction, TimelineEntry.occurred_at,
               TimelineEntry.text, TimelineEntry.payload, TimelineEntry.deal_id)
        .where(entries_owner == owner, or_(*(TimelineEntry.kind == kind for kind in INTERACTION_KINDS)))
        .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc()).limit(3))
    tasks = Prepared(
        select(Task.id, Task.subject, Task.kind, Task.due_at, Task.assignee_id)
        .where(tasks_owner == owner, Task.completed_at.is_(None))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(POP_TASKS))
    return head, entries, tasks


# the screen-pop's reads, compiled once (hub.db.Prepared: one thread hop or round trip each)
_POP = {"client": _pop_queries(Client, TimelineEntry.client_id, Task.client_id),
        "lead": _pop_queries(Lead, TimelineEntry.lead_id, Task.lead_id)}


async def enrich(session: AsyncSession, match: dict[str, Any]) -> dict[str, Any]:
    """A match of /identify plus the main manager, the company (for a contact person), the last three
    interactions and the open tasks: three compiled statements on the session's connection."""
    enriched = dict(match)
    if match["type"] == "user":
        return enriched
    kind, owner = ("lead", match["id"]) if match["type"] == "lead" else ("client", match["client_id"])
    head, entries_query, tasks_query = _POP[kind]
    if session.new or session.dirty or session.deleted:
        await session.flush()  # the driver connection below does not autoflush
    conn = await session.connection()
    rows = await head.all(conn, owner=owner)
    name, manager_id, manager_name = rows[0] if rows else (None, None, None)
    if match["type"] == "contact":
        enriched["company"] = {"id": owner, "name": name}
    enriched["manager"] = {"id": manager_id, "name": manager_name} if manager_id is not None else None
    entries = await entries_query.all(conn, owner=owner)
    enriched["last_interactions"] = [
        {"id": i, "kind": kind, "direction": direction, "occurred_at": iso(at), "text": text[:200],
         "status": (payload or {}).get("status") if kind == "call" else None, "deal_id": deal_id}
        for i, kind, direction, at, text, payload, deal_id in entries]
    now = utcnow()
    tasks = await tasks_query.all(conn, owner=owner)
    enriched["open_tasks"] = [
        {"id": i, "subject": subject, "kind": kind, "due_at": iso(due),
         "overdue": due is not None and due < now, "assignee_id": assignee}
        for i, subject, kind, due, assignee in tasks]
    return enriched


async def enriched_matches(session: AsyncSession, number: str,
                           settings: CallSettings) -> list[dict[str, Any]]:
    """Who owns the number, the first ``POP_MATCHES`` of them enriched."""
    found = await identify.identify(session, phone=number, region=settings.region)
    return [await enrich(session, m) if i < POP_MATCHES else m for i, m in enumerate(found)]


@dataclass(frozen=True, slots=True)
class PopRead:
    """What a ring's popup shows, read before the ring's unit of work (``read_pop``)."""

    ended: bool  # the call has ended already: a ring replayed after the end pops nothing
    agent_id: int | None  # whom the extension rings (None: nobody to pop to)
    direction: str
    number: str | None
    matches: list[dict[str, Any]] | None  # the caller's matches, enriched (None: not identified)
    shown: list[dict[str, Any]]  # what the popup lists (the matches, or the colleague calling)


async def read_pop(session: AsyncSession, fact: CallRinging, settings: CallSettings) -> PopRead:
    """The early pop's reads, on a reader: has the call ended, whom does the extension ring, who is
    calling (identified and enriched, or the colleague of an internal call)."""
    number = external_number(fact.number, settings.region)
    conn = await session.connection()
    stored_direction, ended_at, agent_id = (await RING_STATE.all(
        conn, key=fact.call_key, extension=fact.extension))[0]
    direction = stored_direction or fact.direction
    if ended_at is not None:
        return PopRead(True, None, direction, number, None, [])
    if number and direction != "internal":
        matches = await enriched_matches(session, number, settings)
        return PopRead(False, agent_id, direction, number, matches, matches)
    shown: list[dict[str, Any]] = []
    if direction == "internal" and (caller := fact.caller_extension or fact.number):
        colleague = await AGENT.all(conn, extension=caller)
        if colleague:
            shown = [colleague_match(colleague[0][0], colleague[0][1])]
    return PopRead(False, agent_id, direction, number, None, shown)
