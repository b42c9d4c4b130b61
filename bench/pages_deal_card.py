"""Server time to render the deal card ``/deals/{id}`` for a deal with 10,000 timeline entries, on
SQLite or PostgreSQL.

    python bench/pages_deal_card.py [--db sqlite|postgres] [--entries 10000] [--runs 200]
                                    [--db-url URL] [--keep] [--seed 1]

Builds the database with Core ``insert()``: one deal of a client with contact points and tags, and
``--entries`` timeline entries on it (calls with and without recordings, SMS, Telegram, e-mails,
notes with attachments, stage changes with ``move_deal``'s payload, tasks; 20 pinned), plus 2,000
entries on other deals of the same client so the index has to pick. Then starts the hub (the real
application, ``create_app``) on 127.0.0.1, logs in through the browser login form (session cookie)
and GETs ``/deals/{id}`` sequentially — first the whole card, then the timeline box alone with a
filter (``/timeline/deals/{id}?tl=notes``) and the second page (``cursor``).

The time measured is from sending the request to the last byte of the answer on loopback, with
the client in another process-free coroutine of the same loop — an upper bound of the server time.
Target: p95 ≤ 150 ms for the card. Human lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import drop_postgres, log, percentile, prepare_database  # noqa: E402

from hub.app import create_app  # noqa: E402
from hub.bus import InProcessBus  # noqa: E402
from hub.config import Config  # noqa: E402
from hub.crm import users  # noqa: E402
from hub.crm.models import (  # noqa: E402
    Attachment,
    Client,
    ContactPoint,
    Deal,
    Stage,
    Tag,
    TimelineEntry,
    User,
    deal_tags,
)
from hub.db import Database, create_engine, migrate  # noqa: E402

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/crmhub_bench_deal_card"
TARGET_P95_MS = 150.0
BATCH = 5_000
START = datetime(2025, 1, 1, tzinfo=UTC)
PASSWORD = "timing-run-2026"


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
        "mean": round(statistics.fmean(ms), 2),
    }


TEXTS = [
    "Клиент просил перезвонить после обеда",
    "Отправили коммерческое предложение на 1 250 000 ₽",
    "Договорились о встрече в офисе в четверг",
    "Нужны закрывающие документы в ЭДО",
    "Согласовали скидку 5 % при оплате до конца месяца",
]


async def build(database: Database, n_entries: int, rng: random.Random) -> int:
    """The deal's id, after inserting everything."""
    async with database.transaction() as s:
        agent = User(
            login="agent", name="Иван Агентов", role="agent", password_hash=users.hash_password(PASSWORD)
        )
        s.add(agent)
        await s.flush()
        client = Client(name="ООО «Ромашка»", manager_id=agent.id)
        s.add(client)
        await s.flush()
        s.add_all(
            [
                ContactPoint(client_id=client.id, kind="phone", value="+79161234567", tail="9161234567"),
                ContactPoint(client_id=client.id, kind="email", value="info@romashka.ru"),
            ]
        )
        stages = list(
            (await s.scalars(select(Stage).where(Stage.pipeline_id == 1).order_by(Stage.position))).all()
        )
        now = datetime.now(UTC)
        deals = [
            Deal(
                title=f"Поставка бумаги №{i}",
                client_id=client.id,
                pipeline_id=1,
                stage_id=stages[1].id,
                amount_minor=125_000_000,
                responsible_id=agent.id,
                created_at=now,
                updated_at=now,
                stage_changed_at=now,
                custom={},
            )
            for i in range(5)
        ]
        s.add_all(deals)
        await s.flush()
        tags = [Tag(name="опт"), Tag(name="срочно")]
        s.add_all(tags)
        await s.flush()
        await s.execute(insert(deal_tags), [{"deal_id": deals[0].id, "tag_id": t.id} for t in tags])
        deal_id, other_ids, agent_id, client_id = deals[0].id, [d.id for d in deals[1:]], agent.id, client.id
        refs = [{"id": st.id, "name": st.name, "kind": st.kind} for st in stages]

    kinds = ["call", "sms", "telegram", "email", "note", "stage_change", "task", "note"]
    rows: list[dict[str, Any]] = []
    at = START
    for n in range(n_entries + 2_000):
        at += timedelta(minutes=rng.randint(1, 90))
        kind = rng.choice(kinds)
        payload: dict[str, Any] = {}
        text = rng.choice(TEXTS)
        if kind == "call":
            payload = {"status": rng.choice(["answered", "missed"]), "duration": rng.randint(5, 900)}
            if rng.random() < 0.5:
                payload["recording_url"] = f"/recordings/{n}.mp3"
            text = ""
        elif kind == "stage_change":
            a, b = rng.sample(refs[:5], 2)
            payload = {
                "from_stage": a,
                "to_stage": b,
                "result": text,
                "next_interaction_at": None,
                "next_interaction_note": "",
                "loss_reason": None,
            }
            text = f"{a['name']} → {b['name']}\n{text}"
        elif kind == "email":
            payload = {"subject": "Счёт на оплату"}
        on_deal = n < n_entries
        rows.append(
            {
                "kind": kind,
                "direction": "in" if kind in ("sms", "telegram", "email", "call") else None,
                "occurred_at": at,
                "author_id": agent_id if kind in ("note", "stage_change") else None,
                "text": text,
                "payload": payload,
                "pinned": on_deal and n % (n_entries // 20 or 1) == 0,
                "deal_id": deal_id if on_deal else rng.choice(other_ids),
                "client_id": client_id,
                "created_at": at,
            }
        )
    async with database.transaction() as s:
        for i in range(0, len(rows), BATCH):
            await s.execute(insert(TimelineEntry), rows[i : i + BATCH])
        notes = (
            await s.scalars(
                select(TimelineEntry.id)
                .where(TimelineEntry.deal_id == deal_id, TimelineEntry.kind == "note")
                .order_by(TimelineEntry.id.desc())
                .limit(200)
            )
        ).all()
        await s.execute(
            insert(Attachment),
            [
                {
                    "entry_id": e,
                    "filename": f"Счёт {e}.pdf",
                    "content_type": "application/pdf",
                    "size": 48_213,
                    "sha256": "0" * 64,
                    "created_at": START,
                }
                for e in notes[::4]
            ],
        )
    return deal_id


async def measure(base: str, deal_id: int, runs: int) -> dict[str, Any]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{base}/login") as r:
            nonce = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
        assert nonce is not None
        async with http.post(
            f"{base}/login",
            data={"login": "agent", "password": PASSWORD, "csrf_token": nonce.group(1)},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()

        async def timed(path: str, headers: dict[str, str] | None = None) -> tuple[list[float], int, str]:
            times, size, body = [], 0, ""
            for _ in range(5):  # warm-up
                async with http.get(base + path, headers=headers) as r:
                    body = await r.text()
                    assert r.status == 200, body[:500]
            for _ in range(runs):
                started = time.perf_counter()
                async with http.get(base + path, headers=headers) as r:
                    raw = await r.read()
                times.append(time.perf_counter() - started)
                size = len(raw)
            return times, size, body

        card, card_size, html = await timed(f"/deals/{deal_id}")
        assert html.count('class="tl-entry') >= 30 and "tl-pinned" in html
        htmx = {"HX-Request": "true"}
        notes, _, _ = await timed(f"/timeline/deals/{deal_id}?tl=notes", htmx)
        more = re.search(r'hx-get="(/timeline/deals/\d+\?tl=all&amp;cursor=[^"]+)"', html)
        assert more is not None
        page2, _, _ = await timed(more.group(1).replace("&amp;", "&"), htmx)
    return {
        "card": summary_ms(card),
        "card_bytes": card_size,
        "timeline_notes": summary_ms(notes),
        "timeline_page2": summary_ms(page2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db-url")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = await prepare_database(args.db, args.db_url, Path(tmp) / "deal_card.db", PG_DEFAULT)
        try:
            engine = create_engine(url)
            await migrate(engine)
            database = Database(engine, InProcessBus())
            started = time.perf_counter()
            deal_id = await build(database, args.entries, rng)
            await database.dispose()
            log(
                f"built a deal with {args.entries} timeline entries on {args.db} in "
                f"{time.perf_counter() - started:.1f} s"
            )

            config = Config()
            config.database.url = url
            config.server.secret_key = "bench"
            config.server.attachments_dir = f"{tmp}/attachments"
            runner = web.AppRunner(create_app(config), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            try:
                figures = await measure(f"http://127.0.0.1:{port}", deal_id, args.runs)
            finally:
                await runner.cleanup()
        finally:
            if args.db == "postgres" and not args.keep:
                await drop_postgres(url)
    card = figures["card"]
    log(
        f"GET /deals/{{id}} ({args.runs} runs, {figures['card_bytes'] / 1024:.1f} KB of HTML): "
        f"p50 {card['p50']} ms, p95 {card['p95']} ms, p99 {card['p99']} ms, max {card['max']} ms "
        f"(target p95 ≤ {TARGET_P95_MS:.0f} ms)"
    )
    log(
        f"timeline box, notes only: p95 {figures['timeline_notes']['p95']} ms; "
        f"second page: p95 {figures['timeline_page2']['p95']} ms"
    )
    print(
        json.dumps(
            {
                "benchmark": "pages_deal_card",
                "db": args.db,
                "entries": args.entries,
                "runs": args.runs,
                **figures,
                "target_p95_ms": TARGET_P95_MS,
                "meets_target": card["p95"] <= TARGET_P95_MS,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
