"""``/calls``: the call journal (filters missed / agent / direction / dates, cursor paging, the
recording player, live refresh on ``call.ended``) — or an honest empty state when no telephony is
configured and no call was ever stored."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from hub.crm import calls, people_views
from hub.crm.errors import ValidationError
from hub.crm.models import CALL_DIRECTIONS
from hub.crm.validate import parse_date
from hub.web.errors import query_text
from hub.web.i18n import N_
from hub.web.keys import CHANNELS, DB
from hub.web.views.common import is_htmx, render, require_user, zone

PAGE_SIZE = 50
DIRECTIONS = (("", N_("Any direction")), ("inbound", N_("Inbound")), ("outbound", N_("Outbound")),
              ("internal", N_("Internal")))
MISSED = "missed,abandoned"


def _day(value: str | None) -> date | None:
    return parse_date(value) if value else None


def _filters(request: web.Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The journal's query (as shown in the form) and the filters for ``calls.list_calls``."""
    q = request.query
    missed = q.get("missed") == "1"
    direction = q.get("direction", "")
    direction = direction if direction in CALL_DIRECTIONS else ""
    agent = q.get("agent", "")
    agent = agent if agent.isdecimal() and 0 < len(agent) < 19 else ""
    since_day, until_day = _day(q.get("from")), _day(q.get("to"))
    if since_day and until_day and until_day < since_day:
        since_day, until_day = until_day, since_day
    tz = zone(request)
    filters: dict[str, Any] = {
        "status": MISSED if missed else None,
        "direction": direction or None,
        "agent_id": int(agent) if agent else None,
        "since": datetime.combine(since_day, time(0), tzinfo=tz) if since_day else None,
        "until": datetime.combine(until_day + timedelta(days=1), time(0), tzinfo=tz) if until_day else None,
    }
    query = {k: v for k, v in (("missed", "1" if missed else ""), ("direction", direction), ("agent", agent),
                               ("from", since_day.isoformat() if since_day else ""),
                               ("to", until_day.isoformat() if until_day else "")) if v}
    return filters, query


def _export_query(filters: dict[str, Any]) -> dict[str, str]:
    """The journal's filters as ``/api/v1/calls/export`` names them."""
    named = (("status", filters["status"]), ("direction", filters["direction"]),
             ("agent", filters["agent_id"]), ("since", filters["since"]), ("until", filters["until"]))
    return {key: value.isoformat() if isinstance(value, datetime) else str(value)
            for key, value in named if value}


async def journal(request: web.Request) -> web.Response:
    user = require_user(request)
    filters, query = _filters(request)
    cursor = query_text(request, "cursor", max_len=200)
    telephony = "asterisk" in request.app[CHANNELS]
    async with request.app[DB].reading() as s:
        try:
            page = await calls.list_calls(s, user, **filters, cursor=cursor, limit=PAGE_SIZE)
        except ValidationError:
            page = await calls.list_calls(s, user, limit=PAGE_SIZE)
            query = {}
        agents = (await people_views.client_filter_choices(s, user))["managers"]
    context = {"page": page, "query": query, "agents": agents, "directions": DIRECTIONS,
               "export_query": _export_query(filters),
               "telephony": telephony, "phone": people_views.phone_display}
    if is_htmx(request) and cursor:
        return await render(request, "calls_rows.html", context)
    return await render(request, "calls.html", context)


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/calls", journal)
