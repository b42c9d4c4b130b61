"""Security finding 12 (the last item): the webhook journal's SQLite writer opened the database file
itself, ignoring the options of the configured URL (here ``mode=ro``: it wrote all the same)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.bus import InProcessBus
from hub.db import Database, create_engine, migrate
from hub.inbound.driver_store import driver_store
from hub.inbound.journal import JournalWriter


async def test_the_sqlite_journal_opens_the_database_as_the_url_says(tmp_path: Path,
                                                                     monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "hub.db"
    writable = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(writable)
    await writable.dispose()
    engine = create_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    database = Database(engine, InProcessBus())
    store = driver_store(database)
    assert store is not None
    writer = JournalWriter(database, store=store)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store.insert([("sms", "SM1", b"Body=ok")])
    finally:
        await writer.stop()
        await store.close()
        await engine.dispose()
    assert not list(tmp_path.glob("file:*"))  # noqa: ASYNC240  (no stray file named after the URL)
