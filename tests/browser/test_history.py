"""In a real browser: the history of changes — a deal's amount edited on its card shows in the card's
«История изменений» (and so does another user's change, live, while it is open); the client card's
tab and the task dialog show theirs."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp import web

from tests.browser.test_deal_card import HubApi
from tests.browser.test_foundation import log_in
from tests.integration.conftest import make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


async def test_an_amount_edited_on_the_deal_card_shows_in_its_history(page: Any, app: web.Application,
                                                                      hub_url: str) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await make_user(app, "boss", "manager", "Ольга Начальникова")
    async with aiohttp.ClientSession() as http:
        agent = await HubApi.login(http, hub_url, "agent")
        boss = await HubApi.login(http, hub_url, "boss")
        client = await agent.call("POST", "/api/v1/clients", {"name": "ООО «Ромашка»"}, 201)
        deal = await agent.call("POST", "/api/v1/deals", {"title": "Кресла", "client_id": client["id"],
                                                          "amount": 1000}, 201)
        await log_in(page, "agent")
        await page.goto(f"/deals/{deal['id']}")
        await expect(page.locator("body")).to_have_attribute("data-live", "true")
        amount = page.locator("#df-amount")
        await amount.get_by_role("link", name="Изменить: Сумма").click()
        await amount.get_by_role("textbox", name="Сумма").fill("2 500,5")
        await amount.get_by_role("button", name="Сохранить").click()
        await expect(amount).to_contain_text(re.compile(r"2\s500,50\s₽"))

        section = page.locator("details#history")
        await section.get_by_text("История изменений").click()
        change = section.locator(".hist-item[data-field=amount]")
        await expect(change).to_contain_text("Сумма")
        await expect(change.locator(".hist-before")).to_have_text(re.compile(r"1\s000,00\s₽"))
        await expect(change.locator(".hist-after")).to_have_text(re.compile(r"2\s500,50\s₽"))
        await expect(change.locator(".hist-who")).to_have_text("Иван Агентов")
        await expect(section.locator(".hist-item").last).to_contain_text("Создание записи: Кресла")

        # while it is open, another user's change comes in live
        await boss.call("PATCH", f"/api/v1/deals/{deal['id']}", {"tags": ["срочно"]})
        tags = section.locator(".hist-item[data-field=tags]")
        await expect(tags).to_contain_text("Теги")
        await expect(tags.locator(".hist-after")).to_have_text("срочно")
        await expect(tags.locator(".hist-who")).to_have_text("Ольга Начальникова")
        await expect(section.locator(".hist-item").first).to_have_attribute("data-field", "tags")


async def test_the_client_tab_and_the_task_dialog(page: Any, app: web.Application, hub_url: str) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    async with aiohttp.ClientSession() as http:
        agent = await HubApi.login(http, hub_url, "agent")
        client = await agent.call("POST", "/api/v1/clients", {"name": "ИП Смирнов"}, 201)
        await agent.call("PATCH", f"/api/v1/clients/{client['id']}", {"region": "Тверь",
                                                                      "phones": ["+7 916 123-45-67"]})
        task = await agent.call("POST", "/api/v1/tasks", {"subject": "Позвонить Смирнову"}, 201)
        await agent.call("PATCH", f"/api/v1/tasks/{task['id']}", {"percent": 40})
    await log_in(page, "agent")
    await page.goto(f"/clients/{client['id']}")
    await page.get_by_role("navigation", name="Разделы карточки клиента").get_by_role(
        "link", name="История изменений").click()
    await expect(page).to_have_url(re.compile(r"tab=history"))
    history = page.locator(".hist-list")
    await expect(history.locator(".hist-item[data-field=region]")).to_contain_text("Регион: — → Тверь")
    await expect(history.locator(".hist-item[data-field=phones]")).to_contain_text("+79161234567")

    await page.goto("/tasks")
    await page.get_by_role("link", name="Позвонить Смирнову").click()
    dialog = page.locator("#task-dialog")
    await expect(dialog.get_by_role("textbox", name="Тема")).to_have_value("Позвонить Смирнову")
    await dialog.get_by_text("История изменений").click()
    percent = dialog.locator(".hist-item[data-field=percent]")
    await expect(percent).to_contain_text("Процент выполнения: 0 → 40")
