"""The sales funnel report over 10,000 deals with their stage history: ``hub.crm.reports.funnel``
in-process, on SQLite or PostgreSQL.

    python bench/funnel.py [--db sqlite|postgres] [--deals 10000] [--notes 3] [--runs 200]
                           [--db-url URL] [--keep] [--seed 1]

Builds the database with Core ``insert()``: a year of deals in the default pipeline, each moved
forward stage by stage at random intervals (``stage_change`` timeline entries with the same payload
``move_deal`` writes), a fifth of them won and a fifth lost with a reason, plus ``--notes`` other
timeline entries per deal so the stage changes have to be picked out of a realistic timeline.
Then asks for the funnel of the whole year, as a manager (every deal) and as an agent (their own),
and for a one-month cohort.

Target: p99 ≤ 300 ms for the whole year as a manager. Human lines first; the last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import drop_postgres, log, percentile, prepare_database  # noqa: E402

from hub.bus import InProcessBus  # noqa: E402
from hub.crm import reports  # noqa: E402
from hub.crm.models import Client, Deal, LossReason, Stage, TimelineEntry, User  # noqa: E402
from hub.db import Database, create_engine, migrate  # noqa: E402

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/crmhub_bench_funnel"
TARGET_P99_MS = 300.0
BATCH = 5_000
START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = {"since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
MONTH = {"since": "2025-06-01T00:00:00Z", "until": "2025-07-01T00:00:00Z"}


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": round(percentile(ms, 50), 2), "p99": round(percentile(ms, 99), 2),
            "max": round(max(ms), 2), "mean": round(statistics.fmean(ms), 2)}


async def build(database: Database, n_deals: int, notes: int, rng: random.Random) -> dict[str, Any]:
    started = time.perf_counter()
    async with database.transaction() as s:
        manager = User(login="boss", name="Начальник", role="manager")
        agents = [User(login=f"agent{i}", name=f"Агент {i}", role="agent") for i in range(10)]
        s.add_all([manager, *agents])
        await s.flush()
        clients = [Client(name=f"Клиент {i}", manager_id=agents[i % 10].id) for i in range(500)]
        s.add_all(clients)
        await s.flush()
        stages = list((await s.scalars(
            select(Stage).where(Stage.pipeline_id == 1).order_by(Stage.position))).all())
        reasons = [r.id for r in (await s.scalars(select(LossReason))).all()]
        ids = {"manager": manager.id, "agents": [a.id for a in agents], "clients": [c.id for c in clients]}
    active = [st for st in stages if st.kind == "active"]
    won = next(st for st in stages if st.kind == "won")
    lost = next(st for st in stages if st.kind == "lost")

    def ref(st: Stage) -> dict[str, Any]:
        return {"id": st.id, "name": st.name, "kind": st.kind}

    deal_rows: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for n in range(n_deals):
        deal_id = n + 1
        created = START + timedelta(seconds=rng.randrange(365 * 86400))
        client_id = rng.choice(ids["clients"])
        at, pos, current = created, 0, active[0]
        path: list[tuple[Stage, Stage, datetime]] = []
        while pos + 1 < len(active) and rng.random() < 0.55:
            at += timedelta(minutes=rng.randint(30, 14 * 24 * 60))
            path.append((active[pos], active[pos + 1], at))
            pos += 1
            current = active[pos]
        if rng.random() < 0.1 and pos > 0:  # sent back one stage
            at += timedelta(hours=rng.randint(1, 48))
            path.append((active[pos], active[pos - 1], at))
            pos -= 1
            current = active[pos]
        roll = rng.random()
        reason = None
        if roll < 0.2:
            at += timedelta(hours=rng.randint(1, 240))
            path.append((current, won, at))
            current = won
        elif roll < 0.4:
            at += timedelta(hours=rng.randint(1, 240))
            path.append((current, lost, at))
            current, reason = lost, rng.choice(reasons)
        deal_rows.append({
            "id": deal_id, "title": f"Сделка {deal_id}", "client_id": client_id, "pipeline_id": 1,
            "stage_id": current.id, "amount_minor": rng.randrange(1, 10_000) * 10_000, "currency": "RUB",
            "responsible_id": rng.choice(ids["agents"]), "loss_reason_id": reason, "custom": {},
            "created_at": created, "updated_at": at, "stage_changed_at": at, "last_activity_at": at,
            "closed_at": at if current.kind != "active" else None,
        })
        for a, b, when in path:
            entries.append({
                "kind": "stage_change", "deal_id": deal_id, "client_id": client_id, "occurred_at": when,
                "created_at": when, "text": f"{a.name} → {b.name}", "pinned": False,
                "payload": {"from_stage": ref(a), "to_stage": ref(b), "result": "",
                            "next_interaction_at": None, "next_interaction_note": "",
                            "loss_reason": {"id": reason, "name": ""} if b is lost else None},
            })
        for k in range(notes):
            when = created + timedelta(hours=rng.randint(1, 2000))
            entries.append({"kind": rng.choice(("note", "call", "email")), "deal_id": deal_id,
                            "client_id": client_id, "occurred_at": when, "created_at": when,
                            "text": f"Запись {k} по сделке {deal_id}", "pinned": False, "payload": {}})
    for table, rows in ((Deal.__table__, deal_rows), (TimelineEntry.__table__, entries)):
        for i in range(0, len(rows), BATCH):
            async with database.engine.begin() as conn:
                await conn.execute(insert(table), rows[i:i + BATCH])
    if database.engine.dialect.name == "postgresql":
        async with database.engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("ANALYZE"))
    else:
        async with database.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    stage_changes = sum(1 for e in entries if e["kind"] == "stage_change")
    log(f"built {n_deals} deals, {stage_changes} stage changes, {len(entries) - stage_changes} other "
        f"entries in {time.perf_counter() - started:.1f} s")
    return {"manager": manager, "agent": agents[0], "stage_changes": stage_changes,
            "entries": len(entries)}


async def measure(database: Database, actor: User, runs: int, **kw: Any) -> tuple[dict[str, float], Any]:
    times: list[float] = []
    report = None
    for _ in range(runs):
        async with database.reading() as s:
            started = time.perf_counter()
            report = await reports.funnel(s, actor, pipeline_id=1, **kw)
            times.append(time.perf_counter() - started)
    return summary_ms(times), report


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db-url")
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--notes", type=int, default=3, help="other timeline entries per deal")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = await prepare_database(args.db, args.db_url, Path(tmp) / "funnel.db", PG_DEFAULT)
        engine = create_engine(url)
        database = Database(engine, InProcessBus())
        try:
            await migrate(engine)
            built = await build(database, args.deals, args.notes, random.Random(args.seed))
            await measure(database, built["manager"], 5, **YEAR)  # warm up
            year, report = await measure(database, built["manager"], args.runs, **YEAR)
            agent, own = await measure(database, built["agent"], max(20, args.runs // 4), **YEAR)
            month, _ = await measure(database, built["manager"], max(20, args.runs // 4), **MONTH)
        finally:
            await database.dispose()
            if args.db == "postgres" and not args.keep:
                await drop_postgres(url)

    assert report is not None and own is not None
    log(f"funnel, {report['total']['count']} deals (manager): p50 {year['p50']} ms, p99 {year['p99']} ms")
    log(f"funnel, {own['total']['count']} own deals (agent): p50 {agent['p50']} ms, p99 {agent['p99']} ms")
    log(f"funnel, one month's cohort: p50 {month['p50']} ms, p99 {month['p99']} ms")
    log("reached: " + ", ".join(f"{r['reached']}" for r in report["stages"])
        + f"; won {report['won']['count']}, lost {report['lost']['count']}")
    print(json.dumps({
        "bench": "funnel", "db": args.db, "deals": args.deals, "stage_changes": built["stage_changes"],
        "timeline_entries": built["entries"], "runs": args.runs,
        "funnel_ms": year, "agent_funnel_ms": agent, "month_funnel_ms": month,
        "target_p99_ms": TARGET_P99_MS, "ok": year["p99"] <= TARGET_P99_MS,
    }, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
