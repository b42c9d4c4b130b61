"""The deals kanban ``/deals`` over a pipeline of 10,000 deals, through a real hub on 127.0.0.1.

    python bench/pages_deals.py [--db sqlite|postgres] [--deals 10000] [--runs 200]
                                [--db-url URL] [--keep]

Builds the database with Core ``insert()``: 500 clients, 10,000 deals in the default pipeline spread
over its stages (most with a planned interaction, a tenth overdue, a third tagged), ten agents and a
manager. Starts the application (``hub.app.create_app``) on 127.0.0.1 and asks for ``/deals`` as the
manager (every deal: seven columns of 15 cards, the totals in SQL, the Unsorted column) and as an
agent (own deals), sequentially; the time is from sending the request to the last byte of the answer
(loopback, so it is the server's time plus well under a millisecond). Then the page weight: the HTML
and every script and stylesheet it links, as transferred to a browser that accepts gzip (aiohttp
serves a file's precompressed ``.gz`` sibling when there is one; our pages are sent as they are).

Targets: p95 ≤ 150 ms for the manager's board, page weight ≤ 300 KB. Human lines first; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import drop_postgres, log, percentile, prepare_database  # noqa: E402

from hub.app import create_app  # noqa: E402
from hub.config import Config  # noqa: E402
from hub.crm import users  # noqa: E402
from hub.crm.models import Client, Deal, Stage, Tag, User, deal_tags  # noqa: E402
from hub.web.keys import DB  # noqa: E402

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/crmhub_bench_pages_deals"
TARGET_P95_MS = 150.0
TARGET_WEIGHT_KB = 300.0
BATCH = 5_000
PASSWORD = "bench-pass"


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": round(percentile(ms, 50), 2), "p95": round(percentile(ms, 95), 2),
            "p99": round(percentile(ms, 99), 2), "max": round(max(ms), 2),
            "mean": round(statistics.fmean(ms), 2)}


async def build(app: web.Application, n_deals: int, rng: random.Random) -> dict[str, Any]:
    started = time.perf_counter()
    database = app[DB]
    async with database.transaction() as s:
        await users.create_or_update_user(s, "boss", PASSWORD, "manager", name="Начальник")
        for i in range(10):
            await users.create_or_update_user(s, f"agent{i}", PASSWORD, "agent", name=f"Агент {i}")
    async with database.transaction() as s:
        agent_ids = list((await s.scalars(
            select(User.id).where(User.role == "agent").order_by(User.id))).all())
        clients = [Client(name=f"ООО «Клиент {i}»", manager_id=agent_ids[i % 10]) for i in range(500)]
        tags = [Tag(name=name) for name in ("опт", "vip", "тендер")]
        s.add_all([*clients, *tags])
        await s.flush()
        client_ids = [c.id for c in clients]
        tag_ids = [t.id for t in tags]
        stages = list((await s.scalars(
            select(Stage).where(Stage.pipeline_id == 1).order_by(Stage.position))).all())
    now = datetime.now(UTC)
    deals: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for n in range(n_deals):
        stage = rng.choice(stages)
        created = now - timedelta(seconds=rng.randrange(365 * 86400))
        roll = rng.random()
        next_at = (None if roll < 0.15 else now - timedelta(minutes=rng.randrange(1, 20_000)) if roll < 0.25
                   else now + timedelta(minutes=rng.randrange(1, 60_000)))
        deals.append({
            "id": n + 1, "title": f"Поставка оборудования № {n + 1}", "client_id": rng.choice(client_ids),
            "pipeline_id": 1, "stage_id": stage.id, "amount_minor": rng.randrange(1, 10_000) * 10_000,
            "currency": "RUB", "responsible_id": rng.choice(agent_ids), "custom": {},
            "next_interaction_at": next_at,
            "next_interaction_note": "Перезвонить и уточнить сроки" if next_at else "",
            "created_at": created, "updated_at": created, "stage_changed_at": created,
            "last_activity_at": created,
            "closed_at": created if stage.kind != "active" else None,
        })
        if n % 3 == 0:
            links.append({"deal_id": n + 1, "tag_id": rng.choice(tag_ids)})
    for table, rows in ((Deal.__table__, deals), (deal_tags, links)):
        for i in range(0, len(rows), BATCH):
            async with database.engine.begin() as conn:
                await conn.execute(insert(table), rows[i:i + BATCH])
    if database.engine.dialect.name == "postgresql":
        async with database.engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("SELECT setval('deals_id_seq', (SELECT max(id) FROM deals))"))
            await conn.execute(text("ANALYZE"))
    else:
        async with database.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    log(f"built {n_deals} deals over {len(stages)} stages in {time.perf_counter() - started:.1f} s")
    return {"agent_ids": agent_ids}


async def token(session: aiohttp.ClientSession, base: str, login: str) -> str:
    async with session.post(f"{base}/api/v1/auth/token", json={"login": login, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


async def timed_pages(session: aiohttp.ClientSession, url: str, bearer: str,
                      runs: int) -> tuple[dict[str, float], str]:
    """Wall time per request, and the CPU time this process (hub and client) spent on it: the
    machine's other load inflates the first, hardly the second (PostgreSQL's own CPU is not in it)."""
    times: list[float] = []
    cpu: list[float] = []
    body = ""
    headers = {"Authorization": f"Bearer {bearer}"}
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        async with session.get(url, headers=headers) as r:
            body = await r.text()
            assert r.status == 200, body[:500]
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {**summary_ms(times), "cpu_p50": round(percentile(cpu, 50) * 1000, 2)}, body


async def weight(session: aiohttp.ClientSession, base: str, html: str) -> dict[str, Any]:
    """Bytes on the wire (gzip accepted, as a browser would) for the page and the files it links."""
    files = (re.findall(r'<script src="([^"]+)"', html)
             + re.findall(r'<link rel="stylesheet" href="([^"]+)"', html))
    parts = {"html": len(html.encode())}
    headers = {"Accept-Encoding": "gzip, deflate"}
    for path in files:
        async with session.get(base + path, headers=headers, auto_decompress=False) as r:
            assert r.status == 200, path
            parts[path] = len(await r.read())
    total = sum(parts.values())
    return {"files": parts, "total_bytes": total, "total_kb": round(total / 1024, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db-url")
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = await prepare_database(args.db, args.db_url, Path(tmp) / "pages_deals.db", PG_DEFAULT)
        config = Config()
        config.database.url = url
        config.server.secret_key = "bench"
        config.server.attachments_dir = f"{tmp}/attachments"
        app = create_app(config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        try:
            await site.start()  # migrates the database first
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            base = f"http://127.0.0.1:{port}"
            await build(app, args.deals, random.Random(args.seed))
            async with aiohttp.ClientSession() as session:
                boss = await token(session, base, "boss")
                agent = await token(session, base, "agent0")
                await timed_pages(session, f"{base}/deals", boss, 5)  # warm up
                board, html = await timed_pages(session, f"{base}/deals", boss, args.runs)
                own, _ = await timed_pages(session, f"{base}/deals", agent, max(20, args.runs // 4))
                listed, _ = await timed_pages(session, f"{base}/deals/list?order=next", boss,
                                              max(20, args.runs // 4))
                page_weight = await weight(session, base, html)
        finally:
            await runner.cleanup()
            if args.db == "postgres" and not args.keep:
                await drop_postgres(url)

    cards = len(re.findall(r'<li class="deal-card', html))
    log(f"/deals as the manager ({args.deals} deals, {cards} cards rendered): p50 {board['p50']} ms, "
        f"p95 {board['p95']} ms, p99 {board['p99']} ms; CPU per request p50 {board['cpu_p50']} ms")
    log(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    log(f"/deals as an agent (own deals): p50 {own['p50']} ms, p95 {own['p95']} ms")
    log(f"/deals/list?order=next as the manager: p50 {listed['p50']} ms, p95 {listed['p95']} ms")
    log("page weight: " + ", ".join(f"{k} {v / 1024:.1f} KB" for k, v in page_weight["files"].items())
        + f"; total {page_weight['total_kb']} KB")
    print(json.dumps({
        "bench": "pages_deals", "db": args.db, "deals": args.deals, "runs": args.runs,
        "cards_rendered": cards,
        "deals_page_ms": board, "agent_deals_page_ms": own, "deals_list_ms": listed,
        "page_weight": page_weight, "target_p95_ms": TARGET_P95_MS, "target_weight_kb": TARGET_WEIGHT_KB,
        "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "ok": board["p95"] <= TARGET_P95_MS and page_weight["total_kb"] <= TARGET_WEIGHT_KB,
    }, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
