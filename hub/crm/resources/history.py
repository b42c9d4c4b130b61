"""The history of changes: one changed field of a client, contact, lead, deal or task."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from hub.crm.resources.base import Id, Resource, Time

_REFERENCE = {"type": "object", "required": ["id", "name"],
              "properties": {"id": {"type": ["integer", "null"]}, "name": {"type": ["string", "null"]}}}
Value = Annotated[Any, Meta(description=(
    "the value as it read then: a text, a number, a yes/no, a list (tags, phones), a reference "
    "{id, name} (a user, a stage, a client), money as a decimal string (\"150000.00\"), a time as "
    "ISO 8601, or null when empty"), extra_json_schema={"anyOf": [
        {"type": ["string", "number", "boolean", "null"]}, {"type": "array", "items": {"type": "string"}},
        _REFERENCE]})]


class Author(Resource, kw_only=True):
    """Who changed it, named as they were named then (``id`` null: the user has been deleted)."""

    id: Id | None
    name: str


class FieldChange(Resource, kw_only=True):
    id: Id
    at: Time
    user: Author | None  # null: a channel or the hub itself, not a person
    field: Annotated[str, Meta(description=(
        "the field's name (title, amount, stage, responsible, tags, source, manager, phones ...; "
        "custom.<key> for a custom field, utm.<key> for a lead's UTM tag), or \"created\""))]
    before: Value
    after: Value
