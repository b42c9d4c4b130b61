"""The reports over HTTP: the funnel's table and chart data, the widgets against the previous period,
periods (presets and dates with errors next to the fields), the manager filter, escaping."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from hub.web.views.reports import preset_days
from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page

MOSCOW = ZoneInfo("Europe/Moscow")


def around_today() -> str:
    today = datetime.now(MOSCOW).date()
    return f"since={today - timedelta(days=1)}&until={today + timedelta(days=1)}"


async def stages(api: Api) -> list[dict]:
    pipelines = (await api.get("/api/v1/pipelines"))["items"]
    return next(p for p in pipelines if p["is_default"])["stages"]


async def some_deals(admin: Api, agent: Api) -> list[dict]:
    """Five deals: two still in the first stage, one moved on, one won, one lost (as too expensive)."""
    customer = await admin.post("/api/v1/clients", {"name": "<b>Клиент</b>", "manager_id": agent.id},
                                expect=201)
    st = await stages(admin)
    won = next(s for s in st if s["kind"] == "won")
    lost = next(s for s in st if s["kind"] == "lost")
    made = []
    for n, amount in enumerate((100000, 250000.5, 1234567, 40000, 10000)):
        made.append(await admin.post("/api/v1/deals", {
            "title": f"Сделка {n}", "client_id": customer["id"], "amount": amount,
            "responsible_id": agent.id if n < 4 else admin.id}, expect=201))
    await admin.post(f"/api/v1/deals/{made[2]['id']}/move", {"stage_id": st[1]["id"]}, expect=200)
    await admin.post(f"/api/v1/deals/{made[3]['id']}/move", {"stage_id": st[1]["id"]}, expect=200)
    await admin.post(f"/api/v1/deals/{made[3]['id']}/move", {"stage_id": won["id"]}, expect=200)
    await admin.post(f"/api/v1/deals/{made[4]['id']}/move", {"stage_id": lost["id"], "loss_reason": "Дорого"},
                     expect=200)
    return made


def cells(html: str, stage: str) -> dict[str, str]:
    row = re.search(rf'<tr class="kind-\w+" data-stage="{re.escape(stage)}">(.*?)</tr>', html, re.S)
    assert row, stage
    return {m.group(1): unescape(re.sub(r"<[^>]+>", "", m.group(2))).strip()
            for m in re.finditer(r'data-col="(\w+)"[^>]*>(.*?)</td>', row.group(1), re.S)}


async def test_funnel_table_summary_reasons_and_chart_data(client: TestClient, admin: Api,
                                                            agent: Api) -> None:
    await some_deals(admin, agent)
    st = await stages(admin)
    await logged_in(client, admin)
    html = await page(client, f"/reports/funnel?{around_today()}")
    assert 'aria-current="page">Отчёты' in html and 'aria-current="page">Воронка продаж' in html
    assert 'href="/reports/widgets' in html and "/static/vendor/chart.umd.min.js" in html
    first = cells(html, st[0]["name"])
    assert first["count"] == "2" and first["amount"] == "350\xa0000,50\xa0₽" and first["reached"] == "5"
    assert first["conversion"] == "40\xa0%"  # 2 of the 5 got to the second stage
    second = cells(html, st[1]["name"])
    assert second["count"] == "1" and second["reached"] == "2"
    assert second["conversion"] == "50\xa0%"  # the won one went past it
    assert re.search(r'data-testid="funnel-won">1<', html)
    assert re.search(r'data-testid="funnel-lost">1<', html)
    assert "1\xa0634\xa0567,50\xa0₽" in html  # all five
    assert "Дорого" in html and "100&nbsp;%" in html
    data = json.loads(re.search(r'id="funnel-data">(.*?)</script>', html, re.S).group(1))
    assert data["labels"][0] == st[0]["name"] and data["values"][0] == 5
    assert len(data["values"]) == len(st) - 1  # the lost stage is not a step of the funnel
    # The manager filter: the admin's own lost deal only.
    mine = await page(client, f"/reports/funnel?{around_today()}&manager_id={admin.id}")
    assert re.search(r'data-testid="funnel-total">1<', mine)
    assert re.search(r'data-testid="funnel-lost">1<', mine)


async def test_funnel_periods_and_their_errors(client: TestClient, admin: Api, agent: Api) -> None:
    await some_deals(admin, agent)
    await logged_in(client, agent)
    html = await page(client, "/reports/funnel")  # this month by default
    assert 'aria-current="true">Этот месяц' in html
    year = await page(client, "/reports/funnel?preset=year&manager_id=999")
    assert 'aria-current="true">Этот год' in year and "В этом периоде сделок не создавали." in year
    old = await page(client, "/reports/funnel?since=2001-01-01&until=2001-12-31")
    assert "В этом периоде сделок не создавали." in old and 'value="2001-01-01"' in old
    wrong = await page(client, "/reports/funnel?since=2026-05-01&until=2026-04-01")
    assert 'id="err-until">Конец не может быть раньше начала.' in wrong
    assert "Выберите правильный период." in wrong
    bad = await page(client, "/reports/funnel?since=вчера&until=2026-04-01")
    assert 'id="err-since">Введите дату.' in bad
    # An agent sees only the deals they may see: the four of theirs.
    mine = await page(client, f"/reports/funnel?{around_today()}")
    assert re.search(r'data-testid="funnel-total">4<', mine)
    async with client.get("/reports", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/reports/funnel"


def test_presets() -> None:
    day = date(2026, 11, 24)
    assert preset_days("month", day) == (date(2026, 11, 1), date(2026, 11, 30))
    assert preset_days("last_month", day) == (date(2026, 10, 1), date(2026, 10, 31))
    assert preset_days("quarter", day) == (date(2026, 10, 1), date(2026, 12, 31))
    assert preset_days("year", day) == (date(2026, 1, 1), date(2026, 12, 31))
    assert preset_days("last_month", date(2026, 1, 5)) == (date(2025, 12, 1), date(2025, 12, 31))
    assert preset_days("month", date(2026, 12, 5)) == (date(2026, 12, 1), date(2026, 12, 31))


async def test_widgets_cards_against_the_previous_period(client: TestClient, admin: Api, agent: Api) -> None:
    await some_deals(admin, agent)
    await agent.post("/api/v1/leads", {"name": "Лид"}, expect=201)
    task = await agent.post("/api/v1/tasks", {"subject": "Задача",
                                              "due_at": (datetime.now(MOSCOW)).isoformat()}, expect=201)
    await agent.post(f"/api/v1/tasks/{task['id']}/complete", expect=200)
    await logged_in(client, admin)
    html = await page(client, f"/reports/widgets?{around_today()}")
    assert 'aria-current="page">Виджеты' in html

    def card(key: str) -> str:
        found = re.search(rf'data-widget="{key}".*?</section>', html, re.S)
        assert found, key
        return found.group(0)

    assert "40\xa0000,00\xa0₽" in card("sales_amount") and "впервые" in card("sales_amount")
    assert 'class="widget-value">1<' in card("sales_count") and "было: 0" in card("sales_count")
    assert 'class="widget-value">1<' in card("new_clients") and "change good" in card("new_clients")
    assert 'class="widget-value">1<' in card("new_leads")
    assert 'class="widget-value">1<' in card("tasks_done")
    assert 'class="widget-value">0<' in card("tasks_overdue") and "change flat" in card("tasks_overdue")
    data = json.loads(re.search(r'id="widgets-data">(.*?)</script>', html, re.S).group(1))
    assert data["series"] == ["Этот период", "Предыдущий период"] and data["current"][0] == 1
    assert "Новые клиенты" in data["labels"]
    dated = await page(client, f"/reports/widgets?since=2026-02-01&until=2026-02-28&manager_id={agent.id}")
    assert f'href="/reports/funnel?manager_id={agent.id}&amp;since=2026-02-01&amp;until=2026-02-28"' in dated
    wrong = await page(client, "/reports/widgets?since=2026-05-01&until=")
    assert 'id="err-until">Введите дату.' in wrong
