"""Caller identification at scale: ``hub.crm.identify.identify`` in-process and ``GET /api/v1/identify``
through a real hub process, over a database with a million contact points.

    python bench/identify.py [--db sqlite|postgres] [--points 1000000] [--queries 2000]
                             [--db-url URL] [--keep] [--no-http] [--seed 1]

Builds the database (Core ``insert()`` in large batches: clients, contact persons and leads owning
phones, e-mails and Telegram accounts; deals on some of them, most in open stages), then asks for
random numbers — nine in ten known, one in ten unknown — written the way caller ids and people
write them (``8 (916) 123-45-67``, ``+7 916 123 45 67``, ``9161234567``, ``+79161234567``).
HTTP: starts ``crmhub run`` on 127.0.0.1 against the same database, logs in for a token and sends
the requests one after another; the hub's resident memory is read from /proc/PID/status.

Targets: in-process p99 ≤ 1 ms, HTTP p99 ≤ 5 ms. Human lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.bus import InProcessBus  # noqa: E402
from hub.crm.models import Client, ContactPerson, ContactPoint, Deal, Lead, Stage  # noqa: E402
from hub.db import Database, create_engine, migrate  # noqa: E402

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/crmhub_bench"
TARGET_INPROC_P99_MS = 1.0
TARGET_HTTP_P99_MS = 5.0
BATCH = 20_000
BENCH_LOGIN, BENCH_PASSWORD = "bench", "timing-run-2026"


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": round(percentile(ms, 50), 3), "p90": round(percentile(ms, 90), 3),
            "p99": round(percentile(ms, 99), 3), "max": round(max(ms), 3),
            "mean": round(statistics.fmean(ms), 3)}


# --- the database ---------------------------------------------------------------------------------

async def prepare_database(kind: str, url: str | None, workdir: Path) -> str:
    if kind == "sqlite":
        if url:
            return url
        path = workdir / "identify.db"
        return f"sqlite+aiosqlite:///{path}"
    url = url or PG_DEFAULT
    parsed = make_url(url)
    name = parsed.database
    admin_dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url


async def drop_postgres(url: str) -> None:
    parsed = make_url(url)
    admin_dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


def fmt_phone(rng: random.Random, ten: str) -> str:
    style = rng.randrange(4)
    if style == 0:
        return f"8 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]}"
    if style == 1:
        return f"+7 {ten[:3]} {ten[3:6]} {ten[6:8]} {ten[8:]}"
    if style == 2:
        return ten
    return "+7" + ten


async def build(database: Database, points: int, rng: random.Random) -> tuple[list[str], dict[str, Any]]:
    """Fill the database; returns the known phone numbers (10 digits) and counts."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    # About 55 % of the points are the one phone of each owner, the rest e-mails, second phones and
    # Telegram accounts. Owners: 36 % clients, 46 % contact persons, 18 % leads.
    owners = max(3, int(points * 0.55))
    n_clients, n_contacts = int(owners * 0.36), int(owners * 0.46)
    n_leads = owners - n_clients - n_contacts
    numbers = [str(9_000_000_000 + n) for n in rng.sample(range(1_000_000_000), owners + points // 10)]
    phone_iter = iter(numbers)

    async with database.reading() as s:
        stages = [(sid, kind) for sid, kind in (await s.execute(
            select(Stage.id, Stage.kind).where(Stage.pipeline_id == 1).order_by(Stage.position))).all()]

    async def insert_rows(table: Any, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), BATCH):
            async with database.engine.begin() as conn:
                await conn.execute(insert(table), rows[i:i + BATCH])

    clients = [{"id": i, "kind": "company" if i % 3 else "person", "name": f"Клиент {i}", "full_name": "",
                "relationship_type": "buyer", "region": "", "industry": "", "comment": "", "custom": {},
                "created_at": now, "updated_at": now} for i in range(1, n_clients + 1)]
    await insert_rows(Client.__table__, clients)
    contacts = [{"id": i, "client_id": rng.randint(1, n_clients), "name": f"Контакт {i}", "position": "",
                 "comment": "", "created_at": now} for i in range(1, n_contacts + 1)]
    await insert_rows(ContactPerson.__table__, contacts)
    leads = [{"id": i, "name": f"Лид {i}", "source": "звонок", "comment": "", "utm": {},
              "unsorted": i % 4 == 0, "created_at": now} for i in range(1, n_leads + 1)]
    await insert_rows(Lead.__table__, leads)
    del clients, contacts, leads

    n_deals = max(1, n_clients // 2)
    deals = []
    for i in range(1, n_deals + 1):
        stage_id, _kind = stages[rng.randrange(len(stages))]
        on_lead = i % 10 == 0
        client_id = None if on_lead else rng.randint(1, n_clients)
        deals.append({"id": i, "title": f"Сделка {i}", "client_id": client_id,
                      "lead_id": rng.randint(1, n_leads) if on_lead else None, "pipeline_id": 1,
                      "stage_id": stage_id, "amount_minor": rng.randrange(1, 10_000) * 10_000,
                      "currency": "RUB", "custom": {}, "created_at": now, "updated_at": now,
                      "stage_changed_at": now, "last_activity_at": now})
    await insert_rows(Deal.__table__, deals)
    del deals

    owner_list = ([("client_id", i) for i in range(1, n_clients + 1)]
                  + [("contact_id", i) for i in range(1, n_contacts + 1)]
                  + [("lead_id", i) for i in range(1, n_leads + 1)])
    base = {"client_id": None, "contact_id": None, "lead_id": None, "user_id": None, "label": "",
            "created_at": now}
    known: list[str] = []
    rows: list[dict[str, Any]] = []
    point_id = 0
    inserted = 0

    async def flush() -> None:
        nonlocal rows, inserted
        if rows:
            await insert_rows(ContactPoint.__table__, rows)
            inserted += len(rows)
            rows = []

    def add(owner: tuple[str, int], kind: str, value: str, tail: str | None, raw: str) -> None:
        nonlocal point_id
        point_id += 1
        row = dict(base)
        row.update(id=point_id, kind=kind, value=value, tail=tail, raw=raw)
        row[owner[0]] = owner[1]
        rows.append(row)

    for owner in owner_list:  # one phone each
        ten = next(phone_iter)
        known.append(ten)
        add(owner, "phone", "+7" + ten, ten, fmt_phone(rng, ten))
        if len(rows) >= 100_000:
            await flush()
    extra = points - point_id
    for k in range(extra):
        owner = owner_list[rng.randrange(len(owner_list))]
        roll = k % 10
        if roll < 7:
            email = f"user{point_id + 1}@example{k % 97}.ru"
            add(owner, "email", email, None, email.upper())
        elif roll < 9:
            ten = next(phone_iter)
            known.append(ten)
            add(owner, "phone", "+7" + ten, ten, fmt_phone(rng, ten))
        else:
            add(owner, "telegram_username", f"tg_user_{point_id + 1}", None, f"@tg_user_{point_id + 1}")
        if len(rows) >= 100_000:
            await flush()
    await flush()

    async with database.engine.begin() as conn:
        if database.engine.dialect.name == "postgresql":
            for table in ("clients", "contacts", "leads", "deals", "contact_points"):
                await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT coalesce(max(id), 1) FROM {table}))"))
    async with database.engine.connect() as conn:
        if database.engine.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    async with database.reading() as s:
        total = await s.scalar(select(func.count()).select_from(ContactPoint))
    counts = {"contact_points": total, "clients": n_clients, "contacts": n_contacts, "leads": n_leads,
              "deals": n_deals, "build_seconds": round(time.perf_counter() - started, 1)}
    return known, counts


def make_queries(rng: random.Random, known: list[str], n: int) -> list[tuple[str, bool]]:
    known_set = set(known)
    queries = []
    for i in range(n):
        if i % 10 == 9:
            while True:
                ten = str(9_000_000_000 + rng.randrange(1_000_000_000))
                if ten not in known_set:
                    break
            queries.append((fmt_phone(rng, ten), False))
        else:
            queries.append((fmt_phone(rng, rng.choice(known)), True))
    return queries


# --- in-process -----------------------------------------------------------------------------------

async def bench_inprocess(database: Database, queries: list[tuple[str, bool]]) -> dict[str, Any]:
    from hub.crm.identify import identify

    wrong = 0
    async with database.reading() as s:
        for raw, _hit in queries[:200]:  # warm up: connection, statement caches
            await identify(s, phone=raw)
        times = []
        for raw, hit in queries:
            t0 = time.perf_counter()
            matches = await identify(s, phone=raw)
            times.append(time.perf_counter() - t0)
            wrong += bool(matches) != hit
    fresh = []
    for raw, _hit in queries:
        t0 = time.perf_counter()
        async with database.reading() as s:
            await identify(s, phone=raw)
        fresh.append(time.perf_counter() - t0)
    return {"one_session_ms": summary_ms(times), "session_per_call_ms": summary_ms(fresh), "wrong": wrong}


# --- through HTTP ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def create_bench_user(database: Database) -> None:
    from hub.crm import users

    async with database.transaction() as s:
        await users.create_or_update_user(s, BENCH_LOGIN, BENCH_PASSWORD, "agent", name="Bench")


def start_hub(port: int, env: dict[str, str], workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


async def bench_http(url: str, queries: list[tuple[str, bool]], workdir: Path) -> dict[str, Any]:
    import aiohttp

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMHUB_")}
    env.update(CRMHUB_DATABASE_URL=url, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log_path = workdir / "hub.log"
    proc = start_hub(port, env, workdir, log_path)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the hub exited with {proc.returncode}: "
                                       + log_path.read_text(errors="replace")[-800:])
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("the hub did not answer /healthz within 60 s")
                await asyncio.sleep(0.1)
            result["rss_after_start_mb"] = rss_mb(proc.pid)
            async with http.post(f"{base}/api/v1/auth/token",
                                 json={"login": BENCH_LOGIN, "password": BENCH_PASSWORD}) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"login failed: {resp.status} {body}")
            headers = {"Authorization": f"Bearer {body['token']}"}
            endpoint = f"{base}/api/v1/identify"
            for raw, _hit in queries[:200]:
                async with http.get(endpoint, params={"phone": raw}, headers=headers) as resp:
                    await resp.read()
            times, wrong, errors = [], 0, 0
            for raw, hit in queries:
                t0 = time.perf_counter()
                async with http.get(endpoint, params={"phone": raw}, headers=headers) as resp:
                    data = await resp.read()
                    status = resp.status
                times.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
                    continue
                wrong += bool(json.loads(data).get("matches")) != hit
            # the floor: the same request refused before any database work (no token → 401)
            floor = []
            for raw, _hit in queries[:500]:
                t0 = time.perf_counter()
                async with http.get(endpoint, params={"phone": raw}) as resp:
                    await resp.read()
                floor.append(time.perf_counter() - t0)
            result.update(ms=summary_ms(times), wrong=wrong, errors=errors, floor_ms=summary_ms(floor),
                          rss_after_run_mb=rss_mb(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result


# --- main -----------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="crmhub-bench-"))
    url = await prepare_database(args.db, args.db_url, workdir)
    log(f"identify bench on {args.db}: {make_url(url).render_as_string(hide_password=True)}")
    database = Database(create_engine(url), InProcessBus())
    figures: dict[str, Any] = {"bench": "identify", "db": args.db, "points": args.points,
                               "queries": args.queries}
    try:
        await migrate(database.engine)
        known, counts = await build(database, args.points, rng)
        figures.update(counts)
        log(f"built {counts['contact_points']:,} contact points ({counts['clients']:,} clients, "
            f"{counts['contacts']:,} contact persons, {counts['leads']:,} leads, {counts['deals']:,} deals) "
            f"in {counts['build_seconds']} s")
        queries = make_queries(rng, known, args.queries)
        # The hub holds none of the bench's million-item lists: drop them and freeze what is left, so
        # that the garbage collector walking them does not show up as the hub's latency.
        del known
        gc.collect()
        gc.freeze()
        inproc = await bench_inprocess(database, queries)
        figures["inprocess_ms"] = inproc["one_session_ms"]
        figures["inprocess_session_per_call_ms"] = inproc["session_per_call_ms"]
        figures["inprocess_wrong"] = inproc["wrong"]
        log(f"in-process identify: p50 {inproc['one_session_ms']['p50']} ms, "
            f"p99 {inproc['one_session_ms']['p99']} ms (session per call: p50 "
            f"{inproc['session_per_call_ms']['p50']} ms, p99 {inproc['session_per_call_ms']['p99']} ms); "
            f"wrong answers: {inproc['wrong']}")
        if not args.no_http:
            try:
                await create_bench_user(database)
                http = await bench_http(url, queries, workdir)
                figures["http_ms"] = http["ms"]
                figures["http_wrong"] = http["wrong"]
                figures["http_errors"] = http["errors"]
                figures["http_401_floor_ms"] = http["floor_ms"]
                figures["hub_rss_mb"] = {"after_start": http["rss_after_start_mb"],
                                         "after_run": http["rss_after_run_mb"]}
                log(f"HTTP GET /api/v1/identify: p50 {http['ms']['p50']} ms, p99 {http['ms']['p99']} ms; "
                    f"wrong {http['wrong']}, errors {http['errors']}; hub RSS "
                    f"{http['rss_after_start_mb']} MB after start, "
                    f"{http['rss_after_run_mb']} MB after the run; the same request without a token "
                    f"(401, no database): p50 {http['floor_ms']['p50']} ms, p99 {http['floor_ms']['p99']} ms")
            except Exception as exc:  # report and still print the in-process figures
                figures["http_error"] = f"{type(exc).__name__}: {exc}"[:1000]
                log(f"HTTP part failed: {figures['http_error']}")
    finally:
        await database.dispose()
        if not args.keep:
            if args.db == "postgres":
                await drop_postgres(url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept: {url} (work dir {workdir})")
    figures["targets_ms"] = {"inprocess_p99": TARGET_INPROC_P99_MS, "http_p99": TARGET_HTTP_P99_MS}
    figures["meets_targets"] = bool(
        figures["inprocess_ms"]["p99"] <= TARGET_INPROC_P99_MS
        and (("http_ms" in figures and figures["http_ms"]["p99"] <= TARGET_HTTP_P99_MS) or args.no_http)
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db-url", help=f"database URL (postgres default {PG_DEFAULT}; it is dropped and "
                        "created); sqlite default: a file in a temporary folder")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--no-http", action="store_true", help="only the in-process measurement")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
