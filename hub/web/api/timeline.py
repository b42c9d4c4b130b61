"""The timeline of a deal, client or lead: reading it, adding notes, pinning entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.crm import timeline
from hub.crm.models import TIMELINE_KINDS
from hub.web.api import schemas
from hub.web.api.common import ok, paging
from hub.web.errors import json_body, path_id, query_list
from hub.web.keys import DB, USER
from hub.web.routing import PAGING, Param, Routes, page_of, ref

routes = Routes("timeline")

TARGETS = {"deals": "deal", "clients": "client", "leads": "lead"}
KIND = Param("kind", description="comma-separated kinds: " + ",".join(TIMELINE_KINDS))

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _reader(target: str) -> Handler:
    async def read_timeline(request: web.Request) -> web.Response:
        target_id = path_id(request)
        kinds = query_list(request, "kind", TIMELINE_KINDS)
        async with request.app[DB].reading() as s:
            page = await timeline.list_timeline(s, request[USER], target, target_id, kinds=kinds,
                                                **paging(request))
        return ok(page)

    return read_timeline


def _note_writer(target: str) -> Handler:
    async def add_note(request: web.Request) -> web.Response:
        target_id = path_id(request)
        data = await json_body(request)
        async with request.app[DB].transaction() as s:
            return ok(await timeline.add_note(s, request[USER], target, target_id, data), 201)

    return add_note


for plural, target in TARGETS.items():
    routes.add("GET", f"/api/v1/{plural}/{{id}}/timeline", _reader(target),
               f"The {target}'s timeline, newest first; pinned entries are flagged",
               response=page_of("TimelineEntry"), params=(KIND, *PAGING), errors=(401, 404, 422))
    routes.add("POST", f"/api/v1/{plural}/{{id}}/notes", _note_writer(target),
               f"Add a note to the {target}'s timeline", request=schemas.NOTE_IN,
               response=ref("TimelineEntry"), status=201, errors=(400, 401, 403, 404, 422))


@routes.patch("/api/v1/timeline/{id}", "Pin or unpin a timeline entry", request=schemas.PIN_IN,
              response=ref("TimelineEntry"), errors=(400, 401, 403, 404, 422))
async def pin_entry(request: web.Request) -> web.Response:
    entry_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await timeline.set_pinned(s, request[USER], entry_id, data.get("pinned")))
