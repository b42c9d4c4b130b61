"""What every page shares: the header (navigation, the bell, language, user) and its context.

A view returns ``await render(request, "page.html", {...})``; the template extends ``base.html``.
A request from htmx (``HX-Request``) may ask for a fragment instead: ``render(..., "_part.html")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from hub.crm import notifications
from hub.crm.models import User
from hub.web import i18n
from hub.web.i18n import N_
from hub.web.keys import CHANNELS, CONFIG, DB, SESSION, USER

BELL_ITEMS = 10


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    admin_only: bool = False
    prefix: str = ""  # the section's paths start with this (default: path)

    def active(self, path: str) -> bool:
        prefix = self.prefix or self.path
        return path == prefix if prefix == "/" else path == prefix or path.startswith(prefix + "/")


NAV = (
    NavItem("/", N_("Desktop")),
    NavItem("/clients", N_("Clients")),
    NavItem("/leads", N_("Leads")),
    NavItem("/deals", N_("Deals")),
    NavItem("/inbox", N_("Inbox")),
    NavItem("/tasks", N_("Tasks")),
    NavItem("/calls", N_("Calls")),
    NavItem("/reports/funnel", N_("Reports"), prefix="/reports"),
    NavItem("/settings", N_("Settings"), admin_only=True),
)


def zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONFIG].server.timezone)


def safe_next(value: Any, default: str = "/") -> str:
    """Only a local path is a place to go back to (no open redirect)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def bell_context(request: web.Request, user: User, *, open_: bool = False) -> dict[str, Any]:
    async with request.app[DB].reading() as s:
        page = await notifications.list_notifications(s, user, limit=BELL_ITEMS)
        unread = await notifications.unread_count(s, user)
    return {"items": page.items, "unread": unread, "open": open_}


async def page_context(request: web.Request, user: User) -> dict[str, Any]:
    return {
        **i18n.context(request),
        "user": user,
        "csrf_token": request[SESSION].csrf_token,
        "nav": [item for item in NAV if not item.admin_only or user.role == "admin"],
        "path": request.path,
        "bell": await bell_context(request, user),
        "telephony": "asterisk" in request.app[CHANNELS],
    }


async def render(request: web.Request, template: str, context: dict[str, Any], *,
                 status: int = 200) -> web.Response:
    user = require_user(request)
    return aiohttp_jinja2.render_template(
        template, request, {**await page_context(request, user), **context}, status=status)


def require_user(request: web.Request) -> User:
    """The logged-in user of an HTML page, or a redirect to the login form (coming back after)."""
    if USER not in request:
        target = URL("/login") if request.path == "/" else URL("/login").with_query(next=request.path_qs)
        raise web.HTTPSeeOther(str(target))
    return request[USER]
