"""``crmhub backup`` / ``crmhub restore`` (issue 13, "Backups"): a backup taken while the hub writes
holds every row committed before it began, passes SQLite's integrity check, and restores into a
working database; PostgreSQL is told to use pg_dump."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub import cli
from hub.bus import InProcessBus
from hub.crm.models import Client
from hub.db import Database, create_engine, migrate
from tests.integration.conftest import until


async def crmhub(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> int:
    monkeypatch.setenv("CRMHUB_DATABASE_URL", url)
    return await asyncio.to_thread(cli.main, list(args))


async def test_a_backup_under_write_load_restores_every_committed_row(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: Any) -> None:
    for key in ("CRMHUB_CONFIG",):
        monkeypatch.delenv(key, raising=False)
    live_url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    engine = create_engine(live_url)
    await migrate(engine)
    database = Database(engine, InProcessBus())
    committed: list[int] = []
    stop = asyncio.Event()

    async def write() -> None:  # the hub at work: one client a transaction, as fast as it goes
        n = 0
        while not stop.is_set():
            n += 1
            async with database.transaction() as s:
                client = Client(name=f"Клиент {n}", kind="company")
                s.add(client)
                await s.flush()
                client_id = client.id
            committed.append(client_id)
            await asyncio.sleep(0)

    writer = asyncio.create_task(write())
    try:
        await until(lambda: len(committed) >= 200)
        before = list(committed)
        assert await crmhub(monkeypatch, live_url, "backup", str(tmp_path / "hub.backup")) == 0
        during = len(committed)
        await until(lambda: len(committed) >= during + 50)  # the hub goes on writing after the copy
    finally:
        stop.set()
        await writer
        await engine.dispose()
    assert "backed up" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "hub.backup") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    restored_url = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    assert await crmhub(monkeypatch, restored_url, "restore", str(tmp_path / "hub.backup")) == 0
    assert await crmhub(monkeypatch, restored_url, "migrate") == 0
    engine = create_engine(restored_url)
    try:
        async with Database(engine, InProcessBus()).reading() as s:
            ids = set((await s.scalars(select(Client.id))).all())
    finally:
        await engine.dispose()
    assert set(before) <= ids  # every row committed before the backup began
    assert ids <= set(committed)  # and nothing that was never committed
    assert len(ids) < len(committed)  # the rows written after it are not in it


async def test_what_is_not_a_backup_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: Any) -> None:
    monkeypatch.delenv("CRMHUB_CONFIG", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert await crmhub(monkeypatch, url, "restore", str(tmp_path / "junk.db")) == 1
    assert "not a SQLite database" in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "other.db") as other:
        other.execute("CREATE TABLE t (x)")
    assert await crmhub(monkeypatch, url, "restore", str(tmp_path / "other.db")) == 1
    assert "not a CRM Hub database" in capsys.readouterr().err
    assert await crmhub(monkeypatch, url, "restore", str(tmp_path / "missing.db")) == 1
    pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/whatever"
    assert await crmhub(monkeypatch, pg, "backup", str(tmp_path / "x")) == 1
    assert "pg_dump" in capsys.readouterr().err
