"""The timeline of a deal, client or lead: calls, messages, letters, notes, stage changes.

An entry on a deal also carries the deal's client or lead, so a person's timeline shows the entries
of their deals too. Channels add entries with ``add_entry`` and their own ``external_key`` so that a
replayed event (AMI resync, Telegram redelivery, IMAP re-fetch) adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Result, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, events, resources
from hub.crm.errors import Forbidden, NotFound, ValidationError
from hub.crm.models import (
    DIRECTIONS,
    TIMELINE_KINDS,
    Client,
    Deal,
    Lead,
    TimelineEntry,
    User,
    utcnow,
)
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.resources import Ref
from hub.crm.validate import Fields, iso
from hub.serialise import plain

TARGETS = {"deal": Deal, "client": Client, "lead": Lead}
MAX_NOTE = 20_000


# --- helpers shared by the deal services ------------------------------------------------------------

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    """Text from a channel is kept whole; only what no database can store — NUL (PostgreSQL) and a
    lone UTF-16 surrogate (no UTF-8 for it, as a JSON ``\\ud800`` in a webhook can bring) — is
    replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def storable_json(value: Any) -> Any:
    """A JSON value with every string in it ``storable``."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


async def refs(session: AsyncSession, column: Any, label: Any, ids: Iterable[int | None]) -> dict[int, Ref]:
    """``{id: Ref(id, name)}`` of the rows with these ids (``column``: the id, ``label``: the name)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows: Result[int, str | None] = await session.execute(select(column, label).where(column.in_(wanted)))
    return {i: Ref(id=i, name=name) for i, name in rows}


async def user_refs(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, Ref]:
    return await refs(session, User.id, User.name, ids)


class CompiledWrite:
    """A Core INSERT / UPDATE (… RETURNING) compiled once per dialect and run on the unit of work's
    driver connection (``hub.db.Prepared`` for writes; the message intake's hot path): one aiosqlite
    thread hop instead of four, one asyncpg round trip without SQLAlchemy's execution around it. Run
    that way only when the driver connection is inside its transaction already (asyncpg's begins
    with the adapter's first statement); else through the session, which begins it. Column defaults
    and ``onupdate`` are not applied: bind every column."""

    def __init__(self, build: Callable[[Callable[..., Any]], Any]) -> None:
        self.build = build  # (the dialect's insert) → the statement, its values bound by name
        self._statements: dict[str, Any] = {}
        self._plans: dict[str, tuple[str, list[tuple[str, Any, Any]], list[Any]]] = {}

    def statement(self, dialect: Any) -> Any:
        if dialect.name not in self._statements:
            self._statements[dialect.name] = self.build(
                postgresql_insert if dialect.name == "postgresql" else sqlite_insert)
        return self._statements[dialect.name]

    def _plan(self, dialect: Any) -> tuple[str, list[tuple[str, Any, Any]], list[Any]]:
        statement = self.statement(dialect)
        compiled = statement.compile(dialect=dialect)
        binds = [(name, compiled.params[name],
                  compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                 for name in compiled.positiontup or []]
        results = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                   for column in statement.exported_columns]
        plan = self._plans[dialect.driver] = (str(compiled), binds, results)
        return plan

    async def first(self, session: AsyncSession, **params: Any) -> tuple[Any, ...] | None:
        """The first returned row (None: nothing was written, or nothing returned)."""
        if session.new or session.dirty or session.deleted:
            await session.flush()
        conn = await session.connection()
        dialect = conn.dialect
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if dialect.driver == "aiosqlite":
            inside = driver.in_transaction
        elif dialect.driver == "asyncpg":
            inside = driver.is_in_transaction()
        else:
            inside = False
        if not inside:
            result = await session.execute(self.statement(dialect), params)
            # AsyncSession.execute is typed to return Result; for a DML statement it is a CursorResult
            row = result.first() if result.returns_rows else None  # type: ignore[attr-defined]
            return tuple(row) if row is not None else None
        sql, binds, results = self._plans.get(dialect.driver) or self._plan(dialect)
        args = []
        for name, default, process in binds:
            value = params.get(name, default)
            args.append(process(value) if process is not None else value)
        if dialect.driver == "aiosqlite":
            rows = await driver.execute_fetchall(sql, args)
        else:
            rows = await driver.fetch(sql, *args)
        if not rows or not results:  # (PostgreSQL: an INSERT of no RETURNING of its own returns its id)
            return None
        return tuple(value if process is None else process(value)
                     for value, process in zip(rows[0], results, strict=True))


# --- dicts -------------------------------------------------------------------------------------------

def entry_dict(entry: TimelineEntry, authors: Mapping[int, Ref] | None = None) -> dict[str, Any]:
    """The API shape of an entry (``entry_resource``)."""
    return plain(entry_resource(entry, authors))


def entry_resource(entry: TimelineEntry, authors: Mapping[int, Ref] | None = None) -> resources.TimelineEntry:
    """``authors`` (``user_refs``) names the author; without it the author carries only its id. The
    attachments must be loaded (``selectinload``) or be new."""
    author = None
    if entry.author_id is not None:
        author = (authors or {}).get(entry.author_id) or Ref(id=entry.author_id, name=None)
    return resources.TimelineEntry(
        id=entry.id, kind=entry.kind, direction=entry.direction, occurred_at=iso(entry.occurred_at),
        author=author, text=entry.text, payload=entry.payload or {}, pinned=bool(entry.pinned),
        deal_id=entry.deal_id, client_id=entry.client_id, lead_id=entry.lead_id,
        attachments=[resources.Attachment(id=a.id, filename=a.filename, content_type=a.content_type,
                                          size=a.size) for a in entry.attachments],
        created_at=iso(entry.created_at))


async def entry_dicts(session: AsyncSession, entries: list[TimelineEntry]) -> list[dict[str, Any]]:
    authors = await user_refs(session, (e.author_id for e in entries))
    return [entry_dict(e, authors) for e in entries]


async def entry_scope(session: AsyncSession, entry: TimelineEntry) -> dict[str, Any]:
    """Who may receive live events about this entry (see ``access.may_receive``): an entry on a deal
    carries ``responsible_id`` and goes only to those who may open the deal, as ``get_entry``."""
    scope: dict[str, Any] = {}
    if entry.deal_id is not None:
        scope["responsible_id"] = await session.scalar(
            select(Deal.responsible_id).where(Deal.id == entry.deal_id))
    if entry.client_id is not None:
        scope["manager_id"] = await session.scalar(
            select(Client.manager_id).where(Client.id == entry.client_id))
    elif entry.lead_id is not None:
        manager_id = await session.scalar(select(Lead.manager_id).where(Lead.id == entry.lead_id))
        scope["manager_id"] = manager_id
        scope["unassigned"] = manager_id is None
    return scope


# --- the internal API for channels and other services -------------------------------------------------

async def add_entry(session: AsyncSession, *, kind: str, text: str = "", direction: str | None = None,
                    author_id: int | None = None, deal_id: int | None = None, client_id: int | None = None,
                    lead_id: int | None = None, payload: dict[str, Any] | None = None,
                    occurred_at: datetime | None = None, external_key: str | None = None,
                    pinned: bool = False) -> TimelineEntry | None:
    """Add an entry and publish ``timeline.added`` after commit. Returns None (adding nothing) when an
    entry with ``external_key`` exists already — also when a concurrent transaction wins the race."""
    errors: dict[str, str] = {}
    if kind not in TIMELINE_KINDS:
        errors["kind"] = f"must be one of: {', '.join(TIMELINE_KINDS)}"
    if direction is not None and direction not in DIRECTIONS:
        errors["direction"] = f"must be one of: {', '.join(DIRECTIONS)}"
    if not isinstance(text, str):
        errors["text"] = "must be a string"
    if payload is not None and not isinstance(payload, dict):
        errors["payload"] = "must be an object"
    if occurred_at is not None and (not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None):
        errors["occurred_at"] = "must be an aware datetime"
    if external_key is not None:
        if not isinstance(external_key, str) or not external_key or len(external_key) > 300:
            errors["external_key"] = "must be a text of 1 to 300 characters"
    if deal_id is None and client_id is None and lead_id is None:
        errors["target"] = "an entry belongs to a deal, a client or a lead"
    if errors:
        raise ValidationError(errors)
    if external_key is not None:
        external_key = storable(external_key)
        if await session.scalar(select(TimelineEntry.id).where(TimelineEntry.external_key == external_key)):
            return None

    deal = None
    if deal_id is not None:
        deal = await session.get(Deal, deal_id)
        if deal is None:
            raise ValidationError({"deal_id": "does not exist"})
        if client_id is None and lead_id is None:
            client_id, lead_id = deal.client_id, deal.lead_id
    if client_id is not None and await session.get(Client, client_id) is None:
        raise ValidationError({"client_id": "does not exist"})
    if lead_id is not None and await session.get(Lead, lead_id) is None:
        raise ValidationError({"lead_id": "does not exist"})

    now = utcnow()
    entry = TimelineEntry(
        kind=kind, text=storable(text), direction=direction, author_id=author_id, deal_id=deal_id,
        client_id=client_id, lead_id=lead_id, payload=storable_json(payload or {}),
        occurred_at=occurred_at or now, external_key=external_key, pinned=bool(pinned),
        created_at=now, attachments=[],
    )
    if external_key is None:
        session.add(entry)
        await session.flush()
    else:
        try:
            async with session.begin_nested():
                session.add(entry)
                await session.flush()
        except IntegrityError:
            # A concurrent replay committed the same key between our check and our insert.
            return None
    if deal is not None:
        at = entry.occurred_at
        if deal.last_activity_at is None or at > deal.last_activity_at:
            deal.last_activity_at = at
        await session.flush()
    authors = await user_refs(session, [author_id])
    events.emit(session, "timeline.added", {"entry": entry_dict(entry, authors)},
                scope=await entry_scope(session, entry))
    return entry


# --- services for people -------------------------------------------------------------------------------

async def _target(session: AsyncSession, actor: User, target: str, target_id: Any) -> Any:
    model = TARGETS.get(target) if isinstance(target, str) else None
    if model is None:
        raise ValidationError({"target": "must be deal, client or lead"})
    if isinstance(target_id, bool) or not isinstance(target_id, int) or target_id < 1 or target_id > 2**62:
        raise NotFound(f"{target} not found")
    return await access.visible(session, actor, await session.get(model, target_id), target)


async def add_note(session: AsyncSession, actor: User, target: str, target_id: int,
                   data: Any) -> dict[str, Any]:
    obj = await _target(session, actor, target, target_id)
    v = Fields(data)
    text = v.text("text", required=True, max_len=MAX_NOTE)
    pinned = v.boolean("pinned", default=False)
    v.check()
    entry = await add_entry(session, kind="note", text=text, author_id=actor.id, pinned=pinned,
                            **{f"{target}_id": obj.id})
    assert entry is not None
    return entry_dict(entry, await user_refs(session, [actor.id]))


def _parse_kinds(kinds: Any) -> list[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [k for k in (part.strip() for part in kinds.split(",")) if k]
    if not isinstance(kinds, list | tuple | set) or not all(isinstance(k, str) for k in kinds):
        raise ValidationError({"kind": "must be a list of kinds"})
    bad = sorted({k for k in kinds if k not in TIMELINE_KINDS})
    if bad:
        raise ValidationError({"kind": f"unknown kind; use: {', '.join(TIMELINE_KINDS)}"})
    return list(kinds) or None


async def list_timeline(session: AsyncSession, actor: User, target: str, target_id: int, *,
                        kinds: Any = None, cursor: str | None = None, limit: int | None = None) -> Page:
    """Newest first (id desc), cursor-paginated, optionally only the given kinds."""
    wanted = _parse_kinds(kinds)
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    obj = await _target(session, actor, target, target_id)
    column = {"deal": TimelineEntry.deal_id, "client": TimelineEntry.client_id,
              "lead": TimelineEntry.lead_id}[target]
    query = select(TimelineEntry).where(column == obj.id).options(selectinload(TimelineEntry.attachments))
    if target != "deal" and not await access.sees_all(session, actor):
        # A person's timeline shows entries of the deals one may open only (``access.deals_filter``).
        own: ColumnElement[bool] = TimelineEntry.deal_id.in_(
            select(Deal.id).where(await access.deals_filter(session, actor)))
        query = query.where(or_(TimelineEntry.deal_id.is_(None), own))
    if wanted:
        query = query.where(TimelineEntry.kind.in_(wanted))
    if after is not None:
        query = query.where(TimelineEntry.id < after)
    rows = list((await session.scalars(query.order_by(TimelineEntry.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await entry_dicts(session, rows), encode_cursor(rows[-1].id) if more and rows else None)


async def get_entry(session: AsyncSession, actor: User, entry_id: int) -> TimelineEntry:
    """The entry if the actor may see what it is on, else NotFound."""
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or not 0 < entry_id <= 2**62:
        raise NotFound("timeline entry not found")
    entry = await session.scalar(
        select(TimelineEntry).where(TimelineEntry.id == entry_id)
        .options(selectinload(TimelineEntry.attachments))
    )
    if entry is None:
        raise NotFound("timeline entry not found")
    try:
        if entry.deal_id is not None:
            await access.visible(session, actor, await session.get(Deal, entry.deal_id), "deal")
        elif entry.client_id is not None:
            await access.visible(session, actor, await session.get(Client, entry.client_id), "client")
        else:
            await access.visible(session, actor, await session.get(Lead, entry.lead_id), "lead")
    except NotFound as exc:
        raise NotFound("timeline entry not found") from exc
    return entry


async def set_pinned(session: AsyncSession, actor: User, entry_id: int, pinned: Any) -> dict[str, Any]:
    if not isinstance(pinned, bool):
        raise ValidationError({"pinned": "must be true or false"})
    entry = await get_entry(session, actor, entry_id)
    if entry.deal_id is not None:
        deal = await session.get(Deal, entry.deal_id)
        if deal is not None and not access.is_staff(actor) and deal.responsible_id != actor.id:
            raise Forbidden("only the responsible user or a manager may pin entries of this deal")
    entry.pinned = pinned
    await session.flush()
    result = entry_dict(entry, await user_refs(session, [entry.author_id]))
    events.emit(session, "timeline.updated", {"entry": result}, scope=await entry_scope(session, entry))
    return result
