"""The write engine: group commit of small units of work, per-key order, an urgent lane, retry alone.

Callers ``await engine.submit(key, step)``; a writer task (made when a job arrives and none runs;
it ends when nothing is left) takes the jobs waiting — urgent ones first, at most one per key and
``max_batch`` in all — and runs their steps in one transaction; each caller gets its own step's
result once that transaction has committed (and its events are published, ``hub.db``).

- **Per-key order**: a key's next job waits until its previous one is through (committed or failed).
- **Urgent lane**: a batch with urgent jobs holds only urgent jobs. With ``concurrent`` (PostgreSQL:
  row locks, not a database lock) the urgent jobs have a writer task of their own beside the one for
  the rest, so an urgent job never waits for the rest to commit; on SQLite one writer does both.
- **Retry alone**: a step that raises rolls its batch back; that job (or, when the commit itself
  failed, each job of the batch) runs again in a transaction of its own, the others together
  again, first in line. A job that fails alone is answered with its exception. With
  ``retry_alone=False`` a unit that fails answers each of its jobs with its exception at once (for
  callers that retry themselves: a webhook answered 5xx is delivered again).
- **Cancellation**: a caller that gives up (its ``submit`` cancelled) is dropped if its job has not
  started; when the writer task itself is cancelled (the loop closes), every waiting job is cancelled.
  ``stop(error)`` ends the writers: the unit at work rolls back, and what was not committed is
  answered with ``error`` (cancelled when None); a later ``submit`` starts afresh.
- **Per-unit state** is an explicit object, the ``context``: ``hooks.open(session, jobs, alone)``
  makes it before the steps run (a batch's reads in a few statements, say), every step gets it,
  ``hooks.close(session, context)`` runs after the last step, before the commit (deferred writes).

Nothing here knows what is written: the core hands steps and hooks in (``hub.crm.intake``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

C = TypeVar("C")
Step = Callable[[AsyncSession, C], Awaitable[Any]]


class UnitOfWork(Protocol):
    """``hub.db.Database``: a transaction that commits, then publishes the recorded events."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...


@dataclass(slots=True)
class Job(Generic[C]):
    key: Hashable
    step: Step[C]
    future: asyncio.Future[Any]
    urgent: bool
    payload: Any = None  # what the hooks may look at (the fact a step applies, say)
    alone: bool = False  # it failed in a batch: its next try is a unit of work of its own


class Hooks(Protocol[C]):
    async def open(self, session: AsyncSession, jobs: Sequence[Job[C]], alone: bool) -> C: ...
    async def close(self, session: AsyncSession, context: C) -> None: ...


class NoContext:
    """Hooks for steps that need no per-unit state: the context is None."""

    async def open(self, session: AsyncSession, jobs: Sequence[Job[None]], alone: bool) -> None:
        return None

    async def close(self, session: AsyncSession, context: None) -> None:
        return None


class WriteEngine(Generic[C]):
    def __init__(self, db: UnitOfWork, hooks: Hooks[C], *, max_batch: int = 32, concurrent: bool = False,
                 name: str = "writer", retry_alone: bool = True) -> None:
        self.db = db
        self.hooks = hooks
        self.max_batch = max(1, max_batch)
        self.concurrent = concurrent
        self.retry_alone = retry_alone
        self.name = name
        self._pending: collections.deque[Job[C]] = collections.deque()
        # the writer tasks: True → urgent, False → the rest; None → everything (one writer)
        self._writers: dict[bool | None, asyncio.Task[None]] = {}
        self._busy: set[Hashable] = set()  # keys with a job in a unit of work now
        self._stop_error: BaseException | None = None  # while stopping: what the jobs left are told
        self.units = 0  # units of work committed (for tests and benchmarks)
        self.applied = 0  # jobs applied in them

    def busy(self, urgent: bool) -> bool:
        """Whether the writer that would take such a job is at work now."""
        return self._lane(urgent) in self._writers

    async def submit(self, key: Hashable, step: Step[C], *, urgent: bool = False, payload: Any = None) -> Any:
        return await self.enqueue(key, step, urgent=urgent, payload=payload)

    def enqueue(self, key: Hashable, step: Step[C], *, urgent: bool = False,
                payload: Any = None) -> asyncio.Future[Any]:
        """``submit`` without waiting: the job has its place in its key's order when this returns."""
        job: Job[C] = Job(key, step, asyncio.get_running_loop().create_future(), urgent, payload)
        self._pending.append(job)
        self._kick()
        return job.future

    async def stop(self, error: BaseException | None = None) -> None:
        """End the writers; every job not committed is answered with ``error`` (cancelled when None)."""
        self._stop_error = error
        try:
            writers = list(self._writers.values())
            for writer in writers:
                writer.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
            for job in self._pending:  # jobs no writer had taken (their keys busy, say)
                self._abandon(job)
            self._pending.clear()
        finally:
            self._stop_error = None

    def _abandon(self, job: Job[C]) -> None:
        if job.future.done():
            return
        if self._stop_error is not None:
            job.future.set_exception(self._stop_error)
        else:
            job.future.cancel()

    def _lane(self, urgent: bool) -> bool | None:
        return urgent if self.concurrent else None

    def _eligible(self) -> list[Job[C]]:
        """The first waiting job of each key with none in a unit of work now (the later ones wait)."""
        eligible: list[Job[C]] = []
        keys = set(self._busy)
        for job in self._pending:
            if job.key not in keys and not job.future.done():  # done: its caller gave up (cancelled)
                keys.add(job.key)
                eligible.append(job)
        return eligible

    def _kick(self) -> None:
        """A writer task for each lane that has a job able to go now and no writer."""
        lanes = {self._lane(job.urgent) for job in self._eligible()}
        for lane in lanes - self._writers.keys():
            suffix = {True: "-urgent", False: "-rest", None: ""}[lane]
            self._writers[lane] = asyncio.create_task(self._write(lane), name=self.name + suffix)

    def _take(self, lane: bool | None) -> list[Job[C]]:
        """The next batch for this writer: one job that failed in a batch, alone; else urgent jobs
        first — a batch with urgent jobs holds only those."""
        eligible = [job for job in self._eligible() if lane is None or job.urgent == lane]
        alone = next((job for job in eligible if job.alone), None)
        urgent = [job for job in eligible if job.urgent]
        batch = [alone] if alone is not None else (urgent or eligible)[:self.max_batch]
        taken = {id(job) for job in batch}
        self._pending = collections.deque(job for job in self._pending
                                          if id(job) not in taken and not job.future.done())
        return batch

    async def _write(self, lane: bool | None) -> None:
        cancelled = False
        try:
            while batch := self._take(lane):
                keys = {job.key for job in batch}
                self._busy |= keys
                try:
                    await self._apply(batch)
                finally:
                    self._busy -= keys
                self._kick()  # those keys' next jobs may be the other writer's
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            del self._writers[lane]
            if cancelled:  # the loop is closing (or ``stop``): nobody will apply what waits
                for job in self._pending:
                    self._abandon(job)
                self._pending.clear()
            else:
                self._kick()  # a key whose job just went through may have its next one waiting

    async def _apply(self, batch: list[Job[C]]) -> None:
        results: list[Any] = []
        current: Job[C] | None = None
        alone = len(batch) == 1 and batch[0].alone
        try:
            async with self.db.transaction() as session:
                context = await self.hooks.open(session, batch, alone)
                for job in batch:
                    current = job
                    results.append(await job.step(session, context))
                current = None
                await self.hooks.close(session, context)
        except Exception as exc:
            if alone or not self.retry_alone:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                return
            # Which job was it? That one (else each, when the commit failed) tries once more in a
            # unit of work of its own (a row a concurrent writer inserted meanwhile is there then);
            # the others go again together, first in line.
            for job in batch:
                job.alone = job.alone or current is None or job is current
            self._pending.extendleft(reversed(batch))
            return
        except BaseException:
            for job in batch:
                self._abandon(job)
            raise
        self.units += 1
        self.applied += len(batch)
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)
