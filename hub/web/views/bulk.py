"""Mass actions on the deal and client lists: the rows ticked, an action and its value; a page asks to
confirm (what, on how many, which), then ``hub.crm.bulk`` does it and the list says how many were
changed and how many skipped (no access, refused)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from hub.crm import board, bulk, clients, deals, pipelines
from hub.crm.errors import NotFound, ValidationError
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB
from hub.web.views.common import render, require_user, safe_next

SHOWN = 20  # the rows named on the confirmation page
ACTIONS = {
    "deals": {"responsible": N_("Assign the responsible"), "tag": N_("Add a tag"),
              "stage": N_("Move to the stage"), "delete": N_("Delete")},
    "clients": {"manager": N_("Assign the manager"), "tag": N_("Add a tag"), "delete": N_("Delete")},
}


def _ids(form: MultiDictProxy[Any]) -> list[int]:
    return list(dict.fromkeys(int(v) for v in form.getall("ids", []) if isinstance(v, str) and v.isdigit()
                              and 0 < int(v) <= 2**62))[:bulk.MAX_IDS]


def _value(form: MultiDictProxy[Any], action: str) -> Any:
    raw = form.get(f"value_{action}", "")
    raw = raw.strip() if isinstance(raw, str) else ""
    return int(raw) if action in ("responsible", "manager", "stage") and raw.isdigit() else raw


async def _names(request: web.Request, kind: str, ids: list[int]) -> list[str]:
    user = require_user(request)
    names = []
    async with request.app[DB].reading() as s:
        for item_id in ids[:SHOWN]:
            try:
                item = (await deals.get_deal(s, user, item_id) if kind == "deals"
                        else await clients.get_client(s, user, item_id))
            except (NotFound, ValidationError):
                continue
            names.append(item["title"] if kind == "deals" else item["name"])
    return names


async def _value_label(request: web.Request, action: str, value: Any) -> str:
    """The value as the confirmation names it: a user's or a stage's name, a tag as it is."""
    user = require_user(request)
    async with request.app[DB].reading() as s:
        if action in ("responsible", "manager"):
            found = [u["name"] for u in await board.people(s) if u["id"] == value]
            return found[0] if found else str(value)
        if action == "stage":
            found = [f"{p['name']}: {st['name']}" for p in (await pipelines.list_pipelines(s, user)).items
                     for st in p["stages"] if st["id"] == value]
            return found[0] if found else str(value)
    return str(value)


async def _apply(request: web.Request, kind: str) -> web.StreamResponse:
    user = require_user(request)
    form = await request.post()
    back = safe_next(form.get("back"), f"/{kind}" if kind == "clients" else "/deals/list")
    action = form.get("action", "")
    ids = _ids(form)
    if not ids or action not in ACTIONS[kind]:
        raise web.HTTPSeeOther(_with(back, "bulk_none", "1"))
    value = _value(form, str(action))
    if form.get("confirm") != "1":
        return await render(request, "bulk_confirm.html", {
            "kind": kind, "ids": ids, "action": action, "action_label": ACTIONS[kind][str(action)],
            "value": value, "value_label": await _value_label(request, str(action), value), "back": back,
            "names": await _names(request, kind, ids)})
    data = {"ids": ids, "action": action, "value": value}
    try:
        async with request.app[DB].transaction() as s:
            result = (await bulk.bulk_deals(s, user, data) if kind == "deals"
                      else await bulk.bulk_clients(s, user, data, request.app[CONFIG].phones.default_region))
    except ValidationError:
        raise web.HTTPSeeOther(_with(back, "bulk_none", "1")) from None
    done, skipped = len(result["done"]), len(result["skipped"])
    raise web.HTTPSeeOther(_with(_with(back, "bulk_done", str(done)), "bulk_skipped", str(skipped)))


def _with(path: str, key: str, value: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{key}={value}"


async def bulk_deals(request: web.Request) -> web.StreamResponse:
    return await _apply(request, "deals")


async def bulk_clients(request: web.Request) -> web.StreamResponse:
    return await _apply(request, "clients")


def bulk_result(request: web.Request) -> dict[str, Any] | None:
    """What the list says after a mass action (from the redirect's query)."""
    q = request.query
    if q.get("bulk_none") == "1":
        return {"none": True}
    if "bulk_done" in q and q["bulk_done"].isdigit():
        skipped = q.get("bulk_skipped", "0")
        return {"done": int(q["bulk_done"]), "skipped": int(skipped) if skipped.isdigit() else 0}
    return None


def register_views(router: web.UrlDispatcher) -> None:
    router.add_post("/deals/bulk", bulk_deals)
    router.add_post("/clients/bulk", bulk_clients)
