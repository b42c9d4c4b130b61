"""A new deal from anywhere (/deals/new): the quick form prefilled for a client or a lead, its search of
clients and leads, a new client made with the deal, the column's stage, errors next to their fields,
and the access rule (a client one may not see can be neither preset nor chosen)."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page


async def post(client: TestClient, csrf: str, data: dict[str, str], status: int = 303) -> tuple[str, str]:
    async with client.post("/deals/new", data={"csrf_token": csrf, **data}, allow_redirects=False) as r:
        body = await r.text()
        assert r.status == status, body[:2000]
        return r.headers.get("Location", ""), body


async def test_the_quick_form_makes_a_deal_for_a_client_a_lead_or_a_new_client(
        client: TestClient, agent: Api, manager: Api) -> None:
    own = await agent.post("/api/v1/clients", {"name": "ООО Ромашка", "phones": ["+79161234567"],
                                               "manager_id": agent.id}, expect=201)
    lead = await agent.post("/api/v1/leads", {"name": "Фёдор Лидов", "manager_id": agent.id}, expect=201)
    other = await manager.post("/api/v1/clients", {"name": "ООО Чужая", "manager_id": manager.id}, expect=201)
    csrf = await logged_in(client, agent)

    form = await page(client, f"/deals/new?client={own['id']}")
    assert f'name="owner" value="client:{own["id"]}"' in form and "ООО Ромашка" in form
    assert "Новая сделка" in form and "Создать сделку" in form
    hidden = await page(client, f"/deals/new?client={other['id']}")  # not hers: not preset, not named
    assert "ООО Чужая" not in hidden and 'name="owner" value=""' not in hidden

    found = await page(client, "/deals/new/owners?q=" + "ромаш")
    assert f'<option value="client:{own["id"]}">ООО Ромашка</option>' in found
    assert "Фёдор" in await page(client, "/deals/new/owners?q=федор") or "Фёдор" in await page(
        client, "/deals/new/owners?q=Фёдор")
    assert "ООО Чужая" not in await page(client, "/deals/new/owners?q=Чужая")
    assert "Ничего не найдено" in await page(client, "/deals/new/owners?q=zzzz")

    where, _ = await post(client, csrf, {"title": "Поставка бумаги", "owner": f"client:{own['id']}",
                                         "amount": "150 000,50"})
    deal_id = int(re.fullmatch(r"/deals/(\d+)", where).group(1))  # type: ignore[union-attr]
    deal = await agent.get(f"/api/v1/deals/{deal_id}")
    assert deal["client_id"] == own["id"] and deal["amount"] == 150000.5
    assert deal["responsible_id"] == agent.id

    where, _ = await post(client, csrf, {"title": "Для лида", "owner": f"lead:{lead['id']}",
                                         "back": f"/leads/{lead['id']}"})
    assert where == f"/leads/{lead['id']}"
    listed = (await agent.get("/api/v1/deals"))["items"]
    assert [d["title"] for d in listed if d["lead_id"] == lead["id"]] == ["Для лида"]

    board = await agent.get("/api/v1/pipelines")
    stages = board["items"][0]["stages"]
    second = [st for st in stages if st["kind"] == "active"][1]
    where, _ = await post(client, csrf, {"title": "Новый клиент", "new_client": "ИП Новиков",
                                         "stage_id": str(second["id"]), "back": "/deals"})
    assert where == "/deals"
    made = [d for d in (await agent.get("/api/v1/deals"))["items"] if d["title"] == "Новый клиент"]
    assert made and made[0]["stage_id"] == second["id"]
    new_client = await agent.get(f"/api/v1/clients/{made[0]['client_id']}")
    assert new_client["name"] == "ИП Новиков" and new_client["manager_id"] == agent.id


async def test_errors_come_back_next_to_their_fields_and_nothing_is_half_made(
        client: TestClient, agent: Api, manager: Api) -> None:
    other = await manager.post("/api/v1/clients", {"name": "ООО Чужая", "manager_id": manager.id}, expect=201)
    csrf = await logged_in(client, agent)
    _, body = await post(client, csrf, {"title": "Без клиента"}, status=422)
    assert "Выберите клиента или лид либо впишите нового клиента." in body
    assert 'value="Без клиента"' in body  # what was typed stays
    _, body = await post(client, csrf, {"title": "Чужой", "owner": f"client:{other['id']}"}, status=422)
    assert "Выберите клиента или лид" in body
    _, body = await post(client, csrf, {"title": "", "new_client": "ИП Пустой", "amount": "много"},
                         status=422)
    assert "Заполните это поле." in body and "Введите число" in body
    clients = (await agent.get("/api/v1/clients"))["items"]
    assert all(c["name"] != "ИП Пустой" for c in clients)  # the new client went with the failed deal
    assert (await agent.get("/api/v1/deals"))["items"] == []


async def test_the_board_the_list_and_the_lead_offer_the_form(client: TestClient, agent: Api) -> None:
    lead = await agent.post("/api/v1/leads", {"name": "Фёдор Лидов", "manager_id": agent.id}, expect=201)
    await logged_in(client, agent)
    board = await page(client, "/deals")
    assert board.count('class="kcol-new"') == board.count('class="kcol kind-active"') > 0
    assert "+ Сделка" in board and 'name="stage_id"' in board
    assert "+ Сделка" in await page(client, "/deals/list")
    card = await page(client, f"/leads/{lead['id']}")
    assert f'name="owner" value="lead:{lead["id"]}"' in card and "Новая сделка" in card
