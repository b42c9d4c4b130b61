"""Inbound webhooks persisted per second (Twilio SMS and Telegram) through a real hub process, against
a bare aiohttp handler that only answers 200, on the same machine in the same run; and the outbox's
messages per second drained to the fake Twilio and Telegram servers.

    python bench/webhooks.py [--db sqlite|postgres] [--messages 3000] [--concurrency 16]
                             [--senders 300] [--outbox 1000] [--db-url URL] [--keep]
                             [--profile DIR] [--channels twilio,telegram]

1. The bare handler (this script with ``--bare PORT``, its own process) gets the same Twilio-shaped
   form posts (at least 10,000) from ``--concurrency`` connections: requests/s.
2. ``crmhub run`` on 127.0.0.1 (its own process; ``[twilio]`` and ``[telegram]`` pointed at the fake
   servers of tests/fakes, which run in this process) gets the same number of signed Twilio SMS
   webhooks (each a new ``MessageSid`` from one of ``--senders`` phones: the first message of a phone
   makes a lead in Unsorted, the rest land in its conversation), then as many Telegram updates (secret
   header, ``update_id`` and ``(chat, message)`` new each time). The hub answers after its transaction
   commits, so answers/s = messages persisted/s; the rows are counted afterwards.
3. Outbox: the hub stops; ``--outbox`` SMS and as many Telegram messages are queued (``queue_message``)
   to the leads made in step 2; the hub starts again and its outbox drains them to the fakes:
   messages/s between the first and the last send the fakes receive.

Targets (issue 5): ≥ 1,000 messages/s on SQLite and ≥ 30 % of the bare handler's rate. ``--profile DIR``
runs the hub under cProfile (``DIR/hub.prof``; the rates are then lower). Human lines first; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import drop_postgres, log, percentile, prepare_database  # noqa: E402

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/crmhub_bench_webhooks"
PUBLIC_URL = "https://crm.example.ru"
SMS_PATH, STATUS_PATH, TELEGRAM_PATH = "/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/telegram"
TG_SECRET = "bench-webhook-secret-0123456789"
TARGET_RATE = 1000.0
TARGET_RATIO = 0.30
BENCH_LOGIN = "bench"
TEXTS = ["Здравствуйте! Когда сможете приехать на замер?", "Спасибо, всё получили 👍",
         "Перезвоните, пожалуйста", "Сколько стоит окно 1200×1400 с установкой?",
         "Договорились, ждём в субботу после 14:00"]


# --- the bare handler (a process of its own) ----------------------------------------------------------

def serve_bare(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- load ------------------------------------------------------------------------------------------------

Request = tuple[str, bytes, dict[str, str]]


async def fire(base: str, requests: list[Request], concurrency: int) -> dict[str, Any]:
    """POST every request with ``concurrency`` connections; → rate and statuses."""
    import aiohttp

    statuses: dict[int, int] = {}
    errors: list[str] = []
    latencies: list[float] = []
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        async def worker() -> None:
            for path, body, headers in queue:
                try:
                    started = time.perf_counter()
                    async with http.post(base + path, data=body, headers=headers) as response:
                        await response.read()
                        statuses[response.status] = statuses.get(response.status, 0) + 1
                    latencies.append(time.perf_counter() - started)
                except aiohttp.ClientError as error:
                    errors.append(f"{type(error).__name__}: {error}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    ok = sum(n for status, n in statuses.items() if status < 300)
    return {"requests": len(requests), "seconds": round(elapsed, 3), "ok": ok,
            "per_s": round(ok / elapsed, 1), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "errors": len(errors), "first_error": errors[0] if errors else None, "_t0": t0,
            "latency_ms": {f"p{pct}": round(percentile(latencies, pct) * 1000, 1) for pct in (50, 99)}
            | {"max": round(max(latencies) * 1000, 1)} if latencies else None}


async def in_crm(database: Any, channel: str, expected: int, t0: float,
                 within: float = 300) -> dict[str, Any]:
    """Wait until ``expected`` inbound rows of ``channel`` are in the CRM (a hub that answers after
    journaling the webhook takes it in later): → rows and rows/s since the first request."""
    deadline = time.monotonic() + within
    rows = await count_messages(database, channel, "in")
    while rows < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        rows = await count_messages(database, channel, "in")
    elapsed = time.perf_counter() - t0
    return {"rows": rows, "seconds": round(elapsed, 3)}


def phone(n: int) -> str:
    return f"+7916{n:07d}"


def twilio_requests(count: int, senders: int, token: str, account_sid: str, start: int = 0) -> list[Request]:
    from tests.fakes.twilio_api import OUR_NUMBER, SERVICE_SID, sign

    out = []
    for i in range(start, start + count):
        sid = "SM" + secrets.token_hex(16)
        fields = {"ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
                  "ToCity": "SAN FRANCISCO", "FromZip": "", "SmsSid": sid, "FromState": "",
                  "SmsStatus": "received", "FromCity": "", "Body": f"{TEXTS[i % len(TEXTS)]} #{i}",
                  "FromCountry": "RU", "To": OUR_NUMBER, "MessagingServiceSid": SERVICE_SID,
                  "ToZip": "94105", "NumSegments": "1", "MessageSid": sid, "AccountSid": account_sid,
                  "From": phone(i % senders), "ApiVersion": "2010-04-01"}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": sign(token, PUBLIC_URL + SMS_PATH, fields)}
        out.append((SMS_PATH, urlencode(fields).encode(), headers))
    return out


def telegram_requests(count: int, senders: int, start: int = 0) -> list[Request]:
    out = []
    for i in range(start, start + count):
        user = 7_000_000_000 + i % senders
        person = {"id": user, "is_bot": False, "first_name": "Анна", "last_name": f"Клиент {i % senders}",
                  "username": f"bench_user_{i % senders}", "language_code": "ru"}
        update = {"update_id": 500_000_000 + i, "message": {
            "message_id": 1000 + i, "from": person,
            "chat": {k: v for k, v in person.items() if k in ("id", "first_name", "last_name", "username")}
            | {"type": "private"},
            "date": 1795417331 + i, "text": f"{TEXTS[i % len(TEXTS)]} #{i}"}}
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        out.append((TELEGRAM_PATH, json.dumps(update).encode(), headers))
    return out


# --- processes ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path | None) -> None:
    import aiohttp

    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession(trust_env=False) as http:
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:] if log_path else ""  # noqa: ASYNC240
                raise RuntimeError(f"the process exited with {proc.returncode}: {tail}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within 60 s")
            await asyncio.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # a clean exit (cProfile writes its file)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_hub(port: int, env: dict[str, str], workdir: Path, log_path: Path,
              profile: Path | None) -> subprocess.Popen[bytes]:
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += ["-m", "hub.cli", "run", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as out:
        return subprocess.Popen(command, cwd=workdir, env={**env, "PYTHONPATH": str(ROOT)}, stdout=out,
                                stderr=subprocess.STDOUT)


def hub_env(url: str, twilio: Any, telegram: Any, channels: set[str]) -> dict[str, str]:
    from tests.fakes.twilio_api import SERVICE_SID

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMHUB_")}
    env.update(CRMHUB_DATABASE_URL=url, CRMHUB_SERVER_PUBLIC_URL=PUBLIC_URL,
               CRMHUB_SERVER_SECRET_KEY="bench-secret", NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost")
    if "twilio" in channels:
        env.update(CRMHUB_TWILIO_ACCOUNT_SID=twilio.account_sid, CRMHUB_TWILIO_AUTH_TOKEN=twilio.auth_token,
                   CRMHUB_TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID, CRMHUB_TWILIO_API_URL=twilio.url)
    if "telegram" in channels:
        env.update(CRMHUB_TELEGRAM_TOKEN=telegram.token, CRMHUB_TELEGRAM_MODE="webhook",
                   CRMHUB_TELEGRAM_WEBHOOK_SECRET=TG_SECRET, CRMHUB_TELEGRAM_API_URL=telegram.url)
    return env


# --- the database -------------------------------------------------------------------------------------

async def count_messages(database: Any, channel: str, direction: str) -> int:
    from sqlalchemy import func, select

    from hub.crm.models import Message

    async with database.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(Message).where(
            Message.channel == channel, Message.direction == direction)) or 0)


async def queue_outbox(database: Any, channel: str, count: int) -> int:
    """``count`` messages queued to the leads of ``channel``'s conversations, round robin."""
    from sqlalchemy import select

    from hub.crm import messages
    from hub.crm.models import Conversation, User

    async with database.reading() as s:
        actor = await s.scalar(select(User).where(User.login == BENCH_LOGIN))
        leads = list((await s.scalars(select(Conversation.lead_id).where(
            Conversation.channel == channel, Conversation.lead_id.is_not(None)))).all())
    if not leads:
        return 0
    for i in range(count):
        async with database.transaction() as s:
            await messages.queue_message(s, actor, {"channel": channel, "lead_id": leads[i % len(leads)],
                                                    "text": f"Ответ {i}: замерщик приедет в субботу"})
    return count


async def wait_sent(sends: Callable[[], list[float]], total: int, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    times = sends()
    while len(times) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        times = sends()
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    return {"messages": total, "sent": len(times), "seconds": round(span, 3),
            "per_s": round((len(times) - 1) / span, 1) if span > 0 else None}


# --- main ----------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> dict[str, Any]:
    from hub.bus import InProcessBus
    from hub.crm import users
    from hub.db import Database, create_engine, migrate
    from tests.fakes.telegram_api import FakeTelegramApi
    from tests.fakes.twilio_api import FakeTwilio

    channels = set(args.channels.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="crmhub-bench-webhooks-"))
    url = await prepare_database(args.db, args.db_url, workdir / "crmhub.db", PG_DEFAULT)
    figures: dict[str, Any] = {"bench": "webhooks", "db": args.db, "messages": args.messages,
                               "concurrency": args.concurrency, "senders": args.senders,
                               "cpus": os.cpu_count()}
    log(f"webhooks bench on {args.db}: {args.messages} messages per channel, {args.concurrency} connections, "
        f"{args.senders} senders")
    database = Database(create_engine(url), InProcessBus())
    twilio, telegram = FakeTwilio(), FakeTelegramApi()
    await twilio.start()
    await telegram.start()
    procs: list[subprocess.Popen[bytes]] = []
    profile = Path(args.profile) / f"hub-{args.db}.prof" if args.profile else None
    try:
        await migrate(database.engine)
        async with database.transaction() as s:
            await users.create_or_update_user(s, BENCH_LOGIN, "timing-run-2026", "agent", name="Bench")
        sms = twilio_requests(args.messages, args.senders, twilio.auth_token, twilio.account_sid)
        tg = telegram_requests(args.messages, args.senders)
        warm_sms = twilio_requests(50, args.senders, twilio.auth_token, twilio.account_sid,
                                   start=args.messages)
        warm_tg = telegram_requests(50, args.senders, start=args.messages)

        # 1. the bare handler
        port = free_port()
        bare = subprocess.Popen([sys.executable, __file__, "--bare", str(port)], cwd=workdir)  # noqa: ASYNC220
        procs.append(bare)
        await wait_ready(f"http://127.0.0.1:{port}/", bare, None)
        await fire(f"http://127.0.0.1:{port}", sms[:200], args.concurrency)  # warm-up
        # at least 10,000 requests: a few seconds, so that a neighbour's burst on a shared box weighs less
        bare_load = (sms * (10_000 // len(sms) + 1))[:max(10_000, len(sms))]
        figures["bare"] = await fire(f"http://127.0.0.1:{port}", bare_load, args.concurrency)
        figures["bare"].pop("_t0")
        stop(bare)
        log(f"bare aiohttp handler: {figures['bare']['per_s']:,} requests/s")

        # 2. the hub
        env = hub_env(url, twilio, telegram, channels)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        hub = start_hub(port, env, workdir, workdir / "hub.log", profile)
        procs.append(hub)
        await wait_ready(f"{base}/healthz", hub, workdir / "hub.log")
        for name, requests, warm, channel in (("twilio", sms, warm_sms, "sms"),
                                              ("telegram", tg, warm_tg, "telegram")):
            if name not in channels:
                continue
            await fire(base, warm, args.concurrency)
            await in_crm(database, channel, len(warm), time.perf_counter(), within=60)
            before = await count_messages(database, channel, "in")
            result = await fire(base, requests, args.concurrency)
            crm = await in_crm(database, channel, before + len(requests), result.pop("_t0"))
            result["persisted"] = crm["rows"] - before
            result["in_crm_per_s"] = round(result["persisted"] / crm["seconds"], 1)
            result["ratio_to_bare"] = round(result["per_s"] / figures["bare"]["per_s"], 3)
            figures[name] = result
            log(f"{name} webhooks answered: {result['per_s']:,} messages/s "
                f"= {result['ratio_to_bare']:.1%} of the bare handler (statuses {result['statuses']}, "
                f"errors {result['errors']}; latency {result['latency_ms']} ms); in the CRM: "
                f"{result['persisted']} of {result['requests']} messages, {result['in_crm_per_s']:,}/s "
                "from the first request to the last row")
        stop(hub)

        # 3. the outbox
        if args.outbox:
            queued = {"sms": await queue_outbox(database, "sms", args.outbox) if "twilio" in channels else 0,
                      "telegram": (await queue_outbox(database, "telegram", args.outbox)
                                   if "telegram" in channels else 0)}
            before = {"sms": len(twilio.requests), "telegram": len(telegram.requests)}

            def sends(channel: str) -> list[float]:
                """When each accepted send reached the fake (monotonic seconds)."""
                if channel == "sms":
                    return [r.at for r in twilio.requests[before["sms"]:]
                            if r.path.endswith("/Messages.json") and r.status == 201]
                return [c.at for c in telegram.requests[before["telegram"]:] if c.method == "sendMessage"]

            hub = start_hub(port, env, workdir, workdir / "hub.log", None)
            procs.append(hub)
            await wait_ready(f"{base}/healthz", hub, workdir / "hub.log")
            for channel in ("sms", "telegram"):
                if queued[channel]:
                    result = await wait_sent(lambda c=channel: sends(c), queued[channel], within=300)
                    figures[f"outbox_{channel}"] = result
                    log(f"outbox → fake {channel}: {result['sent']}/{result['messages']} sent, "
                        f"{result['per_s']} messages/s (first to last send received by the fake)")
            stop(hub)
        figures["target"] = {"per_s": TARGET_RATE, "ratio": TARGET_RATIO}
        figures["met"] = {name: bool(figures[name]["per_s"] >= TARGET_RATE
                                     and figures[name]["ratio_to_bare"] >= TARGET_RATIO)
                          for name in ("twilio", "telegram") if name in figures}
        if profile is not None:
            figures["profile"] = str(profile)
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        await twilio.stop()
        await telegram.stop()
        await database.dispose()
        if not args.keep:
            if args.db == "postgres":
                await drop_postgres(url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept: {url} (hub log {workdir / 'hub.log'})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db-url")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--senders", type=int, default=300)
    parser.add_argument("--outbox", type=int, default=1000)
    parser.add_argument("--channels", default="twilio,telegram")
    parser.add_argument("--profile", help="a folder: run the hub under cProfile, write hub-<db>.prof there")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare)
        return
    figures = asyncio.run(run(args))
    print(json.dumps(figures, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
