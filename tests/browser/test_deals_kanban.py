"""In a real browser: the deals kanban — drag a card with the mouse, fill the move dialog, see both
columns' sums and counts change; a lost move needs a reason; cancel puts the card back; the
keyboard way; another user's move shows up live; the list page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select, update

from hub.crm import clients, deals, pipelines
from hub.crm.models import Deal, User
from hub.web.keys import DB
from hub.web.views.deals_board import COLUMN_CARDS
from tests.browser.test_foundation import log_in
from tests.integration.conftest import make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


async def _user(app: web.Application, login: str) -> User:
    async with app[DB].reading() as s:
        user = await s.scalar(select(User).where(User.login == login))
    assert user is not None
    return user


async def _setup(app: web.Application) -> dict[str, Any]:
    """An agent with a client (with a phone) and two deals in the first stage; an admin."""
    await make_user(app, "agent", "agent", "Иван Агентов")
    await make_user(app, "boss", "admin", "Ольга Начальникова")
    agent, boss = await _user(app, "agent"), await _user(app, "boss")
    async with app[DB].transaction() as s:
        pipeline = await pipelines.default_pipeline(s)
        stages = sorted(pipeline.stages, key=lambda st: (st.position, st.id))
        customer = await clients.create_client(s, agent, {"name": "ООО «Ромашка»",
                                                          "phones": ["+7 916 123-45-67"]})
        deal = await deals.create_deal(s, agent, {
            "title": "Поставка бумаги", "client_id": customer["id"], "amount": 150000,
            "next_interaction_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()})
        other = await deals.create_deal(s, agent, {"title": "Сервисный договор", "client_id": customer["id"],
                                                   "amount": 2500})
    return {"agent": agent, "boss": boss, "stages": [(st.id, st.name, st.kind) for st in stages],
            "deal": deal, "other": other}


async def drag(page: Any, card: Any, target: Any) -> None:
    """SortableJS (fallback mode) follows real mouse moves: press, move in steps, release."""
    await card.scroll_into_view_if_needed()
    box = await card.bounding_box()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 8)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] / 2 + 10, box["y"] + box["height"] - 2, steps=5)
    await target.scroll_into_view_if_needed()
    goal = await target.bounding_box()
    await page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + 30, steps=25)
    await page.mouse.up()


def count(page: Any, stage_id: int) -> Any:
    return page.locator(f"#col-{stage_id} .kcol-count")


def total(page: Any, stage_id: int) -> Any:
    return page.locator(f"#col-{stage_id} .kcol-sum")


async def test_drag_a_deal_to_the_next_stage_and_see_both_sums_change(page: Any,
                                                                      app: web.Application) -> None:
    data = await _setup(app)
    (first, _, _), (second, second_name, _) = data["stages"][0], data["stages"][1]
    deal_id = data["deal"]["id"]
    await log_in(page, "agent")
    await page.goto("/deals")
    await expect(page.get_by_role("heading", name="Сделки", exact=True)).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    card = page.locator(f"#deal-{deal_id}")
    await expect(page.locator(f"#cards-{first}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, first)).to_have_text("2")
    await expect(total(page, first)).to_have_text("152\xa0500,00\xa0₽")
    await expect(count(page, second)).to_have_text("0")
    await expect(total(page, second)).to_have_text("0,00\xa0₽")
    await page.evaluate("window.__sameDocument = true")

    # Cancel: the card goes back where it was.
    await drag(page, card, page.locator(f"#cards-{second}"))
    dialog = page.get_by_role("dialog", name="Перемещение сделки")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Отмена").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(f"#cards-{first}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, first)).to_have_text("2")

    # Save: the card moves, both headers change, no reload.
    await drag(page, card, page.locator(f"#cards-{second}"))
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Этап")).to_have_value(str(second))
    await dialog.get_by_label("Результат последнего взаимодействия").fill("Клиент подтвердил интерес")
    await dialog.get_by_label("Дата и время").fill("2030-03-15T11:30")
    await dialog.get_by_label("Что сделать").fill("Отправить коммерческое предложение")
    await dialog.get_by_role("button", name="Сохранить").click()
    await expect(dialog).to_be_hidden()
    moved = page.locator(f"#cards-{second}").locator(f"#deal-{deal_id}")
    await expect(moved).to_be_visible()
    await expect(moved).to_contain_text("15.03.2030")
    await expect(moved).to_contain_text("Отправить коммерческое предложение")
    await expect(count(page, first)).to_have_text("1")
    await expect(total(page, first)).to_have_text("2\xa0500,00\xa0₽")
    await expect(count(page, second)).to_have_text("1")
    await expect(total(page, second)).to_have_text("150\xa0000,00\xa0₽")
    assert await page.evaluate("window.__sameDocument === true"), "the page must not reload"

    await page.reload()
    await expect(page.locator(f"#cards-{second}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, second)).to_have_text("1")
    async with app[DB].reading() as s:
        stored = await deals.get_deal(s, data["agent"], deal_id)
    assert stored["stage"]["name"] == second_name and stored["next_interaction_note"].startswith("Отправить")


async def test_a_lost_move_needs_the_reason_shown_next_to_the_field(page: Any, app: web.Application) -> None:
    data = await _setup(app)
    first = data["stages"][0][0]
    lost = next(sid for sid, _, kind in data["stages"] if kind == "lost")
    deal_id = data["other"]["id"]
    await log_in(page, "agent")
    await page.goto("/deals")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await drag(page, page.locator(f"#deal-{deal_id}"), page.locator(f"#cards-{lost}"))
    dialog = page.get_by_role("dialog", name="Перемещение сделки")
    await expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Причина отказа")
    await expect(reason).to_be_visible()
    await dialog.get_by_role("button", name="Сохранить").click()
    error = dialog.locator("#err-loss_reason")
    await expect(error).to_have_text("Выберите причину отказа или опишите её.")
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(reason).to_be_focused()
    await expect(dialog).to_be_visible()

    await reason.select_option(label="Другая причина…")
    await dialog.get_by_label("Опишите причину").fill("Ушли к конкуренту")
    await expect(dialog.locator(".move-next")).to_be_hidden()  # a lost deal plans nothing next
    await dialog.get_by_role("button", name="Сохранить").click()
    result = dialog.get_by_label("Результат последнего взаимодействия")
    await expect(dialog.locator("#err-result")).to_have_text(
        "Напишите результат последнего взаимодействия: сделка движется дальше.")
    await expect(result).to_be_focused()
    await result.fill("Сравнили цены, выбрали другого поставщика")
    await dialog.get_by_role("button", name="Сохранить").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(f"#cards-{lost}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, lost)).to_have_text("1")
    await expect(total(page, lost)).to_have_text("2\xa0500,00\xa0₽")
    await expect(count(page, first)).to_have_text("1")
    async with app[DB].reading() as s:
        stored = await deals.get_deal(s, data["agent"], deal_id)
    assert stored["loss_reason"]["name"] == "Ушли к конкуренту"


async def test_keyboard_move_and_another_users_move_shows_up_live(page: Any, app: web.Application) -> None:
    data = await _setup(app)
    first, second, third = (st[0] for st in data["stages"][:3])
    won = next(sid for sid, _, kind in data["stages"] if kind == "won")
    deal_id = data["deal"]["id"]
    await log_in(page, "agent")
    await page.goto("/deals")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await page.evaluate("window.__sameDocument = true")

    # The keyboard way: the card's ⇄ button opens the same dialog with the stage to choose.
    move = page.get_by_role("button", name="Переместить сделку на другой этап: Поставка бумаги")
    await move.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Перемещение сделки")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Этап")).to_be_focused()
    await dialog.get_by_label("Этап").select_option(str(third))
    await dialog.get_by_label("Результат последнего взаимодействия").fill("Договорились о встрече")
    await page.keyboard.press("Tab")
    await dialog.get_by_role("button", name="Сохранить").press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(page.locator(f"#cards-{third}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, third)).to_have_text("1")

    # Another user (a manager, through the core as the API does) moves it to won: live, no reload.
    async with app[DB].transaction() as s:
        await deals.move_deal(s, data["boss"], deal_id, {"stage_id": won, "result": "Подписали договор"})
    await expect(page.locator(f"#cards-{won}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, third)).to_have_text("0")
    await expect(count(page, won)).to_have_text("1")
    await expect(total(page, won)).to_have_text("150\xa0000,00\xa0₽")

    # ... creates one: it appears in its column with the new totals.
    async with app[DB].transaction() as s:
        created = await deals.create_deal(s, data["boss"], {
            "title": "Новая от руководителя", "client_id": data["deal"]["client_id"], "amount": 1000,
            "responsible_id": data["agent"].id})
    await expect(page.locator(f"#cards-{first}").locator(f"#deal-{created['id']}")).to_be_visible()
    await expect(count(page, first)).to_have_text("2")

    # ... and deletes one: it goes away.
    async with app[DB].transaction() as s:
        await deals.delete_deal(s, data["boss"], data["other"]["id"])
    await expect(page.locator(f"#deal-{data['other']['id']}")).to_have_count(0)
    await expect(count(page, first)).to_have_text("1")
    await expect(count(page, second)).to_have_text("0")
    assert await page.evaluate("window.__sameDocument === true"), "the page must not reload"


async def test_deal_list_filters_and_goes_live(page: Any, app: web.Application) -> None:
    data = await _setup(app)
    await log_in(page, "agent")
    await page.goto("/deals/list")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    table = page.locator(".deals-table")
    await expect(table.get_by_role("link", name="Поставка бумаги")).to_be_visible()
    await expect(table.get_by_role("link", name="Сервисный договор")).to_be_visible()

    await page.get_by_label("Поиск", exact=True).fill("8 916 123 45 67")
    await page.get_by_label("Сортировка").select_option("amount")
    await page.get_by_role("button", name="Показать").click()
    await expect(page).to_have_url(re.compile(r"order=amount"))
    rows = table.locator("tbody tr[id^=row-]")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Поставка бумаги")

    await page.get_by_label("Поиск", exact=True).fill("сервисный")
    await page.get_by_role("button", name="Показать").click()
    await expect(rows).to_have_count(1)

    async with app[DB].transaction() as s:
        await deals.update_deal(s, data["boss"], data["other"]["id"], {"title": "Сервисный договор на год"})
    await expect(table.get_by_role("link", name="Сервисный договор на год")).to_be_visible()


async def test_a_long_column_loads_more_cards_when_scrolled_to_its_end(page: Any,
                                                                       app: web.Application) -> None:
    data = await _setup(app)
    first = data["stages"][0][0]
    async with app[DB].transaction() as s:
        for i in range(30):
            await deals.create_deal(s, data["agent"], {
                "title": f"Сделка {i:02d}", "client_id": data["deal"]["client_id"], "amount": 100,
                "next_interaction_at": (datetime.now(UTC) + timedelta(days=2, hours=i)).isoformat()})
    await log_in(page, "agent")
    await page.goto("/deals")
    cards = page.locator(f"#cards-{first} .deal-card")
    await expect(cards).to_have_count(COLUMN_CARDS)
    await expect(count(page, first)).to_have_text("32")
    await page.wait_for_timeout(300)
    await expect(cards).to_have_count(COLUMN_CARDS)  # nothing loads before the column is scrolled
    column = page.locator(f"#col-{first}")
    await column.evaluate("column => { column.scrollTop = column.scrollHeight; }")
    await expect(cards).to_have_count(2 * COLUMN_CARDS)
    await column.evaluate("column => { column.scrollTop = column.scrollHeight; }")
    await expect(cards).to_have_count(32)
    await expect(page.locator(f"#more-{first} button")).to_have_count(0)
    await expect(page.locator(f"#cards-{first}").get_by_role("link", name="Сделка 29")).to_be_visible()


async def test_after_the_stream_reconnects_the_board_rereads_the_database(page: Any,
                                                                          app: web.Application) -> None:
    data = await _setup(app)
    first, second = data["stages"][0][0], data["stages"][1][0]
    deal_id = data["deal"]["id"]
    await log_in(page, "agent")
    await page.goto("/deals")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    # A change the stream never announced (as if made while the network was down) ...
    async with app[DB].transaction() as s:
        await s.execute(update(Deal).where(Deal.id == deal_id).values(stage_id=second))
    await page.wait_for_timeout(300)
    await expect(page.locator(f"#cards-{first}").locator(f"#deal-{deal_id}")).to_be_visible()
    # ... shows up once the stream (re)opens.
    await page.evaluate("document.body.dispatchEvent(new CustomEvent('htmx:sseOpen', {bubbles: true}))")
    await expect(page.locator(f"#cards-{second}").locator(f"#deal-{deal_id}")).to_be_visible()
    await expect(count(page, second)).to_have_text("1")
    await expect(count(page, first)).to_have_text("1")
