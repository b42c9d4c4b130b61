"""JSON schemas of the API's resources, for the OpenAPI document (API.md is the contract)."""

from __future__ import annotations

from typing import Any

from hub.web.routing import Schema, ref

ID: Schema = {"type": "integer", "minimum": 1}
ID_OR_NULL: Schema = {"type": ["integer", "null"], "minimum": 1}
TEXT: Schema = {"type": "string"}
TEXT_OR_NULL: Schema = {"type": ["string", "null"]}
TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
MONEY: Schema = {"type": ["number", "string"], "description": "roubles, at most two decimals"}
BOOL: Schema = {"type": "boolean"}
# An object whose keys are data (custom field keys, a timeline entry's payload): any property.
FREE: Schema = {"type": "object", "additionalProperties": True}
CUSTOM: Schema = {**FREE, "description": "values by custom field key (GET /api/v1/custom-fields)"}
TIMELINE_KINDS = ("call", "sms", "whatsapp", "telegram", "email", "note", "stage_change", "task", "system")


def obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def with_id(properties: dict[str, Schema]) -> Schema:
    return obj({"id": ID, **properties}, ("id",))


CONTACT_POINTS = {"phones": STRINGS, "emails": STRINGS, "telegram": STRINGS}
# what a person's contact points read back as: also the addresses whose letters came back
CONTACT_POINTS_OUT = {**CONTACT_POINTS, "bounced_emails": {
    "type": "object", "description": "the e-mails whose letters came back: {address: {at, reason}}",
    "additionalProperties": obj({"at": TIME, "reason": TEXT}, ("at", "reason"))}}
REF: Schema = obj({"id": ID, "name": TEXT_OR_NULL}, ("id", "name"))
REF_OR_NULL: Schema = {"oneOf": [REF, {"type": "null"}]}

CLIENT_IN = obj({
    "name": TEXT, "kind": {"enum": ["company", "person"]}, "full_name": TEXT, "inn": TEXT_OR_NULL,
    "kpp": TEXT_OR_NULL, "okpo": TEXT_OR_NULL, **CONTACT_POINTS, "manager_id": ID_OR_NULL,
    "relationship_type": TEXT, "region": TEXT, "industry": TEXT, "comment": TEXT,
    "tags": STRINGS, "custom": CUSTOM,
})
CONTACT_IN = obj({"client_id": ID, "name": TEXT, "position": TEXT, "comment": TEXT, **CONTACT_POINTS})
LEAD_IN = obj({"name": TEXT, **CONTACT_POINTS, "source": TEXT, "manager_id": ID_OR_NULL, "comment": TEXT,
               "utm": {"type": "object", "additionalProperties": TEXT,
                       "description": "UTM tags by name (utm_source ...), at most 20"}})
UTM = {name: TEXT for name in ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")}
DEAL_IN = obj({
    "title": TEXT, "client_id": ID_OR_NULL, "lead_id": ID_OR_NULL, "contact_id": ID_OR_NULL,
    "pipeline_id": ID, "stage_id": ID, "amount": MONEY, "currency": TEXT, "responsible_id": ID_OR_NULL,
    "tags": STRINGS, "next_interaction_at": TIME, "next_interaction_note": TEXT, "custom": CUSTOM,
    "source": TEXT, **UTM,
})
TASK_IN = obj({
    "subject": TEXT, "description": TEXT, "start_at": TIME, "due_at": TIME,
    "percent": {"type": "integer", "minimum": 0, "maximum": 100}, "client_id": ID_OR_NULL,
    "deal_id": ID_OR_NULL, "lead_id": ID_OR_NULL, "assignee_id": ID_OR_NULL,
})
USER_IN = obj({
    "login": {**TEXT, "description": "Latin letters, digits and . @ + - _; unique whatever the case"},
    "password": {**TEXT, "description": "at least 10 characters, not the login, not a common password; "
                 "a change ends the user's other sessions and tokens"},
    "current_password": {**TEXT, "description": "required to change one's own password"},
    "name": TEXT, "role": {"enum": ["admin", "manager", "agent"]},
    "extensions": STRINGS, "language": {"enum": ["ru", "en"]}, "active": {"type": "boolean"},
    **CONTACT_POINTS,
})
STAGE = with_id({"name": TEXT, "color": TEXT, "kind": {"enum": ["active", "won", "lost"]},
                 "position": {"type": "integer"}})
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

OPEN_DEAL = obj({"id": ID, "title": TEXT, "stage": TEXT_OR_NULL, "amount": {"type": "number"}})
MATCH = obj({
    "type": {"enum": ["client", "contact", "lead", "user"]}, "id": ID, "name": TEXT,
    "client_id": ID_OR_NULL, "open_deals": {"type": "array", "items": OPEN_DEAL},
    "access": {"type": "boolean", "description": "false: a person the caller may not open (then only "
               "`type` and `access`: no id, name or deals)"},
}, ("type",))

CALL = with_id({
    "call_key": TEXT, "direction": {"enum": ["inbound", "outbound", "internal"]},
    "status": {"enum": ["answered", "missed", "abandoned", "busy", "failed", "ringing", "talking"]},
    "external_number": TEXT_OR_NULL, "did": TEXT_OR_NULL,
    "agent": {"oneOf": [obj({"id": ID_OR_NULL, "name": TEXT_OR_NULL, "extension": TEXT_OR_NULL}),
                        {"type": "null"}]},
    "started_at": TIME, "answered_at": TIME, "ended_at": TIME,
    "wait_seconds": {"type": "integer"}, "talk_seconds": {"type": "integer"},
    "hangup_cause": {"type": ["integer", "null"]}, "recording_url": TEXT_OR_NULL,
    "recordings": {"type": "array", "description": "every recording in the order they were made (one per "
                   "agent leg; recording_url is the first)",
                   "items": obj({"url": TEXT, "agent_extension": TEXT_OR_NULL}, ("url", "agent_extension"))},
    "client_id": ID_OR_NULL, "client": {"oneOf": [REF, {"type": "null"}]}, "contact_id": ID_OR_NULL,
    "lead_id": ID_OR_NULL, "lead": {"oneOf": [REF, {"type": "null"}]}, "deal_id": ID_OR_NULL,
    "timeline_entry_id": ID_OR_NULL, "callback_task_id": ID_OR_NULL, "created_at": TIME,
})

COMPONENTS: dict[str, Schema] = {
    "Error": obj({"error": obj({"code": TEXT, "message": TEXT,
                                "fields": {"type": "object", "additionalProperties": TEXT}},
                               ("code", "message", "fields"))}, ("error",)),
    "Client": with_id({**CLIENT_IN["properties"], **CONTACT_POINTS_OUT, "manager": REF_OR_NULL,
                       "created_at": TIME, "updated_at": TIME}),
    "Contact": with_id({**CONTACT_IN["properties"], **CONTACT_POINTS_OUT, "created_at": TIME}),
    "Lead": with_id({**LEAD_IN["properties"], **CONTACT_POINTS_OUT, "manager": REF_OR_NULL,
                     "unsorted": BOOL, "converted_client_id": ID_OR_NULL, "converted_at": TIME,
                     "created_at": TIME}),
    "Deal": with_id({**DEAL_IN["properties"], "amount": {"type": "number"}, "stage": STAGE,
                     "client": REF_OR_NULL, "lead": REF_OR_NULL, "contact": REF_OR_NULL,
                     "responsible": REF_OR_NULL, "loss_reason_id": ID_OR_NULL, "loss_reason": REF_OR_NULL,
                     "created_at": TIME, "updated_at": TIME, "stage_changed_at": TIME,
                     "last_activity_at": TIME, "closed_at": TIME,
                     "open": {**BOOL, "description": "the stage is neither won nor lost"},
                     "overdue": {**BOOL, "description": "open, and the next interaction is past"}}),
    "Task": with_id({**TASK_IN["properties"], "author_id": ID_OR_NULL, "kind": TEXT,
                     "client": REF_OR_NULL, "deal": REF_OR_NULL, "lead": REF_OR_NULL,
                     "assignee": REF_OR_NULL, "author": REF_OR_NULL, "completed_at": TIME, "done": BOOL,
                     "overdue": BOOL, "created_at": TIME, "updated_at": TIME}),
    "User": with_id({"login": TEXT, "name": TEXT, "role": {"enum": ["admin", "manager", "agent"]},
                     "extensions": STRINGS, "language": TEXT, "active": BOOL,
                     **CONTACT_POINTS_OUT, "created_at": TIME}),
    "Pipeline": with_id({"name": TEXT, "position": {"type": "integer"}, "is_default": BOOL,
                         "stages": {"type": "array", "items": STAGE}, "created_at": TIME}),
    "LossReason": with_id({"name": TEXT, "active": BOOL}),
    "TimelineEntry": with_id({
        "kind": {"enum": list(TIMELINE_KINDS)}, "direction": {"enum": ["in", "out", None]},
        "occurred_at": TIME, "author": REF_OR_NULL, "text": TEXT,
        "payload": {**FREE, "description": "by kind: the call, the message, the stage change ..."},
        "pinned": BOOL, "deal_id": ID_OR_NULL, "client_id": ID_OR_NULL,
        "lead_id": ID_OR_NULL, "attachments": {"type": "array", "items": obj(
            {"id": ID, "filename": TEXT, "content_type": TEXT, "size": {"type": "integer"}},
            ("id", "filename", "content_type", "size"))},
        "created_at": TIME,
    }),
    "Notification": with_id({"user_id": ID, "kind": TEXT, "title": TEXT, "text": TEXT, "link": TEXT,
                             "payload": {**FREE, "description": "by kind: the task, the call ..."},
                             "read": BOOL, "read_at": TIME, "created_at": TIME}),
    "Match": MATCH,
    "Call": CALL,
}

IDENTIFY_OUT = obj({"matches": {"type": "array", "items": ref("Match")}}, ("matches",))
CONVERT_OUT = obj({"client": ref("Client"), "contact": {"oneOf": [ref("Contact"), {"type": "null"}]}},
                  ("client", "contact"))
UNREAD_OUT = obj({"unread_count": {"type": "integer"}}, ("unread_count",))
HEALTH_OUT = obj({"status": {"enum": ["ok", "error"]}, "database": {"enum": ["ok", "error"]},
                  "channels": {"type": "object", "additionalProperties": TEXT}},
                 ("status",))  # database and channels: for an admin's token or from loopback
