"""The whole telephony chain through ``create_app``: the fake Asterisk → AMI connection → tracker →
CRM bridge → call intake → database and event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from hub.config import Config
from hub.crm.models import Call, TimelineEntry
from hub.telephony.ami import CONNECTED
from tests.fakes.ami_server import FakeAmiServer
from tests.integration.conftest import Api, MakeApi, until
from tests.integration.test_sse import open_stream

CALLER = "+79161234567"  # the caller number in the inbound_answered trace


@pytest.fixture
async def ami_server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        yield fake


@pytest.fixture
def config(config: Config, ami_server: FakeAmiServer, monkeypatch: pytest.MonkeyPatch) -> Config:
    import hub.app

    monkeypatch.setattr(hub.app, "EXTENSIONS_REFRESH_SECONDS", 0.05)
    config.asterisk.host, config.asterisk.port = ami_server.host, ami_server.port
    config.asterisk.username, config.asterisk.secret = "hub", "hubsecret"
    config.asterisk.trunks = ["trunk"]
    return config


async def connected(app: web.Application, extension: str = "101") -> None:
    from hub.app import AMI

    tracker = app[AMI].tracker
    await until(lambda: app[AMI].state == CONNECTED and extension in (tracker.extensions or ()))


async def test_an_inbound_answered_call_pops_logs_and_lands_on_the_timeline(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi, admin: Api) -> None:
    from hub.web.keys import DB

    agent = await make_api("agent", "agent", "Иван Агентов", ["101"])
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка", "phones": [CALLER]}, expect=201)
    await connected(app)
    stream = await open_stream(agent)
    replay = await ami_server.push("inbound_answered")
    ringing = await stream.until_event("call.ringing")
    pop = ringing["data"]
    assert pop["call_key"] == replay.linkedids[0] and pop["extension"] == "101"
    assert [(m["type"], m["id"]) for m in pop["matches"]][:1] == [("client", client["id"])]

    async def stored() -> Any:
        async with app[DB].reading() as s:
            call = (await s.scalars(select(Call).where(Call.linkedid == replay.linkedids[0]))).first()
            return call if call is not None and call.ended_at is not None else None

    call = await until(stored)
    assert call.status == "answered" and call.client_id == client["id"]
    assert call.agent_id == agent.id and call.direction == "inbound"
    async with app[DB].reading() as s:
        entries = (await s.scalars(select(TimelineEntry).where(TimelineEntry.kind == "call"))).all()
    assert len(entries) == 1
    assert entries[0].client_id == client["id"]
    await stream.until_event("call.ended")
    stream.response.close()

