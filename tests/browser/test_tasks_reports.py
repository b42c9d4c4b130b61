"""In a real browser: the tasks page (create in the dialog with a file, errors next to the field,
"Выполнить", overdue in red, live updates) and the reports (funnel table and chart, widgets)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.crm import clients, deals, pipelines, tasks
from hub.crm.models import User
from hub.web.keys import DB
from tests.browser.test_foundation import log_in
from tests.integration.conftest import make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None

RED = "rgb(217, 45, 32)"


async def user(app: web.Application, login: str) -> User:
    async with app[DB].reading() as s:
        found = await s.scalar(select(User).where(User.login == login))
    assert found is not None
    return found


async def test_create_a_task_in_the_dialog_complete_it_and_see_overdue_in_red(page: Any,
                                                                             app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    agent = await user(app, "agent")
    async with app[DB].transaction() as s:
        await tasks.create_task(s, agent, {"subject": "Просроченный звонок",
                                           "due_at": (datetime.now(UTC) - timedelta(days=2)).isoformat()})
        for n in range(3):
            await clients.create_client(s, agent, {"name": f"Клиент {n}", "manager_id": agent.id})
        await clients.create_client(s, agent, {"name": "ООО «Ромашка»", "manager_id": agent.id})
    await log_in(page, "agent")
    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Задачи").click()
    await expect(page.get_by_role("heading", name="Задачи", exact=True)).to_be_visible()
    late = page.locator("li.task", has_text="Просроченный звонок")
    await expect(late.locator("time.due")).to_have_css("color", RED)
    await expect(late.get_by_text("Просрочено")).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await page.evaluate("window.__sameDocument = true")

    # An empty subject: the error next to the field, the dialog stays open.
    await page.get_by_role("link", name="Новая задача").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_role("heading", name="Новая задача")).to_be_visible()
    await dialog.get_by_role("button", name="Создать задачу").click()
    await expect(dialog.locator("#err-subject")).to_have_text("Обязательное поле.")
    await expect(dialog.get_by_label("Тема")).to_be_focused()

    await dialog.get_by_label("Тема").fill("Подготовить <b>КП</b>")
    await dialog.get_by_label("Срок").fill("2030-05-02T18:30")
    await dialog.get_by_label("Процент выполнения").fill("30")
    await dialog.get_by_placeholder("Найти клиента").fill("Ромаш")
    client_list = dialog.get_by_label("Клиент", exact=True)
    await expect(client_list.locator("option")).to_have_count(2)  # "— нет —" and the one found
    await expect(client_list.locator("option:checked")).to_have_text("ООО «Ромашка»")  # picked too
    await dialog.get_by_placeholder("Найти клиента").fill("Клиент 2")  # a pick made so gives way
    await expect(client_list.locator("option:checked")).to_have_text("Клиент 2")
    await dialog.get_by_placeholder("Найти клиента").fill("Ромаш")
    await expect(client_list.locator("option:checked")).to_have_text("ООО «Ромашка»")
    await dialog.get_by_placeholder("Найти клиента").press("Enter")  # narrows, does not submit
    await expect(client_list.locator("option:checked")).to_have_text("ООО «Ромашка»")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Прикрепить файлы").set_input_files(
        files=[{"name": "прайс.txt", "mimeType": "text/plain", "buffer": "Цены на 2030 год".encode()}])
    await dialog.get_by_role("button", name="Создать задачу").click()
    await expect(dialog).to_be_hidden()
    created = page.locator("li.task", has_text="Подготовить <b>КП</b>")
    await expect(created).to_be_visible()
    await expect(created.get_by_text("02.05.2030 18:30")).to_be_visible()
    await expect(created.get_by_text("1 файл")).to_be_visible()
    await expect(created.get_by_role("link", name="ООО «Ромашка»")).to_be_visible()
    await expect(created.get_by_role("img", name="Выполнено на 30%")).to_be_visible()

    # Open it again: the file is there, the values too.
    await created.get_by_role("link", name="Подготовить <b>КП</b>").click()
    await expect(dialog.get_by_role("link", name="прайс.txt")).to_be_visible()
    await expect(dialog.get_by_label("Процент выполнения")).to_have_value("30")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    await created.get_by_role("button", name="Выполнить").click()
    await expect(created).to_have_count(0)  # it left the open list
    await page.get_by_role("link", name="Выполнено").click()
    done = page.locator("li.task", has_text="Подготовить <b>КП</b>")
    await expect(done.get_by_role("img", name="Выполнено на 100%")).to_be_visible()
    await expect(done.get_by_role("button", name="Выполнить")).to_have_count(0)


async def test_the_list_updates_live_when_someone_else_changes_a_task(page: Any,
                                                                      app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await make_user(app, "boss", "manager", "Ольга Начальникова")
    agent, boss = await user(app, "agent"), await user(app, "boss")
    async with app[DB].transaction() as s:
        first = await tasks.create_task(s, boss, {"subject": "Сверить счета", "assignee_id": agent.id})
    await log_in(page, "agent")
    await page.goto("/tasks")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await page.evaluate("window.__sameDocument = true")
    async with app[DB].transaction() as s:
        await tasks.create_task(s, boss, {"subject": "Позвонить в «Ромашку»", "assignee_id": agent.id})
        await tasks.update_task(s, boss, first["id"], {"percent": 50})
    await expect(page.get_by_role("link", name="Позвонить в «Ромашку»")).to_be_visible()
    await expect(page.locator("li.task", has_text="Сверить счета").get_by_role("img", name="Выполнено на 50%")
                 ).to_be_visible()
    async with app[DB].transaction() as s:
        await tasks.delete_task(s, boss, first["id"])
    await expect(page.get_by_role("link", name="Сверить счета")).to_have_count(0)
    assert await page.evaluate("window.__sameDocument === true"), "the page must not reload"


async def test_funnel_and_widgets_with_deals_moved_through_the_stages(page: Any,
                                                                      app: web.Application) -> None:
    await make_user(app, "boss", "manager", "Ольга Начальникова")
    boss = await user(app, "boss")
    async with app[DB].transaction() as s:
        stages = (await pipelines.default_pipeline(s)).stages
        active = sorted((st for st in stages if st.kind == "active"), key=lambda st: st.position)
        won = next(st for st in stages if st.kind == "won")
        lost = next(st for st in stages if st.kind == "lost")
        customer = await clients.create_client(s, boss, {"name": "ООО «Ромашка»"})
        made = [await deals.create_deal(s, boss, {"title": f"Поставка {n}", "client_id": customer["id"],
                                                  "amount": 1_000_000 * (n + 1)}) for n in range(4)]
        await deals.move_deal(s, boss, made[1]["id"], {"stage_id": active[1].id})
        await deals.move_deal(s, boss, made[2]["id"], {"stage_id": active[1].id})
        await deals.move_deal(s, boss, made[2]["id"], {"stage_id": won.id})
        await deals.move_deal(s, boss, made[3]["id"], {"stage_id": lost.id, "loss_reason": "Дорого"})
    await log_in(page, "boss")
    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Отчёты").click()
    await expect(page.get_by_role("heading", name="Отчёты")).to_be_visible()
    table = page.get_by_test_id("funnel-table")
    first = table.locator("tr", has_text=active[0].name)
    await expect(first.locator("[data-col=count]")).to_have_text("1")
    await expect(first.locator("[data-col=amount]")).to_have_text("1 000 000,00 ₽")
    await expect(first.locator("[data-col=reached]")).to_have_text("4")
    await expect(first.locator("[data-col=conversion]")).to_have_text("50 %")
    await expect(page.get_by_test_id("funnel-won")).to_have_text("1")
    await expect(page.get_by_test_id("loss-reasons").get_by_text("Дорого")).to_be_visible()
    chart = page.locator("#funnel-chart")
    await expect(chart).to_have_attribute("data-rendered", "true")
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    painted = await chart.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 3; i < d.length; i += 4) { if (d[i]) return true; } return false; }")
    assert painted, "the chart drew nothing"

    await page.get_by_role("link", name="Этот год").click()
    await expect(page.get_by_role("link", name="Этот год")).to_have_attribute("aria-current", "true")
    await page.get_by_role("link", name="Виджеты").click()
    sales = page.locator("[data-widget=sales_amount]")
    await expect(sales.get_by_role("heading", name="Продажи, сумма")).to_be_visible()
    await expect(sales.locator(".widget-value")).to_have_text("3 000 000,00 ₽")
    await expect(page.locator("[data-widget=new_clients] .widget-value")).to_have_text("1")
    for key in ("tasks_done", "tasks_planned", "tasks_overdue", "new_leads", "sales_count"):
        await expect(page.locator(f"[data-widget={key}]")).to_be_visible()
    await expect(page.locator("#widgets-chart")).to_have_attribute("data-rendered", "true")
    await expect(page).to_have_url(re.compile(r"/reports/widgets\?preset=year$"))
