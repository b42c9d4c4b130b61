"""Who is free: every active user with an extension and their phone's state (live: ``presence.changed``)."""

from __future__ import annotations

from aiohttp import web

from hub.crm import presence
from hub.web.api.common import ok
from hub.web.keys import DB, PRESENCE
from hub.web.routing import Routes

routes = Routes("presence")

PRESENCE_ITEM = {
    "type": "object",
    "required": ["user_id", "name", "extension", "state"],
    "properties": {
        "user_id": {"type": "integer"},
        "name": {"type": "string"},
        "extension": {"type": "string", "description": "the extension that decides the state "
                      "(a user with several phones: the busiest one)"},
        "state": {"type": "string", "enum": ["free", "ringing", "on_call", "unavailable", "dnd"]},
    },
}
PRESENCE_OUT = {"type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": PRESENCE_ITEM}}}


def board(request: web.Request) -> presence.PresenceBoard | None:
    """The board, when there is telephony (without it every phone is ``unavailable``)."""
    return request.app.get(PRESENCE)


async def items(request: web.Request) -> list[presence.PresenceItem]:
    async with request.app[DB].reading() as s:
        return await presence.presence_items(s, board(request))


@routes.get("/api/v1/presence", "Every active user with an extension and their phone's state "
            "(free, ringing, on_call, unavailable, dnd; all unavailable without telephony)",
            response=PRESENCE_OUT, errors=(401,))
async def list_presence(request: web.Request) -> web.Response:
    return ok({"items": await items(request)})
