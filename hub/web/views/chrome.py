"""The header's controls on every page: the bell and the language switch.

Each works as a plain form (POST, then back to the page) and, from htmx, answers the new bell.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from hub.crm import notifications, users
from hub.web import i18n
from hub.web.keys import CONFIG, DB, SESSION, USER
from hub.web.views.common import bell_context, is_htmx, require_user, safe_next


async def _bell(request: web.Request, *, open_: bool) -> web.Response:
    user = require_user(request)
    context = {**i18n.context(request), "bell": await bell_context(request, user, open_=open_), "user": user,
               "csrf_token": request[SESSION].csrf_token, "here": _current(request)}
    return aiohttp_jinja2.render_template("_bell_inner.html", request, context)


def _current(request: web.Request) -> str:
    """The page the bell sits on (htmx says it), for the forms' way back without JavaScript."""
    url = URL(request.headers.get("HX-Current-URL", "/"))
    return safe_next(url.path_qs if url.path else "/")


async def bell(request: web.Request) -> web.Response:
    """The bell alone (htmx refreshes it on ``notification.created``)."""
    return await _bell(request, open_=request.query.get("open") == "1")


async def _after(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if is_htmx(request):
        return await _bell(request, open_=True)
    raise web.HTTPSeeOther(safe_next(form.get("next")))


async def bell_read(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    async with request.app[DB].transaction() as s:
        await notifications.mark_read(s, user)
    return await _after(request)


async def bell_clear(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    async with request.app[DB].transaction() as s:
        await notifications.delete_all(s, user)
    return await _after(request)


async def bell_open(request: web.Request) -> web.StreamResponse:
    """Mark one notification read and go where it points."""
    user = require_user(request)
    try:
        item_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    async with request.app[DB].transaction() as s:
        await notifications.mark_read(s, user, [item_id] if 0 < item_id <= 2**62 else [])
    form = await request.post()
    raise web.HTTPSeeOther(safe_next(form.get("link"), safe_next(form.get("next"))))


async def language(request: web.Request) -> web.StreamResponse:
    """Switch the language: stored on the user (when logged in) and in a cookie (for the login page)."""
    form = await request.post()
    choice = form.get("language")
    target = safe_next(form.get("next"))
    if choice not in i18n.LANGUAGES:
        raise web.HTTPSeeOther(target)
    user = request.get(USER)
    if user is not None:
        async with request.app[DB].transaction() as s:
            await users.update_user(s, user, user.id, {"language": choice})
    response = web.HTTPSeeOther(target)
    i18n.set_cookie(response, str(choice), request.app[CONFIG].server.public_url.lower().startswith("https://"))
    raise response


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/bell", bell)
    router.add_post("/bell/read", bell_read)
    router.add_post("/bell/clear", bell_clear)
    router.add_post("/bell/{id}/open", bell_open)
    router.add_post("/language", language)
