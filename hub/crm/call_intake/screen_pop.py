"""The screen-pop: who is calling whom, each match enriched with its manager, last interactions and
open tasks, as the rung agent's popup shows it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Integer,
    Select,
    bindparam,
    cast,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import identify
from hub.crm.call_intake.rows import external_number, is_ignored
from hub.crm.call_intake.unit import AGENT, RING_STATE
from hub.crm.models import Client, Lead, Task, TimelineEntry, User, utcnow
from hub.crm.ports import CallRinging, CallSettings
from hub.crm.validate import iso
from hub.db import Prepared, Reads

INTERACTION_KINDS = ("call", "sms", "whatsapp", "telegram", "email", "note")
POP_MATCHES = 5  # matches enriched with history and tasks in a screen-pop
POP_TASKS = 5


def pop_payload(fact: CallRinging, settings: CallSettings, *, call_id: int | None, direction: str,
                number: str | None, started_at: datetime | None, matches: list[dict[str, Any]],
                lead_created: int | None) -> dict[str, Any]:
    """The screen-pop (``hub.crm.resources.PopUp``): who is calling whom (``call_id`` None while the
    call's row is not written). Built as a dict, not through the class: a lead made in a batch that
    defers its writes gets its id after this payload is built, in the very match dict it holds (the
    test suite checks every published pop-up against the class's schema)."""
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


# what the popup shows of a match's owner, as rows of one shape (a UNION ALL needs one): the owner's
# slot in the statement, the part (_HEAD, _ENTRY, _TASK), then the part's columns in that layout
_HEAD, _ENTRY, _TASK = 0, 1, 2


def _constant(value: int) -> Any:
    return literal_column(str(value), Integer)  # written in the SQL: PostgreSQL types a bound one as text


def _typed_null(column: Any) -> Any:
    return cast(null(), column.type)


_LAYOUT = ("slot", "part", "row_id", "ref", "first", "second", "text", "at", "payload")


def _in_layout(*columns: Any) -> Select[Any]:
    return select(*(column.label(name) for column, name in zip(columns, _LAYOUT, strict=True)))


def _owner_parts(slot: int, kind: str) -> list[Select[Any]]:
    """One owner's head (name, manager), last interactions and open tasks, each limited as the popup
    lists them: three SELECTs of the shared layout."""
    model, entries_owner, tasks_owner = (
        (Lead, TimelineEntry.lead_id, Task.lead_id) if kind == "lead"
        else (Client, TimelineEntry.client_id, Task.client_id))
    owner: BindParameter[Any] = bindparam(f"owner_{slot}")
    number = _constant(slot)
    head = (_in_layout(number, _constant(_HEAD), User.id, _typed_null(TimelineEntry.deal_id), model.name,
                   User.name, _typed_null(TimelineEntry.text), _typed_null(TimelineEntry.occurred_at),
                   _typed_null(TimelineEntry.payload))
            .select_from(model).outerjoin(User, User.id == model.manager_id).where(model.id == owner))
    entries = (_in_layout(number, _constant(_ENTRY), TimelineEntry.id, TimelineEntry.deal_id,
                      TimelineEntry.kind, TimelineEntry.direction, TimelineEntry.text,
                      TimelineEntry.occurred_at, TimelineEntry.payload)
               .where(entries_owner == owner, or_(*(TimelineEntry.kind == k for k in INTERACTION_KINDS)))
               .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc()).limit(3))
    tasks = (_in_layout(number, _constant(_TASK), Task.id, Task.assignee_id, Task.subject, Task.kind,
                    _typed_null(TimelineEntry.text), Task.due_at, _typed_null(TimelineEntry.payload))
             .where(tasks_owner == owner, Task.completed_at.is_(None))
             .order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(POP_TASKS))
    return [head, entries, tasks]


@functools.cache
def _enrichment(kinds: tuple[str, ...]) -> Prepared:
    """The heads, interactions and tasks of owners of these kinds, in one statement (compiled once per
    shape: one thread hop or round trip for the whole popup)."""
    parts = [part.subquery() for slot, kind in enumerate(kinds) for part in _owner_parts(slot, kind)]
    union = union_all(*(select(*part.c) for part in parts)).subquery()
    return Prepared(select(*union.c))


def _owner_of(match: dict[str, Any]) -> tuple[str, int] | None:
    if match["type"] == "user":
        return None
    return ("lead", match["id"]) if match["type"] == "lead" else ("client", match["client_id"])


async def enrich_all(session: AsyncSession, matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Matches of /identify plus the main manager, the company (for a contact person), the last three
    interactions and the open tasks: one compiled statement on the session's connection."""
    owners = list(dict.fromkeys(owner for m in matches if (owner := _owner_of(m)) is not None))
    if not owners:
        return [dict(m) for m in matches]
    if session.new or session.dirty or session.deleted:
        await session.flush()  # the driver connection below does not autoflush
    return await enrich_on(await session.connection(), matches)


async def enrich_on(conn: Reads, matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``enrich_all`` on a connection (no session: ``Database.quick_read``)."""
    owners = list(dict.fromkeys(owner for m in matches if (owner := _owner_of(m)) is not None))
    if not owners:
        return [dict(m) for m in matches]
    rows = await _enrichment(tuple(kind for kind, _ in owners)).all(
        conn, **{f"owner_{slot}": owner for slot, (_, owner) in enumerate(owners)})
    found = [_Owner() for _ in owners]
    for slot, part, *columns in rows:
        found[slot].add(part, columns)
    now = utcnow()
    return [m if (owner := _owner_of(m)) is None else found[owners.index(owner)].enriched(m, now)
            for m in matches]


class _Owner:
    """One owner's rows of the enrichment statement, and what they make of a match."""

    def __init__(self) -> None:
        self.head: tuple[Any, ...] = (None, None, None)
        self.entries: list[tuple[Any, ...]] = []
        self.tasks: list[tuple[Any, ...]] = []

    def add(self, part: int, columns: list[Any]) -> None:
        row_id, ref, first, second, text, at, payload = columns
        if part == _HEAD:
            self.head = (first, row_id, second)
        elif part == _ENTRY:
            self.entries.append((row_id, first, second, at, text, payload, ref))
        else:
            self.tasks.append((row_id, first, second, at, ref))

    def enriched(self, match: dict[str, Any], now: datetime) -> dict[str, Any]:
        name, manager_id, manager_name = self.head
        enriched = dict(match)
        if match["type"] == "contact":
            enriched["company"] = {"id": match["client_id"], "name": name}
        enriched["manager"] = {"id": manager_id, "name": manager_name} if manager_id is not None else None
        # a UNION ALL keeps no order: each part is sorted again as its SELECT sorted it
        entries = sorted(self.entries, key=lambda e: (e[3], e[0]), reverse=True)
        enriched["last_interactions"] = [
            {"id": i, "kind": kind, "direction": direction, "occurred_at": iso(at), "text": text[:200],
             "status": (payload or {}).get("status") if kind == "call" else None, "deal_id": deal_id}
            for i, kind, direction, at, text, payload, deal_id in entries]
        tasks = sorted(self.tasks, key=lambda t: (t[3] is None, t[3] or now, t[0]))
        enriched["open_tasks"] = [
            {"id": i, "subject": subject, "kind": kind, "due_at": iso(due),
             "overdue": due is not None and due < now, "assignee_id": assignee}
            for i, subject, kind, due, assignee in tasks]
        return enriched


async def enrich(session: AsyncSession, match: dict[str, Any]) -> dict[str, Any]:
    """One match enriched (``enrich_all``)."""
    return (await enrich_all(session, [match]))[0]


@dataclass(frozen=True, slots=True)
class PopRead:
    """What a ring's popup shows, read before the ring's unit of work (``read_pop``)."""

    ended: bool  # the call has ended already: a ring replayed after the end pops nothing
    agent_id: int | None  # whom the extension rings (None: nobody to pop to)
    direction: str
    number: str | None
    matches: list[dict[str, Any]] | None  # the caller's matches, enriched (None: not identified)
    shown: list[dict[str, Any]]  # what the popup lists (the matches, or the colleague calling)


async def read_pop(conn: Reads, fact: CallRinging, settings: CallSettings) -> PopRead:
    """The early pop's reads (``Database.quick_read``): has the call ended, whom does the extension
    ring, who is calling (identified and enriched, or the colleague of an internal call)."""
    number = external_number(fact.number, settings.region)
    stored_direction, ended_at, agent_id = (await RING_STATE.all(
        conn, key=fact.call_key, extension=fact.extension))[0]
    direction = stored_direction or fact.direction
    if ended_at is not None:
        return PopRead(True, None, direction, number, None, [])
    if number and direction != "internal":
        found = await identify.identify_on(conn, phone=number, region=settings.region)
        matches = await enrich_on(conn, found[:POP_MATCHES]) + found[POP_MATCHES:]
        return PopRead(False, agent_id, direction, number, matches, matches)
    shown: list[dict[str, Any]] = []
    if direction == "internal" and (caller := fact.caller_extension or fact.number):
        colleague = await AGENT.all(conn, extension=caller)
        if colleague:
            shown = [colleague_match(colleague[0][0], colleague[0][1])]
    return PopRead(False, agent_id, direction, number, None, shown)
