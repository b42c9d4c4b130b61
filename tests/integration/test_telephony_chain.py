"""The whole telephony chain through ``create_app``: the fake Asterisk → AMI connection → tracker →
CRM bridge → call intake → database and event stream; click-to-call over the API."""

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
from tests.integration.test_web_pages import logged_in, page

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


async def test_click_to_call_originates_from_the_users_extension_and_is_tracked_outbound(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi) -> None:
    agent = await make_api("agent", "agent", "Иван Агентов", ["101"])
    await connected(app)
    answer = await agent.post("/api/v1/calls/originate", {"number": "8 (916) 123-45-67"}, expect=202)
    assert answer["extension"] == "101" and answer["number"] == CALLER
    [sent] = [a for a in ami_server.actions if a.get("Action") == "Originate"]
    assert sent["ActionID"] == answer["action_id"] and sent["Async"] == "true"
    assert sent["Channel"] == "PJSIP/101" and sent["Exten"] == CALLER
    # the fake Asterisk plays the click_to_call trace: it is logged as the agent's outbound call
    page = await until(lambda: _calls(agent))
    assert page[0]["direction"] == "outbound"


async def server_error(api: Api, status: int) -> dict[str, Any]:
    """POST an originate that answers 5xx (``Api.call`` takes every 5xx for a bug)."""
    async with api.client.post("/api/v1/calls/originate", json={"number": CALLER},
                               headers=api.auth()) as response:
        assert response.status == status, await response.text()
        return dict(await response.json())


async def _calls(api: Api) -> list[dict[str, Any]]:
    return list((await api.get("/api/v1/calls"))["items"])


async def test_click_to_call_errors_are_reported(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi) -> None:
    from hub.app import AMI

    agent = await make_api("agent", "agent", "Иван Агентов", ["101"])
    nobody = await make_api("nobody", "agent", "Без Телефона")
    await connected(app)
    bad = await agent.post("/api/v1/calls/originate", {"number": "12"}, expect=422)
    assert "number" in bad["error"]["fields"]
    await agent.post("/api/v1/calls/originate", {}, expect=422)
    none = await nobody.post("/api/v1/calls/originate", {"number": CALLER}, expect=422)
    assert none["error"]["message"] == "no extension"

    ami_server.originate_error = "Extension does not exist."
    failed = await server_error(agent, 502)
    assert failed["error"]["code"] == "originate_failed"
    assert "Extension does not exist." in failed["error"]["message"]

    ami_server.fail_auth = True
    await ami_server.drop()
    await until(lambda: app[AMI].state != CONNECTED)
    down = await server_error(agent, 503)
    assert down["error"]["code"] == "telephony_unavailable"


async def test_an_internal_call_pops_with_the_colleagues_name(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi) -> None:
    caller = await make_api("ivan", "agent", "Иван Агентов", ["101"])
    callee = await make_api("petr", "agent", "Пётр Коллегов", ["102"])
    await connected(app, "102")
    stream = await open_stream(callee)
    await ami_server.push("internal_call")  # 101 dials 102
    pop = (await stream.until_event("call.ringing"))["data"]
    assert pop["direction"] == "internal" and pop["extension"] == "102" and not pop["unknown"]
    assert [(m["type"], m["id"], m["name"]) for m in pop["matches"]] == [("user", caller.id, "Иван Агентов")]
    stream.response.close()


async def test_with_the_trunks_named_an_answer_on_a_phone_that_is_no_users_is_an_answer(
        app: web.Application, ami_server: FakeAmiServer, make_api: MakeApi, admin: Api) -> None:
    from hub.web.keys import DB

    await make_api("petr", "agent", "Пётр Коллегов", ["102"])  # 101, which answers, is nobody's
    await connected(app, "102")
    replay = await ami_server.push("inbound_answered")

    async def stored() -> Any:
        async with app[DB].reading() as s:
            call = (await s.scalars(select(Call).where(Call.linkedid == replay.linkedids[0]))).first()
            return call if call is not None and call.ended_at is not None else None

    call = await until(stored)
    assert call.status == "answered" and call.agent_extension == "101" and call.agent_id is None
    assert call.callback_task_id is None  # no false callback
    listed = (await admin.get("/api/v1/calls"))["items"]
    assert listed[0]["agent"] == {"id": None, "name": None, "extension": "101"}
    await logged_in(admin.client, admin)
    assert "добавочный 101 (не пользователь)" in await page(admin.client, "/calls")
