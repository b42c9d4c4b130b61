"""The administrators' settings: users, pipelines and stages, loss reasons, custom fields, tags, access.

Each section is a page under ``/settings/...`` with plain forms (POST, then back with a note, or the
same form again with the errors next to the fields); ``settings.js`` adds drag-and-drop and buttons
for the stage order. Anybody else gets a 403 page that says who may open it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from hub.crm import audit, pipelines, settings, tokens, users
from hub.crm.errors import Conflict, DomainError, NotFound, ValidationError
from hub.crm.models import CUSTOM_FIELD_TYPES, LANGUAGES, ROLES, STAGE_KINDS, User
from hub.crm.validate import parse_date, small_int
from hub.web.api.common import region
from hub.web.errors import path_id
from hub.web.i18n import N_
from hub.web.keys import DB
from hub.web.views.common import render, require_user, zone

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECTIONS = (
    ("/settings/users", N_("Users")),
    ("/settings/pipelines", N_("Pipelines and stages")),
    ("/settings/loss-reasons", N_("Loss reasons")),
    ("/settings/fields", N_("Custom fields")),
    ("/settings/tags", N_("Tags")),
    ("/settings/access", N_("Access")),
    ("/settings/audit", N_("Audit log")),
)
AUDIT_ACTIONS = {
    "login": N_("Logged in"), "login_failed": N_("Failed login"), "login_locked": N_("Logins locked"),
    "token_created": N_("API token created"), "token_revoked": N_("Token or session ended"),
    "logout": N_("Logged out"), "password_changed": N_("Password changed"),
    "user_created": N_("User created"), "user_updated": N_("User changed"),
    "user_deleted": N_("User deactivated"), "settings_changed": N_("Settings changed"),
    "client_deleted": N_("Client deleted"), "deal_deleted": N_("Deal deleted"),
    "lead_deleted": N_("Lead deleted"),
    "client_merged": N_("Clients merged"), "client_merge_undone": N_("Client merge undone"),
}
ROLE_NAMES = {"admin": N_("Administrator"), "manager": N_("Manager"), "agent": N_("Agent")}
KIND_NAMES = {"active": N_("In progress"), "won": N_("Won"), "lost": N_("Lost")}
TYPE_NAMES = {"text": N_("Text"), "number": N_("Number"), "date": N_("Date"),
              "choice": N_("Choice from a list")}
ENTITY_NAMES = {"client": N_("Clients"), "deal": N_("Deals")}
NOTES = {
    "created": N_("Created."), "saved": N_("Saved."), "deleted": N_("Deleted."),
    "password": N_("The password is changed; the user's other sessions and API tokens have ended."),
    "ended": N_("The session or token has ended."),
}
MAX_USERS_SHOWN = 1000

# The core's reasons, worded for people (the API keeps the English ones).
REASONS = {
    "is required": N_("Required."),
    "must not be empty": N_("Required."),
    "is taken": N_("This login is taken."),
    "exists already": N_("This exists already."),
    "another tag has this name": N_("Another tag has this name."),
    "may contain only letters, digits and . @ + - _": N_("Only Latin letters, digits and . @ + - _"),
    "must be a colour like #1e88e5": N_("Pick a colour."),
    "must have at least one active stage": N_("Keep at least one stage in progress."),
    "a removed stage still has deals": N_("A removed stage still has deals."),
    "has deals": N_("Deals are in this stage: move them to another stage first."),
    "a choice field needs at least one choice": N_("Give at least one choice, one per line."),
    "choices must differ": N_("The choices must differ."),
    "only a choice field has choices": N_("Only a choice field has choices."),
    "must start with a Latin letter and have only a-z, 0-9 and _":
        N_("Latin letters a-z, digits and _, starting with a letter."),
    "make another pipeline the default instead": N_("Make another pipeline the default instead."),
    "the last active administrator cannot be demoted or deactivated":
        N_("The last active administrator cannot lose the role or be deactivated."),
    "the default pipeline cannot be deleted": N_("The default pipeline cannot be deleted."),
    "deals still use this pipeline": N_("Deals still use this pipeline."),
    "this loss reason exists already": N_("This loss reason exists already."),
    "a field with this key exists already": N_("A field with this key exists already."),
    "must be at least 10 characters": N_("At least 10 characters."),
    "must not contain the login": N_("The password must not contain the login."),
    "is too common": N_("This password is too common: it is among the first an attacker tries."),
    "is wrong": N_("Wrong password."),
}
_AT_MOST = re.compile(r"must be at most (\d+) characters")
_PASSWORD = re.compile(r"must be a non-empty string of at most \d+ characters")
_NOT_EXTENSION = re.compile(r"'(.+)' is not an extension .*")
_BELONGS = re.compile(r"(\S+) belongs to (\S+)")
_BETWEEN = re.compile(r"must be between (\d+) and (\d+)")


def reason(text: str) -> tuple[str, dict[str, str]]:
    """The msgid and its parameters for a reason from the core (unknown ones pass as they are)."""
    if text in REASONS:
        return REASONS[text], {}
    if match := _AT_MOST.fullmatch(text):
        return N_("At most %(count)s characters."), {"count": match.group(1)}
    if _PASSWORD.fullmatch(text):
        return N_("Enter a password."), {}
    if match := _NOT_EXTENSION.fullmatch(text):
        return N_("%(extension)s is not an extension: digits only, as the phone is numbered on the PBX"), \
            {"extension": match.group(1)}
    if match := _BELONGS.fullmatch(text):
        return N_("Extension %(extension)s belongs to %(login)s."), \
            {"extension": match.group(1), "login": match.group(2)}
    if match := _BETWEEN.fullmatch(text):
        return N_("Enter a whole number from %(low)s to %(high)s."), \
            {"low": match.group(1), "high": match.group(2)}
    if text == "must be an integer":
        return N_("Enter a whole number."), {}
    if text.startswith("must be one of"):
        return N_("Choose one of the options."), {}
    if text.startswith("deals are still in the stages"):
        return REASONS["a removed stage still has deals"], {}
    return text.replace("%", "%%"), {}


def _errors(exc: DomainError) -> dict[str, tuple[str, dict[str, str]]]:
    found = {name: reason(text) for name, text in exc.fields.items()}
    if not found or (isinstance(exc, Conflict) and exc.message in REASONS):
        found["_form"] = reason(exc.message)
    return found


def _status(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def admin_page(handler: Handler) -> Handler:
    """Only administrators; anybody else sees the 403 page."""
    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        user = require_user(request)
        if user.role != "admin":
            return await render(request, "settings_forbidden.html", {}, status=403)
        return await handler(request)
    return wrapped


async def _page(request: web.Request, template: str, context: dict[str, Any], *,
                status: int = 200) -> web.Response:
    return await render(request, template, {
        "sections": SECTIONS, "role_names": ROLE_NAMES, "kind_names": KIND_NAMES,
        "type_names": TYPE_NAMES, "entity_names": ENTITY_NAMES,
        "note": NOTES.get(request.query.get("done", "")), "errors": {}, **context,
    }, status=status)


def _back(path: str, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?done={done}")


def _text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _list(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,;]+", value) if item]


# --- users -----------------------------------------------------------------------------------------

async def _all_users(request: web.Request, actor: User) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    async with request.app[DB].reading() as s:
        while len(found) < MAX_USERS_SHOWN:
            page = await users.list_users(s, actor, cursor=cursor, limit=200)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    return sorted(found, key=lambda u: (not u["active"], u["name"].lower()))


@admin_page
async def users_page(request: web.Request) -> web.Response:
    user = require_user(request)
    return await _page(request, "settings_users.html", {
        "section": "/settings/users", "users": await _all_users(request, user)})


def _user_form(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": _text(form, "name"), "login": _text(form, "login"), "role": _text(form, "role"),
        "language": _text(form, "language"), "extensions": _list(_text(form, "extensions")),
    }
    if new:
        data["password"] = _text(form, "password")
    else:
        data["active"] = form.get("active") == "on"
        if not data["active"]:  # a deactivated user's extensions are freed for others
            del data["extensions"]
    return data


async def _user_form_page(request: web.Request, values: dict[str, Any], *, target: dict[str, Any] | None,
                          errors: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    live: list[dict[str, Any]] = []
    if target is not None:  # the user's live sessions and API tokens, each with a button to end it
        async with request.app[DB].reading() as s:
            live = await tokens.list_tokens(s, require_user(request), target["id"])
    return await _page(request, "settings_user.html", {
        "section": "/settings/users", "values": values, "target": target, "errors": errors or {},
        "roles": ROLES, "languages_list": LANGUAGES, "tokens": live}, status=status)


@admin_page
async def user_new(request: web.Request) -> web.Response:
    return await _user_form_page(request, {"role": "agent", "language": "ru", "extensions": []}, target=None)


@admin_page
async def user_create(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    data = _user_form(await request.post(), new=True)
    try:
        async with request.app[DB].transaction() as s:
            await users.create_user(s, user, data, region(request))
    except (ValidationError, Conflict) as exc:
        return await _user_form_page(request, {**data, "password": ""}, target=None, errors=_errors(exc),
                                     status=_status(exc))
    raise _back("/settings/users", "created")


@admin_page
async def user_edit(request: web.Request) -> web.Response:
    user = require_user(request)
    user_id = path_id(request)
    async with request.app[DB].reading() as s:
        target = await users.get_user(s, user, user_id)
    return await _user_form_page(request, target, target=target)


@admin_page
async def user_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    user_id = path_id(request)
    data = _user_form(await request.post(), new=False)
    try:
        async with request.app[DB].transaction() as s:
            await users.update_user(s, user, user_id, data, region(request))
    except (ValidationError, Conflict) as exc:
        async with request.app[DB].reading() as s:
            target = await users.get_user(s, user, user_id)
        return await _user_form_page(request, {**target, **data}, target=target, errors=_errors(exc),
                                     status=_status(exc))
    raise _back("/settings/users", "saved")


@admin_page
async def user_password(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    user_id = path_id(request)
    form = await request.post()
    data = {"password": _text(form, "password")}
    if user_id == user.id:  # one's own password: the current one too (an admin resetting another's: not)
        data["current_password"] = _text(form, "current_password")
    try:
        async with request.app[DB].transaction() as s:
            await users.update_user(s, user, user_id, data)
    except ValidationError as exc:
        async with request.app[DB].reading() as s:
            target = await users.get_user(s, user, user_id)
        errors = {("new_password" if k == "password" else k): v for k, v in _errors(exc).items()}
        return await _user_form_page(request, target, target=target, errors=errors, status=422)
    raise _back(f"/settings/users/{user_id}", "password")


@admin_page
async def user_token_end(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    user_id = path_id(request)
    token_id = path_id(request, "token_id")
    try:
        async with request.app[DB].transaction() as s:
            await tokens.revoke_token(s, user, token_id)
    except NotFound:
        pass  # ended already: the page shows what is left
    raise _back(f"/settings/users/{user_id}", "ended")


# --- pipelines and stages --------------------------------------------------------------------------

def _stage_rows(form: MultiDictProxy[Any]) -> list[dict[str, Any]]:
    """The stage rows of the editor in the order they stand (removed ones flagged)."""
    columns = [form.getall(name, []) for name in
               ("stage_id", "stage_name", "stage_color", "stage_kind", "stage_remove")]
    rows = []
    for stage_id, name, color, kind, remove in zip(*columns, strict=False):
        rows.append({"id": small_int(str(stage_id)), "name": name,
                     "color": color, "kind": kind, "remove": remove == "1"})
    return rows


def _stages_body(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """The service's ``stages`` list and, for each item, the row it came from."""
    body, origin = [], []
    for index, row in enumerate(rows):
        if row["remove"] or (row["id"] is None and not str(row["name"]).strip()):
            continue
        item = {"name": row["name"], "color": row["color"], "kind": row["kind"]}
        if row["id"] is not None:
            item["id"] = row["id"]
        body.append(item)
        origin.append(index)
    return body, origin


def _stage_errors(exc: DomainError, origin: list[int], rows: list[dict[str, Any]],
                  in_use: dict[int, int]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    for name, text in exc.fields.items():
        match = re.fullmatch(r"stages\[(\d+)\]\.(\w+)", name)
        if match and int(match.group(1)) < len(origin):
            errors[f"row{origin[int(match.group(1))]}.{match.group(2)}"] = reason(text)
        elif name != "stages" or not isinstance(exc, Conflict):
            errors["stages" if name == "stages" else name] = reason(text)
    if isinstance(exc, Conflict):
        for index, row in enumerate(rows):
            if row["remove"] and in_use.get(row["id"] or 0):
                errors[f"row{index}.name"] = reason("has deals")
        errors.setdefault("stages", reason("a removed stage still has deals"))
    return errors


async def _pipelines_page(request: web.Request, chosen_id: int | None, *,
                          rows: list[dict[str, Any]] | None = None, values: dict[str, Any] | None = None,
                          errors: dict[str, Any] | None = None,
                          status: int = 200) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        all_pipelines = (await pipelines.list_pipelines(s, user)).items
        chosen = next((p for p in all_pipelines if p["id"] == chosen_id), None)
        if chosen_id is not None and chosen is None:
            raise web.HTTPNotFound()
        in_use = await settings.deals_per_stage(s, [st["id"] for st in chosen["stages"]]) if chosen else {}
    if chosen is not None and rows is None:
        rows = [{**st, "remove": False} for st in chosen["stages"]]
    return await _page(request, "settings_pipelines.html", {
        "section": "/settings/pipelines", "pipelines": all_pipelines, "chosen": chosen, "rows": rows or [],
        "in_use": in_use, "kinds": STAGE_KINDS, "values": values or chosen or {}, "errors": errors or {},
    }, status=status)


@admin_page
async def pipelines_page(request: web.Request) -> web.StreamResponse:
    default = await _default_id(request)
    if default is not None:
        done = request.query.get("done")
        raise web.HTTPSeeOther(f"/settings/pipelines/{default}" + (f"?done={done}" if done in NOTES else ""))
    return await _pipelines_page(request, None)


@admin_page
async def pipeline_page(request: web.Request) -> web.Response:
    return await _pipelines_page(request, path_id(request))


@admin_page
async def pipeline_create(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    body, _ = _stages_body(_stage_rows(form))
    data = {"name": _text(form, "name"), "stages": body}
    try:
        async with request.app[DB].transaction() as s:
            created = await pipelines.create_pipeline(s, user, data)
    except (ValidationError, Conflict) as exc:
        errors = {f"new_{k}": v for k, v in _errors(exc).items()}
        return await _pipelines_page(request, await _default_id(request), errors=errors, status=_status(exc))
    raise _back(f"/settings/pipelines/{created['id']}", "created")


async def _default_id(request: web.Request) -> int | None:
    async with request.app[DB].reading() as s:
        found = (await pipelines.list_pipelines(s, require_user(request))).items
    default = next((p for p in found if p["is_default"]), found[0] if found else None)
    return None if default is None else int(default["id"])


@admin_page
async def pipeline_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    pipeline_id = path_id(request)
    form = await request.post()
    rows = _stage_rows(form)
    body, origin = _stages_body(rows)
    data: dict[str, Any] = {"name": _text(form, "name"), "stages": body}
    if form.get("is_default") == "on":
        data["is_default"] = True
    try:
        async with request.app[DB].transaction() as s:
            await pipelines.update_pipeline(s, user, pipeline_id, data)
    except (ValidationError, Conflict) as exc:
        async with request.app[DB].reading() as s:
            in_use = await settings.deals_per_stage(s, await settings.stages_of(s, pipeline_id))
        return await _pipelines_page(request, pipeline_id, rows=rows, values=data,
                                     errors=_stage_errors(exc, origin, rows, in_use), status=_status(exc))
    raise _back(f"/settings/pipelines/{pipeline_id}", "saved")


@admin_page
async def pipeline_delete(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    pipeline_id = path_id(request)
    try:
        async with request.app[DB].transaction() as s:
            await pipelines.delete_pipeline(s, user, pipeline_id)
    except Conflict as exc:
        return await _pipelines_page(request, pipeline_id, errors={"delete": reason(exc.message)}, status=409)
    raise _back("/settings/pipelines", "deleted")


# --- loss reasons ----------------------------------------------------------------------------------

async def _reasons_page(request: web.Request, *, errors: dict[str, Any] | None = None,
                        values: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    async with request.app[DB].reading() as s:
        reasons = (await pipelines.list_loss_reasons(s, include_inactive=True)).items
    return await _page(request, "settings_loss_reasons.html", {
        "section": "/settings/loss-reasons",
        "reasons": sorted(reasons, key=lambda r: (not r["active"], r["id"])),
        "errors": errors or {}, "values": values or {}}, status=status)


@admin_page
async def reasons_page(request: web.Request) -> web.Response:
    return await _reasons_page(request)


@admin_page
async def reason_create(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    name = _text(await request.post(), "name")
    try:
        async with request.app[DB].transaction() as s:
            await pipelines.create_loss_reason(s, user, {"name": name})
    except (ValidationError, Conflict) as exc:
        return await _reasons_page(request, errors=_errors(exc), values={"name": name}, status=_status(exc))
    raise _back("/settings/loss-reasons", "created")


@admin_page
async def reason_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    reason_id = path_id(request)
    form = await request.post()
    async with request.app[DB].transaction() as s:
        await settings.update_loss_reason(s, user, reason_id, {"active": form.get("active") == "1"})
    raise _back("/settings/loss-reasons", "saved")


# --- custom fields ---------------------------------------------------------------------------------

def _field_form(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"label": _text(form, "label"),
                            "choices": [line.strip() for line in _text(form, "choices").splitlines()
                                        if line.strip()]}
    position = _text(form, "position").strip()
    if position:
        data["position"] = int(position) if position.isdecimal() and len(position) < 6 else position
    if new:
        data.update(entity=_text(form, "entity"), key=_text(form, "key"), type=_text(form, "type"))
    return data


async def _fields_page(request: web.Request, *, errors: dict[str, Any] | None = None,
                       values: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        fields = (await settings.list_custom_fields(s, user)).items
    return await _page(request, "settings_fields.html", {
        "section": "/settings/fields", "fields": fields, "entities": settings.ENTITIES,
        "types": CUSTOM_FIELD_TYPES, "errors": errors or {},
        "values": values or {"entity": "client", "type": "text"}}, status=status)


@admin_page
async def fields_page(request: web.Request) -> web.Response:
    return await _fields_page(request)


@admin_page
async def field_create(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    data = _field_form(await request.post(), new=True)
    try:
        async with request.app[DB].transaction() as s:
            await settings.create_custom_field(s, user, data)
    except (ValidationError, Conflict) as exc:
        return await _fields_page(request, errors=_errors(exc), values=data, status=_status(exc))
    raise _back("/settings/fields", "created")


async def _field_page(request: web.Request, field: dict[str, Any], values: dict[str, Any], *,
                      errors: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    return await _page(request, "settings_field.html", {
        "section": "/settings/fields", "field": field, "values": values, "errors": errors or {}},
        status=status)


@admin_page
async def field_edit(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        field = await settings.get_custom_field(s, user, path_id(request))
    return await _field_page(request, field, field)


@admin_page
async def field_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    field_id = path_id(request)
    data = _field_form(await request.post(), new=False)
    async with request.app[DB].reading() as s:
        field = await settings.get_custom_field(s, user, field_id)
    if field["type"] != "choice":
        data.pop("choices")
    try:
        async with request.app[DB].transaction() as s:
            await settings.update_custom_field(s, user, field_id, data)
    except (ValidationError, Conflict) as exc:
        return await _field_page(request, field, {**field, **data}, errors=_errors(exc), status=_status(exc))
    raise _back("/settings/fields", "saved")


@admin_page
async def field_delete(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    field_id = path_id(request)
    async with request.app[DB].transaction() as s:
        await settings.delete_custom_field(s, user, field_id)
    raise _back("/settings/fields", "deleted")


# --- tags ------------------------------------------------------------------------------------------

async def _tags_page(request: web.Request, *, errors: dict[str, Any] | None = None,
                     values: dict[int, Any] | None = None, status: int = 200) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        tags = (await settings.list_tags(s, user)).items
    return await _page(request, "settings_tags.html", {
        "section": "/settings/tags", "tags": tags, "errors": errors or {}, "values": values or {}},
        status=status)


@admin_page
async def tags_page(request: web.Request) -> web.Response:
    return await _tags_page(request)


@admin_page
async def tag_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    tag_id = path_id(request)
    form = await request.post()
    data = {"name": _text(form, "name"), "color": _text(form, "color") if form.get("colored") == "on" else ""}
    try:
        async with request.app[DB].transaction() as s:
            await settings.update_tag(s, user, tag_id, data)
    except (ValidationError, Conflict) as exc:
        errors = {f"{tag_id}.{k}": v for k, v in _errors(exc).items()}
        return await _tags_page(request, errors=errors, values={tag_id: data}, status=_status(exc))
    raise _back("/settings/tags", "saved")


@admin_page
async def tag_delete(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    tag_id = path_id(request)
    async with request.app[DB].transaction() as s:
        await settings.delete_tag(s, user, tag_id)
    raise _back("/settings/tags", "deleted")


# --- the audit log ---------------------------------------------------------------------------------

@admin_page
async def audit_page(request: web.Request) -> web.Response:
    """The audit log with filters (action, login, days from/to in the hub's time zone), 50 a page."""
    user = require_user(request)
    q = request.query
    action = q.get("action", "") if q.get("action", "") in AUDIT_ACTIONS else ""
    login = q.get("login", "").strip()[:64]
    first, last = parse_date(q.get("from", "")), parse_date(q.get("to", ""))
    tz = zone(request)
    since = datetime.combine(first, time.min, tz) if first else None
    until = datetime.combine(last + timedelta(days=1), time.min, tz) if last else None
    cursor = q.get("cursor", "")
    before = int(cursor) if cursor.isascii() and cursor.isdecimal() and len(cursor) < 19 else None
    async with request.app[DB].reading() as s:
        page = await audit.list_events(s, user, action=action or None, login=login or None,
                                       since=since, until=until, before_id=before)
    filters = {"action": action, "login": login, "from": first.isoformat() if first else "",
               "to": last.isoformat() if last else ""}
    more = ("/settings/audit?" + urlencode({**{k: v for k, v in filters.items() if v},
                                             "cursor": page.next_cursor}) if page.next_cursor else None)
    return await _page(request, "settings_audit.html", {
        "section": "/settings/audit", "events": page.items, "filters": filters, "more_url": more,
        "actions": AUDIT_ACTIONS})


# --- access ----------------------------------------------------------------------------------------

@admin_page
async def access_page(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        current = await settings.get_access(s, user)
    return await _page(request, "settings_access.html", {"section": "/settings/access", "access": current})


@admin_page
async def access_update(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    data: dict[str, Any] = {key: form.get(key) == "on" for key in ("agents_see_all", "route_to_free_agent")}
    if "call_grant" in form:
        data["call_grant"] = _text(form, "call_grant")
    hours = _text(form, "call_grant_hours").strip()
    if hours:  # (left empty: kept as it is)
        data["call_grant_hours"] = int(hours) if hours.isdecimal() and len(hours) < 10 else hours
    try:
        async with request.app[DB].transaction() as s:
            await settings.update_access(s, user, data)
    except ValidationError as exc:
        async with request.app[DB].reading() as s:
            current = await settings.get_access(s, user)
        return await _page(request, "settings_access.html", {
            "section": "/settings/access", "access": {**current, **data}, "errors": _errors(exc)}, status=422)
    raise _back("/settings/access", "saved")


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/settings", users_page)
    router.add_get("/settings/users", users_page)
    router.add_post("/settings/users", user_create)
    router.add_get("/settings/users/new", user_new)
    router.add_get(r"/settings/users/{id:\d+}", user_edit)
    router.add_post(r"/settings/users/{id:\d+}", user_update)
    router.add_post(r"/settings/users/{id:\d+}/password", user_password)
    router.add_post(r"/settings/users/{id:\d+}/tokens/{token_id:\d+}/end", user_token_end)
    router.add_get("/settings/pipelines", pipelines_page)
    router.add_post("/settings/pipelines", pipeline_create)
    router.add_get(r"/settings/pipelines/{id:\d+}", pipeline_page)
    router.add_post(r"/settings/pipelines/{id:\d+}", pipeline_update)
    router.add_post(r"/settings/pipelines/{id:\d+}/delete", pipeline_delete)
    router.add_get("/settings/loss-reasons", reasons_page)
    router.add_post("/settings/loss-reasons", reason_create)
    router.add_post(r"/settings/loss-reasons/{id:\d+}", reason_update)
    router.add_get("/settings/fields", fields_page)
    router.add_post("/settings/fields", field_create)
    router.add_get(r"/settings/fields/{id:\d+}", field_edit)
    router.add_post(r"/settings/fields/{id:\d+}", field_update)
    router.add_post(r"/settings/fields/{id:\d+}/delete", field_delete)
    router.add_get("/settings/tags", tags_page)
    router.add_post(r"/settings/tags/{id:\d+}", tag_update)
    router.add_post(r"/settings/tags/{id:\d+}/delete", tag_delete)
    router.add_get("/settings/access", access_page)
    router.add_get("/settings/audit", audit_page)
    router.add_post("/settings/access", access_update)
