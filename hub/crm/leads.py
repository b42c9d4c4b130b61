"""Leads: people who got in touch but are not clients yet. Inbound leads nobody has taken are
"unsorted" (Не разобрано). Converting a lead makes it a client and moves its history along."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, audit, contact_points, duplicates, events, history, resources, search
from hub.crm.clients import (
    build_client,
    check_user_id,
    client_dicts,
    page_rows,
    phone_condition,
    read_points,
    user_ref,
)
from hub.crm.contacts import contact_dicts
from hub.crm.errors import Conflict, NotFound
from hub.crm.inputs import LeadIn, read
from hub.crm.models import Client, ContactPerson, ContactPoint, Deal, Lead, Task, TimelineEntry, User, utcnow
from hub.crm.paging import Page
from hub.crm.resources import Ref
from hub.crm.timeline import CompiledWrite
from hub.crm.validate import Fields, clean_text, iso
from hub.serialise import plain

MAX_COMMENT = 20_000
MAX_UTM_KEYS = 20


def _query() -> Select[Any]:
    return select(Lead).execution_options(populate_existing=True)


async def _load(session: AsyncSession, lead_id: Any) -> Lead | None:
    if isinstance(lead_id, bool) or not isinstance(lead_id, int) or not 0 < lead_id < 2**62:
        return None
    return (await session.scalars(_query().where(Lead.id == lead_id))).one_or_none()


NO_POINTS: Mapping[str, Any] = {"phones": [], "emails": [], "telegram": [], "bounced_emails": {}}


def lead_shape(*, id: int | None, name: str, source: str, comment: str, utm: Mapping[str, str] | None,
               unsorted: bool, created_at: datetime | None, manager_id: int | None = None,
               manager: Ref | None = None, converted_client_id: int | None = None,
               converted_at: datetime | None = None, points: Mapping[str, Any] = NO_POINTS,
               rejected_at: datetime | None = None, rejected_reason: str = "") -> dict[str, Any]:
    """A lead as the API, the events and the screen-pop show it: the one place its shape is written.
    ``points``: its contact points as ``contact_points.of`` gives them."""
    return plain(resources.Lead(
        id=id, name=name, source=source, manager_id=manager_id, manager=manager, comment=comment,
        utm=dict(utm or {}), unsorted=unsorted, converted_client_id=converted_client_id,
        converted_at=iso(converted_at), phones=list(points["phones"]), emails=list(points["emails"]),
        telegram=list(points["telegram"]), bounced_emails=dict(points["bounced_emails"]),
        created_at=iso(created_at), rejected_at=iso(rejected_at), rejected_reason=rejected_reason))


def lead_shape_of(lead: Lead, points: Mapping[str, Any] = NO_POINTS,
                  manager: Ref | None = None) -> dict[str, Any]:
    return lead_shape(id=lead.id, name=lead.name, source=lead.source, comment=lead.comment, utm=lead.utm,
                      unsorted=lead.unsorted, created_at=lead.created_at, manager_id=lead.manager_id,
                      manager=manager, converted_client_id=lead.converted_client_id,
                      converted_at=lead.converted_at, points=points, rejected_at=lead.rejected_at,
                      rejected_reason=lead.rejected_reason or "")


async def lead_dicts(session: AsyncSession, leads: list[Lead]) -> list[dict[str, Any]]:
    points = await contact_points.of(session, "lead_id", [x.id for x in leads])
    manager_ids = {x.manager_id for x in leads if x.manager_id is not None}
    managers = {u.id: u for u in (await session.scalars(
        select(User).where(User.id.in_(manager_ids)))).all()} if manager_ids else {}
    return [lead_shape_of(x, points[x.id], user_ref(managers.get(x.manager_id)) if x.manager_id else None)
            for x in leads]


def _scope(lead: dict[str, Any]) -> dict[str, Any]:
    return {"manager_id": lead["manager_id"], "unassigned": lead["manager_id"] is None}


def _utm(v: Fields) -> dict[str, str] | None:
    raw = v.mapping("utm")
    if raw is None:
        return None
    if len(raw) > MAX_UTM_KEYS:
        v.fail("utm", f"must have at most {MAX_UTM_KEYS} keys")
        return None
    result = {}
    for key, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, str) or clean_text(value) or clean_text(key) or len(value) > 300 \
                or len(key) > 64:
            v.fail("utm", "must map short names to strings of at most 300 characters")
            return None
        result[key] = value
    return result


def _read(v: Fields) -> dict[str, Any]:
    values = read(v, LeadIn)
    if values.get("unsorted", False) is None:
        del values["unsorted"]
    utm = _utm(v)
    if utm is not None:
        values["utm"] = utm
    return values


async def create_lead(session: AsyncSession, actor: User | None, data: Any,
                      region: str = "RU") -> dict[str, Any]:
    """``actor`` None: created by a channel (an inbound call or message) — unassigned and unsorted
    unless the body says otherwise; a person's lead is theirs unless ``manager_id`` says otherwise."""
    v = Fields(data)
    values = _read(v)
    given, manager_id = await check_user_id(session, v, "manager_id")
    points = read_points(v, region)
    v.check()
    await duplicates.check(session, actor, v, inn=None, points=points)
    if not given:
        manager_id = actor.id if actor is not None else None
    values.setdefault("unsorted", actor is None and manager_id is None)
    lead = Lead(**values, manager_id=manager_id)
    session.add(lead)
    await session.flush()
    await contact_points.store(session, "lead_id", lead.id, points)
    history.created(session, actor, "lead", lead.id, lead.name)
    result = (await lead_dicts(session, [lead]))[0]
    events.emit(session, "lead.created", {"lead": result}, scope=_scope(result))
    return result


def _insert_all(table: Any, *names: str) -> CompiledWrite:
    return CompiledWrite(lambda insert_: insert_(table).values(
        **{name: bindparam(name, type_=table.c[name].type) for name in names}))


_NEW_LEAD = CompiledWrite(lambda insert_: insert_(Lead.__table__).values(**{
    name: bindparam(name, type_=Lead.__table__.c[name].type)
    for name in ("name", "source", "comment", "utm", "unsorted", "manager_id", "converted_client_id",
                 "converted_at", "created_at", "rejected_reason")}).returning(Lead.__table__.c.id))
_NEW_POINT = _insert_all(ContactPoint.__table__, "kind", "value", "tail", "raw", "label", "client_id",
                         "contact_id", "lead_id", "user_id", "created_at")


async def create_channel_lead(session: AsyncSession, data: Any, region: str = "RU") -> dict[str, Any]:
    """``create_lead`` for a channel (no actor): the same checks, row and ``lead.created`` (the same
    shape), in two INSERTs instead of five statements — a brand-new lead has no contact points to
    replace, and what ``lead_dicts`` would read back is what was just written. No ``created`` entry in
    its history (a third statement on the intake's path): its first message in the timeline tells it."""
    v = Fields(data)
    values = _read(v)
    given, manager_id = await check_user_id(session, v, "manager_id")
    points = read_points(v, region)
    v.check()
    if given and manager_id is not None:
        return await create_lead(session, None, data, region=region)
    values.setdefault("unsorted", True)
    values.setdefault("utm", {})
    now = utcnow()
    inserted = await _NEW_LEAD.first(session, name=values["name"], source=values.get("source", ""),
                                     comment=values.get("comment", ""), utm=values["utm"],
                                     unsorted=values["unsorted"], manager_id=None, converted_client_id=None,
                                     converted_at=None, created_at=now, rejected_reason="")
    assert inserted is not None
    lead_id = inserted[0]
    rows: list[dict[str, Any]] = []
    for value, tail, raw in points.phones or ():
        rows.append({"kind": "phone", "value": value, "tail": tail, "raw": raw})
    for value, raw in points.emails or ():
        rows.append({"kind": "email", "value": value, "tail": None, "raw": raw})
    for kind, value, raw in points.telegram or ():
        rows.append({"kind": kind, "value": value, "tail": None, "raw": raw})
    for row in rows:
        await _NEW_POINT.first(session, **row, label="", client_id=None, contact_id=None, lead_id=lead_id,
                               user_id=None, created_at=now)
    result = lead_shape(
        id=lead_id, name=values["name"], source=values.get("source", ""), comment=values.get("comment", ""),
        utm=values["utm"], unsorted=values["unsorted"], created_at=now, points={
            "phones": [row["value"] for row in rows if row["kind"] == "phone"],
            "emails": [row["value"] for row in rows if row["kind"] == "email"],
            "telegram": [("@" if row["kind"] == "telegram_username" else "") + row["value"] for row in rows
                         if row["kind"] in ("telegram_id", "telegram_username")],
            "bounced_emails": {}})
    events.emit(session, "lead.created", {"lead": result}, scope=_scope(result))
    return result


async def get_lead(session: AsyncSession, actor: User, lead_id: Any) -> dict[str, Any]:
    lead = await access.visible(session, actor, await _load(session, lead_id), "lead")
    return (await lead_dicts(session, [lead]))[0]


async def update_lead(session: AsyncSession, actor: User, lead_id: Any, data: Any,
                      region: str = "RU") -> dict[str, Any]:
    lead = await access.visible(session, actor, await _load(session, lead_id), "lead")
    v = Fields(data, partial=True)
    values = _read(v)
    given, manager_id = await check_user_id(session, v, "manager_id")
    points = read_points(v, region)
    v.check()
    before = history.lead_values((await lead_dicts(session, [lead]))[0])
    await duplicates.check(session, actor, v, inn=None, points=points, own=duplicates.Own(lead_id=lead.id),
                           known=await duplicates.stored(session, "lead_id", lead.id))
    for name, value in values.items():
        setattr(lead, name, value)
    if given:
        lead.manager_id = manager_id
        if manager_id is not None and "unsorted" not in values:
            lead.unsorted = False  # somebody took it
            lead.rejected_at, lead.rejected_reason = None, ""  # …and works on it again
    await session.flush()
    await contact_points.store(session, "lead_id", lead.id, points)
    result = (await lead_dicts(session, [lead]))[0]
    history.record(session, actor, "lead", lead.id, before, history.lead_values(result))
    events.emit(session, "lead.updated", {"lead": result}, scope=_scope(result))
    return result


async def delete_lead(session: AsyncSession, actor: User, lead_id: Any) -> None:
    lead = await access.visible(session, actor, await _load(session, lead_id), "lead")
    access.require_staff(actor)
    data = {"id": lead.id, "name": lead.name, "manager_id": lead.manager_id}
    await history.forget(session, "lead", [lead.id])
    await session.execute(delete(Lead).where(Lead.id == lead.id),
                          execution_options={"synchronize_session": False})
    session.expunge(lead)
    audit.record(session, "lead_deleted", actor=actor, target=("lead", lead.id),
                 details={"name": data["name"]})
    events.emit(session, "lead.deleted", {"lead": data}, scope=_scope(data))


async def reject_lead(session: AsyncSession, actor: User, lead_id: Any, data: Any) -> dict[str, Any]:
    """Out of Unsorted for good (spam, a wrong number, not a customer), with the reason; taking the
    lead later brings it back. A converted lead is a client already: Conflict."""
    lead = await access.visible(session, actor, await _load(session, lead_id), "lead")
    v = Fields(data)
    reason = v.text("reason", max_len=300, required=True)
    v.check()
    if lead.converted_client_id is not None:
        raise Conflict("the lead is converted already")
    before = history.lead_values((await lead_dicts(session, [lead]))[0])
    lead.rejected_at, lead.rejected_reason, lead.unsorted = utcnow(), reason, False
    await session.flush()
    result = (await lead_dicts(session, [lead]))[0]
    history.record(session, actor, "lead", lead.id, before, history.lead_values(result))
    events.emit(session, "lead.updated", {"lead": result}, scope=_scope(result))
    return result


async def count_unsorted(session: AsyncSession, actor: User) -> int:
    """How many leads wait in Unsorted for this user (what they may see)."""
    stmt = (select(func.count()).select_from(Lead)
            .where(Lead.unsorted.is_(True), await access.leads_filter(session, actor)))
    return int(await session.scalar(stmt) or 0)


async def list_leads(session: AsyncSession, actor: User, *, q: str | None = None,
                     unsorted: bool | None = None, manager_id: int | None = None,
                     cursor: str | None = None, limit: int | None = None, region: str = "RU") -> Page:
    stmt = _query().where(await access.leads_filter(session, actor))
    if unsorted is not None:
        stmt = stmt.where(Lead.unsorted.is_(unsorted))
    if manager_id is not None:
        stmt = stmt.where(Lead.manager_id == manager_id)
    if q:
        q = q.strip()
        if clean_text(q) or len(q) > 300:
            return Page([], None)
        conditions = [search.contains(Lead.name, q)]
        point = phone_condition(q, region)
        if "@" in q:
            point = (ContactPoint.kind == "email") & (ContactPoint.value == q.lower())
        if point is not None:
            conditions.append(Lead.id.in_(select(ContactPoint.lead_id).where(point)))
        stmt = stmt.where(or_(*conditions))
    rows, next_cursor = await page_rows(session, stmt, Lead.id, cursor, limit)
    return Page(await lead_dicts(session, rows), next_cursor)


async def _record_deals_moved(session: AsyncSession, actor: User, lead_id: int, client: Client,
                              contact: ContactPerson | None) -> None:
    """The history of the lead's deals: they get the new client (and its contact person)."""
    rows = await session.execute(
        select(Deal.id, Deal.client_id, Client.name, Deal.contact_id)
        .outerjoin(Client, Client.id == Deal.client_id).where(Deal.lead_id == lead_id))
    for deal_id, old_id, old_name, contact_id in rows.all():
        before: dict[str, Any] = {"client": {"id": old_id, "name": old_name} if old_id else None}
        after: dict[str, Any] = {"client": {"id": client.id, "name": client.name}}
        if contact is not None and contact_id is None:
            after["contact"] = {"id": contact.id, "name": contact.name}
        history.record(session, actor, "deal", deal_id, before, after)


async def convert_lead(session: AsyncSession, actor: User, lead_id: Any, data: Any,
                       region: str = "RU") -> dict[str, Any]:
    """Lead → client (kind "person" unless the body says otherwise; name, manager and the body's client
    fields as in ``create_client``), plus a contact person when the body has ``contact_name``.
    The lead's phones, e-mails and Telegram accounts move to the client; its deals, timeline and tasks
    get the client (deals keep their ``lead_id``). Converting twice → Conflict."""
    lead = await access.visible(session, actor, await _load(session, lead_id), "lead")
    if data is None:
        data = {}
    body = Fields(data)  # rejects a non-object body
    body_data = dict(body.data)
    body_data.setdefault("name", lead.name)
    body_data.setdefault("kind", "person")
    if "manager_id" not in body_data:
        body_data["manager_id"] = lead.manager_id if lead.manager_id is not None else actor.id
    for key in ("phones", "emails", "telegram"):
        body_data.pop(key, None)
    v = Fields(body_data)
    contact_name = v.text("contact_name", max_len=300)
    contact_position = v.text("contact_position", max_len=200)
    if lead.converted_at is not None or lead.converted_client_id is not None:
        raise Conflict("the lead is converted already")
    before = history.lead_values((await lead_dicts(session, [lead]))[0])

    client, _ = await build_client(session, actor, v, region, points=False)
    # Of two concurrent conversions only one updates the row; the other fails and rolls back.
    claimed = await session.execute(
        update(Lead).where(Lead.id == lead.id, Lead.converted_at.is_(None))
        .values(converted_at=utcnow(), converted_client_id=client.id, unsorted=False),
        execution_options={"synchronize_session": False},
    )
    # AsyncSession.execute is typed to return Result; for a DML statement it is a CursorResult
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("the lead is converted already")

    contact = None
    if contact_name:
        contact = ContactPerson(client_id=client.id, name=contact_name, position=contact_position)
        session.add(contact)
        await session.flush()

    plain = {"synchronize_session": False}
    await _record_deals_moved(session, actor, lead.id, client, contact)
    await session.execute(update(ContactPoint).where(ContactPoint.lead_id == lead.id)
                          .values(lead_id=None, client_id=client.id), execution_options=plain)
    await session.execute(update(Deal).where(Deal.lead_id == lead.id).values(client_id=client.id),
                          execution_options=plain)
    if contact is not None:
        await session.execute(update(Deal).where(Deal.lead_id == lead.id, Deal.contact_id.is_(None))
                              .values(contact_id=contact.id), execution_options=plain)
    await session.execute(update(TimelineEntry).where(TimelineEntry.lead_id == lead.id)
                          .values(client_id=client.id), execution_options=plain)
    await session.execute(update(Task).where(Task.lead_id == lead.id, Task.client_id.is_(None))
                          .values(client_id=client.id), execution_options=plain)

    reloaded = await _load(session, lead.id)
    if reloaded is None:  # pragma: no cover - deleted under our feet
        raise NotFound("lead not found")
    lead = reloaded
    loaded = (await session.scalars(
        select(Client).options(selectinload(Client.tags), selectinload(Client.manager))
        .where(Client.id == client.id).execution_options(populate_existing=True))).one()
    client_dict = (await client_dicts(session, [loaded]))[0]
    contact_dict = (await contact_dicts(session, [contact]))[0] if contact is not None else None
    lead_dict = (await lead_dicts(session, [lead]))[0]
    history.record(session, actor, "lead", lead.id, before, {
        **history.lead_values(lead_dict), "converted_client": {"id": client.id, "name": client.name}})
    events.emit(session, "client.created", {"client": client_dict},
                scope={"manager_id": client_dict["manager_id"]})
    events.emit(session, "lead.updated", {"lead": lead_dict}, scope=_scope(lead_dict))
    return {"client": client_dict, "contact": contact_dict}
