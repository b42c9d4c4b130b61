"""In a real browser: the header's search box — «/» focuses it, typing shows results grouped by kind,
a click opens the card; Enter opens the full results page."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from hub.crm import clients, timeline
from hub.web.keys import DB
from tests.browser.test_clients import user_named
from tests.browser.test_foundation import log_in
from tests.integration.conftest import make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


async def test_type_in_the_header_see_grouped_results_and_open_the_card(page: Any,
                                                                       app: web.Application) -> None:
    await make_user(app, "manager", "manager", "Мария Менеджерова")
    manager = await user_named(app, "manager")
    async with app[DB].transaction() as s:
        client = await clients.create_client(s, manager, {"name": "ИП Фёдоров Алексей",
                                                          "phones": ["+7 (916) 706-76-60"],
                                                          "emails": ["zakaz@severny-veter.ru"]})
        other = await clients.create_client(s, manager, {"name": "ООО Фёдоровская мануфактура"})
        await timeline.add_entry(s, kind="note", text="Фёдоров просил перезвонить после обеда",
                                 client_id=other["id"], author_id=manager.id)
    await log_in(page, "manager")

    box = page.get_by_role("searchbox", name="Поиск по клиентам, сделкам, сообщениям")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")  # the page's scripts ran
    await page.keyboard.press("/")
    await expect(box).to_be_focused()
    await page.keyboard.type("Федоров")
    suggest = page.locator("#search-suggest")
    await expect(suggest.locator(".search-group h3")).to_have_text(["Клиенты", "Заметки"])
    clients_group = suggest.locator(".search-group[data-kind='client']")
    await expect(clients_group.locator(".search-title")).to_have_text(
        ["ООО Фёдоровская мануфактура", "ИП Фёдоров Алексей"])
    await expect(suggest.locator(".search-group[data-kind='note'] .search-snippet")).to_have_text(
        "Фёдоров просил перезвонить после обеда")

    # a fragment of the phone, written with separators
    await box.fill("706-76")
    await expect(clients_group.locator(".search-hit")).to_have_count(1)
    await expect(clients_group.locator(".search-snippet")).to_have_text("+7 (916) 706-76-60")
    await clients_group.get_by_role("link", name=re.compile("ИП Фёдоров Алексей")).click()
    await expect(page).to_have_url(re.compile(rf"/clients/{client['id']}$"))
    await expect(page.get_by_role("heading", name="ИП Фёдоров Алексей")).to_be_visible()

    # Enter: the results page, grouped too
    box = page.get_by_role("searchbox", name="Поиск по клиентам, сделкам, сообщениям")
    await box.fill("zakaz@sever")
    await expect(page.locator("#search-suggest .search-hit")).to_have_count(1)
    await box.press("Enter")
    await expect(page).to_have_url(re.compile(r"/search\?q=zakaz%40sever$"))
    await expect(page.get_by_role("heading", name="Поиск", exact=True)).to_be_visible()
    results = page.locator(".search-results")
    await expect(results.locator("h2")).to_have_text(["Клиенты"])
    await expect(results.locator(".search-snippet")).to_have_text("zakaz@severny-veter.ru")

    # nothing found says so; Escape closes the dropdown
    box = page.get_by_role("searchbox", name="Поиск по клиентам, сделкам, сообщениям")
    await box.fill("несуществующее")
    await expect(page.locator("#search-suggest")).to_have_text("Ничего не найдено")
    await box.press("Escape")
    await expect(page.locator("#search-suggest")).to_be_empty()
