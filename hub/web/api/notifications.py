"""The bell: the caller's notifications."""

from __future__ import annotations

from aiohttp import web

from hub.crm import notifications
from hub.web.api import schemas
from hub.web.api.common import no_content, ok, paging
from hub.web.errors import optional_json_body, query_bool
from hub.web.keys import DB, USER
from hub.web.routing import PAGING, Param, Routes, page_of

routes = Routes("notifications")

LIST_OUT = {**page_of("Notification")}
LIST_OUT["properties"] = {**LIST_OUT["properties"], "unread_count": {"type": "integer"}}


@routes.get("/api/v1/notifications", "The caller's notifications, newest first, with the unread count",
            response=LIST_OUT,
            params=(Param("unread", "boolean", "only unread (or only read) ones"), *PAGING),
            errors=(401, 422))
async def list_notifications(request: web.Request) -> web.Response:
    user = request[USER]
    unread = query_bool(request, "unread")
    async with request.app[DB].reading() as s:
        page = await notifications.list_notifications(s, user, unread=unread, **paging(request))
        count = await notifications.unread_count(s, user)
    return ok({**page.as_dict(), "unread_count": count})


@routes.post("/api/v1/notifications/read", "Mark the given notifications (or all) read",
             request=schemas.READ_IN, response=schemas.UNREAD_OUT, errors=(400, 401, 422))
async def mark_read(request: web.Request) -> web.Response:
    user = request[USER]
    ids = (await optional_json_body(request)).get("ids")
    async with request.app[DB].transaction() as s:
        await notifications.mark_read(s, user, ids)
        count = await notifications.unread_count(s, user)
    return ok({"unread_count": count})


@routes.delete("/api/v1/notifications", "Delete all the caller's notifications", status=204,
               errors=(401,))
async def delete_notifications(request: web.Request) -> web.Response:
    async with request.app[DB].transaction() as s:
        await notifications.delete_all(s, request[USER])
    return no_content()
