"""What one unit of work of call facts shares (``CallUnit``) and how a step reads the rows it needs:
from the batch's prefetch when it has them, else from the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import BindParameter, Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.calls import users_by_extension
from hub.crm.errors import ValidationError
from hub.crm.models import Call, Client, ContactPerson, Deal, Lead, Stage, User, UserExtension, utcnow
from hub.crm.ports import CallAnsweredFact, CallEndedFact, CallRingEnded, CallRinging, CallSettings
from hub.db import Prepared


class UnitOfWork(Protocol):
    """``hub.db.Database``: a transaction that commits, then publishes the recorded events."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...


Fact = CallRinging | CallRingEnded | CallAnsweredFact | CallEndedFact
DEFAULT_SETTINGS = CallSettings()


@dataclass(frozen=True, slots=True)
class Agent:
    """The user an extension rings: what the intake needs of them."""

    id: int
    name: str


@dataclass(slots=True)
class Deferred:
    """A batch of rings writes its new rows together: leads (one INSERT), then, with their ids,
    contact points and calls (one INSERT each); ``first`` runs after the leads' flush, ``second``
    after the calls' (the payloads get their ids before the commit publishes them)."""

    first: list[Callable[[], None]]
    second: list[Callable[[], None]]
    leads: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]  # number → (match, its copies)


@dataclass(slots=True)
class CallUnit:
    """What one unit of work of call facts shares: the rows a batch read once (``prefetch``), the
    rows to keep referenced (the identity map holds them weakly), a batch of rings' deferred writes,
    and who to tell of a lead made."""

    calls: dict[str, Call | None] | None = None  # call key → its locked row, None when there is none yet
    agents: dict[str, Agent | None] | None = None  # extension → the active user it rings, None: nobody
    deals: dict[tuple[str, int], list[Deal]] = field(default_factory=dict)  # (kind, id) → open deals
    keep: list[Any] = field(default_factory=list)
    deferred: Deferred | None = None
    on_lead: Callable[[str], None] | None = None


CALL_SEEN = Prepared(select(Call.id).where(Call.linkedid == bindparam("key")))
AGENT = Prepared(select(User.id, User.name).join(UserExtension, UserExtension.user_id == User.id)
                 .where(UserExtension.extension == bindparam("extension"), User.active.is_(True)))


def _ring_state() -> Prepared:
    """The call's direction and end (both None: no row yet) and the active user the extension rings
    (None: nobody), in one statement: one thread hop or round trip before a popup."""
    key: BindParameter[str] = bindparam("key")
    return Prepared(select(
        select(Call.direction).where(Call.linkedid == key).scalar_subquery(),
        select(Call.ended_at).where(Call.linkedid == key).scalar_subquery(),
        select(User.id).join(UserExtension, UserExtension.user_id == User.id)
        .where(UserExtension.extension == bindparam("extension"), User.active.is_(True)).scalar_subquery()))


RING_STATE = _ring_state()


def valid_key(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= 200


def _extensions(fact: Fact) -> set[str]:
    if isinstance(fact, CallEndedFact):
        found = {fact.agent_extension, *fact.rung_extensions}
    else:
        found = {fact.extension}
    return {e for e in found if isinstance(e, str) and e and len(e) <= 32}


async def prefetch(session: AsyncSession, facts: list[Fact], unit: CallUnit) -> None:
    """Two statements for a whole batch instead of two per fact: the calls' rows (locked) and the
    users the facts' extensions ring. Only for this session (this unit of work)."""
    keys = list(dict.fromkeys(f.call_key for f in facts if valid_key(f.call_key)))
    if keys and len(keys) <= 2 and all(isinstance(f, CallRinging) for f in facts):
        # a ring or two (the screen-pop): a compiled look for the row, one hop; a call already
        # there (a queue rings another agent) is read and locked by find_call as usual
        conn = await session.connection()
        unit.calls = {k: None for k in keys if not await CALL_SEEN.all(conn, key=k)}
    elif keys:
        rows = (await session.scalars(
            select(Call).where(Call.linkedid.in_(keys)).with_for_update()
            .execution_options(populate_existing=True))).all()
        found = {c.linkedid: c for c in rows}
        unit.calls = {k: found.get(k) for k in keys}
        ending = [found[f.call_key] for f in facts if isinstance(f, CallEndedFact) and f.call_key in found]
        await _prefetch_people(session, [c for c in ending if c.ended_at is None], unit)
    wanted: set[str] = set()
    for fact in facts:
        wanted |= _extensions(fact)
    agents: dict[str, Agent | None] = {}
    if wanted:
        conn = await session.connection()
        for extension in sorted(wanted):
            agent_rows = await AGENT.all(conn, extension=extension)
            agents[extension] = Agent(*agent_rows[0]) if agent_rows else None
    unit.agents = agents


async def _prefetch_people(session: AsyncSession, calls: list[Call], unit: CallUnit) -> None:
    """For the calls about to end: their clients, contact persons and leads (name, manager) and
    the open deals of those clients and leads (the placement rule), one statement per kind."""
    contacts = {c.contact_id for c in calls if c.contact_id is not None}
    clients = {c.client_id for c in calls if c.client_id is not None}
    lead_ids = {c.lead_id for c in calls if c.lead_id is not None and c.client_id is None}
    keep = unit.keep
    deals: dict[tuple[str, int], list[Deal]] = {}
    for model, ids in ((ContactPerson, contacts), (Client, clients), (Lead, lead_ids)):
        if ids:
            keep.extend((await session.scalars(select(model).where(model.id.in_(ids)))).all())
    for column, kind, ids in ((Deal.client_id, "client", clients), (Deal.lead_id, "lead", lead_ids)):
        if not ids:
            continue
        for key in ids:
            deals[(kind, key)] = []
        found = (await session.scalars(select(Deal).join(Stage, Stage.id == Deal.stage_id)
                                       .where(column.in_(ids), Stage.kind == "active"))).all()
        for deal in found:
            deals[(kind, getattr(deal, column.key))].append(deal)
    unit.deals = deals


async def agents_by_extension(session: AsyncSession, extensions: set[str],
                              unit: CallUnit | None = None) -> Mapping[str, Agent | User]:
    """Active users by extension, from the batch's prefetch when it has them all."""
    wanted = {e for e in extensions if isinstance(e, str) and e and len(e) <= 32}
    cache = unit.agents if unit is not None else None
    if cache is not None and wanted <= cache.keys():
        return {e: user for e in wanted if (user := cache[e]) is not None}
    return await users_by_extension(session, wanted)


async def agent_of(session: AsyncSession, extension: str,
                   unit: CallUnit | None = None) -> Agent | User | None:
    """The active user an extension rings."""
    return (await agents_by_extension(session, {extension}, unit)).get(extension)


def _lock_query(key: str) -> Select[Call]:
    return (select(Call).where(Call.linkedid == key).with_for_update()
            .execution_options(populate_existing=True))


async def find_call(session: AsyncSession, key: str, unit: CallUnit | None = None) -> Call | None:
    """The call's row if there is one, locked for this unit of work (from the batch's prefetch)."""
    if not valid_key(key):
        raise ValidationError({"call_key": "must be a text of 1 to 200 characters"})
    cache = unit.calls if unit is not None else None
    if cache is not None and key in cache:
        return cache[key]
    return await session.scalar(_lock_query(key))


async def call_row(session: AsyncSession, key: str, unit: CallUnit | None = None, **values: Any) -> Call:
    """The call's row, made on first sight and locked for this unit of work (PostgreSQL: FOR UPDATE;
    SQLite writers are serialised anyway). A concurrent intake of the same call loses the insert
    race harmlessly and reads the winner's row. ``values``: the columns of a new row."""
    call = await find_call(session, key, unit)
    if call is not None:
        return call
    cache = unit.calls if unit is not None else None
    values.setdefault("rung_user_ids", [])
    call = Call(linkedid=key, created_at=utcnow(), **values)
    if cache is not None or session.get_bind().dialect.name == "sqlite":
        # SQLite: one writer at a time (BEGIN IMMEDIATE), nobody can insert it between our read and
        # here. A batch (CallIntake): no savepoint per row; if another hub process did insert it,
        # the fact fails here and runs again in a unit of its own, which takes the path below.
        session.add(call)
        await session.flush()
    else:
        try:
            async with session.begin_nested():
                session.add(call)
                await session.flush()
        except IntegrityError:
            call = await session.scalar(_lock_query(key))
            if call is None:  # pragma: no cover - the unique violation was about something else
                raise
    if cache is not None:
        cache[key] = call
    return call
