"""The header's "Who is free" panel: its list alone, for htmx (refreshed on ``presence.changed``)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from hub.web import i18n
from hub.web.api.presence import board, items
from hub.web.views.common import require_user


async def presence_panel(request: web.Request) -> web.Response:
    user = require_user(request)
    found = await items(request)
    context = {**i18n.context(request), "user": user, "presence": found,
               "telephony": board(request) is not None,
               "free": sum(1 for item in found if item["state"] == "free")}
    return aiohttp_jinja2.render_template("_presence_inner.html", request, context)


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/presence", presence_panel)
