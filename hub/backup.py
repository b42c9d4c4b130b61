"""``crmhub backup FILE`` and ``crmhub restore FILE`` for a SQLite database.

The copy is SQLite's online backup (``sqlite3.Connection.backup``, all pages in one step under a
read lock): a consistent picture of the database at one moment, taken while the hub runs and writes
(WAL mode lets its writers go on meanwhile). It is written next to ``FILE`` and renamed into place
once its ``integrity_check`` passes, so a failed backup never leaves a half file under that name.

A restore checks the file (integrity, and that it is a CRM Hub database: it has the migrations'
table) and copies it over the configured database with the same backup API; the hub must be
stopped meanwhile. Attachments and recordings are files, not rows: copy ``[server] attachments_dir``
and the recordings folder beside the database (README, "Backups"). PostgreSQL has its own tools
(``pg_dump`` / ``pg_restore``): these commands say so rather than half-do it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

POSTGRES_HOWTO = ("the database is PostgreSQL: back it up with pg_dump (pg_dump -Fc -f hub.dump "
                  "DBNAME) and restore it with pg_restore (pg_restore --clean -d DBNAME hub.dump); "
                  "see the README, \"Backups\"")


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    revision: str


def sqlite_connect_args(url: str) -> tuple[list[Any], dict[str, Any]]:
    """The arguments ``sqlite3.connect`` gets for this database URL (its options included)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(POSTGRES_HOWTO if parsed.get_backend_name() == "postgresql"
                          else f"backups of {parsed.get_backend_name()} databases are not supported")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    args, options = SQLiteDialect_pysqlite().create_connect_args(parsed.set(drivername="sqlite"))
    options.pop("check_same_thread", None)
    return list(args), {"timeout": 30, **options}


def backup(url: str, target: Path) -> BackupResult:
    """Copy the live database at ``url`` into ``target`` (replaced only once the copy is sound)."""
    args, options = sqlite_connect_args(url)
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(*args, **options)
    try:
        revision = _revision(source)
        with contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # pages=-1: every page in one step, one consistent snapshot
            _check(copy, str(target))
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    partial.replace(target)
    return BackupResult(target, target.stat().st_size, revision)


def restore(url: str, source_path: Path) -> BackupResult:
    """Replace the database at ``url`` with the backup ``source_path`` (the hub stopped)."""
    args, options = sqlite_connect_args(url)
    if not source_path.is_file():
        raise BackupError(f"{source_path}: no such file")
    with contextlib.closing(sqlite3.connect(f"file:{source_path.resolve()}?mode=ro", uri=True)) as source:
        try:
            _check(source, str(source_path))
            revision = _revision(source)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source_path}: not a SQLite database ({exc})") from exc
        target = sqlite3.connect(*args, **options)
        try:
            source.backup(target)
        finally:
            target.close()
    return BackupResult(source_path, source_path.stat().st_size, revision)


def _check(connection: sqlite3.Connection, name: str) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchone()
    if not result or result[0] != "ok":
        raise BackupError(f"{name}: the copy fails SQLite's integrity check: {result}")


def _revision(connection: sqlite3.Connection) -> str:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"not a CRM Hub database (no migrations table): {exc}") from exc
    if row is None:
        raise BackupError("not a CRM Hub database (its migrations table is empty)")
    return str(row[0])
