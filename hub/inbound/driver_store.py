"""The inbound journal's hot write, straight through the database driver.

A webhook is answered only after its delivery is committed (``hub.inbound.journal``), so this INSERT is
on the path of every webhook. Through an ORM session it cost more CPU than the rest of the request:
a multi-row ``VALUES`` compiled afresh for every batch size, and on SQLite four to six hops to
aiosqlite's thread. Here it is one prepared statement and one hop a batch:

- SQLite: a connection of its own on a thread of its own runs ``BEGIN IMMEDIATE``, the ``INSERT …
  ON CONFLICT DO NOTHING RETURNING`` and ``COMMIT`` in one go, after taking its turn (urgent) at the
  process's writer gate like every other writer of this process (``hub.db.WriterGate``);
- PostgreSQL: one pooled asyncpg connection runs ``INSERT … SELECT … FROM unnest(…) ON CONFLICT DO
  NOTHING RETURNING``, a single statement (atomic without a transaction block).

A failure raises (the webhook answers 5xx and the channel delivers again); the connection is then
dropped and opened afresh for the next batch. ``driver_store`` returns None where neither applies
(an in-memory SQLite database), and ``hub.inbound.journal`` then writes through a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.inbound.journal import InboundDelivery, Row
from hub.orm import utcnow

TABLE = InboundDelivery.__tablename__
COLUMNS = "channel, key, status, body, attempts, next_attempt_at, created_at"
SQLITE_CHUNK = 150  # rows per statement: 5 parameters each, under SQLite's oldest limit of 999


class Gate(Protocol):
    async def acquire(self, urgent: bool = False) -> None: ...
    def release(self) -> None: ...


class DatabaseLike(Protocol):
    @property
    def engine(self) -> AsyncEngine: ...
    @property
    def gate(self) -> Gate | None: ...


def _timestamp(engine: AsyncEngine) -> Callable[[datetime], Any]:
    """``now`` as the ORM would bind it into ``created_at`` on this database (naive UTC; on SQLite the
    ORM's text format, which the journal worker's ``next_attempt_at <= ?`` compares as text)."""
    processor = InboundDelivery.__table__.c.created_at.type.bind_processor(engine.dialect)
    return processor if processor is not None else (lambda value: value)


class SqliteDeliveryStore:
    def __init__(self, path: str, gate: Gate, timestamp: Callable[[datetime], Any],
                 connect_args: tuple[Sequence[Any], dict[str, Any]] | None = None) -> None:
        self.path = path
        # the engine's own arguments for sqlite3.connect (the URL's options: uri, timeout...)
        self.connect_args = connect_args or ([path], {})
        self.gate = gate
        self.timestamp = timestamp
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None  # used on the executor's thread only
        self._statements: dict[int, str] = {}

    async def insert(self, rows: Sequence[Row]) -> set[tuple[str, str]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="journal-sqlite")
        now = self.timestamp(utcnow())
        await self.gate.acquire(urgent=True)
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._insert, rows, now)
        try:
            return await asyncio.shield(future)
        finally:  # the gate is held until the write is over, even when the waiter was cancelled
            if future.done():
                self.gate.release()
            else:
                future.add_done_callback(lambda _: self.gate.release())

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=False)

    def _statement(self, count: int) -> str:
        if count not in self._statements:
            values = ", ".join(["(?, ?, 'pending', ?, 0, ?, ?)"] * count)
            self._statements[count] = (f"INSERT INTO {TABLE} ({COLUMNS}) VALUES {values} "
                                       "ON CONFLICT (channel, key) DO NOTHING RETURNING channel, key")
        return self._statements[count]

    def _insert(self, rows: Sequence[Row], now: Any) -> set[tuple[str, str]]:
        connection = self._connection or self._connect()
        new: set[tuple[str, str]] = set()
        try:
            connection.execute("BEGIN IMMEDIATE")
            for start in range(0, len(rows), SQLITE_CHUNK):
                chunk = rows[start:start + SQLITE_CHUNK]
                parameters = [value for channel, key, body in chunk
                              for value in (channel, key, body, now, now)]
                new.update(connection.execute(self._statement(len(chunk)), parameters).fetchall())
            connection.execute("COMMIT")
        except BaseException:
            self._disconnect()  # rolls back what was begun; the next batch opens a fresh connection
            raise
        return new

    def _connect(self) -> sqlite3.Connection:
        args, options = self.connect_args
        connection: sqlite3.Connection = sqlite3.connect(
            *args, **{"timeout": 30, **options, "isolation_level": None})
        connection.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections (hub.db)
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=30000")
        self._connection = connection
        return connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


class PostgresDeliveryStore:
    STATEMENT = (f"INSERT INTO {TABLE} ({COLUMNS}) "
                 "SELECT c, k, 'pending', b, 0, $4, $4 "
                 "FROM unnest($1::varchar[], $2::varchar[], $3::bytea[]) AS t(c, k, b) "
                 "ON CONFLICT (channel, key) DO NOTHING RETURNING channel, key")

    def __init__(self, engine: AsyncEngine, timestamp: Callable[[datetime], Any]) -> None:
        self.engine = engine
        self.timestamp = timestamp
        self._pooled: AsyncConnection | None = None
        self._driver: Any = None  # the asyncpg connection under the pooled one
        self._lock = asyncio.Lock()

    async def insert(self, rows: Sequence[Row]) -> set[tuple[str, str]]:
        async with self._lock:
            driver = self._driver or await self._connect()
            try:
                records = await driver.fetch(self.STATEMENT, [r[0] for r in rows], [r[1] for r in rows],
                                             [r[2] for r in rows], self.timestamp(utcnow()))
            except BaseException:
                await self._disconnect(invalidate=True)
                raise
        return {(record[0], record[1]) for record in records}

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect(invalidate=False)

    async def _connect(self) -> Any:
        pooled = await self.engine.connect()
        try:
            raw = await pooled.get_raw_connection()
        except BaseException:
            await pooled.close()
            raise
        self._pooled, self._driver = pooled, raw.driver_connection
        return self._driver

    async def _disconnect(self, invalidate: bool) -> None:
        pooled, self._pooled, self._driver = self._pooled, None, None
        if pooled is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:  # it may be broken: the pool must not hand it out again
                await pooled.invalidate()
            await pooled.close()


def driver_store(database: DatabaseLike) -> SqliteDeliveryStore | PostgresDeliveryStore | None:
    """The driver-level store for this database, or None (an in-memory SQLite database)."""
    engine = database.engine
    timestamp = _timestamp(engine)
    if engine.dialect.name == "postgresql":
        return PostgresDeliveryStore(engine, timestamp)
    path = engine.url.database
    if engine.dialect.name == "sqlite" and path and path != ":memory:" and database.gate is not None:
        args, options = engine.dialect.create_connect_args(engine.url)
        return SqliteDeliveryStore(path, database.gate, timestamp, (list(args), dict(options)))
    return None
