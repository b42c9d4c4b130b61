"""The deals: the kanban ``/deals`` (one column per stage, lazy columns, drag to move) and the table
``/deals/list``; plus the fragments their scripts re-fetch (a column's next cards, one card, the
column totals, the Unsorted leads). The card page ``/deals/{id}`` is not here.

Moves go through the JSON API (``POST /api/v1/deals/{id}/move``); the pages re-read the database
after a move and on every deal event, so what they show is what was committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from hub.crm import board, deals, leads, pipelines
from hub.crm.errors import NotFound
from hub.crm.validate import small_int
from hub.web import i18n
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB, SESSION
from hub.web.views import bulk as bulk_views
from hub.web.views.common import render, require_user

COLUMN_CARDS = 15   # cards per column on the first render and per "load more"
LIST_ROWS = 50
ORDER_LABELS = {
    "created": N_("Newest first"),
    "amount": N_("Largest amount first"),
    "next": N_("Nearest interaction first"),
    "title": N_("Title A to Z"),
}


@dataclass(frozen=True)
class Filters:
    pipeline_id: int | None = None
    responsible_id: int | None = None
    tag: str | None = None

    def query(self, pipeline_id: int | None = None) -> dict[str, str]:
        result = {"pipeline": str(pipeline_id or self.pipeline_id or "")}
        if self.responsible_id:
            result["responsible"] = str(self.responsible_id)
        if self.tag:
            result["tag"] = self.tag
        return {k: v for k, v in result.items() if v}


def _int(request: web.Request, name: str) -> int | None:
    """A positive id from the query; anything else counts as absent (a page is forgiving)."""
    raw = request.query.get(name, "").strip()
    number = small_int(raw)
    return number if number is not None and 0 < number <= 2**62 else None


def _text(request: web.Request, name: str, max_len: int = 300) -> str | None:
    raw = request.query.get(name, "").strip()
    return raw[:max_len] or None


def _filters(request: web.Request) -> Filters:
    return Filters(_int(request, "pipeline"), _int(request, "responsible"), _text(request, "tag", 100))


def _match_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not 0 < (small_int(raw) or 0) <= 2**62:
        raise web.HTTPNotFound()
    return int(raw)


def fragment(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    """A piece of a page for htmx or kanban.js, in the reader's language."""
    user = require_user(request)
    return aiohttp_jinja2.render_template(
        template, request, {**i18n.context(request), "user": user, "csrf_token": request[SESSION].csrf_token,
                            **context}, status=status)


def _pick_pipeline(items: list[dict[str, Any]], wanted: int | None) -> dict[str, Any]:
    if not items:
        raise NotFound("there is no pipeline")
    if wanted is not None:
        for p in items:
            if p["id"] == wanted:
                return p
        raise NotFound("pipeline not found")
    return next((p for p in items if p["is_default"]), items[0])


# --- the kanban ------------------------------------------------------------------------------------------

async def board_page(request: web.Request) -> web.Response:
    user = require_user(request)
    f = _filters(request)
    async with request.app[DB].reading() as s:
        pipes = (await pipelines.list_pipelines(s, user)).items
        pipeline = _pick_pipeline(pipes, f.pipeline_id)
        totals = await deals.stage_totals(s, user, pipeline["id"], responsible_id=f.responsible_id, tag=f.tag)
        pages = await board.first_cards(s, user, [st["id"] for st in pipeline["stages"]], limit=COLUMN_CARDS,
                                        responsible_id=f.responsible_id, tag=f.tag)
        columns = [{"stage": st, "cards": pages[st["id"]].items, "next_cursor": pages[st["id"]].next_cursor,
                    **totals.get(st["id"], {"count": 0, "amount": 0})} for st in pipeline["stages"]]
        unsorted = await leads.list_leads(s, user, unsorted=True, limit=COLUMN_CARDS)
        unsorted_count = await leads.count_unsorted(s, user)
        reasons = (await pipelines.list_loss_reasons(s)).items
        people = await board.people(s)
        tags = await board.deal_tag_names(s)
    return await render(request, "deals_board.html", {
        "pipelines": pipes, "pipeline": pipeline, "columns": columns, "unsorted": unsorted,
        "unsorted_count": unsorted_count, "back": request.path_qs, "reasons": reasons, "people": people,
        "tags": tags, "filters": f,
        "filter_query": f.query(pipeline["id"]),
    })


async def column(request: web.Request) -> web.Response:
    """The next cards of one column (``cursor``) and the column's new "load more"."""
    user = require_user(request)
    stage_id = _match_id(request)
    f = _filters(request)
    cursor = _text(request, "cursor", 200)
    async with request.app[DB].reading() as s:
        page = await deals.list_stage_deals(s, user, stage_id, limit=COLUMN_CARDS, cursor=cursor,
                                            responsible_id=f.responsible_id, tag=f.tag)
    return fragment(request, "_deal_cards_column.html", {
        "stage_id": stage_id, "cards": page.items, "next_cursor": page.next_cursor,
        "filter_query": f.query()})


async def unsorted_more(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        page = await leads.list_leads(s, user, unsorted=True, limit=COLUMN_CARDS,
                                      cursor=_text(request, "cursor", 200))
        count = await leads.count_unsorted(s, user)
    return fragment(request, "_deal_cards_unsorted.html", {"unsorted": page, "unsorted_count": count})


async def card(request: web.Request) -> web.Response:
    """One card as the board shows it; 204 when the board's filters (or access) leave it out."""
    user = require_user(request)
    deal_id = _match_id(request)
    f = _filters(request)
    if f.pipeline_id is None:
        raise web.HTTPNotFound()
    async with request.app[DB].reading() as s:
        deal = await board.board_deal(s, user, deal_id, pipeline_id=f.pipeline_id,
                                      responsible_id=f.responsible_id, tag=f.tag)
    if deal is None:
        return web.Response(status=204)
    return fragment(request, "_deal_card.html", {"d": deal})


async def totals(request: web.Request) -> web.Response:
    """Every column's count and sum (the column headers' numbers), for a refresh after a change."""
    user = require_user(request)
    f = _filters(request)
    if f.pipeline_id is None:
        raise web.HTTPNotFound()
    async with request.app[DB].reading() as s:
        sums = await deals.stage_totals(s, user, f.pipeline_id, responsible_id=f.responsible_id, tag=f.tag)
    return fragment(request, "_deal_cards_totals.html", {"totals": sums})


# --- the table ---------------------------------------------------------------------------------------------

async def list_page(request: web.Request) -> web.Response:
    user = require_user(request)
    f = _filters(request)
    stage_id = _int(request, "stage")
    q = _text(request, "q")
    without_tasks = request.query.get("without_tasks") in ("1", "on", "true")
    order = request.query.get("order", board.DEFAULT_ORDER)
    if order not in board.ORDERS:
        order = board.DEFAULT_ORDER
    cursor = _text(request, "cursor", 400)
    async with request.app[DB].reading() as s:
        pipes = (await pipelines.list_pipelines(s, user)).items
        page = await board.list_deals_ordered(
            s, user, order=order, pipeline_id=f.pipeline_id, stage_id=stage_id,
            responsible_id=f.responsible_id, tag=f.tag, q=q, without_tasks=without_tasks, cursor=cursor,
            limit=LIST_ROWS, region=request.app[CONFIG].phones.default_region)
        if request.headers.get("HX-Request") == "true" and cursor:
            return fragment(request, "_deal_cards_rows.html",
                            {"rows": page.items, "next_url": _next_url(request, page)})
        people = await board.people(s)
        tags = await board.deal_tag_names(s)
    stages = [{**st, "pipeline": p["name"]} for p in pipes for st in p["stages"]
              if f.pipeline_id in (None, p["id"])]
    return await render(request, "deals_list.html", {
        "rows": page.items, "next_url": _next_url(request, page), "pipelines": pipes, "stages": stages,
        "people": people, "tags": tags, "filters": f, "stage_id": stage_id, "q": q or "",
        "without_tasks": without_tasks, "order": order, "orders": ORDER_LABELS,
        "export_query": {k: str(v) for k, v in (("pipeline", f.pipeline_id), ("stage", stage_id),
                         ("responsible", f.responsible_id), ("tag", f.tag), ("q", q)) if v},
        "filtered": bool(f.pipeline_id or f.responsible_id or f.tag or stage_id or q or without_tasks),
        "bulk": bulk_views.bulk_result(request),
    })


def _next_url(request: web.Request, page: Any) -> str | None:
    if not page.next_cursor:
        return None
    return str(URL("/deals/list").with_query({**request.query, "cursor": page.next_cursor}))


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/deals", board_page)
    router.add_get("/deals/list", list_page)
    router.add_get(r"/deals/board/column/{id}", column)
    router.add_get("/deals/board/unsorted", unsorted_more)
    router.add_get(r"/deals/board/card/{id}", card)
    router.add_get("/deals/board/totals", totals)
