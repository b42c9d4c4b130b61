"""In a real browser: a new client with a phone, found by the phone in another format, its card's tabs
and a contact person; a hostile name stays text; a lead made a client; the card going live."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from hub.crm import clients, leads
from hub.crm.models import User
from hub.web.keys import DB
from tests.browser.test_foundation import log_in
from tests.integration.conftest import make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


async def user_named(app: web.Application, login: str) -> User:
    from sqlalchemy import select

    async with app[DB].reading() as s:
        user = (await s.scalars(select(User).where(User.login == login))).one()
        s.expunge(user)
        return user


async def test_create_a_client_find_it_by_phone_open_the_card_and_add_a_contact(page: Any,
                                                                                app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await log_in(page, "agent")
    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Клиенты").click()
    await expect(page.get_by_role("heading", name="Клиенты", exact=True)).to_be_visible()
    await expect(page.get_by_text("Клиентов пока нет.")).to_be_visible()

    await page.get_by_role("link", name="Новый клиент").click()
    form = page.locator("#new-client form")
    await expect(form.get_by_label("Название")).to_be_focused()
    # A bad phone: the reason shows next to the field, what was typed stays.
    await form.get_by_label("Название").fill("ООО «Ромашка»")
    await form.get_by_label("Телефоны").fill("12345")
    await form.get_by_role("button", name="Создать клиента").click()
    await expect(page.locator("#new-err-phones")).to_have_text("«12345» — не номер телефона.")
    phones = page.locator("#new-client").get_by_label("Телефоны")
    await expect(phones).to_have_attribute("aria-invalid", "true")
    await expect(phones).to_be_focused()  # the first field to fix

    form = page.locator("#new-client form")
    await form.get_by_label("Телефоны").fill("+7 916 123-45-67")
    await form.get_by_label("E-mail").fill("office@romashka.ru")
    await form.get_by_label("Теги").fill("VIP")
    await form.get_by_role("button", name="Создать клиента").click()
    await expect(page).to_have_url(re.compile(r"/clients/\d+$"))
    await expect(page.get_by_role("heading", name="ООО «Ромашка»")).to_be_visible()
    card_url = page.url

    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Клиенты").click()
    await page.get_by_role("searchbox", name="Поиск", exact=True).fill("8 (916) 123-45-67")
    await page.get_by_role("button", name="Найти").click()
    await expect(page).to_have_url(re.compile(r"q=8"))
    rows = page.locator("#client-rows > li.person-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("+7 916 123-45-67")
    await rows.first.get_by_role("link", name="ООО «Ромашка»").click()
    await expect(page).to_have_url(card_url)

    tabs = page.get_by_role("navigation", name="Разделы карточки клиента")
    for name in ("Основное", "Реквизиты", "Контактные лица", "Сделки", "Задачи", "Хронология"):
        await expect(tabs.get_by_role("link", name=name)).to_be_visible()
    call = page.get_by_role("button", name="Позвонить")
    await expect(call).to_be_disabled()
    await expect(call).to_have_attribute("title", "Звонки из CRM появятся с подключением телефонии.")
    # "Написать" next to the e-mail opens the timeline's composer on e-mail, the subject asked for
    await page.get_by_role("link", name="Написать").click()
    await expect(page).to_have_url(re.compile(r"\?tab=timeline&write=email#timeline$"))
    await expect(page.get_by_role("radio", name=re.compile("E-mail"))).to_be_checked()
    await expect(page.get_by_label("Тема")).to_be_visible()
    await page.goto(card_url)

    await tabs.get_by_role("link", name="Контактные лица").click()
    await expect(page.get_by_text("Контактных лиц пока нет.")).to_be_visible()
    add = page.locator("form[action$='/contacts']")
    await add.get_by_label("Имя").fill("Пётр Сидоров")
    await add.get_by_label("Должность").fill("Директор")
    await add.get_by_label("Телефоны").fill("8 903 111 22 33")
    await add.get_by_role("button", name="Добавить контактное лицо").click()
    person = page.locator("li.contact")
    await expect(person).to_have_count(1)
    await expect(person.get_by_role("heading", name="Пётр Сидоров")).to_be_visible()
    await expect(person).to_contain_text("+7 903 111-22-33")
    await expect(person.get_by_role("button", name="Позвонить")).to_be_disabled()

    # At phone width the card still reads: no sideways scrolling of the page.
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390


async def test_a_hostile_client_name_shows_as_text(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    hostile = "<script>alert(1)</script>"
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await log_in(page, "agent")
    await page.goto("/clients")
    await page.get_by_role("link", name="Новый клиент").click()
    form = page.locator("#new-client form")
    await form.get_by_label("Название").fill(hostile)
    await form.get_by_role("button", name="Создать клиента").click()
    await expect(page.get_by_role("heading", name=hostile)).to_be_visible()
    await page.goto("/clients")
    await expect(page.get_by_role("link", name=hostile)).to_be_visible()
    await page.goto("/clients?q=" + "script")
    await expect(page.get_by_role("link", name=hostile)).to_be_visible()
    assert dialogs == []


async def test_a_lead_made_a_client_lands_on_its_card_with_the_phone(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await log_in(page, "agent")
    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Лиды").click()
    await expect(page.get_by_text("Лидов пока нет.")).to_be_visible()
    await page.get_by_role("link", name="Новый лид").click()
    form = page.locator("#new-lead form")
    await form.get_by_label("Имя или название").fill("Светлана с выставки")
    await form.get_by_label("Источник").fill("выставка")
    await form.get_by_label("Телефоны").fill("8 (903) 555-44-33")
    await form.get_by_role("button", name="Создать лид").click()
    await expect(page).to_have_url(re.compile(r"/leads/\d+$"))
    await expect(page.get_by_role("heading", name="Светлана с выставки")).to_be_visible()
    await expect(page.get_by_text("+7 903 555-44-33")).to_be_visible()

    await page.get_by_role("link", name="Сделать клиентом").click()
    dialog = page.get_by_role("dialog", name="Сделать лид клиентом")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Название клиента")).to_have_value("Светлана с выставки")
    await dialog.get_by_label("Тип").select_option("company")
    await dialog.get_by_label("Название клиента").fill("ООО «Светлана»")
    await dialog.get_by_label("Контактное лицо (необязательно)").fill("Светлана Ивановна")
    await dialog.get_by_role("button", name="Создать клиента").click()

    await expect(page).to_have_url(re.compile(r"/clients/\d+$"))
    await expect(page.get_by_role("heading", name="ООО «Светлана»")).to_be_visible()
    await expect(page.get_by_text("+7 903 555-44-33")).to_be_visible()
    await page.get_by_role("link", name="Контактные лица").click()
    await expect(page.get_by_role("heading", name="Светлана Ивановна")).to_be_visible()


async def test_the_card_and_the_lead_list_go_live(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await make_user(app, "boss", "admin", "Анна Админова")
    agent, boss = await user_named(app, "agent"), await user_named(app, "boss")
    async with app[DB].transaction() as s:
        customer = await clients.create_client(s, agent, {"name": "ООО Было", "manager_id": agent.id})
    await log_in(page, "agent")
    await page.goto(f"/clients/{customer['id']}")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    async with app[DB].transaction() as s:
        await clients.update_client(s, boss, customer["id"], {"name": "ООО Стало"})
    await expect(page.get_by_role("heading", name="ООО Стало")).to_be_visible()

    await page.goto("/leads")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    async with app[DB].transaction() as s:
        await leads.create_lead(s, None, {"name": "Входящий звонок", "phones": ["+79160000001"]})
    await expect(page.get_by_role("link", name="Входящий звонок")).to_be_visible()


async def test_show_more_appends_the_next_page_in_place(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    agent = await user_named(app, "agent")
    async with app[DB].transaction() as s:
        for n in range(30):
            await clients.create_client(s, agent, {"name": f"Клиент {n:02d}"})
    await log_in(page, "agent")
    await page.goto("/clients")
    rows = page.locator("#client-rows > li.person-row")
    await expect(rows).to_have_count(25)
    await page.get_by_role("link", name="Показать ещё").click()
    await expect(rows).to_have_count(30)
    await expect(page.get_by_role("link", name="Показать ещё")).to_have_count(0)
    await expect(page).to_have_url(re.compile(r"/clients$"))  # appended in place, no navigation
    await expect(rows.last).to_contain_text("Клиент 00")
