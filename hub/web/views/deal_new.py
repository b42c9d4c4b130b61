"""A new deal from anywhere: the quick form (title, a client or lead — found by search or a new client —
amount, pipeline and stage) on the board's columns, the deal list, a lead's card and the screen-pop's
«Создать сделку», and its page ``/deals/new`` (prefilled by ``?client=``, ``?lead=``, ``?pipeline=``,
``?stage=``). A new client named in the form is created with the deal, in one unit of work.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from hub.crm import clients, deals, leads, pipelines
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import User
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB
from hub.web.views.clients import amount_text, field_errors, text
from hub.web.views.common import render, require_user, safe_next
from hub.web.views.deals_board import fragment

SEARCHED = 20
NO_OWNER = N_("Choose a client or a lead, or name a new client.")


def _owner(value: str) -> tuple[str, int] | None:
    kind, _, number = value.partition(":")
    if kind in ("client", "lead") and number.isdigit() and 0 < int(number) <= 2**62:
        return kind, int(number)
    return None


async def _owner_choice(s: Any, user: User, kind: str, owner_id: int) -> dict[str, Any] | None:
    """The client or lead the form starts with, if the user may see it."""
    try:
        found = (await clients.get_client(s, user, owner_id) if kind == "client"
                 else await leads.get_lead(s, user, owner_id))
    except (NotFound, ValidationError):
        return None
    return {"value": f"{kind}:{owner_id}", "name": found["name"], "kind": kind}


async def form_context(s: Any, user: User, *, owner: str = "", pipeline_id: int | None = None,
                       stage_id: int | None = None, back: str = "") -> dict[str, Any]:
    """What the quick form needs: the pipelines with their active stages and the preset owner."""
    pipes = (await pipelines.list_pipelines(s, user)).items
    chosen = _owner(owner)
    preset = await _owner_choice(s, user, *chosen) if chosen else None
    return {"pipelines": pipes, "preset": preset, "values": {
        "pipeline_id": pipeline_id, "stage_id": stage_id, "owner": preset["value"] if preset else ""},
        "back": back, "errors": {}}


def _query_id(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 2**62 else None


async def new_deal_page(request: web.Request) -> web.Response:
    user = require_user(request)
    owner = ""
    if (client_id := _query_id(request, "client")) is not None:
        owner = f"client:{client_id}"
    elif (lead_id := _query_id(request, "lead")) is not None:
        owner = f"lead:{lead_id}"
    async with request.app[DB].reading() as s:
        context = await form_context(s, user, owner=owner, pipeline_id=_query_id(request, "pipeline"),
                                     stage_id=_query_id(request, "stage"),
                                     back=safe_next(request.query.get("back"), ""))
    return await render(request, "deal_new.html", context)


async def owner_options(request: web.Request) -> web.Response:
    """Clients and leads a search names, for the form's picker: the first one found is chosen."""
    user = require_user(request)
    q = request.query.get("q", "").strip()[:100]
    region = request.app[CONFIG].phones.default_region
    found: list[dict[str, Any]] = []
    if q:
        async with request.app[DB].reading() as s:
            named = await clients.list_clients(s, user, q=q, limit=SEARCHED, region=region)
            found += [{"value": f"client:{c['id']}", "name": c["name"], "kind": "client"}
                      for c in named.items]
            found += [{"value": f"lead:{lead['id']}", "name": lead["name"], "kind": "lead"}
                      for lead in (await leads.list_leads(s, user, q=q, limit=SEARCHED)).items
                      if not lead.get("converted_client_id")]
    return fragment(request, "_deal_new_owners.html", {"found": found, "q": q})


def _deal_fields(form: MultiDictProxy[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"title": text(form, "title").strip()}
    if amount := amount_text(text(form, "amount")):
        data["amount"] = amount
    for name in ("pipeline_id", "stage_id"):
        if (raw := text(form, name).strip()).isdigit():
            data[name] = int(raw)
    return data


async def _create(s: Any, user: User, form: MultiDictProxy[Any], region: str) -> dict[str, Any]:
    data = _deal_fields(form)
    owner = _owner(text(form, "owner"))
    new_client = text(form, "new_client").strip()
    if owner is None and not new_client:
        raise ValidationError({"owner": "no owner"})
    if owner is None:
        try:
            client = await clients.create_client(s, user, {"name": new_client, "manager_id": user.id}, region)
        except ValidationError as exc:
            raise ValidationError({f"new_client_{k}" if k != "name" else "new_client": r
                                   for k, r in exc.fields.items()}) from None
        data["client_id"] = client["id"]
    else:
        data[f"{owner[0]}_id"] = owner[1]
    return await deals.create_deal(s, user, data)


async def create_deal(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    try:
        async with request.app[DB].transaction() as s:
            deal = await _create(s, user, form, request.app[CONFIG].phones.default_region)
    except ValidationError as exc:
        async with request.app[DB].reading() as s:
            context = await form_context(
                s, user, owner=text(form, "owner"), pipeline_id=_deal_fields(form).get("pipeline_id"),
                stage_id=_deal_fields(form).get("stage_id"), back=safe_next(text(form, "back"), ""))
        owner_fields = {"owner", "client_id", "lead_id"}
        errors = field_errors({k: r for k, r in exc.fields.items() if k not in owner_fields})
        if owner_fields & exc.fields.keys():
            errors["owner"] = {"msg": NO_OWNER}
        context.update(errors=errors, form=dict(form))
        context["values"].update(title=text(form, "title"), amount=text(form, "amount"),
                                 new_client=text(form, "new_client"))
        return await render(request, "deal_new.html", context, status=422)
    back = safe_next(text(form, "back"), "")
    raise web.HTTPSeeOther(back or f"/deals/{deal['id']}")


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/deals/new", new_deal_page)
    router.add_get("/deals/new/owners", owner_options)
    router.add_post("/deals/new", create_deal)

