"""Real databases for every test that needs one: SQLite always, PostgreSQL when
``CRMHUB_TEST_PG_URL`` is set (required when ``CI=true``).

Each backend is migrated once per session into a template (a SQLite file; a PostgreSQL template
database); every test gets a fresh copy, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from hub.bus import InProcessBus
from hub.config import Config
from hub.db import Database, create_engine, migrate

PG_URL = os.environ.get("CRMHUB_TEST_PG_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]


def _pg_dsn(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


def _pg_url(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(_pg_dsn(PG_URL, make_url(PG_URL).database or "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro: Any) -> Any:
    """Run a coroutine to the end from sync code, even when called inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _run(_migrated(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but CRMHUB_TEST_PG_URL is not set: PostgreSQL is required in CI")
        pytest.skip("PostgreSQL tests need CRMHUB_TEST_PG_URL")
    name = f"crmhub_tmpl_{uuid.uuid4().hex[:10]}"
    try:
        _run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI and is not usable: {exc}")
        pytest.skip(f"PostgreSQL not usable: {exc}")
    _run(_migrated(_pg_url(PG_URL, name)))
    yield name
    _run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated, empty (but for the default pipeline) database for this test."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "crmhub.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"crmhub_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(PG_URL, name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(create_engine(db_url), InProcessBus())
    yield db
    await db.dispose()


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    cfg = Config()
    cfg.database.url = db_url
    cfg.server.secret_key = "test-secret"
    cfg.server.attachments_dir = str(tmp_path / "attachments")
    cfg.server.public_url = "http://127.0.0.1"
    return cfg


# --- the screen-pop's shape -------------------------------------------------------------------------------
# Every call.ringing / call.recorded the suite publishes is checked against the PopUp schema generated
# from hub.crm.resources (objects closed: a field the class does not declare fails the test).
_POPUP_EVENTS = ("call.ringing", "call.recorded")


@pytest.fixture(autouse=True)
def popups_keep_their_declared_shape(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from hub.bus import InProcessBus
    from hub.web.api.schemas import COMPONENTS
    from tests.openapi_check import Validator

    validator = Validator({"components": {"schemas": COMPONENTS}})
    popup = {"$ref": "#/components/schemas/PopUp"}
    problems: list[str] = []
    publish = InProcessBus.publish

    def checked(self: InProcessBus, name: str, data: dict[str, Any], **kwargs: Any) -> Any:
        if name in _POPUP_EVENTS:
            problems.extend(f"{name} {line}" for line in validator.errors(popup, data))
        return publish(self, name, data, **kwargs)

    monkeypatch.setattr(InProcessBus, "publish", checked)
    yield
    assert not problems, "a screen-pop left its declared shape (hub.crm.resources.PopUp):\n  " + \
        "\n  ".join(problems[:20])
