"""In a real browser: the header's "Кто свободен" dropdown lists the agents with their phones' states and
follows a call live (the fake Asterisk replays inbound_answered: 101 rings, talks, is free again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from hub.config import Config
from hub.db import Database
from tests.browser.test_foundation import log_in
from tests.fakes.ami_server import FakeAmiServer
from tests.integration.conftest import PASSWORD
from tests.integration.test_ami_connection import until

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        fake.devices.update({"PJSIP/101": "NOT_INUSE", "PJSIP/102": "UNAVAILABLE"})
        yield fake


@pytest.fixture
async def seeded(database: Database) -> None:
    from hub.crm import users

    async with database.transaction() as s:
        await users.create_or_update_user(s, "agent", PASSWORD, "agent", name="Иван Агентов",
                                          extensions=["101"])
        await users.create_or_update_user(s, "maria", PASSWORD, "agent", name="Мария Смирнова",
                                          extensions=["102"])


@pytest.fixture
def app(config: Config, ami: FakeAmiServer, seeded: None) -> web.Application:
    from hub.app import create_app

    config.asterisk.host, config.asterisk.port = ami.host, ami.port
    config.asterisk.username, config.asterisk.secret = "hub", "hubsecret"
    config.asterisk.trunks = ["trunk"]
    return create_app(config)


async def test_who_is_free_follows_a_call_live(page: Any, ami: FakeAmiServer) -> None:
    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await until(lambda: ami.clients >= 1, within=5)
    panel = page.get_by_test_id("presence")
    await panel.locator("summary").click()
    ivan = panel.locator(".presence-item", has_text="Иван Агентов")
    maria = panel.locator(".presence-item", has_text="Мария Смирнова")
    await expect(ivan).to_have_attribute("data-state", "free")
    await expect(ivan).to_contain_text("Свободен")
    await expect(maria).to_have_attribute("data-state", "unavailable")
    await expect(maria).to_contain_text("Не в сети")
    await expect(page.get_by_test_id("presence-free")).to_have_text("1")

    replay = await ami.push("inbound_answered", stop_before="HangupRequest")
    await expect(ivan).to_have_attribute("data-state", "on_call")
    await expect(ivan).to_contain_text("Разговаривает")
    await expect(page.get_by_test_id("presence-free")).to_have_text("0")
    assert await panel.get_attribute("open") is not None  # the refresh left the dropdown open

    await ami.push("inbound_answered", start_at=len(replay.messages), rewriter=replay.rewriter)
    await expect(ivan).to_have_attribute("data-state", "free")
    await page.keyboard.press("Escape")
    assert await panel.get_attribute("open") is None
