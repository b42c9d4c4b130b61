"""The unit of work and the read path: readers begin nothing on SQLite, never write, see commits."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.bus import InProcessBus
from hub.crm.models import Client, User
from hub.db import Database, InlineReader, Prepared, Reads, create_engine, fetch


async def test_a_reader_holds_no_transaction_and_sees_each_commit(database: Database) -> None:
    async with database.reading() as reader:
        assert await reader.scalar(select(Client.id)) is None
        if database.engine.dialect.name == "sqlite":
            raw = (await reader.connection()).sync_connection.connection  # type: ignore[union-attr]
            assert not raw.driver_connection.in_transaction  # no BEGIN: no snapshot held
        async with database.transaction() as writer:  # a writer is not kept waiting by the reader
            writer.add(Client(name="ООО Ромашка"))
        assert await reader.scalar(select(Client.name)) == "ООО Ромашка"


async def test_a_reader_refuses_to_write(database: Database) -> None:
    with pytest.raises(RuntimeError, match="must not change"):
        async with database.reading() as s:
            s.add(Client(name="never"))
            await s.flush()
    async with database.reading() as s:
        assert await s.scalar(select(Client.id)) is None


async def test_writers_still_roll_back_and_savepoints_still_work(database: Database) -> None:
    with pytest.raises(ZeroDivisionError):
        async with database.transaction() as s:
            s.add(Client(name="rolled back"))
            await s.flush()
            raise ZeroDivisionError
    async with database.transaction() as s:
        s.add(Client(name="kept"))
        with pytest.raises(ZeroDivisionError):
            async with s.begin_nested():
                s.add(Client(name="savepoint rolled back"))
                await s.flush()
                raise ZeroDivisionError
    async with database.reading() as s:
        assert (await s.scalars(select(Client.name))).all() == ["kept"]
        if database.engine.dialect.name == "sqlite":
            assert await s.scalar(text("SELECT 1")) == 1


async def test_prepared_reads_go_through_column_types(database: Database) -> None:
    users = User.__table__
    query = Prepared(select(users.c.id, users.c.active, users.c.created_at)
                     .where(users.c.login == bindparam("login")))
    async with database.transaction() as s:
        s.add(User(login="prepared", name="P"))
    async with database.read_connection() as conn:
        rows = await query.all(conn, login="prepared")
        assert await query.all(conn, login="nobody") == []
    assert len(rows) == 1
    user_id, active, created_at = rows[0]
    assert isinstance(user_id, int) and active is True and created_at.tzinfo is not None


_CLIENT_NAMES = Prepared(select(Client.name).order_by(Client.id))


async def test_a_quick_read_sees_each_commit_and_runs_inline_on_a_sqlite_file(database: Database) -> None:
    seen: list[type] = []

    async def names(conn: Reads) -> list[str]:
        seen.append(type(conn))
        return [name for (name,) in await _CLIENT_NAMES.all(conn)]

    assert await database.quick_read(names) == []
    async with database.transaction() as s:
        s.add(Client(name="Ромашка"))
    assert await database.quick_read(names) == ["Ромашка"]
    expected = InlineReader if database.engine.dialect.name == "sqlite" else AsyncConnection
    assert seen == [expected, expected]


async def test_an_inline_read_over_its_budget_is_read_again_on_the_pool(database: Database) -> None:
    if database.inline is None:
        pytest.skip("the inline reader is SQLite's")
    async with database.transaction() as s:
        s.add(Client(name="Ромашка"))
    database.inline.budget = 0.0  # every statement is interrupted at its first look at the clock
    counting = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
                "SELECT count(*) FROM n")
    tried: list[type] = []

    async def heavy(conn: Reads) -> int:
        tried.append(type(conn))
        rows = await fetch(conn, counting, [])
        return int(rows[0][0])

    assert await database.quick_read(heavy) == 100000
    assert tried == [InlineReader, AsyncConnection]


async def test_the_inline_reader_never_writes(database: Database) -> None:
    if database.inline is None:
        pytest.skip("the inline reader is SQLite's")
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        database.inline.fetch("INSERT INTO clients (name, created_at, updated_at) VALUES ('x', '', '')", [])
    async with database.reading() as s:
        assert await s.scalar(select(Client.id)) is None


async def test_a_quick_read_that_fails_drops_its_connection(database: Database) -> None:
    if database.quick is None:
        pytest.skip("the quick pool is PostgreSQL's")

    async def broken(conn: Reads) -> None:
        await fetch(conn, "SELECT no_such_column FROM clients", [])

    with pytest.raises(Exception, match="no_such_column"):
        await database.quick_read(broken)
    assert database.quick.pool.checkedout() == 0
    assert await database.quick_read(lambda conn: _CLIENT_NAMES.all(conn)) == []


async def test_an_in_memory_database_has_no_inline_reader() -> None:
    memory = Database(create_engine("sqlite+aiosqlite://"), InProcessBus())
    try:
        assert memory.inline is None and memory.quick is None
    finally:
        await memory.dispose()
