"""What every resource is made of: ids, times, fixed sets, a reference to another resource."""


from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct

from hub.crm.models import (
    CALL_DIRECTIONS,
    CALL_STATUSES,
    CHANNELS,
    CLIENT_KINDS,
    DIRECTIONS,
    LANGUAGES,
    MESSAGE_STATUSES,
    ROLES,
    STAGE_KINDS,
    TIMELINE_KINDS,
)

Id = Annotated[int, Meta(ge=1)]
Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
# an object whose keys are data (custom field keys, an entry's payload): any property
Free = Annotated[dict[str, Any], Meta(extra_json_schema={"additionalProperties": True})]


def one_of(values: tuple[str, ...]) -> Meta:
    """A column's value from a fixed set: a string to the type checker (the models hold str), an enum
    in the published schema."""
    return Meta(extra_json_schema={"enum": list(values)})


Direction = Annotated[str, one_of(DIRECTIONS)]
StageKind = Annotated[str, one_of(STAGE_KINDS)]
Role = Annotated[str, one_of(ROLES)]
ClientKind = Annotated[str, one_of(CLIENT_KINDS)]
TimelineKind = Annotated[str, one_of(TIMELINE_KINDS)]
CallDirection = Annotated[str, one_of(CALL_DIRECTIONS)]
CallStatus = Annotated[str, one_of(CALL_STATUSES)]
Language = Annotated[str, one_of(LANGUAGES)]
Channel = Annotated[str, one_of(CHANNELS)]
MessageStatus = Annotated[str, one_of(MESSAGE_STATUSES)]

Custom = Annotated[Free, Meta(description="values by custom field key (GET /api/v1/custom-fields)")]


class Resource(Struct, kw_only=True, omit_defaults=True):
    """Fields with a default are omitted while they hold UNSET (a field only some resources carry)."""


class Ref(Resource, kw_only=True):
    """Another resource, by id and name."""

    id: Id
    name: str | None
