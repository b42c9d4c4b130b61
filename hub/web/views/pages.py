"""The home page: proves the session and the event stream."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub.web.auth import require_login
from hub.web.keys import SESSION


@aiohttp_jinja2.template("home.html")
async def home(request: web.Request) -> dict[str, Any]:
    user = require_login(request)
    return {"user": user, "csrf_token": request[SESSION].csrf_token}


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/", home)
