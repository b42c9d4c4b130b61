"""Settings: custom fields, tags, loss reasons offered or not, and the access settings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.crm import access, audit, settings
from hub.crm.errors import ValidationError
from hub.web.api.common import no_content, ok
from hub.web.api.schemas import STRINGS, TEXT, obj, with_id
from hub.web.errors import json_body, path_id, query_choice, query_datetime, query_text
from hub.web.keys import DB, USER
from hub.web.routing import Param, Routes, ref

routes = Routes("settings")

WRITE_ERRORS = (400, 401, 403, 404, 409, 422)
FIELD_TYPES = {"enum": ["text", "number", "date", "choice"]}
ENTITY = {"enum": list(settings.ENTITIES)}
CUSTOM_FIELD_IN = obj({"entity": ENTITY,
                       "key": {**TEXT, "description": "a-z, 0-9 and _; starts with a letter"},
                       "label": TEXT, "type": FIELD_TYPES,
                       "choices": {**STRINGS, "description": "only (and required) for the choice type"},
                       "position": {"type": "integer", "minimum": 0}})
CUSTOM_FIELD = with_id(CUSTOM_FIELD_IN["properties"])
TAG_IN = obj({"name": TEXT, "color": {**TEXT, "description": "#rrggbb, or empty for none"}})
TAG = with_id({**TAG_IN["properties"], "clients": {"type": "integer", "description": "clients with it"},
               "deals": {"type": "integer", "description": "deals with it"}})
ACCESS_FIELDS: dict[str, dict[str, Any]] = {
    "agents_see_all": {"type": "boolean", "description": "agents see every client, lead, deal and task"},
    "route_to_free_agent": {"type": "boolean",
                            "description": "a missed call's callback task and a new chat with an unknown "
                                           "person go to a free agent (round-robin) when the responsible "
                                           "is busy or offline"},
    "call_grant": {"enum": list(access.GRANT_MODES),
                   "description": "how long a call lets the users it rang (and who answered) open the "
                                  "caller's client or lead card and open deals: until the end of that day "
                                  "(the server's time zone), for call_grant_hours hours, or not at all"},
    "call_grant_hours": {"type": "integer", "minimum": 1, "maximum": access.MAX_GRANT_HOURS,
                         "description": "the hours of the hours mode"},
}
ACCESS = obj(ACCESS_FIELDS, ("agents_see_all", "route_to_free_agent", "call_grant", "call_grant_hours"))
ACCESS_PATCH = obj(ACCESS_FIELDS)  # either or both; the one left out keeps its value
LOSS_REASON_PATCH = obj({"name": TEXT,
                         "active": {"type": "boolean", "description": "offered when losing a deal"}})


def _list_of(schema: dict[str, object]) -> dict[str, object]:
    return obj({"items": {"type": "array", "items": schema}, "next_cursor": {"type": ["string", "null"]}},
               ("items", "next_cursor"))


# --- custom fields ---------------------------------------------------------------------------------

@routes.get("/api/v1/custom-fields", "List the custom fields of clients and deals",
            response=_list_of(CUSTOM_FIELD), params=(Param("entity", ENTITY, "client or deal"),),
            errors=(401, 422))
async def list_custom_fields(request: web.Request) -> web.Response:
    entity = query_choice(request, "entity", settings.ENTITIES)
    async with request.app[DB].reading() as s:
        return ok(await settings.list_custom_fields(s, request[USER], entity=entity))


@routes.post("/api/v1/custom-fields", "Create a custom field (administrators)", request=CUSTOM_FIELD_IN,
             response=CUSTOM_FIELD, status=201, errors=WRITE_ERRORS)
async def create_custom_field(request: web.Request) -> web.Response:
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await settings.create_custom_field(s, request[USER], data), 201)


@routes.get("/api/v1/custom-fields/{id}", "Read a custom field", response=CUSTOM_FIELD, errors=(401, 404))
async def get_custom_field(request: web.Request) -> web.Response:
    field_id = path_id(request)
    async with request.app[DB].reading() as s:
        return ok(await settings.get_custom_field(s, request[USER], field_id))


@routes.patch("/api/v1/custom-fields/{id}", "Change a custom field's label, choices or position "
              "(administrators)", request=CUSTOM_FIELD_IN, response=CUSTOM_FIELD, errors=WRITE_ERRORS)
async def update_custom_field(request: web.Request) -> web.Response:
    field_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await settings.update_custom_field(s, request[USER], field_id, data))


@routes.delete("/api/v1/custom-fields/{id}", "Delete a custom field (stored values stay; administrators)",
               status=204, errors=(401, 403, 404))
async def delete_custom_field(request: web.Request) -> web.Response:
    field_id = path_id(request)
    async with request.app[DB].transaction() as s:
        await settings.delete_custom_field(s, request[USER], field_id)
    return no_content()


# --- tags ------------------------------------------------------------------------------------------

@routes.get("/api/v1/tags", "List tags with how many clients and deals carry each",
            response=_list_of(TAG), errors=(401,))
async def list_tags(request: web.Request) -> web.Response:
    async with request.app[DB].reading() as s:
        return ok(await settings.list_tags(s, request[USER]))


@routes.get("/api/v1/tags/{id}", "Read a tag", response=TAG, errors=(401, 404))
async def get_tag(request: web.Request) -> web.Response:
    tag_id = path_id(request)
    async with request.app[DB].reading() as s:
        return ok(await settings.get_tag(s, request[USER], tag_id))


@routes.patch("/api/v1/tags/{id}", "Rename or recolour a tag (administrators)", request=TAG_IN,
              response=TAG, errors=WRITE_ERRORS)
async def update_tag(request: web.Request) -> web.Response:
    tag_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await settings.update_tag(s, request[USER], tag_id, data))


@routes.delete("/api/v1/tags/{id}", "Delete a tag from every client and deal (administrators)",
               status=204, errors=(401, 403, 404))
async def delete_tag(request: web.Request) -> web.Response:
    tag_id = path_id(request)
    async with request.app[DB].transaction() as s:
        await settings.delete_tag(s, request[USER], tag_id)
    return no_content()


# --- loss reasons ----------------------------------------------------------------------------------

@routes.patch("/api/v1/loss-reasons/{id}", "Rename a loss reason, or offer it or not (administrators)",
              request=LOSS_REASON_PATCH, response=ref("LossReason"), errors=WRITE_ERRORS)
async def update_loss_reason(request: web.Request) -> web.Response:
    reason_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await settings.update_loss_reason(s, request[USER], reason_id, data))


# --- access ----------------------------------------------------------------------------------------

@routes.get("/api/v1/settings/access", "Whether agents see all clients and deals, and whether new work "
            "goes to a free agent", response=ACCESS, errors=(401,))
async def get_access(request: web.Request) -> web.Response:
    async with request.app[DB].reading() as s:
        return ok(await settings.get_access(s, request[USER]))


@routes.patch("/api/v1/settings/access", "Let agents see all clients and deals, or only theirs; route "
              "new work to a free agent, or not (administrators)", request=ACCESS_PATCH, response=ACCESS,
              errors=(400, 401, 403, 422))
async def update_access(request: web.Request) -> web.Response:
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await settings.update_access(s, request[USER], data))



# --- the audit log ------------------------------------------------------------------------------------

AUDIT_EVENT = obj({"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                   "actor_id": {"type": ["integer", "null"]}, "actor_login": TEXT,
                   "action": {"enum": list(audit.ACTIONS)}, "target_type": TEXT,
                   "target_id": {"type": ["integer", "null"]}, "remote": TEXT,
                   "details": {"type": "object", "additionalProperties": True,
                               "description": "by action: what changed"}},
                  ("id", "at", "action"))


@routes.get("/api/v1/audit", "The audit log, newest first (administrators)", response=_list_of(AUDIT_EVENT),
            params=(Param("action", {"enum": list(audit.ACTIONS)}, "only this action"),
                    Param("login", description="only this actor's login"),
                    Param("since", "date-time", "at or after"), Param("until", "date-time", "before"),
                    Param("cursor", description="the page after (next_cursor)")),
            errors=(401, 403, 422))
async def audit_log(request: web.Request) -> web.Response:
    action = query_choice(request, "action", audit.ACTIONS)
    cursor = query_text(request, "cursor", max_len=20)
    if cursor is not None and not (cursor.isascii() and cursor.isdecimal()):
        raise ValidationError({"cursor": "is not a cursor this server issued"})
    async with request.app[DB].reading() as s:
        page = await audit.list_events(
            s, request[USER], action=action, login=query_text(request, "login", max_len=64),
            since=query_datetime(request, "since"), until=query_datetime(request, "until"),
            before_id=int(cursor) if cursor else None)
    return ok(page)
