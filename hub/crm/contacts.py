"""Contact persons: the people at a client we talk to. Whoever may see the client may manage them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, contact_points, duplicates, events, history, resources, search
from hub.crm.clients import page_rows, phone_condition, read_points, require_client
from hub.crm.errors import NotFound
from hub.crm.inputs import ContactIn, read
from hub.crm.models import Client, ContactPerson, ContactPoint, User
from hub.crm.paging import Page
from hub.crm.validate import Fields, clean_text, iso
from hub.serialise import plain

MAX_COMMENT = 20_000


async def contact_dicts(session: AsyncSession, contacts: list[ContactPerson]) -> list[dict[str, Any]]:
    points = await contact_points.of(session, "contact_id", [c.id for c in contacts])
    return [plain(resources.Contact(id=c.id, client_id=c.client_id, name=c.name, position=c.position,
                                    comment=c.comment, **points[c.id], created_at=iso(c.created_at)))
            for c in contacts]


async def _load(session: AsyncSession, actor: User, contact_id: Any) -> tuple[ContactPerson, Client]:
    if isinstance(contact_id, bool) or not isinstance(contact_id, int) or not 0 < contact_id < 2**62:
        raise NotFound("contact not found")
    contact = await session.get(ContactPerson, contact_id, populate_existing=True)
    if contact is None:
        raise NotFound("contact not found")
    client = await session.get(Client, contact.client_id)
    if client is None or not await access.can_see_client(session, actor, client):
        raise NotFound("contact not found")
    return contact, client


def _read(v: Fields) -> dict[str, Any]:
    return read(v, ContactIn)


async def _client_for(session: AsyncSession, actor: User, v: Fields) -> Client | None:
    client_id = v.id("client_id", required=not v.partial)
    if client_id is None:
        return None
    try:
        return await require_client(session, actor, client_id)
    except NotFound:
        v.fail("client_id", "no such client")
        return None


def _emit(session: AsyncSession, name: str, contact: dict[str, Any], client: Client) -> None:
    events.emit(session, name, {"contact": contact}, scope={"manager_id": client.manager_id})


async def create_contact(session: AsyncSession, actor: User, data: Any, region: str = "RU") -> dict[str, Any]:
    v = Fields(data)
    client = await _client_for(session, actor, v)
    values = _read(v)
    points = read_points(v, region)
    v.check()
    assert client is not None
    await duplicates.check(session, actor, v, inn=None, points=points,
                           own=duplicates.Own(client_id=client.id))
    contact = ContactPerson(client_id=client.id, **values)
    session.add(contact)
    await session.flush()
    await contact_points.store(session, "contact_id", contact.id, points)
    history.created(session, actor, "contact", contact.id, contact.name)
    result = (await contact_dicts(session, [contact]))[0]
    _emit(session, "contact.created", result, client)
    return result


async def get_contact(session: AsyncSession, actor: User, contact_id: Any) -> dict[str, Any]:
    contact, _ = await _load(session, actor, contact_id)
    return (await contact_dicts(session, [contact]))[0]


async def update_contact(session: AsyncSession, actor: User, contact_id: Any, data: Any,
                         region: str = "RU") -> dict[str, Any]:
    contact, client = await _load(session, actor, contact_id)
    v = Fields(data, partial=True)
    new_client = await _client_for(session, actor, v) if v.has("client_id") else None
    values = _read(v)
    points = read_points(v, region)
    v.check()
    before = history.contact_values((await contact_dicts(session, [contact]))[0], client)
    household = new_client.id if new_client is not None else client.id
    known = await duplicates.stored(session, "contact_id", contact.id)
    await duplicates.check(session, actor, v, inn=None, points=points,
                           own=duplicates.Own(client_id=household), known=known)
    for name, value in values.items():
        setattr(contact, name, value)
    if new_client is not None:
        contact.client_id, client = new_client.id, new_client
    await session.flush()
    await contact_points.store(session, "contact_id", contact.id, points)
    result = (await contact_dicts(session, [contact]))[0]
    history.record(session, actor, "contact", contact.id, before, history.contact_values(result, client))
    _emit(session, "contact.updated", result, client)
    return result


async def delete_contact(session: AsyncSession, actor: User, contact_id: Any) -> None:
    contact, client = await _load(session, actor, contact_id)
    data = {"id": contact.id, "client_id": contact.client_id, "name": contact.name}
    await history.forget(session, "contact", [contact.id])
    await session.execute(delete(ContactPerson).where(ContactPerson.id == contact.id),
                          execution_options={"synchronize_session": False})
    session.expunge(contact)
    _emit(session, "contact.deleted", data, client)


async def list_contacts(session: AsyncSession, actor: User, *, client_id: int | None = None,
                        q: str | None = None, cursor: str | None = None, limit: int | None = None,
                        region: str = "RU") -> Page:
    stmt = (select(ContactPerson).join(Client, Client.id == ContactPerson.client_id)
            .where(await access.clients_filter(session, actor)))
    if client_id is not None:
        stmt = stmt.where(ContactPerson.client_id == client_id)
    if q:
        q = q.strip()
        if clean_text(q) or len(q) > 300:
            return Page([], None)
        conditions = [search.contains(ContactPerson.name, q)]
        point = phone_condition(q, region)
        if "@" in q:
            point = (ContactPoint.kind == "email") & (ContactPoint.value == q.lower())
        if point is not None:
            conditions.append(ContactPerson.id.in_(select(ContactPoint.contact_id).where(point)))
        stmt = stmt.where(or_(*conditions))
    rows, next_cursor = await page_rows(session, stmt, ContactPerson.id, cursor, limit)
    return Page(await contact_dicts(session, rows), next_cursor)
