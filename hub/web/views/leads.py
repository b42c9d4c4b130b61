"""``/leads`` (search; unsorted / mine / all; a new lead) and the ``/leads/{id}`` card: take it, and
"Сделать клиентом" (convert) which lands on the new client's card."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.crm import access, deals, leads, people_views, tasks
from hub.crm.errors import Conflict, DuplicateFound, ValidationError
from hub.crm.models import CLIENT_KINDS
from hub.web.errors import query_text
from hub.web.i18n import N_
from hub.web.keys import DB
from hub.web.views import timeline_part
from hub.web.views.clients import (
    KIND_LABELS,
    PAGE_SIZE,
    field_errors,
    path_id,
    points_from,
    region,
    text,
)
from hub.web.views.common import is_htmx, render, require_user, safe_next
from hub.web.views.duplicate_warning import allow_from, warning

SHOWS = (("all", N_("All")), ("unsorted", N_("Unsorted")), ("mine", N_("Mine")))


async def lead_list(request: web.Request, *, form: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None, duplicates: dict[str, Any] | None = None,
                    status: int = 200) -> web.Response:
    user = require_user(request)
    q = query_text(request, "q") or ""
    show = request.query.get("show", "all")
    if show not in dict(SHOWS):
        show = "all"
    cursor = query_text(request, "cursor", max_len=200)
    async with request.app[DB].reading() as s:
        page = await leads.list_leads(
            s, user, q=q or None, unsorted=True if show == "unsorted" else None,
            manager_id=user.id if show == "mine" else None, cursor=cursor, limit=PAGE_SIZE,
            region=region(request))
    query = {k: v for k, v in (("q", q), ("show", show if show != "all" else "")) if v}
    export_query = {k: v for k, v in (("q", q), ("unsorted", "true" if show == "unsorted" else ""),
                                      ("manager", str(user.id) if show == "mine" else "")) if v}
    context = {"page": page, "q": q, "show": show, "shows": SHOWS, "query": query,
               "export_query": export_query,
               "phone": people_views.phone_display, "form": form or {}, "errors": field_errors(errors or {}),
               "duplicates": duplicates}
    if is_htmx(request) and cursor:
        return await render(request, "lead_rows.html", context)
    return await render(request, "leads.html", context, status=status)


async def create_lead(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    data: dict[str, Any] = {name: text(form, name) for name in ("name", "source", "comment")}
    points_from(form, data)
    allow_from(form, data)
    try:
        async with request.app[DB].transaction() as s:
            created = await leads.create_lead(s, user, data, region=region(request))
    except ValidationError as exc:
        return await lead_list(request, form=dict(form), errors=exc.fields, status=422)
    except DuplicateFound as exc:
        return await lead_list(request, form=dict(form), duplicates=warning(exc), status=409)
    raise web.HTTPSeeOther(f"/leads/{created['id']}")


async def lead_card(request: web.Request, *, form: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None, conflict: bool = False,
                    reject_error: bool = False, status: int = 200) -> web.Response:
    user = require_user(request)
    lead_id = path_id(request)
    async with request.app[DB].reading() as s:
        lead = await leads.get_lead(s, user, lead_id)
        lead_deals = await deals.list_deals(s, user, lead_id=lead_id, limit=100)
        lead_tasks = await tasks.list_tasks(s, user, lead_id=lead_id, limit=100)
        known = [] if lead["converted_client_id"] else await people_views.clients_sharing_points(
            s, user, lead, region=region(request))
    return await render(request, "lead.html", {
        **await timeline_part.timeline_fragment(request, "lead", lead_id),
        "lead": lead, "deals": lead_deals, "tasks": lead_tasks, "known": known,
        "kinds": CLIENT_KINDS, "kind_labels": KIND_LABELS,
        "phone": people_views.phone_display,
        "form": form or {}, "errors": field_errors(errors or {}), "conflict": conflict,
        "staff": access.is_staff(user),
        "convert_open": bool(errors) or conflict, "reject_error": reject_error,
    }, status=status)


async def lead_page(request: web.Request) -> web.Response:
    return await lead_card(request)


async def take_lead(request: web.Request) -> web.StreamResponse:
    """Assign the lead to me (it stops being unsorted; a rejected one comes back)."""
    user = require_user(request)
    lead_id = path_id(request)
    form = await request.post()
    async with request.app[DB].transaction() as s:
        await leads.update_lead(s, user, lead_id, {"manager_id": user.id})
    raise web.HTTPSeeOther(safe_next(text(form, "back"), f"/leads/{lead_id}"))


async def reject_lead(request: web.Request) -> web.StreamResponse:
    """Out of Unsorted with a reason (from the board's column or the lead's card)."""
    user = require_user(request)
    lead_id = path_id(request)
    form = await request.post()
    back = safe_next(text(form, "back"), f"/leads/{lead_id}")
    try:
        async with request.app[DB].transaction() as s:
            await leads.reject_lead(s, user, lead_id, {"reason": text(form, "reason").strip()})
    except ValidationError:
        return await lead_card(request, reject_error=True, status=422)
    except Conflict:
        return await lead_card(request, conflict=True, status=409)
    raise web.HTTPSeeOther(back)


async def convert_lead(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    lead_id = path_id(request)
    form = await request.post()
    data: dict[str, Any] = {"name": text(form, "name"), "kind": text(form, "kind") or "person"}
    if text(form, "contact_name").strip():
        data["contact_name"] = text(form, "contact_name")
    try:
        async with request.app[DB].transaction() as s:
            result = await leads.convert_lead(s, user, lead_id, data, region=region(request))
    except ValidationError as exc:
        return await lead_card(request, form=dict(form), errors=exc.fields, status=422)
    except Conflict:
        return await lead_card(request, form=dict(form), conflict=True, status=409)
    raise web.HTTPSeeOther(safe_next(text(form, "back"), f"/clients/{result['client']['id']}"))


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/leads", lead_list)
    router.add_post("/leads", create_lead)
    router.add_get(r"/leads/{id:\d+}", lead_page)
    router.add_post(r"/leads/{id:\d+}/take", take_lead)
    router.add_post(r"/leads/{id:\d+}/convert", convert_lead)
    router.add_post(r"/leads/{id:\d+}/reject", reject_lead)
