"""``crmhub demo`` as its own process on a temporary SQLite database: demo data (the inbox not empty),
the simulated PBX, Telegram and Twilio connected (/healthz), the calls reaching the call journal and the
simulated clients' messages and SMS the inbox; the demo's conversations on each test database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.crm import demo
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

            [call, *_] = await poll(calls, 60)
            assert call["status"] in ("answered", "missed", "abandoned")
            assert call["external_number"].startswith("+7")
            assert call["agent"]["extension"] in ("101", "102")
            await poll(written, 30)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = output()
    assert "log in as admin / admin" in text and "demo PBX" in text and "demo Telegram" in text
    assert "demo SMS" in text and "demo SMS: the hub answered" not in text
    assert "Traceback" not in text, text
    assert proc.returncode in (0, -15)


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
