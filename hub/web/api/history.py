"""The history of changes of a client, contact person, lead, deal or task."""

from __future__ import annotations

from aiohttp import web

from hub.crm import history
from hub.web.api.common import ok
from hub.web.errors import path_id, query_int
from hub.web.keys import DB, USER
from hub.web.routing import Handler, Param, Routes, ref

routes = Routes("history")

TARGETS = {"clients": "client", "contacts": "contact", "leads": "lead", "deals": "deal", "tasks": "task"}
PARAMS = (
    Param("limit", "integer", f"how many changes, 1..{history.MAX_LIMIT} (default {history.DEFAULT_LIMIT})"),
    Param("before_id", "integer", "only the changes older than this one (the id of the last one read)"),
)
CHANGES = {"type": "array", "items": ref("FieldChange")}


def _reader(entity: str) -> Handler:
    async def read_history(request: web.Request) -> web.Response:
        entity_id = path_id(request)
        limit = query_int(request, "limit")
        before_id = query_int(request, "before_id")
        async with request.app[DB].reading() as s:
            return ok(await history.list_changes(s, request[USER], entity, entity_id, before_id=before_id,
                                                 limit=limit))

    return read_history


for plural, entity in TARGETS.items():
    routes.add("GET", f"/api/v1/{plural}/{{id}}/history", _reader(entity),
               f"The {entity}'s history of changes (who, when, field, before → after), newest first",
               response=CHANGES, params=PARAMS, errors=(401, 404, 422))
