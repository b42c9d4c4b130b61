"""The desktop and the sections still to come (the call journal is ``calls_journal``).

Routes stay thin: they read the request, call one core service, render one template.
"""

from __future__ import annotations

from datetime import datetime, time

from aiohttp import web

from hub.crm import desktop as desktop_service
from hub.crm.models import utcnow
from hub.web.keys import CHANNELS, DB
from hub.web.views import calls_journal
from hub.web.views.common import render, require_user, zone


async def desktop(request: web.Request) -> web.Response:
    user = require_user(request)
    tz = zone(request)
    now = utcnow()
    today_start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    async with request.app[DB].reading() as s:
        data = await desktop_service.desktop(s, user, today_start=today_start, now=now)
    return await render(request, "desktop.html", {
        **data,
        "channels_connected": bool(request.app[CHANNELS]),
        "today": today_start.date(),
    })


# Sections of the web UI that later work fills in; until then an honest page says so.
COMING: dict[str, str] = {}


COMING_CARDS: tuple[str, ...] = ()  # and their /{id} cards


async def coming_soon(request: web.Request) -> web.Response:
    user = require_user(request)
    section = "/" + request.path.strip("/").split("/")[0]
    title = COMING.get(request.path) or COMING[section]
    if section == "/settings" and user.role != "admin":
        return await render(request, "coming.html", {"title": title, "forbidden": True}, status=403)
    return await render(request, "coming.html", {"title": title, "forbidden": False})


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/", desktop)
    calls_journal.register_views(router)
    for path in COMING:
        router.add_get(path, coming_soon)
    for path in COMING_CARDS:
        router.add_get(path + r"/{id:\d+}", coming_soon)
