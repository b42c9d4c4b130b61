"""What the live event stream delivers follows the REST access rules (issue 13, findings 2 and 3):
an entry on a deal the user cannot open never reaches them, even on a client they manage; a stream
whose user logged out, was deactivated or lost the sharing setting stops delivering at once."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.web.keys import BUS
from tests.integration.conftest import Api
from tests.integration.test_auth import browser_login, session_csrf
from tests.integration.test_sse import Stream, open_stream

ACCESS = "/api/v1/settings/access"


async def stages(api: Api) -> list[dict[str, Any]]:
    pipelines = (await api.get("/api/v1/pipelines"))["items"]
    found: list[dict[str, Any]] = next(p for p in pipelines if p["is_default"])["stages"]
    return found


async def events_until(stream: Stream, name: str, test: Any) -> list[dict[str, Any]]:
    """Every event up to and including the first ``name`` event that passes ``test``."""
    seen = []
    while True:
        event = await stream.next()
        seen.append(event)
        if event.get("event") == name and test(event):
            return seen


def entry_ids(events: list[dict[str, Any]]) -> set[int]:
    return {e["data"]["entry"]["id"] for e in events if e.get("event", "").startswith("timeline.")}


# --- finding 2: another agent's deal on a client the agent manages -----------------------------------

async def test_a_colleagues_deal_entries_on_my_client_do_not_reach_my_stream(
        admin: Api, agent: Api, agent2: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка", "manager_id": agent.id}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Сделка Петра", "client_id": client["id"],
                                              "responsible_id": agent2.id}, expect=201)
    await agent.get(f"/api/v1/deals/{deal['id']}", expect=404)  # REST: not theirs
    mine, theirs, boss = await open_stream(agent), await open_stream(agent2), await open_stream(admin)

    note = await agent2.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "скидка 15%"}, expect=201)
    second = (await stages(admin))[1]
    await agent2.post(f"/api/v1/deals/{deal['id']}/move", {"stage_id": second["id"]})
    # then something the agent may see: a note on the client itself
    marker = await admin.post(f"/api/v1/clients/{client['id']}/notes", {"text": "общая"}, expect=201)

    got = await events_until(mine, "timeline.added", lambda e: e["data"]["entry"]["id"] == marker["id"])
    assert entry_ids(got) == {marker["id"]}, got  # neither the note nor the stage change came
    assert not [e for e in got if e.get("event") == "deal.updated"]
    await agent.get(f"/api/v1/clients/{client['id']}/timeline")  # (REST agrees: the client's own entries)
    for stream in (theirs, boss):  # the deal's responsible and the administrator do get them
        seen = await events_until(stream, "deal.updated", lambda e: e["data"]["deal"]["id"] == deal["id"])
        assert note["id"] in entry_ids(seen)
        kinds = [e["data"]["entry"]["kind"] for e in seen if e.get("event") == "timeline.added"]
        assert "stage_change" in kinds
    for stream in (mine, theirs, boss):
        stream.response.close()


async def test_a_colleagues_deal_on_an_unsorted_lead_stays_theirs(admin: Api, agent: Api,
                                                                  agent2: Api) -> None:
    lead = await admin.post("/api/v1/leads", {"name": "Новый", "manager_id": None}, expect=201)
    assert lead["manager_id"] is None  # nobody's lead: everybody's
    deal = await admin.post("/api/v1/deals", {"title": "Сделка Петра", "lead_id": lead["id"],
                                              "responsible_id": agent2.id}, expect=201)
    stream = await open_stream(agent)
    note = await agent2.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "тайное"}, expect=201)
    marker = await admin.post(f"/api/v1/leads/{lead['id']}/notes", {"text": "для всех"}, expect=201)
    got = await events_until(stream, "timeline.added", lambda e: e["data"]["entry"]["id"] == marker["id"])
    assert note["id"] not in entry_ids(got)
    stream.response.close()


async def test_with_agents_see_all_the_colleagues_entries_do_arrive(admin: Api, agent: Api,
                                                                    agent2: Api) -> None:
    await admin.patch(ACCESS, {"agents_see_all": True})
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка", "manager_id": agent.id}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Сделка Петра", "client_id": client["id"],
                                              "responsible_id": agent2.id}, expect=201)
    stream = await open_stream(agent)
    note = await agent2.post(f"/api/v1/deals/{deal['id']}/notes", {"text": "видно всем"}, expect=201)
    assert (await stream.until_event("timeline.added"))["data"]["entry"]["id"] == note["id"]
    stream.response.close()


# --- finding 3: an open stream is re-checked -----------------------------------------------------------

async def notify(app: web.Application, user_id: int, n: int) -> None:
    app[BUS].publish("notification.created", {"notification": {"id": n}}, users=[user_id])


async def test_the_stream_of_a_user_who_logs_out_ends(app: web.Application, client: TestClient,
                                                     agent: Api) -> None:
    await browser_login(client, "agent")
    response = await client.get("/api/v1/events")  # the session cookie
    assert response.status == 200
    stream = Stream(response)
    await notify(app, agent.id, 1)
    assert (await stream.until_event("notification.created"))["data"]["notification"]["id"] == 1
    csrf = await session_csrf(client)
    logout = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert logout.status == 303
    await notify(app, agent.id, 2)
    with pytest.raises(EOFError):
        await stream.until_event("notification.created")  # the stream ended instead
    response.close()
    again = await client.get("/api/v1/events")
    assert again.status == 401


async def test_the_stream_of_a_deactivated_user_ends(app: web.Application, admin: Api, agent: Api) -> None:
    stream = await open_stream(agent)
    await notify(app, agent.id, 1)
    assert (await stream.until_event("notification.created"))["data"]["notification"]["id"] == 1
    await admin.patch(f"/api/v1/users/{agent.id}", {"active": False})
    await notify(app, agent.id, 2)
    with pytest.raises(EOFError):
        await stream.until_event("notification.created")
    stream.response.close()


async def test_the_stream_of_a_removed_user_ends(app: web.Application, admin: Api, agent: Api) -> None:
    stream = await open_stream(agent)
    await admin.delete(f"/api/v1/users/{agent.id}")
    await notify(app, agent.id, 1)
    with pytest.raises(EOFError):
        await stream.until_event("notification.created")
    stream.response.close()


async def test_switching_sharing_off_stops_the_colleagues_deals_at_once(admin: Api, agent: Api,
                                                                       agent2: Api) -> None:
    await admin.patch(ACCESS, {"agents_see_all": True})
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
    stream = await open_stream(agent)
    shared = await admin.post("/api/v1/deals", {"title": "Пока видно", "client_id": client["id"],
                                                "responsible_id": agent2.id}, expect=201)
    assert (await stream.until_event("deal.created"))["data"]["deal"]["id"] == shared["id"]

    await admin.patch(ACCESS, {"agents_see_all": False})
    hidden = await admin.post("/api/v1/deals", {"title": "Уже не видно", "client_id": client["id"],
                                                "responsible_id": agent2.id}, expect=201)
    await agent2.post(f"/api/v1/deals/{hidden['id']}/notes", {"text": "чужое"}, expect=201)
    own = await admin.post("/api/v1/deals", {"title": "Своя", "client_id": client["id"],
                                             "responsible_id": agent.id}, expect=201)
    got = await events_until(stream, "deal.created", lambda e: e["data"]["deal"]["id"] == own["id"])
    assert [e for e in got if e.get("event") == "deal.created"] == got[-1:], got  # not the hidden one
    assert not entry_ids(got)
    assert "resync" in [e.get("event") for e in got]  # what the user may see changed: re-read it
    stream.response.close()


async def test_a_demoted_manager_stops_getting_every_deal(admin: Api, manager: Api, agent2: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
    stream = await open_stream(manager)
    first = await admin.post("/api/v1/deals", {"title": "Видно", "client_id": client["id"],
                                               "responsible_id": agent2.id}, expect=201)
    assert (await stream.until_event("deal.created"))["data"]["deal"]["id"] == first["id"]
    await admin.patch(f"/api/v1/users/{manager.id}", {"role": "agent"})
    await admin.post("/api/v1/deals", {"title": "Не видно", "client_id": client["id"],
                                       "responsible_id": agent2.id}, expect=201)
    own = await admin.post("/api/v1/deals", {"title": "Своя", "client_id": client["id"],
                                             "responsible_id": manager.id}, expect=201)
    got = await events_until(stream, "deal.created", lambda e: e["data"]["deal"]["id"] == own["id"])
    assert [e for e in got if e.get("event") == "deal.created"] == got[-1:], got
    stream.response.close()


async def test_a_quiet_stream_is_rechecked_too(app: web.Application, admin: Api, agent: Api,
                                               monkeypatch: Any) -> None:
    from hub.web import sse

    monkeypatch.setattr(sse, "RECHECK_SECONDS", 0.1)
    stream = await open_stream(agent)
    await admin.patch(f"/api/v1/users/{agent.id}", {"active": False})
    with pytest.raises(EOFError):  # no event at all: the timer's re-check ends it
        await stream.next(within=10)
    stream.response.close()
