"""The header's search box: suggestions as one types (a dropdown, htmx) and the full results page.

Both read the same search as ``GET /api/v1/search`` (``hub.crm.finder``), grouped by kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub.crm import finder
from hub.crm import search_query as sq
from hub.crm.errors import ValidationError
from hub.web import i18n
from hub.web.i18n import N_
from hub.web.keys import DB
from hub.web.views.common import render, require_user

SUGGESTIONS = 5  # of each kind in the dropdown
PAGE = 20  # of each kind on the results page (one kind alone: finder.MAX_LIMIT)
KIND_LABELS = {"client": N_("Clients"), "contact": N_("Contacts"), "lead": N_("Leads"), "deal": N_("Deals"),
               "task": N_("Tasks"), "message": N_("Messages"), "letter": N_("Letters"), "call": N_("Calls"),
               "note": N_("Notes")}


@dataclass(frozen=True)
class Group:
    kind: str
    label: str
    items: list[finder.Hit]


def _groups(hits: list[finder.Hit]) -> list[Group]:
    groups: dict[str, list[finder.Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.kind, []).append(hit)
    return [Group(kind, KIND_LABELS[kind], items) for kind, items in groups.items()]


async def _search(request: web.Request, q: str, kinds: tuple[str, ...], limit: int) -> list[Group]:
    user = require_user(request)
    async with request.app[DB].reading() as s:
        return _groups(await finder.search(s, user, q, kinds, limit))


def _query(request: web.Request) -> str:
    return " ".join(request.query.get("q", "").split())[:sq.MAX_QUERY]


async def suggest(request: web.Request) -> web.Response:
    """The dropdown under the box (a fragment for htmx)."""
    user = require_user(request)
    q = _query(request)
    groups = await _search(request, q, sq.KINDS, SUGGESTIONS) if q else []
    return aiohttp_jinja2.render_template("_search_suggest.html", request, {
        **i18n.context(request), "user": user, "q": q, "groups": groups})


async def results(request: web.Request) -> web.Response:
    """The full results page (Enter in the box), optionally of one kind."""
    q = _query(request)
    kind = request.query.get("kind", "")
    try:
        kinds = finder.parse_kinds(kind) if kind else sq.KINDS
    except ValidationError:
        kinds, kind = sq.KINDS, ""
    limit = finder.MAX_LIMIT if kind else PAGE
    groups = await _search(request, q, kinds, limit) if q else []
    context: dict[str, Any] = {"q": q, "kind": kind, "groups": groups, "search_q": q, "limit": limit,
                               "kind_labels": KIND_LABELS}
    return await render(request, "search.html", context)


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/search", results)
    router.add_get("/search/suggest", suggest)
