"""The deals pages over HTTP: the kanban /deals (columns, totals, lazy columns, the fragments its
script re-reads, Unsorted) and the table /deals/list (filters, sorting, cursor paging)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.crm import deals
from hub.crm.models import User
from hub.web.keys import DB
from hub.web.views.deals_board import COLUMN_CARDS
from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page

HOSTILE = "<script>alert(1)</script>"


def at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def stages(api: Api) -> list[dict[str, Any]]:
    pipelines = await api.get("/api/v1/pipelines")
    default = next(p for p in pipelines["items"] if p["is_default"])
    return default["stages"]


def column(html: str, stage_id: int) -> str:
    """The HTML of one kanban column (its section)."""
    found = re.search(rf'<section class="kcol[^"]*" id="col-{stage_id}".*?</section>', html, re.S)
    assert found is not None, f"no column {stage_id}"
    return found.group(0)


def card_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<li class="deal-card[^"]*" id="deal-(\d+)"', html)]


async def test_board_shows_columns_with_totals_ordered_cards_and_unsorted(
        client: TestClient, agent: Api, agent2: Api, manager: Api) -> None:
    st = await stages(agent)
    first, second = st[0]["id"], st[1]["id"]
    customer = await agent.post("/api/v1/clients", {"name": HOSTILE, "phones": ["+7 916 123-45-67"]},
                                expect=201)
    later = await agent.post("/api/v1/deals", {"title": "Поставка бумаги", "client_id": customer["id"],
                                               "amount": 1234567.5, "next_interaction_at": at(48)},
                             expect=201)
    overdue = await agent.post("/api/v1/deals", {"title": HOSTILE, "client_id": customer["id"],
                                                 "amount": 1000,
                                                 "next_interaction_at": at(-5),
                                                 "next_interaction_note": "Перезвонить"}, expect=201)
    unplanned = await agent.post("/api/v1/deals", {"title": "Без плана", "client_id": customer["id"],
                                                   "amount": 10}, expect=201)
    other_client = await agent2.post("/api/v1/clients", {"name": "Чужой клиент"}, expect=201)
    await agent2.post("/api/v1/deals", {"title": "Чужая сделка", "client_id": other_client["id"],
                                        "amount": 5}, expect=201)
    await manager.post("/api/v1/leads", {"name": "Неизвестный звонящий", "source": "звонок",
                                         "unsorted": True, "manager_id": None,
                                         "phones": ["+7 903 000-00-01"]}, expect=201)

    await logged_in(client, agent)
    html = await page(client, "/deals")
    assert 'aria-current="page">Сделки' in html and "Канбан" in html
    assert HOSTILE not in html and html_lib.escape(HOSTILE) in html
    col = column(html, first)
    assert card_ids(col) == [overdue["id"], later["id"], unplanned["id"]]  # nearest interaction first
    assert "1\xa0235\xa0577,50\xa0₽" in col and '<span class="count kcol-count"' in col
    assert re.search(r'kcol-count"[^>]*>3</span>', col)
    assert "Чужая сделка" not in html  # an agent sees their own deals
    assert f'<li class="deal-card overdue" id="deal-{overdue["id"]}"' in col and 'class="marker"' in col
    assert "Взаимодействие не запланировано" in col
    assert f'href="/deals/{later["id"]}"' in col
    assert "Сделок нет. Перетащите сюда карточку." in column(html, second)
    assert "Не разобрано" in html and "Неизвестный звонящий" in html and "звонок" in html
    assert re.search(r'href="/leads/\d+">Неизвестный звонящий', html)
    assert 'src="/static/kanban.js"' in html and 'src="/static/vendor/Sortable.min.js"' in html
    assert '<dialog id="move-dialog"' in html and "Причина отказа" in html

    client.session.cookie_jar.clear()
    await logged_in(client, manager)
    html = await page(client, "/deals")
    assert "Чужая сделка" in html
    mine = await page(client, f"/deals?responsible={agent.id}")
    assert "Чужая сделка" not in mine and "Поставка бумаги" in mine


async def test_columns_load_lazily_with_a_cursor(client: TestClient, app: web.Application,
                                                  agent: Api) -> None:
    st = await stages(agent)
    customer = await agent.post("/api/v1/clients", {"name": "ООО «Много»"}, expect=201)
    async with app[DB].transaction() as s:
        actor = await s.scalar(select(User).where(User.id == agent.id))
        assert actor is not None
        for i in range(45):
            await deals.create_deal(s, actor, {"title": f"Сделка {i:02d}", "client_id": customer["id"],
                                               "amount": 100, "next_interaction_at": at(i + 1),
                                               "tags": ["опт"] if i % 2 else []})
    await logged_in(client, agent)
    html = await page(client, "/deals")
    col = column(html, st[0]["id"])
    assert len(card_ids(col)) == COLUMN_CARDS
    assert re.search(r'kcol-count"[^>]*>45</span>', col) and "4\xa0500,00\xa0₽" in col
    more = re.search(r'class="col-more"[^>]*>\s*<button[^>]*hx-get="([^"]+)"', col)  # not the new deal form's
    assert more is not None
    seen = card_ids(col)
    url = html_lib.unescape(more.group(1))
    pages = 0
    while url:
        fragment = await page(client, url)
        seen += card_ids(fragment)
        nxt = re.search(r'id="more-\d+" class="col-more" hx-swap-oob="true">'
                        r'(?:<button[^>]*hx-get="([^"]+)")?', fragment)
        assert nxt is not None
        url = html_lib.unescape(nxt.group(1)) if nxt.group(1) else ""
        pages += 1
    assert pages == 2 and len(seen) == 45 == len(set(seen))

    tagged = await page(client, f"/deals?tag={'опт'}")
    assert re.search(r'kcol-count"[^>]*>22</span>', column(tagged, st[0]["id"]))
    await page(client, "/deals/board/column/1?cursor=garbage", 422)


async def test_card_and_totals_fragments_follow_the_database(client: TestClient, agent: Api,
                                                              agent2: Api) -> None:
    st = await stages(agent)
    pipeline = (await agent.get("/api/v1/pipelines"))["items"][0]["id"]
    customer = await agent.post("/api/v1/clients", {"name": "ООО «Ромашка»"}, expect=201)
    deal = await agent.post("/api/v1/deals", {"title": "Поставка", "client_id": customer["id"],
                                              "amount": 2500}, expect=201)
    await logged_in(client, agent)
    totals = await page(client, f"/deals/board/totals?pipeline={pipeline}")
    assert f'data-stage="{st[0]["id"]}" data-count="1" data-sum="2\xa0500,00\xa0₽"' in totals

    await agent.post(f"/api/v1/deals/{deal['id']}/move", {"stage_id": st[1]["id"], "result": "Созвонились"})
    card = await page(client, f"/deals/board/card/{deal['id']}?pipeline={pipeline}")
    assert f'data-stage="{st[1]["id"]}"' in card and "Поставка" in card
    totals = await page(client, f"/deals/board/totals?pipeline={pipeline}")
    assert f'data-stage="{st[0]["id"]}" data-count="0"' in totals
    assert f'data-stage="{st[1]["id"]}" data-count="1" data-sum="2\xa0500,00\xa0₽"' in totals

    # Left out by the board's filters, or not the agent's: 204 (the script removes the card).
    async with client.get(f"/deals/board/card/{deal['id']}?pipeline={pipeline}&tag=нет") as response:
        assert response.status == 204
    client.session.cookie_jar.clear()
    await logged_in(client, agent2)
    async with client.get(f"/deals/board/card/{deal['id']}?pipeline={pipeline}") as response:
        assert response.status == 204
    await page(client, "/deals?pipeline=999999", 404)


async def test_a_lost_move_needs_a_reason_and_sums_move_with_the_deal(client: TestClient, agent: Api) -> None:
    st = await stages(agent)
    lost = next(s for s in st if s["kind"] == "lost")
    customer = await agent.post("/api/v1/clients", {"name": "ООО «Ромашка»"}, expect=201)
    deal = await agent.post("/api/v1/deals", {"title": "Поставка", "client_id": customer["id"],
                                              "amount": 700}, expect=201)
    await logged_in(client, agent)
    csrf = await (await client.get("/deals")).text()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', csrf)
    assert token is not None
    headers = {"X-CSRF-Token": token.group(1)}
    async with client.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": lost["id"]},
                           headers=headers) as response:
        assert response.status == 422
        assert "loss_reason" in (await response.json())["error"]["fields"]
    async with client.post(f"/api/v1/deals/{deal['id']}/move",
                           json={"stage_id": lost["id"], "loss_reason": "Дорого"},
                           headers=headers) as response:
        assert response.status == 200
    html = await page(client, "/deals")
    assert re.search(r'kcol-count"[^>]*>1</span>', column(html, lost["id"]))
    assert re.search(r'kcol-count"[^>]*>0</span>', column(html, st[0]["id"]))


async def test_list_filters_sorts_and_pages(client: TestClient, app: web.Application, agent: Api,
                                            manager: Api) -> None:
    st = await stages(agent)
    phone_client = await agent.post("/api/v1/clients", {"name": "ИП Телефонов",
                                                        "phones": ["+7 916 555-44-33"],
                                                        "emails": ["buh@romashka.ru"]}, expect=201)
    other = await agent.post("/api/v1/clients", {"name": HOSTILE}, expect=201)
    big = await agent.post("/api/v1/deals", {"title": "Крупная", "client_id": other["id"], "amount": 900000,
                                             "next_interaction_at": at(-2)}, expect=201)
    small = await agent.post("/api/v1/deals", {"title": "Мелкая", "client_id": phone_client["id"],
                                               "amount": 10, "tags": ["vip"], "next_interaction_at": at(3)},
                             expect=201)
    middle = await agent.post("/api/v1/deals", {"title": "Абонентская", "client_id": other["id"],
                                                "amount": 5000}, expect=201)
    await agent.post("/api/v1/tasks", {"subject": "Позвонить", "deal_id": big["id"], "assignee_id": agent.id,
                                       "due_at": at(5)}, expect=201)
    await agent.post(f"/api/v1/deals/{middle['id']}/move", {"stage_id": st[1]["id"]})

    await logged_in(client, agent)

    def order(html: str) -> list[int]:
        return [int(x) for x in re.findall(r'<tr class="[^"]*" id="row-(\d+)"', html)]

    html = await page(client, "/deals/list")
    assert order(html) == [middle["id"], small["id"], big["id"]]  # newest first
    assert HOSTILE not in html and html_lib.escape(HOSTILE) in html
    assert "900\xa0000,00\xa0₽" in html and 'class="marker"' in html
    assert order(await page(client, "/deals/list?order=amount")) == [big["id"], middle["id"], small["id"]]
    assert order(await page(client, "/deals/list?order=title")) == [middle["id"], big["id"], small["id"]]
    assert order(await page(client, "/deals/list?order=next")) == [big["id"], small["id"], middle["id"]]
    assert order(await page(client, "/deals/list?q=8 (916) 555-44-33")) == [small["id"]]
    assert order(await page(client, "/deals/list?q=BUH@romashka.ru")) == [small["id"]]
    assert order(await page(client, "/deals/list?q=крупн")) == [big["id"]]
    assert order(await page(client, f"/deals/list?stage={st[1]['id']}")) == [middle["id"]]
    assert order(await page(client, "/deals/list?tag=vip")) == [small["id"]]
    assert order(await page(client, "/deals/list?without_tasks=1")) == [middle["id"], small["id"]]
    assert order(await page(client, f"/deals/list?responsible={manager.id}")) == []
    empty = await page(client, "/deals/list?q=ничего такого")
    assert "Под эти фильтры не подходит ни одна сделка" in empty and "Сбросить фильтры" in empty
    assert order(await page(client, "/deals/list?order=bogus")) == [middle["id"], small["id"], big["id"]]

    # Cursor paging in every order: 55 more deals, two pages, nothing twice.
    async with app[DB].transaction() as s:
        actor = await s.scalar(select(User).where(User.id == agent.id))
        assert actor is not None
        for i in range(55):
            await deals.create_deal(s, actor, {"title": f"Сделка {i % 7}", "client_id": other["id"],
                                               "amount": (i % 5) * 100,
                                               "next_interaction_at": at(i % 4) if i % 3 else None})
    for sort in ("created", "amount", "next", "title"):
        first = await page(client, f"/deals/list?order={sort}")
        ids = order(first)
        assert len(ids) == 50
        more = re.search(r'<tr id="list-more"><td colspan="8"><a class="more-link" href="([^"]+)"', first)
        assert more is not None
        rest = await page(client, html_lib.unescape(more.group(1)), headers={"HX-Request": "true"})
        assert "<html" not in rest and '<tr id="list-more"></tr>' in rest
        ids += order(rest)
        assert len(ids) == 58 == len(set(ids)), sort
    await page(client, "/deals/list?order=amount&cursor=bad", 422)


async def test_deal_pages_need_a_login(client: TestClient) -> None:
    for path in ("/deals", "/deals/list", "/deals/board/totals?pipeline=1"):
        async with client.get(path, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/login")


async def test_board_in_english(client: TestClient, agent: Api) -> None:
    await agent.patch(f"/api/v1/users/{agent.id}", {"language": "en"})
    await logged_in(client, agent)
    html = await page(client, "/deals")
    assert "Unsorted" in html and "Board" in html and "Move the deal" in html
    assert "Не разобрано" not in html
