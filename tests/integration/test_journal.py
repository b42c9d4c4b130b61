"""The inbound journal (hub.crm.journal, hub.journal) on both databases: group commit, duplicates,
processing exactly once after a restart, retries with backoff, giving up on a poison delivery."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select, update

from hub.crm.journal import JournalWriter
from hub.crm.models import InboundDelivery
from hub.db import Database
from hub.journal import JournalWorker


class Recorder:
    """A processor that finishes each delivery (or fails ``fail`` times first)."""

    def __init__(self, db: Database, fail: int = 0) -> None:
        self.db = db
        self.fail = fail
        self.seen: list[str] = []

    async def process(self, key: str, body: bytes, journal_id: int) -> None:
        self.seen.append(key)
        if self.fail:
            self.fail -= 1
            raise OSError("the file server is down")
        from hub.crm import journal

        async with self.db.transaction() as s:
            await journal.finish(s, journal_id)


async def statuses(db: Database) -> dict[str, str]:
    async with db.reading() as s:
        return {k: v for k, v in (await s.execute(select(InboundDelivery.key, InboundDelivery.status)))}


async def test_concurrent_deliveries_are_written_together_and_repeats_known(database: Database) -> None:
    writer = JournalWriter(database)
    keys = [str(n) for n in range(200)] + [str(n) for n in range(0, 200, 10)]
    try:
        results = await asyncio.gather(*(writer.add("telegram", key, b"{}") for key in keys))
    finally:
        await writer.stop()
    assert sum(results) == 200  # each key new once, every repeat recognised
    assert results[:200] == [True] * 200 and not any(results[200:])
    assert await writer.add("telegram", "5", b"{}") is False
    await writer.stop()
    async with database.reading() as s:
        assert await s.scalar(select(func.count()).select_from(InboundDelivery)) == 200


async def test_pending_deliveries_are_processed_once_after_a_restart(database: Database) -> None:
    writer = JournalWriter(database)
    for key in ("1", "2", "3"):
        assert await writer.add("sms", key, b"Body=hi")
    await writer.stop()  # the hub dies before processing anything
    recorder = Recorder(database)
    worker = JournalWorker(database, {"sms": recorder})
    while await worker.drain_once():
        pass
    await worker.drain_once()
    assert recorder.seen == ["1", "2", "3"]
    assert set((await statuses(database)).values()) == {"done"}
    await worker.drain_once()
    assert recorder.seen == ["1", "2", "3"]


async def test_a_failing_delivery_is_retried_then_given_up(database: Database) -> None:
    writer = JournalWriter(database)
    await writer.add("sms", "poison", b"")
    await writer.add("sms", "flaky", b"")
    await writer.stop()
    recorder = Recorder(database, fail=1)
    worker = JournalWorker(database, {"sms": recorder}, max_attempts=2, base_delay=60)
    await worker.drain_once()  # poison fails once (retry in a minute), flaky passes
    assert await statuses(database) == {"poison": "pending", "flaky": "done"}
    await worker.drain_once()
    assert recorder.seen == ["poison", "flaky"]  # not due again yet
    async with database.transaction() as s:
        await s.execute(update(InboundDelivery).values(next_attempt_at=func.now()))
    recorder.fail = 5
    await worker.drain_once()
    assert (await statuses(database))["poison"] == "failed"
    async with database.reading() as s:
        row: Any = await s.scalar(select(InboundDelivery).where(InboundDelivery.key == "poison"))
        assert row.attempts == 2 and "file server is down" in row.error
