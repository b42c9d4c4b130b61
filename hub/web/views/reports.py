"""The reports: the sales funnel of a pipeline and the dashboard widgets, for a period and a manager.

The period is chosen by a preset (this month, last month, this quarter, this year) or by two dates
(the last one included), both in the server's time zone. The charts read their figures from a
``<script type="application/json">`` block (the Content-Security-Policy forbids inline scripts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.crm import pipelines, reports, users
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import User, utcnow
from hub.crm.validate import parse_date, small_int
from hub.web.i18n import N_
from hub.web.keys import DB
from hub.web.views.common import render, require_user, zone

PRESETS = (
    ("month", N_("This month")),
    ("last_month", N_("Last month")),
    ("quarter", N_("This quarter")),
    ("year", N_("This year")),
)
DEFAULT_PRESET = "month"
TABS = (("/reports/funnel", N_("Sales funnel")), ("/reports/widgets", N_("Widgets")))


@dataclass
class Period:
    first: date  # the first day
    last: date  # the last day (included)
    preset: str  # "" when chosen by dates
    errors: dict[str, str]


def preset_days(preset: str, today: date) -> tuple[date, date]:
    """The first and the last day of a preset period around ``today``."""
    month = date(today.year, today.month, 1)
    if preset == "last_month":
        last = month - timedelta(days=1)
        return date(last.year, last.month, 1), last
    if preset == "quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        return first, _next_month(_next_month(_next_month(first))) - timedelta(days=1)
    if preset == "year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    return month, _next_month(month) - timedelta(days=1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _day(text: str) -> date | None:
    return parse_date(text)


def period_of(request: web.Request) -> Period:
    today = utcnow().astimezone(zone(request)).date()
    since, until = request.query.get("since", ""), request.query.get("until", "")
    first: date | None
    last: date | None
    if not since and not until:
        preset = request.query.get("preset", DEFAULT_PRESET)
        preset = preset if preset in dict(PRESETS) else DEFAULT_PRESET
        first, last = preset_days(preset, today)
        return Period(first, last, preset, {})
    errors: dict[str, str] = {}
    first, last = _day(since), _day(until)
    if first is None:
        errors["since"] = N_("Enter a date.")
    if last is None:
        errors["until"] = N_("Enter a date.")
    if first and last:
        if last < first:
            errors["until"] = N_("The end must not be before the start.")
        elif (last - first).days > 3650:
            errors["until"] = N_("The period must be at most ten years long.")
    if errors:
        fallback = preset_days(DEFAULT_PRESET, today)
        return Period(first or fallback[0], last or fallback[1], "", errors)
    assert first is not None and last is not None
    return Period(first, last, "", {})


def _bounds(request: web.Request, period: Period) -> tuple[datetime, datetime]:
    tz = zone(request)
    return (datetime.combine(period.first, time(0), tzinfo=tz),
            datetime.combine(period.last + timedelta(days=1), time(0), tzinfo=tz))


def _id(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "").strip()
    number = small_int(raw)
    return number if number is not None and 0 < number <= reports.MAX_ID else None


async def _people(s: Any, user: User) -> list[dict[str, Any]]:
    people = (await users.list_users(s, user, limit=200)).items
    return sorted(({"id": u["id"], "name": u["name"]} for u in people), key=lambda u: u["name"])


def _links(path: str, keep: dict[str, Any]) -> list[dict[str, str]]:
    """The preset links, keeping the pipeline and the manager."""
    kept = {k: v for k, v in keep.items() if v}
    return [{"key": key, "label": label, "href": f"{path}?{urlencode({**kept, 'preset': key})}"}
            for key, label in PRESETS]


def _context(request: web.Request, period: Period, manager_id: int | None, people: list[dict[str, Any]],
             keep: dict[str, Any]) -> dict[str, Any]:
    # The tabs keep the period (preset or dates) and the manager.
    same = {"manager_id": manager_id or ""}
    if period.preset:
        same["preset"] = period.preset
    elif not period.errors:
        same.update(since=period.first.isoformat(), until=period.last.isoformat())
    query = urlencode({k: v for k, v in same.items() if v})
    return {
        "period": period, "manager_id": manager_id, "people": people,
        "presets": _links(request.path, keep),
        "tabs": [(href, label, f"{href}?{query}" if query else href) for href, label in TABS],
    }


async def funnel(request: web.Request) -> web.Response:
    user = require_user(request)
    period = period_of(request)
    manager_id = _id(request, "manager_id")
    chosen = _id(request, "pipeline_id")
    since, until = _bounds(request, period)
    data = None
    async with request.app[DB].reading() as s:
        people = await _people(s, user)
        all_pipelines = (await pipelines.list_pipelines(s, user)).items
        if chosen is None or all(p["id"] != chosen for p in all_pipelines):
            chosen = next((p["id"] for p in all_pipelines if p["is_default"]),
                          all_pipelines[0]["id"] if all_pipelines else None)
        if chosen is not None and not period.errors:
            try:
                data = await reports.funnel(s, user, pipeline_id=chosen, since=since, until=until,
                                            manager_id=manager_id)
            except (ValidationError, NotFound):
                data = None
    chart = None
    if data is not None:
        shown = [row for row in data["stages"] if row["kind"] != "lost"]
        chart = {"labels": [row["name"] for row in shown], "reached": [row["reached"] for row in shown],
                 "colors": [row["color"] for row in shown]}
    return await render(request, "report_funnel.html", {
        **_context(request, period, manager_id, people, {"pipeline_id": chosen, "manager_id": manager_id}),
        "pipelines": all_pipelines, "pipeline_id": chosen, "data": data, "chart": chart,
    })


# Each widget: its key in the service's answer, its label, and whether a rise is good news.
WIDGETS = (
    ("sales_amount", N_("Sales, amount"), True),
    ("sales_count", N_("Deals won"), True),
    ("new_clients", N_("New clients"), True),
    ("new_leads", N_("New leads"), True),
    ("tasks_done", N_("Tasks done"), True),
    ("tasks_planned", N_("Tasks planned"), True),
    ("tasks_overdue", N_("Tasks overdue"), False),
)


async def widgets(request: web.Request) -> web.Response:
    user = require_user(request)
    period = period_of(request)
    manager_id = _id(request, "manager_id")
    since, until = _bounds(request, period)
    data = None
    async with request.app[DB].reading() as s:
        people = await _people(s, user)
        if not period.errors:
            data = await reports.widgets(s, user, since=since, until=until, manager_id=manager_id)
    cards, chart = [], None
    if data is not None:
        figures = {**{k: data[k] for k in ("new_clients", "new_leads", "tasks_done", "tasks_planned",
                                          "tasks_overdue")},
                   "sales_amount": data["sales"]["amount"], "sales_count": data["sales"]["count"]}
        for key, label, rise_is_good in WIDGETS:
            figure = figures[key]
            change = figure["change_pct"]
            trend = "flat" if not change else ("up" if change > 0 else "down")
            if figure["previous"] == 0 and figure["current"] > 0:
                trend = "up"
            good = None if trend == "flat" else (trend == "up") == rise_is_good
            cards.append({"key": key, "label": label, "money": key == "sales_amount", **figure,
                          "trend": trend, "good": good})
        counted = [c for c in cards if not c["money"]]
        chart = {"labels": [c["label"] for c in counted], "current": [c["current"] for c in counted],
                 "previous": [c["previous"] for c in counted]}
    tz = zone(request)
    previous = None
    if data is not None:
        start = datetime.fromisoformat(data["previous"]["since"].replace("Z", "+00:00")).astimezone(tz)
        end = datetime.fromisoformat(data["previous"]["until"].replace("Z", "+00:00")).astimezone(tz)
        previous = (start.date(), (end - timedelta(seconds=1)).date())
    return await render(request, "report_widgets.html", {
        **_context(request, period, manager_id, people, {"manager_id": manager_id}),
        "data": data, "cards": cards, "chart": chart, "previous": previous,
    })


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/reports/funnel", funnel)
    router.add_get("/reports/widgets", widgets)
    router.add_get("/reports", _to_funnel)


async def _to_funnel(request: web.Request) -> web.StreamResponse:
    require_user(request)
    raise web.HTTPSeeOther("/reports/funnel")
