"""Recordings fetched from ``[asterisk] recordings_url`` when there is no ``recordings_dir``: the hub
streams the file from a tiny HTTP server on 127.0.0.1, with the Range passed through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.config import Config
from hub.crm import call_intake as intake
from hub.crm.ports import CallEndedFact, CallSettings
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_api_calls import RANGE_CASES, WAV, check_range, end


@pytest.fixture
async def recording_server(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "in 101.wav").write_bytes(WAV)
    seen: list[dict[str, str]] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path, "range": request.headers.get("Range", "")})
        path = folder / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

    app = web.Application()
    app.router.add_get("/rec/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield {"url": str(server.make_url("/rec/")), "seen": seen, "folder": folder}
    await server.close()


@pytest.fixture
def config(config: Config, recording_server: dict[str, Any]) -> Config:
    config.asterisk.recordings_dir = ""
    config.asterisk.recordings_url = recording_server["url"]  # a trailing slash is fine
    return config


async def test_recordings_are_streamed_from_the_url_with_range(
        app: web.Application, client: TestClient, manager: Api, agent: Api, agent2: Api,
        recording_server: dict[str, Any]) -> None:
    await manager.post("/api/v1/clients", {"name": "ООО Агентов", "phones": ["+79161110001"],
                                           "manager_id": agent.id}, expect=201)
    call = await end(app, "u1", "+79161110001", recording="/var/spool/asterisk/monitor/in 101.wav")
    gone = await end(app, "u2", "+79161110001", recording="gone.wav", minutes=5)
    url = f"/api/v1/calls/{call['id']}/recording"
    async with client.get(url, headers=agent.auth()) as response:
        assert response.status == 200, await response.text()
        assert await response.read() == WAV
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.content_type == "audio/wav"
        assert response.headers["Cache-Control"] == "private, no-store"
    async with client.get(url, headers={**agent.auth(), "Range": "bytes=100-199"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-199/{len(WAV)}"
        assert await response.read() == WAV[100:200]
    assert recording_server["seen"][-1] == {"path": "/rec/in 101.wav", "range": "bytes=100-199"}
    async with client.get(url, headers={**agent.auth(), "Range": f"bytes={len(WAV) + 10}-"}) as response:
        assert response.status == 416
    # the access rule is the call's, checked before anything is fetched
    before = len(recording_server["seen"])
    async with client.get(url, headers=agent2.auth()) as response:
        assert response.status == 404
    assert len(recording_server["seen"]) == before
    body = await manager.get(f"/api/v1/calls/{gone['id']}/recording", expect=404)
    assert body["error"]["code"] == "recording_missing"


async def test_proxied_recordings_pass_on_a_valid_single_range_only(
        app: web.Application, client: TestClient, manager: Api, agent: Api,
        recording_server: dict[str, Any]) -> None:
    await manager.post("/api/v1/clients", {"name": "ООО Агентов", "phones": ["+79161110001"],
                                           "manager_id": agent.id}, expect=201)
    call = await end(app, "u1", "+79161110001", recording="/var/spool/asterisk/monitor/in 101.wav")
    url = f"/api/v1/calls/{call['id']}/recording"
    sent = {  # what the recording server is asked for: a valid single range, else the whole file
        "bytes=-0": "", "bytes=abc": "", "items=0-1": "", "bytes=5-2": "", "bytes=0-1,5-6": "", "bytes=-": ""}
    for header, *answer in RANGE_CASES:
        await check_range(client, url, agent.auth(), header, *answer)
        assert recording_server["seen"][-1]["range"] == sent.get(header, header), header
    async with client.get(url, headers={**agent.auth(), "Range": " BYTES=007-9, "}) as response:
        assert response.status == 206 and await response.read() == WAV[7:10]
    assert recording_server["seen"][-1]["range"] == "bytes=7-9"
    # If-Range goes along with a Range passed on, and never alone
    stale = {**agent.auth(), "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"}
    async with client.get(url, headers={**stale, "Range": "bytes=0-99"}) as response:
        assert response.status == 200 and await response.read() == WAV
    async with client.get(url, headers={**stale, "Range": "bytes=-0"}) as response:
        assert response.status == 200 and await response.read() == WAV  # the Range ignored, as one may


async def test_each_recording_of_a_call_is_proxied(
        app: web.Application, client: TestClient, manager: Api, agent: Api, agent2: Api,
        recording_server: dict[str, Any]) -> None:
    """/recordings/{n} resolves the n-th recording as /recording does the first, here from the URL."""
    (recording_server["folder"] / "in 102.wav").write_bytes(WAV[::-1])
    await manager.post("/api/v1/clients", {"name": "ООО Агентов", "phones": ["+79161110001"],
                                           "manager_id": agent.id}, expect=201)
    call = await intake.call_ended(app[DB], CallEndedFact(
        call_key="t1", direction="inbound", status="answered", number="+79161110001", did=None,
        agent_extension="102", recording="in 101.wav", recordings=("in 101.wav", "in 102.wav"),
        recording_extensions=("101", "102")), CallSettings(unknown_caller="ask"))
    assert call is not None
    base = f"/api/v1/calls/{call['id']}"
    async with client.get(f"{base}/recordings/2", headers={**agent.auth(), "Range": "bytes=0-9"}) as response:
        assert response.status == 206 and await response.read() == WAV[::-1][:10]
    assert recording_server["seen"][-1] == {"path": "/rec/in 102.wav", "range": "bytes=0-9"}
    async with client.get(f"{base}/recordings/1", headers=agent.auth()) as response:
        assert response.status == 200 and await response.read() == WAV
    assert recording_server["seen"][-1]["path"] == "/rec/in 101.wav"
    before = len(recording_server["seen"])
    async with client.get(f"{base}/recordings/2", headers=agent2.auth()) as response:
        assert response.status == 200  # agent2 (102) took the call last: theirs too
    body = await manager.get(f"{base}/recordings/3", expect=404)
    assert body["error"]["code"] == "recording_missing"
    assert len(recording_server["seen"]) == before + 1  # nothing fetched for a recording that is not
