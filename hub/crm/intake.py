"""Call intake: what the core does with the call facts of ``hub.crm.ports``.

Events are published only after the commit of the unit of work that recorded them:

- ``call_ringing``: identify the external number, create a lead for an unknown inbound caller
  (``unknown_caller = "auto"``, unless the number is ignored), remember who was rung, and send the
  screen-pop (``call.ringing``) to the rung agent only, with the identification inside.
- ``stop_ringing`` (``CallIntake.ring_ended``): ``call.ring_ended`` to the agent whose phone stopped
  ringing while the call goes on unanswered (a queue moved on to the next member): their popup closes.
- ``call_answered``: ``call.answered`` to every user rung for the call (the popups close).
- ``call_ended``: store the outcome (idempotent on the call key), write a ``call`` timeline entry
  on the person's open deal (single open deal, else the most recently active one, else the
  person's own timeline), a callback task + bell item for a missed inbound call (one open task per
  number), complete that task when an outbound call to the number is answered, ``call.ended``.

``call_ringing`` / ``call_answered`` / ``call_ended`` are one unit of work per fact. ``CallIntake``
(what a channel is handed) hands each fact to the write engine (``hub.writes``), which group-commits:
facts that arrive while a unit of work is running go together into the next one (rings before the
rest, one fact per call at a time so each call's facts keep their order). See docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import BindParameter, Select, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import contact_points, events, identify, leads, notifications, phones, routing
from hub.crm.calls import (
    call_dict,
    call_shape,
    recording_refs,
    recordings_of,
    users_by_extension,
    visible_call,
)
from hub.crm.errors import Conflict, ValidationError
from hub.crm.extensions import extensions_of
from hub.crm.models import (
    Call,
    Client,
    ContactPerson,
    ContactPoint,
    Deal,
    Lead,
    Stage,
    Task,
    TimelineEntry,
    User,
    UserExtension,
    utcnow,
)
from hub.crm.ports import (
    CallAnsweredFact,
    CallDirection,
    CallEndedFact,
    CallRingEnded,
    CallRinging,
    CallSettings,
    CallStatus,
)
from hub.crm.tasks import task_dict
from hub.crm.timeline import add_entry, entry_dict, storable, user_refs
from hub.crm.validate import Fields, iso
from hub.db import Prepared
from hub.writes import Job, WriteEngine

log = logging.getLogger(__name__)
LEAD_SOURCE = "звонок"
INTERACTION_KINDS = ("call", "sms", "whatsapp", "telegram", "email", "note")
POP_MATCHES = 5  # matches enriched with history and tasks in a screen-pop
POP_TASKS = 5
DEFAULT_SETTINGS = CallSettings()
MAX_BATCH = 32  # facts per unit of work in CallIntake (a ring waits at most one such batch)
# calls this intake had a fact of, remembered (oldest forgotten first) so that closing the calls a
# previous run left unfinished never touches one of this run's
SEEN_CALLS = 100_000


class UnitOfWork(Protocol):
    """``hub.db.Database``: a transaction that commits, then publishes the recorded events."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...


Fact = CallRinging | CallRingEnded | CallAnsweredFact | CallEndedFact
CallStep = Callable[..., Awaitable[Any]]  # (session, fact, settings, *, unit) → result


class CallIntake:
    """``hub.crm.ports.CallIntakePort`` over a database: what the composition root hands a channel.

    Each fact is a step for the write engine (``hub.writes``), keyed by its call (a call's facts keep
    their order), rings urgent (a batch with rings holds only rings; on PostgreSQL they have a
    writer of their own, so a screen-pop never waits for another call's bookkeeping to commit).
    What a unit of work of several facts reads once is its ``CallUnit`` (``_CallHooks``).
    """

    def __init__(self, db: UnitOfWork, settings: CallSettings = DEFAULT_SETTINGS, *,
                 max_batch: int = MAX_BATCH, board: routing.Board | None = None) -> None:
        self.db = db
        self.settings = settings
        self.board = board  # who is free (the presence board), for routing callbacks; None: no routing
        engine = getattr(db, "engine", None)
        dialect = getattr(getattr(engine, "dialect", None), "name", "sqlite")
        self.engine: WriteEngine[CallUnit] = WriteEngine(
            db, _CallHooks(self), max_batch=max_batch, concurrent=dialect != "sqlite", name="call-intake")
        self._leads = 0  # leads this intake made (for the rings read before them)
        self._lead_made: dict[str, int] = {}  # number → self._leads when its lead was made
        self._seen: dict[str, None] = {}  # call keys with a fact submitted here, oldest first
        self._turns: dict[str, asyncio.Future[None]] = {}  # call key → the latest fact's turn

    @property
    def concurrent(self) -> bool:
        return self.engine.concurrent

    @property
    def units(self) -> int:
        """Units of work committed (for tests and benchmarks)."""
        return self.engine.units

    @property
    def applied(self) -> int:
        """Facts applied in them."""
        return self.engine.applied

    async def ringing(self, fact: CallRinging) -> dict[str, Any]:
        """Pop before persist: the popup is read (who is calling, on a reader) and published to the
        rung agent at once; the call's row, a lead for an unknown caller and the ids the popup lacked
        (``call.recorded``) follow in the ring's unit of work. Should that unit fail, the popup is
        taken back (``call.ring_ended``, reason ``not_recorded``). A fact of the same call is handed
        over only after this returns (one lane per call), so nothing of the call overtakes its pop."""
        turn = await self._turn(fact.call_key)
        try:
            mark = self._leads
            early = await self._pop_early(fact)
            step: CallStep = ring
            if early is not None:
                step = functools.partial(ring, pre=early.matches, popped=early.agent_id is not None,
                                         unchanged=lambda n: self._lead_made.get(n, 0) <= mark)
            applied = self._enqueue(step, fact, urgent=True)
        finally:
            self._end_turn(fact.call_key, turn)
        try:
            pop: dict[str, Any] = await applied
        except Exception:
            if early is not None and early.agent_id is not None:
                self._publish_now("call.ring_ended", {"call_id": None, "call_key": fact.call_key,
                                                      "extension": fact.extension, "reason": "not_recorded"},
                                  users=[early.agent_id])
            raise
        return pop

    async def _pop_early(self, fact: CallRinging) -> _EarlyPop | None:
        """Read what the popup shows and publish it (``call.ringing``, no ``call_id`` yet). None when
        nothing can be read aside (the unit of work then reads and pops as before)."""
        reading = getattr(self.db, "reading", None)
        if reading is None or getattr(self.db, "publish_now", None) is None:
            return None
        number = external_number(fact.number, self.settings.region)
        try:
            async with reading() as session:
                conn = await session.connection()
                state = await _CALL_STATE.all(conn, key=fact.call_key)
                direction = state[0][0] if state else fact.direction
                if state and state[0][1] is not None:  # a ring replayed after the end pops nothing
                    return _EarlyPop(None, None)
                agents = await _AGENT.all(conn, extension=fact.extension)
                matches: list[dict[str, Any]] | None = None
                shown: list[dict[str, Any]] = []
                if number and direction != "internal":
                    found = await identify.identify(session, phone=number, region=self.settings.region)
                    matches = shown = [await _enrich(session, m) if i < POP_MATCHES else m
                                       for i, m in enumerate(found)]
                elif direction == "internal" and (caller := fact.caller_extension or fact.number):
                    colleague = await _AGENT.all(conn, extension=caller)
                    if colleague:
                        shown = [{"type": "user", "id": colleague[0][0], "name": colleague[0][1],
                                  "client_id": None, "open_deals": []}]
        except Exception:  # the unit of work reads it again (and fails there if it must)
            log.warning("call intake: reading the caller of %s before the unit of work failed",
                        fact.call_key, exc_info=True)
            return None
        if not agents:
            return _EarlyPop(None, matches)
        if not _valid_key(fact.call_key):  # the unit of work refuses it: no popup to take back
            return None
        agent_id = int(agents[0][0])
        self._publish_now("call.ringing", pop_payload(
            fact, self.settings, call_id=None, direction=direction, number=number,
            started_at=fact.started_at or fact.at or utcnow(), matches=shown, lead_created=None),
            users=[agent_id])
        return _EarlyPop(agent_id, matches)

    def _publish_now(self, name: str, data: dict[str, Any], users: list[int]) -> None:
        publish = getattr(self.db, "publish_now", None)
        if publish is not None:
            publish(name, data, users=users)

    def note_lead(self, number: str) -> None:
        """A lead was made for this number (maybe not committed yet): rings read before it look again."""
        self._leads += 1
        self._lead_made[number] = self._leads
        if len(self._lead_made) > 4096:  # older than any ring still waiting
            for old in list(self._lead_made)[:2048]:
                del self._lead_made[old]

    async def ring_ended(self, fact: CallRingEnded) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._submit(stop_ringing, fact)
        return result

    async def answered(self, fact: CallAnsweredFact) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._submit(answer, fact)
        return result

    async def ended(self, fact: CallEndedFact) -> dict[str, Any] | None:
        step: CallStep = end if self.board is None else functools.partial(end, board=self.board)
        result: dict[str, Any] | None = await self._submit(step, fact)
        return result

    async def close_unfinished(self, live: frozenset[str]) -> list[dict[str, Any]]:
        """After the PBX listed the calls it has (at a start or a reconnect): each call the database
        holds as unfinished that is neither in ``live`` nor one this intake had a fact of ended while
        the hub was away. It ends as ``ended`` would end it (timeline entry, callback task,
        ``call.ended``), at the last moment known of it. → the stored calls."""
        keep = live | self._seen.keys()
        async with self.db.transaction() as s:
            facts = await unfinished_calls(s, keep)
        if facts:
            log.info("calls left unfinished by an earlier run, now ended: %d", len(facts))
        closed = [await self.ended(fact) for fact in facts]
        return [call for call in closed if call is not None]

    def _note_seen(self, call_key: str) -> None:
        self._seen[call_key] = None
        if len(self._seen) > SEEN_CALLS:
            del self._seen[next(iter(self._seen))]

    async def _submit(self, step: CallStep, fact: Fact) -> Any:
        turn = await self._turn(fact.call_key)
        try:
            applied = self._enqueue(step, fact)
        finally:
            self._end_turn(fact.call_key, turn)
        return await applied

    def _enqueue(self, step: CallStep, fact: Fact, urgent: bool = False) -> asyncio.Future[Any]:
        self._note_seen(fact.call_key)
        settings = self.settings

        async def apply(session: AsyncSession, unit: CallUnit) -> Any:
            return await step(session, fact, settings, unit=unit)

        return self.engine.enqueue(fact.call_key, apply, urgent=urgent, payload=fact)

    async def _turn(self, key: str) -> asyncio.Future[None]:
        """A call's facts reach the write engine in the order they arrived: a ring reads and pops
        before it is handed over, and a later fact of its call waits for that (one lane per call
        in the AMI connection already does; this keeps the order for any caller)."""
        before = self._turns.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns[key] = mine
        if before is not None:
            try:
                await asyncio.shield(before)
            except asyncio.CancelledError:  # given up: the facts after it still wait for the one before
                before.add_done_callback(lambda _: self._end_turn(key, mine))
                raise
        return mine

    def _end_turn(self, key: str, turn: asyncio.Future[None]) -> None:
        if not turn.done():
            turn.set_result(None)
        if self._turns.get(key) is turn:
            del self._turns[key]


@dataclass(frozen=True, slots=True)
class _EarlyPop:
    """What ``CallIntake.ringing`` read before the ring's unit of work: the agent it popped to (None:
    no popup) and the caller's matches, enriched (None: not read, the unit identifies)."""

    agent_id: int | None
    matches: list[dict[str, Any]] | None


@dataclass(slots=True)
class CallUnit:
    """What one unit of work of call facts shares: the rows a batch read once (``_prefetch``), the
    rows to keep referenced (the identity map holds them weakly), a batch of rings' deferred writes,
    and who to tell of a lead made."""

    calls: dict[str, Call | None] | None = None  # call key → its locked row, None when there is none yet
    agents: dict[str, Agent | None] | None = None  # extension → the active user it rings, None: nobody
    deals: dict[tuple[str, int], list[Deal]] = field(default_factory=dict)  # (kind, id) → open deals
    keep: list[Any] = field(default_factory=list)
    deferred: _Deferred | None = None
    on_lead: Callable[[str], None] | None = None


class _CallHooks:
    """The write engine's hooks for call facts: a batch reads its calls and agents in two statements;
    a batch of rings writes its new leads, contact points and calls together (``_Deferred``)."""

    def __init__(self, intake: CallIntake) -> None:
        self.intake = intake

    async def open(self, session: AsyncSession, jobs: Sequence[Job[CallUnit]], alone: bool) -> CallUnit:
        unit = CallUnit(on_lead=self.intake.note_lead)
        if not alone:  # alone: the plain path (a savepoint around a new call's row)
            await _prefetch(session, [job.payload for job in jobs], unit)
            if len(jobs) > 1 and all(job.urgent for job in jobs):
                unit.deferred = _Deferred([], [], {})
        return unit

    async def close(self, session: AsyncSession, unit: CallUnit) -> None:
        deferred = unit.deferred
        if deferred is None:
            return
        await session.flush()  # the leads
        for step in deferred.first:
            step()
        await session.flush()  # their contact points, the calls
        for step in deferred.second:
            step()


async def call_ringing(db: UnitOfWork, fact: CallRinging,
                       settings: CallSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    async with db.transaction() as s:
        return await ring(s, fact, settings)


async def call_answered(db: UnitOfWork, fact: CallAnsweredFact,
                        settings: CallSettings = DEFAULT_SETTINGS) -> dict[str, Any] | None:
    async with db.transaction() as s:
        return await answer(s, fact, settings)


async def call_ended(db: UnitOfWork, fact: CallEndedFact,
                     settings: CallSettings = DEFAULT_SETTINGS) -> dict[str, Any] | None:
    async with db.transaction() as s:
        return await end(s, fact, settings)


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


# --- helpers -------------------------------------------------------------------------------------------

def external_number(raw: str | None, region: str) -> str | None:
    """E.164 when the number is valid, else its digits (with a leading + kept), else None."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > phones.MAX_INPUT:
        return None
    try:
        return phones.normalize(raw, region)
    except ValueError:
        text = raw.strip()
        found = phones.digits(text)
        if not found:
            return None
        return ("+" + found) if text.startswith("+") else found


def is_ignored(number: str | None, settings: CallSettings) -> bool:
    if not number:
        return False
    tail = phones.tail(number)
    return bool(tail) and any(isinstance(other, str) and phones.tail(other) == tail
                              for other in settings.ignored_numbers)


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


def _seconds(value: float | None) -> int:
    return max(0, round(value or 0))


def _person(matches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The match a call belongs to: the first client, contact or (not converted) lead."""
    return next((m for m in matches if m["type"] in ("client", "contact", "lead")), None)


@dataclass(slots=True)
class _Deferred:
    """A batch of rings writes its new rows together: leads (one INSERT), then, with their ids,
    contact points and calls (one INSERT each); ``first`` runs after the leads' flush, ``second``
    after the calls' (the payloads get their ids before the commit publishes them)."""

    first: list[Callable[[], None]]
    second: list[Callable[[], None]]
    leads: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]  # number → (match, its copies)


def _add_call(session: AsyncSession, call: Call, made: tuple[dict[str, Any], list[Any]] | None) -> None:
    if made is not None and call.client_id is None and call.lead_id is None:
        call.lead_id = made[0]["id"]
    session.add(call)


def _person_columns(match: dict[str, Any]) -> dict[str, Any]:
    if match["type"] == "client":
        return {"client_id": match["id"]}
    if match["type"] == "contact":
        return {"contact_id": match["id"], "client_id": match["client_id"]}
    return {"lead_id": match["id"]}


def _set_person(call: Call, match: dict[str, Any]) -> None:
    for name, value in _person_columns(match).items():
        setattr(call, name, value)


def _valid_key(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= 200


def _extensions(fact: Fact) -> set[str]:
    if isinstance(fact, CallEndedFact):
        found = {fact.agent_extension, *fact.rung_extensions}
    else:
        found = {fact.extension}
    return {e for e in found if isinstance(e, str) and e and len(e) <= 32}


async def _prefetch(session: AsyncSession, facts: list[Fact], unit: CallUnit) -> None:
    """Two statements for a whole batch instead of two per fact: the calls' rows (locked) and the
    users the facts' extensions ring. Only for this session (this unit of work)."""
    keys = list(dict.fromkeys(f.call_key for f in facts if _valid_key(f.call_key)))
    if keys and len(keys) <= 2 and all(isinstance(f, CallRinging) for f in facts):
        # a ring or two (the screen-pop): a compiled look for the row, one hop; a call already
        # there (a queue rings another agent) is read and locked by _find_call as usual
        conn = await session.connection()
        unit.calls = {k: None for k in keys if not await _CALL_SEEN.all(conn, key=k)}
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
            agent_rows = await _AGENT.all(conn, extension=extension)
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


@dataclass(frozen=True, slots=True)
class Agent:
    """The user an extension rings: what the intake needs of them."""

    id: int
    name: str


_CALL_SEEN = Prepared(select(Call.id).where(Call.linkedid == bindparam("key")))
_CALL_STATE = Prepared(select(Call.direction, Call.ended_at).where(Call.linkedid == bindparam("key")))
_AGENT = Prepared(select(User.id, User.name).join(UserExtension, UserExtension.user_id == User.id)
                  .where(UserExtension.extension == bindparam("extension"), User.active.is_(True)))


async def _agents(session: AsyncSession, extensions: set[str],
                  unit: CallUnit | None = None) -> Mapping[str, Agent | User]:
    """Active users by extension, from the batch's prefetch when it has them all."""
    wanted = {e for e in extensions if isinstance(e, str) and e and len(e) <= 32}
    cache = unit.agents if unit is not None else None
    if cache is not None and wanted <= cache.keys():
        return {e: user for e in wanted if (user := cache[e]) is not None}
    return await users_by_extension(session, wanted)


def _lock_query(key: str) -> Select[Call]:
    return (select(Call).where(Call.linkedid == key).with_for_update()
            .execution_options(populate_existing=True))


async def _find_call(session: AsyncSession, key: str, unit: CallUnit | None = None) -> Call | None:
    """The call's row if there is one, locked for this unit of work (from the batch's prefetch)."""
    if not _valid_key(key):
        raise ValidationError({"call_key": "must be a text of 1 to 200 characters"})
    cache = unit.calls if unit is not None else None
    if cache is not None and key in cache:
        return cache[key]
    return await session.scalar(_lock_query(key))


async def _call_row(session: AsyncSession, key: str, unit: CallUnit | None = None, **values: Any) -> Call:
    """The call's row, made on first sight and locked for this unit of work (PostgreSQL: FOR UPDATE;
    SQLite writers are serialised anyway). A concurrent intake of the same call loses the insert
    race harmlessly and reads the winner's row. ``values``: the columns of a new row."""
    call = await _find_call(session, key, unit)
    if call is not None:
        return call
    query = _lock_query(key)
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
            call = await session.scalar(query)
            if call is None:  # pragma: no cover - the unique violation was about something else
                raise
    if cache is not None:
        cache[key] = call
    return call


def _add_rung(call: Call, user_ids: list[int]) -> None:
    current = [int(u) for u in (call.rung_user_ids or [])]
    new = [u for u in user_ids if u not in current]
    if new:
        call.rung_user_ids = current + new  # a new list: JSON columns track assignment only


def _recipients(call: Call) -> set[int]:
    users = {int(u) for u in (call.rung_user_ids or [])}
    if call.agent_id is not None:
        users.add(call.agent_id)
    return users


def _agent_ref(call: Call, agent: Agent | User | None) -> dict[str, Any] | None:
    if agent is None and not call.agent_extension:
        return None
    return {"id": agent.id if agent else call.agent_id, "name": agent.name if agent else None,
            "extension": call.agent_extension}


async def _create_lead(session: AsyncSession, number: str, settings: CallSettings,
                       name: str | None = None, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """An unsorted, unassigned lead owning the caller's number; ``lead.created`` as
    ``leads.create_lead`` announces it (the same shape), in two INSERTs instead of its four
    statements (a brand-new lead has no contact points to replace nor to read back)."""
    points = contact_points.normalise(phones=[number], region=settings.region)
    phones_found = points.phones
    if points.errors or not phones_found:
        return None  # a number the lead cannot keep (not a valid phone): the agent decides
    lead = Lead(name=name or number, source=LEAD_SOURCE, manager_id=None, comment="", utm={}, unsorted=True,
                converted_client_id=None, converted_at=None, created_at=utcnow())
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


async def _unknown_caller_lead(session: AsyncSession, direction: str, number: str | None,
                               settings: CallSettings, name: str | None = None,
                               unit: CallUnit | None = None) -> dict[str, Any] | None:
    if (direction != "inbound" or settings.unknown_caller != "auto" or not number
            or not number.startswith("+") or is_ignored(number, settings)):
        return None
    return await _create_lead(session, number, settings, name, unit)


# --- the screen-pop ------------------------------------------------------------------------------------

def _fresh(match: dict[str, Any]) -> dict[str, Any]:
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


async def _enrich(session: AsyncSession, match: dict[str, Any]) -> dict[str, Any]:
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
    at = fact.at or utcnow()
    call = await _find_call(session, fact.call_key, unit)  # a new call's row is written once, below
    agent = (await _agents(session, {fact.extension}, unit)).get(fact.extension)
    live = call is None or call.ended_at is None  # a ringing fact replayed after the end pops nothing
    direction = call.direction if call is not None else fact.direction
    matches: list[dict[str, Any]] = []
    enriched: list[dict[str, Any]] | None = None
    person = None
    lead_created = None
    deferred = unit.deferred if unit is not None else None
    made: tuple[dict[str, Any], list[dict[str, Any]]] | None = None  # a lead made in this unit
    created_here = False
    if number and direction != "internal":
        if deferred is not None and number in deferred.leads:  # another ring of this batch made it
            made = deferred.leads[number]
            matches = [dict(made[0])]
            made[1].append(matches[0])
        elif pre:
            matches = enriched = pre
        elif pre is not None and unchanged is not None and unchanged(number):
            matches = []
        else:
            matches = await identify.identify(session, phone=number, region=settings.region)
        person = _person(matches)
        if not matches and live and (call is None or call.lead_id is None):  # a colleague's mobile is no lead
            person = await _unknown_caller_lead(session, direction, number, settings, fact.caller_name, unit)
            if person is not None:
                made = (person, person.pop("refs"))
                lead_created = person["id"]  # None until the batch's leads are written (then set below)
                created_here = True
                matches.append(person)
    elif direction == "internal" and (caller := fact.caller_extension or fact.number):
        # a colleague calls: the pop names them
        colleague = (await _agents(session, {caller}, unit)).get(caller)
        if colleague is not None:
            matches = [{"type": "user", "id": colleague.id, "name": colleague.name, "client_id": None,
                        "open_deals": []}]
    if call is None and deferred is not None:  # written with the batch's other new calls
        call = Call(linkedid=fact.call_key, created_at=utcnow(), direction=fact.direction, status="ringing",
                    external_number=number, did=fact.did, started_at=fact.started_at or at,
                    rung_user_ids=[agent.id] if agent is not None else [],
                    **(_person_columns(person) if person is not None and made is None else {}))
        if unit is not None and unit.calls is not None:
            unit.calls[fact.call_key] = call
        deferred.first.append(functools.partial(_add_call, session, call, made))
    elif call is None:
        call = await _call_row(session, fact.call_key, unit, direction=fact.direction, status="ringing",
                               external_number=number, did=fact.did, started_at=fact.started_at or at,
                               rung_user_ids=[agent.id] if agent is not None else [],
                               **(_person_columns(person) if person is not None else {}))
    if agent is not None and live:
        _add_rung(call, [agent.id])
    if number and not call.external_number:
        call.external_number = number
    if person is not None and call.client_id is None and call.lead_id is None:
        if deferred is None or made is None:
            _set_person(call, person)
        elif call in session:  # a call already stored: its new lead's id comes with the leads' flush
            deferred.first.append(functools.partial(_add_call, session, call, made))
    if enriched is None:
        enriched = []
        for i, m in enumerate(matches):
            if made is not None and i == len(matches) - 1:  # the lead made for this number just now
                enriched.append(_fresh(m))
                made[1].append(enriched[-1])
            else:
                enriched.append(await _enrich(session, m) if i < POP_MATCHES else m)
    payload = pop_payload(fact, settings, call_id=call.id, direction=call.direction, number=number,
                          started_at=call.started_at, matches=enriched, lead_created=lead_created)
    if deferred is not None and (payload["call_id"] is None or made is not None):
        def ids() -> None:
            payload["call_id"] = call.id
            if created_here and made is not None:
                payload["lead_created"] = made[0]["id"]
        deferred.second.append(ids)
    if agent is not None and live:  # popped before this unit (CallIntake): now the ids it lacked
        events.emit(session, "call.recorded" if popped else "call.ringing", payload, users=[agent.id])
    return payload


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


# --- a ring ended ----------------------------------------------------------------------------------------

async def stop_ringing(session: AsyncSession, fact: CallRingEnded, settings: CallSettings = DEFAULT_SETTINGS,
                       *, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """``call.ring_ended`` to the agent whose phone stopped ringing, while the call is still waiting
    for an answer: their popup closes (the next queue member's opens with its own ring)."""
    call = await _find_call(session, fact.call_key, unit) if _valid_key(fact.call_key) else None
    if call is None or call.ended_at is not None or call.answered_at is not None:
        return None
    agent = (await _agents(session, {fact.extension}, unit)).get(fact.extension)
    if agent is None:
        return None
    data = {"call_id": call.id, "call_key": call.linkedid, "extension": fact.extension,
            "reason": fact.reason}
    events.emit(session, "call.ring_ended", data, users=[agent.id])
    return data


# --- answered --------------------------------------------------------------------------------------------

async def answer(session: AsyncSession, fact: CallAnsweredFact, settings: CallSettings = DEFAULT_SETTINGS,
                 *, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """Who took the call; ``call.answered`` to everyone it rang (their popups close)."""
    at = fact.at or utcnow()
    number = external_number(fact.number, settings.region)
    call = await _call_row(session, fact.call_key, unit, direction=fact.direction, status="talking",
                           external_number=number, did=fact.did, started_at=at)
    if call.ended_at is not None:
        return None
    agent = None
    if fact.extension:
        agent = (await _agents(session, {fact.extension}, unit)).get(fact.extension)
    changed = call.status != "talking" or call.agent_extension != fact.extension
    call.status = "talking"
    if call.answered_at is None:
        call.answered_at = at
        call.wait_seconds = _seconds(fact.wait_seconds)
    if fact.extension:
        call.agent_extension = fact.extension
        call.agent_id = agent.id if agent else None
    if number and not call.external_number:
        call.external_number = number
    data = {"call_id": call.id, "call_key": call.linkedid, "direction": call.direction,
            "number": call.external_number, "agent": _agent_ref(call, agent)}
    if changed:
        recipients = _recipients(call)
        if recipients:
            events.emit(session, "call.answered", data, users=recipients)
    return data


# --- ended -----------------------------------------------------------------------------------------------

async def _deal_for(session: AsyncSession, client_id: int | None, lead_id: int | None,
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
    who = name or call.external_number or "?"
    if call.direction == "outbound":
        what = "Outgoing call to"
    elif call.direction == "internal":
        what = "Internal call"
    else:
        what = "Incoming call from"
    status = {"answered": f"{call.talk_seconds} s", "missed": "missed", "abandoned": "abandoned",
              "busy": "busy", "failed": "failed"}.get(call.status, call.status)
    return f"{what} {who} ({status})"


def _entry_payload(call: Call, agent: Agent | User | None) -> dict[str, Any]:
    return {
        "call_id": call.id, "call_key": call.linkedid, "direction": call.direction, "status": call.status,
        "number": call.external_number, "did": call.did, "agent": _agent_ref(call, agent),
        "started_at": iso(call.started_at), "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at), "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds, "hangup_cause": call.hangup_cause,
        "recording_url": f"/api/v1/calls/{call.id}/recording" if call.recording else None,
        "recordings": recording_refs(call),
    }


async def _person_name(session: AsyncSession, call: Call, unit: CallUnit | None = None) -> str | None:
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


async def _ref(session: AsyncSession, model: type[Client] | type[Lead],
               key: int | None) -> dict[str, Any] | None:
    if key is None:
        return None
    row: Client | Lead | None = await session.get(model, key)  # usually in the identity map already
    return {"id": key, "name": row.name if row is not None else None}


async def _manager_of(session: AsyncSession, call: Call) -> int | None:
    if call.client_id is not None:
        manager = await session.scalar(select(Client.manager_id).where(Client.id == call.client_id))
    elif call.lead_id is not None:
        manager = await session.scalar(select(Lead.manager_id).where(Lead.id == call.lead_id))
    else:
        return None
    if manager is None:
        return None
    active = await session.scalar(select(User.active).where(User.id == manager))
    return manager if active else None


async def _open_callback(session: AsyncSession, number: str) -> Task | None:
    return await session.scalar(
        select(Task).where(Task.kind == "callback", Task.completed_at.is_(None),
                           Task.id.in_(select(Call.callback_task_id).where(Call.external_number == number)))
        .order_by(Task.id.desc()).limit(1))


async def _callback(session: AsyncSession, call: Call, name: str | None, settings: CallSettings,
                    board: routing.Board | None = None) -> None:
    """A missed inbound call: a callback task for the person's manager (else the agents rung) and a
    bell item; a repeated miss from the same number joins the open task. With ``route_to_free_agent``
    on and a presence board, a new task whose manager (else first agent rung) is busy or offline goes
    to a free agent instead (``hub.crm.routing``), and only that agent gets the bell item."""
    number = call.external_number
    assert number is not None
    manager = await _manager_of(session, call)
    rung = [int(u) for u in (call.rung_user_ids or [])] or ([call.agent_id] if call.agent_id else [])
    when = call.ended_at or utcnow()
    line = f"Пропущенный звонок {number} ({call.status}), {iso(call.started_at)}"
    task = await _open_callback(session, number)
    rerouted = False
    if task is not None:
        count = 1 + int(await session.scalar(
            select(func.count(Call.id)).where(Call.callback_task_id == task.id)) or 0)
        task.description = f"{task.description}\n{line}".strip()
        task.updated_at = utcnow()
        if task.client_id is None and task.lead_id is None:
            task.client_id, task.lead_id = call.client_id, call.lead_id
    else:
        count = 1
        assignee = manager if manager is not None else (rung[0] if rung else None)
        routed = await routing.free_agent(session, board, responsible_id=assignee)
        rerouted = routed != assignee
        assignee = routed
        task = Task(subject=f"Перезвонить: {name or number}"[:300], description=line, kind="callback",
                    start_at=when, due_at=when + timedelta(minutes=settings.callback_due_minutes),
                    percent=0, client_id=call.client_id, lead_id=call.lead_id, deal_id=call.deal_id,
                    assignee_id=assignee, author_id=None, created_at=utcnow(), updated_at=utcnow())
        session.add(task)
    await session.flush()
    call.callback_task_id = task.id
    recipients = [task.assignee_id] if manager is not None and task.assignee_id is not None else rung
    if rerouted and task.assignee_id is not None:
        recipients = [task.assignee_id]
    if not recipients and task.assignee_id is not None:
        recipients = [task.assignee_id]
    for user_id in dict.fromkeys(recipients):
        await notifications.notify(
            session, user_id, kind="missed_call", title=f"Missed call from {name or number}",
            text=f"{number}" + (f" — {count} missed calls" if count > 1 else ""), link=f"/tasks/{task.id}",
            payload={"call_id": call.id, "task_id": task.id, "number": number, "name": name, "count": count,
                     "client_id": call.client_id, "lead_id": call.lead_id, "status": call.status})
    events.emit(session, "task.updated", {"task": await task_dict(session, task)},
                scope={"assignee_id": task.assignee_id, "author_id": task.author_id})


async def _complete_callbacks(session: AsyncSession, call: Call) -> None:
    """An answered outbound call to a number completes its open callback task."""
    number = call.external_number
    assert number is not None
    while (task := await _open_callback(session, number)) is not None:
        task.percent = 100
        task.completed_at = task.updated_at = utcnow()
        task.description = f"{task.description}\nПерезвонили {iso(call.started_at)}".strip()
        await session.flush()
        if task.deal_id is not None or task.client_id is not None or task.lead_id is not None:
            await add_entry(session, kind="task", text=f"Task done: {task.subject}", author_id=call.agent_id,
                            deal_id=task.deal_id, client_id=task.client_id, lead_id=task.lead_id,
                            payload={"task_id": task.id, "event": "completed", "due_at": iso(task.due_at),
                                     "assignee_id": task.assignee_id, "call_id": call.id})
        events.emit(session, "task.updated", {"task": await task_dict(session, task)},
                    scope={"assignee_id": task.assignee_id, "author_id": task.author_id})


def _storable_json(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): _storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(v) for v in value]
    return value


async def _log_call(session: AsyncSession, call: Call, agent: Agent | User | None, name: str | None,
                    deal: Deal | bool | None = True) -> None:
    """The call's timeline entry on its person's open deal (placement rule) or on the person.

    What ``timeline.add_entry`` does, in one statement instead of seven: the targets are rows this
    unit of work has (the call's person, the deal just found), the author is the call's agent, and
    the external key ``call:<Linkedid>`` makes a second entry impossible (INSERT … ON CONFLICT DO
    NOTHING; the call's row lock already makes a replay return before it gets here)."""
    if deal is True:  # not looked up by the caller
        deal = await _deal_for(session, call.client_id, call.lead_id)
    assert deal is None or isinstance(deal, Deal)
    call.deal_id = deal.id if deal is not None else None
    key = storable(f"call:{call.linkedid}")
    now = utcnow()
    values: dict[str, Any] = {
        "kind": "call", "direction": "out" if call.direction == "outbound" else "in",
        "occurred_at": call.started_at or now, "author_id": call.agent_id,
        "text": storable(_call_text(call, name)), "payload": _storable_json(_entry_payload(call, agent)),
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
        authors = {agent.id: {"id": agent.id, "name": agent.name}}
    else:
        authors = await user_refs(session, [call.agent_id])
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
    events.emit(session, "timeline.added", {"entry": entry_dict(entry, authors)}, scope=scope)


async def end(session: AsyncSession, fact: CallEndedFact, settings: CallSettings = DEFAULT_SETTINGS, *,
              board: routing.Board | None = None, unit: CallUnit | None = None) -> dict[str, Any] | None:
    """Store the finished call and what follows from it; a replayed end changes nothing (→ None).
    ``board``: who is free, for ``route_to_free_agent`` (the callback task of a missed call)."""
    ended_at = fact.ended_at or utcnow()
    started_at = fact.started_at or ended_at
    number = external_number(fact.number, settings.region)
    call = await _call_row(session, fact.call_key, unit, direction=fact.direction, status=fact.status,
                           external_number=number, did=fact.did, started_at=started_at)
    if call.ended_at is not None:
        return None
    extensions = {e for e in (fact.agent_extension, *fact.rung_extensions) if e}
    by_ext = await _agents(session, extensions, unit)
    agent = by_ext.get(fact.agent_extension) if fact.agent_extension else None
    if not fact.agent_extension and call.agent_id is not None:
        agent = await session.get(User, call.agent_id)

    # Reads first, the call's own changes after: its row is then written once (with the timeline
    # entry's id), not flushed half-done by the reads' autoflush.
    number = number or call.external_number
    ignored = is_ignored(number, settings)
    if (number and fact.direction != "internal" and call.client_id is None and call.lead_id is None):
        matches = await identify.identify(session, phone=number, region=settings.region)
        person = _person(matches)
        if not matches:
            person = await _unknown_caller_lead(session, fact.direction, number, settings, fact.caller_name,
                                                unit)
        if person is not None:
            _set_person(call, person)
    name = await _person_name(session, call, unit)
    logged = fact.direction != "internal" and (call.client_id is not None or call.lead_id is not None)
    deal = await _deal_for(session, call.client_id, call.lead_id, unit) if logged else None

    call.direction = fact.direction
    call.status = fact.status
    call.external_number = number or call.external_number
    call.did = fact.did or call.did
    if fact.started_at is not None:
        call.started_at = fact.started_at
    call.answered_at = fact.answered_at or (call.answered_at if fact.status == "answered" else None)
    call.ended_at = ended_at
    call.wait_seconds = _seconds(fact.wait_seconds) or call.wait_seconds
    call.talk_seconds = _seconds(fact.talk_seconds)
    call.hangup_cause = fact.hangup_cause
    call.recordings = _fact_recordings(fact)
    call.recording = call.recordings[0]["file"] if call.recordings else None
    if fact.agent_extension:
        call.agent_extension = fact.agent_extension
        call.agent_id = agent.id if agent else None
    _add_rung(call, [by_ext[e].id for e in fact.rung_extensions if e in by_ext])

    if logged:
        await _log_call(session, call, agent, name, deal)
    if number and call.direction == "inbound" and call.status != "answered" and not ignored:
        await _callback(session, call, name, settings, board)
    if number and call.direction == "outbound" and call.status == "answered":
        await _complete_callbacks(session, call)

    result = call_shape(call, agent.name if agent is not None and agent.id == call.agent_id else None,
                        await _ref(session, Client, call.client_id), await _ref(session, Lead, call.lead_id))
    data = {"call_id": call.id, "call_key": call.linkedid, "status": call.status,
            "direction": call.direction, "number": call.external_number,
            "talk_seconds": call.talk_seconds, "wait_seconds": call.wait_seconds,
            "agent": result["agent"], "client_id": call.client_id, "lead_id": call.lead_id,
            "deal_id": call.deal_id}
    recipients = _recipients(call)
    if recipients:
        events.emit(session, "call.ended", data, users=recipients)
    else:
        events.emit(session, "call.ended", data)
    return result


# --- "create a lead" from the screen-pop or the journal (unknown_caller = "ask") ------------------------

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
    person = _person(await identify.identify(session, phone=number, region=settings.region))
    if person is not None:
        raise Conflict(f"the number belongs to {person['type']} {person['id']} already")
    lead = await leads.create_lead(session, None, {"name": name or number, "phones": [number],
                                                   "source": LEAD_SOURCE, "unsorted": True},
                                   region=settings.region)
    call.lead_id = lead["id"]
    await session.flush()
    if call.ended_at is not None:
        agent = await session.get(User, call.agent_id) if call.agent_id is not None else None
        await _log_call(session, call, agent, lead["name"])
        if call.callback_task_id is not None:
            task = await session.get(Task, call.callback_task_id)
            if task is not None and task.client_id is None and task.lead_id is None:
                task.lead_id = lead["id"]
        await session.flush()
    return {"lead": lead, "call": await call_dict(session, call)}
