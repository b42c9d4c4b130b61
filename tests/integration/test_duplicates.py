"""Duplicates (409 ``duplicate`` unless ``allow_duplicate``), the list of likely pairs, merging two
clients and undoing the merge within a day — through the HTTP API on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from hub.crm import importer
from hub.crm.models import ClientMerge, utcnow
from hub.crm.names import name_key
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_web_clients import post_form
from tests.integration.test_web_pages import logged_in

INN = "7707083893"
OTHER_INN = "500100732259"
NORTH = {"name": "ООО «Северный ветер»", "kind": "company", "inn": INN, "phones": ["8 (495) 706-76-60"],
         "emails": ["zakaz@sever.ru"], "tags": ["опт"]}


def names(error: dict[str, object]) -> list[tuple[object, object]]:
    return [(d["type"], d["name"]) for d in error["duplicates"]]  # type: ignore[attr-defined]


def test_name_key_ignores_case_yo_quotes_and_legal_form() -> None:
    assert name_key("ООО «Северный Ветёр»") == name_key('северный ветер') == "северный ветер"
    assert name_key("ИП Фёдоров А. А.") == name_key("Федоров А А")
    assert name_key("АО \"Альфа\"") == "альфа"


async def test_same_inn_phone_or_email_is_a_duplicate(admin: Api) -> None:
    north = await admin.post("/api/v1/clients", NORTH, expect=201)
    for clash in ({"inn": INN}, {"phones": ["+7 495 706 76 60"]}, {"emails": ["ZAKAZ@sever.ru"]}):
        error = (await admin.post("/api/v1/clients", {"name": "Другой", **clash}, expect=409))["error"]
        assert error["code"] == "duplicate" and error["may_override"] is True
        assert error["duplicates"] == [{"type": "client", "id": north["id"], "name": "ООО «Северный ветер»",
                                        "visible": True, "client_id": north["id"]}]
    lead = (await admin.post("/api/v1/leads", {"name": "Лид", "phones": ["84957067660"]},
                             expect=409))["error"]
    assert names(lead) == [("client", "ООО «Северный ветер»")]
    contact = await admin.post("/api/v1/contacts", {"client_id": north["id"], "name": "Секретарь",
                                                    "phones": ["+74957067660"]}, expect=201)
    assert contact["phones"] == ["+74957067660"]  # the client's own switchboard is no duplicate
    other = await admin.post("/api/v1/clients", {"name": "Третий"}, expect=201)
    error = (await admin.post("/api/v1/contacts", {"client_id": other["id"], "name": "Секретарь",
                                                   "phones": ["+74957067660"]}, expect=409))["error"]
    assert ("client", "ООО «Северный ветер»") in names(error) and ("contact", "Секретарь") in names(error)


async def test_allow_duplicate_saves_and_edits_are_checked_too(admin: Api, manager: Api) -> None:
    north = await admin.post("/api/v1/clients", NORTH, expect=201)
    twin = await manager.post("/api/v1/clients", {"name": "Северный ветер", "inn": INN,
                                                  "allow_duplicate": True}, expect=201)
    assert twin["inn"] == INN
    listed = await admin.get("/api/v1/identify", params={"phone": "84957067660"})
    assert [m["id"] for m in listed["matches"]] == [north["id"]]
    plain = await admin.post("/api/v1/clients", {"name": "Южный", "phones": ["+74950000001"]}, expect=201)
    path = f"/api/v1/clients/{plain['id']}"
    error = (await admin.patch(path, {"emails": ["zakaz@sever.ru"]}, expect=409))["error"]
    assert names(error) == [("client", "ООО «Северный ветер»")]
    assert (await admin.patch(path, {"phones": ["+74950000001"], "comment": "тот же"}))["comment"] == "тот же"
    await admin.patch(path, {"inn": INN, "allow_duplicate": True})
    lead = await admin.post("/api/v1/leads", {"name": "Лид", "emails": ["lead@x.ru"]}, expect=201)
    await admin.patch(f"/api/v1/leads/{lead['id']}", {"emails": ["lead@x.ru"]})  # itself: no duplicate
    await admin.patch(f"/api/v1/leads/{lead['id']}", {"phones": ["+74957067660"]}, expect=409)


async def test_an_agent_cannot_override_and_sees_no_hidden_name(admin: Api, agent: Api) -> None:
    north = await admin.post("/api/v1/clients", {**NORTH, "manager_id": admin.id}, expect=201)
    error = (await agent.post("/api/v1/clients", {"name": "Мой", "phones": ["+74957067660"]},
                              expect=409))["error"]
    assert error["may_override"] is False
    assert north["id"]
    assert error["duplicates"] == [{"type": "client", "id": None, "name": None, "visible": False,
                                    "client_id": None}]
    await agent.post("/api/v1/clients", {"name": "Мой", "phones": ["+74957067660"], "allow_duplicate": True},
                     expect=403)
    mine = await agent.post("/api/v1/clients", {"name": "Мой", "manager_id": agent.id}, expect=201)
    error = (await agent.post("/api/v1/clients", {"name": "Ещё", "inn": None, "emails": []}, expect=201))
    assert error["name"] == "Ещё"
    await agent.patch(f"/api/v1/clients/{mine['id']}", {"inn": INN}, expect=409)
    # a duplicate saved before (by a manager) does not block its manager's every edit: only new values count
    twin = await admin.post("/api/v1/clients", {"name": "Двойник", "phones": ["+74957067660"], "inn": INN,
                                                "manager_id": agent.id, "allow_duplicate": True}, expect=201)
    changed = await agent.patch(f"/api/v1/clients/{twin['id']}", {"phones": ["+74957067660", "+74950000009"],
                                                                  "inn": INN, "region": "Тверь"})
    assert changed["region"] == "Тверь"


async def test_the_list_finds_pairs_and_staff_only(admin: Api, agent: Api) -> None:
    a = await admin.post("/api/v1/clients", NORTH, expect=201)
    b = await admin.post("/api/v1/clients", {"name": "Северный Ветёр", "phones": ["+74957067660"],
                                             "allow_duplicate": True}, expect=201)
    c = await admin.post("/api/v1/clients", {"name": "АО Альфа", "inn": OTHER_INN}, expect=201)
    d = await admin.post("/api/v1/clients", {"name": "Бета", "inn": OTHER_INN, "emails": ["b@b.ru"],
                                             "allow_duplicate": True}, expect=201)
    await admin.post("/api/v1/clients", {"name": "Одинокий"}, expect=201)
    groups = (await admin.get("/api/v1/duplicates", params={"type": "client"}))["items"]
    found = {(g["reason"], tuple(x["id"] for x in g["clients"])) for g in groups}
    assert ("phone", (a["id"], b["id"])) in found and ("inn", (c["id"], d["id"])) in found
    assert ("name", (a["id"], b["id"])) not in found  # the same pair is listed once, by its first reason
    assert all(len(g["clients"]) == 2 for g in groups)
    await admin.get("/api/v1/duplicates", params={"type": "deal"}, expect=422)
    await agent.get("/api/v1/duplicates", expect=403)


async def test_merge_moves_everything_and_undo_restores(admin: Api, agent: Api) -> None:
    kept = await admin.post("/api/v1/clients", {**NORTH, "comment": ""}, expect=201)
    other = await admin.post("/api/v1/clients", {
        "name": "Северный ветер (дубль)", "inn": OTHER_INN, "phones": ["+74957067660", "+79161112233"],
        "comment": "важный", "tags": ["розница"], "allow_duplicate": True}, expect=201)
    contact = await admin.post("/api/v1/contacts", {"client_id": other["id"], "name": "Иван"}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Поставка", "client_id": other["id"]}, expect=201)
    note = await admin.post(f"/api/v1/clients/{other['id']}/notes", {"text": "звонил"}, expect=201)
    task = await admin.post("/api/v1/tasks", {"subject": "Перезвонить", "client_id": other["id"]}, expect=201)
    path = f"/api/v1/clients/{kept['id']}/merge"
    await agent.post(path, {"other_id": other["id"]}, expect=403)
    await admin.post(path, {"other_id": kept["id"]}, expect=422)
    await admin.post(path, {"other_id": other["id"], "fields": {"name": "third"}}, expect=422)

    merged = await admin.post(path, {"other_id": other["id"], "fields": {"inn": "other"}})
    client = merged["client"]
    assert client["name"] == "ООО «Северный ветер»" and client["inn"] == OTHER_INN
    assert client["comment"] == "важный"  # empty here: the other's value
    assert sorted(client["phones"]) == ["+74957067660", "+79161112233"]
    assert client["tags"] == ["опт", "розница"]
    await admin.get(f"/api/v1/clients/{other['id']}", expect=404)
    assert (await admin.get(f"/api/v1/contacts/{contact['id']}"))["client_id"] == kept["id"]
    assert (await admin.get(f"/api/v1/deals/{deal['id']}"))["client_id"] == kept["id"]
    assert (await admin.get(f"/api/v1/tasks/{task['id']}"))["client_id"] == kept["id"]
    entries = (await admin.get(f"/api/v1/clients/{kept['id']}/timeline"))["items"]
    assert note["id"] in [e["id"] for e in entries]
    assert any(e["kind"] == "system" and e["payload"].get("event") == "client_merged" for e in entries)

    undone = await admin.post(f"/api/v1/merges/{merged['merge_id']}/undo")
    back = undone["client"]
    assert back["id"] == other["id"] and back["name"] == "Северный ветер (дубль)"
    assert sorted(back["phones"]) == ["+74957067660", "+79161112233"] and back["tags"] == ["розница"]
    assert undone["kept"]["inn"] == INN and undone["kept"]["comment"] == ""
    assert undone["kept"]["phones"] == ["+74957067660"] and undone["kept"]["tags"] == ["опт"]
    assert (await admin.get(f"/api/v1/contacts/{contact['id']}"))["client_id"] == other["id"]
    assert (await admin.get(f"/api/v1/deals/{deal['id']}"))["client_id"] == other["id"]
    assert (await admin.get(f"/api/v1/tasks/{task['id']}"))["client_id"] == other["id"]
    entries = (await admin.get(f"/api/v1/clients/{other['id']}/timeline"))["items"]
    assert note["id"] in [e["id"] for e in entries]
    assert (await admin.post(f"/api/v1/merges/{merged['merge_id']}/undo", expect=409))["error"]["code"] \
        == "conflict"


async def test_undo_after_a_day_is_refused(admin: Api, app: web.Application) -> None:
    kept = await admin.post("/api/v1/clients", NORTH, expect=201)
    other = await admin.post("/api/v1/clients", {"name": "Дубль", "inn": INN, "allow_duplicate": True},
                             expect=201)
    merged = await admin.post(f"/api/v1/clients/{kept['id']}/merge", {"other_id": other["id"]})
    async with app[DB].transaction() as s:
        await s.execute(update(ClientMerge).where(ClientMerge.id == merged["merge_id"])
                        .values(merged_at=utcnow() - timedelta(days=1, minutes=1)))
    error = (await admin.post(f"/api/v1/merges/{merged['merge_id']}/undo", expect=409))["error"]
    assert error["code"] == "undo_expired"
    await admin.get(f"/api/v1/clients/{other['id']}", expect=404)
    await admin.post("/api/v1/merges/999999/undo", expect=404)


async def test_an_import_reports_a_duplicate_row_and_imports_the_rest(admin: Api, app: web.Application,
                                                                      tmp_path: Path) -> None:
    north = await admin.post("/api/v1/clients", NORTH, expect=201)
    path = tmp_path / "clients.csv"
    path.write_text("name,phones,emails\nДубль по телефону,8 495 706-76-60,\nДубль по почте,,zakaz@SEVER.ru\n"
                    "Новый,+7 495 111-22-33,new@new.ru\n", encoding="utf-8")
    actor = await importer.default_actor(app[DB])
    result = await importer.import_clients(app[DB], path, actor)
    assert result.imported == 1
    assert [(bad.line, bad.reason) for bad in result.bad] == [
        (2, f"duplicate of client {north['id']} (ООО «Северный ветер»)"),
        (3, f"duplicate of client {north['id']} (ООО «Северный ветер»)")]


async def test_a_lead_is_merged_into_an_existing_client(admin: Api, agent: Api) -> None:
    north = await admin.post("/api/v1/clients", NORTH, expect=201)
    lead = await admin.post("/api/v1/leads", {"name": "Звонок с сайта", "allow_duplicate": True,
                                              "phones": ["+74957067660", "+79160001122"]}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Заявка", "lead_id": lead["id"]}, expect=201)
    note = await admin.post(f"/api/v1/leads/{lead['id']}/notes", {"text": "просили счёт"}, expect=201)
    path = f"/api/v1/leads/{lead['id']}/merge"
    await agent.post(path, {"client_id": north["id"]}, expect=403)
    await admin.post(path, {"client_id": 999999}, expect=422)
    client = (await admin.post(path, {"client_id": north["id"]}))["client"]
    assert sorted(client["phones"]) == ["+74957067660", "+79160001122"]
    assert (await admin.get(f"/api/v1/deals/{deal['id']}"))["client_id"] == north["id"]
    entries = (await admin.get(f"/api/v1/clients/{north['id']}/timeline"))["items"]
    assert note["id"] in [e["id"] for e in entries]
    assert any(e["payload"].get("event") == "lead_merged" for e in entries)
    merged = await admin.get(f"/api/v1/leads/{lead['id']}")
    assert merged["converted_client_id"] == north["id"] and merged["phones"] == []
    await admin.post(path, {"client_id": north["id"]}, expect=409)


async def test_the_forms_warn_before_saving_a_duplicate(client: TestClient, manager: Api, agent: Api) -> None:
    north = await manager.post("/api/v1/clients", {**NORTH, "manager_id": manager.id}, expect=201)
    other = await manager.post("/api/v1/clients", {"name": "Южный", "emails": ["south@s.ru"]}, expect=201)
    contact = await manager.post("/api/v1/contacts", {"client_id": other["id"], "name": "Ольга"}, expect=201)
    csrf = await logged_in(client, manager)
    cases = (("/leads", {"name": "Лид", "source": "", "comment": "", "phones": "84957067660"}),
             (f"/clients/{other['id']}/contacts", {"name": "Пётр", "emails": "zakaz@sever.ru"}),
             (f"/clients/{other['id']}/contacts/{contact['id']}",
              {"name": "Ольга", "phones": "+7 495 706 76 60"}),
             (f"/clients/{other['id']}", {"section": "requisites", "full_name": "", "inn": INN, "kpp": "",
                                          "okpo": ""}))
    for path, form in cases:
        _, text = await post_form(client, path, form, csrf, status=409)
        assert "Уже есть:" in text and f'<a href="/clients/{north["id"]}"' in text
        assert "всё равно сохранить" in text
        location, _ = await post_form(client, path, {**form, "allow_duplicate": "1"}, csrf)
        assert location
    assert (await manager.get(f"/api/v1/clients/{other['id']}"))["inn"] == INN
    assert (await manager.get(f"/api/v1/contacts/{contact['id']}"))["phones"] == ["+74957067660"]

    client.session.cookie_jar.clear()
    csrf = await logged_in(client, agent)
    _, text = await post_form(client, "/leads", {"name": "Лид", "phones": "84957067660"}, csrf, status=409)
    assert "клиент, которого вы не видите" in text and "Северный" not in text
    assert "всё равно сохранить" not in text
    await post_form(client, "/leads", {"name": "Лид", "phones": "84957067660", "allow_duplicate": "1"}, csrf,
                    status=403)
