"""The bodies the API accepts, each declared once as a typed structure that both checks a body and
publishes its schema.

A field's type and its ``Meta`` say what it takes: a string of at most N characters, one of a set,
an id, a number in a range, a date and time, a list of short strings, an amount of roubles. ``read``
checks a body against the declaration, collecting every bad field with the reasons ``Fields`` gives
(so an answer names them all, in the catalogues' words), and returns the values given; the OpenAPI
document's request schemas are generated from the same classes (``hub.web.api.schemas``). A field
whose rule is more than its type (contact points, a manager who must be an active user, custom
fields, UTM tags) is declared here for the schema and marked ``OWN``: its service reads it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any

import msgspec.inspect as types
from msgspec import NODEFAULT, Meta, Struct

from hub.crm.models import CLIENT_KINDS, LANGUAGES, RELATIONSHIPS, ROLES, TASK_KINDS
from hub.crm.validate import Fields

OWN = {"own": True}
MONEY = {"money": True}

Id = Annotated[int, Meta(ge=1, le=2**62)]
Comment = Annotated[str, Meta(max_length=20_000)]
Short = Annotated[str, Meta(max_length=300)]
MAX_NOTE = 5_000  # a deal's next interaction note, a stage move's result
When = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"},
                                description="ISO 8601; without a zone, UTC")]


def text(limit: int, description: str = "") -> Meta:
    return Meta(max_length=limit, description=description or None)


def one_of(values: tuple[str, ...]) -> Meta:
    return Meta(extra_json_schema={"enum": list(values)})


def own(description: str = "", **schema: Any) -> Meta:
    extra = {"description": description, **schema} if description else schema
    return Meta(extra=OWN, extra_json_schema=extra or None)


Tag = Annotated[str, Meta(max_length=100)]
Phones = Annotated[list[str], own("phone numbers (a Russian number by default)")]
Emails = Annotated[list[str], own("e-mail addresses")]
Telegram = Annotated[list[str], own("Telegram chat ids or @usernames")]


class Input(Struct, kw_only=True, forbid_unknown_fields=False):
    """A request body's fields. Those without a default are required when creating."""


class ContactPointsIn(Input, kw_only=True):
    phones: Phones = []
    emails: Emails = []
    telegram: Telegram = []


AllowDuplicate = Annotated[bool, own("save although the INN, a phone or an e-mail is already another "
                                     "client's, contact's or lead's (managers and administrators only)")]


class ClientIn(ContactPointsIn, kw_only=True):
    name: Short
    kind: Annotated[str, one_of(CLIENT_KINDS)] = "company"
    full_name: Annotated[str, text(1000)] = ""
    relationship_type: Annotated[str, one_of(RELATIONSHIPS)] = "buyer"
    region: Annotated[str, text(200)] = ""
    industry: Annotated[str, text(200)] = ""
    comment: Comment = ""
    inn: Annotated[str | None, own("ИНН: 10 or 12 digits with a valid check digit")] = None
    kpp: Annotated[str | None, own("КПП: 9 characters")] = None
    okpo: Annotated[str | None, own("ОКПО: 8 or 10 digits with a valid check digit")] = None
    manager_id: Annotated[Id | None, own("an active user; null: nobody")] = None
    tags: Annotated[list[Tag], own("tag names")] = []
    custom: Annotated[dict[str, Any], own("values by custom field key (GET /api/v1/custom-fields)",
                                          additionalProperties=True)] = {}
    allow_duplicate: AllowDuplicate = False


class ContactIn(ContactPointsIn, kw_only=True):
    client_id: Annotated[Id, own("the client this person works for")]
    name: Short
    position: Annotated[str, text(200)] = ""
    comment: Comment = ""
    allow_duplicate: AllowDuplicate = False


class LeadIn(ContactPointsIn, kw_only=True):
    name: Short
    source: Annotated[str, text(100)] = ""
    comment: Comment = ""
    unsorted: Annotated[bool | None, Meta(description="not yet taken by anybody (Не разобрано)")] = None
    manager_id: Annotated[Id | None, own("an active user; null: nobody")] = None
    utm: Annotated[dict[str, str], own("UTM tags by name (utm_source ...), at most 20")] = {}
    allow_duplicate: AllowDuplicate = False


class TaskIn(Input, kw_only=True):
    subject: Short
    description: Comment = ""
    kind: Annotated[str, one_of(TASK_KINDS)] = "task"
    start_at: When | None = None
    due_at: Annotated[When | None, Meta(description="not before start_at")] = None
    percent: Annotated[int, Meta(ge=0, le=100)] = 0
    client_id: Annotated[Id | None, own()] = None
    deal_id: Annotated[Id | None, own()] = None
    lead_id: Annotated[Id | None, own()] = None
    assignee_id: Annotated[Id | None, own("defaults to the author")] = None


Utm = Annotated[str, text(200)]


class DealIn(Input, kw_only=True):
    title: Short
    client_id: Annotated[Id | None, own("a client or a lead is required")] = None
    lead_id: Annotated[Id | None, own()] = None
    contact_id: Annotated[Id | None, own("a contact person of the deal's client")] = None
    pipeline_id: Annotated[Id | None, own("defaults to the default pipeline")] = None
    stage_id: Annotated[Id | None, own("defaults to the pipeline's first active stage; to move a deal, "
                                       "POST /api/v1/deals/{id}/move")] = None
    amount: Annotated[float | str, Meta(description="roubles, at most two decimals", extra=MONEY)] = 0
    currency: Annotated[str, own("a three-letter code", maxLength=3)] = "RUB"
    responsible_id: Annotated[Id | None, own("an active user; defaults to the author")] = None
    tags: Annotated[list[Tag], own("tag names")] = []
    source: Annotated[str, text(100)] = ""
    utm_source: Utm = ""
    utm_medium: Utm = ""
    utm_campaign: Utm = ""
    utm_content: Utm = ""
    utm_term: Utm = ""
    next_interaction_at: When | None = None
    next_interaction_note: Annotated[str, text(MAX_NOTE)] = ""
    custom: Annotated[dict[str, Any], own("values by custom field key (GET /api/v1/custom-fields)",
                                          additionalProperties=True)] = {}


class UserIn(ContactPointsIn, kw_only=True):
    login: Annotated[str, own("Latin letters, digits and . @ + - _; unique whatever the case",
                              maxLength=64)]
    password: Annotated[str, own("at least 10 characters, not the login, not a common password; a "
                                 "change ends the user's other sessions and tokens")]
    current_password: Annotated[str | None, own("required to change one's own password")] = None
    name: Annotated[str, text(200, "defaults to the login")] = ""
    role: Annotated[str, one_of(ROLES)] = "agent"
    language: Annotated[str, one_of(LANGUAGES)] = "ru"
    extensions: Annotated[list[str], own("the phone extensions that ring this user (digits only)",
                                         maxItems=20)] = []
    active: Annotated[bool, own("false: the user can no longer log in (changes only)")] = True


# The classes the OpenAPI document names as components (each by its class name).
COMPONENTS: tuple[type[Input], ...] = (ClientIn, ContactIn, LeadIn, DealIn, TaskIn, UserIn)


def read(v: Fields, shape: type[Input], *, skip: Collection[str] = ()) -> dict[str, Any]:
    """The values of ``shape``'s fields in ``v``'s body, but those marked ``OWN`` or in ``skip``: every
    field when creating (a missing one takes its default), only those present when changing
    (``v.partial``). A nullable field sent as null reads as None; when changing, another field sent
    as null is left as it is."""
    values: dict[str, Any] = {}
    for field, kind, meta in _fields(shape):
        if meta.get("own") or field.name in skip or (v.partial and not v.has(field.name)):
            continue
        default = field.default if field.default is not NODEFAULT else None
        if v.has(field.name) and v.data[field.name] is None and (meta.get("nullable") or v.partial):
            if meta.get("nullable"):
                values[field.name] = None
        else:
            values[field.name] = _read_one(v, field.name, kind, field.required, default, meta)
    return values


@functools.cache
def _fields(shape: type[Input]) -> tuple[tuple[Any, Any, dict[str, Any]], ...]:
    """Each field of ``shape`` with its type unwrapped and its metadata (worked out once per class)."""
    return tuple((field, *_unwrap(field.type))
                 for field in types.type_info(shape).fields)  # type: ignore[attr-defined]


def _unwrap(kind: Any) -> tuple[Any, dict[str, Any]]:
    """The type under ``Annotated`` metadata and ``| None``; the metadata's ``extra``, its enum, and
    whether None is allowed."""
    meta: dict[str, Any] = {}
    while isinstance(kind, types.Metadata):
        meta.update(kind.extra or {})
        if kind.extra_json_schema and "enum" in kind.extra_json_schema:
            meta["enum"] = tuple(kind.extra_json_schema["enum"])
        kind = kind.type
    if isinstance(kind, types.UnionType):
        kinds = [k for k in kind.types if not isinstance(k, types.NoneType)]
        if len(kinds) == 1:
            inner, inner_meta = _unwrap(kinds[0])
            return inner, {**inner_meta, **meta, "nullable": True}
    return kind, meta


def _read_one(v: Fields, name: str, kind: Any, required: bool, default: Any, meta: dict[str, Any]) -> Any:
    if "enum" in meta:
        return v.choice(name, meta["enum"], required=required, default=default)
    if meta.get("money"):
        return v.money(name, default=default if default is not None else 0)
    if isinstance(kind, types.StrType):
        return v.text(name, required=required, max_len=kind.max_length or 300,
                      default=default if default is not None else "")
    if isinstance(kind, types.BoolType):
        return v.boolean(name, default=default)
    if isinstance(kind, types.IntType):
        if kind.ge == 1:
            return v.id(name, required=required) if v.has(name) or required else default
        return v.integer(name, required=required, default=default, minimum=kind.ge, maximum=kind.le)
    if isinstance(kind, types.DateTimeType):
        return v.datetime(name, required=required, default=default)
    if isinstance(kind, types.ListType) and isinstance(kind.item_type, types.StrType):
        return v.strings(name, max_items=kind.max_length or 50, max_len=kind.item_type.max_length or 300)
    raise TypeError(f"{name}: no reader for {kind!r}")  # a declaration this module cannot check yet
