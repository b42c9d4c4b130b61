"""The write engine (hub.writes) on a fake unit of work: batches, per-key order, the urgent lane,
retry alone (or not), a failed commit, cancellation, stopping, and the per-unit context of its hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hub.writes import Job, NoContext, WriteEngine


class FakeSession:
    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.writes: list[Any] = []


class FakeDb:
    """Transactions that record what each committed; the units numbered in ``fail_units`` fail to
    commit (counted from 1 in the order they are opened)."""

    def __init__(self) -> None:
        self.committed: list[list[Any]] = []
        self.rolled_back = 0
        self.fail_units: set[int] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.opened = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeSession]:
        self.opened += 1
        session = FakeSession(self.opened)
        try:
            yield session
            await self.gate.wait()
            if session.unit in self.fail_units:
                raise RuntimeError("commit failed")
        except BaseException:
            self.rolled_back += 1
            raise
        self.committed.append(session.writes)


def write(value: Any, fail: bool = False, delay: float = 0.0) -> Any:
    async def step(session: Any, context: Any) -> Any:
        if delay:
            await asyncio.sleep(delay)
        if fail:
            raise ValueError(f"bad {value}")
        session.writes.append(value)
        return value
    return step


async def test_jobs_arriving_together_commit_together_and_each_gets_its_result() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=10)
    db.gate.clear()  # the first unit waits at its commit while the others arrive
    first = asyncio.create_task(engine.submit("a", write(1)))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(engine.submit(key, write(n))) for n, key in enumerate("bcd", start=2)]
    await asyncio.sleep(0.01)
    db.gate.set()
    assert await asyncio.gather(first, *rest) == [1, 2, 3, 4]
    assert db.committed == [[1], [2, 3, 4]]
    assert (engine.units, engine.applied) == (2, 4)


async def test_a_keys_jobs_keep_their_order_and_never_share_a_unit() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=10)
    results = await asyncio.gather(*(engine.submit("call-1", write(n)) for n in range(4)),
                                   engine.submit("call-2", write("x")))
    assert results == [0, 1, 2, 3, "x"]
    ones = [value for unit in db.committed for value in unit if value != "x"]
    assert ones == [0, 1, 2, 3]
    assert all(sum(1 for v in unit if v != "x") <= 1 for unit in db.committed)


async def test_batches_are_limited() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=3)
    db.gate.clear()
    tasks = [asyncio.create_task(engine.submit(n, write(n))) for n in range(8)]
    await asyncio.sleep(0.01)
    db.gate.set()
    await asyncio.gather(*tasks)
    assert [len(unit) for unit in db.committed] == [3, 3, 2]


async def test_urgent_jobs_go_first_and_alone_in_their_batch() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=10)
    db.gate.clear()
    first = asyncio.create_task(engine.submit("busy", write("first")))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(engine.submit(f"r{n}", write(f"rest{n}"))) for n in range(2)]
    urgent = [asyncio.create_task(engine.submit(f"u{n}", write(f"ring{n}"), urgent=True)) for n in range(2)]
    await asyncio.sleep(0.01)
    db.gate.set()
    await asyncio.gather(first, *rest, *urgent)
    assert db.committed == [["first"], ["ring0", "ring1"], ["rest0", "rest1"]]


async def test_concurrent_engines_give_urgent_jobs_a_writer_of_their_own() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), concurrent=True)
    slow = asyncio.create_task(engine.submit("bookkeeping", write("slow", delay=0.2)))
    await asyncio.sleep(0.01)
    assert engine.busy(urgent=False) and not engine.busy(urgent=True)
    assert await asyncio.wait_for(engine.submit("ring", write("pop"), urgent=True), 0.1) == "pop"
    assert not slow.done()
    await slow


async def test_a_failing_step_is_answered_alone_and_the_others_commit_without_it() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=10)
    db.gate.clear()
    first = asyncio.create_task(engine.submit("a", write("a")))
    await asyncio.sleep(0)
    good = asyncio.create_task(engine.submit("b", write("b")))
    bad = asyncio.create_task(engine.submit("c", write("c", fail=True)))
    good2 = asyncio.create_task(engine.submit("d", write("d")))
    await asyncio.sleep(0.01)
    db.gate.set()
    assert await first == "a"
    assert await good == "b" and await good2 == "d"
    with pytest.raises(ValueError, match="bad c"):
        await bad
    assert ["b", "d"] in db.committed and not any("c" in unit for unit in db.committed)


async def test_a_failed_commit_retries_every_job_alone_once() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=10)
    db.fail_units = {1, 2}  # a and b together, then a alone
    a, b = await asyncio.gather(engine.submit("a", write("a")), engine.submit("b", write("b")),
                                return_exceptions=True)
    assert isinstance(a, RuntimeError) and str(a) == "commit failed" and b == "b"
    assert db.committed == [["b"]]
    assert db.opened == 3  # [a, b] failed; [a] alone failed: answered; [b] alone committed


async def test_without_retry_alone_a_failed_unit_answers_each_of_its_jobs_with_its_error() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=10, retry_alone=False)
    db.fail_units = {1}
    a, b = await asyncio.gather(engine.submit("a", write("a")), engine.submit("b", write("b")),
                                return_exceptions=True)
    assert isinstance(a, RuntimeError) and a is b
    assert db.opened == 1 and db.committed == []
    assert await engine.submit("a", write("a again")) == "a again"  # the next unit is a fresh one


async def test_a_caller_that_gives_up_before_its_unit_is_dropped() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext())
    db.gate.clear()
    first = asyncio.create_task(engine.submit("a", write("a")))
    await asyncio.sleep(0)
    gone = asyncio.create_task(engine.submit("b", write("b")))
    await asyncio.sleep(0)
    gone.cancel()
    db.gate.set()
    assert await first == "a"
    await asyncio.sleep(0.01)
    assert db.committed == [["a"]]


async def test_cancelling_the_writer_cancels_what_waits() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), name="test-writer")
    db.gate.clear()
    first = asyncio.create_task(engine.submit("a", write("a")))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(engine.submit("a", write("a2")))
    await asyncio.sleep(0)
    writer = next(t for t in asyncio.all_tasks() if t.get_name() == "test-writer")
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(asyncio.CancelledError):
        await waiting


class CountingHooks:
    """A context per unit: what its jobs carry, and whether it ran alone; closed before the commit."""

    def __init__(self) -> None:
        self.closed: list[dict[str, Any]] = []

    async def open(self, session: Any, jobs: Sequence[Job[dict[str, Any]]], alone: bool) -> dict[str, Any]:
        return {"payloads": [job.payload for job in jobs], "alone": alone, "seen": []}

    async def close(self, session: Any, context: dict[str, Any]) -> None:
        session.writes.append(("closed", tuple(context["seen"])))
        self.closed.append(context)


async def test_each_unit_has_its_own_context_opened_before_and_closed_after_its_steps() -> None:
    db = FakeDb()
    hooks = CountingHooks()
    engine: WriteEngine[dict[str, Any]] = WriteEngine(db, hooks, max_batch=10)

    def note(value: str, fail: bool = False) -> Any:
        async def step(session: Any, context: dict[str, Any]) -> str:
            if fail:
                raise ValueError(value)
            context["seen"].append(value)
            return value
        return step

    db.gate.clear()
    first = asyncio.create_task(engine.submit("a", note("a"), payload="fact-a"))
    await asyncio.sleep(0)
    b = asyncio.create_task(engine.submit("b", note("b"), payload="fact-b"))
    c = asyncio.create_task(engine.submit("c", note("c", fail=True), payload="fact-c"))
    await asyncio.sleep(0.01)
    db.gate.set()
    await first
    await b
    with pytest.raises(ValueError):
        await c
    assert [ctx["payloads"] for ctx in hooks.closed] == [["fact-a"], ["fact-b"]]
    assert [ctx["alone"] for ctx in hooks.closed] == [False, False]
    assert db.committed[0] == [("closed", ("a",))] and db.committed[1] == [("closed", ("b",))]


async def test_stop_answers_what_was_not_committed_with_its_error_and_a_later_submit_starts_afresh() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext(), name="stopping-writer")
    db.gate.clear()  # the first unit waits at its commit
    at_work = asyncio.create_task(engine.submit("a", write("a")))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(engine.submit("a", write("a2")))  # its key is busy: no writer takes it
    await asyncio.sleep(0)
    await engine.stop(RuntimeError("the hub is stopping"))
    for task in (at_work, waiting):
        with pytest.raises(RuntimeError, match="the hub is stopping"):
            await task
    assert db.committed == [] and db.rolled_back == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "stopping-writer"]
    db.gate.set()
    assert await engine.submit("a", write("a3")) == "a3"
    assert db.committed == [["a3"]]


async def test_stop_without_an_error_cancels_what_waits() -> None:
    db = FakeDb()
    engine: WriteEngine[None] = WriteEngine(db, NoContext())
    db.gate.clear()
    at_work = asyncio.create_task(engine.submit("a", write("a")))
    await asyncio.sleep(0)
    await engine.stop()
    with pytest.raises(asyncio.CancelledError):
        await at_work
