"""Mass actions on the deal and client lists: through the API (each row through its own service: what
one may not change is skipped with the reason) and the pages (tick, choose, confirm, see the counts)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page


async def _deals(agent: Api, manager: Api) -> tuple[list[int], int]:
    client = await agent.post("/api/v1/clients", {"name": "ООО Ромашка", "manager_id": agent.id}, expect=201)
    mine = [(await agent.post("/api/v1/deals", {"title": f"Моя {i}", "client_id": client["id"]},
                              expect=201))["id"] for i in range(3)]
    other_client = await manager.post("/api/v1/clients", {"name": "ООО Чужая"}, expect=201)
    other = await manager.post("/api/v1/deals", {"title": "Чужая", "client_id": other_client["id"]},
                               expect=201)
    return mine, other["id"]


async def test_deals_in_bulk_through_the_api(agent: Api, manager: Api) -> None:
    mine, other = await _deals(agent, manager)
    tagged = await agent.post("/api/v1/deals/bulk", {"ids": [*mine, other], "action": "tag", "value": "опт"})
    assert tagged["done"] == mine
    assert tagged["skipped"] == [{"id": other, "error": "not_found", "reason": "not found"}]
    assert all(["опт" in (await agent.get(f"/api/v1/deals/{i}"))["tags"] for i in mine])
    assert "опт" not in (await manager.get(f"/api/v1/deals/{other}"))["tags"]

    stages = (await agent.get("/api/v1/pipelines"))["items"][0]["stages"]
    second = [st for st in stages if st["kind"] == "active"][1]["id"]
    moved = await agent.post("/api/v1/deals/bulk", {"ids": mine[:2], "action": "stage", "value": second})
    assert moved["done"] == mine[:2] and (await agent.get(f"/api/v1/deals/{mine[0]}"))["stage_id"] == second

    handed = await manager.post("/api/v1/deals/bulk",
                                {"ids": mine[:1], "action": "responsible", "value": manager.id})
    assert handed["done"] == mine[:1]
    refused = await agent.post("/api/v1/deals/bulk", {"ids": mine, "action": "responsible", "value": 999999})
    assert refused["done"] == [] and {s["error"] for s in refused["skipped"]} == {"validation", "not_found"}

    kept = await agent.post("/api/v1/deals/bulk", {"ids": mine[1:], "action": "delete"})
    assert kept["done"] == [] and {s["error"] for s in kept["skipped"]} == {"forbidden"}  # staff delete
    deleted = await manager.post("/api/v1/deals/bulk", {"ids": mine[1:], "action": "delete"})
    assert deleted["done"] == mine[1:]
    await agent.get(f"/api/v1/deals/{mine[2]}", expect=404)

    for bad in ({"ids": [], "action": "tag", "value": "x"}, {"ids": mine, "action": "burn"},
                {"ids": mine, "action": "tag"}, {"ids": ["1"], "action": "delete"},
                {"ids": list(range(1, 502)), "action": "delete"}):
        await agent.post("/api/v1/deals/bulk", bad, expect=422)


async def test_clients_in_bulk_only_staff_delete(agent: Api, manager: Api) -> None:
    ids = [(await agent.post("/api/v1/clients", {"name": f"ООО {n}", "manager_id": agent.id},
                             expect=201))["id"] for n in ("Альфа", "Бета")]
    refused = await agent.post("/api/v1/clients/bulk", {"ids": ids, "action": "delete"})
    assert refused["done"] == [] and {s["error"] for s in refused["skipped"]} == {"forbidden"}
    tagged = await agent.post("/api/v1/clients/bulk", {"ids": ids, "action": "tag", "value": "VIP"})
    assert tagged["done"] == ids
    handed = await manager.post("/api/v1/clients/bulk",
                                {"ids": ids, "action": "manager", "value": manager.id})
    assert handed["done"] == ids
    assert (await manager.get(f"/api/v1/clients/{ids[0]}"))["manager_id"] == manager.id
    assert (await manager.post("/api/v1/clients/bulk", {"ids": ids, "action": "delete"}))["done"] == ids


async def test_the_deal_list_ticks_confirms_and_counts(client: TestClient, agent: Api, manager: Api) -> None:
    mine, other = await _deals(agent, manager)
    csrf = await logged_in(client, agent)
    listing = await page(client, "/deals/list")
    assert listing.count('name="ids"') == 3 and 'id="bulk-form"' in listing and "С отмеченными" in listing
    form = [("csrf_token", csrf), ("action", "tag"), ("value_tag", "срочно"), ("back", "/deals/list"),
            *(("ids", str(i)) for i in [*mine[:2], other])]
    async with client.post("/deals/bulk", data=form, allow_redirects=False) as response:
        confirm = await response.text()
        assert response.status == 200
    assert "Подтвердите действие" in confirm and "Отмечено 3 сделки:" in confirm
    assert "Моя 0" in confirm and "Чужая" not in confirm and "срочно" in confirm
    async with client.post("/deals/bulk", data=[*form, ("confirm", "1")], allow_redirects=False) as response:
        assert response.status == 303
        where = response.headers["Location"]
    assert where == "/deals/list?bulk_done=2&bulk_skipped=1"
    assert "Изменено: 2. Пропущено (нет доступа или отказ): 1." in await page(client, where)
    assert "срочно" in (await agent.get(f"/api/v1/deals/{mine[0]}"))["tags"]
    assert "срочно" not in (await agent.get(f"/api/v1/deals/{mine[2]}"))["tags"]
