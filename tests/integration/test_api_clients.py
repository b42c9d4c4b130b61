"""Clients, contact persons and identification through the HTTP API, with hostile input."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MAX_BODY, Api

VALID_INN = "7707083893"
COMPANY = {
    "name": "ООО «Ромашка»", "kind": "company",
    "full_name": "Общество с ограниченной ответственностью «Ромашка»",
    "inn": VALID_INN, "phones": ["8 (916) 123-45-67"], "emails": ["Info@Romashka.ru"],
    "telegram": ["@romashka_bot"], "tags": ["опт"], "custom": {},
}


async def test_client_crud_happy_path(admin: Api) -> None:
    created = await admin.post("/api/v1/clients", {**COMPANY, "manager_id": admin.id}, expect=201)
    assert created["id"] > 0 and created["name"] == "ООО «Ромашка»" and created["inn"] == VALID_INN
    assert created["phones"] == ["+79161234567"]
    assert created["emails"] == ["info@romashka.ru"]
    assert created["tags"] == ["опт"] and created["manager_id"] == admin.id
    path = f"/api/v1/clients/{created['id']}"
    assert await admin.get(path) == created
    changed = await admin.patch(path, {"comment": "звонить после обеда", "phones": ["+7 916 000 00 01"]})
    assert changed["comment"] == "звонить после обеда" and changed["phones"] == ["+79160000001"]
    assert changed["name"] == created["name"]  # PATCH leaves other fields alone
    await admin.delete(path)
    await admin.get(path, expect=404)


async def test_client_list_filters_and_cursor(admin: Api, agent: Api) -> None:
    ids = []
    for i in range(5):
        body = {"name": f"Клиент {i}", "tags": ["vip"] if i % 2 else [],
                "manager_id": agent.id if i < 2 else admin.id}
        ids.append((await admin.post("/api/v1/clients", body, expect=201))["id"])
    await admin.post("/api/v1/clients", {"name": "ИП Петров", "phones": ["+79035550011"]}, expect=201)
    first = await admin.get("/api/v1/clients", params={"limit": "4"})
    assert len(first["items"]) == 4 and first["next_cursor"]
    rest = await admin.get("/api/v1/clients", params={"limit": "4", "cursor": first["next_cursor"]})
    assert rest["next_cursor"] is None
    seen = [c["id"] for c in first["items"] + rest["items"]]
    assert len(seen) == len(set(seen)) == 6
    vip = await admin.get("/api/v1/clients", params={"tag": "vip"})
    assert {c["id"] for c in vip["items"]} == {ids[1], ids[3]}
    managed = await admin.get("/api/v1/clients", params={"manager": str(agent.id)})
    assert {c["id"] for c in managed["items"]} == {ids[0], ids[1]}
    by_phone = await admin.get("/api/v1/clients", params={"q": "8 903 555-00-11"})
    assert [c["name"] for c in by_phone["items"]] == ["ИП Петров"]
    # An agent lists only the clients they manage.
    mine = await agent.get("/api/v1/clients")
    assert {c["id"] for c in mine["items"]} == {ids[0], ids[1]}


@pytest.mark.parametrize("params, field", [
    ({"limit": "abc"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "100000"}, "limit"),
    ({"manager": "x"}, "manager"), ({"manager": "-1"}, "manager"), ({"cursor": "not-a-cursor"}, "cursor"),
    ({"q": "a\x00b"}, "q"),
])
async def test_bad_query_parameters_are_422_naming_the_field(admin: Api, params: dict[str, str],
                                                             field: str) -> None:
    body = await admin.get("/api/v1/clients", params=params, expect=422)
    assert field in body["error"]["fields"]


@pytest.mark.parametrize("body, field", [
    ({"name": "X", "phones": ["12"]}, "phones"),
    ({"name": "X", "emails": ["not-an-email"]}, "emails"),
    ({"name": "X", "inn": "7707083890"}, "inn"),
    ({"name": "X", "inn": "12345"}, "inn"),
    ({"name": ""}, "name"),
    ({"kind": "company"}, "name"),
    ({"name": "X", "kind": "alien"}, "kind"),
    ({"name": "X", "manager_id": "boss"}, "manager_id"),
])
async def test_invalid_client_fields_are_422_with_field_names(admin: Api, body: dict, field: str) -> None:
    error = (await admin.post("/api/v1/clients", body, expect=422))["error"]
    assert error["code"] == "validation_failed" and field in error["fields"], error
    assert error["fields"][field]


HOSTILE = [
    'Кавычки "двойные" и \'одинарные\'',
    "'; DROP TABLE clients;--",
    "<script>alert(1)</script>",
    "Эмодзи 🎉👩‍💻",
    "обратный \\ слэш и %s %d {name}",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_strings_round_trip(admin: Api, text: str) -> None:
    created = await admin.post("/api/v1/clients", {"name": text[:300], "comment": text}, expect=201)
    fetched = await admin.get(f"/api/v1/clients/{created['id']}")
    assert fetched["name"] == text[:300] and fetched["comment"] == text
    found = await admin.get("/api/v1/clients", params={"q": text[:50]})
    assert created["id"] in {c["id"] for c in found["items"]}
    assert (await admin.get("/api/v1/clients"))["items"]  # the table is still there


async def test_long_and_nul_strings_are_stored_or_refused_never_500(admin: Api) -> None:
    long_text = "я" * 10_000
    response = await admin.post("/api/v1/clients", {"name": long_text}, expect=None)
    assert response["error"]["fields"]["name"]  # a name that long is refused
    created = await admin.post("/api/v1/clients", {"name": "Длинный комментарий", "comment": long_text},
                               expect=None)
    if "error" in created:
        assert created["error"]["fields"]["comment"]
    else:
        assert (await admin.get(f"/api/v1/clients/{created['id']}"))["comment"] == long_text
    for body in ({"name": "a\x00b"}, {"name": "ok", "comment": "\x00"}, {"name": "ok", "phones": ["\x00"]},
                 {"name": "ok", "emails": ["a\x00@b.ru"]}, {"name": "ok", "tags": ["\x00"]}):
        error = (await admin.post("/api/v1/clients", body, expect=422))["error"]
        assert error["fields"], body


async def test_malformed_and_non_object_bodies(admin: Api) -> None:
    for raw in ("{", "{'name': 'x'}", "\xff\xfe", "[1, 2"):
        body = await admin.post("/api/v1/clients", raw=raw.encode("latin-1"), expect=400)
        assert body["error"]["code"] == "bad_request"
    for raw in ("[]", "42", '"name"', "null", ""):
        body = await admin.post("/api/v1/clients", raw=raw, expect=422)
        assert body["error"]["fields"] == {"body": "must be a JSON object"}
    await admin.patch("/api/v1/clients/1", raw="{", expect=400)


async def test_body_over_the_limit_is_413_json(admin: Api) -> None:
    big = json.dumps({"name": "x", "comment": "я" * MAX_BODY})
    body = await admin.post("/api/v1/clients", raw=big, expect=413)
    assert body["error"]["code"] == "too_large"


async def test_unknown_ids_are_404(admin: Api) -> None:
    for path in ("/api/v1/clients/999999", "/api/v1/clients/abc", "/api/v1/clients/0",
                 "/api/v1/clients/99999999999999999999999", "/api/v1/contacts/424242"):
        body = await admin.get(path, expect=404)
        assert body["error"]["code"] == "not_found"
    await admin.patch("/api/v1/clients/999999", {"name": "x"}, expect=404)
    await admin.delete("/api/v1/clients/999999", expect=404)
    assert (await admin.get("/api/v1/no-such-thing", expect=404))["error"]["code"] == "not_found"


async def test_method_not_allowed_is_json(admin: Api) -> None:
    body = await admin.call("PUT", "/api/v1/clients", {"name": "x"}, expect=405)
    assert body["error"]["code"] == "method_not_allowed"


async def test_agents_cannot_see_other_managers_clients(admin: Api, agent: Api, agent2: Api) -> None:
    theirs = await admin.post("/api/v1/clients", {"name": "Чужой", "manager_id": agent2.id}, expect=201)
    mine = await admin.post("/api/v1/clients", {"name": "Свой", "manager_id": agent.id}, expect=201)
    await agent.get(f"/api/v1/clients/{theirs['id']}", expect=404)
    await agent.patch(f"/api/v1/clients/{theirs['id']}", {"name": "Мой"}, expect=404)
    await agent.delete(f"/api/v1/clients/{theirs['id']}", expect=404)
    assert (await agent.get(f"/api/v1/clients/{mine['id']}"))["name"] == "Свой"
    assert (await agent.patch(f"/api/v1/clients/{mine['id']}", {"comment": "ок"}))["comment"] == "ок"


async def test_an_agent_with_a_deal_on_anothers_client_cannot_take_the_client(admin: Api, agent: Api,
                                                                              agent2: Api) -> None:
    """Security finding 7: one deal on another agent's client let an agent make himself its manager."""
    theirs = await admin.post("/api/v1/clients", {"name": "Чужой", "manager_id": agent2.id}, expect=201)
    await admin.post("/api/v1/deals", {"title": "Сделка агента", "client_id": theirs["id"],
                                       "responsible_id": agent.id}, expect=201)
    assert (await agent.get(f"/api/v1/clients/{theirs['id']}"))["name"] == "Чужой"  # he sees it
    refused = await agent.patch(f"/api/v1/clients/{theirs['id']}", {"manager_id": agent.id}, expect=403)
    assert "manager" in refused["error"]["message"]
    assert (await admin.get(f"/api/v1/clients/{theirs['id']}"))["manager_id"] == agent2.id
    # the client's own manager hands it on; a manager or admin reassigns
    await agent2.patch(f"/api/v1/clients/{theirs['id']}", {"manager_id": agent.id})
    await admin.patch(f"/api/v1/clients/{theirs['id']}", {"manager_id": agent2.id})
    await agent.patch(f"/api/v1/clients/{theirs['id']}", {"comment": "звонил"})  # other fields: as before


async def test_contacts_crud_and_list_by_client(admin: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Вектор"}, expect=201)
    contact = await admin.post("/api/v1/contacts", {
        "client_id": client["id"], "name": "Сергей Иванович", "position": "директор",
        "phones": ["+7 495 123-45-67"], "emails": ["sergey@vector.ru"], "telegram": ["@sergey"],
    }, expect=201)
    assert contact["client_id"] == client["id"] and contact["phones"] == ["+74951234567"]
    path = f"/api/v1/contacts/{contact['id']}"
    assert (await admin.get(path))["name"] == "Сергей Иванович"
    assert (await admin.patch(path, {"position": "владелец"}))["position"] == "владелец"
    listed = await admin.get("/api/v1/contacts", params={"client": str(client["id"])})
    assert [c["id"] for c in listed["items"]] == [contact["id"]]
    error = (await admin.post("/api/v1/contacts", {"client_id": client["id"], "name": "X",
                                                   "emails": ["bad@"]}, expect=422))["error"]
    assert "emails" in error["fields"]
    await admin.post("/api/v1/contacts", {"client_id": 999999, "name": "X"}, expect=None)
    await admin.delete(path)
    await admin.get(path, expect=404)


async def test_identify_any_phone_format(admin: Api) -> None:
    client = await admin.post("/api/v1/clients", {"name": "ООО Ромашка", "phones": ["+79161234567"]},
                              expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Поставка", "client_id": client["id"], "amount": 1500},
                            expect=201)
    for number in ("8 (916) 123-45-67", "+7 916 123 45 67", "9161234567"):
        body = await admin.get("/api/v1/identify", params={"phone": number})
        assert len(body["matches"]) == 1, number
        match = body["matches"][0]
        assert match["type"] == "client" and match["id"] == client["id"] and match["name"] == "ООО Ромашка"
        assert match["client_id"] == client["id"]
        assert [d["id"] for d in match["open_deals"]] == [deal["id"]]
        assert set(match["open_deals"][0]) >= {"id", "title", "stage", "amount"}
    assert (await admin.get("/api/v1/identify", params={"phone": "+79990000000"}))["matches"] == []
    assert "phone" in (await admin.get("/api/v1/identify", expect=422))["error"]["fields"]


async def test_identify_by_email_and_telegram(admin: Api) -> None:
    lead = await admin.post("/api/v1/leads", {"name": "Лид", "emails": ["lead@example.ru"],
                                              "telegram": ["@lead_user"]}, expect=201)
    by_mail = await admin.get("/api/v1/identify", params={"email": "LEAD@example.ru"})
    assert [(m["type"], m["id"]) for m in by_mail["matches"]] == [("lead", lead["id"])]
    by_tg = await admin.get("/api/v1/identify", params={"telegram": "@lead_user"})
    assert [(m["type"], m["id"]) for m in by_tg["matches"]] == [("lead", lead["id"])]


async def test_requests_without_token_are_401(client: TestClient) -> None:
    for method, path in (("GET", "/api/v1/clients"), ("POST", "/api/v1/clients"),
                         ("GET", "/api/v1/clients/1"),
                         ("PATCH", "/api/v1/clients/1"), ("DELETE", "/api/v1/clients/1"),
                         ("GET", "/api/v1/identify?phone=1")):
        response = await client.request(method, path, json={"name": "x"})
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "unauthorized"
