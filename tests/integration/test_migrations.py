import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.crm.models import Base, Call, Client, Pipeline, Stage
from hub.db import Database, alembic_config, create_engine, migrate
from hub.migrations.search_objects import search_index_object
from tests.conftest import PG_URL, _pg_admin, _pg_url


async def test_fresh_database_has_the_default_pipeline(database: Database) -> None:
    async with database.reading() as s:
        pipeline = (await s.execute(select(Pipeline).where(Pipeline.is_default))).scalar_one()
        stages = (await s.execute(select(Stage).where(Stage.pipeline_id == pipeline.id)
                                  .order_by(Stage.position))).scalars().all()
    assert [st.kind for st in stages] == ["active"] * 5 + ["won", "lost"]
    assert stages[0].name == "Первичный интерес"


async def test_migrate_twice_is_a_no_op(database: Database) -> None:
    await migrate(database.engine)
    await migrate(database.engine)


# --- up, down, up again, and the models against the migrated schema -------------------------------------


@pytest.fixture
async def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it (not a copy of the migrated template), on each backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("pg_template")  # skips (or fails in CI) as every PostgreSQL test does
    name = f"crmhub_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(PG_URL, name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    """As ``hub.db.migrate``, the other way."""

    def downgrade(connection: Connection) -> None:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as connection:
        await connection.run_sync(downgrade)


def _schema(connection: Connection) -> dict[str, Any]:
    found = inspect(connection)
    return {
        "revision": MigrationContext.configure(connection).get_current_revision(),
        "tables": {t for t in found.get_table_names() if not search_index_object(t)} - {"alembic_version"},
        "views": set(found.get_view_names()),
        # PostgreSQL's serial sequences; SQLite has none
        "sequences": set(found.get_sequence_names()) if connection.dialect.name == "postgresql" else set(),
    }


def _diff(connection: Connection, metadata: MetaData) -> list[Any]:
    # The options of hub/migrations/env.py, i.e. what `alembic revision --autogenerate` would write:
    # types and server defaults compared.
    return compare_metadata(MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True,
                          "include_name": lambda name, *_: not search_index_object(name)}), metadata)


async def test_upgrade_downgrade_upgrade_and_the_models_match_the_schema(empty_url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
    app_tables = set(Base.metadata.tables)
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as connection:
            before = await connection.run_sync(_schema)
        assert before == {"revision": None, "tables": set(), "views": set(), "sequences": set()}

        await migrate(engine)  # (a) an empty database to head, as `crmhub migrate` does
        async with engine.connect() as connection:
            up = await connection.run_sync(_schema)
        assert up["revision"] == head
        assert up["tables"] == app_tables

        await _downgrade(engine, "base")  # (b) every downgrade runs, and nothing of the app is left
        async with engine.connect() as connection:
            down = await connection.run_sync(_schema)
        assert down == {"revision": None, "tables": set(), "views": set(), "sequences": set()}

        await migrate(engine)  # (c) and up again
        async with engine.connect() as connection:
            again = await connection.run_sync(_schema)
            assert again == up
            # (d) the models match the migrated schema. First, that the comparison looks at this
            # schema at all: against no models, every table of the app shows as one to drop.
            dropped = await connection.run_sync(_diff, MetaData())
            assert {d[1].name for d in dropped if d[0] == "remove_table"} == app_tables
            # Filtered out: only the search's dialect-specific indexes (FTS5 tables, GIN indexes).
            assert await connection.run_sync(_diff, Base.metadata) == []
            # and the data the migrations seed is there again: the default pipeline with its 7 stages
            default = (await connection.execute(select(Pipeline.id).where(Pipeline.is_default))).scalar_one()
            stages = (await connection.execute(select(Stage.kind).where(Stage.pipeline_id == default))).all()
            assert len(stages) == 7
    finally:
        await engine.dispose()


async def _upgrade(engine: AsyncEngine, revision: str) -> None:
    def upgrade(connection: Connection) -> None:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


async def test_0008_fills_the_recordings_of_existing_calls(empty_url: str) -> None:
    """calls.recordings: an old row's single recording becomes its one entry (agent unknown), a row
    without one gets an empty list; the downgrade drops the column and keeps ``recording``."""
    engine = create_engine(empty_url)
    try:
        await _upgrade(engine, "0007")
        async with engine.begin() as connection:
            for i, recording in ((1, "in-101.wav"), (2, None), (3, "")):
                await connection.execute(text(
                    "INSERT INTO calls (id, linkedid, direction, status, started_at, wait_seconds, "
                    "talk_seconds, recording, rung_user_ids, created_at) VALUES (:id, :key, 'inbound', "
                    "'answered', :at, 0, 0, :recording, '[]', :at)"),
                    {"id": i, "key": f"k{i}", "recording": recording, "at": datetime(2030, 1, 1)})
        await migrate(engine)
        async with engine.connect() as connection:
            rows = (await connection.execute(select(Call.id, Call.recordings).order_by(Call.id))).all()
        assert [tuple(r) for r in rows] == [
            (1, [{"file": "in-101.wav", "agent_extension": None}]), (2, []), (3, [])]
        await _downgrade(engine, "0007")
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("calls")})
            kept = (await connection.execute(text("SELECT recording FROM calls WHERE id = 1"))).scalar_one()
        assert "recordings" not in columns and kept == "in-101.wav"
    finally:
        await engine.dispose()


async def test_0012_fills_the_name_keys_of_existing_clients(empty_url: str) -> None:
    """clients.name_key: every existing client gets the key duplicates are found by; the downgrade
    drops it and keeps the clients."""
    engine = create_engine(empty_url)
    try:
        await _upgrade(engine, "0010")
        async with engine.begin() as connection:
            for i, name in ((1, "ООО «Северный Ветёр»"), (2, "северный ветер"), (3, "ИП Иванов")):
                await connection.execute(text(
                    "INSERT INTO clients (id, kind, name, full_name, relationship_type, region, industry, "
                    "comment, custom, created_at, updated_at) VALUES (:id, 'company', :name, '', 'buyer', "
                    "'', '', '', '{}', :at, :at)"), {"id": i, "name": name, "at": datetime(2030, 1, 1)})
        await migrate(engine)
        async with engine.connect() as connection:
            rows = (await connection.execute(select(Client.id, Client.name_key).order_by(Client.id))).all()
        assert [tuple(r) for r in rows] == [(1, "северный ветер"), (2, "северный ветер"), (3, "иванов")]
        await _downgrade(engine, "0010")
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("clients")})
            count = (await connection.execute(text("SELECT count(*) FROM clients"))).scalar_one()
        assert "name_key" not in columns and count == 3
    finally:
        await engine.dispose()
