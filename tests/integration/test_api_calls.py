"""/api/v1/calls: the journal's filters and access, one call, and recordings served with HTTP Range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.config import Config
from hub.crm import call_intake as intake
from hub.crm.ports import CallEndedFact, CallSettings
from hub.web.keys import CONFIG, DB
from tests.integration.conftest import Api

T0 = datetime(2030, 6, 15, 9, 0, tzinfo=UTC)
SETTINGS = CallSettings(unknown_caller="ask")
WAV = b"RIFF" + (36 + 1000).to_bytes(4, "little") + b"WAVEfmt " + bytes(24) + b"data" + bytes(range(256)) * 4


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    (path / "in-101.wav").write_bytes(WAV)
    return path


@pytest.fixture
def config(config: Config, recordings: Path) -> Config:
    config.asterisk.recordings_dir = str(recordings)
    return config


async def end(app: web.Application, key: str, number: str, status: str = "answered", ext: str = "101",
              direction: str = "inbound", minutes: int = 0, recording: str | None = None) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    answered = at + timedelta(seconds=3) if status == "answered" else None
    result = await intake.call_ended(app[DB], CallEndedFact(
        call_key=key, direction=direction, status=status, number=number, did="+74951234567",  # type: ignore[arg-type]
        agent_extension=ext, started_at=at, answered_at=answered,
        ended_at=at + timedelta(seconds=40), wait_seconds=3, talk_seconds=37 if status == "answered" else 0,
        hangup_cause=16, recording=recording, rung_extensions=(ext,)), SETTINGS)
    assert result is not None
    return result


@pytest.fixture
async def world(app: web.Application, admin: Api, manager: Api, agent: Api, agent2: Api) -> dict[str, Any]:
    own = await manager.post("/api/v1/clients", {"name": "ООО Агентов", "phones": ["+79161110001"],
                                                 "manager_id": agent.id}, expect=201)
    other = await manager.post("/api/v1/clients", {"name": "ООО Чужой", "phones": ["+79161110002"],
                                                   "manager_id": manager.id}, expect=201)
    calls = {
        "a1": await end(app, "a1", "+79161110001", recording="in-101.wav"),             # agent, own client
        "a2": await end(app, "a2", "+79161110002", "missed", ext="102", minutes=10),    # agent2, other client
        "a3": await end(app, "a3", "+79161110002", ext="102", direction="outbound", minutes=20),
        "a4": await end(app, "a4", "+79161110002", "abandoned", ext="101", minutes=30),  # agent tried
        "a5": await end(app, "a5", "+79161110001", ext="101", minutes=40, recording="gone.wav"),
    }
    return {"own": own, "other": other, "calls": calls}


def ids(page: dict[str, Any]) -> list[str]:
    return [c["call_key"] for c in page["items"]]


async def test_list_filters_and_shape(manager: Api, agent: Api, agent2: Api, world: dict) -> None:
    page = await manager.get("/api/v1/calls")
    assert ids(page) == ["a5", "a4", "a3", "a2", "a1"] and page["next_cursor"] is None
    call = page["items"][-1]
    for key in ("id", "direction", "status", "external_number", "did", "agent", "started_at", "answered_at",
                "ended_at", "wait_seconds", "talk_seconds", "hangup_cause", "recording_url", "client_id",
                "lead_id", "deal_id"):
        assert key in call
    assert call["agent"] == {"id": agent.id, "name": "Иван Агентов", "extension": "101"}
    assert call["external_number"] == "+79161110001" and call["client_id"] == world["own"]["id"]
    assert call["recording_url"] == f"/api/v1/calls/{call['id']}/recording"
    assert call["started_at"] == "2030-06-15T09:00:00Z" and call["talk_seconds"] == 37
    assert ids(await manager.get("/api/v1/calls", params={"status": "missed"})) == ["a2"]
    assert ids(await manager.get("/api/v1/calls", params={"status": "missed,abandoned"})) == ["a4", "a2"]
    assert ids(await manager.get("/api/v1/calls", params={"direction": "outbound"})) == ["a3"]
    assert ids(await manager.get("/api/v1/calls", params={"agent": str(agent2.id)})) == ["a3", "a2"]
    assert ids(await manager.get("/api/v1/calls", params={
        "since": "2030-06-15T09:10:00Z", "until": "2030-06-15T12:30:00+03:00"})) == ["a3", "a2"]
    first = await manager.get("/api/v1/calls", params={"limit": "2"})
    assert ids(first) == ["a5", "a4"] and first["next_cursor"]
    rest = await manager.get("/api/v1/calls", params={"limit": "2", "cursor": first["next_cursor"]})
    assert ids(rest) == ["a3", "a2"]
    for params in ({"status": "ringing"}, {"direction": "sideways"}, {"agent": "x"}, {"since": "yesterday"},
                   {"since": "2030-06-15T10:00:00Z", "until": "2030-06-15T09:00:00Z"}, {"cursor": "???"},
                   {"limit": "0"}):
        body = await manager.get("/api/v1/calls", params=params, expect=422)
        assert body["error"]["code"] == "validation_failed"


async def test_agents_see_their_calls_and_calls_of_people_they_see(
        admin: Api, manager: Api, agent: Api, agent2: Api, world: dict) -> None:
    # a4 rang the agent today: until the day ends they see its client, ООО Чужой, and so its calls
    assert ids(await agent.get("/api/v1/calls")) == ["a5", "a4", "a3", "a2", "a1"]
    await admin.patch("/api/v1/settings/access", {"call_grant": "off"})  # (test_role_matrix.py)
    # agent: a1, a5 (own client, took them), a4 (was the agent tried); agent2: a2, a3 (took them)
    assert ids(await agent.get("/api/v1/calls")) == ["a5", "a4", "a1"]
    assert ids(await agent2.get("/api/v1/calls")) == ["a3", "a2"]
    a2 = world["calls"]["a2"]["id"]
    await agent.get(f"/api/v1/calls/{a2}", expect=404)
    await agent.get(f"/api/v1/calls/{a2}/recording", expect=404)
    assert (await agent2.get(f"/api/v1/calls/{a2}"))["status"] == "missed"
    assert (await manager.get(f"/api/v1/calls/{a2}"))["call_key"] == "a2"
    await manager.get("/api/v1/calls/999999", expect=404)
    await manager.get("/api/v1/calls/abc", expect=404)


async def test_recording_with_range(client: TestClient, manager: Api, agent: Api, agent2: Api,
                                    world: dict) -> None:
    call_id = world["calls"]["a1"]["id"]
    url = f"/api/v1/calls/{call_id}/recording"
    async with client.get(url, headers=agent.auth()) as response:
        assert response.status == 200
        assert await response.read() == WAV
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.content_type.startswith("audio/")
    async with client.get(url, headers={**agent.auth(), "Range": "bytes=100-199"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-199/{len(WAV)}"
        assert await response.read() == WAV[100:200]
    async with client.get(url, headers={**agent.auth(), "Range": "bytes=-10"}) as response:
        assert response.status == 206 and await response.read() == WAV[-10:]
    async with client.get(url, headers={**agent.auth(), "Range": f"bytes={len(WAV) + 10}-"}) as response:
        assert response.status == 416
    # the same rule as the call: an agent who may not see it gets 404
    async with client.get(url, headers=agent2.auth()) as response:
        assert response.status == 404
    async with client.get(url) as response:
        assert response.status == 401


# Range as RFC 9110 §14 reads it: (Range, status, the bytes, Content-Range) for the 1068-byte WAV
N = len(WAV)
RANGE_CASES = [
    ("bytes=0-99", 206, WAV[:100], f"bytes 0-99/{N}"),
    ("bytes=100-", 206, WAV[100:], f"bytes 100-{N - 1}/{N}"),
    ("bytes=-100", 206, WAV[-100:], f"bytes {N - 100}-{N - 1}/{N}"),
    ("bytes=-999999", 206, WAV, f"bytes 0-{N - 1}/{N}"),      # a suffix longer than the file
    ("bytes=0-999999", 206, WAV, f"bytes 0-{N - 1}/{N}"),     # the end clamped
    ("bytes=0-0", 206, WAV[:1], f"bytes 0-0/{N}"),
    (f"bytes={N}-", 416, b"", f"bytes */{N}"),                # starts past the end
    ("bytes=-0", 416, b"", f"bytes */{N}"),                   # a suffix of 0 bytes selects nothing
    ("bytes=abc", 200, WAV, None),                            # invalid: ignored
    ("items=0-1", 200, WAV, None),                            # an unknown unit: ignored
    ("bytes=5-2", 200, WAV, None),                            # last before first: invalid, ignored
    ("bytes=0-1,5-6", 200, WAV, None),                        # several ranges: ignored
    ("bytes=-", 200, WAV, None),
]


async def check_range(client: TestClient, url: str, auth: dict[str, str], header: str, status: int,
                      body: bytes, content_range: str | None) -> None:
    async with client.get(url, headers={**auth, "Range": header}) as response:
        assert (header, response.status) == (header, status), await response.text()
        assert response.headers.get("Content-Range") == content_range, header
        assert "no-store" in response.headers["Cache-Control"]
        if status != 416:
            assert await response.read() == body, header
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.headers["Content-Length"] == str(len(body))


async def test_recording_range_as_rfc_9110_says(client: TestClient, agent: Api, world: dict) -> None:
    url = f"/api/v1/calls/{world['calls']['a1']['id']}/recording"
    for case in RANGE_CASES:
        await check_range(client, url, agent.auth(), *case)
    # If-Range as before: a stale date makes any Range, even an unsatisfiable one, the whole file
    stale = {**agent.auth(), "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"}
    for header in ("bytes=0-99", "bytes=-0"):
        async with client.get(url, headers={**stale, "Range": header}) as response:
            assert response.status == 200 and await response.read() == WAV
    async with client.get(url, headers={**agent.auth(), "Range": "bytes=0-99"}) as response:
        last_modified = response.headers["Last-Modified"]
    current = {**agent.auth(), "If-Range": last_modified}
    async with client.get(url, headers={**current, "Range": "bytes=-0"}) as response:
        assert response.status == 416
    # Range is defined for GET only: HEAD describes the whole file
    async with client.head(url, headers={**agent.auth(), "Range": "bytes=0-99"}) as response:
        assert response.status == 200 and response.headers["Content-Length"] == str(N)


async def test_recordings_are_named_and_never_leave_their_folder(
        client: TestClient, app: web.Application, manager: Api, world: dict) -> None:
    """Security finding 12: recordings came without Content-Disposition, and a symbolic link in the
    recordings folder was followed wherever it pointed."""
    url = f"/api/v1/calls/{world['calls']['a1']['id']}/recording"
    async with client.get(url, headers=manager.auth()) as response:
        assert response.headers["Content-Disposition"] == 'inline; filename="in-101.wav"'
    folder = Path(app[CONFIG].asterisk.recordings_dir)
    outside = folder.parent / "secret.txt"
    outside.write_text("не запись")
    (folder / "gone.wav").symlink_to(outside)  # a5's recording now points out of the folder
    await manager.get(world["calls"]["a5"]["recording_url"], expect=404)
    (folder / "gone.wav").unlink()
    (folder / "gone.wav").symlink_to(folder / "in-101.wav")  # a link that stays inside is served
    async with client.get(world["calls"]["a5"]["recording_url"], headers=manager.auth()) as response:
        assert response.status == 200 and await response.read() == WAV


async def test_missing_recordings_say_so(manager: Api, world: dict) -> None:
    gone = world["calls"]["a5"]
    assert gone["recording_url"] is not None  # the PBX named a file ...
    body = await manager.get(gone["recording_url"], expect=404)  # ... that is not there
    assert body["error"]["code"] == "recording_missing"
    none = world["calls"]["a2"]
    assert none["recording_url"] is None
    body = await manager.get(f"/api/v1/calls/{none['id']}/recording", expect=404)
    assert body["error"]["code"] == "recording_missing"


async def test_ask_mode_lead_from_a_call(app: web.Application, manager: Api, agent: Api, agent2: Api,
                                         world: dict) -> None:
    # a finished missed call from an unknown number, rung at 101 (agent)
    missed = await end(app, "u1", "+79035550123", "missed", ext="101")
    assert missed["lead_id"] is None and missed["timeline_entry_id"] is None
    await agent2.post(f"/api/v1/calls/{missed['id']}/lead", {}, expect=404)  # not rung, not theirs
    result = await agent.post(f"/api/v1/calls/{missed['id']}/lead", {"name": "Новый клиент"}, expect=201)
    lead, call = result["lead"], result["call"]
    assert lead["name"] == "Новый клиент" and lead["unsorted"] is True and lead["phones"] == ["+79035550123"]
    assert lead["source"] == "звонок" and lead["manager_id"] is None
    assert call["lead_id"] == lead["id"] and call["timeline_entry_id"]
    timeline = await agent.get(f"/api/v1/leads/{lead['id']}/timeline")
    assert [e["kind"] for e in timeline["items"]] == ["call"]
    assert timeline["items"][0]["payload"]["status"] == "missed"
    task = await manager.get(f"/api/v1/tasks/{call['callback_task_id']}")
    assert task["lead_id"] == lead["id"] and task["kind"] == "callback"
    body = await agent.post(f"/api/v1/calls/{missed['id']}/lead", expect=409)
    assert body["error"]["code"] == "conflict"
    # a call of a known client, an internal call: nothing to make
    await manager.post(f"/api/v1/calls/{world['calls']['a1']['id']}/lead", expect=409)
    internal = await end(app, "u2", "", ext="101", direction="internal")
    await manager.post(f"/api/v1/calls/{internal['id']}/lead", expect=422)
    await agent.post(f"/api/v1/calls/{missed['id']}/lead", {"name": 5}, expect=422)


async def test_ask_mode_lead_while_the_phone_rings(app: web.Application, agent: Api, world: dict) -> None:
    from hub.crm.ports import CallRinging

    pop = await intake.call_ringing(app[DB], CallRinging(
        call_key="r1", direction="inbound", number="89035550124", did=None, extension="101", at=T0), SETTINGS)
    assert pop["unknown"] is True and pop["lead_created"] is None
    result = await agent.post(f"/api/v1/calls/{pop['call_id']}/lead", expect=201)
    assert result["lead"]["name"] == "+79035550124" and result["call"]["timeline_entry_id"] is None
    done = await end(app, "r1", "+79035550124")
    assert done["lead_id"] == result["lead"]["id"] and done["timeline_entry_id"]


async def test_screen_pop_reaches_only_the_rung_agents_stream(app: web.Application, agent: Api, agent2: Api,
                                                              world: dict) -> None:
    from hub.crm.ports import CallAnsweredFact, CallRinging
    from tests.integration.test_sse import open_stream

    mine, theirs = await open_stream(agent), await open_stream(agent2)
    await intake.call_ringing(app[DB], CallRinging(
        call_key="s1", direction="inbound", number="8 916 111-00-01", did=None, extension="101", at=T0),
        SETTINGS)
    pop = await mine.until_event("call.ringing")
    assert pop["data"]["number"] == "+79161110001" and pop["data"]["unknown"] is False
    assert pop["data"]["matches"][0]["id"] == world["own"]["id"]
    await intake.call_answered(app[DB], CallAnsweredFact(
        call_key="s1", direction="inbound", number="+79161110001", did=None, extension="101"), SETTINGS)
    answered = await mine.until_event("call.answered")
    assert answered["data"]["call_id"] == pop["data"]["call_id"]
    await end(app, "s1", "+79161110001")
    ended = await mine.until_event("call.ended")
    assert ended["data"]["status"] == "answered" and ended["data"]["talk_seconds"] == 37
    # the other agent's stream got none of it (a bell or task item may come, never the call events)
    try:
        while True:
            event = await theirs.next(within=0.3)
            assert not event.get("event", "").startswith("call."), event
    except TimeoutError:
        pass
    mine.response.close()
    theirs.response.close()
