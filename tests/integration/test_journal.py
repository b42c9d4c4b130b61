"""The inbound journal (hub.inbound: journal, worker) on both databases, written through a session
and through the driver (hub.inbound.driver_store): group commit, duplicates, processing exactly once after
a restart, retries with backoff, giving up on a poison delivery; the driver store's turn at SQLite's
writer gate and its recovery from a lost PostgreSQL connection."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text, update

from hub.crm.models import InboundDelivery
from hub.db import Database
from hub.inbound.driver_store import driver_store
from hub.inbound.journal import JournalWriter
from hub.inbound.worker import JournalWorker


@pytest.fixture(params=["session", "driver"])
def make_writer(request: pytest.FixtureRequest, database: Database) -> Any:
    """JournalWriter(database) writing through a unit of work, or through the driver as the hub does."""
    def make() -> JournalWriter:
        store = driver_store(database) if request.param == "driver" else None
        assert request.param == "session" or store is not None
        return JournalWriter(database, store=store)
    return make


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
        from hub.inbound import journal

        async with self.db.transaction() as s:
            await journal.finish(s, journal_id)


async def statuses(db: Database) -> dict[str, str]:
    async with db.reading() as s:
        return {k: v for k, v in (await s.execute(select(InboundDelivery.key, InboundDelivery.status)))}


async def test_concurrent_deliveries_are_written_together_and_repeats_known(
        make_writer: Any, database: Database) -> None:
    writer = make_writer()
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


async def test_pending_deliveries_are_processed_once_after_a_restart(
        make_writer: Any, database: Database) -> None:
    writer = make_writer()
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


async def test_a_failing_delivery_is_retried_then_given_up(make_writer: Any, database: Database) -> None:
    writer = make_writer()
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


async def test_the_driver_store_keeps_bodies_and_cuts_long_keys(database: Database) -> None:
    writer = JournalWriter(database, store=driver_store(database))
    body = "Body=Привет&From=%2B79161234567".encode() + bytes(range(256))
    try:
        assert await writer.add("sms", "k" * 150, body) is True
        assert await writer.add("sms", "k" * 120, b"") is False  # the same first 100 characters
    finally:
        await writer.stop()
    async with database.reading() as s:
        row: Any = await s.scalar(select(InboundDelivery))
    assert (row.key, row.body, row.status, row.attempts) == ("k" * 100, body, "pending", 0)
    assert row.created_at == row.next_attempt_at and row.created_at.tzinfo is not None


async def test_the_driver_store_takes_its_turn_at_the_sqlite_writer_gate(database: Database) -> None:
    if database.gate is None:
        pytest.skip("PostgreSQL's writers need no turns")
    writer = JournalWriter(database, store=driver_store(database))
    try:
        await database.gate.acquire()  # another writer of this process has the turn
        add = asyncio.create_task(writer.add("sms", "waiting", b""))
        await asyncio.sleep(0.2)
        assert not add.done()  # the database itself is free: only the gate holds it back
        async with database.reading() as s:
            assert await s.scalar(select(func.count()).select_from(InboundDelivery)) == 0
        database.gate.release()
        assert await asyncio.wait_for(add, 5) is True
        async with database.transaction() as s:  # and the gate is free again afterwards
            s.add(InboundDelivery(channel="sms", key="after", status="done"))
    finally:
        await writer.stop()
    assert await statuses(database) == {"waiting": "pending", "after": "done"}


async def test_the_driver_store_reconnects_after_losing_its_postgres_connection(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    writer = JournalWriter(database, store=driver_store(database))
    try:
        assert await writer.add("telegram", "1", b"{}")
        async with database.transaction() as s:  # the server drops every other connection
            await s.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        # the webhook answers 5xx: Telegram delivers it again
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                            OSError)):
            await writer.add("telegram", "2", b"{}")
        assert await writer.add("telegram", "2", b"{}") is True
        assert await writer.add("telegram", "3", b"{}") is True
    finally:
        await writer.stop()
    assert await statuses(database) == {"1": "pending", "2": "pending", "3": "pending"}
