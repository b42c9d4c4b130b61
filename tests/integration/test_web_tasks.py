"""The tasks page over HTTP: the list and its filters, the form (page and dialog), errors next to the
fields, "Выполнить", deleting, access, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.integration.conftest import Api
from tests.integration.test_web_pages import logged_in, page

HTMX = {"HX-Request": "true"}


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def post(client: TestClient, path: str, data: dict[str, str], status: int = 303,
               headers: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    async with client.post(path, data=data, allow_redirects=False, headers=headers or {}) as response:
        text = await response.text()
        assert response.status == status, f"{path}: {response.status} {text[:1500]}"
        return text, dict(response.headers)


async def test_list_shows_open_tasks_with_overdue_in_red_and_the_filters(client: TestClient, agent: Api,
                                                                        agent2: Api) -> None:
    hostile = "<script>alert(1)</script>"
    late = await agent.post("/api/v1/tasks", {"subject": "Просроченная", "due_at": ago(2)}, expect=201)
    await agent.post("/api/v1/tasks", {"subject": hostile, "due_at": ago(-3), "percent": 40}, expect=201)
    done = await agent.post("/api/v1/tasks", {"subject": "Сделанная", "due_at": ago(1)}, expect=201)
    await agent.post(f"/api/v1/tasks/{done['id']}/complete", expect=200)
    await agent.post("/api/v1/tasks", {"subject": "Для Петра", "assignee_id": agent2.id}, expect=201)
    await agent2.post("/api/v1/tasks", {"subject": "Чужая задача"}, expect=201)
    await logged_in(client, agent)

    html = await page(client, "/tasks")
    assert 'aria-current="page">Задачи' in html and "Новая задача" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and hostile not in html
    assert "Просроченная" in html and "Сделанная" not in html and "Чужая задача" not in html
    row = re.search(r'<li class="task overdue"[^>]*data-task-id="{}".*?</li>'.format(late["id"]), html, re.S)
    assert row and "Просрочено" in row.group(0) and 'class="due"' in row.group(0)
    assert 'stroke-dasharray="40 60"' in html and 'aria-label="Выполнено на 40%"' in html
    assert html.count(">Выполнить</button>") == 3  # the author may complete the task given to Пётр too

    assert "Сделанная" in await page(client, "/tasks?filter=done")
    overdue = await page(client, "/tasks?filter=overdue")
    assert "Просроченная" in overdue and "Для Петра" not in overdue
    mine = await page(client, "/tasks?filter=mine")
    assert "Для Петра" not in mine and "Просроченная" in mine and "Сделанная" in mine
    every = await page(client, "/tasks?filter=all")
    assert "Сделанная" in every and "Для Петра" in every and 'aria-current="true">Все' in every
    assert "Открытые" in await page(client, "/tasks?filter=nonsense&cursor=garbage")


async def test_create_through_the_form_then_edit_and_complete(client: TestClient, agent: Api,
                                                              agent2: Api) -> None:
    customer = await agent.post("/api/v1/clients", {"name": "ООО «Ромашка»", "manager_id": agent.id},
                                expect=201)
    csrf = await logged_in(client, agent)
    form = await page(client, "/tasks/new")
    assert "ООО «Ромашка»" in form and "Пётр Второв" in form and 'name="due_at"' in form

    _, headers = await post(client, "/tasks", {
        "csrf_token": csrf, "subject": "Отправить КП", "start_at": "2030-05-01T09:00",
        "due_at": "2030-05-02T18:30",
        "description": "Приложить прайс", "client_id": str(customer["id"]), "assignee_id": str(agent2.id),
        "percent": "20"})
    assert headers["Location"] == "/tasks"
    created = next(t for t in (await agent.get("/api/v1/tasks"))["items"] if t["subject"] == "Отправить КП")
    assert created["due_at"] == "2030-05-02T15:30:00Z"  # Europe/Moscow, the server's zone
    assert created["client_id"] == customer["id"] and created["assignee_id"] == agent2.id
    assert created["percent"] == 20

    edit = await page(client, f"/tasks/{created['id']}")
    assert 'value="2030-05-02T18:30"' in edit and "Приложить прайс" in edit and ">Выполнить</button>" in edit
    await post(client, f"/tasks/{created['id']}", {
        "csrf_token": csrf, "subject": "Отправить КП v2", "due_at": "2030-05-03T10:00", "percent": "60",
        "client_id": str(customer["id"]), "assignee_id": str(agent2.id)})
    task = await agent.get(f"/api/v1/tasks/{created['id']}")
    assert task["subject"] == "Отправить КП v2" and task["percent"] == 60 and task["start_at"] is None

    await post(client, f"/tasks/{created['id']}/complete", {"csrf_token": csrf, "next": "/tasks?filter=mine"})
    task = await agent.get(f"/api/v1/tasks/{created['id']}")
    assert task["done"] and task["percent"] == 100
    assert "Отправить КП v2" not in await page(client, "/tasks")


async def test_errors_come_back_next_to_the_fields(client: TestClient, agent: Api) -> None:
    csrf = await logged_in(client, agent)
    html, _ = await post(client, "/tasks", {
        "csrf_token": csrf, "subject": "  ", "start_at": "2030-05-02T10:00", "due_at": "2030-05-01T10:00",
        "percent": "150", "description": "<b>оставить</b>"}, 422)
    assert 'id="err-subject">Обязательное поле.' in html
    assert 'id="err-percent">Введите целое число от 0 до 100.' in html
    assert "&lt;b&gt;оставить&lt;/b&gt;" in html  # what was typed stays, escaped
    html, _ = await post(client, "/tasks", {
        "csrf_token": csrf, "subject": "x", "start_at": "2030-05-02T10:00",
        "due_at": "2030-05-01T10:00"}, 422)
    assert 'id="err-due_at">Срок не может быть раньше начала.' in html and 'aria-invalid="true"' in html
    html, _ = await post(client, "/tasks", {"csrf_token": csrf, "subject": "x", "due_at": "вчера",
                                            "client_id": "999999"}, 422)
    assert 'id="err-due_at">Введите дату и время.' in html
    # From the dialog (htmx) the form comes back with 200 (htmx swaps only those) and the errors.
    html, headers = await post(client, "/tasks", {"csrf_token": csrf, "subject": ""}, 200, HTMX)
    assert html.startswith("<form") or "<form" in html[:400]
    assert "<html" not in html and 'hx-post="/tasks"' in html and "err-subject" in html
    _, headers = await post(client, "/tasks", {"csrf_token": csrf, "subject": "Из диалога"}, 200, HTMX)
    assert headers["HX-Trigger"] == "task-saved"
    assert (await agent.get("/api/v1/tasks"))["items"][0]["subject"] == "Из диалога"
    await post(client, "/tasks", {"subject": "без CSRF"}, 403)


async def test_dialog_fragment_access_and_delete(client: TestClient, agent: Api, agent2: Api,
                                                  manager: Api) -> None:
    own = await agent.post("/api/v1/tasks", {"subject": "Моя"}, expect=201)
    given = await manager.post("/api/v1/tasks", {"subject": "От менеджера", "assignee_id": agent.id},
                               expect=201)
    hidden = await agent2.post("/api/v1/tasks", {"subject": "Не видна"}, expect=201)
    csrf = await logged_in(client, agent)
    async with client.get(f"/tasks/{own['id']}", headers=HTMX) as response:
        fragment = await response.text()
    assert response.status == 200 and "<html" not in fragment and f'/tasks/{own["id"]}/delete"' in fragment
    assert "/delete" not in await page(client, f"/tasks/{given['id']}")  # the assignee only completes it
    await page(client, f"/tasks/{hidden['id']}", 404)
    await post(client, f"/tasks/{hidden['id']}/complete", {"csrf_token": csrf}, 404)
    await post(client, f"/tasks/{given['id']}/delete", {"csrf_token": csrf}, 403)
    _, headers = await post(client, f"/tasks/{own['id']}/delete", {"csrf_token": csrf}, 200, HTMX)
    assert headers["HX-Trigger"] == "task-saved"
    await agent.get(f"/api/v1/tasks/{own['id']}", expect=404)
    async with client.get("/tasks", allow_redirects=False) as anonymous:
        assert anonymous.status == 200  # still logged in
    client.session.cookie_jar.clear()
    async with client.get("/tasks/new", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login?next=/tasks/new"


async def test_english(client: TestClient, agent: Api) -> None:
    await agent.patch(f"/api/v1/users/{agent.id}", {"language": "en"}, expect=None)
    await agent.post("/api/v1/tasks", {"subject": "Call back", "due_at": ago(1)}, expect=201)
    await logged_in(client, agent)
    html = await page(client, "/tasks")
    assert "New task" in html and "Overdue" in html and ">Complete</button>" in html


async def test_files_attached_through_the_form(client: TestClient, agent: Api, agent2: Api) -> None:
    csrf = await logged_in(client, agent)
    form = FormData()
    for name, value in (("csrf_token", csrf), ("subject", "Подписать договор"), ("percent", "0")):
        form.add_field(name, value)
    form.add_field("files", b"%PDF-1.4 test", filename="Договор <1>.pdf", content_type="application/pdf")
    form.add_field("files", b"", filename="", content_type="application/octet-stream")  # an empty input
    async with client.post("/tasks", data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    task = (await agent.get("/api/v1/tasks"))["items"][0]
    html = await page(client, f"/tasks/{task['id']}")
    link = re.search(r'<a href="(/api/v1/attachments/\d+)" download>Договор _1_.pdf</a>', html)
    assert link and "13 Б" in html and "1 файл" in await page(client, "/tasks")
    async with client.get(link.group(1)) as download:
        assert download.status == 200 and await download.read() == b"%PDF-1.4 test"
    await agent2.get(link.group(1), expect=404)  # another agent may not see the task
    attachment_id = link.group(1).rsplit("/", 1)[1]
    await post(client, f"/tasks/{task['id']}/attachments/{attachment_id}/delete", {"csrf_token": csrf})
    assert "Договор" not in await page(client, f"/tasks/{task['id']}")
    async with client.get(link.group(1)) as gone:
        assert gone.status == 404
    # An empty file is refused next to the field and the task is not saved either.
    form = FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("subject", "С пустым файлом")
    form.add_field("files", b"", filename="empty.txt", content_type="text/plain")
    async with client.post("/tasks", data=form, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == 422 and 'id="err-files">Файл пустой.' in text
    assert all(t["subject"] != "С пустым файлом" for t in (await agent.get("/api/v1/tasks"))["items"])


async def test_the_forms_client_and_deal_lists_narrow_by_a_search(client: TestClient, agent: Api) -> None:
    romashka = await agent.post("/api/v1/clients", {"name": "ООО «Ромашка»", "manager_id": agent.id,
                                                    "phones": ["+7 916 123-45-67"]}, expect=201)
    vasilek = await agent.post("/api/v1/clients", {"name": "<i>Василёк</i>", "manager_id": agent.id},
                               expect=201)
    await agent.post("/api/v1/deals", {"title": "Поставка бумаги", "client_id": romashka["id"]}, expect=201)
    await logged_in(client, agent)
    found = await page(client, "/tasks/options?what=client&q=Ромаш")
    assert "ООО «Ромашка»" in found and "Василёк" not in found and "<html" not in found
    by_phone = await page(client, "/tasks/options?what=client&q=8 (916) 123-45-67")
    assert "ООО «Ромашка»" in by_phone
    kept = await page(client, f"/tasks/options?what=client&q=Ромаш&client_id={vasilek['id']}")
    assert f'<option value="{vasilek["id"]}" selected>&lt;i&gt;Василёк&lt;/i&gt;</option>' in kept
    assert "Ничего не найдено" in await page(client, "/tasks/options?what=deal&q=нет такой")
    assert "Поставка бумаги" in await page(client, "/tasks/options?what=deal&q=бумаг")
    await page(client, "/tasks/options?what=users", 404)


async def test_today_is_the_readers_day_in_the_servers_time_zone(client: TestClient, agent: Api) -> None:
    moscow = ZoneInfo("Europe/Moscow")
    today = datetime.now(moscow).date()

    def at(days: int, hour: int, minute: int) -> str:
        return datetime.combine(today + timedelta(days=days), time(hour, minute), tzinfo=moscow).isoformat()

    for subject, due in (("Рано утром", at(0, 0, 30)), ("Поздно вечером", at(0, 23, 30)),
                         ("Вчера ночью", at(-1, 23, 30)), ("Завтра ночью", at(1, 0, 30))):
        await agent.post("/api/v1/tasks", {"subject": subject, "due_at": due}, expect=201)
    await logged_in(client, agent)
    html = await page(client, "/tasks?filter=today")
    assert "Рано утром" in html and "Поздно вечером" in html
    assert "Вчера ночью" not in html and "Завтра ночью" not in html


async def test_open_tasks_come_in_the_order_work_is_done_overdue_first_undated_last(
        client: TestClient, agent: Api) -> None:
    subjects = {"Позвонить послезавтра": ago(-2), "Без срока": None, "Просрочена на неделю": ago(7),
                "Сегодня вечером": ago(-0.2), "Просрочена вчера": ago(1)}
    for subject, due in subjects.items():
        await agent.post("/api/v1/tasks", {"subject": subject, **({"due_at": due} if due else {})},
                         expect=201)
    await logged_in(client, agent)
    html = await page(client, "/tasks")
    shown = sorted(subjects, key=html.index)
    assert shown == ["Просрочена на неделю", "Просрочена вчера", "Сегодня вечером", "Позвонить послезавтра",
                     "Без срока"]


async def test_the_open_tasks_page_by_page_in_due_order(app: Any, agent: Api) -> None:
    from hub.crm import task_lists
    from hub.crm.models import User
    from hub.web.keys import DB

    dues = [ago(3), None, ago(-1), ago(3), None, ago(0.5), ago(-5)]
    made = [(await agent.post("/api/v1/tasks", {"subject": f"Задача {n}", **({"due_at": d} if d else {})},
                              expect=201)) for n, d in enumerate(dues)]
    seen: list[int] = []
    cursor = None
    async with app[DB].reading() as s:
        user = await s.get(User, agent.id)
        while True:
            listed = await task_lists.list_open_tasks(s, user, cursor=cursor, limit=2)
            seen += [t["id"] for t in listed.items]
            if not (cursor := listed.next_cursor):
                break
    expected = sorted(made, key=lambda t: (t["due_at"] is None, t["due_at"] or "", t["id"]))
    assert seen == [t["id"] for t in expected]
