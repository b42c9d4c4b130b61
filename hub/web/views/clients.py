"""``/clients`` (search, filters, cursor paging, a new client) and the ``/clients/{id}`` card with its tabs.

Routes stay thin: they read the form or the query, call the core services and render. A form the
service refuses comes back with each reason next to its field (status 422); a success redirects.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from hub.crm import access, clients, contacts, deals, merge, people_views, pipelines, tasks
from hub.crm.errors import DuplicateFound, ValidationError
from hub.crm.models import CLIENT_KINDS, RELATIONSHIPS
from hub.web.errors import query_int, query_text
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB
from hub.web.views import bulk as bulk_views
from hub.web.views import timeline_part
from hub.web.views.common import is_htmx, render, require_user
from hub.web.views.duplicate_warning import allow_from, warning

PAGE_SIZE = 25
TABS = (
    ("main", N_("Main")),
    ("requisites", N_("Requisites")),
    ("contacts", N_("Contact persons")),
    ("deals", N_("Deals")),
    ("tasks", N_("Tasks")),
    ("timeline", N_("Timeline")),
    ("history", N_("History of changes")),
)
KIND_LABELS = {"company": N_("Company"), "person": N_("Person")}
RELATIONSHIP_LABELS = {"buyer": N_("Buyer"), "supplier": N_("Supplier"), "partner": N_("Partner"),
                       "competitor": N_("Competitor"), "other": N_("Other")}

# The core's reasons (English, for API clients) as the page says them.
REASONS = {
    "is required": N_("Fill this in."),
    "must not be empty": N_("Fill this in."),
    "must be 10 or 12 digits": N_("An INN has 10 or 12 digits."),
    "checksum does not match": N_("The check digit does not match: look for a typo."),
    "must be 9 characters: 4 digits, 2 digits or capital letters, 3 digits":
        N_("A KPP has 9 characters: 4 digits, then 2 digits or capital letters, then 3 digits."),
    "must be 8 or 10 digits": N_("An OKPO has 8 or 10 digits."),
    "no such user": N_("No such user."),
    "must be a number": N_("Enter a number, e.g. 150000 or 1 500,50."),
    "must be a non-negative amount below 10^13": N_("Enter an amount from 0 up to 10 000 000 000 000."),
    "must have at most two decimal places": N_("At most two digits after the comma."),
    "must contain no NUL characters": N_("This text contains characters that cannot be stored."),
    "must not contain NUL characters": N_("This text contains characters that cannot be stored."),
}
PATTERNS = (
    (re.compile(r"must be at most (?P<n>\d+) characters"), N_("Too long: at most %(n)s characters.")),
    (re.compile(r"'(?P<value>.*)' is not a valid phone number", re.S),
     N_("“%(value)s” is not a phone number.")),
    (re.compile(r"'(?P<value>.*)' is not a valid e-mail address", re.S),
     N_("“%(value)s” is not an e-mail address.")),
    (re.compile(r"'(?P<value>.*)' is not a Telegram id or @username", re.S),
     N_("“%(value)s” is not a Telegram @username or numeric id.")),
    (re.compile(r"must be a list of at most (?P<n>\d+)"), N_("At most %(n)s values.")),
)
FALLBACK = N_("Check this value.")

def field_errors(fields: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{"field": {"msg": msgid, **params}}`` for the template's ``_(e.msg, **e)``."""
    result: dict[str, dict[str, str]] = {}
    for name, reason in fields.items():
        if reason in REASONS:
            result[name] = {"msg": REASONS[reason]}
            continue
        for pattern, msg in PATTERNS:
            found = pattern.fullmatch(reason)
            if found:
                result[name] = {"msg": msg, **found.groupdict()}
                break
        else:
            result[name] = {"msg": FALLBACK}
    return result


# --- reading forms ------------------------------------------------------------------------------------

def region(request: web.Request) -> str:
    return request.app[CONFIG].phones.default_region


def split_list(value: str) -> list[str]:
    """Several values typed in one field: one per line, or separated by commas or semicolons."""
    return [item.strip() for item in re.split(r"[,;\n]+", value) if item.strip()]


def text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def user_id_value(value: str) -> int | str | None:
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdecimal() and len(value) < 19 else value


def points_from(form: MultiDictProxy[Any], data: dict[str, Any]) -> None:
    for name in ("phones", "emails", "telegram"):
        if name in form:
            data[name] = split_list(text(form, name))


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError):
        raise web.HTTPNotFound() from None
    if not 0 < value < 2**62:
        raise web.HTTPNotFound()
    return value


def amount_text(value: str) -> str:
    return value.replace("\u00a0", "").replace("\u202f", "").replace(" ", "").strip()


# --- the list -------------------------------------------------------------------------------------------

def list_filters(request: web.Request) -> dict[str, Any]:
    try:
        manager = query_int(request, "manager")
    except ValidationError:
        manager = None
    return {"q": query_text(request, "q") or "", "manager": manager,
            "tag": query_text(request, "tag") or "", "region": query_text(request, "region") or ""}


async def client_list(request: web.Request, *, form: dict[str, Any] | None = None,
                      errors: dict[str, str] | None = None, duplicates: dict[str, Any] | None = None,
                      status: int = 200) -> web.Response:
    user = require_user(request)
    filters = list_filters(request)
    cursor = query_text(request, "cursor", max_len=200)
    async with request.app[DB].reading() as s:
        page = await clients.list_clients(
            s, user, q=filters["q"] or None, manager_id=filters["manager"], tag=filters["tag"] or None,
            region_name=filters["region"] or None, cursor=cursor, limit=PAGE_SIZE, region=region(request))
        choices = await people_views.client_filter_choices(s, user)
    context = {"page": page, "filters": filters, "choices": choices, "kinds": CLIENT_KINDS,
               "kind_labels": KIND_LABELS, "phone": people_views.phone_display,
               "query": {k: v for k, v in filters.items() if v}, "form": form or {},
               "export_query": {k: v for k, v in filters.items() if v},
               "bulk": bulk_views.bulk_result(request),
               "errors": field_errors(errors or {}), "duplicates": duplicates,
               "staff": access.is_staff(user)}
    if is_htmx(request) and cursor:
        return await render(request, "client_rows.html", context)
    return await render(request, "clients.html", context, status=status)


async def create_client(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    data: dict[str, Any] = {"name": text(form, "name"), "kind": text(form, "kind") or "company",
                            "inn": text(form, "inn"), "kpp": text(form, "kpp"),
                            "tags": split_list(text(form, "tags"))}
    points_from(form, data)
    allow_from(form, data)
    manager = user_id_value(text(form, "manager_id"))
    if manager is not None:
        data["manager_id"] = manager
    try:
        async with request.app[DB].transaction() as s:
            created = await clients.create_client(s, user, data, region=region(request))
    except ValidationError as exc:
        return await client_list(request, form=dict(form), errors=exc.fields, status=422)
    except DuplicateFound as exc:
        return await client_list(request, form=dict(form), duplicates=warning(exc), status=409)
    raise web.HTTPSeeOther(f"/clients/{created['id']}")


# --- the card -------------------------------------------------------------------------------------------

async def client_card(request: web.Request, *, tab: str | None = None, form: dict[str, Any] | None = None,
                      errors: dict[str, str] | None = None, form_name: str = "",
                      duplicates: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    user = require_user(request)
    client_id = path_id(request)
    # The timeline's filter chips link to ``?tl=…`` (without JavaScript): that is the timeline tab.
    tab = tab or request.query.get("tab") or ("timeline" if "tl" in request.query else "main")
    if tab not in dict(TABS):
        tab = "main"
    context: dict[str, Any] = {}
    async with request.app[DB].reading() as s:
        client = await clients.get_client(s, user, client_id)
        context["contacts"] = (await contacts.list_contacts(s, user, client_id=client_id, limit=100)).items
        context["merges"] = await merge.recent_merges(s, user, client_id)
        if tab == "main":
            context["choices"] = await people_views.client_filter_choices(s, user)
        elif tab == "deals":
            context["deals"] = await deals.list_deals(s, user, client_id=client_id, limit=100)
            context["pipelines"] = (await pipelines.list_pipelines(s, user)).items
        elif tab == "tasks":
            context["tasks"] = await tasks.list_tasks(s, user, client_id=client_id, limit=100)
    if tab == "timeline":
        context.update(await timeline_part.timeline_fragment(request, "client", client_id))
    elif tab == "history":
        from hub.web.views import history_part  # (it reads this module's labels)

        context.update(await history_part.history_context(request, "client", client_id))
    return await render(request, "client.html", {
        **context, "client": client, "tab": tab, "tabs": TABS, "kinds": CLIENT_KINDS,
        "kind_labels": KIND_LABELS, "relationships": RELATIONSHIPS,
        "relationship_labels": RELATIONSHIP_LABELS,
        "phone": people_views.phone_display, "form": form or {}, "form_name": form_name,
        "errors": field_errors(errors or {}), "duplicates": duplicates,
        "undo_refused": request.query.get("undo") == "refused",
    }, status=status)


async def client_page(request: web.Request) -> web.Response:
    return await client_card(request)


EDITABLE = {
    "main": ("name", "kind", "relationship_type", "region", "industry", "comment"),
    "requisites": ("full_name", "inn", "kpp", "okpo"),
}


async def update_client(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    client_id = path_id(request)
    form = await request.post()
    section = text(form, "section")
    if section not in EDITABLE:
        raise web.HTTPBadRequest(text="unknown section")
    data: dict[str, Any] = {name: text(form, name) for name in EDITABLE[section] if name in form}
    if section == "main":
        points_from(form, data)
        if "tags" in form:
            data["tags"] = split_list(text(form, "tags"))
        if "manager_id" in form:
            data["manager_id"] = user_id_value(text(form, "manager_id"))
    allow_from(form, data)
    try:
        async with request.app[DB].transaction() as s:
            await clients.update_client(s, user, client_id, data, region=region(request))
    except ValidationError as exc:
        return await client_card(request, tab=section, form=dict(form), errors=exc.fields,
                                 form_name=section, status=422)
    except DuplicateFound as exc:
        return await client_card(request, tab=section, form=dict(form), form_name=section,
                                 duplicates=warning(exc), status=409)
    raise web.HTTPSeeOther(f"/clients/{client_id}?tab={section}")


def contact_data(form: MultiDictProxy[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {name: text(form, name) for name in ("name", "position", "comment")
                            if name in form}
    points_from(form, data)
    allow_from(form, data)
    return data


async def add_contact(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    client_id = path_id(request)
    form = await request.post()
    try:
        async with request.app[DB].transaction() as s:
            await contacts.create_contact(s, user, {**contact_data(form), "client_id": client_id},
                                          region=region(request))
    except ValidationError as exc:
        if "client_id" in exc.fields:
            raise web.HTTPNotFound() from None
        return await client_card(request, tab="contacts", form=dict(form), errors=exc.fields,
                                 form_name="contact-new", status=422)
    except DuplicateFound as exc:
        return await client_card(request, tab="contacts", form=dict(form), form_name="contact-new",
                                 duplicates=warning(exc), status=409)
    raise web.HTTPSeeOther(f"/clients/{client_id}?tab=contacts")


async def _own_contact(request: web.Request, client_id: int, contact_id: int) -> None:
    """The contact belongs to this client (else 404: the URL is wrong)."""
    async with request.app[DB].reading() as s:
        contact = await contacts.get_contact(s, require_user(request), contact_id)
    if contact["client_id"] != client_id:
        raise web.HTTPNotFound()


async def edit_contact(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    client_id, contact_id = path_id(request), path_id(request, "contact_id")
    await _own_contact(request, client_id, contact_id)
    form = await request.post()
    try:
        async with request.app[DB].transaction() as s:
            await contacts.update_contact(s, user, contact_id, contact_data(form), region=region(request))
    except ValidationError as exc:
        return await client_card(request, tab="contacts", form=dict(form), errors=exc.fields,
                                 form_name=f"contact-{contact_id}", status=422)
    except DuplicateFound as exc:
        return await client_card(request, tab="contacts", form=dict(form), form_name=f"contact-{contact_id}",
                                 duplicates=warning(exc), status=409)
    raise web.HTTPSeeOther(f"/clients/{client_id}?tab=contacts")


async def delete_contact(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    client_id, contact_id = path_id(request), path_id(request, "contact_id")
    await _own_contact(request, client_id, contact_id)
    async with request.app[DB].transaction() as s:
        await contacts.delete_contact(s, user, contact_id)
    raise web.HTTPSeeOther(f"/clients/{client_id}?tab=contacts")


def deal_data(form: MultiDictProxy[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"title": text(form, "title")}
    amount = amount_text(text(form, "amount"))
    if amount:
        data["amount"] = amount
    pipeline = user_id_value(text(form, "pipeline_id"))
    if pipeline is not None:
        data["pipeline_id"] = pipeline
    return data


async def add_deal(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    client_id = path_id(request)
    form = await request.post()
    try:
        async with request.app[DB].transaction() as s:
            await deals.create_deal(s, user, {**deal_data(form), "client_id": client_id})
    except ValidationError as exc:
        if "client_id" in exc.fields:
            raise web.HTTPNotFound() from None
        return await client_card(request, tab="deals", form=dict(form), errors=exc.fields,
                                 form_name="deal", status=422)
    raise web.HTTPSeeOther(f"/clients/{client_id}?tab=deals")


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/clients", client_list)
    router.add_post("/clients", create_client)
    router.add_get(r"/clients/{id:\d+}", client_page)
    router.add_post(r"/clients/{id:\d+}", update_client)
    router.add_post(r"/clients/{id:\d+}/contacts", add_contact)
    router.add_post(r"/clients/{id:\d+}/contacts/{contact_id:\d+}", edit_contact)
    router.add_post(r"/clients/{id:\d+}/contacts/{contact_id:\d+}/delete", delete_contact)
    router.add_post(r"/clients/{id:\d+}/deals", add_deal)
