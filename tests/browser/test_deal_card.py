"""In a real browser: the deal card — the stage change in the timeline, moving through the stage bar,
notes (Ctrl+Enter), filters, pinning, a file attached and downloaded, another user's note live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.browser.test_foundation import log_in
from tests.integration.conftest import PASSWORD, make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


class HubApi:
    """The JSON API over HTTP, as another program (or another user's script) would call it."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    @classmethod
    async def login(cls, session: aiohttp.ClientSession, base: str, login: str) -> HubApi:
        body = {"login": login, "password": PASSWORD}
        async with session.post(f"{base}/api/v1/auth/token", json=body) as r:
            assert r.status == 200, await r.text()
            return cls(session, base, (await r.json())["token"])

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with self.session.request(method, self.base + path, json=body,
                                        headers={"Authorization": f"Bearer {self.token}"}) as r:
            assert r.status == status, await r.text()
            return await r.json()


async def test_deal_card_timeline_flows(page: Any, app: web.Application, hub_url: str,
                                        tmp_path: Path) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await make_user(app, "boss", "manager", "Ольга Начальникова")
    async with aiohttp.ClientSession() as http:
        agent = await HubApi.login(http, hub_url, "agent")
        boss = await HubApi.login(http, hub_url, "boss")
        client = await agent.call("POST", "/api/v1/clients", {"name": "ООО «Ромашка»",
                                                              "phones": ["+7 916 123-45-67"]}, 201)
        deal = await agent.call("POST", "/api/v1/deals", {
            "title": "Поставка бумаги", "client_id": client["id"], "amount": 150000}, 201)
        stages = (await agent.call("GET", f"/api/v1/pipelines/{deal['pipeline_id']}"))["stages"]
        await agent.call("POST", f"/api/v1/deals/{deal['id']}/move", {
            "stage_id": stages[1]["id"], "result": "Клиент попросил коммерческое предложение"})

        await log_in(page, "agent")
        await page.goto(f"/deals/{deal['id']}")
        await expect(page.get_by_role("heading", name="Поставка бумаги", level=1)).to_be_visible()
        await expect(page.locator("body")).to_have_attribute("data-live", "true")
        await page.evaluate("window.__sameDocument = true")
        stream = page.locator(".tl-stream")
        first = stream.locator(".tl-entry").first
        await expect(first).to_contain_text(f"{stages[0]['name']} → {stages[1]['name']}")
        await expect(first).to_contain_text("Результат: Клиент попросил коммерческое предложение")
        await expect(page.locator(".composer input[name=channel][value=sms]")).to_be_checked()
        await expect(page.locator(".composer input[name=channel][value=telegram]")).to_be_disabled()

        # move on through the stage bar: the dialog, then the card and the timeline change in place
        await page.locator(f'a[data-move-stage="{stages[2]["id"]}"]').click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text(stages[2]["name"])
        await dialog.get_by_label("Результат последнего взаимодействия").fill("Отправили КП на 150 000 ₽")
        await dialog.get_by_label("Что сделать").fill("Уточнить решение")
        await dialog.get_by_role("button", name="Перевести").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator(".stage.current")).to_contain_text(stages[2]["name"])
        await expect(first).to_contain_text("Результат: Отправили КП на 150 000 ₽")

        # a note with Ctrl+Enter
        note = page.get_by_placeholder("Напишите заметку… (Ctrl+Enter — сохранить)")
        await note.fill("Директор в отпуске до понедельника")
        await note.press("Control+Enter")
        await expect(first).to_contain_text("Директор в отпуске до понедельника")
        await expect(note).to_have_value("")

        # filters
        chips = page.get_by_role("group", name="Показать в хронологии")
        await chips.get_by_role("link", name="Заметки").click()
        await expect(stream.locator(".tl-entry")).to_have_count(1)
        await expect(stream).not_to_contain_text("Результат:")
        await chips.get_by_role("link", name="Этапы").click()
        await expect(stream.locator(".tl-entry")).to_have_count(2)
        await expect(stream).not_to_contain_text("Директор в отпуске")
        await chips.get_by_role("link", name="Все").click()
        await expect(stream.locator(".tl-entry")).to_have_count(3)

        # an older note pinned goes on top
        await agent.call("POST", f"/api/v1/deals/{deal['id']}/notes", {"text": "Пропуск на склад заказан"},
                         201)
        await expect(first).to_contain_text("Пропуск на склад заказан")  # live, it is our own deal
        older = stream.locator(".tl-entry", has_text="Директор в отпуске")
        await older.get_by_role("button", name="Закрепить").click()
        pinned = page.locator(".tl-pinned")
        await expect(pinned).to_contain_text("Директор в отпуске до понедельника")
        await expect(page.locator(".tl-pinned ~ .tl-stream")).to_have_count(1)  # the pinned section on top
        await pinned.get_by_role("button", name="Открепить").click()
        await expect(pinned).to_have_count(0)

        # a note with a small file, downloaded back
        sample = tmp_path / "Счёт 17.txt"
        sample.write_text("Счёт на оплату № 17", encoding="utf-8")
        await note.fill("Счёт во вложении")
        await page.locator(".tl-file input[type=file]").set_input_files(str(sample))
        await page.get_by_role("button", name="Добавить заметку").click()
        attached = first.get_by_role("link", name=re.compile("Счёт 17.txt"))
        await expect(attached).to_be_visible()
        async with page.expect_download() as info:
            await attached.click()
        download = await info.value
        assert download.suggested_filename == "Счёт 17.txt"
        saved = await download.path()
        with open(saved, encoding="utf-8") as f:  # noqa: ASYNC230 (a few bytes)
            assert f.read() == "Счёт на оплату № 17"

        # another user writes a note through the API: it appears without a reload
        await boss.call("POST", f"/api/v1/deals/{deal['id']}/notes", {"text": "Согласовала скидку 5 %"}, 201)
        await expect(first).to_contain_text("Согласовала скидку 5 %")
        await expect(first).to_contain_text("Ольга Начальникова")
        assert await page.evaluate("window.__sameDocument === true"), "the page must not reload"


async def test_edit_in_place_and_errors_next_to_the_field(page: Any, app: web.Application,
                                                          hub_url: str) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    async with aiohttp.ClientSession() as http:
        agent = await HubApi.login(http, hub_url, "agent")
        client = await agent.call("POST", "/api/v1/clients", {"name": "<script>alert(1)</script>"}, 201)
        deal = await agent.call("POST", "/api/v1/deals", {"title": "Кресла", "client_id": client["id"],
                                                          "amount": 1000}, 201)
        await log_in(page, "agent")
        await page.goto(f"/deals/{deal['id']}")
        await expect(page.get_by_role("link", name="<script>alert(1)</script>").first).to_be_visible()
        await expect(page.locator("body")).to_have_attribute("data-live", "true")
        amount = page.locator("#df-amount")
        await amount.get_by_role("link", name="Изменить: Сумма").click()
        field = amount.get_by_role("textbox", name="Сумма")
        await expect(field).to_be_focused()
        await field.fill("сто")
        await amount.get_by_role("button", name="Сохранить").click()
        await expect(amount.locator(".field-error")).to_have_text("Введите число.")
        await field.fill("1 234 567,5")
        await field.press("Enter")
        await expect(amount).to_contain_text(re.compile(r"1\s234\s567,50\s₽"))
        await expect(amount.get_by_role("link", name="Изменить: Сумма")).to_be_focused()
        assert (await agent.call("GET", f"/api/v1/deals/{deal['id']}"))["amount"] == 1234567.5

        # Escape cancels; someone else's change re-renders the card live
        await amount.get_by_role("link", name="Изменить: Сумма").click()
        await expect(field).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(amount.locator("form")).to_have_count(0)
        await agent.call("PATCH", f"/api/v1/deals/{deal['id']}", {"title": "Кресла офисные"})
        await expect(page.get_by_role("heading", name="Кресла офисные", level=1)).to_be_visible()


async def test_the_card_at_phone_width(page: Any, app: web.Application, hub_url: str) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    async with aiohttp.ClientSession() as http:
        agent = await HubApi.login(http, hub_url, "agent")
        client = await agent.call("POST", "/api/v1/clients", {"name": "ИП Смирнов"}, 201)
        deal = await agent.call("POST", "/api/v1/deals", {"title": "Ремонт офиса", "client_id": client["id"]},
                                201)
    await page.set_viewport_size({"width": 390, "height": 844})
    await log_in(page, "agent")
    await page.goto(f"/deals/{deal['id']}")
    await expect(page.get_by_role("heading", name="Ремонт офиса", level=1)).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width}px"
    await expect(page.get_by_text("В хронологии пока пусто.")).to_be_visible()
