"""JSON schemas of the API's resources, for the OpenAPI document (API.md is the contract)."""

from __future__ import annotations

from typing import Any

import msgspec

from hub.crm import inputs, resources
from hub.web.routing import Schema, ref

ID: Schema = {"type": "integer", "minimum": 1}
ID_OR_NULL: Schema = {"type": ["integer", "null"], "minimum": 1}
TEXT: Schema = {"type": "string"}
TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def with_id(properties: dict[str, Schema]) -> Schema:
    return obj({"id": ID, **properties}, ("id",))


def input_schema(shape: type[inputs.Input]) -> Schema:
    """A request body's schema, generated from its class in ``hub.crm.inputs`` (the fields without a
    default are required: when creating; ``partial`` gives the schema of a change)."""
    generated = msgspec.json.schema(shape)
    schema: Schema = generated["$defs"][shape.__name__]
    schema.pop("title", None)
    return schema


def partial(schema: Schema) -> Schema:
    """The schema of a change (PATCH): the same fields, none of them required."""
    return {key: value for key, value in schema.items() if key != "required"}


CLIENT_IN = input_schema(inputs.ClientIn)
CONTACT_IN = input_schema(inputs.ContactIn)
LEAD_IN = input_schema(inputs.LeadIn)
TASK_IN = input_schema(inputs.TaskIn)
DEAL_IN = input_schema(inputs.DealIn)
USER_IN = input_schema(inputs.UserIn)
PIPELINE_IN = obj({"name": TEXT, "stages": {"type": "array", "items": obj(
    {"id": ID, "name": TEXT, "color": TEXT, "kind": {"enum": ["active", "won", "lost"]}})}})
MOVE_IN = obj({
    "stage_id": ID, "result": TEXT, "next_interaction_at": TIME, "next_interaction_note": TEXT,
    "loss_reason": {"type": ["integer", "string", "null"], "description": "a loss reason id or free text"},
}, ("stage_id",))
# The client's fields (as when creating a client; name and manager default to the lead's, kind to
# "person"), plus a contact person when contact_name is given.
CONVERT_IN = obj({**CLIENT_IN["properties"], "contact_name": TEXT, "contact_position": TEXT})
NOTE_IN = obj({"text": TEXT, "pinned": {"type": "boolean"}}, ("text",))
PIN_IN = obj({"pinned": {"type": "boolean"}}, ("pinned",))
READ_IN = obj({"ids": {"type": "array", "items": ID, "description": "omitted: all"}})
LOSS_REASON_IN = obj({"name": TEXT}, ("name",))
REJECT_IN = obj({"reason": TEXT}, ("reason",))

def _resources() -> dict[str, Schema]:
    """The schemas of ``hub.crm.resources``, generated from the classes (each named as its class)."""
    _, components = msgspec.json.schema_components(resources.COMPONENTS,
                                                   ref_template="#/components/schemas/{name}")
    return components


COMPONENTS: dict[str, Schema] = {
    "Error": obj({"error": obj({"code": TEXT, "message": TEXT,
                                "fields": {"type": "object", "additionalProperties": TEXT},
                                # code "duplicate" (409): who has the INN, phone or e-mail already
                                "duplicates": {"type": "array", "items": obj({
                                    "type": {"enum": ["client", "contact", "lead"]}, "id": ID_OR_NULL,
                                    "name": {"type": ["string", "null"],
                                             "description": "null (and id null): one the caller may not see"},
                                    "visible": {"type": "boolean"}, "client_id": ID_OR_NULL})},
                                "may_override": {
                                    "type": "boolean",
                                    "description": "the caller may resend with allow_duplicate"}},
                               ("code", "message", "fields"))}, ("error",)),
    **_resources(),
}

IDENTIFY_OUT = obj({"matches": {"type": "array", "items": ref("Match")}}, ("matches",))
CONVERT_OUT = obj({"client": ref("Client"), "contact": {"oneOf": [ref("Contact"), {"type": "null"}]}},
                  ("client", "contact"))
UNREAD_OUT = obj({"unread_count": {"type": "integer"}}, ("unread_count",))
HEALTH_OUT = obj({"status": {"enum": ["ok", "error"]}, "database": {"enum": ["ok", "error"]},
                  "channels": {"type": "object", "additionalProperties": TEXT}},
                 ("status",))  # database and channels: for an admin's token or from loopback


def bulk_in(actions: tuple[str, ...], value: str) -> Schema:
    return obj({"ids": {"type": "array", "items": ID, "minItems": 1, "maxItems": 500},
                "action": {"enum": list(actions)},
                "value": {"description": value}}, ("ids", "action"))


BULK_OUT = obj({
    "done": {"type": "array", "items": ID, "description": "the ids changed"},
    "skipped": {"type": "array", "items": obj({
        "id": ID, "error": {"enum": ["not_found", "forbidden", "conflict", "validation"]},
        "reason": {"type": "string"}}, ("id", "error", "reason"))},
}, ("done", "skipped"))
