"""Who is this? A phone number, e-mail or Telegram account → every person it belongs to, with their
open deals.

This runs on every ringing call (the screen-pop) and must answer within a millisecond with a million
contact points, so it is built for speed: ONE indexed query (contact points by ``(kind, value)`` or
``tail``, joined to the owners' names and to the open deals of the matched clients and leads), plain
column rows, no ORM objects. The statement is compiled once per shape and dialect and run on the
driver connection (SQLAlchemy's async adapter costs several thread hops per statement on aiosqlite).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hub.crm import phones as phone_numbers
from hub.crm.contact_points import parse_telegram
from hub.crm.models import Client, ContactPerson, ContactPoint, Deal, Lead, Stage, User

MAX_ROWS = 1000  # matches × their open deals; a screen-pop needs no more
_TYPE_ORDER = {"client": 0, "contact": 1, "lead": 2, "user": 3}

_cp = ContactPoint.__table__
_clients = Client.__table__
_contacts = ContactPerson.__table__
_leads = Lead.__table__
_users = User.__table__
_d1 = Deal.__table__.alias("client_deal")
_s1 = Stage.__table__.alias("client_stage")
_d2 = Deal.__table__.alias("lead_deal")
_s2 = Stage.__table__.alias("lead_stage")

_ACTIVE_STAGES = select(Stage.__table__.c.id).where(Stage.__table__.c.kind == "active").scalar_subquery()

_MATCHES = (
    select(
        _cp.c.client_id, _cp.c.contact_id, _cp.c.lead_id, _cp.c.user_id,
        _clients.c.name, _contacts.c.name, _contacts.c.client_id, _leads.c.name,
        _leads.c.converted_client_id, _users.c.name, _users.c.active,
        _d1.c.id, _d1.c.title, _s1.c.name, _d1.c.amount_minor,
        _d2.c.id, _d2.c.title, _s2.c.name, _d2.c.amount_minor,
    )
    .select_from(
        _cp.outerjoin(_clients, _clients.c.id == _cp.c.client_id)
        .outerjoin(_contacts, _contacts.c.id == _cp.c.contact_id)
        .outerjoin(_leads, _leads.c.id == _cp.c.lead_id)
        .outerjoin(_users, _users.c.id == _cp.c.user_id)
        # open deals of the client (or of the contact person's client) ...
        .outerjoin(_d1, and_(_d1.c.client_id == func.coalesce(_cp.c.client_id, _contacts.c.client_id),
                             _d1.c.stage_id.in_(_ACTIVE_STAGES)))
        .outerjoin(_s1, _s1.c.id == _d1.c.stage_id)
        # ... or of the lead: a contact point has one owner, so only one of the two joins finds rows
        .outerjoin(_d2, and_(_d2.c.lead_id == _cp.c.lead_id, _d2.c.stage_id.in_(_ACTIVE_STAGES)))
        .outerjoin(_s2, _s2.c.id == _d2.c.stage_id)
    )
    .order_by(_cp.c.id, _d1.c.id, _d2.c.id)
    .limit(MAX_ROWS)
)

_BY_PHONE = and_(_cp.c.kind == "phone", _cp.c.value == bindparam("phone"))
_BY_TAIL = _cp.c.tail == bindparam("tail")
_BY_EMAIL = and_(_cp.c.kind == "email", _cp.c.value == bindparam("email"))
_BY_TELEGRAM = and_(_cp.c.kind == bindparam("tg_kind"), _cp.c.value == bindparam("tg_value"))
_CONDITIONS = {"phone": _BY_PHONE, "tail": _BY_TAIL, "email": _BY_EMAIL, "telegram": _BY_TELEGRAM}

# (dialect name, condition names) → (SQL text, bind names in order, constant bind values)
_compiled: dict[tuple[str, tuple[str, ...]], tuple[str, list[str], dict[str, Any]]] = {}


def amount(minor: int) -> int | float:
    """Kopecks → roubles as a JSON number (an integer when whole)."""
    return minor // 100 if minor % 100 == 0 else minor / 100


def _keys(phone: Any, email: Any, telegram: Any, region: str) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if isinstance(phone, str) and phone:
        e164, tail = phone_numbers.lookup_keys(phone, region)
        if e164:
            keys["phone"] = e164
        elif tail:
            keys["tail"] = tail
    if isinstance(email, str) and 0 < len(email) <= 320:
        keys["email"] = email.strip().lower()
    if telegram is not None and not isinstance(telegram, bool) and len(str(telegram)) <= 100:
        parsed = parse_telegram(str(telegram))
        if parsed:
            keys["tg_kind"], keys["tg_value"] = parsed
            keys["telegram"] = True
    return keys


async def _rows(conn: AsyncConnection, names: tuple[str, ...], keys: dict[str, Any]) -> list[Any]:
    statement = _MATCHES.where(or_(*(_CONDITIONS[n] for n in names)))
    dialect = conn.dialect
    if dialect.driver not in ("aiosqlite", "asyncpg"):
        params = {k: v for k, v in keys.items() if k != "telegram"}
        return list((await conn.execute(statement, params)).all())
    cache_key = (dialect.driver, names)
    if cache_key not in _compiled:
        compiled = statement.compile(dialect=dialect)
        _compiled[cache_key] = (str(compiled), list(compiled.positiontup or []), dict(compiled.params))
    sql, order, constants = _compiled[cache_key]
    args = [keys[n] if n in keys else constants[n] for n in order]
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a connection taken from the pool is open
    if dialect.driver == "aiosqlite":
        return list(await driver.execute_fetchall(sql, args))
    return list(await driver.fetch(sql, *args))


async def identify(session: AsyncSession, *, phone: str | None = None, email: str | None = None,
                   telegram: str | int | None = None, region: str = "RU") -> list[dict[str, Any]]:
    """``[{"type", "id", "name", "client_id", "open_deals": [{"id", "title", "stage", "amount"}]}]``.

    Clients first, then contact persons (with their client's open deals), leads not yet converted,
    then active users. A caller id that is not a valid number is matched on its last ten digits.
    """
    keys = _keys(phone, email, telegram, region)
    names = tuple(n for n in _CONDITIONS if n in keys)
    if not names:
        return []
    if session.new or session.dirty or session.deleted:
        await session.flush()  # the driver connection below does not autoflush
    rows = await _rows(await session.connection(), names, keys)

    matches: dict[tuple[str, int], dict[str, Any]] = {}
    for (client_id, contact_id, lead_id, user_id, client_name, contact_name, contact_client,
         lead_name, converted, user_name, user_active,
         d1_id, d1_title, d1_stage, d1_amount, d2_id, d2_title, d2_stage, d2_amount) in rows:
        if client_id is not None:
            key, name, owner_client = ("client", client_id), client_name, client_id
        elif contact_id is not None:
            key, name, owner_client = ("contact", contact_id), contact_name, contact_client
        elif lead_id is not None and converted is None:
            key, name, owner_client = ("lead", lead_id), lead_name, None
        elif user_id is not None and user_active:
            key, name, owner_client = ("user", user_id), user_name, None
        else:
            continue
        match = matches.get(key)
        if match is None:
            match = matches[key] = {"type": key[0], "id": key[1], "name": name, "client_id": owner_client,
                                    "open_deals": []}
        deal_id, title, stage, minor = ((d1_id, d1_title, d1_stage, d1_amount) if d1_id is not None
                                        else (d2_id, d2_title, d2_stage, d2_amount))
        if deal_id is not None and all(d["id"] != deal_id for d in match["open_deals"]):
            match["open_deals"].append({"id": deal_id, "title": title, "stage": stage,
                                        "amount": amount(minor)})
    return sorted(matches.values(), key=lambda m: (_TYPE_ORDER[m["type"]], m["id"]))
