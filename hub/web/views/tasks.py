"""The tasks page: the list with its filters, the create / edit form (a dialog over the list, or a page
of its own without JavaScript), "Выполнить" and deleting.

Forms post ``application/x-www-form-urlencoded`` with the session's ``csrf_token``. From htmx (the
dialog) an invalid form comes back as the form with the errors next to the fields and a saved one as
an empty answer with ``HX-Trigger: task-saved`` (the dialog closes, the list re-renders); without
htmx the answer is the page again (422) or a redirect back to the list.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub.crm import access, clients, deals, task_lists, tasks, users
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import User, utcnow
from hub.crm.validate import small_int
from hub.web import i18n
from hub.web.api.attachments import upload_name
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB, SESSION
from hub.web.views.common import is_htmx, render, require_user, safe_next, zone

PAGE_SIZE = 50
OPTIONS = 50  # the newest clients and deals offered in the form (a search finds the others)
SEARCHED = 50

FILTERS = (
    ("", N_("Open")),
    ("mine", N_("Mine")),
    ("overdue", N_("Overdue")),
    ("today", N_("Today")),
    ("done", N_("Done")),
    ("all", N_("All")),
)

# The core's reasons (English, for the API) said in the reader's language next to the field.
REASONS = {
    "is required": N_("Required."),
    "must not be empty": N_("Required."),
    "must not be before start_at": N_("The due date must not be before the start."),
    "does not exist": N_("Not found or not available to you."),
    "no such active user": N_("No such active user."),
    "is a deal of another client": N_("This deal belongs to another client."),
    "must be an ISO 8601 date and time": N_("Enter a date and time."),
    "must be an integer": N_("Enter a whole number from 0 to 100."),
    "must be between 0 and 100": N_("Enter a whole number from 0 to 100."),
    "must be an id": N_("Choose from the list."),
    "is empty": N_("The file is empty."),
}
TOO_BIG = re.compile(r"^is larger than (\d+) bytes$")
TOO_LONG = re.compile(r"^must be at most (\d+) characters$")


def reason(text: str) -> tuple[str, dict[str, Any]]:
    """A message id and its parameters for one field's error."""
    if text in REASONS:
        return REASONS[text], {}
    if m := TOO_LONG.match(text):
        return N_("At most %(n)s characters."), {"n": m.group(1)}
    if m := TOO_BIG.match(text):
        return N_("The file is larger than %(n)s MB."), {"n": max(1, int(m.group(1)) // 1_000_000)}
    return N_("Invalid value."), {}


def _task_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not 0 < (small_int(raw) or 0) <= 2**62:
        raise web.HTTPNotFound()
    return int(raw)


def can_change(user: User, task: dict[str, Any]) -> bool:
    return access.is_staff(user) or user.id in (task["assignee_id"], task["author_id"])


def can_delete(user: User, task: dict[str, Any]) -> bool:
    return access.is_staff(user) or user.id == task["author_id"]


# --- the list ------------------------------------------------------------------------------------------

async def task_list(request: web.Request) -> web.Response:
    user = require_user(request)
    chosen = request.query.get("filter", "")
    if chosen not in {key for key, _ in FILTERS}:
        chosen = ""
    cursor = request.query.get("cursor") or None
    async with request.app[DB].reading() as s:
        try:
            page = await _page(request, s, user, chosen, cursor)
        except ValidationError:  # a cursor from elsewhere: the first page
            cursor = None
            page = await _page(request, s, user, chosen, None)
        files = await task_lists.task_attachments(s, [t["id"] for t in page.items])
    return await render(request, "tasks.html", {
        "tasks": page.items, "next_cursor": page.next_cursor, "filters": FILTERS, "filter": chosen,
        "export_query": {"filter": chosen or "open"} if chosen != "all" else {},
        "paged": cursor is not None, "files": {task_id: len(items) for task_id, items in files.items()},
        "changeable": {t["id"] for t in page.items if can_change(user, t)},
        "deletable": {t["id"] for t in page.items if can_delete(user, t)},
    })


async def _page(request: web.Request, s: Any, user: User, chosen: str, cursor: str | None) -> Any:
    if chosen == "":
        return await task_lists.list_open_tasks(s, user, cursor=cursor, limit=PAGE_SIZE)
    if chosen == "today":  # the reader's day, in the server's time zone
        start = datetime.combine(utcnow().astimezone(zone(request)).date(), time(0), tzinfo=zone(request))
        return await task_lists.list_due_between(s, user, start, start + timedelta(days=1), cursor=cursor,
                                                 limit=PAGE_SIZE)
    return await tasks.list_tasks(s, user, filter=None if chosen == "all" else chosen, cursor=cursor,
                                  limit=PAGE_SIZE)


# --- the form ------------------------------------------------------------------------------------------

def _local(value: str | None, request: web.Request) -> str:
    """An ISO instant as the value of a ``datetime-local`` input in the server's time zone."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(zone(request))
    return moment.strftime("%Y-%m-%dT%H:%M")


def _values(request: web.Request, task: dict[str, Any] | None) -> dict[str, Any]:
    if task is None:
        return {"subject": "", "start_at": "", "due_at": "", "description": "", "client_id": "",
                "deal_id": "", "assignee_id": str(require_user(request).id),
                "percent": "0"}
    return {
        "subject": task["subject"], "start_at": _local(task["start_at"], request),
        "due_at": _local(task["due_at"], request), "description": task["description"] or "",
        "client_id": str(task["client_id"] or ""), "deal_id": str(task["deal_id"] or ""),
        "assignee_id": str(task["assignee_id"] or ""), "percent": str(task["percent"]),
    }


async def _choices(s: Any, user: User, task: dict[str, Any] | None) -> dict[str, Any]:
    people = (await users.list_users(s, user, limit=OPTIONS, active=True)).items
    client_list = [{"id": c["id"], "name": c["name"]}
                   for c in (await clients.list_clients(s, user, limit=OPTIONS)).items]
    deal_list = [{"id": d["id"], "name": d["title"]}
                 for d in (await deals.list_deals(s, user, limit=OPTIONS)).items]
    if task is not None:  # the task's own client and deal are offered even when older than the lists
        if task["client"] and all(c["id"] != task["client_id"] for c in client_list):
            client_list.append(task["client"])
        if task["deal"] and all(d["id"] != task["deal_id"] for d in deal_list):
            deal_list.append(task["deal"])
    return {
        "users": sorted(({"id": u["id"], "name": u["name"]} for u in people), key=lambda u: u["name"]),
        "clients": sorted(client_list, key=lambda c: c["name"].lower()),
        "deals": sorted(deal_list, key=lambda d: d["name"].lower()),
    }


def _form_context(request: web.Request, task: dict[str, Any] | None, values: dict[str, Any],
                  errors: dict[str, tuple[str, dict[str, Any]]], choices: dict[str, Any],
                  dialog: bool) -> dict[str, Any]:
    return {"task": task, "values": values, "errors": errors, "dialog": dialog, **choices,
            "action": f"/tasks/{task['id']}" if task else "/tasks"}


async def _show_form(request: web.Request, task: dict[str, Any] | None, values: dict[str, Any],
                     errors: dict[str, tuple[str, dict[str, Any]]], *, status: int = 200) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        choices = await _choices(s, user, task)
        files = (await task_lists.task_attachments(s, [task["id"]])).get(task["id"], []) if task else []
    dialog = is_htmx(request)
    context = _form_context(request, task, values, errors, choices, dialog)
    context["files"] = files
    if task is not None:
        context.update(changeable=can_change(user, task), deletable=can_delete(user, task))
    if dialog:  # the form alone, into the dialog (htmx swaps 200 answers only)
        return aiohttp_jinja2.render_template("task_form.html", request, {
            **i18n.context(request), "user": user, "csrf_token": request[SESSION].csrf_token, **context})
    return await render(request, "task_page.html", context, status=status)


async def new_task(request: web.Request) -> web.Response:
    require_user(request)
    values = _values(request, None)
    for name in ("client_id", "deal_id"):  # /tasks/new?deal_id=5 from a deal's card
        if small_int(request.query.get(name, "")) is not None:
            values[name] = request.query[name]
    return await _show_form(request, None, values, {})


async def task_page(request: web.Request) -> web.Response:
    user = require_user(request)
    task_id = _task_id(request)
    async with request.app[DB].reading() as s:
        task = await tasks.get_task(s, user, task_id)
    return await _show_form(request, task, _values(request, task), {})


def _parse(request: web.Request, form: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The form's text values (to show again), the service's body, and the errors found here."""
    values = {name: str(form.get(name, "")).strip() if name != "description" else str(form.get(name, ""))
              for name in ("subject", "start_at", "due_at", "description", "client_id", "deal_id",
                           "assignee_id", "percent")}
    body: dict[str, Any] = {"subject": values["subject"], "description": values["description"] or None}
    errors: dict[str, Any] = {}
    for name in ("start_at", "due_at"):
        if not values[name]:
            body[name] = None
            continue
        try:
            moment = datetime.fromisoformat(values[name])
        except ValueError:
            errors[name] = reason("must be an ISO 8601 date and time")
            continue
        body[name] = (moment if moment.tzinfo else moment.replace(tzinfo=zone(request))).isoformat()
    for name in ("client_id", "deal_id", "assignee_id"):
        raw = values[name]
        body[name] = number if (number := small_int(raw)) is not None and 0 < number <= 2**62 else None
        if raw and body[name] is None:
            errors[name] = reason("must be an id")
    raw = values["percent"] or "0"
    body["percent"] = small_int(raw) if small_int(raw) is not None else raw  # the service says what is wrong
    return values, body, errors


async def _save(request: web.Request, task_id: int | None) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    values, body, errors = _parse(request, form)
    uploads = [f for f in form.getall("files", []) if isinstance(f, web.FileField) and f.filename]
    server = request.app[CONFIG].server
    task = None
    if task_id is not None:
        async with request.app[DB].reading() as s:
            task = await tasks.get_task(s, user, task_id)
    if not errors:
        try:  # one transaction: a file that cannot be attached keeps the task from being saved too
            async with request.app[DB].transaction() as s:
                if task_id is None:
                    saved = await tasks.create_task(s, user, body)
                else:
                    saved = await tasks.update_task(s, user, task_id, body)
                for upload in uploads:
                    await task_lists.attach_to_task(
                        s, user, saved["id"], filename=upload_name(upload.filename),
                        content_type=upload.content_type, data=upload.file.read(),
                        directory=server.attachments_dir, max_bytes=server.max_body_bytes)
        except ValidationError as exc:
            errors = {("files" if name == "file" else name): reason(text)
                      for name, text in exc.fields.items()}
    if errors:
        return await _show_form(request, task, values, errors, status=422)
    return _done(request, form)


def _done(request: web.Request, form: Any) -> web.StreamResponse:
    if is_htmx(request):
        return web.Response(status=200, text="", headers={"HX-Trigger": "task-saved"})
    raise web.HTTPSeeOther(safe_next(form.get("next"), "/tasks"))


async def create(request: web.Request) -> web.StreamResponse:
    return await _save(request, None)


async def update(request: web.Request) -> web.StreamResponse:
    return await _save(request, _task_id(request))


async def complete(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    task_id = _task_id(request)
    form = await request.post()
    async with request.app[DB].transaction() as s:
        await tasks.complete_task(s, user, task_id)
    return _done(request, form)


async def delete(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    task_id = _task_id(request)
    form = await request.post()
    async with request.app[DB].transaction() as s:
        await tasks.delete_task(s, user, task_id)
    return _done(request, form)


async def detach(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    task_id = _task_id(request)
    raw = request.match_info["attachment"]
    form = await request.post()
    async with request.app[DB].transaction() as s:
        await task_lists.detach_from_task(s, user, task_id, small_int(raw) or 0)
    if is_htmx(request):  # the dialog shows the form again, without the file
        async with request.app[DB].reading() as s:
            task = await tasks.get_task(s, user, task_id)
        return await _show_form(request, task, _values(request, task), {})
    raise web.HTTPSeeOther(safe_next(form.get("next"), f"/tasks/{task_id}"))


async def options(request: web.Request) -> web.Response:
    """The form's client or deal choices narrowed by a search (name, title, phone or e-mail); the one
    chosen now stays in the list and selected."""
    user = require_user(request)
    what = request.query.get("what")
    if what not in ("client", "deal"):
        raise web.HTTPNotFound()
    q = request.query.get("q", "").strip()[:100] or None
    raw = request.query.get(f"{what}_id", "")
    chosen = number if (number := small_int(raw)) is not None and 0 < number <= 2**62 else None
    async with request.app[DB].reading() as s:
        if what == "client":
            found = [{"id": c["id"], "name": c["name"]}
                     for c in (await clients.list_clients(s, user, q=q, limit=SEARCHED)).items]
        else:
            found = [{"id": d["id"], "name": d["title"]}
                     for d in (await deals.list_deals(s, user, q=q, limit=SEARCHED)).items]
        if chosen is not None and all(item["id"] != chosen for item in found):
            try:
                name = ((await clients.get_client(s, user, chosen))["name"] if what == "client"
                        else (await deals.get_deal(s, user, chosen))["title"])
                found.insert(0, {"id": chosen, "name": name})
            except NotFound:
                chosen = None
    return aiohttp_jinja2.render_template("task_options.html", request, {
        **i18n.context(request), "items": found, "chosen": chosen})


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/tasks", task_list)
    router.add_post("/tasks", create)
    router.add_get("/tasks/new", new_task)
    router.add_get("/tasks/options", options)
    router.add_get(r"/tasks/{id:\d+}", task_page)
    router.add_post(r"/tasks/{id:\d+}", update)
    router.add_post(r"/tasks/{id:\d+}/complete", complete)
    router.add_post(r"/tasks/{id:\d+}/delete", delete)
    router.add_post(r"/tasks/{id:\d+}/attachments/{attachment:\d+}/delete", detach)
