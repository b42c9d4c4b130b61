"""In a real browser: an administrator's settings (users, stages, loss reasons); agents get a 403 page."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.browser.test_foundation import expect, log_in
from tests.integration.conftest import make_user


async def stage_names(page: Any) -> list[str]:
    return await page.locator("#stage-list input[name=stage_name]").evaluate_all(
        "inputs => inputs.map(i => i.value)"
    )


async def test_admin_creates_a_user_reorders_and_renames_stages_adds_a_loss_reason(
    page: Any, app: web.Application
) -> None:
    await make_user(app, "admin", "admin", "Анна Админова")
    await log_in(page, "admin")
    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Настройки").click()
    await expect(page.get_by_role("heading", name="Пользователи")).to_be_visible()

    # a user with extension 103; first a mistake, shown next to the field
    await page.get_by_role("link", name="Новый пользователь").click()
    await page.get_by_label("Имя").fill("Ольга Новая")
    await page.get_by_label("Логин").fill("olga")
    await page.get_by_role("button", name="Создать пользователя").click()
    await expect(page.locator("#err-password")).to_have_text("Введите пароль.")
    await expect(page.get_by_role("textbox", name="Пароль")).to_be_focused()  # the field to fix
    await page.get_by_role("textbox", name="Пароль").fill("s3cret-pass")
    await page.locator("select[name=role]").select_option("manager")
    await page.get_by_label("Внутренние номера").fill("103")
    await page.get_by_role("button", name="Создать пользователя").click()
    await expect(page.get_by_role("status")).to_have_text("Создано.")
    row = page.locator("tr", has=page.get_by_role("link", name="Ольга Новая"))
    await expect(row).to_contain_text("103")
    await expect(row).to_contain_text("Менеджер")

    # stages: move with the keyboard, drag with the mouse, rename; the order stays after a reload
    await page.get_by_role("link", name="Воронки и этапы").click()
    await expect(page).to_have_url(re.compile(r"/settings/pipelines/\d+$"))
    before = await stage_names(page)
    assert len(before) >= 4
    rows = page.locator("#stage-list [data-stage-row]")
    down = rows.nth(0).get_by_role("button", name="Ниже")
    await down.focus()
    await page.keyboard.press("Enter")
    assert await stage_names(page) == [before[1], before[0], *before[2:]]
    await expect(page.locator("#stage-announce")).to_contain_text(f"{before[0]}: теперь на месте 2")
    await expect(rows.nth(1).get_by_role("button", name="Ниже")).to_be_focused()

    await rows.nth(3).locator(".drag").drag_to(rows.nth(0).locator(".drag"))
    expected = [before[3], before[1], before[0], before[2], *before[4:]]
    await expect(page.locator("#stage-list input[name=stage_name]").first).to_have_value(before[3])
    assert await stage_names(page) == expected

    await rows.nth(1).locator("input[name=stage_name]").fill("Первый звонок")
    expected[1] = "Первый звонок"
    await page.get_by_role("button", name="Сохранить воронку").click()
    await expect(page.get_by_role("status")).to_have_text("Сохранено.")
    await page.reload()
    assert await stage_names(page) == expected

    # a stage with deals cannot go; a new one can be added and removed
    await page.get_by_role("button", name="Добавить этап").click()
    await expect(page.locator("#stage-list input[name=stage_name]:focus")).to_have_count(1)
    await page.keyboard.type("Договор подписан")
    await page.get_by_role("button", name="Сохранить воронку").click()
    await expect(page.get_by_role("status")).to_have_text("Сохранено.")
    assert "Договор подписан" in await stage_names(page)
    added = page.locator("[data-stage-row]", has=page.locator("input[value='Договор подписан']"))
    await added.get_by_role("button", name="Удалить").click()
    await expect(added).to_have_class(re.compile("removed"))
    await page.get_by_role("button", name="Сохранить воронку").click()
    await expect(page.get_by_role("status")).to_have_text("Сохранено.")
    assert await stage_names(page) == expected

    # a loss reason
    await page.get_by_role("link", name="Причины отказа").click()
    await page.get_by_label("Новая причина отказа").fill("Выбрали <b>конкурента</b>")
    await page.get_by_role("button", name="Добавить", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Создано.")
    await expect(
        page.locator(".reason-list .row-title", has_text="Выбрали <b>конкурента</b>")
    ).to_be_visible()
    await page.get_by_role("button", name="Отключить: Выбрали <b>конкурента</b>").click()
    await expect(
        page.locator(".reason-list li.inactive", has_text="Выбрали <b>конкурента</b>")
    ).to_be_visible()


async def test_an_agent_gets_the_403_page(page: Any, app: web.Application) -> None:
    await make_user(app, "agent", "agent", "Иван Агентов")
    await log_in(page, "agent")
    response = await page.goto("/settings/pipelines")
    assert response.status == 403
    await expect(
        page.get_by_role("heading", name="Этот раздел доступен только администраторам")
    ).to_be_visible()
    await expect(
        page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Настройки")
    ).to_have_count(0)
