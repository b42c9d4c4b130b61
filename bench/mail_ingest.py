"""E-mail intake: a backlog of letters in a real Dovecot ingested by the hub, and IDLE latency.

    python bench/mail_ingest.py [--db sqlite|postgres] [--db-url URL] [--letters 10000] [--idle 100] [--keep]

A private Dovecot (``tests/fakes/dovecot.py``) gets ``--letters`` letters written straight into its
maildir before the clock starts: the fixture letters of ``tests/fixtures/mail`` (every charset,
HTML, inline images and PDFs, auto-replies, bounces; the 2 MB attachment once in 500 letters) with
fresh Message-IDs and senders — one in three a known client (2,000 clients with e-mails), the rest
unknown people who become leads. Then the
hub's e-mail channel (``hub.mail.channel.MailChannel``: IMAP → parser → ``MessageIntake`` →
database and bus) starts in this process and the clock runs until every letter is stored:
letters/s. Then, with the watcher in IDLE, ``--idle`` letters are APPENDed one at a time and the time
from the APPEND's answer to the ``message.received`` event on the bus is measured: p50/p99.

Targets (issue 6): ≥ 200 letters/s; IDLE p99 ≤ 1 s. Human lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import drop_postgres, log, percentile, prepare_database  # noqa: E402

from hub.bus import Event, InProcessBus  # noqa: E402
from hub.config import MailboxConfig  # noqa: E402
from hub.crm.messages import MessageIntake  # noqa: E402
from hub.crm.models import Client, ContactPoint, Message  # noqa: E402
from hub.db import Database, create_engine, migrate  # noqa: E402
from hub.mail.channel import MailChannel  # noqa: E402
from tests.fakes.dovecot import Dovecot  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "mail"
USER = "zayavki@crm.example.ru"
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/crmhub_bench_mail"
TARGET_RATE = 200
TARGET_IDLE_P99 = 1.0
KNOWN_CLIENTS = 2000
BIG_EVERY = 500
_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r\n", re.I | re.M)
_FROM = re.compile(rb"^From:[^\r\n]*\r\n", re.I | re.M)


def templates() -> list[bytes]:
    """The fixture letters but the 2 MB one (a backlog of 10,000 letters a sixteenth of which carry
    2 MB would be 1.3 GB of mail; that letter comes once in every ``BIG_EVERY``)."""
    return [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml")) if not path.name.startswith("08_")]


def big_letter() -> bytes:
    return next(FIXTURES.glob("08_*.eml")).read_bytes()


def variant(template: bytes, n: int) -> bytes:
    """The template with its own Message-ID and a sender of its own (every third a known client)."""
    sender = f"client{n % KNOWN_CLIENTS}@known.example.ru" if n % 3 == 0 else f"person{n}@mail.example.ru"
    head, sep, body = template.partition(b"\r\n\r\n")
    head = _MESSAGE_ID.sub(b"", head + b"\r\n")
    if b"MAILER-DAEMON" not in head and b"noreply@" not in head and b"news@" not in head:
        head = _FROM.sub(f"From: Person {n} <{sender}>\r\n".encode(), head)
    head = f"Message-ID: <bench-{n}@mail.example.ru>\r\n".encode() + head.rstrip(b"\r\n")
    return head + sep + body


def fill_maildir(server: Dovecot, count: int) -> None:
    """Write the letters straight into the user's maildir (``new/``), as a delivery agent does."""
    server.append(USER, variant(templates()[0], -1))  # lets Dovecot create the maildir
    new = server.root / "mail" / USER / "new"
    owner = new.stat()
    bodies, big = templates(), big_letter()
    stamp = int(time.time())
    for n in range(count):
        path = new / f"{stamp}.M{n}P{os.getpid()}.bench"
        path.write_bytes(variant(big if n % BIG_EVERY == BIG_EVERY - 1 else bodies[n % len(bodies)], n))
        if os.geteuid() == 0:
            os.chown(path, owner.st_uid, owner.st_gid)


async def seed_clients(db: Database) -> None:
    async with db.transaction() as s:
        for n in range(KNOWN_CLIENTS):
            client = Client(name=f"Клиент {n}")
            s.add(client)
            await s.flush()
            s.add(ContactPoint(kind="email", value=f"client{n}@known.example.ru",
                               raw=f"client{n}@known.example.ru", client_id=client.id))


async def count_messages(db: Database) -> int:
    from sqlalchemy import func, select

    async with db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)) or 0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="crmhub-bench-mail-"))
    url = await prepare_database(args.db, args.db_url, workdir / "bench.db", PG_DEFAULT)
    server = Dovecot()
    server.add_user(USER, "secret")
    server.start()
    bus = InProcessBus()
    db = Database(create_engine(url), bus)
    try:
        await migrate(db.engine)
        await seed_clients(db)
        log(f"writing {args.letters} letters into the maildir…")
        await asyncio.to_thread(fill_maildir, server, args.letters)
        expected = args.letters + 1
        box = MailboxConfig(name="zayavki", imap_host="127.0.0.1", imap_port=server.port, imap_tls="none",
                            username=USER, password="secret", from_address=USER, smtp_host="127.0.0.1")
        channel = MailChannel([box], intake=MessageIntake(db, attachments_dir=workdir / "files"))
        watcher = channel.watchers[0]
        started = time.perf_counter()
        await channel.start()
        while watcher.letters < expected:
            if watcher.state == "auth_failed":
                raise RuntimeError(watcher.health())
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        stored = await count_messages(db)
        rate = expected / elapsed
        log(f"{args.db}: {expected} letters in {elapsed:.1f} s = {rate:.0f} letters/s "
            f"({stored} messages stored)")

        latencies = await idle_latency(server, bus, watcher, args.idle)
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        log(f"{args.db}: APPEND → message.received with IDLE over {len(latencies)} letters: "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        await channel.stop()
        return {"db": args.db, "letters": expected, "seconds": round(elapsed, 2),
                "letters_per_s": round(rate), "stored": stored, "idle_p50_ms": round(p50 * 1000),
                "idle_p99_ms": round(p99 * 1000),
                "targets": {"letters_per_s": TARGET_RATE, "idle_p99_ms": TARGET_IDLE_P99 * 1000},
                "met": rate >= TARGET_RATE and p99 <= TARGET_IDLE_P99}
    finally:
        await db.dispose()
        server.remove()
        if args.db == "postgres" and not args.keep:
            await drop_postgres(url)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


async def idle_latency(server: Dovecot, bus: InProcessBus, watcher: Any, letters: int) -> list[float]:
    arrived: dict[str, float] = {}
    news = asyncio.Event()

    def on_event(event: Event) -> None:
        if event.name == "message.received":
            arrived[event.data["message"]["provider_id"]] = time.perf_counter()
            news.set()

    unsubscribe = bus.subscribe(on_event)
    latencies: list[float] = []
    try:
        for n in range(letters):
            while watcher.state != "idle":  # noqa: ASYNC110 - the watcher's state is a plain attribute
                await asyncio.sleep(0.01)
            key = f"<idle-{n}@mail.example.ru>"
            raw = (f"From: Idle {n} <idle{n}@mail.example.ru>\r\nTo: {USER}\r\nSubject: idle {n}\r\n"
                   f"Message-ID: {key}\r\n\r\nПроверка {n}\r\n").encode()
            await asyncio.to_thread(server.append, USER, raw)
            appended = time.perf_counter()
            while key not in arrived:
                news.clear()
                await news.wait()
            latencies.append(arrived[key] - appended)
    finally:
        unsubscribe()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--db-url")
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--keep", action="store_true")
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
