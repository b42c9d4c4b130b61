"""Clients (companies and people who buy, sell or partner with us)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, delete, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, audit, contact_points, duplicates, events, history, resources, search
from hub.crm.errors import Forbidden, NotFound
from hub.crm.inn import check_inn, check_kpp, check_okpo
from hub.crm.inputs import ClientIn, read
from hub.crm.models import (
    Client,
    ContactPerson,
    ContactPoint,
    CustomField,
    Tag,
    User,
    client_tags,
    utcnow,
)
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.resources import Ref
from hub.crm.validate import Fields, clean_text, iso, parse_date
from hub.serialise import plain

MAX_COMMENT = 20_000
MAX_CUSTOM_TEXT = 2_000


# --- helpers shared by the people services ----------------------------------------------------------

def user_ref(user: User | None) -> Ref | None:
    return None if user is None else Ref(id=user.id, name=user.name)


async def check_user_id(session: AsyncSession, v: Fields, name: str) -> tuple[bool, int | None]:
    """Read a user reference (``manager_id`` ...): ``(given, id)``; an unknown or inactive user → 422."""
    if not v.has(name):
        return False, None
    if v.data.get(name) is None:
        return True, None
    user_id = v.id(name)
    if user_id is None:
        return True, None
    user = await session.get(User, user_id)
    if user is None or not user.active:
        v.fail(name, "no such user")
        return True, None
    return True, user_id


def add_point_errors(v: Fields, points: contact_points.Normalised) -> None:
    for key, reason in points.errors.items():
        v.fail(key, reason)


def read_points(v: Fields, region: str) -> contact_points.Normalised:
    points = contact_points.normalise(v.data.get("phones"), v.data.get("emails"), v.data.get("telegram"),
                                      region)
    add_point_errors(v, points)
    return points


def phone_condition(q: str, region: str) -> ColumnElement[bool] | None:
    """Contact points matching a phone-looking search text (E.164, or the last ten digits)."""
    condition = search.contact_point_match(q, region)
    return condition if search.PHONE_LIKE.fullmatch(q) else None


async def page_rows(session: AsyncSession, stmt: Select[Any], id_column: Any, cursor: str | None,
                    limit: int | None) -> tuple[list[Any], str | None]:
    size = clamp_limit(limit)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column < after)
    rows = list((await session.scalars(stmt.order_by(id_column.desc()).limit(size + 1))).all())
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)


# --- clients ------------------------------------------------------------------------------------------

def _read(v: Fields) -> dict[str, Any]:
    """The plain columns present in the body (all of them on create)."""
    values = read(v, ClientIn)
    for name, check, size in (("inn", check_inn, 12), ("kpp", check_kpp, 9), ("okpo", check_okpo, 10)):
        if v.partial and not v.has(name):
            continue
        code = v.text(name, max_len=40)
        if code and not v.errors.get(name):
            code = code.replace(" ", "")
            reason = check(code)
            if reason:
                v.fail(name, reason)
        values[name] = code[:size] or None
    return values


async def _custom(session: AsyncSession, v: Fields, entity: str,
                  current: dict[str, Any]) -> dict[str, Any] | None:
    raw = v.mapping("custom")
    if raw is None:
        return None
    fields = {f.key: f for f in (await session.scalars(
        select(CustomField).where(CustomField.entity == entity))).all()}
    result = dict(current)
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            v.fail("custom", f"unknown field '{str(key).replace(chr(0), '')[:64]}'")
            continue
        name = f"custom.{key}"
        if value is None or value == "":
            result.pop(key, None)
        elif field.type == "text":
            if not isinstance(value, str) or clean_text(value) or len(value) > MAX_CUSTOM_TEXT:
                v.fail(name, f"must be a string of at most {MAX_CUSTOM_TEXT} characters without NUL")
            else:
                result[key] = value
        elif field.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
                    or value in (float("inf"), float("-inf")) or abs(value) >= 1e15:
                v.fail(name, "must be a number")
            else:
                result[key] = value
        elif field.type == "date":
            parsed = _date(value)
            if parsed is None:
                v.fail(name, "must be a date (YYYY-MM-DD)")
            else:
                result[key] = parsed
        elif field.type == "choice":
            if not isinstance(value, str) or value not in (field.choices or []):
                v.fail(name, "must be one of the field's choices")
            else:
                result[key] = value
    return result


def _date(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    parsed = parse_date(value)
    return parsed.isoformat() if parsed is not None else None


async def tags_named(session: AsyncSession, names: list[str]) -> list[Tag]:
    """The tags with these names, creating the missing ones."""
    names = list(dict.fromkeys(names))
    if not names:
        return []
    found = {t.name: t for t in (await session.scalars(select(Tag).where(Tag.name.in_(names)))).all()}
    for name in names:
        if name not in found:
            found[name] = Tag(name=name)
            session.add(found[name])
    await session.flush()
    return [found[n] for n in names]


def _query() -> Select[Any]:
    return select(Client).options(selectinload(Client.tags), selectinload(Client.manager)) \
        .execution_options(populate_existing=True)


async def _load(session: AsyncSession, client_id: Any) -> Client | None:
    if isinstance(client_id, bool) or not isinstance(client_id, int) or not 0 < client_id < 2**62:
        return None
    return (await session.scalars(_query().where(Client.id == client_id))).one_or_none()


async def client_dicts(session: AsyncSession, clients: list[Client]) -> list[dict[str, Any]]:
    points = await contact_points.of(session, "client_id", [c.id for c in clients])
    return [_dict(c, points[c.id]) for c in clients]


def _dict(c: Client, points: dict[str, Any]) -> dict[str, Any]:
    return plain(resources.Client(
        id=c.id, kind=c.kind, name=c.name, full_name=c.full_name, inn=c.inn, kpp=c.kpp, okpo=c.okpo,
        manager_id=c.manager_id, manager=user_ref(c.manager), relationship_type=c.relationship_type,
        region=c.region, industry=c.industry, comment=c.comment, tags=[t.name for t in c.tags],
        custom=dict(c.custom or {}), **points, created_at=iso(c.created_at), updated_at=iso(c.updated_at)))


async def _fresh_dict(session: AsyncSession, client_id: int) -> dict[str, Any]:
    client = await _load(session, client_id)
    assert client is not None
    return (await client_dicts(session, [client]))[0]


async def build_client(session: AsyncSession, actor: User, v: Fields, region: str, *,
                       points: bool = True) -> tuple[Client, contact_points.Normalised]:
    """Validate a create body and add the client (flushed); contact points are stored too unless
    ``points`` is False (a lead conversion moves the lead's own, and is not checked for duplicates)."""
    values = _read(v)
    given, manager_id = await check_user_id(session, v, "manager_id")
    cps = read_points(v, region) if points else contact_points.Normalised()
    custom = await _custom(session, v, "client", {})
    tag_names = v.strings("tags", max_len=100)
    v.check()
    if points:
        await duplicates.check(session, actor, v, inn=values.get("inn"), points=cps)
    client = Client(**values, manager_id=manager_id if given else actor.id, custom=custom or {})
    client.tags = await tags_named(session, tag_names or [])
    session.add(client)
    await session.flush()
    await contact_points.store(session, "client_id", client.id, cps)
    history.created(session, actor, "client", client.id, client.name)
    return client, cps


async def create_client(session: AsyncSession, actor: User, data: Any, region: str = "RU") -> dict[str, Any]:
    client, _ = await build_client(session, actor, Fields(data), region)
    result = await _fresh_dict(session, client.id)
    events.emit(session, "client.created", {"client": result}, scope={"manager_id": result["manager_id"]})
    return result


async def get_client(session: AsyncSession, actor: User, client_id: Any) -> dict[str, Any]:
    client = await access.visible(session, actor, await _load(session, client_id), "client")
    return (await client_dicts(session, [client]))[0]


async def update_client(session: AsyncSession, actor: User, client_id: Any, data: Any,
                        region: str = "RU") -> dict[str, Any]:
    client = await access.visible(session, actor, await _load(session, client_id), "client")
    v = Fields(data, partial=True)
    values = _read(v)
    given, manager_id = await check_user_id(session, v, "manager_id")
    cps = read_points(v, region)
    custom = await _custom(session, v, "client", client.custom or {})
    tag_names = v.strings("tags", max_len=100)
    if v.has("tags") and v.data.get("tags") is None:
        tag_names = []
    v.check()
    known = await duplicates.stored(session, "client_id", client.id) | {client.inn or ""}
    await duplicates.check(session, actor, v, inn=values.get("inn"), points=cps,
                           own=duplicates.Own(client_id=client.id), known=known)
    if given and manager_id != client.manager_id and not access.is_staff(actor) \
            and client.manager_id != actor.id:
        # seeing a client (through a deal of one's own on it, or by sharing) is not owning it
        raise Forbidden("only the client's manager, a manager or an administrator may change its manager")
    before = history.client_values((await client_dicts(session, [client]))[0])
    for name, value in values.items():
        setattr(client, name, value)
    if given:
        client.manager_id = manager_id
    if custom is not None:
        client.custom = custom
    if tag_names is not None:
        client.tags = await tags_named(session, tag_names)
    client.updated_at = utcnow()
    await session.flush()
    await contact_points.store(session, "client_id", client.id, cps)
    result = await _fresh_dict(session, client.id)
    history.record(session, actor, "client", client.id, before, history.client_values(result))
    events.emit(session, "client.updated", {"client": result}, scope={"manager_id": result["manager_id"]})
    return result


async def delete_client(session: AsyncSession, actor: User, client_id: Any) -> None:
    client = await access.visible(session, actor, await _load(session, client_id), "client")
    access.require_staff(actor)
    data = {"id": client.id, "name": client.name, "manager_id": client.manager_id}
    await history.forget(session, "contact", (await session.scalars(
        select(ContactPerson.id).where(ContactPerson.client_id == client.id))).all())
    await history.forget(session, "client", [client.id])
    await session.execute(delete(Client).where(Client.id == client.id),
                          execution_options={"synchronize_session": False})
    session.expunge(client)
    audit.record(session, "client_deleted", actor=actor, target=("client", client.id),
                 details={"name": data["name"]})
    events.emit(session, "client.deleted", {"client": data}, scope={"manager_id": data["manager_id"]})


async def search_condition(session: AsyncSession, q: str, region: str) -> ColumnElement[bool]:
    """Clients whose name contains ``q``, or with this phone / e-mail (also via their contact persons),
    or whose INN starts with ``q``."""
    q = q.strip()
    if not q or clean_text(q) or len(q) > 300:
        return false()
    conditions = [search.contains(Client.name, q)]
    point = phone_condition(q, region)
    if "@" in q:
        point = (ContactPoint.kind == "email") & (ContactPoint.value == q.lower())
    if point is not None:
        conditions.append(Client.id.in_(select(ContactPoint.client_id).where(point)))
        conditions.append(Client.id.in_(
            select(ContactPerson.client_id).join(ContactPoint, ContactPoint.contact_id == ContactPerson.id)
            .where(point)))
    if q.isascii() and q.isdecimal() and 4 <= len(q) <= 12:
        conditions.append(Client.inn.startswith(q))
    return or_(*conditions)


async def list_clients(session: AsyncSession, actor: User, *, q: str | None = None,
                       manager_id: int | None = None, tag: str | None = None,
                       region_name: str | None = None, cursor: str | None = None,
                       limit: int | None = None, region: str = "RU") -> Page:
    stmt = _query().where(await access.clients_filter(session, actor))
    if q:
        stmt = stmt.where(await search_condition(session, q, region))
    if manager_id is not None:
        stmt = stmt.where(Client.manager_id == manager_id)
    if tag:
        stmt = stmt.where(Client.id.in_(
            select(client_tags.c.client_id).join(Tag, Tag.id == client_tags.c.tag_id).where(Tag.name == tag)))
    if region_name:
        stmt = stmt.where(Client.region == region_name)
    rows, next_cursor = await page_rows(session, stmt, Client.id, cursor, limit)
    return Page(await client_dicts(session, rows), next_cursor)


async def require_client(session: AsyncSession, actor: User, client_id: Any) -> Client:
    """A client the actor may see, for other services (NotFound otherwise)."""
    client = await _load(session, client_id)
    if client is None:
        raise NotFound("client not found")
    return await access.visible(session, actor, client, "client")
