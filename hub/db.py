"""Database engine, sessions, migrations and the unit of work.

A unit of work is one transaction; the events the core records during it are published on the bus
only after the commit, so a subscriber never sees a change that was rolled back.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Select, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from hub.bus import Bus

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
_PENDING_EVENTS = "pending_events"  # session.info key: the events recorded in a unit of work


@dataclass(frozen=True)
class PendingEvent:
    name: str
    data: dict[str, Any]
    users: frozenset[int] = frozenset()
    scope: dict[str, Any] = field(default_factory=dict)


def record_event(session: AsyncSession, name: str, data: dict[str, Any], *, users: Iterable[int] = (),
                 scope: dict[str, Any] | None = None) -> None:
    """An event to publish on the bus once this session's unit of work commits (never if it rolls back).
    ``users``: exact recipients; ``scope``: what the bus's access filter needs to decide who else."""
    session.info.setdefault(_PENDING_EVENTS, []).append(
        PendingEvent(name, data, frozenset(u for u in users if u is not None), scope or {}))


def take_pending(session: AsyncSession) -> list[PendingEvent]:
    pending: list[PendingEvent] = session.info.pop(_PENDING_EVENTS, [])
    return pending


def create_engine(url: str, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and str(parsed.query.get("uri", "")).lower() in ("true", "1"):
            path = urlsplit(path).path if path.startswith("file:") else path  # file:/var/hub.db?mode=rwc
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: only so that ``_sqlite_rollback`` may read ``in_transaction`` (a
        # flag) from the event loop; every statement still runs on aiosqlite's own thread.
        engine = create_async_engine(url, echo=echo,
                                     connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        dialect = engine.sync_engine.dialect
        # patched on this engine's dialect instance only; mypy forbids assigning to a method
        dialect.do_rollback = partial(_sqlite_rollback, dialect.do_rollback)  # type: ignore[method-assign]
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling breaks SAVEPOINT (its first savepoint commits what came
    # before); take transactions over: no implicit BEGIN, ours is issued on the "begin" event.
    dbapi_connection.isolation_level = None
    # SQLite's lower() folds ASCII only; case-insensitive search must work for Cyrillic too.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Writers begin IMMEDIATE: two deferred transactions that both read and then write deadlock
    # in SQLite ("database is locked") instead of waiting their turn. Readers (``sqlite_begin=""``,
    # see ``Database``) begin nothing: each statement is its own read transaction, as each
    # statement sees its own snapshot under PostgreSQL's READ COMMITTED, and no BEGIN round trip.
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode:
        connection.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_rollback(rollback: Callable[[Any], None], dbapi_connection: Any) -> None:
    # Closing a session and returning a connection to the pool both roll back: on aiosqlite a
    # thread hop each, even when no transaction is open (a reader, or a writer already committed).
    try:
        idle = not dbapi_connection.driver_connection.in_transaction
    except Exception:  # closed or broken: let the driver's own rollback deal with it
        idle = False
    if not idle:
        rollback(dbapi_connection)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to the newest revision (a no-op when it is there already)."""

    def upgrade(connection: Any) -> None:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


class ReadOnlySession(Session):
    """The session class of ``Database.reading()``: flushing a change in it is a bug."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    # On SQLite a reader has no transaction: a flushed change would be committed at once.
    raise RuntimeError("a reading() session must not change anything; use transaction()")


class Prepared:
    """A Core SELECT compiled once per dialect and run on the driver connection.

    For the hottest reads (the request's bearer token, caller identification): SQLAlchemy's async
    adapter costs several thread hops per statement on aiosqlite (cursor, execute, fetch, close),
    the driver's own ``execute_fetchall`` one; asyncpg's ``fetch`` one round trip with its own
    statement cache. Bind and result values go through the columns' types as usual.
    """

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._plans: dict[str, tuple[str, list[tuple[str, Any, Any]], list[Any]]] = {}

    def _plan(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any, Any]], list[Any]]:
        compiled = self.statement.compile(dialect=dialect)
        binds = [(name, compiled.params[name],
                  compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                 for name in compiled.positiontup or []]
        results = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                   for column in self.statement.selected_columns]
        plan = self._plans[dialect.driver] = (str(compiled), binds, results)
        return plan

    async def all(self, conn: Reads, **params: Any) -> list[tuple[Any, ...]]:
        dialect = conn.dialect
        if isinstance(conn, AsyncConnection) and dialect.driver not in ("aiosqlite", "asyncpg"):
            return [tuple(row) for row in (await conn.execute(self.statement, params)).all()]
        sql, binds, results = self._plans.get(dialect.driver) or self._plan(dialect)
        args = []
        for name, default, process in binds:
            value = params.get(name, default)
            args.append(process(value) if process is not None else value)
        rows = await fetch(conn, sql, args)
        return [tuple(value if process is None else process(value)
                      for value, process in zip(row, results, strict=True)) for row in rows]


class InlineReader:
    """A connection of its own to a SQLite file, used on the event loop's thread: reads that must not
    wait (the screen-pop's) skip aiosqlite's thread, where each statement is a hop there and back,
    and each hop back waits its turn behind whatever else the loop is doing. It never writes
    (``query_only``), never waits for a lock (``timeout=0``: SQLite's WAL readers need none), and a
    statement that runs past ``budget`` seconds is interrupted: in both cases ``sqlite3``
    raises ``OperationalError`` and ``Database.quick_read`` reads again on a pooled connection."""

    PROGRESS_STEPS = 1000  # SQLite virtual-machine steps between two looks at the clock

    def __init__(self, path: str, dialect: Dialect, budget: float = 0.003) -> None:
        self.dialect = dialect
        self.path = path
        self.budget = budget
        self._connection: sqlite3.Connection | None = None
        self._deadline = 0.0

    def fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        connection = self._connection or self._open()
        self._deadline = time.perf_counter() + self.budget
        return connection.execute(sql, args).fetchall()

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        connection.create_function("lower", 1, _lower, deterministic=True)
        connection.execute("PRAGMA query_only=ON")
        connection.set_progress_handler(self._over_budget, self.PROGRESS_STEPS)
        self._connection = connection
        return connection

    def _over_budget(self) -> bool:
        return time.perf_counter() > self._deadline

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


Reads = AsyncConnection | InlineReader  # where a ``Prepared`` read (or ``fetch``) runs


async def fetch(conn: Reads, sql: str, args: Sequence[Any]) -> list[Any]:
    """Rows of compiled SQL with driver-level arguments: on the inline reader at once; on a pooled
    connection through the driver (one thread hop on aiosqlite, one round trip on asyncpg)."""
    if isinstance(conn, InlineReader):
        return conn.fetch(sql, args)
    driver: Any = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.driver == "aiosqlite":
        return list(await driver.execute_fetchall(sql, args))
    return list(await driver.fetch(sql, *args))


def _inline_reader(engine: AsyncEngine) -> InlineReader | None:
    """A SQLite file's inline reader (an in-memory database has no second connection to it)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if str(url.query.get("uri", "")).lower() in ("true", "1") or url.database.startswith("file:"):
        return None  # a URI's options (mode=memory, cache=shared…) are not ours to repeat
    return InlineReader(url.database, engine.dialect)


class WriterGate:
    """SQLite has one writer at a time. Left to themselves, this process's writers would wait for each
    other in SQLite's busy handler, which sleeps (up to 100 ms a turn) however soon the lock is free;
    here they take turns instead, woken the moment the writer before them finishes, and ``urgent``
    ones (a webhook's delivery being journaled before it is answered) go before the others."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the gate stays held: handed over
                    return
        self._held = False


_holding_gate: contextvars.ContextVar[bool] = contextvars.ContextVar("holding_writer_gate", default=False)


DAY_ZONE = "day_zone"  # session.info key: the time zone whose days "today" counts in (the server's)


class Database:
    def __init__(self, engine: AsyncEngine, bus: Bus, day_zone: tzinfo = UTC) -> None:
        self.engine = engine
        self.bus = bus
        info = {DAY_ZONE: day_zone}
        # SQLite only: PostgreSQL's writers lock rows, not the database, and need no turns
        self.gate = WriterGate() if engine.dialect.name == "sqlite" else None
        writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self.sessions = async_sessionmaker(writer, expire_on_commit=False, info=info)
        # Readers begin no transaction on SQLite (see _sqlite_begin); all share the one pool.
        self.reader = engine.execution_options(sqlite_begin="")
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False,
                                                sync_session_class=ReadOnlySession, info=info)
        self.inline = _inline_reader(engine)
        # PostgreSQL's quick reads: a small pool of its own, not pinged at each checkout (a round
        # trip); a connection that fails a read is dropped instead (``quick_read``)
        self.quick = None if engine.dialect.name == "sqlite" else create_async_engine(
            engine.url, pool_size=5, max_overflow=5, pool_pre_ping=False)

    @asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error, then publish its events.
        ``urgent``: on SQLite, go before the other writers waiting in this process."""
        if self.gate is None or _holding_gate.get():  # (a transaction inside one: no second turn)
            async with self._unit_of_work() as session:
                yield session
            return
        await self.gate.acquire(urgent)
        token = _holding_gate.set(True)
        try:
            async with self._unit_of_work() as session:
                yield session
        finally:
            _holding_gate.reset(token)
            self.gate.release()

    @asynccontextmanager
    async def _unit_of_work(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                take_pending(session)
                raise
            for pending in take_pending(session):
                self.bus.publish(pending.name, pending.data, users=pending.users, scope=pending.scope)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (on SQLite it does not queue behind writers).

        Each statement sees the data committed when it started (on SQLite it runs in autocommit
        mode, on PostgreSQL under READ COMMITTED); flushing a change raises.
        """
        async with self.read_sessions() as session:
            yield session

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for a ``Prepared`` read, with no session around it."""
        async with self.reader.connect() as connection:
            yield connection

    async def quick_read(self, read: Callable[[Reads], Awaitable[T]]) -> T:
        """``read`` — reads only, of bounded cost (indexed lookups) — at once: on a SQLite file on the
        inline reader (``InlineReader``: no thread hop, the loop held for a fraction of a
        millisecond), read again on a pooled connection should SQLite interrupt or refuse it there;
        on PostgreSQL on a connection of the quick pool (no ping before, no rollback after: the
        driver-level reads of ``Prepared`` and ``fetch`` run outside any transaction)."""
        if self.inline is not None:
            try:
                return await read(self.inline)
            except sqlite3.OperationalError as error:  # over its budget, or a lock (WAL recovery)
                log.debug("inline read: %s; read again on a pooled connection", error)
        if self.quick is None:
            async with self.read_connection() as connection:
                return await read(connection)
        async with self.quick.connect() as connection:
            try:
                return await read(connection)
            except BaseException:
                await connection.invalidate()  # maybe broken (the server restarted): not back to the pool
                raise

    def publish_now(self, name: str, data: dict[str, Any], *, users: Iterable[int] = (),
                    scope: dict[str, Any] | None = None) -> None:
        """An event that waits for no unit of work (the screen-pop, read before the call is written)."""
        self.bus.publish(name, data, users=users, scope=scope)

    async def ping(self) -> None:
        """Raises unless the database answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.inline is not None:
            self.inline.close()
        if self.quick is not None:
            await self.quick.dispose()
        await self.engine.dispose()
