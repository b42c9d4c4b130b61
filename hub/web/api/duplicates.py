"""Likely duplicates among clients, merging two clients, and undoing a merge (staff only)."""

from __future__ import annotations

from aiohttp import web

from hub.crm import duplicates, merge
from hub.crm.errors import ValidationError
from hub.web.api.common import ok
from hub.web.api.schemas import ID, TEXT, obj
from hub.web.errors import json_body, path_id, query_text
from hub.web.keys import DB, USER
from hub.web.routing import Param, Routes, ref

routes = Routes("duplicates")

GROUP = obj({"reason": {"enum": list(duplicates.REASONS)}, "value": TEXT, "clients": {
    "type": "array", "items": obj({"id": ID, "name": TEXT, "inn": {"type": ["string", "null"]}})}})
MERGE_IN = obj({"other_id": {**ID, "description": "the client merged into this one (and removed)"},
                "fields": {"type": "object", "additionalProperties": {"enum": list(merge.SIDES)},
                           "description": "which client's value each field keeps: "
                                          f"{', '.join(merge.FIELDS)}; a field not named keeps this "
                                          "client's value, or the other's when this one is empty"}},
               ("other_id",))
MERGE_OUT = obj({"client": ref("Client"), "merge_id": ID}, ("client", "merge_id"))
UNDO_OUT = obj({"client": ref("Client"), "kept": ref("Client")}, ("client", "kept"))


@routes.get("/api/v1/duplicates", "Likely duplicates: clients with the same INN, phone, e-mail or name",
            params=(Param("type", description="client (the only kind listed)"),),
            response=obj({"items": {"type": "array", "items": GROUP}}, ("items",)), errors=(401, 403, 422))
async def list_duplicates(request: web.Request) -> web.Response:
    kind = query_text(request, "type") or "client"
    if kind != "client":
        raise ValidationError({"type": "must be client"})
    async with request.app[DB].reading() as s:
        return ok({"items": await duplicates.likely_pairs(s, request[USER])})


@routes.post("/api/v1/clients/{id}/merge", "Merge another client into this one, field by field",
             request=MERGE_IN, response=MERGE_OUT, errors=(401, 403, 404, 422))
async def merge_clients(request: web.Request) -> web.Response:
    client_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await merge.merge_clients(s, request[USER], client_id, data))


@routes.post("/api/v1/merges/{id}/undo", "Undo a merge (within a day): the removed client comes back",
             response=UNDO_OUT, errors=(401, 403, 404, 409))
async def undo_merge(request: web.Request) -> web.Response:
    merge_id = path_id(request)
    async with request.app[DB].transaction() as s:
        return ok(await merge.undo_merge(s, request[USER], merge_id))


@routes.post("/api/v1/leads/{id}/merge", "Attach a lead to an existing client (a conversion into it)",
             request=obj({"client_id": ID}, ("client_id",)),
             response=obj({"client": ref("Client")}, ("client",)), errors=(401, 403, 404, 409, 422))
async def merge_lead(request: web.Request) -> web.Response:
    lead_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await merge.merge_lead(s, request[USER], lead_id, data))
