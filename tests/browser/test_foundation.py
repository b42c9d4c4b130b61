"""In a real browser: logging in, the desktop in Russian and English, the bell going live."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.crm import notifications, tasks
from hub.crm.models import User
from hub.web.keys import DB
from tests.integration.conftest import PASSWORD, make_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


async def log_in(page: Any, login: str, password: str = PASSWORD) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.get_by_label("Логин").fill(login)
    await page.get_by_label("Пароль").fill(password)
    await page.get_by_role("button", name="Войти").click()
    await expect(page.get_by_role("heading", name="Мои задачи на сегодня")).to_be_visible()


async def test_log_in_see_the_desktop_in_russian_switch_to_english_and_back(page: Any,
                                                                            app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await page.goto("/login")
    await page.get_by_label("Логин").fill("agent")
    await page.get_by_label("Пароль").fill("wrong password")
    await page.get_by_role("button", name="Войти").click()
    await expect(page.get_by_role("alert")).to_have_text("Неверный логин или пароль.")

    await log_in(page, "agent")
    assert await page.locator("html").get_attribute("lang") == "ru"
    nav = page.get_by_role("navigation", name="Разделы")
    for label in ("Рабочий стол", "Клиенты", "Лиды", "Сделки", "Задачи", "Звонки", "Отчёты"):
        await expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    await expect(nav.get_by_role("link", name="Настройки")).to_have_count(0)
    await expect(page.locator("header .who")).to_have_text("Иван Агентов")
    await expect(page.get_by_text("Телефония и каналы сообщений ещё не подключены.")).to_be_visible()

    await page.get_by_role("button", name="EN").click()
    await expect(page.get_by_role("heading", name="My tasks for today")).to_be_visible()
    assert await page.locator("html").get_attribute("lang") == "en"
    sections = page.get_by_role("navigation", name="Sections")
    await expect(sections.get_by_role("link", name="Deals")).to_be_visible()
    await page.get_by_role("link", name="Calls").click()
    await expect(page.get_by_role("heading", name="Telephony is not connected yet")).to_be_visible()

    await page.get_by_role("button", name="RU").click()
    await expect(page.get_by_role("heading", name="Телефония ещё не подключена")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/calls$"))
    await page.get_by_role("button", name="Выйти").click()
    await expect(page.get_by_role("button", name="Войти")).to_be_visible()


async def test_the_bell_lights_up_live_and_goes_dark_after_mark_read(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await log_in(page, "agent")
    dot = page.get_by_test_id("bell-dot")
    await expect(dot).to_have_count(0)
    await expect(page.locator("body")).to_have_attribute("data-live", "true")  # the event stream is open
    await page.evaluate("window.__sameDocument = true")

    async with app[DB].transaction() as s:
        agent = (await s.execute(User.__table__.select().where(User.login == "agent"))).one()
        await notifications.notify(s, agent.id, kind="task", title="Новая задача: позвонить в «Ромашку»",
                                   text="Назначил Пётр", link="/tasks/1")

    await expect(dot).to_be_visible()
    assert await page.evaluate("window.__sameDocument === true"), "the page must not reload"
    summary = page.locator("#bell summary")
    await expect(summary).to_have_attribute("aria-label", "1 непрочитанное уведомление")
    await summary.click()
    await expect(page.get_by_text("Новая задача: позвонить в «Ромашку»")).to_be_visible()
    await page.get_by_role("button", name="Отметить прочитанными").click()
    await expect(dot).to_have_count(0)
    await expect(page.get_by_text("Новая задача: позвонить в «Ромашку»")).to_be_visible()  # still listed
    assert await page.evaluate("window.__sameDocument === true")

    await page.keyboard.press("Escape")
    await expect(page.get_by_role("button", name="Отметить прочитанными")).to_be_hidden()
    await expect(summary).to_be_focused()

    await page.reload()
    await expect(page.get_by_role("heading", name="Мои задачи на сегодня")).to_be_visible()
    await expect(dot).to_have_count(0)


async def test_the_desktop_updates_live_when_someone_assigns_a_task(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await make_user(app, "boss", "manager", "Ольга Начальникова")
    await log_in(page, "agent")
    await expect(page.get_by_text("На сегодня задач нет.")).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await page.evaluate("window.__sameDocument = true")

    async with app[DB].transaction() as s:
        boss = await s.scalar(select(User).where(User.login == "boss"))
        agent = await s.scalar(select(User).where(User.login == "agent"))
        assert boss is not None and agent is not None
        await tasks.create_task(s, boss, {"subject": "Перезвонить в «Ромашку»", "assignee_id": agent.id,
                                          "due_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()})

    today = page.locator("section", has=page.get_by_role("heading", name=re.compile("Мои задачи на сегодня")))
    await expect(today.get_by_role("link", name="Перезвонить в «Ромашку»")).to_be_visible()
    await expect(today.get_by_text("Просрочено")).to_be_visible()
    await expect(page.get_by_test_id("bell-dot")).to_be_visible()
    assert await page.evaluate("window.__sameDocument === true"), "the page must not reload"
