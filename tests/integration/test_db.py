"""The unit of work and the read path: readers begin nothing on SQLite, never write, see commits."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text

from hub.crm.models import Client, User
from hub.db import Database, Prepared


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
