"""The web UI's foundation over HTTP: the layout, the desktop, languages, the bell, the calls page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.crm import notifications, timeline
from hub.crm.models import User
from hub.web.keys import DB
from tests.integration.conftest import Api
from tests.integration.test_auth import browser_login, session_csrf

MOSCOW = ZoneInfo("Europe/Moscow")


async def logged_in(client: TestClient, api: Api) -> str:
    response = await browser_login(client, api.user["login"])
    assert response.status == 303, await response.text()
    return await session_csrf(client)


async def page(client: TestClient, path: str, status: int = 200, **kw: object) -> str:
    async with client.get(path, allow_redirects=False, **kw) as response:
        text = await response.text()
        assert response.status == status, f"{path}: {response.status} {text[:1000]}"
        return text


def local_day(days: int = 0, hour: int = 12) -> str:
    today = datetime.now(MOSCOW).date() + timedelta(days=days)
    return datetime.combine(today, time(hour), tzinfo=MOSCOW).astimezone(UTC).isoformat()


async def test_pages_need_a_login_and_come_back_after_it(client: TestClient, agent: Api) -> None:
    async with client.get("/calls", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login?next=/calls"
    response = await browser_login(client, "agent", next_path="/calls")
    assert response.headers["Location"] == "/calls"


async def test_layout_is_russian_with_navigation_bell_and_user(client: TestClient, agent: Api,
                                                               admin: Api) -> None:
    await logged_in(client, agent)
    html = await page(client, "/")
    assert '<html lang="ru">' in html
    for label, path in (("Рабочий стол", "/"), ("Клиенты", "/clients"), ("Лиды", "/leads"),
                        ("Сделки", "/deals"), ("Задачи", "/tasks"), ("Звонки", "/calls"),
                        ("Отчёты", "/reports/funnel")):
        assert f'<a href="{path}"' in html and label in html
    assert 'href="/settings"' not in html  # agents have no settings
    assert "Иван Агентов" in html and "Выйти" in html and 'id="bell"' in html
    assert 'aria-current="page">Рабочий стол' in html
    assert '/static/vendor/htmx.min.js' in html and 'sse-connect="/api/v1/events"' in html
    await page(client, "/settings", 403)
    client.session.cookie_jar.clear()
    await logged_in(client, admin)
    assert 'href="/settings"' in await page(client, "/settings")


async def test_desktop_shows_my_tasks_due_deals_and_inbound(client: TestClient, app: web.Application,
                                                            agent: Api, agent2: Api) -> None:
    hostile = "<script>alert(1)</script>"
    customer = await agent.post("/api/v1/clients", {"name": hostile, "manager_id": agent.id}, expect=201)
    for subject, due in (("Позвонить сегодня", local_day(0, 18)), ("Отправить КП завтра", local_day(1)),
                         ("Просроченная задача", local_day(-3)), ("Через неделю", local_day(7))):
        await agent.post("/api/v1/tasks", {"subject": subject, "due_at": due, "assignee_id": agent.id,
                                           "client_id": customer["id"]}, expect=201)
    await agent2.post("/api/v1/tasks", {"subject": "Чужая задача", "due_at": local_day(0, 18),
                                        "assignee_id": agent2.id}, expect=201)
    now = datetime.now(UTC)
    overdue = await agent.post("/api/v1/deals", {
        "title": "Поставка бумаги", "client_id": customer["id"], "amount": 1234567,
        "next_interaction_at": (now - timedelta(hours=30)).isoformat(),
        "next_interaction_note": "Уточнить объём",
    }, expect=201)
    await agent.post("/api/v1/deals", {
        "title": "Сделка на следующей неделе", "client_id": customer["id"],
        "next_interaction_at": (now + timedelta(days=7)).isoformat(),
    }, expect=201)
    async with app[DB].transaction() as s:
        await timeline.add_entry(s, kind="sms", direction="in", text="Добрый день, когда доставка?",
                                 client_id=customer["id"])
        await timeline.add_entry(s, kind="call", direction="in", client_id=customer["id"],
                                 payload={"status": "missed"})
        await timeline.add_entry(s, kind="call", direction="in", text="answered call",
                                 client_id=customer["id"], payload={"status": "answered"})
        await timeline.add_entry(s, kind="sms", direction="out", text="исходящее", client_id=customer["id"])

    await logged_in(client, agent)
    html = await page(client, "/")
    assert "Позвонить сегодня" in html and "Отправить КП завтра" in html and "Просроченная задача" in html
    assert "Через неделю" not in html and "Чужая задача" not in html
    order = [html.index(s) for s in ("Просроченная задача", "Позвонить сегодня", "Отправить КП завтра")]
    assert order == sorted(order)
    assert f'href="/deals/{overdue["id"]}"' in html and "Сделка на следующей неделе" not in html
    assert "Уточнить объём" in html and "Просрочено" in html
    assert re.search(r"1\s234\s567,00\s₽", html), "money in Russian format"
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", html), "dates in Russian format"
    assert "Добрый день, когда доставка?" in html and "Пропущенный звонок" in html
    assert "answered call" not in html and "исходящее" not in html
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_desktop_empty_states_are_honest(client: TestClient, agent: Api) -> None:
    await logged_in(client, agent)
    html = await page(client, "/")
    assert "На сегодня задач нет." in html
    assert "Телефония и каналы сообщений ещё не подключены." in html


async def test_calls_page_says_telephony_is_not_connected(client: TestClient, agent: Api) -> None:
    await logged_in(client, agent)
    html = await page(client, "/calls")
    assert "Телефония ещё не подключена" in html and 'aria-current="page">Звонки' in html


async def test_sections_to_come_say_so(client: TestClient, agent: Api) -> None:
    await logged_in(client, agent)
    for path in ():
        assert "Этот раздел ещё в разработке" in await page(client, path)
    assert "Этот раздел ещё в разработке" not in await page(client, "/deals/12", 404)  # the deal card


async def test_language_switch_is_stored_on_the_user(client: TestClient, app: web.Application,
                                                     agent: Api) -> None:
    csrf = await logged_in(client, agent)
    async with client.post("/language", data={"language": "en", "next": "/calls"},
                           allow_redirects=False) as refused:
        assert refused.status == 403  # no CSRF token
    async with client.post("/language", data={"language": "en", "next": "/calls", "csrf_token": csrf},
                           allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/calls"
    async with app[DB].reading() as s:
        assert (await s.scalar(select(User.language).where(User.id == agent.id))) == "en"
    html = await page(client, "/calls")
    assert '<html lang="en">' in html and "Telephony is not connected yet" in html and "Log out" in html
    desk = await page(client, "/")
    assert "My tasks for today" in desk and "Рабочий стол" not in desk
    async with client.post("/language", data={"language": "xx", "next": "//evil.example", "csrf_token": csrf},
                           allow_redirects=False) as response:
        assert response.headers["Location"] == "/"
    async with client.post("/language", data={"language": "ru", "csrf_token": csrf}) as response:
        assert "Мои задачи на сегодня" in await response.text()


async def test_login_page_follows_the_language_cookie(client: TestClient) -> None:
    assert "Пароль" in await page(client, "/login")
    async with client.post("/language", data={"language": "en", "next": "/login"}) as response:
        text = await response.text()
    assert "Password" in text and '<html lang="en">' in text


async def test_bell_lists_marks_read_and_deletes(client: TestClient, app: web.Application, agent: Api,
                                                 agent2: Api) -> None:
    csrf = await logged_in(client, agent)
    assert 'data-testid="bell-dot"' not in await page(client, "/")
    async with app[DB].transaction() as s:
        await notifications.notify(s, agent.id, kind="task", title="Новая задача <b>", text="Позвонить",
                                   link="/tasks/1")
        await notifications.notify(s, agent2.id, kind="task", title="Не ваша")
    html = await page(client, "/bell")
    assert html.lstrip().startswith("<details") and 'data-testid="bell-dot"' in html
    assert "Новая задача &lt;b&gt;" in html and "Не ваша" not in html
    assert 'data-testid="bell-dot"' in await page(client, "/")

    htmx = {"HX-Request": "true"}
    async with client.post("/bell/read", data={"csrf_token": csrf}, headers=htmx) as response:
        fragment = await response.text()
    assert response.status == 200 and 'data-testid="bell-dot"' not in fragment and " open>" in fragment
    assert "Новая задача" in fragment

    async with app[DB].transaction() as s:
        item = await notifications.notify(s, agent.id, kind="task", title="Ещё одна", link="/deals/5")
    async with client.post(f"/bell/{item['id']}/open", data={"csrf_token": csrf, "link": item["link"]},
                           allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/deals/5"
    assert 'data-testid="bell-dot"' not in await page(client, "/bell")

    await agent2.post("/api/v1/tasks", {"subject": "Созвон с «Ромашкой»", "assignee_id": agent.id,
                                        "due_at": "2026-12-01T09:00:00Z"}, expect=201)
    html = await page(client, "/bell")
    assert "Новая задача: Созвон с «Ромашкой»" in html
    assert "Пётр Второв назначает вам задачу, срок — 01.12.2026 12:00" in html

    async with client.post("/bell/clear", data={"csrf_token": csrf, "next": "/calls"},
                           allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/calls"
    assert "Уведомлений нет" in await page(client, "/bell")


async def test_browser_errors_are_pages_in_the_readers_language(client: TestClient, agent: Api) -> None:
    async with client.get("/no-such-page") as response:
        assert response.status == 404 and response.content_type == "text/html"
        assert "Страница не найдена" in await response.text()
    csrf = await logged_in(client, agent)
    async with client.post("/language", data={"language": "en"}) as response:  # no CSRF token
        text = await response.text()
    assert response.status == 403 and response.content_type == "text/html"
    assert "Доступ запрещён" in text and "обновите страницу" in text
    async with client.post("/language", data={"language": "en", "csrf_token": csrf}) as response:
        assert response.status == 200
    async with client.get("/api/v1/no-such-thing") as response:
        assert response.status == 404 and response.content_type == "application/json"
    async with client.get("/deals/1/nothing") as response:
        assert response.status == 404 and "Page not found" in await response.text()
