"""What administrators configure beyond users and pipelines: custom fields, tags, loss reasons
being offered or not, and the access settings "agents see all clients and deals", "route to a
free agent" (``hub.crm.routing``) and how long a call opens the caller's card (``call_grant``).

Everybody logged in may read these (forms and filters need them); only administrators change them.
Clients' and deals' services check values against the custom fields stored here.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Result, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, audit, routing
from hub.crm.errors import Conflict, NotFound
from hub.crm.models import (
    CUSTOM_FIELD_TYPES,
    CustomField,
    Deal,
    LossReason,
    Setting,
    Stage,
    Tag,
    User,
    client_tags,
    deal_tags,
)
from hub.crm.paging import Page
from hub.crm.pipelines import COLOR, loss_reason_dict
from hub.crm.validate import Fields

ENTITIES = ("client", "deal")
KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_CHOICES = 100
MAX_FIELDS = 200


def _valid_id(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 < value <= 2**62


# --- custom fields ---------------------------------------------------------------------------------

def custom_field_dict(field: CustomField) -> dict[str, Any]:
    return {"id": field.id, "entity": field.entity, "key": field.key, "label": field.label,
            "type": field.type, "choices": list(field.choices or []), "position": field.position}


async def list_custom_fields(session: AsyncSession, actor: User, *, entity: str | None = None) -> Page:
    """Every custom field (there are few), by entity, then position."""
    query = select(CustomField).order_by(CustomField.entity, CustomField.position, CustomField.id)
    if entity is not None:
        query = query.where(CustomField.entity == entity)
    return Page([custom_field_dict(f) for f in (await session.scalars(query)).all()], None)


async def _field(session: AsyncSession, field_id: Any) -> CustomField:
    field = await session.get(CustomField, field_id) if _valid_id(field_id) else None
    if field is None:
        raise NotFound("custom field not found")
    return field


async def get_custom_field(session: AsyncSession, actor: User, field_id: Any) -> dict[str, Any]:
    return custom_field_dict(await _field(session, field_id))


def _choices(v: Fields, kind: str | None, current: list[Any] | None) -> list[str] | None:
    """The choices of a ``choice`` field (required, unique); other types have none."""
    values = v.strings("choices", max_items=MAX_CHOICES, max_len=200)
    if values is None and not v.errors.get("choices"):
        values = current
    if kind == "choice":
        if not values:
            v.fail("choices", "a choice field needs at least one choice")
            return None
        if len(set(values)) != len(values):
            v.fail("choices", "choices must differ")
            return None
        return list(values)
    if v.has("choices") and values:
        v.fail("choices", "only a choice field has choices")
    return []


async def create_custom_field(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    access.require_admin(actor)
    v = Fields(data)
    entity = v.choice("entity", ENTITIES, required=True)
    key = v.text("key", required=True, max_len=64)
    if key and not v.errors.get("key") and not KEY.fullmatch(key):
        v.fail("key", "must start with a Latin letter and have only a-z, 0-9 and _")
    label = v.text("label", required=True, max_len=200)
    kind = v.choice("type", CUSTOM_FIELD_TYPES, required=True)
    choices = _choices(v, kind, None)
    position = v.integer("position", minimum=0, maximum=10_000)
    v.check()
    if await session.scalar(select(CustomField.id).where(CustomField.entity == entity,
                                                         CustomField.key == key)) is not None:
        raise Conflict("a field with this key exists already", {"key": "exists already"})
    if (await session.execute(select(func.count()).select_from(CustomField))).scalar_one() >= MAX_FIELDS:
        raise Conflict(f"at most {MAX_FIELDS} custom fields")
    if position is None:
        position = (await session.execute(select(func.coalesce(func.max(CustomField.position), -1))
                                          .where(CustomField.entity == entity))).scalar_one() + 1
    field = CustomField(entity=entity, key=key, label=label, type=kind, choices=choices or [],
                        position=position)
    try:
        async with session.begin_nested():
            session.add(field)
            await session.flush()
    except IntegrityError as exc:  # added concurrently
        raise Conflict("a field with this key exists already", {"key": "exists already"}) from exc
    return custom_field_dict(field)


async def update_custom_field(session: AsyncSession, actor: User, field_id: Any, data: Any) -> dict[str, Any]:
    """Label, choices and position change; entity, key and type stay (stored values depend on them)."""
    access.require_admin(actor)
    field = await _field(session, field_id)
    v = Fields(data, partial=True)
    for fixed in ("entity", "key", "type"):
        if v.has(fixed) and v.data[fixed] != getattr(field, fixed):
            v.fail(fixed, "cannot be changed; delete the field and create another")
    label = v.text("label", required=True, max_len=200, default=None) if v.has("label") else None
    choices = _choices(v, field.type, list(field.choices or [])) if v.has("choices") else None
    position = v.integer("position", minimum=0, maximum=10_000)
    v.check()
    if label is not None:
        field.label = label
    if choices is not None:
        field.choices = choices
    if position is not None:
        field.position = position
    await session.flush()
    return custom_field_dict(field)


async def delete_custom_field(session: AsyncSession, actor: User, field_id: Any) -> None:
    """The field goes; values already stored stay in the clients' and deals' ``custom`` data."""
    access.require_admin(actor)
    field = await _field(session, field_id)
    await session.delete(field)
    await session.flush()
    audit.record(session, "settings_changed", actor=actor, target=("custom_field", field.id),
                 details={"deleted": {"entity": field.entity, "key": field.key, "label": field.label}})


# --- tags ------------------------------------------------------------------------------------------

async def _tag_counts(session: AsyncSession, table: Any, tag_ids: list[int] | None = None) -> dict[int, int]:
    query = select(table.c.tag_id, func.count()).group_by(table.c.tag_id)
    if tag_ids is not None:
        query = query.where(table.c.tag_id.in_(tag_ids))
    counts: Result[int, int] = await session.execute(query)
    return {tag_id: int(n) for tag_id, n in counts.all()}


def _tag_dict(tag: Tag, clients: dict[int, int], deals: dict[int, int]) -> dict[str, Any]:
    return {"id": tag.id, "name": tag.name, "color": tag.color or "",
            "clients": clients.get(tag.id, 0), "deals": deals.get(tag.id, 0)}


async def list_tags(session: AsyncSession, actor: User) -> Page:
    """Every tag with how many clients and deals carry it."""
    tags = (await session.scalars(select(Tag).order_by(Tag.name, Tag.id))).all()
    clients, deals = await _tag_counts(session, client_tags), await _tag_counts(session, deal_tags)
    return Page([_tag_dict(t, clients, deals) for t in tags], None)


async def _tag(session: AsyncSession, tag_id: Any) -> Tag:
    tag = await session.get(Tag, tag_id) if _valid_id(tag_id) else None
    if tag is None:
        raise NotFound("tag not found")
    return tag


async def _one_tag(session: AsyncSession, tag: Tag) -> dict[str, Any]:
    return _tag_dict(tag, await _tag_counts(session, client_tags, [tag.id]),
                     await _tag_counts(session, deal_tags, [tag.id]))


async def get_tag(session: AsyncSession, actor: User, tag_id: Any) -> dict[str, Any]:
    return await _one_tag(session, await _tag(session, tag_id))


async def update_tag(session: AsyncSession, actor: User, tag_id: Any, data: Any) -> dict[str, Any]:
    """Rename (the clients and deals keep the tag) or recolour (``""`` for none)."""
    access.require_admin(actor)
    tag = await _tag(session, tag_id)
    v = Fields(data, partial=True)
    name = v.text("name", required=True, max_len=100, default=None) if v.has("name") else None
    color = v.text("color", max_len=16, default=None) if v.has("color") else None
    if color and not v.errors.get("color") and not COLOR.match(color):
        v.fail("color", "must be a colour like #1e88e5")
    v.check()
    if name is not None and name != tag.name:
        if await session.scalar(select(Tag.id).where(Tag.name == name, Tag.id != tag.id)) is not None:
            raise Conflict("another tag has this name", {"name": "another tag has this name"})
        tag.name = name
    if color is not None:
        tag.color = color.lower()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("another tag has this name", {"name": "another tag has this name"}) from exc
    return await _one_tag(session, tag)


async def delete_tag(session: AsyncSession, actor: User, tag_id: Any) -> None:
    """The tag leaves every client and deal that had it."""
    access.require_admin(actor)
    tag = await _tag(session, tag_id)
    for table in (client_tags, deal_tags):
        await session.execute(delete(table).where(table.c.tag_id == tag.id),
                              execution_options={"synchronize_session": False})
    await session.delete(tag)
    await session.flush()


# --- loss reasons ----------------------------------------------------------------------------------

async def update_loss_reason(session: AsyncSession, actor: User, reason_id: Any, data: Any) -> dict[str, Any]:
    """Offer a loss reason again or stop offering it (``active``); rename it (``name``). Deals lost
    for it keep it."""
    access.require_admin(actor)
    reason = await session.get(LossReason, reason_id) if _valid_id(reason_id) else None
    if reason is None:
        raise NotFound("loss reason not found")
    v = Fields(data, partial=True)
    active = v.boolean("active")
    name = v.text("name", required=True, max_len=200, default=None) if v.has("name") else None
    v.check()
    if name is not None and name != reason.name:
        if await session.scalar(select(LossReason.id).where(LossReason.name == name)) is not None:
            raise Conflict("this loss reason exists already", {"name": "exists already"})
        reason.name = name
    if active is not None:
        reason.active = active
    await session.flush()
    return loss_reason_dict(reason)


# --- stages in use ---------------------------------------------------------------------------------

async def deals_per_stage(session: AsyncSession, stage_ids: list[int]) -> dict[int, int]:
    """How many deals each of these stages holds (a stage with deals cannot be removed)."""
    if not stage_ids:
        return {}
    rows = await session.execute(select(Deal.stage_id, func.count()).where(Deal.stage_id.in_(stage_ids))
                                 .group_by(Deal.stage_id))
    return {stage_id: int(n) for stage_id, n in rows.all()}


async def stages_of(session: AsyncSession, pipeline_id: int) -> list[int]:
    return list((await session.scalars(select(Stage.id).where(Stage.pipeline_id == pipeline_id))).all())


# --- access ----------------------------------------------------------------------------------------

async def get_access(session: AsyncSession, actor: User) -> dict[str, Any]:
    grant = await access.call_grant(session)
    return {"agents_see_all": await access.agents_see_all(session),
            routing.SETTING: await routing.enabled(session),
            "call_grant": grant.mode, "call_grant_hours": grant.hours}


ACCESS_KEYS = ("agents_see_all", routing.SETTING, "call_grant", "call_grant_hours")


async def update_access(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    """``agents_see_all``: whether agents see every client, lead, deal and task (not only theirs);
    ``route_to_free_agent``: whether a missed call's callback and a new chat with an unknown person go
    to a free agent when their responsible is busy or offline (``hub.crm.routing``); ``call_grant``
    and ``call_grant_hours``: how long a call lets the users it rang (and who answered) open the
    caller's card and open deals (``hub.crm.access``). Any of them; one left out keeps its value.
    → all, as they are now."""
    access.require_admin(actor)
    v = Fields(data)
    enabled = v.boolean("agents_see_all")
    route = v.boolean(routing.SETTING)
    mode = v.choice("call_grant", access.GRANT_MODES)
    hours = v.integer("call_grant_hours", minimum=1, maximum=access.MAX_GRANT_HOURS)
    if not any(v.has(key) for key in ACCESS_KEYS):
        v.fail("agents_see_all", "is required")
    v.check()
    before = await get_access(session, actor)
    if enabled is not None:
        row = await session.get(Setting, access.SHARE_SETTING)
        if row is None:
            session.add(Setting(key=access.SHARE_SETTING, value={"enabled": enabled}))
        else:
            row.value = {**(row.value or {}), "enabled": enabled}
    if route is not None:
        await routing.set_enabled(session, route)
    if mode is not None or hours is not None:
        await _set_call_grant(session, mode or before["call_grant"], hours or before["call_grant_hours"])
    await session.flush()
    after = await get_access(session, actor)
    changed = {key: [before[key], after[key]] for key in after if before.get(key) != after[key]}
    if changed:
        audit.record(session, "settings_changed", actor=actor, target=("access", None), details=changed)
    return after


async def _set_call_grant(session: AsyncSession, mode: str, hours: int) -> None:
    row = await session.get(Setting, access.GRANT_SETTING)
    if row is None:
        session.add(Setting(key=access.GRANT_SETTING, value={"mode": mode, "hours": hours}))
    else:
        row.value = {"mode": mode, "hours": hours}
