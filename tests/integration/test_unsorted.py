"""«Не разобрано» sorted out in place: the column's count, a lead taken, made a client or rejected with a
reason from the board (and back to the board), rejection through the API, and a rejected lead taken back;
a deal's plan changed through the API is refused in the past and on a closed deal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page


async def inbound(api: Api, name: str) -> dict:
    """A lead as a channel leaves it: nobody's, unsorted."""
    return await api.post("/api/v1/leads", {"name": name, "unsorted": True, "manager_id": None}, expect=201)


async def form(client: TestClient, path: str, data: dict[str, str]) -> str:
    async with client.post(path, data=data, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        return response.headers["Location"]


async def test_the_board_counts_takes_converts_and_rejects_in_place(client: TestClient, agent: Api) -> None:
    taken, made, spam = [await inbound(agent, n) for n in ("Лид Взятый", "Лид Клиент", "Лид Спам")]
    assert all(x["unsorted"] and x["rejected_at"] is None for x in (taken, made, spam))
    csrf = await logged_in(client, agent)
    board = await page(client, "/deals")
    assert '<span class="count" id="unsorted-count"' in board and ">3</span>" in board
    assert board.count('action="/leads/') >= 9  # take, make a client, reject on each of the three

    back = {"csrf_token": csrf, "back": "/deals"}
    assert await form(client, f"/leads/{taken['id']}/take", back) == "/deals"
    assert (await agent.get(f"/api/v1/leads/{taken['id']}"))["manager_id"] == agent.id
    where = await form(client, f"/leads/{made['id']}/convert",
                       {"csrf_token": csrf, "back": "/deals", "name": made["name"], "kind": "person"})
    assert where == "/deals"
    assert (await agent.get(f"/api/v1/leads/{made['id']}"))["converted_client_id"] is not None
    assert await form(client, f"/leads/{spam['id']}/reject",
                      {"csrf_token": csrf, "back": "/deals", "reason": "Спам"}) == "/deals"
    rejected = await agent.get(f"/api/v1/leads/{spam['id']}")
    assert rejected["rejected_reason"] == "Спам" and rejected["rejected_at"] and not rejected["unsorted"]

    board = await page(client, "/deals")
    assert "Лид Спам" not in board and "Лид Взятый" not in board and "Лид Клиент" not in board
    assert '<span class="count" id="unsorted-count" title="Лиды, которые ждут разбора">0</span>' in board
    assert "Отклонён: Спам" in await page(client, f"/leads/{spam['id']}")
    assert "Отклонён" in await page(client, "/leads")

    await form(client, f"/leads/{spam['id']}/take", {"csrf_token": csrf})  # it was not spam after all
    back = await agent.get(f"/api/v1/leads/{spam['id']}")
    assert back["rejected_at"] is None and back["rejected_reason"] == "" and back["manager_id"] == agent.id


async def test_rejecting_through_the_api(agent: Api, agent2: Api, manager: Api) -> None:
    lead = await inbound(manager, "Лид")
    await agent.post(f"/api/v1/leads/{lead['id']}/reject", {}, expect=422)
    await agent.post(f"/api/v1/leads/{lead['id']}/reject", {"reason": ""}, expect=422)
    own = await manager.post("/api/v1/leads", {"name": "Чужой", "manager_id": manager.id}, expect=201)
    await agent.post(f"/api/v1/leads/{own['id']}/reject", {"reason": "Спам"}, expect=404)  # not hers to see
    done = await agent.post(f"/api/v1/leads/{lead['id']}/reject", {"reason": "Ошиблись номером"})
    assert done["rejected_reason"] == "Ошиблись номером" and done["unsorted"] is False
    unsorted = await agent2.get("/api/v1/leads", params={"unsorted": "true"})
    assert all(x["id"] != lead["id"] for x in unsorted["items"])
    converted = await inbound(manager, "Стал клиентом")
    await manager.post(f"/api/v1/leads/{converted['id']}/convert", {})
    await manager.post(f"/api/v1/leads/{converted['id']}/reject", {"reason": "Спам"}, expect=409)


async def test_a_plan_changed_through_the_api_is_in_the_future_and_on_an_open_deal(agent: Api) -> None:
    made = await agent.post("/api/v1/clients", {"name": "ООО Ромашка"}, expect=201)
    deal = await agent.post("/api/v1/deals", {"title": "Сделка", "client_id": made["id"]}, expect=201)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    answer = await agent.patch(f"/api/v1/deals/{deal['id']}", {"next_interaction_at": past}, expect=422)
    assert answer["error"]["fields"]["next_interaction_at"] == "must not be in the past"
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    planned = await agent.patch(f"/api/v1/deals/{deal['id']}", {"next_interaction_at": soon.isoformat()})
    assert planned["next_interaction_at"] is not None
    kept = planned["next_interaction_at"]  # sent again with another change: kept, not planned anew
    await agent.patch(f"/api/v1/deals/{deal['id']}", {"title": "Та же дата", "next_interaction_at": kept})
    stages = (await agent.get("/api/v1/pipelines"))["items"][0]["stages"]
    won = next(st["id"] for st in stages if st["kind"] == "won")
    await agent.post(f"/api/v1/deals/{deal['id']}/move", {"stage_id": won, "result": "Подписали"})
    answer = await agent.patch(f"/api/v1/deals/{deal['id']}", {"next_interaction_at": soon.isoformat()},
                               expect=422)
    assert answer["error"]["fields"]["next_interaction_at"] == "must be empty when the deal is closed"
