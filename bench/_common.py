"""What the page and report benchmarks share: percentiles and a throw-away database per run."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def _admin_dsn_and_name(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    return (parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False),
            str(parsed.database))


async def _admin_execute(url: str, *statements: str) -> None:
    dsn, _ = _admin_dsn_and_name(url)
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def prepare_database(kind: str, url: str | None, sqlite_path: Path, pg_default: str) -> str:
    """The database URL for this run: a SQLite file, or a PostgreSQL database made afresh."""
    if kind == "sqlite":
        return url or f"sqlite+aiosqlite:///{sqlite_path}"
    url = url or pg_default
    _, name = _admin_dsn_and_name(url)
    await _admin_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return url


async def drop_postgres(url: str) -> None:
    _, name = _admin_dsn_and_name(url)
    await _admin_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
