"""Deals (сделки): CRUD, the deal list, the kanban columns and their totals, and stage moves."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, audit, events, resources, search
from hub.crm.errors import Forbidden, NotFound, ValidationError
from hub.crm.inputs import DealIn, read
from hub.crm.models import (
    Client,
    ContactPerson,
    ContactPoint,
    CustomField,
    Deal,
    Lead,
    LossReason,
    Pipeline,
    Stage,
    Tag,
    Task,
    TimelineEntry,
    User,
    deal_tags,
    utcnow,
)
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.pipelines import default_pipeline, find_or_make_loss_reason
from hub.crm.resources import Ref
from hub.crm.timeline import add_entry, refs, user_refs
from hub.crm.validate import Fields, clean_text, iso, parse_date
from hub.serialise import plain

CURRENCY = re.compile(r"^[A-Z]{3}$")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
CLOSED = ("won", "lost")
MAX_NOTE = 5_000
MAX_RESULT = 5_000
MAX_CUSTOM_TEXT = 2_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


async def _visible_deal(session: AsyncSession, actor: User, deal_id: Any) -> Deal:
    return await access.visible(session, actor, await load_deal(session, deal_id), "deal")


def _require_change(actor: User, deal: Deal) -> None:
    if not access.is_staff(actor) and deal.responsible_id != actor.id:
        raise Forbidden("only the responsible user or a manager may change this deal")


def _scope(deal: Deal) -> dict[str, Any]:
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


def _nullable_datetime(v: Fields, name: str, current: datetime | None) -> datetime | None:
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
    loaded = await load_deal(session, deal.id)
    assert loaded is not None
    result = await deal_dict(session, loaded)
    events.emit(session, "deal.created", {"deal": result}, scope=_scope(loaded))
    return result


async def get_deal(session: AsyncSession, actor: User, deal_id: int) -> dict[str, Any]:
    return await deal_dict(session, await _visible_deal(session, actor, deal_id))


async def update_deal(session: AsyncSession, actor: User, deal_id: int, data: Any) -> dict[str, Any]:
    deal = await _visible_deal(session, actor, deal_id)
    _require_change(actor, deal)
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
    v.check()

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
    events.emit(session, "deal.updated", {"deal": result}, scope=_scope(loaded))
    return result


async def delete_deal(session: AsyncSession, actor: User, deal_id: int) -> None:
    """Staff only. The deal's timeline entries stay in its client's or lead's timeline."""
    deal = await _visible_deal(session, actor, deal_id)
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
    audit.record(session, "deal_deleted", actor=actor, target=("deal", result["id"]),
                 details={"title": result["title"]})
    events.emit(session, "deal.deleted", {"deal": result}, scope=_scope(deal))


# --- lists --------------------------------------------------------------------------------------------

def _search(q: str, region: str) -> ColumnElement[bool]:
    """Title, client/lead name, or a phone / e-mail of the client, its contact persons or the lead."""
    conditions: list[ColumnElement[bool]] = [
        search.contains(Deal.title, q),
        Deal.client_id.in_(select(Client.id).where(search.contains(Client.name, q))),
        Deal.lead_id.in_(select(Lead.id).where(search.contains(Lead.name, q))),
    ]
    point = search.contact_point_match(q, region)
    if point is not None:
        conditions += [
            Deal.client_id.in_(select(ContactPoint.client_id)
                               .where(point, ContactPoint.client_id.is_not(None))),
            Deal.client_id.in_(select(ContactPerson.client_id)
                               .join(ContactPoint, ContactPoint.contact_id == ContactPerson.id).where(point)),
            Deal.lead_id.in_(select(ContactPoint.lead_id).where(point, ContactPoint.lead_id.is_not(None))),
        ]
    return or_(*conditions)


async def deal_filters(session: AsyncSession, actor: User, *, pipeline_id: Any = None, stage_id: Any = None,
                   responsible_id: Any = None, tag: Any = None, client_id: Any = None, lead_id: Any = None,
                   q: Any = None, without_tasks: bool = False, region: str = "RU") -> list[Any]:
    errors = {}
    for name, value in (("pipeline_id", pipeline_id), ("stage_id", stage_id),
                        ("responsible_id", responsible_id), ("client_id", client_id), ("lead_id", lead_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 < value <= 2**62):
            errors[name] = "must be an id"
    for name, value in (("tag", tag), ("q", q)):
        if value is not None and (not isinstance(value, str) or clean_text(value) or len(value) > 300):
            errors[name] = "must be a text of at most 300 characters"
    if errors:
        raise ValidationError(errors)
    where: list[Any] = [await access.deals_filter(session, actor)]
    if pipeline_id is not None:
        where.append(Deal.pipeline_id == pipeline_id)
    if stage_id is not None:
        where.append(Deal.stage_id == stage_id)
    if responsible_id is not None:
        where.append(Deal.responsible_id == responsible_id)
    if client_id is not None:
        where.append(Deal.client_id == client_id)
    if lead_id is not None:
        where.append(Deal.lead_id == lead_id)
    if tag:
        where.append(Deal.id.in_(select(deal_tags.c.deal_id).join(Tag, Tag.id == deal_tags.c.tag_id)
                                 .where(Tag.name == tag.strip())))
    if q and q.strip():
        where.append(_search(q.strip(), region))
    if without_tasks:
        where.append(~select(Task.id).where(Task.deal_id == Deal.id, Task.completed_at.is_(None)).exists())
    return where


async def list_deals(session: AsyncSession, actor: User, *, pipeline_id: int | None = None,
                     stage_id: int | None = None, responsible_id: int | None = None, tag: str | None = None,
                     client_id: int | None = None, lead_id: int | None = None, q: str | None = None,
                     cursor: str | None = None, limit: int | None = None, without_tasks: bool = False,
                     region: str = "RU") -> Page:
    """Newest first (id desc). ``q``: title, client/lead name, or their phone or e-mail in any format."""
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    where = await deal_filters(session, actor, pipeline_id=pipeline_id, stage_id=stage_id,
                           responsible_id=responsible_id, tag=tag, client_id=client_id, lead_id=lead_id,
                           q=q, without_tasks=without_tasks, region=region)
    if after is not None:
        where.append(Deal.id < after)
    query = deal_query().where(*where).order_by(Deal.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await deal_dicts(session, rows), encode_cursor(rows[-1].id) if more and rows else None)


def encode_stage_cursor(deal: Deal) -> str:
    at = deal.next_interaction_at
    key = "-" if at is None else str((at - EPOCH) // timedelta(microseconds=1))
    return base64.urlsafe_b64encode(f"k:{key}:{deal.id}".encode()).decode().rstrip("=")


def _decode_stage_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, key, last_id = text.split(":")
        if (kind != "k" or not last_id.isdecimal() or int(last_id) > 2**62
                or not (key == "-" or key.lstrip("-").isdecimal())):
            raise ValueError
        at = None if key == "-" else EPOCH + timedelta(microseconds=int(key))
        return at, int(last_id)
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ValidationError({"cursor": "is not a cursor this server issued"}) from exc


async def list_stage_deals(session: AsyncSession, actor: User, stage_id: int, *, limit: int | None = None,
                           cursor: str | None = None, responsible_id: int | None = None,
                           tag: str | None = None) -> Page:
    """A kanban column: the nearest planned interaction first, deals without one last."""
    limit = clamp_limit(limit)
    if stage_id is None:
        raise ValidationError({"stage_id": "is required"})
    where = await deal_filters(session, actor, stage_id=stage_id, responsible_id=responsible_id, tag=tag)
    if cursor:
        at, last_id = _decode_stage_cursor(cursor)
        if at is None:
            where.append(and_(Deal.next_interaction_at.is_(None), Deal.id > last_id))
        else:
            where.append(or_(
                Deal.next_interaction_at > at,
                and_(Deal.next_interaction_at == at, Deal.id > last_id),
                Deal.next_interaction_at.is_(None),
            ))
    query = (deal_query().where(*where)
             .order_by(Deal.next_interaction_at.asc().nulls_last(), Deal.id.asc()).limit(limit + 1))
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await deal_dicts(session, rows), encode_stage_cursor(rows[-1]) if more and rows else None)


async def stage_totals(session: AsyncSession, actor: User, pipeline_id: int, *,
                       responsible_id: int | None = None,
                       tag: str | None = None) -> dict[int, dict[str, Any]]:
    """``{stage_id: {"count", "amount"}}`` for every stage of the pipeline, summed in SQL."""
    if pipeline_id is None:
        raise ValidationError({"pipeline_id": "is required"})
    where = await deal_filters(session, actor, pipeline_id=pipeline_id, responsible_id=responsible_id,
                               tag=tag)
    if await session.get(Pipeline, pipeline_id) is None:
        raise NotFound("pipeline not found")
    rows = await session.execute(
        select(Deal.stage_id, func.count(Deal.id), func.coalesce(func.sum(Deal.amount_minor), 0))
        .where(*where).group_by(Deal.stage_id)
    )
    sums = {stage_id: (int(count), int(total)) for stage_id, count, total in rows}
    stage_ids = (await session.scalars(
        select(Stage.id).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position, Stage.id))).all()
    return {sid: {"count": sums.get(sid, (0, 0))[0], "amount": roubles(sums.get(sid, (0, 0))[1])}
            for sid in stage_ids}


# --- moving through the pipeline ---------------------------------------------------------------------

async def move_deal(session: AsyncSession, actor: User, deal_id: int, data: Any) -> dict[str, Any]:
    """Move to ``stage_id`` (same pipeline) with the result of the last interaction and the next one
    planned; a lost stage needs ``loss_reason`` (an id or a text). Writes a ``stage_change`` entry."""
    deal = await _visible_deal(session, actor, deal_id)
    _require_change(actor, deal)
    v = Fields(data)
    stage_id = v.id("stage_id", required=True)
    result_text = v.text("result", max_len=MAX_RESULT)
    next_at = _nullable_datetime(v, "next_interaction_at", deal.next_interaction_at)
    next_note = v.text("next_interaction_note", max_len=MAX_NOTE, default=deal.next_interaction_note)
    if data.get("next_interaction_at", 0) is None and "next_interaction_note" not in data:
        next_note = ""  # the plan was cleared
    stage = None
    if stage_id is not None:
        stage = await session.get(Stage, stage_id)
        if stage is None:
            v.fail("stage_id", "does not exist")
        elif stage.pipeline_id != deal.pipeline_id:
            v.fail("stage_id", "is not a stage of the deal's pipeline")
    raw_reason = data.get("loss_reason") if isinstance(data, dict) else None
    if isinstance(raw_reason, str) and not raw_reason.strip():
        raw_reason = None
    if stage is not None and stage.kind == "lost" and raw_reason is None:
        v.fail("loss_reason", "is required when a deal is lost")
    v.check()
    assert stage is not None
    reason = await find_or_make_loss_reason(session, raw_reason) if stage.kind == "lost" else None

    old = deal.stage
    now = utcnow()
    if stage.id != old.id:
        deal.stage_id = stage.id
        deal.stage_changed_at = now
        if stage.kind in CLOSED:
            if old.kind != stage.kind or deal.closed_at is None:
                deal.closed_at = now
        else:
            deal.closed_at = None
    if stage.kind == "lost":
        deal.loss_reason_id = reason.id if reason else None
    else:
        deal.loss_reason_id = None
    deal.next_interaction_at, deal.next_interaction_note = next_at, next_note
    deal.updated_at = now
    await session.flush()

    payload = {
        "from_stage": {"id": old.id, "name": old.name, "kind": old.kind},
        "to_stage": {"id": stage.id, "name": stage.name, "kind": stage.kind},
        "result": result_text,
        "next_interaction_at": iso(next_at),
        "next_interaction_note": next_note,
        "loss_reason": {"id": reason.id, "name": reason.name} if reason else None,
    }
    # The text is language-neutral (stage names and the user's own words); the UI renders the
    # loss reason and the next interaction from the payload in the reader's language.
    lines = [f"{old.name} → {stage.name}"] + ([result_text] if result_text else [])
    await add_entry(session, kind="stage_change", text="\n".join(lines), author_id=actor.id,
                    deal_id=deal.id, payload=payload, occurred_at=now)
    loaded = await load_deal(session, deal.id)
    assert loaded is not None
    result = await deal_dict(session, loaded)
    events.emit(session, "deal.updated", {"deal": result}, scope=_scope(loaded))
    return result
