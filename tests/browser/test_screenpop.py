"""In a real browser, the whole chain: the fake Asterisk replays ``inbound_answered`` → the hub's AMI
connection and tracker → the CRM intake → ``call.ringing`` on the agent's event stream → the
screen-pop shows the client's name; the call ends → the popup closes; ``/calls`` lists the call.
Also: the popup built from an event published on the bus directly (identification, buttons,
Escape, stacking, user data as text)."""

from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from hub.config import Config
from hub.db import Database
from tests.browser.test_foundation import log_in
from tests.conftest import BACKENDS
from tests.fakes.ami_server import LOGIN_ARTIFACTS, FakeAmiServer, load_trace
from tests.integration.conftest import PASSWORD
from tests.integration.test_ami_connection import until

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says why: skipped, or failed with CI=true
    expect = None

CALLER = "+79161234567"  # the caller of the inbound_answered trace


def ringing(call_id: int, **fields: Any) -> dict[str, Any]:
    """A whole ``call.ringing`` (the PopUp shape: tests/conftest.py checks every one published)."""
    return {"call_id": call_id, "call_key": f"1700000000.{call_id}", "direction": "inbound", "number": None,
            "did": None, "extension": "101", "started_at": None, "matches": [], "unknown": True,
            "ignored": False, "caller_name": None, "hidden_number": False, "lead_created": None,
            "unknown_caller": "auto", **fields}
CLIENT = "ООО «Ромашка»"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The screen-pop in the browser on both databases (the other browser tests: SQLite only)."""
    return str(request.param)


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer() as fake:
        yield fake


@pytest.fixture
async def seeded(database: Database) -> None:
    """Agent 101 and the caller's client exist before the hub starts (it reads extensions at startup)."""
    from hub.crm import clients, users
    from hub.crm.models import User

    async with database.transaction() as s:
        await users.create_or_update_user(s, "agent", PASSWORD, "agent", name="Иван Агентов",
                                          extensions=["101"])
    async with database.transaction() as s:
        actor = await s.scalar(select(User).where(User.login == "agent"))
        assert actor is not None
        await clients.create_client(s, actor, {"name": CLIENT, "phones": ["8 (916) 123-45-67"],
                                               "manager_id": actor.id})


@pytest.fixture
def app(config: Config, ami: FakeAmiServer, seeded: None, tmp_path: Path) -> web.Application:
    from hub.app import create_app

    config.asterisk.recordings_dir = str(tmp_path / "recordings")

    config.asterisk.host, config.asterisk.port = ami.host, ami.port
    config.asterisk.username, config.asterisk.secret = "hub", "hubsecret"
    config.asterisk.trunks = ["trunk"]
    return create_app(config)


EXPECTED: set[str] = set()  # "502 /api/v1/calls/originate": refusals a test provokes on purpose


@pytest.fixture
async def page(browser: Any, hub_url: str) -> AsyncIterator[Any]:
    """As tests/browser/conftest.py's, but an error status a test asks for is not a browser error."""
    from tests.browser.conftest import TIMEOUT_MS

    EXPECTED.clear()
    context = await browser.new_context(base_url=hub_url, locale="ru-RU",
                                        viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)

    def response(r: Any) -> None:
        path = r.url.split("//", 1)[-1].split("/", 1)[-1]
        expected = f"{r.status} /{path}" in EXPECTED
        if r.status >= 400 and r.request.resource_type != "document" and not expected:
            errors.append(f"{r.status} {r.url}")

    page.on("response", response)
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"errors in the browser: {errors}"


def _split(trace: str, event: str, **headers: str) -> int:
    """How many events of the trace come before the first ``event`` (with these ``headers``), as the fake
    server counts them."""
    events = [m for m in load_trace(trace) if "Event" in m and m["Event"] not in LOGIN_ARTIFACTS]
    return next(i for i, m in enumerate(events)
                if m["Event"] == event and all(m.get(k) == v for k, v in headers.items()))


def _recording(messages: list[dict[str, Any]], directory: Path) -> None:
    """The MixMonitor file the replay announced (fresh name), as one second of silence."""
    name = next(m["File"] for m in messages if m.get("Event") == "UserEvent" and m.get("File"))
    directory.mkdir(parents=True, exist_ok=True)
    with wave.open(str(directory / Path(name).name), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000)


async def test_inbound_call_pops_up_closes_and_lands_in_the_journal(page: Any, ami: FakeAmiServer,
                                                                    config: Config) -> None:
    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)  # the screen-pop subscribes when the stream opens
    await until(lambda: ami.clients >= 1, within=5)  # the hub is logged in to the fake Asterisk

    answered_at = _split("inbound_answered", "BridgeEnter")
    replay = await ami.push("inbound_answered", stop_before="BridgeEnter")
    popup = page.locator(".screenpop")
    # The waits are the page's default (TIMEOUT_MS): how soon the popup shows is bench/screen_pop.py's
    # figure (p99 < 50 ms), not something a browser on a loaded box can time.
    await expect(popup).to_have_count(1)
    await expect(popup.locator(".sp-name")).to_contain_text(CLIENT)
    await expect(popup.get_by_role("link", name="Открыть карточку")).to_have_attribute(
        "href", re.compile(r"^/clients/\d+$"))
    await expect(popup.get_by_text("Иван Агентов")).to_be_visible()  # the main manager

    rest = await ami.push("inbound_answered", start_at=answered_at, rewriter=replay.rewriter)
    await expect(popup).to_have_count(0)
    _recording(replay.messages + rest.messages, Path(config.asterisk.recordings_dir))

    await page.goto("/calls")
    row = page.locator(".call-row").first
    await expect(row).to_be_visible()
    await expect(row.locator(".call-person")).to_contain_text(CLIENT)
    await expect(row.locator(".call-agent")).to_contain_text("Иван Агентов")
    await expect(row.locator(".call-status")).to_contain_text("Отвечен")
    player = row.locator("audio")
    await expect(player).to_have_attribute("preload", "metadata")
    await page.wait_for_function("document.querySelector('.call-row audio').readyState >= 1")
    assert await player.evaluate("a => a.duration") == pytest.approx(1.0, abs=0.05)
    await player.evaluate("a => { a.currentTime = 0.5; }")  # seeking works (HTTP Range)
    await page.wait_for_function(
        "Math.abs(document.querySelector('.call-row audio').currentTime - 0.5) < 0.05")


async def test_a_queue_moving_on_closes_the_popup_of_the_agent_it_left(page: Any, ami: FakeAmiServer,
                                                                     database: Database) -> None:
    from hub.crm.models import Call

    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)  # the screen-pop subscribes when the stream opens
    await until(lambda: ami.clients >= 1, within=5)
    replay = await ami.push("queue_answered", stop_before="AgentRingNoAnswer")  # 101 rings
    popup = page.locator(".screenpop")
    await expect(popup).to_have_count(1)
    await expect(popup.locator(".sp-name")).to_contain_text(CLIENT)
    # 8 s later the queue gives up on 101 and rings 102; the caller still waits (up to 102's answer,
    # its DialEnd ANSWER, which comes long before AgentConnect)
    answer = _split("queue_answered", "DialEnd", DialStatus="ANSWER")
    rest = await ami.push("queue_answered", start_at=_split("queue_answered", "AgentRingNoAnswer"),
                          stop_after=answer, rewriter=replay.rewriter)
    await expect(popup).to_have_count(0)
    async with database.reading() as s:
        call = await s.scalar(select(Call).where(Call.linkedid == replay.linkedids[0]))
    assert call is not None and call.answered_at is None and call.ended_at is None
    await ami.push("queue_answered", start_at=answer, rewriter=rest.rewriter)


async def test_popup_from_the_bus_unknown_number_stacking_escape(page: Any, app: web.Application) -> None:
    from hub.web.keys import BUS

    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)
    me = int(await page.locator("script[src='/static/screenpop.js']").get_attribute("data-user"))
    bus = app[BUS]
    bus.publish("call.ringing", ringing(9001, number="+74950000000"), users=[me])
    bus.publish("call.ringing", ringing(9002, number=CALLER, unknown=False, matches=[{
        "type": "client", "id": 5, "client_id": 5, "name": "<img src=x onerror=alert(1)>",
        "manager": {"id": me, "name": "Иван Агентов"},
        "open_deals": [{"id": 7, "title": "Поставка", "stage": "Переговоры", "amount": 150000}],
        "last_interactions": [{"id": 1, "kind": "call", "direction": "in",
                               "occurred_at": "2026-11-23T10:00:00Z", "text": "Обсудили счёт",
                               "status": "answered", "deal_id": None}],
        "open_tasks": [{"id": 3, "subject": "Перезвонить", "kind": "task", "due_at": None, "overdue": False,
                        "assignee_id": me}]}]),
        users=[me])
    popups = page.locator(".screenpop")
    await expect(popups).to_have_count(2)
    await expect(popups.nth(0).locator(".sp-name")).to_have_text("Неизвестный номер")
    await expect(popups.nth(0).get_by_role("button", name="Создать лид")).to_be_visible()
    second = popups.nth(1)
    await expect(second.locator(".sp-name a")).to_have_text("<img src=x onerror=alert(1)>")  # text, not HTML
    assert await second.locator("img").count() == 0
    await expect(second.get_by_text("Поставка")).to_be_visible()
    await expect(second.get_by_text("Перезвонить")).to_be_visible()
    await expect(second.get_by_role("link", name="Создать сделку")).to_be_visible()

    # answered by someone else: that popup closes; Escape closes the one focused
    bus.publish("call.answered", {"call_id": 9002, "call_key": ringing(9002)["call_key"],
                                  "agent": {"id": me + 1000, "name": "Другой"}}, users=[me])
    await expect(popups).to_have_count(1)
    await popups.nth(0).get_by_role("button", name="Закрыть").focus()
    await page.keyboard.press("Escape")
    await expect(popups).to_have_count(0)


async def test_call_button_next_to_a_phone_originates(page: Any, app: web.Application,
                                                      ami: FakeAmiServer) -> None:
    if not any(getattr(r, "canonical", "") == "/api/v1/calls/originate" for r in app.router.resources()):
        pytest.skip("POST /api/v1/calls/originate is not in this tree yet: the buttons stay off")
    await log_in(page, "agent")
    await until(lambda: ami.clients >= 1, within=5)
    await page.goto("/clients")
    await page.get_by_role("link", name=CLIENT).click()
    button = page.locator("button[data-call-number]").first
    await expect(button).to_be_enabled()
    # telephony is connected: the card does not say the button waits for it
    await expect(page.get_by_text("Сообщение, написанное, пока его канал не подключён")).to_be_visible()
    await expect(page.get_by_text("Кнопка звонка заработает")).to_have_count(0)
    await button.click()
    await expect(page.locator(".call-error").first).to_have_text("Звоним: поднимите трубку")
    await until(lambda: any(a.get("Action", "").lower() == "originate" for a in ami.actions), within=5)

    ami.originate_error = "Extension does not exist."
    EXPECTED.add("502 /api/v1/calls/originate")
    await expect(button).to_be_enabled()  # after the page's 3 s pause (screenpop.js)
    await button.click()
    await expect(page.locator(".call-error").first).to_have_text("АТС отклонила звонок")


async def test_a_missing_recording_is_said_not_a_broken_player(page: Any, app: web.Application) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.crm import call_intake as intake
    from hub.crm.ports import CallEndedFact
    from hub.web.keys import DB

    at = datetime.now(UTC) - timedelta(minutes=5)
    call = await intake.call_ended(app[DB], CallEndedFact(
        call_key="gone-1", direction="inbound", status="answered", number=CALLER, did="+74951234567",
        agent_extension="101", started_at=at, answered_at=at + timedelta(seconds=2),
        ended_at=at + timedelta(seconds=30), wait_seconds=2, talk_seconds=28, hangup_cause=16,
        recording="gone.wav", rung_extensions=("101",)))
    assert call is not None
    EXPECTED.add(f"404 /api/v1/calls/{call['id']}/recording")
    await log_in(page, "agent")
    await page.goto("/calls")
    row = page.locator(f"tr[data-call-id='{call['id']}']")
    await expect(row.locator(".recording-missing")).to_have_text("Файл записи не найден")
    await expect(row.locator("audio")).to_be_hidden()


async def test_a_missing_recording_stays_said_after_a_live_refresh_of_the_journal(
        page: Any, app: web.Application) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.crm import call_intake as intake
    from hub.crm.ports import CallEndedFact
    from hub.web.keys import BUS, DB

    at = datetime.now(UTC) - timedelta(minutes=5)
    call = await intake.call_ended(app[DB], CallEndedFact(
        call_key="gone-2", direction="inbound", status="answered", number=CALLER, did="+74951234567",
        agent_extension="101", started_at=at, answered_at=at + timedelta(seconds=2),
        ended_at=at + timedelta(seconds=30), wait_seconds=2, talk_seconds=28, hangup_cause=16,
        recording="gone.wav", rung_extensions=("101",)))
    assert call is not None
    EXPECTED.add(f"404 /api/v1/calls/{call['id']}/recording")
    await log_in(page, "agent")
    await page.goto("/calls")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    row = page.locator(f"tr[data-call-id='{call['id']}']")
    await expect(row.locator("audio")).to_be_hidden()
    await row.evaluate("tr => { tr.dataset.before = 'refresh'; }")
    me = int(await page.locator("script[src='/static/screenpop.js']").get_attribute("data-user"))
    ended = {"call_id": call["id"], "status": "answered", "talk_seconds": 28}
    app[BUS].publish("call.ended", ended, users=[me])
    await expect(page.locator("tr[data-before]")).to_have_count(0)  # the rows were re-rendered
    await expect(row.locator(".recording-missing")).to_be_visible()
    await expect(row.locator("audio")).to_be_hidden()



async def test_each_recording_of_a_transferred_call_has_its_player(page: Any, app: web.Application) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.crm import call_intake as intake
    from hub.crm.ports import CallEndedFact
    from hub.web.keys import DB

    at = datetime.now(UTC) - timedelta(minutes=5)
    call = await intake.call_ended(app[DB], CallEndedFact(
        call_key="gone-3", direction="inbound", status="answered", number=CALLER, did="+74951234567",
        agent_extension="101", started_at=at, answered_at=at + timedelta(seconds=2),
        ended_at=at + timedelta(seconds=30), wait_seconds=2, talk_seconds=28, hangup_cause=16,
        recording="gone-a.wav", recordings=("gone-a.wav", "gone-b.wav"), recording_extensions=("102", "101"),
        rung_extensions=("102", "101")))
    assert call is not None
    for n in (1, 2):
        EXPECTED.add(f"404 /api/v1/calls/{call['id']}/recordings/{n}")
    await log_in(page, "agent")
    await page.goto("/calls")
    row = page.locator(f"tr[data-call-id='{call['id']}']")
    await expect(row.locator(".call-rec-label")).to_have_text(
        ["Запись 1 из 2 — добавочный 102", "Запись 2 из 2 — добавочный 101"])
    # each player says its own file is missing
    await expect(row.locator(".recording-missing")).to_have_count(2)
    await expect(row.locator(".recording-missing").nth(0)).to_be_visible()
    await expect(row.locator(".recording-missing").nth(1)).to_be_visible()
    await expect(row.locator("audio").nth(0)).to_be_hidden()
    await expect(row.locator("audio").nth(1)).to_be_hidden()

NOTIFICATION_STUB = """
window.__notes = []; window.__asked = 0; window.__permission = "default";
window.Notification = function (title, options) {
  window.__notes.push([title, options.body]); this.close = function () {};
};
Object.defineProperty(window.Notification, "permission", {
  get: function () { return window.__permission; }
});
window.Notification.requestPermission = function () {
  window.__asked += 1; window.__permission = "granted"; return Promise.resolve("granted");
};
Object.defineProperty(document, "hidden", { get: function () { return window.__hidden === true; } });
"""


async def test_a_hidden_tab_gets_a_notification_permission_asked_only_on_click(
        page: Any, app: web.Application) -> None:
    from hub.web.keys import BUS

    await page.add_init_script(NOTIFICATION_STUB)
    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)
    assert await page.evaluate("window.__asked") == 0  # never on load
    me = int(await page.locator("script[src='/static/screenpop.js']").get_attribute("data-user"))
    ring = ringing(7001, number=CALLER)
    app[BUS].publish("call.ringing", ring, users=[me])
    popup = page.locator(".screenpop")
    await popup.get_by_role("button", name="Уведомлять, когда вкладка в фоне").click()
    assert await page.evaluate("window.__asked") == 1
    app[BUS].publish("call.ended", {"call_id": 7001, "call_key": ring["call_key"], "status": "missed",
                                    "talk_seconds": 0}, users=[me])
    await expect(popup).to_have_count(0)

    await page.evaluate("window.__hidden = true")
    app[BUS].publish("call.ringing", ringing(7002, number=CALLER), users=[me])
    await expect(popup).to_have_count(1)
    notes = await page.evaluate("window.__notes")
    assert notes == [["Входящий звонок", "Неизвестный номер · +7 916 123-45-67"]]


async def test_after_a_resync_a_popup_of_a_call_gone_meanwhile_closes(page: Any,
                                                                    app: web.Application) -> None:
    from hub.web.keys import BUS

    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)
    me = int(await page.locator("script[src='/static/screenpop.js']").get_attribute("data-user"))
    app[BUS].publish("call.ringing", ringing(424242, number=CALLER), users=[me])
    await expect(page.locator(".screenpop")).to_have_count(1)
    EXPECTED.add("404 /api/v1/calls/424242")
    app[BUS].publish("resync", {}, users=[me])  # as a lagging stream is told; the call is not there
    await expect(page.locator(".screenpop")).to_have_count(0)


async def test_a_hidden_number_and_a_callers_name_in_the_popup(page: Any, app: web.Application) -> None:
    from hub.web.keys import BUS

    await log_in(page, "agent")
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)
    me = int(await page.locator("script[src='/static/screenpop.js']").get_attribute("data-user"))
    app[BUS].publish("call.ringing", ringing(9101, hidden_number=True), users=[me])
    app[BUS].publish("call.ringing", ringing(9102, number="+74950000001", caller_name="Иванов Пётр"),
                     users=[me])
    popups = page.locator(".screenpop")
    await expect(popups).to_have_count(2)
    hidden = popups.filter(has=page.locator(".sp-name", has_text="Скрытый номер"))
    await expect(hidden).to_have_count(1)
    await expect(hidden.get_by_role("button", name="Создать лид")).to_have_count(0)  # nothing to keep
    named = popups.filter(has=page.locator(".sp-name", has_text="Иванов Пётр"))
    await expect(named.get_by_role("button", name="Создать лид")).to_have_count(1)


async def test_a_pop_for_another_managers_client_opens_its_card(page: Any, ami: FakeAmiServer,
                                                                database: Database) -> None:
    """Issue 15: the agent's phone rings for a client someone else manages; «Открыть карточку» opens the
    card (the call grants it), where before the ring the card was a 404 page with the menu."""
    from sqlalchemy import update

    from hub.crm import users
    from hub.crm.models import Client, User

    async with database.transaction() as s:
        await users.create_or_update_user(s, "manager2", PASSWORD, "manager", name="Мария Другая")
    async with database.transaction() as s:
        other = await s.scalar(select(User.id).where(User.login == "manager2"))
        client_id = await s.scalar(select(Client.id).where(Client.name == CLIENT))
        await s.execute(update(Client).where(Client.id == client_id).values(manager_id=other))

    await log_in(page, "agent")
    await page.goto(f"/clients/{client_id}")
    await expect(page.get_by_role("heading", name="Страница не найдена")).to_be_visible()
    await expect(page.get_by_text("Такого клиента нет, или он вам недоступен.")).to_be_visible()
    await expect(page.get_by_role("link", name="Все клиенты")).to_have_attribute("href", "/clients")
    await expect(page.get_by_role("navigation", name="Разделы")).to_be_visible()  # the menu stays
    await expect(page.get_by_text("client not found")).to_have_count(0)

    await page.get_by_role("link", name="Рабочий стол").first.click()
    await expect(page.locator("body")).to_have_attribute("data-live", "true")
    await asyncio.sleep(0.2)  # the screen-pop subscribes when the stream opens
    await until(lambda: ami.clients >= 1, within=5)
    replay = await ami.push("inbound_answered", stop_before="BridgeEnter")
    popup = page.locator(".screenpop")
    await expect(popup.locator(".sp-name")).to_contain_text(CLIENT)
    await expect(popup.get_by_text("Мария Другая")).to_be_visible()  # not the agent's client
    await popup.get_by_role("link", name="Открыть карточку").click()
    await expect(page).to_have_url(re.compile(rf"/clients/{client_id}$"))
    await expect(page.get_by_role("heading", name=CLIENT)).to_be_visible()
    await expect(page.get_by_text("Страница не найдена")).to_have_count(0)
    await ami.push("inbound_answered", start_at=_split("inbound_answered", "BridgeEnter"),
                   rewriter=replay.rewriter)
