"""The history of changes (история изменений): every change of a field of a client, contact person,
lead, deal or task — who, when, before → after — one ``FieldChange`` row per field, written in the
unit of work of the change itself.

An update function reads the entity's values before it changes anything and after (``*_values``:
the entity's API dict as the history keeps it — a reference by id and name as it reads now, money as
a decimal string, tags and contact points as lists, each custom field and UTM tag as a field of its
own) and calls ``record`` once: a row for each field whose value differs. Creation is one row (field
``created``, the name or title after; not for a lead a channel makes on the intake's fast path,
``leads.create_channel_lead``); deletion is the audit log's (``hub.crm.audit``), and the
history goes with the entity (``forget``: SQLite may give a deleted row's id to the next one).

``list_changes`` reads an entity's history, newest first, for whoever may read the entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, resources
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import Client, ContactPerson, Deal, FieldChange, Lead, Task, User, utcnow
from hub.crm.validate import iso
from hub.serialise import plain

ENTITIES = ("client", "contact", "lead", "deal", "task")
CREATED = "created"
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
POINTS = ("phones", "emails", "telegram")

Values = dict[str, Any]


# --- the values each entity's history keeps ---------------------------------------------------------

def ref(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A reference (``{"id", "name", ...}`` of an API dict) as ``{"id", "name"}``."""
    return None if not value else {"id": value["id"], "name": value.get("name")}


def money(amount: Any) -> str:
    return str(Decimal(str(amount or 0)).quantize(Decimal("0.01")))


def _each(prefix: str, mapping: Mapping[str, Any] | None) -> Values:
    return {f"{prefix}.{key}": value for key, value in (mapping or {}).items()}


def _pick(source: Mapping[str, Any], names: Iterable[str]) -> Values:
    return {name: source[name] for name in names}


def client_values(c: Mapping[str, Any]) -> Values:
    return {**_pick(c, ("name", "kind", "relationship_type", "full_name", "inn", "kpp", "okpo", "region",
                        "industry", "comment", "tags", *POINTS)),
            "manager": ref(c["manager"]), **_each("custom", c["custom"])}


def contact_values(c: Mapping[str, Any], client: Client) -> Values:
    return {**_pick(c, ("name", "position", "comment", *POINTS)),
            "client": {"id": client.id, "name": client.name}}


def lead_values(x: Mapping[str, Any]) -> Values:
    return {**_pick(x, ("name", "source", "comment", "unsorted", "rejected_reason", *POINTS)),
            "manager": ref(x["manager"]),
            **_each("utm", x["utm"])}


def deal_values(d: Mapping[str, Any]) -> Values:
    return {**_pick(d, ("title",)), "amount": money(d["amount"]), "currency": d["currency"],
            "stage": ref(d["stage"]), "responsible": ref(d["responsible"]), "client": ref(d["client"]),
            "lead": ref(d["lead"]), "contact": ref(d["contact"]),
            **_pick(d, ("tags", "source", "utm_source", "utm_medium", "utm_campaign", "utm_content",
                        "utm_term", "next_interaction_at", "next_interaction_note")),
            "loss_reason": ref(d["loss_reason"]), **_each("custom", d["custom"])}


def task_values(t: Mapping[str, Any]) -> Values:
    return {**_pick(t, ("subject", "description", "kind", "start_at", "due_at", "percent", "done")),
            "deal": ref(t["deal"]), "client": ref(t["client"]), "lead": ref(t["lead"]),
            "assignee": ref(t["assignee"])}


# --- writing ---------------------------------------------------------------------------------------------

def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _same(a: Any, b: Any) -> bool:
    """No change for a person: equal, or both empty (nothing → "" is not a change)."""
    return (_empty(a) and _empty(b)) or (type(a) is type(b) and a == b)


def record(session: AsyncSession, actor: User | None, entity: str, entity_id: int, before: Values,
           after: Values) -> int:
    """A row for each field whose value differs between ``before`` and ``after`` (a field missing
    from one of them was empty there) → how many."""
    assert entity in ENTITIES, entity
    now = utcnow()
    changed = 0
    for field in dict.fromkeys([*after, *before]):
        old, new = before.get(field), after.get(field)
        if _same(old, new):
            continue
        _add(session, actor, entity, entity_id, field, old, new, now)
        changed += 1
    return changed


def created(session: AsyncSession, actor: User | None, entity: str, entity_id: int, name: str) -> None:
    """The entity was created (one row: ``created``, with its name or title)."""
    assert entity in ENTITIES, entity
    _add(session, actor, entity, entity_id, CREATED, None, name, utcnow())


def _add(session: AsyncSession, actor: User | None, entity: str, entity_id: int, field: str, before: Any,
         after: Any, at: Any) -> None:
    session.add(FieldChange(
        entity_type=entity, entity_id=entity_id, field=field[:80], before=None if _empty(before) else before,
        after=None if _empty(after) else after, user_id=actor.id if actor is not None else None,
        user_name=(actor.name if actor is not None else "")[:200], at=at))


async def forget(session: AsyncSession, entity: str, entity_ids: Iterable[int]) -> None:
    """The history of deleted entities goes with them."""
    ids = list(entity_ids)
    if ids:
        await session.execute(delete(FieldChange).where(FieldChange.entity_type == entity,
                                                        FieldChange.entity_id.in_(ids)),
                              execution_options={"synchronize_session": False})


# --- reading ---------------------------------------------------------------------------------------------

async def _require_visible(session: AsyncSession, actor: User, entity: str, entity_id: Any) -> None:
    """As reading the entity itself: NotFound when it does not exist or the actor may not see it."""
    if entity not in ENTITIES:
        raise NotFound("no such kind of record")
    if isinstance(entity_id, bool) or not isinstance(entity_id, int) or not 0 < entity_id < 2**62:
        raise NotFound(f"{entity} not found")
    if entity == "contact":
        contact = await session.get(ContactPerson, entity_id)
        client = await session.get(Client, contact.client_id) if contact is not None else None
        if client is None or not await access.can_see_client(session, actor, client):
            raise NotFound("contact not found")
        return
    if entity == "client":
        await access.visible(session, actor, await session.get(Client, entity_id), entity)
    elif entity == "lead":
        await access.visible(session, actor, await session.get(Lead, entity_id), entity)
    elif entity == "deal":
        await access.visible(session, actor, await session.get(Deal, entity_id), entity)
    else:
        await access.visible(session, actor, await session.get(Task, entity_id), entity)


def change_dict(row: FieldChange) -> dict[str, Any]:
    author = None
    if row.user_id is not None or row.user_name:
        author = resources.Author(id=row.user_id, name=row.user_name)
    return plain(resources.FieldChange(id=row.id, at=iso(row.at) or "", user=author, field=row.field,
                                       before=row.before, after=row.after))


async def list_changes(session: AsyncSession, actor: User, entity: str, entity_id: Any, *,
                       before_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The entity's changes, newest first: the ``limit`` newest (default 200), or those older than
    the change ``before_id`` (the last of the page before)."""
    if limit is None:
        limit = DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be between 1 and {MAX_LIMIT}"})
    await _require_visible(session, actor, entity, entity_id)
    mine = (FieldChange.entity_type == entity) & (FieldChange.entity_id == entity_id)
    query = select(FieldChange).where(mine)
    if before_id is not None:
        last = await session.scalar(select(FieldChange).where(mine, FieldChange.id == before_id))
        if last is None:
            raise ValidationError({"before_id": "is not a change of this record"})
        query = query.where(or_(FieldChange.at < last.at, and_(FieldChange.at == last.at,
                                                               FieldChange.id < last.id)))
    rows = (await session.scalars(
        query.order_by(FieldChange.at.desc(), FieldChange.id.desc()).limit(limit))).all()
    return [change_dict(row) for row in rows]
