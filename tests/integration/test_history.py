"""The history of changes (issue 15): every change of a client's, contact's, lead's, deal's or task's
field is kept with who, when, before → after, in the change's own unit of work; the API reads it
newest first for whoever may read the record."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_api_deals import a_client, default_stages
from tests.integration.test_web_pages import logged_in, page


def changes(history: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [(c["field"], c["before"], c["after"]) for c in history]


async def test_deal_changes_are_kept_with_who_and_before_after(manager: Api, agent: Api) -> None:
    client = await a_client(manager)
    deal = await manager.post("/api/v1/deals", {
        "title": "Окна в офис", "client_id": client["id"], "amount": 150000, "tags": ["опт"],
        "responsible_id": agent.id}, expect=201)
    path = f"/api/v1/deals/{deal['id']}"
    created = await manager.get(f"{path}/history")
    assert changes(created) == [("created", None, "Окна в офис")]
    assert created[0]["user"] == {"id": manager.id, "name": "Мария Менеджерова"} and created[0]["at"]

    await manager.patch(path, {"amount": "175 000,50", "title": "Окна и двери", "tags": ["опт", "срочно"],
                               "source": "Сайт", "responsible_id": manager.id})
    stages = await default_stages(manager)
    await manager.post(f"{path}/move", {"stage_id": stages[1]["id"], "result": "Отправили КП"})

    history = await manager.get(f"{path}/history")
    moved, edited = history[0], history[1:6]
    assert changes([moved]) == [("stage", {"id": stages[0]["id"], "name": stages[0]["name"]},
                                 {"id": stages[1]["id"], "name": stages[1]["name"]})]
    assert sorted(changes(edited)) == sorted([
        ("title", "Окна в офис", "Окна и двери"),
        ("amount", "150000.00", "175000.50"),
        ("responsible", {"id": agent.id, "name": "Иван Агентов"},
         {"id": manager.id, "name": "Мария Менеджерова"}),
        ("tags", ["опт"], ["опт", "срочно"]),
        ("source", None, "Сайт"),
    ])
    assert {c["user"]["id"] for c in history} == {manager.id}
    assert history[-1]["field"] == "created" and len(history) == 7
    assert [c["at"] for c in history] == sorted((c["at"] for c in history), reverse=True)


async def test_nothing_changed_leaves_no_entry(admin: Api) -> None:
    client = await a_client(admin, phones=["+7 916 123-45-67"], tags=["vip"])
    deal = await admin.post("/api/v1/deals", {"title": "Трубы", "client_id": client["id"], "amount": 10,
                                              "tags": ["a"]}, expect=201)
    await admin.patch(f"/api/v1/deals/{deal['id']}", {"title": "Трубы", "amount": "10.00", "tags": ["a"],
                                                      "source": ""})
    await admin.patch(f"/api/v1/clients/{client['id']}", {"name": "ООО Ромашка", "phones": ["89161234567"],
                                                          "tags": ["vip"]})
    assert [c["field"] for c in await admin.get(f"/api/v1/deals/{deal['id']}/history")] == ["created"]
    assert [c["field"] for c in await admin.get(f"/api/v1/clients/{client['id']}/history")] == ["created"]
    # a refused change leaves none either (one unit of work)
    await admin.patch(f"/api/v1/deals/{deal['id']}", {"title": "Новое", "amount": "много"}, expect=422)
    assert len(await admin.get(f"/api/v1/deals/{deal['id']}/history")) == 1


async def test_who_may_not_see_the_record_gets_404(admin: Api, agent: Api, agent2: Api) -> None:
    client = await a_client(admin, manager_id=agent.id)
    deal = await admin.post("/api/v1/deals", {"title": "Чужая", "client_id": client["id"],
                                              "responsible_id": agent2.id}, expect=201)
    contact = await admin.post("/api/v1/contacts", {"client_id": client["id"], "name": "Ольга"}, expect=201)
    task = await admin.post("/api/v1/tasks", {"subject": "Позвонить", "assignee_id": agent2.id}, expect=201)
    lead = await admin.post("/api/v1/leads", {"name": "Лид", "manager_id": agent2.id}, expect=201)
    await agent.get(f"/api/v1/deals/{deal['id']}", expect=404)
    for path in (f"/api/v1/deals/{deal['id']}/history", f"/api/v1/tasks/{task['id']}/history",
                 f"/api/v1/leads/{lead['id']}/history", "/api/v1/deals/999999/history"):
        error = await agent.get(path, expect=404)
        assert error["error"]["code"] == "not_found"
    for path in (f"/api/v1/deals/{deal['id']}/history", f"/api/v1/tasks/{task['id']}/history",
                 f"/api/v1/leads/{lead['id']}/history"):
        assert [c["field"] for c in await agent2.get(path)] == ["created"]
    # the client is the agent's own: its history and its contact person's are readable
    assert await agent.get(f"/api/v1/clients/{client['id']}/history")
    assert await agent.get(f"/api/v1/contacts/{contact['id']}/history")
    # (agent2 sees the client through the deal they are responsible for; not another of agent's)
    assert await agent2.get(f"/api/v1/clients/{client['id']}/history")
    other = await a_client(admin, manager_id=agent.id)
    other_contact = await admin.post("/api/v1/contacts", {"client_id": other["id"], "name": "Ия"}, expect=201)
    await agent2.get(f"/api/v1/clients/{other['id']}/history", expect=404)
    await agent2.get(f"/api/v1/contacts/{other_contact['id']}/history", expect=404)
    await agent.get("/api/v1/deals/0/history", expect=404)


async def test_names_are_kept_as_they_read_then(admin: Api, agent: Api) -> None:
    client = await a_client(admin)
    deal = await admin.post("/api/v1/deals", {"title": "t", "client_id": client["id"]}, expect=201)
    await admin.patch(f"/api/v1/deals/{deal['id']}", {"responsible_id": agent.id})
    await admin.patch(f"/api/v1/users/{agent.id}", {"name": "Иван Переименованный"})
    await admin.patch(f"/api/v1/users/{admin.id}", {"name": "Анна Новая"})
    change = (await admin.get(f"/api/v1/deals/{deal['id']}/history"))[0]
    assert change["after"] == {"id": agent.id, "name": "Иван Агентов"}
    assert change["user"] == {"id": admin.id, "name": "Анна Админова"}


async def test_client_contact_lead_and_task_fields(admin: Api, agent: Api) -> None:
    client = await a_client(admin, phones=["+79161234567"], custom={})
    await admin.patch(f"/api/v1/clients/{client['id']}", {
        "phones": ["+79161234567", "+74951234567"], "region": "Москва", "inn": "7707083893",
        "manager_id": agent.id})
    found = {c["field"]: (c["before"], c["after"])
             for c in await admin.get(f"/api/v1/clients/{client['id']}/history")}
    assert found["phones"] == (["+79161234567"], ["+79161234567", "+74951234567"])
    assert found["region"] == (None, "Москва") and found["inn"] == (None, "7707083893")
    assert found["manager"] == ({"id": admin.id, "name": "Анна Админова"},
                                {"id": agent.id, "name": "Иван Агентов"})

    contact = await admin.post("/api/v1/contacts", {"client_id": client["id"], "name": "Ольга"}, expect=201)
    await admin.patch(f"/api/v1/contacts/{contact['id']}", {"position": "Бухгалтер", "emails": ["o@x.ru"]})
    assert sorted(changes(await admin.get(f"/api/v1/contacts/{contact['id']}/history"))[:2]) == [
        ("emails", None, ["o@x.ru"]), ("position", None, "Бухгалтер")]

    task = await admin.post("/api/v1/tasks", {"subject": "Позвонить", "assignee_id": admin.id}, expect=201)
    await admin.patch(f"/api/v1/tasks/{task['id']}", {"assignee_id": agent.id, "percent": 50})
    await admin.post(f"/api/v1/tasks/{task['id']}/complete")
    history = changes(await admin.get(f"/api/v1/tasks/{task['id']}/history"))
    assert sorted(history[:2]) == [("done", False, True), ("percent", 50, 100)]
    assert sorted(history[2:4]) == [
        ("assignee", {"id": admin.id, "name": "Анна Админова"}, {"id": agent.id, "name": "Иван Агентов"}),
        ("percent", 0, 50)]

    lead = await admin.post("/api/v1/leads", {"name": "Пётр", "source": "Сайт"}, expect=201)
    deal = await admin.post("/api/v1/deals", {"title": "Для лида", "lead_id": lead["id"]}, expect=201)
    await admin.patch(f"/api/v1/leads/{lead['id']}", {"source": "Выставка"})
    converted = await admin.post(f"/api/v1/leads/{lead['id']}/convert", {})
    new_client = {"id": converted["client"]["id"], "name": "Пётр"}
    lead_history = changes(await admin.get(f"/api/v1/leads/{lead['id']}/history"))
    assert lead_history[:2] == [("converted_client", None, new_client), ("source", "Сайт", "Выставка")]
    assert changes(await admin.get(f"/api/v1/deals/{deal['id']}/history"))[0] == ("client", None, new_client)
    assert changes(await admin.get(f"/api/v1/clients/{new_client['id']}/history")) == [
        ("created", None, "Пётр")]


async def test_paging_and_a_deleted_record_takes_its_history_along(admin: Api) -> None:
    client = await a_client(admin)
    deal = await admin.post("/api/v1/deals", {"title": "t0", "client_id": client["id"]}, expect=201)
    path = f"/api/v1/deals/{deal['id']}"
    for n in range(1, 6):
        await admin.patch(path, {"title": f"t{n}"})
    first = await admin.get(f"{path}/history", params={"limit": "2"})
    assert [c["after"] for c in first] == ["t5", "t4"]
    rest = await admin.get(f"{path}/history", params={"before_id": str(first[-1]["id"])})
    assert [c["after"] for c in rest] == ["t3", "t2", "t1", "t0"]
    await admin.get(f"{path}/history", params={"limit": "0"}, expect=422)
    await admin.get(f"{path}/history", params={"before_id": "999999"}, expect=422)

    await admin.delete(path)
    await admin.get(f"{path}/history", expect=404)
    # SQLite may give the deleted row's id to the next deal: it starts with a history of its own
    again = await admin.post("/api/v1/deals", {"title": "new", "client_id": client["id"]}, expect=201)
    assert changes(await admin.get(f"/api/v1/deals/{again['id']}/history")) == [("created", None, "new")]


# --- the cards ----------------------------------------------------------------------------------------


async def test_the_cards_show_the_history_in_the_readers_language(client: TestClient, admin: Api,
                                                                  agent: Api) -> None:
    customer = await a_client(admin, custom={})
    await admin.patch(f"/api/v1/clients/{customer['id']}", {"region": "Москва", "kind": "person"})
    deal = await admin.post("/api/v1/deals", {"title": "Окна", "client_id": customer["id"], "amount": 150000},
                            expect=201)
    await admin.patch(f"/api/v1/deals/{deal['id']}", {"amount": "175000.5", "tags": ["опт", "срочно"]})
    await logged_in(client, admin)

    html = await page(client, f"/clients/{customer['id']}?tab=history")
    assert "История изменений" in html and "Регион" in html and "Москва" in html
    assert "Организация" in html and "Физлицо" in html  # the kind by its name, not its code
    assert "Анна Админова" in html and "Создание записи" in html

    fragment = await page(client, f"/deals/{deal['id']}/history", headers={"HX-Request": "true"})
    assert "<html" not in fragment
    amount = fragment.split('data-field="amount"', 1)[1].split("</li>", 1)[0]
    assert "Сумма" in amount and "150\xa0000,00\xa0₽" in amount and "175\xa0000,50\xa0₽" in amount
    assert "срочно" in fragment.split('data-field="tags"', 1)[1].split("</li>", 1)[0]
    card = await page(client, f"/deals/{deal['id']}")
    assert f'hx-get="/deals/{deal["id"]}/history"' in card and "История изменений" in card
    whole = await page(client, f"/deals/{deal['id']}/history")
    assert "<html" in whole and "Сумма" in whole and "К карточке" in whole

    await admin.patch(f"/api/v1/users/{admin.id}", {"language": "en"})
    english = await page(client, f"/deals/{deal['id']}/history", headers={"HX-Request": "true"})
    assert "Amount" in english and "Сумма" not in english and "Record created" in english

    lead = await admin.post("/api/v1/leads", {"name": "Пётр", "source": "telegram"}, expect=201)
    await admin.patch(f"/api/v1/leads/{lead['id']}", {"source": "sms", "manager_id": agent.id})
    assert f'hx-get="/leads/{lead["id"]}/history"' in await page(client, f"/leads/{lead['id']}")
    lead_history = await page(client, f"/leads/{lead['id']}/history", headers={"HX-Request": "true"})
    source = lead_history.split('data-field="source"', 1)[1].split("</li>", 1)[0]
    assert "Source" in source and "Telegram" in source and "SMS" in source  # the channels by their names

    client.session.cookie_jar.clear()
    await logged_in(client, agent)
    await page(client, f"/deals/{deal['id']}/history", status=404)
    await page(client, f"/clients/{customer['id']}?tab=history", status=404)
