"""Leads (and converting them), users and the caller's profile through the HTTP API."""

from __future__ import annotations

from tests.integration.conftest import PASSWORD, Api, login_api


async def test_lead_crud_and_filters(admin: Api, agent: Api) -> None:
    lead = await admin.post("/api/v1/leads", {"name": "Олег с сайта", "phones": ["8 916 765-43-21"],
                                              "emails": ["oleg@example.ru"], "source": "сайт",
                                              "manager_id": None}, expect=201)
    assert lead["phones"] == ["+79167654321"] and lead["source"] == "сайт"
    path = f"/api/v1/leads/{lead['id']}"
    assert (await agent.get(path))["id"] == lead["id"]  # nobody manages it yet: everybody sees it
    assert (await admin.patch(path, {"manager_id": admin.id}))["manager_id"] == admin.id
    await agent.get(path, expect=404)  # now it is somebody else's
    found = await admin.get("/api/v1/leads", params={"q": "+7 916 765 43 21"})
    assert [x["id"] for x in found["items"]] == [lead["id"]]
    assert (await admin.get("/api/v1/leads", params={"manager": str(admin.id)}))["items"]
    await admin.get("/api/v1/leads", params={"unsorted": "true"})
    assert "unsorted" in (await admin.get("/api/v1/leads", params={"unsorted": "perhaps"},
                                          expect=422))["error"]["fields"]
    error = (await admin.post("/api/v1/leads", {"name": "X", "phones": ["abc"], "emails": ["@@"]},
                              expect=422))["error"]
    assert {"phones", "emails"} <= set(error["fields"])
    await admin.delete(path)
    await admin.get(path, expect=404)


async def test_convert_lead_moves_it_to_a_client(admin: Api) -> None:
    lead = await admin.post("/api/v1/leads", {"name": "Олег", "phones": ["+79167654321"]}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Из лида", "lead_id": lead["id"]}, expect=201)
    note = await admin.post(f"/api/v1/leads/{lead['id']}/notes", {"text": "звонил"}, expect=201)
    converted = await admin.post(f"/api/v1/leads/{lead['id']}/convert", {}, expect=200)
    client = converted["client"]
    assert client["id"] and client["phones"] == ["+79167654321"]
    assert (await admin.get(f"/api/v1/deals/{deal['id']}"))["client_id"] == client["id"]
    timeline = await admin.get(f"/api/v1/clients/{client['id']}/timeline", params={"kind": "note"})
    assert note["id"] in [e["id"] for e in timeline["items"]]
    matches = (await admin.get("/api/v1/identify", params={"phone": "89167654321"}))["matches"]
    assert ("client", client["id"]) in [(m["type"], m["id"]) for m in matches]
    await admin.post("/api/v1/leads/999999/convert", expect=404)
    await admin.post(f"/api/v1/leads/{lead['id']}/convert", raw="{", expect=400)


async def test_users_are_managed_by_admins(admin: Api, agent: Api) -> None:
    body = {"login": "olga", "password": "Olya-secret-2026", "role": "manager", "name": "Ольга",
            "extensions": ["105"]}
    await agent.post("/api/v1/users", body, expect=403)
    created = await admin.post("/api/v1/users", body, expect=201)
    assert created["login"] == "olga" and created["role"] == "manager" and "password" not in created
    assert "password_hash" not in created
    olga = await login_api(admin.client, "olga", "Olya-secret-2026")
    assert (await olga.get("/api/v1/me"))["name"] == "Ольга"
    path = f"/api/v1/users/{created['id']}"
    assert (await admin.patch(path, {"name": "Ольга Петровна"}))["name"] == "Ольга Петровна"
    await agent.patch(path, {"name": "x"}, expect=403)
    listed = await admin.get("/api/v1/users")
    assert {"admin", "agent", "olga"} <= {u["login"] for u in listed["items"]}
    assert (await admin.post("/api/v1/users", body, expect=409))["error"]["code"] == "conflict"
    error = (await admin.post("/api/v1/users", {"login": "", "role": "boss"}, expect=422))["error"]
    assert {"login", "role"} <= set(error["fields"])
    await admin.delete(path, expect=None)
    await olga.get("/api/v1/me", expect=401)
    await admin.get("/api/v1/users/999999", expect=404)


async def test_me_is_the_caller(agent: Api, admin: Api) -> None:
    me = await agent.get("/api/v1/me")
    assert me["id"] == agent.id and me["role"] == "agent" and me["login"] == "agent"
    assert (await admin.get("/api/v1/me"))["role"] == "admin"
    assert PASSWORD not in str(me)
