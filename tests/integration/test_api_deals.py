"""Deals, moving them, pipelines and loss reasons through the HTTP API."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api


async def a_client(api: Api, **extra: Any) -> dict[str, Any]:
    return await api.post("/api/v1/clients", {"name": "ООО Ромашка", **extra}, expect=201)


async def default_stages(api: Api) -> list[dict[str, Any]]:
    pipelines = (await api.get("/api/v1/pipelines"))["items"]
    return next(p for p in pipelines if p["is_default"])["stages"]


async def test_deal_crud_happy_path(admin: Api, agent: Api) -> None:
    client = await a_client(admin)
    deal = await admin.post("/api/v1/deals", {
        "title": "Поставка труб", "client_id": client["id"], "amount": "1 234,56", "tags": ["срочно"],
        "responsible_id": agent.id, "next_interaction_at": "2030-01-01T10:00:00+03:00",
        "next_interaction_note": "перезвонить",
    }, expect=201)
    stages = await default_stages(admin)
    assert deal["stage_id"] == stages[0]["id"] and deal["pipeline_id"]
    assert deal["amount"] == 1234.56 and deal["currency"] == "RUB" and deal["tags"] == ["срочно"]
    assert deal["responsible_id"] == agent.id
    assert deal["next_interaction_at"] == "2030-01-01T07:00:00Z"
    path = f"/api/v1/deals/{deal['id']}"
    assert (await admin.get(path))["title"] == "Поставка труб"
    assert (await admin.patch(path, {"amount": 10}))["amount"] == 10
    listed = await admin.get("/api/v1/deals", params={"client": str(client["id"])})
    assert [d["id"] for d in listed["items"]] == [deal["id"]]
    assert (await admin.get("/api/v1/deals", params={"responsible": str(agent.id)}))["items"]
    assert (await admin.get("/api/v1/deals", params={"tag": "нет-такого"}))["items"] == []
    assert (await admin.get("/api/v1/deals", params={"stage": str(stages[0]["id"])}))["items"]
    await admin.delete(path)
    await admin.get(path, expect=404)


async def test_deal_responsible_defaults_to_the_caller(agent: Api, admin: Api) -> None:
    client = await a_client(admin, manager_id=agent.id)
    deal = await agent.post("/api/v1/deals", {"title": "Моя", "client_id": client["id"]}, expect=201)
    assert deal["responsible_id"] == agent.id


async def test_deal_validation_names_fields(admin: Api) -> None:
    error = (await admin.post("/api/v1/deals", {"title": "", "amount": "много", "client_id": "x"},
                              expect=422))["error"]
    assert {"title", "amount", "client_id"} <= set(error["fields"])
    error = (await admin.post("/api/v1/deals", {"title": "Без клиента"}, expect=422))["error"]
    assert "client_id" in error["fields"]
    client = await a_client(admin)
    error = (await admin.post("/api/v1/deals", {"title": "t", "client_id": client["id"],
                                                "next_interaction_at": "завтра"}, expect=422))["error"]
    assert "next_interaction_at" in error["fields"]


async def test_move_deal_writes_a_stage_change_and_needs_a_loss_reason(admin: Api) -> None:
    client = await a_client(admin)
    deal = await admin.post("/api/v1/deals", {"title": "t", "client_id": client["id"]}, expect=201)
    stages = await default_stages(admin)
    second = stages[1]
    lost = next(s for s in stages if s["kind"] == "lost")
    moved = await admin.post(f"/api/v1/deals/{deal['id']}/move", {
        "stage_id": second["id"], "result": "Отправили КП", "next_interaction_at": "2030-02-01T09:00:00Z",
        "next_interaction_note": "узнать решение"}, expect=200)
    assert moved["stage_id"] == second["id"] and moved["next_interaction_note"] == "узнать решение"
    timeline = await admin.get(f"/api/v1/deals/{deal['id']}/timeline", params={"kind": "stage_change"})
    assert [e["kind"] for e in timeline["items"]] == ["stage_change"]
    error = (await admin.post(f"/api/v1/deals/{deal['id']}/move", {"stage_id": lost["id"]},
                              expect=422))["error"]
    assert "loss_reason" in error["fields"]
    closed = await admin.post(f"/api/v1/deals/{deal['id']}/move",
                              {"stage_id": lost["id"], "loss_reason": "Дорого"}, expect=200)
    assert closed["stage_id"] == lost["id"] and closed["closed_at"]
    await admin.post(f"/api/v1/deals/{deal['id']}/move", {}, expect=422)
    await admin.post(f"/api/v1/deals/{deal['id']}/move", raw="{", expect=400)
    await admin.post("/api/v1/deals/999999/move", {"stage_id": second["id"]}, expect=404)


async def test_agents_see_only_their_deals(admin: Api, agent: Api, agent2: Api) -> None:
    client = await a_client(admin)
    theirs = await admin.post("/api/v1/deals", {"title": "Чужая", "client_id": client["id"],
                                                "responsible_id": agent2.id}, expect=201)
    await agent.get(f"/api/v1/deals/{theirs['id']}", expect=404)
    await agent.patch(f"/api/v1/deals/{theirs['id']}", {"title": "Моя"}, expect=404)
    await agent.post(f"/api/v1/deals/{theirs['id']}/move", {"stage_id": 1}, expect=404)
    await agent.get(f"/api/v1/deals/{theirs['id']}/timeline", expect=404)
    assert (await agent.get("/api/v1/deals"))["items"] == []


async def test_pipelines_are_read_by_all_and_changed_by_admins(admin: Api, agent: Api) -> None:
    listed = await agent.get("/api/v1/pipelines")
    assert listed["next_cursor"] is None and len(listed["items"]) == 1
    default = listed["items"][0]
    assert default["is_default"] and default["stages"][0]["name"] == "Первичный интерес"
    assert (await agent.get(f"/api/v1/pipelines/{default['id']}"))["id"] == default["id"]
    body = {"name": "Сервис", "stages": [{"name": "Заявка"}, {"name": "Готово", "kind": "won"},
                                         {"name": "Отказ", "kind": "lost"}]}
    await agent.post("/api/v1/pipelines", body, expect=403)
    created = await admin.post("/api/v1/pipelines", body, expect=201)
    assert [s["name"] for s in created["stages"]] == ["Заявка", "Готово", "Отказ"]
    path = f"/api/v1/pipelines/{created['id']}"
    assert (await admin.patch(path, {"name": "Сервис и ремонт"}))["name"] == "Сервис и ремонт"
    await agent.patch(path, {"name": "x"}, expect=403)
    client = await a_client(admin)
    await admin.post("/api/v1/deals", {"title": "t", "client_id": client["id"], "pipeline_id": created["id"]},
                     expect=201)
    assert (await admin.delete(path, expect=409))["error"]["code"] == "conflict"
    await admin.get("/api/v1/pipelines/999999", expect=404)
    await admin.post("/api/v1/pipelines", {"name": ""}, expect=422)


async def test_loss_reasons(admin: Api, agent: Api) -> None:
    before = (await agent.get("/api/v1/loss-reasons"))["items"]
    await agent.post("/api/v1/loss-reasons", {"name": "Нет бюджета"}, expect=403)
    created = await admin.post("/api/v1/loss-reasons", {"name": "Нет бюджета"}, expect=201)
    assert created["name"] == "Нет бюджета" and created["id"]
    after = (await agent.get("/api/v1/loss-reasons"))["items"]
    assert len(after) == len(before) + 1
    assert (await admin.post("/api/v1/loss-reasons", {"name": "Нет бюджета"}, expect=409))["error"]["fields"]
    assert "name" in (await admin.post("/api/v1/loss-reasons", {}, expect=422))["error"]["fields"]
