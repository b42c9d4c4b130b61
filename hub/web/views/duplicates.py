"""Duplicates in the UI: the ``/duplicates`` page (staff), merging two clients field by field, and
undoing a merge within a day. The warning forms show is ``duplicate_warning``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from hub.crm import access, clients, duplicates, merge, people_views
from hub.crm.errors import Conflict, ValidationError
from hub.web.i18n import N_
from hub.web.keys import DB
from hub.web.views.clients import path_id, text
from hub.web.views.common import render, require_user

REASON_LABELS = {"inn": N_("Same INN"), "phone": N_("Same phone"), "email": N_("Same e-mail"),
                 "name": N_("Similar name")}
FIELD_LABELS = {"kind": N_("Kind"), "name": N_("Name"), "full_name": N_("Full name"), "inn": N_("INN"),
                "kpp": N_("KPP"), "okpo": N_("OKPO"), "manager_id": N_("Manager"),
                "relationship_type": N_("Relationship"), "region": N_("Region"), "industry": N_("Industry"),
                "comment": N_("Comment")}


# --- the list ----------------------------------------------------------------------------------------------

async def duplicates_page(request: web.Request) -> web.Response:
    user = require_user(request)
    if not access.is_staff(user):
        raise web.HTTPForbidden()
    async with request.app[DB].reading() as s:
        groups = await duplicates.likely_pairs(s, user)
    return await render(request, "duplicates.html", {"groups": groups, "reason_labels": REASON_LABELS,
                                                     "phone": people_views.phone_display})


# --- merging -------------------------------------------------------------------------------------------

def _other_id(request: web.Request, form: MultiDictProxy[Any] | None = None) -> int:
    raw = text(form, "other_id") if form is not None else request.query.get("other", "")
    if not raw.isdecimal() or not 0 < int(raw) < 2**62:
        raise web.HTTPNotFound()
    return int(raw)


async def merge_page(request: web.Request, *, errors: dict[str, str] | None = None,
                     status: int = 200) -> web.Response:
    user = require_user(request)
    if not access.is_staff(user):
        raise web.HTTPForbidden()
    client_id, other_id = path_id(request), _other_id(request, await request.post()
                                                       if request.method == "POST" else None)
    async with request.app[DB].reading() as s:
        kept = await clients.get_client(s, user, client_id)
        other = await clients.get_client(s, user, other_id)
    rows = [{"name": name, "label": FIELD_LABELS[name], "kept": kept[name], "other": other[name],
             "kept_manager": (kept.get("manager") or {}).get("name"),
             "other_manager": (other.get("manager") or {}).get("name")}
            for name in merge.FIELDS if kept[name] != other[name]]
    return await render(request, "client_merge.html", {
        "kept": kept, "other": other, "rows": rows, "errors": errors or {}}, status=status)


async def merge_submit(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    client_id = path_id(request)
    form = await request.post()
    other_id = _other_id(request, form)
    fields = {name: text(form, f"field_{name}") for name in merge.FIELDS
              if text(form, f"field_{name}") in merge.SIDES}
    try:
        async with request.app[DB].transaction() as s:
            await merge.merge_clients(s, user, client_id, {"other_id": other_id, "fields": fields})
    except ValidationError as exc:
        return await merge_page(request, errors=exc.fields, status=422)
    raise web.HTTPSeeOther(f"/clients/{client_id}")


async def undo_submit(request: web.Request) -> web.StreamResponse:
    """From the kept client's card (``client_id``): back to it, saying so when the undo is refused."""
    user = require_user(request)
    merge_id = path_id(request)
    form = await request.post()
    back = text(form, "client_id")
    back = back if back.isdecimal() else ""
    try:
        async with request.app[DB].transaction() as s:
            result = await merge.undo_merge(s, user, merge_id)
    except Conflict:  # undone already, or more than a day ago
        raise web.HTTPSeeOther(f"/clients/{back}?undo=refused" if back else "/duplicates") from None
    raise web.HTTPSeeOther(f"/clients/{result['kept']['id']}")


async def merge_lead_submit(request: web.Request) -> web.StreamResponse:
    """«Присоединить к этому клиенту» on a lead card whose phone or e-mail a client has."""
    user = require_user(request)
    lead_id = path_id(request)
    form = await request.post()
    client_id = text(form, "client_id")
    if not client_id.isdecimal() or not 0 < int(client_id) < 2**62:
        raise web.HTTPNotFound()
    try:
        async with request.app[DB].transaction() as s:
            await merge.merge_lead(s, user, lead_id, {"client_id": int(client_id)})
    except ValidationError:
        raise web.HTTPNotFound() from None
    except Conflict:  # converted meanwhile: the lead card says so
        raise web.HTTPSeeOther(f"/leads/{lead_id}") from None
    raise web.HTTPSeeOther(f"/clients/{client_id}?tab=timeline")


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/duplicates", duplicates_page)
    router.add_get(r"/clients/{id:\d+}/merge", merge_page)
    router.add_post(r"/clients/{id:\d+}/merge", merge_submit)
    router.add_post(r"/merges/{id:\d+}/undo", undo_submit)
    router.add_post(r"/leads/{id:\d+}/merge", merge_lead_submit)
