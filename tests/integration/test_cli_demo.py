"""``crmhub demo`` as its own process on a temporary SQLite database: demo data (the inbox not empty),
the simulated PBX, Telegram and Twilio connected (/healthz), the calls reaching the call journal and the
simulated clients' messages and SMS the inbox, every answered call's recording playing, click-to-call
logged on the person clicked; the demo's conversations and its six months of history on each test
database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from hub.crm import demo, reports
from hub.crm.models import Call, Client, Deal, Lead, Stage, TimelineEntry, User
from hub.web.keys import CONFIG, DB
from tests.integration.conftest import Api


async def test_demo_runs_the_hub_with_a_simulated_pbx_placing_calls(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMHUB_")}
    env.update(CRMHUB_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
               CRMHUB_DEMO_CALL_INTERVAL="1",
               CRMHUB_DEMO_MESSAGE_INTERVAL="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - a local file, opened once
        proc = subprocess.Popen(  # noqa: ASYNC220 - the hub under test runs as its own process
            [sys.executable, "-m", "hub.cli", "demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            async def poll(what: Any, within: float) -> Any:
                deadline = time.monotonic() + within
                while True:
                    assert proc.poll() is None, output()
                    try:
                        value = await what()
                    except aiohttp.ClientError:
                        value = None
                    if value:
                        return value
                    assert time.monotonic() < deadline, output()
                    await asyncio.sleep(0.2)

            async def connected() -> bool:
                async with http.get(f"{base}/healthz") as resp:
                    return resp.status == 200 and (await resp.json())["channels"] == {
                        "asterisk": "connected", "telegram": "polling", "sms": "ready",
                        "whatsapp": "ready"}

            await poll(connected, 60)
            login = {"login": "admin", "password": "admin"}
            async with http.post(f"{base}/api/v1/auth/token", json=login) as r:
                assert r.status == 200, await r.text()
                auth = {"Authorization": f"Bearer {(await r.json())['token']}"}

            async def calls() -> list[dict[str, Any]]:
                async with http.get(f"{base}/api/v1/calls", headers=auth) as r:
                    return list((await r.json())["items"]) if r.status == 200 else []

            async with http.get(f"{base}/api/v1/conversations", headers=auth) as r:
                assert r.status == 200 and len((await r.json())["items"]) >= 10
                started = max(c["last_message_at"] for c in (await r.json())["items"])

            async def written() -> bool:  # the simulated Telegram's and Twilio's people write
                async with http.get(f"{base}/api/v1/conversations", headers=auth) as r:
                    items = (await r.json())["items"]
                    fresh = {c["channel"] for c in items if c["last_message_at"] > started}
                    return {"telegram", "sms", "whatsapp"} <= fresh

            async def live_calls() -> list[dict[str, Any]]:  # the simulated PBX's, not the demo data's
                return [c for c in await calls() if not c["call_key"].startswith("demo-")]

            [call, *_] = await poll(live_calls, 60)
            assert call["status"] in ("answered", "missed", "abandoned")
            assert call["external_number"].startswith("+7")
            assert call["agent"]["extension"] in ("101", "102")
            await poll(written, 30)

            async def answered_live() -> list[dict[str, Any]]:
                return [c for c in await live_calls() if c["status"] == "answered"]

            # every answered call plays: the demo data's and those the simulated PBX places
            seeded = [c for c in await calls()
                      if c["call_key"].startswith("demo-") and c["status"] == "answered"]
            for answered in [*seeded[:3], *(await poll(answered_live, 90))[:1]]:
                assert answered["recording_url"], answered
                async with http.get(base + answered["recording_url"], headers=auth) as r:
                    assert r.status == 200 and r.content_type.startswith("audio/"), await r.text()
                    body = await r.read()
                    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and len(body) > 100_000
                async with http.get(base + answered["recording_url"],
                                    headers={**auth, "Range": "bytes=50000-50999"}) as r:
                    assert r.status == 206 and len(await r.read()) == 1000

            # click-to-call dials the number clicked and logs the call on that person
            await click_to_call_is_logged_on_the_person(http, base, poll)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = output()
    assert "log in as admin / admin" in text and "demo PBX" in text and "demo Telegram" in text
    assert "demo SMS" in text and "demo SMS: the hub answered" not in text
    assert "Traceback" not in text, text
    assert proc.returncode in (0, -15)


async def click_to_call_is_logged_on_the_person(http: aiohttp.ClientSession, base: str, poll: Any) -> None:
    login = {"login": "agent1", "password": "agent1"}
    async with http.post(f"{base}/api/v1/auth/token", json=login) as r:
        auth = {"Authorization": f"Bearer {(await r.json())['token']}"}
    async with http.get(f"{base}/api/v1/clients", headers=auth, params={"limit": "50"}) as r:
        clients = [c for c in (await r.json())["items"] if c["phones"]]
    client = clients[len(clients) // 2]
    number = client["phones"][-1]
    async with http.post(f"{base}/api/v1/calls/originate", headers=auth, json={"number": number}) as r:
        assert r.status == 202, await r.text()

    async def logged() -> list[dict[str, Any]]:
        async with http.get(f"{base}/api/v1/calls", headers=auth) as r:
            return [c for c in (await r.json())["items"]
                    if c["direction"] == "outbound" and c["external_number"] == number and c["ended_at"]
                    and not c["call_key"].startswith("demo-")]

    [call] = await poll(logged, 60)
    assert call["client"]["id"] == client["id"] and call["agent"]["extension"] == "101"
    async with http.get(f"{base}/api/v1/clients/{client['id']}/timeline", headers=auth,
                        params={"kind": "call"}) as r:
        entries = (await r.json())["items"]
    assert any(e["payload"]["call_id"] == call["id"] for e in entries), entries


async def test_demo_data_fills_the_inbox(app: web.Application, manager: Api) -> None:
    summary = await demo.fill(app[DB], attachments_dir=app[CONFIG].server.attachments_dir)
    assert summary.conversations >= 10
    items = (await manager.get("/api/v1/conversations", params={"limit": "50"}))["items"]
    assert len(items) == summary.conversations
    assert {c["channel"] for c in items} == {"telegram", "sms", "email"}
    people = [c["person"]["type"] if c["person"] else None for c in items]
    assert people.count("lead") == 2 and people.count(None) == 1 and people.count("client") >= 7
    assert any(c["unread"] for c in items) and any(not c["unread"] for c in items)
    letters = [c for c in items if c["channel"] == "email" and c["person"]]
    assert all(c["subject"] for c in letters)
    statuses, quoted, files = set(), 0, 0
    for c in items:
        for m in (await manager.get(f"/api/v1/conversations/{c['id']}"))["messages"]:
            statuses.add(m["status"])
            payload = (m["entry"] or {}).get("payload", {})
            quoted += bool(payload.get("full_text"))
            files += len((m["entry"] or {}).get("attachments", []))
    assert {"received", "delivered", "sent", "failed"} <= statuses
    assert quoted == 1 and files == 1
    assert "conversations in the inbox" in demo.describe(summary)


async def test_demo_data_tells_six_months_of_history(app: web.Application) -> None:
    summary = await demo.fill(app[DB])
    now = datetime.now(UTC)
    async with app[DB].reading() as s:
        clients = dict((await s.execute(select(Client.id, Client.created_at))).all())
        leads = dict((await s.execute(select(Lead.id, Lead.created_at))).all())
        deals = (await s.execute(select(Deal.id, Deal.client_id, Deal.lead_id, Deal.created_at,
                                        Deal.closed_at, Deal.stage_changed_at, Stage.kind)
                                 .join(Stage, Stage.id == Deal.stage_id))).all()
        moves = (await s.execute(select(TimelineEntry.deal_id, TimelineEntry.occurred_at)
                                 .where(TimelineEntry.kind == "stage_change")
                                 .order_by(TimelineEntry.id))).all()
        calls = (await s.execute(select(Call, TimelineEntry.occurred_at, TimelineEntry.deal_id)
                                 .join(TimelineEntry, TimelineEntry.id == Call.timeline_entry_id))).all()
        admin = await s.scalar(select(User).where(User.login == "admin"))
        month = await reports.widgets(s, admin, since=now - timedelta(days=30), until=now)

    def months(moments: Any) -> set[tuple[int, int]]:
        return {(m.year, m.month) for m in moments}

    # people came over the last six months, more of them lately
    assert len(months(clients.values())) >= 5 and min(clients.values()) < now - timedelta(days=120)
    assert max(clients.values()) <= now and len(months(leads.values())) >= 3
    recent = sum(at > now - timedelta(days=60) for at in clients.values())
    assert recent > sum(at < now - timedelta(days=120) for at in clients.values())
    # a deal comes after its client or lead; its moves in order between its creation and now; a won or
    # lost deal closed at its last move
    last_move: dict[int, datetime] = {}
    for deal_id, at in moves:
        assert at >= last_move.get(deal_id, at)
        last_move[deal_id] = at
    for deal_id, client_id, lead_id, created, closed, changed, kind in deals:
        owner = clients[client_id] if client_id else leads[lead_id]
        assert owner <= created <= last_move.get(deal_id, created) <= now
        assert changed == last_move.get(deal_id, created)
        assert (closed is None) == (kind == "active")
        if closed is not None:
            assert closed == last_move[deal_id]
    assert len(months(d[3] for d in deals)) >= 5
    assert len(months(d[4] for d in deals if d[4] is not None)) >= 3
    # calls at their times, each in its deal's timeline; an answered one has its recording
    assert len(calls) >= 40 and len(months(c.started_at for c, _, _ in calls)) >= 4
    for call, occurred, entry_deal in calls:
        assert occurred == call.started_at < call.ended_at <= now and entry_deal == call.deal_id
        assert (call.recording is not None) == (call.status == "answered")
    assert sorted(summary.recordings) == sorted(c.recording for c, _, _ in calls if c.recording)
    async with app[DB].reading() as s:
        assert sorted(await demo.call_recordings(s)) == sorted(summary.recordings)
    # the widgets compare the last month with one that was there too
    assert month["new_clients"]["previous"] > 0 and month["new_clients"]["current"] > 0
    assert month["sales"]["count"]["current"] + month["sales"]["count"]["previous"] > 0
