"""Tasks through the HTTP API."""

from __future__ import annotations

from tests.integration.conftest import Api


async def test_task_crud_complete_and_filters(admin: Api, agent: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка", "manager_id": agent.id}, expect=201)
    task = await admin.post("/api/v1/tasks", {
        "subject": "Перезвонить", "description": "обсудить скидку", "due_at": "2020-01-01T09:00:00Z",
        "client_id": client["id"], "assignee_id": agent.id,
    }, expect=201)
    assert task["assignee_id"] == agent.id and task["overdue"] is True and task["completed_at"] is None
    path = f"/api/v1/tasks/{task['id']}"
    assert (await agent.get(path))["subject"] == "Перезвонить"
    assert (await agent.patch(path, {"percent": 50}))["percent"] == 50
    overdue = await agent.get("/api/v1/tasks", params={"filter": "overdue"})
    assert [t["id"] for t in overdue["items"]] == [task["id"]]
    mine = await agent.get("/api/v1/tasks", params={"filter": "mine"})
    assert [t["id"] for t in mine["items"]] == [task["id"]]
    assert (await admin.get("/api/v1/tasks", params={"client": str(client["id"])}))["items"]
    assert (await admin.get("/api/v1/tasks", params={"assignee": str(admin.id)}))["items"] == []
    done = await agent.post(f"{path}/complete", expect=200)
    assert done["completed_at"] and done["overdue"] is False
    finished = await agent.get("/api/v1/tasks", params={"filter": "done"})
    assert [t["id"] for t in finished["items"]] == [task["id"]]
    await agent.delete(path, expect=403)  # the assignee completes; the author or a manager deletes
    await admin.delete(path)
    await admin.get(path, expect=404)


async def test_task_input_errors_and_access(admin: Api, agent: Api, agent2: Api) -> None:
    error = (await admin.post("/api/v1/tasks", {"subject": "", "percent": 300, "due_at": "вчера"},
                              expect=422))["error"]
    assert {"subject", "percent", "due_at"} <= set(error["fields"])
    assert "filter" in (await admin.get("/api/v1/tasks", params={"filter": "someday"},
                                        expect=422))["error"]["fields"]
    theirs = await admin.post("/api/v1/tasks", {"subject": "Чужая", "assignee_id": agent2.id}, expect=201)
    await agent.get(f"/api/v1/tasks/{theirs['id']}", expect=404)
    await agent.post(f"/api/v1/tasks/{theirs['id']}/complete", expect=404)
    await admin.post("/api/v1/tasks/999999/complete", expect=404)
