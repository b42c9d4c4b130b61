"""When and with what the call rules run: ``CallIntake`` hands each fact to the write engine
(``hub.writes``), which group-commits; ``call_ringing`` / ``call_answered`` / ``call_ended`` run
one fact in a unit of work of its own."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import routing
from hub.crm.call_intake.answer import answer, stop_ringing
from hub.crm.call_intake.end import end, unfinished_calls
from hub.crm.call_intake.ring import ring
from hub.crm.call_intake.screen_pop import pop_payload, read_pop
from hub.crm.call_intake.unit import (
    DEFAULT_SETTINGS,
    CallUnit,
    Deferred,
    Fact,
    UnitOfWork,
    prefetch,
    valid_key,
)
from hub.crm.models import utcnow
from hub.crm.ports import CallAnsweredFact, CallEndedFact, CallRingEnded, CallRinging, CallSettings
from hub.writes import Job, WriteEngine

log = logging.getLogger(__name__)
MAX_BATCH = 32  # facts per unit of work in CallIntake (a ring waits at most one such batch)
# calls this intake had a fact of, remembered (oldest forgotten first) so that closing the calls a
# previous run left unfinished never touches one of this run's
SEEN_CALLS = 100_000
CallStep = Callable[..., Awaitable[Any]]  # (session, fact, settings, *, unit) → result


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


@dataclass(frozen=True, slots=True)
class _EarlyPop:
    """What ``CallIntake.ringing`` read before the ring's unit of work: the agent it popped to (None:
    no popup) and the caller's matches, enriched (None: not read, the unit identifies)."""

    agent_id: int | None
    matches: list[dict[str, Any]] | None


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
        quick_read = getattr(self.db, "quick_read", None)
        if quick_read is None or getattr(self.db, "publish_now", None) is None:
            return None
        try:
            read = await quick_read(functools.partial(read_pop, fact=fact, settings=self.settings))
        except Exception:  # the unit of work reads it again (and fails there if it must)
            log.warning("call intake: reading the caller of %s before the unit of work failed",
                        fact.call_key, exc_info=True)
            return None
        if read.ended:
            return _EarlyPop(None, None)
        if read.agent_id is None:
            return _EarlyPop(None, read.matches)
        if not valid_key(fact.call_key):  # the unit of work refuses it: no popup to take back
            return None
        self._publish_now("call.ringing", pop_payload(
            fact, self.settings, call_id=None, direction=read.direction, number=read.number,
            started_at=fact.started_at or fact.at or utcnow(), matches=read.shown, lead_created=None),
            users=[read.agent_id])
        return _EarlyPop(read.agent_id, read.matches)

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


class _CallHooks:
    """The write engine's hooks for call facts: a batch reads its calls and agents in two statements;
    a batch of rings writes its new leads, contact points and calls together (``Deferred``)."""

    def __init__(self, intake: CallIntake) -> None:
        self.intake = intake

    async def open(self, session: AsyncSession, jobs: Sequence[Job[CallUnit]], alone: bool) -> CallUnit:
        unit = CallUnit(on_lead=self.intake.note_lead)
        if not alone:  # alone: the plain path (a savepoint around a new call's row)
            await prefetch(session, [job.payload for job in jobs], unit)
            if len(jobs) > 1 and all(job.urgent for job in jobs):
                unit.deferred = Deferred([], [], {})
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
