"""A call with several recordings (a blind transfer: MixMonitor records each agent's leg): the captured
trace through the tracker, the bridge and the intake stores both in order, the API lists and serves
each (``/recordings/{n}``, HTTP Range, the call's access rule), and the timeline and /calls play each."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.config import Config
from hub.crm import call_intake as intake
from hub.crm.models import Call
from hub.crm.ports import CallEndedFact, CallSettings
from hub.telephony.ami_parse import iter_jsonl
from hub.telephony.crm_bridge import to_port
from hub.telephony.tracker import Tracker
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_api_calls import WAV, check_range
from tests.integration.test_web_deal_card import make_deal, switch
from tests.integration.test_web_pages import logged_in, page
from tests.paths import AMI_FIXTURES

SETTINGS = CallSettings(unknown_caller="ask")
# the blind_transfer trace's two recordings (tests/fixtures/ami/README.md, scenario 7): 101's, then 102's
FIRST = "inbound-20261123-164133-79161234567-101-1795452092.14.wav"
SECOND = "inbound-20261123-164138-79161234567-102-1795452096.15.wav"
SECOND_WAV = WAV[:44] + bytes(reversed(WAV[44:]))  # other bytes, the same length


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    (path / FIRST).write_bytes(WAV)
    (path / SECOND).write_bytes(SECOND_WAV)
    return path


@pytest.fixture
def config(config: Config, recordings: Path) -> Config:
    config.asterisk.recordings_dir = str(recordings)
    return config


def transfer_fact() -> CallEndedFact:
    """The blind_transfer trace's end, as the bridge hands it to the core."""
    tracker = Tracker(trunks=["trunk"], extensions=("101", "102", "103", "104"))
    facts = [to_port(f) for f in tracker.feed_all(iter_jsonl(AMI_FIXTURES / "blind_transfer.jsonl"))]
    ended = [f for f in facts if isinstance(f, CallEndedFact)]
    assert len(ended) == 1
    return ended[0]


@pytest.fixture
async def transferred(app: web.Application, agent: Api, agent2: Api) -> dict[str, Any]:
    """The trace's call, ended into the hub: the caller is a client with an open deal (101's)."""
    deal = await make_deal(agent)
    call = await intake.call_ended(app[DB], transfer_fact(), SETTINGS)
    assert call is not None
    return {"deal": deal, "call": call}


def test_the_bridge_carries_every_recording_in_order_with_its_agent() -> None:
    fact = transfer_fact()
    assert fact.recordings == (FIRST, SECOND)
    assert fact.recording == FIRST  # the first, as before
    assert fact.recording_extensions == ("101", "102")
    assert fact.agent_extension == "102" and fact.status == "answered"


async def test_the_intake_stores_both(app: web.Application, transferred: dict[str, Any]) -> None:
    async with app[DB].reading() as s:
        call = await s.get(Call, transferred["call"]["id"])
        assert call is not None
        assert call.recording == FIRST
        assert call.recordings == [{"file": FIRST, "agent_extension": "101"},
                                   {"file": SECOND, "agent_extension": "102"}]
    # a fact from an older adapter (recording only) still stores its one recording
    old = await intake.call_ended(app[DB], CallEndedFact(
        call_key="old-1", direction="inbound", status="answered", number="+79161234567", did=None,
        agent_extension="101", recording=FIRST), SETTINGS)
    assert old is not None and old["recording_url"] == f"/api/v1/calls/{old['id']}/recording"
    assert old["recordings"] == [{"url": f"/api/v1/calls/{old['id']}/recordings/1", "agent_extension": None}]


async def test_the_api_lists_and_serves_each(client: TestClient, manager: Api, agent: Api, make_api: Any,
                                            transferred: dict[str, Any]) -> None:
    call_id = transferred["call"]["id"]
    call = await manager.get(f"/api/v1/calls/{call_id}")
    assert call["recording_url"] == f"/api/v1/calls/{call_id}/recording"
    assert call["recordings"] == [
        {"url": f"/api/v1/calls/{call_id}/recordings/1", "agent_extension": "101"},
        {"url": f"/api/v1/calls/{call_id}/recordings/2", "agent_extension": "102"}]
    listed = await manager.get("/api/v1/calls")
    assert listed["items"][0]["recordings"] == call["recordings"]
    for url, body in ((call["recording_url"], WAV), (call["recordings"][0]["url"], WAV),
                      (call["recordings"][1]["url"], SECOND_WAV)):
        async with client.get(url, headers=agent.auth()) as response:
            assert response.status == 200, url
            assert await response.read() == body, url
            assert response.headers["Accept-Ranges"] == "bytes"
    second = call["recordings"][1]["url"]
    n = len(SECOND_WAV)
    await check_range(client, second, agent.auth(), "bytes=100-199", 206, SECOND_WAV[100:200],
                      f"bytes 100-199/{n}")
    await check_range(client, second, agent.auth(), f"bytes={n}-", 416, b"", f"bytes */{n}")
    # no such recording: 404 recording_missing; n is a number from 1
    body = await manager.get(f"/api/v1/calls/{call_id}/recordings/3", expect=404)
    assert body["error"]["code"] == "recording_missing"
    await manager.get("/api/v1/calls/999999/recordings/1", expect=404)
    await manager.get(f"/api/v1/calls/{call_id}/recordings/0", expect=404)
    await manager.get(f"/api/v1/calls/{call_id}/recordings/x", expect=404)
    # the call's access rule: an agent who may not see the call gets 404, nobody logged in 401
    stranger = await make_api("agent3", "agent", "Сергей Третьев", ["103"])
    async with client.get(second, headers=stranger.auth()) as response:
        assert response.status == 404
    async with client.get(second) as response:
        assert response.status == 401


async def test_the_timeline_and_the_journal_play_each(client: TestClient, manager: Api, agent: Api,
                                                      transferred: dict[str, Any]) -> None:
    call_id = transferred["call"]["id"]
    await logged_in(client, agent)
    html = await page(client, f"/deals/{transferred['deal']['id']}")
    players = re.findall(r'<audio class="tl-audio"[^>]*src="([^"]+)"', html)
    assert players == [f"/api/v1/calls/{call_id}/recordings/1", f"/api/v1/calls/{call_id}/recordings/2"]
    assert "Запись 1 из 2 — добавочный 101" in html and "Запись 2 из 2 — добавочный 102" in html

    await switch(client, manager)
    journal = await page(client, "/calls")
    row = re.search(rf'<tr class="call-row[^"]*" data-call-id="{call_id}">(.*?)</tr>', journal, re.S)
    assert row is not None
    players = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', row.group(1))
    assert players == [f"/api/v1/calls/{call_id}/recordings/1", f"/api/v1/calls/{call_id}/recordings/2"]
    cell = row.group(1)
    assert "Запись 1 из 2 — добавочный 101" in cell and "Запись 2 из 2 — добавочный 102" in cell
    assert cell.count("Файл записи не найден") == 2  # each player has its own "file missing"
