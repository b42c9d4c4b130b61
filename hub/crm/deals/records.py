"""Deals (сделки): their shape, loading and checking, and creating, reading, changing and deleting one."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, audit, events, history, resources
from hub.crm.errors import Forbidden, ValidationError
from hub.crm.inputs import DealIn, read
from hub.crm.models import (
    Client,
    ContactPerson,
    CustomField,
    Deal,
    Lead,
    LossReason,
    Pipeline,
    Stage,
    Tag,
    TimelineEntry,
    User,
    utcnow,
)
from hub.crm.pipelines import default_pipeline
from hub.crm.resources import Ref
from hub.crm.timeline import refs, user_refs
from hub.crm.validate import Fields, clean_text, iso, parse_date
from hub.serialise import plain

CURRENCY = re.compile(r"^[A-Z]{3}$")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
CLOSED = ("won", "lost")
PAST_SLACK = timedelta(minutes=1)  # a plan typed at 10:00 and saved at 10:00:40 is not in the past
MAX_CUSTOM_TEXT = 2_000



# --- dicts -------------------------------------------------------------------------------------------

def roubles(minor: int | None) -> int | float:
    minor = int(minor or 0)
    return minor // 100 if minor % 100 == 0 else minor / 100


def is_open(deal: Deal) -> bool:
    return deal.stage.kind not in CLOSED if deal.stage is not None else deal.closed_at is None


def is_overdue(deal: Deal, now: datetime | None = None) -> bool:
    return (deal.next_interaction_at is not None and is_open(deal)
            and deal.next_interaction_at < (now or utcnow()))


async def deal_dicts(session: AsyncSession, deals: list[Deal]) -> list[dict[str, Any]]:
    """API dicts of deals loaded with ``stage`` and ``tags``; names of related rows in a few queries."""
    def ids(attr: str) -> set[int]:
        return {getattr(d, attr) for d in deals if getattr(d, attr) is not None}

    users = await user_refs(session, ids("responsible_id"))
    clients = await refs(session, Client.id, Client.name, ids("client_id"))
    leads = await refs(session, Lead.id, Lead.name, ids("lead_id"))
    contacts = await refs(session, ContactPerson.id, ContactPerson.name, ids("contact_id"))
    reasons = await refs(session, LossReason.id, LossReason.name, ids("loss_reason_id"))
    now = utcnow()
    return [plain(resources.Deal(
        id=d.id, title=d.title, client_id=d.client_id, client=_ref(clients, d.client_id), lead_id=d.lead_id,
        lead=_ref(leads, d.lead_id), contact_id=d.contact_id, contact=_ref(contacts, d.contact_id),
        pipeline_id=d.pipeline_id, stage_id=d.stage_id,
        stage=resources.DealStage(id=d.stage.id, name=d.stage.name, kind=d.stage.kind, color=d.stage.color),
        amount=roubles(d.amount_minor), currency=d.currency, responsible_id=d.responsible_id,
        responsible=_ref(users, d.responsible_id), tags=[t.name for t in d.tags], source=d.source,
        utm_source=d.utm_source, utm_medium=d.utm_medium, utm_campaign=d.utm_campaign,
        utm_content=d.utm_content, utm_term=d.utm_term, next_interaction_at=iso(d.next_interaction_at),
        next_interaction_note=d.next_interaction_note, loss_reason_id=d.loss_reason_id,
        loss_reason=_ref(reasons, d.loss_reason_id), custom=d.custom or {}, created_at=iso(d.created_at),
        updated_at=iso(d.updated_at), stage_changed_at=iso(d.stage_changed_at),
        last_activity_at=iso(d.last_activity_at), closed_at=iso(d.closed_at), open=is_open(d),
        overdue=is_overdue(d, now))) for d in deals]


def _ref(known: dict[int, Ref], ref_id: int | None) -> Ref | None:
    return known.get(ref_id) if ref_id else None


async def deal_dict(session: AsyncSession, deal: Deal) -> dict[str, Any]:
    return (await deal_dicts(session, [deal]))[0]


# --- loading and checking ---------------------------------------------------------------------------

def deal_query() -> Select[Deal]:
    return select(Deal).options(selectinload(Deal.stage), selectinload(Deal.tags))


async def load_deal(session: AsyncSession, deal_id: Any) -> Deal | None:
    """The deal with its stage and tags freshly loaded (flush pending changes first)."""
    if isinstance(deal_id, bool) or not isinstance(deal_id, int) or not 0 < deal_id <= 2**62:
        return None
    query = deal_query().where(Deal.id == deal_id).execution_options(populate_existing=True)
    return await session.scalar(query)


async def visible_deal(session: AsyncSession, actor: User, deal_id: Any) -> Deal:
    return await access.visible(session, actor, await load_deal(session, deal_id), "deal")


def require_change(actor: User, deal: Deal) -> None:
    if not access.is_staff(actor) and deal.responsible_id != actor.id:
        raise Forbidden("only the responsible user or a manager may change this deal")


def deal_scope(deal: Deal) -> dict[str, Any]:
    return {"responsible_id": deal.responsible_id}


async def _tags(session: AsyncSession, names: list[str]) -> list[Tag]:
    unique = list(dict.fromkeys(names))
    found = {t.name: t for t in (await session.scalars(select(Tag).where(Tag.name.in_(unique)))).all()}
    for name in unique:
        if name in found:
            continue
        tag = Tag(name=name)
        try:
            async with session.begin_nested():
                session.add(tag)
                await session.flush()
            found[name] = tag
        except IntegrityError:  # created concurrently
            existing = await session.scalar(select(Tag).where(Tag.name == name))
            if existing is None:
                raise
            found[name] = existing
    return [found[n] for n in unique]


async def _custom(session: AsyncSession, v: Fields, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``custom`` values checked against the deal's custom fields; merged into ``current``."""
    raw = v.mapping("custom")
    if raw is None:
        return None
    fields = {f.key: f for f in (await session.scalars(
        select(CustomField).where(CustomField.entity == "deal"))).all()}
    result = dict(current or {})
    for key, value in raw.items():
        name = f"custom.{str(key)[:64]}"
        field = fields.get(key)
        if field is None:
            v.fail(name, "no such custom field")
            continue
        if value is None:
            result.pop(key, None)
            continue
        if field.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
                    or value in (float("inf"), float("-inf")):
                v.fail(name, "must be a number")
                continue
        elif field.type == "date":
            parsed_day = parse_date(value)
            value = parsed_day.isoformat() if parsed_day is not None else None
            if value is None:
                v.fail(name, "must be a date YYYY-MM-DD")
                continue
        elif field.type == "choice":
            if not isinstance(value, str) or value not in (field.choices or []):
                v.fail(name, "must be one of the field's choices")
                continue
        else:
            if not isinstance(value, str):
                v.fail(name, "must be a string")
                continue
            value = value.strip()
            problem = clean_text(value) or (f"must be at most {MAX_CUSTOM_TEXT} characters"
                                            if len(value) > MAX_CUSTOM_TEXT else None)
            if problem:
                v.fail(name, problem)
                continue
        result[key] = value
    return result


def _currency(v: Fields, default: Any) -> Any:
    value = v.text("currency", max_len=3, default=default)
    if isinstance(value, str) and value != default:
        value = value.upper()
        if not CURRENCY.match(value):
            v.fail("currency", "must be a three-letter currency code like RUB")
    return value


async def _check_people(session: AsyncSession, actor: User, v: Fields, client_id: int | None,
                        lead_id: int | None, contact_id: int | None) -> None:
    if client_id is not None:
        client = await session.get(Client, client_id)
        if client is None or not await access.can_see_client(session, actor, client):
            v.fail("client_id", "does not exist")
    if lead_id is not None:
        lead = await session.get(Lead, lead_id)
        if lead is None or not await access.can_see_lead(session, actor, lead):
            v.fail("lead_id", "does not exist")
    if contact_id is not None:
        contact = await session.get(ContactPerson, contact_id)
        if contact is None:
            v.fail("contact_id", "does not exist")
        elif client_id is None or contact.client_id != client_id:
            v.fail("contact_id", "is not a contact person of the deal's client")


async def _check_user(session: AsyncSession, v: Fields, field: str, user_id: int | None) -> None:
    if user_id is None:
        return
    user = await session.get(User, user_id)
    if user is None or not user.active:
        v.fail(field, "no such active user")


def nullable_datetime(v: Fields, name: str, current: datetime | None) -> datetime | None:
    """A datetime field that an explicit null clears."""
    if name in v.data and v.data[name] is None:
        return None
    value: datetime | None = v.datetime(name, default=current)
    return value


# --- services ------------------------------------------------------------------------------------------

async def create_deal(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    v = Fields(data)
    values = read(v, DealIn)
    client_id = v.id("client_id")
    lead_id = v.id("lead_id")
    contact_id = v.id("contact_id")
    pipeline_id = v.id("pipeline_id")
    stage_id = v.id("stage_id")
    currency = _currency(v, "RUB")
    responsible_id = v.id("responsible_id")
    tag_names = v.strings("tags", max_len=100) or []
    custom = await _custom(session, v, None)
    if client_id is None and lead_id is None and "client_id" not in v.errors and "lead_id" not in v.errors:
        v.fail("client_id", "a deal needs a client_id or a lead_id")
    await _check_people(session, actor, v, client_id, lead_id, contact_id)
    if responsible_id is None:
        responsible_id = actor.id
    else:
        await _check_user(session, v, "responsible_id", responsible_id)

    pipeline = stage = None
    if stage_id is not None:
        stage = await session.get(Stage, stage_id)
        if stage is None:
            v.fail("stage_id", "does not exist")
    if pipeline_id is not None:
        pipeline = await session.scalar(
            select(Pipeline).where(Pipeline.id == pipeline_id).options(selectinload(Pipeline.stages)))
        if pipeline is None:
            v.fail("pipeline_id", "does not exist")
        elif stage is not None and stage.pipeline_id != pipeline.id:
            v.fail("stage_id", "is not a stage of this pipeline")
    v.check()
    if stage is None:
        if pipeline is None:
            pipeline = await default_pipeline(session)
        ordered = sorted(pipeline.stages, key=lambda st: (st.position, st.id))
        stage = next((st for st in ordered if st.kind == "active"), ordered[0] if ordered else None)
        if stage is None:
            raise ValidationError({"pipeline_id": "the pipeline has no stages"})

    now = utcnow()
    values["amount_minor"] = values.pop("amount")
    deal = Deal(
        **values, client_id=client_id, lead_id=lead_id, contact_id=contact_id,
        pipeline_id=stage.pipeline_id, stage_id=stage.id, currency=currency,
        responsible_id=responsible_id, custom=custom or {}, created_at=now, updated_at=now,
        stage_changed_at=now, last_activity_at=now, closed_at=now if stage.kind in CLOSED else None,
        tags=await _tags(session, tag_names),
    )
    session.add(deal)
    await session.flush()
    history.created(session, actor, "deal", deal.id, deal.title)
    loaded = await load_deal(session, deal.id)
    assert loaded is not None
    result = await deal_dict(session, loaded)
    events.emit(session, "deal.created", {"deal": result}, scope=deal_scope(loaded))
    return result


async def get_deal(session: AsyncSession, actor: User, deal_id: int) -> dict[str, Any]:
    return await deal_dict(session, await visible_deal(session, actor, deal_id))


def _check_plan(v: Fields, deal: Deal, planned: datetime | None) -> None:
    """A next interaction planned now (not the one kept) is in the future, on an open deal."""
    if planned is None or planned == deal.next_interaction_at:
        return
    if deal.stage is not None and deal.stage.kind in CLOSED:
        v.fail("next_interaction_at", "must be empty when the deal is closed")
    elif planned < utcnow() - PAST_SLACK:
        v.fail("next_interaction_at", "must not be in the past")


async def update_deal(session: AsyncSession, actor: User, deal_id: int, data: Any) -> dict[str, Any]:
    deal = await visible_deal(session, actor, deal_id)
    require_change(actor, deal)
    v = Fields(data, partial=True)
    if v.has("stage_id") and data["stage_id"] != deal.stage_id:
        v.fail("stage_id", "use the move action to change the stage")
    if v.has("pipeline_id") and data["pipeline_id"] != deal.pipeline_id:
        v.fail("pipeline_id", "use the move action to change the stage")
    given = read(v, DealIn)
    client_id = v.id("client_id") if v.has("client_id") else deal.client_id
    lead_id = v.id("lead_id") if v.has("lead_id") else deal.lead_id
    contact_id = v.id("contact_id") if v.has("contact_id") else deal.contact_id
    if v.has("client_id") and client_id is None and v.has("contact_id") is False:
        contact_id = None  # the contact person went with the client
    currency = _currency(v, deal.currency)
    responsible_id = v.id("responsible_id") if v.has("responsible_id") else deal.responsible_id
    tag_names = v.strings("tags", max_len=100)
    custom = await _custom(session, v, deal.custom)
    if client_id is None and lead_id is None and not v.errors:
        v.fail("client_id", "a deal needs a client_id or a lead_id")
    await _check_people(
        session, actor, v,
        client_id if client_id != deal.client_id else None,
        lead_id if lead_id != deal.lead_id else None,
        None,
    )
    if contact_id is not None and (contact_id != deal.contact_id or client_id != deal.client_id):
        contact = await session.get(ContactPerson, contact_id)
        if contact is None or contact.client_id != client_id:
            v.fail("contact_id", "is not a contact person of the deal's client")
    if responsible_id != deal.responsible_id:
        if responsible_id is None:
            v.fail("responsible_id", "is required")
        await _check_user(session, v, "responsible_id", responsible_id)
    _check_plan(v, deal, given.get("next_interaction_at"))
    v.check()
    before = history.deal_values(await deal_dict(session, deal))

    if "amount" in given:
        given["amount_minor"] = given.pop("amount")
    for name, value in given.items():
        setattr(deal, name, value)
    deal.client_id, deal.lead_id, deal.contact_id = client_id, lead_id, contact_id
    deal.currency, deal.responsible_id = currency, responsible_id
    if custom is not None:
        deal.custom = custom
    if tag_names is not None:
        deal.tags = await _tags(session, tag_names)
    deal.updated_at = utcnow()
    await session.flush()
    loaded = await load_deal(session, deal.id)
    assert loaded is not None
    result = await deal_dict(session, loaded)
    history.record(session, actor, "deal", deal.id, before, history.deal_values(result))
    events.emit(session, "deal.updated", {"deal": result}, scope=deal_scope(loaded))
    return result


async def delete_deal(session: AsyncSession, actor: User, deal_id: int) -> None:
    """Staff only. The deal's timeline entries stay in its client's or lead's timeline."""
    deal = await visible_deal(session, actor, deal_id)
    access.require_staff(actor)
    result = await deal_dict(session, deal)
    await session.execute(
        update(TimelineEntry)
        .where(TimelineEntry.deal_id == deal.id,
               or_(TimelineEntry.client_id.is_not(None), TimelineEntry.lead_id.is_not(None)))
        .values(deal_id=None).execution_options(synchronize_session=False)
    )
    await session.delete(deal)
    await session.flush()
    await history.forget(session, "deal", [result["id"]])
    audit.record(session, "deal_deleted", actor=actor, target=("deal", result["id"]),
                 details={"title": result["title"]})
    events.emit(session, "deal.deleted", {"deal": result}, scope=deal_scope(deal))
