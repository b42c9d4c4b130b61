"""In a real browser: a deal made from a board column's «+ Сделка» (the client found by a search that
picks it), from a lead's card and from the screen-pop's link; an Unsorted lead rejected with a reason
in place, the column's count going down."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.crm import clients, deals, leads
from hub.web.keys import DB
from tests.browser.test_deals_kanban import _setup, count
from tests.browser.test_foundation import log_in

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


async def test_a_deal_from_a_column_lands_in_that_column(page: Any, app: web.Application) -> None:
    data = await _setup(app)
    second = data["stages"][1][0]
    await log_in(page, "agent")
    await page.goto("/deals")
    column = page.locator(f"#col-{second}")
    await column.get_by_text("+ Сделка").click()
    form = column.locator("form.deal-new")
    await form.get_by_label("Название").fill("Срочный заказ")
    await form.get_by_label("Клиент или лид").fill("ромаш")
    await expect(form.locator("select[name=owner]")).to_have_value(f"client:{data['deal']['client_id']}")
    await form.get_by_label("Сумма, ₽").fill("7 000")
    await form.get_by_role("button", name="Создать сделку").click()
    card = page.locator(f"#cards-{second} .deal-card", has_text="Срочный заказ")
    await expect(card).to_be_visible()
    await expect(count(page, second)).to_have_text("1")


async def test_a_deal_from_a_lead_card_and_from_the_pop_link(page: Any, app: web.Application) -> None:
    data = await _setup(app)
    async with app[DB].transaction() as s:
        lead = await leads.create_lead(s, data["agent"], {"name": "Фёдор Лидов"})
        client = await clients.create_client(s, data["agent"], {"name": "ИП Звонарёв"})
    await log_in(page, "agent")
    await page.goto(f"/leads/{lead['id']}")
    box = page.locator(".deal-new-box")
    await box.get_by_label("Название").fill("Сделка лида")
    await box.get_by_role("button", name="Создать сделку").click()
    await expect(page).to_have_url(f"/leads/{lead['id']}")
    await expect(page.locator("section[aria-labelledby=h-deals]").get_by_text("Сделка лида")).to_be_visible()

    await page.goto(f"/deals/new?client={client['id']}")  # where the pop's «Создать сделку» leads
    await expect(page.get_by_text("ИП Звонарёв")).to_be_visible()
    await page.get_by_label("Название").fill("После звонка")
    await page.get_by_role("button", name="Создать сделку").click()
    await expect(page.get_by_role("heading", name="После звонка")).to_be_visible()


async def test_an_unsorted_lead_is_rejected_in_place(page: Any, app: web.Application) -> None:
    await _setup(app)
    async with app[DB].transaction() as s:
        for name in ("Спамер", "Клиент с сайта"):
            await leads.create_lead(s, None, {"name": name})
    await log_in(page, "agent")
    await page.goto("/deals")
    await expect(page.locator("#unsorted-count")).to_have_text("2")
    spam = page.locator("#cards-unsorted .lead-card", has_text="Спамер")
    await spam.locator("summary", has_text="Отклонить").click()
    await spam.get_by_label("Почему отклонить?").fill("Спам")
    await spam.get_by_role("button", name="Отклонить").click()
    await expect(page.locator("#cards-unsorted .lead-card", has_text="Спамер")).to_have_count(0)
    await expect(page.locator("#unsorted-count")).to_have_text("1")
    await page.locator("#cards-unsorted .lead-card", has_text="Клиент с сайта").get_by_role(
        "button", name="Взять себе").click()
    await expect(page.locator("#unsorted-count")).to_have_text("0")


async def test_the_move_dialog_speaks_the_servers_time_zone(page: Any, app: web.Application,
                                                            browser: Any, hub_url: str) -> None:
    """A browser in New York plans in Moscow time, as every page states and the deal card does."""
    data = await _setup(app)
    second = data["stages"][1][0]
    async with app[DB].transaction() as s:
        await deals.update_deal(s, data["agent"], data["deal"]["id"],
                                {"next_interaction_at": "2030-01-10T09:00:00Z"})
    context = await browser.new_context(base_url=hub_url, locale="ru-RU", timezone_id="America/New_York")
    far = await context.new_page()
    try:
        await log_in(far, "agent")
        await far.goto("/deals")
        await far.get_by_role("button", name="Переместить сделку на другой этап: Поставка бумаги").click()
        dialog = far.get_by_role("dialog", name="Перемещение сделки")
        # 09:00 UTC is 12:00 in Moscow, the server's zone
        await expect(dialog.get_by_label("Дата и время")).to_have_value("2030-01-10T12:00")
        await expect(dialog.get_by_text("Часовой пояс: Europe/Moscow, UTC+03:00")).to_be_visible()
        await dialog.get_by_label("Этап").select_option(str(second))
        await dialog.get_by_label("Результат последнего взаимодействия").fill("Созвонились")
        await dialog.get_by_label("Дата и время").fill("2030-01-11T15:30")
        await dialog.get_by_role("button", name="Сохранить").click()
        await expect(dialog).to_be_hidden()
        async with app[DB].reading() as s:
            deal = await deals.get_deal(s, data["agent"], data["deal"]["id"])
        assert deal["next_interaction_at"] == "2030-01-11T12:30:00Z"
    finally:
        await context.close()
