"""The bell through the HTTP API."""

from __future__ import annotations

from aiohttp import web

from hub.crm import notifications
from hub.web.keys import DB
from tests.integration.conftest import Api


async def bell(app: web.Application, user_id: int, title: str) -> dict:
    async with app[DB].transaction() as s:
        return await notifications.notify(s, user_id, kind="info", title=title, text="текст", link="/")


async def test_list_read_and_delete(app: web.Application, agent: Api, agent2: Api) -> None:
    first = await bell(app, agent.id, "Первое")
    second = await bell(app, agent.id, "Второе")
    await bell(app, agent2.id, "Чужое")
    listed = await agent.get("/api/v1/notifications")
    assert [n["id"] for n in listed["items"]] == [second["id"], first["id"]]
    assert listed["unread_count"] == 2 and listed["next_cursor"] is None
    assert (await agent.post("/api/v1/notifications/read", {"ids": [first["id"]]}))["unread_count"] == 1
    unread = await agent.get("/api/v1/notifications", params={"unread": "true"})
    assert [n["id"] for n in unread["items"]] == [second["id"]]
    assert (await agent.post("/api/v1/notifications/read"))["unread_count"] == 0  # no body: all
    assert (await agent2.get("/api/v1/notifications"))["unread_count"] == 1
    await agent.delete("/api/v1/notifications")
    assert (await agent.get("/api/v1/notifications"))["items"] == []
    assert len((await agent2.get("/api/v1/notifications"))["items"]) == 1


async def test_assigning_a_task_rings_the_bell(admin: Api, agent: Api) -> None:
    await admin.post("/api/v1/tasks", {"subject": "Перезвонить", "assignee_id": agent.id}, expect=201)
    assert (await agent.get("/api/v1/notifications"))["unread_count"] == 1


async def test_bad_input(agent: Api) -> None:
    for ids in ("all", [True], [0], ["1"]):
        body = await agent.post("/api/v1/notifications/read", {"ids": ids}, expect=422)
        assert "ids" in body["error"]["fields"]
    await agent.post("/api/v1/notifications/read", raw="{", expect=400)
    assert "unread" in (await agent.get("/api/v1/notifications", params={"unread": "maybe"},
                                        expect=422))["error"]["fields"]
