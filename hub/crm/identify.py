"""Who is this? A phone number, e-mail or Telegram account → every person it belongs to, with their
open deals.

This runs on every ringing call (the screen-pop) and must answer within a millisecond with a million
contact points, so it is built for speed: ONE indexed query (contact points by ``(kind, value)`` or
``tail``, joined to the owners' names and to the open deals of the matched clients and leads), plain
column rows, no ORM objects. The statement is compiled once per shape and dialect and run on the
driver connection (SQLAlchemy's async adapter costs several thread hops per statement on aiosqlite).

``identify`` answers for the hub itself (the screen-pop of the rung agent, the intake of a message);
``identify_for`` answers a user (``GET /api/v1/identify``) by the access rules (``hub.crm.access``):
a client, contact person or lead the user may not open is reduced to ``{"type", "access": false}``
("a known person, not yours": no id, name or deals), and only the open deals the user may open are
listed. A person granted to the user (a call that rang them, a conversation assigned to them:
``access.granted_people``) is theirs to open, with its open deals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hub.crm import access
from hub.crm import phones as phone_numbers
from hub.crm.contact_points import parse_telegram
from hub.crm.models import Client, ContactPerson, ContactPoint, Deal, Lead, Stage, User
from hub.db import Reads, fetch

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
_owner = Client.__table__.alias("owner_client")  # the client, or the contact person's client

_ACTIVE_STAGES = select(Stage.__table__.c.id).where(Stage.__table__.c.kind == "active").scalar_subquery()

_MATCHES = (
    select(
        _cp.c.client_id, _cp.c.contact_id, _cp.c.lead_id, _cp.c.user_id,
        _clients.c.name, _contacts.c.name, _contacts.c.client_id, _leads.c.name,
        _leads.c.converted_client_id, _users.c.name, _users.c.active,
        _d1.c.id, _d1.c.title, _s1.c.name, _d1.c.amount_minor,
        _d2.c.id, _d2.c.title, _s2.c.name, _d2.c.amount_minor,
        # what the access rules look at (``identify_for``)
        _owner.c.manager_id, _leads.c.manager_id, _d1.c.responsible_id, _d2.c.responsible_id,
    )
    .select_from(
        _cp.outerjoin(_clients, _clients.c.id == _cp.c.client_id)
        .outerjoin(_contacts, _contacts.c.id == _cp.c.contact_id)
        .outerjoin(_leads, _leads.c.id == _cp.c.lead_id)
        .outerjoin(_users, _users.c.id == _cp.c.user_id)
        .outerjoin(_owner, _owner.c.id == func.coalesce(_cp.c.client_id, _contacts.c.client_id))
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

# (driver, condition names) → (SQL text, bind names in order, constant bind values)
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


async def _rows(conn: Reads, names: tuple[str, ...], keys: dict[str, Any]) -> list[Any]:
    statement = _MATCHES.where(or_(*(_CONDITIONS[n] for n in names)))
    dialect = conn.dialect
    if isinstance(conn, AsyncConnection) and dialect.driver not in ("aiosqlite", "asyncpg"):
        params = {k: v for k, v in keys.items() if k != "telegram"}
        return list((await conn.execute(statement, params)).all())
    cache_key = (dialect.driver, names)
    if cache_key not in _compiled:
        compiled = statement.compile(dialect=dialect)
        _compiled[cache_key] = (str(compiled), list(compiled.positiontup or []), dict(compiled.params))
    sql, order, constants = _compiled[cache_key]
    return await fetch(conn, sql, [keys[n] if n in keys else constants[n] for n in order])


async def identify(session: AsyncSession, *, phone: str | None = None, email: str | None = None,
                   telegram: str | int | None = None, region: str = "RU") -> list[dict[str, Any]]:
    """``[{"type", "id", "name", "client_id", "open_deals": [{"id", "title", "stage", "amount"}]}]``.

    Clients first, then contact persons (with their client's open deals), leads not yet converted,
    then active users. A caller id that is not a valid number is matched on its last ten digits.
    Everything found, whoever asks: for the hub's own use (see ``identify_for`` for a user).
    """
    return [m for m, _ in await _identify(session, phone, email, telegram, region)]


async def identify_on(conn: Reads, *, phone: str, region: str = "RU") -> list[dict[str, Any]]:
    """``identify`` of a phone number on a connection (no session: ``Database.quick_read``)."""
    return [m for m, _ in await _matches(conn, _keys(phone, None, None, region))]


async def identify_for(session: AsyncSession, user: User, *, phone: str | None = None,
                       email: str | None = None, telegram: str | int | None = None,
                       region: str = "RU") -> list[dict[str, Any]]:
    """``identify`` as ``user`` may see it: a client (or a client's contact person) or a lead the user
    may not open becomes ``{"type": ..., "access": false}`` — known, not theirs: no id, name or deals
    (one such entry per type); the open deals listed are only those the user may open. Colleagues
    (``user`` matches) are shown as they are. Staff, and everybody when ``agents_see_all`` is on, get
    ``identify``'s answer (with ``"access": true`` on every match)."""
    found = await _identify(session, phone, email, telegram, region)
    shared = access.sees_everything(user, False) or await access.agents_see_all(session)
    own_deal_clients: set[int] = set()
    granted_clients: set[int] = set()
    granted_leads: set[int] = set()
    if not shared and found:  # a call that rang them, a conversation assigned to them
        granted_clients, granted_leads = await access.granted_people(session, user)
    if not shared:
        candidates = {facts.client_id for m, facts in found
                      if facts.client_id is not None and not access.client_rule(user, facts.manager_id, False)
                      and user.id not in facts.deal_owners.values()}
        if candidates:  # a client is also theirs through a deal of theirs that is not open
            own_deal_clients = {c for c in (await session.scalars(
                select(Deal.client_id).where(Deal.client_id.in_(candidates), Deal.responsible_id == user.id)
                .distinct())).all() if c is not None}
    result: list[dict[str, Any]] = []
    hidden: set[str] = set()
    for match, facts in found:
        granted = False
        if match["type"] in ("client", "contact"):
            granted = facts.client_id in granted_clients
            allowed = granted or access.client_rule(user, facts.manager_id, shared,
                                                    facts.client_id in own_deal_clients
                                                    or user.id in facts.deal_owners.values())
        elif match["type"] == "lead":
            granted = match["id"] in granted_leads
            allowed = granted or access.lead_rule(user, facts.manager_id, shared)
        else:
            allowed = True
        if not allowed:
            if match["type"] not in hidden:
                hidden.add(match["type"])
                result.append({"type": match["type"], "access": False})
            continue
        deals = [d for d in match["open_deals"]  # (open: a granted person's are theirs to open)
                 if granted or access.deal_rule(user, facts.deal_owners.get(d["id"]), shared)]
        result.append({**match, "open_deals": deals, "access": True})
    return result


class _Facts:
    """What the access rules need about one match: its client's (or lead's) manager and the
    responsible users of its open deals."""

    __slots__ = ("client_id", "deal_owners", "manager_id")

    def __init__(self, client_id: int | None, manager_id: int | None) -> None:
        self.client_id = client_id
        self.manager_id = manager_id
        self.deal_owners: dict[int, int | None] = {}


async def _identify(session: AsyncSession, phone: Any, email: Any, telegram: Any,
                    region: str) -> list[tuple[dict[str, Any], _Facts]]:
    keys = _keys(phone, email, telegram, region)
    if not any(n in keys for n in _CONDITIONS):
        return []
    if session.new or session.dirty or session.deleted:
        await session.flush()  # the driver connection below does not autoflush
    return await _matches(await session.connection(), keys)


async def _matches(conn: Reads, keys: dict[str, Any]) -> list[tuple[dict[str, Any], _Facts]]:
    names = tuple(n for n in _CONDITIONS if n in keys)
    if not names:
        return []
    return _collect(await _rows(conn, names, keys))


def _collect(rows: Iterable[Any]) -> list[tuple[dict[str, Any], _Facts]]:
    """Rows of ``_MATCHES`` → the matches (a contact point of a converted lead or of an inactive user
    is none), with their open deals."""
    matches: dict[tuple[str, int], tuple[dict[str, Any], _Facts]] = {}
    for (client_id, contact_id, lead_id, user_id, client_name, contact_name, contact_client,
         lead_name, converted, user_name, user_active,
         d1_id, d1_title, d1_stage, d1_amount, d2_id, d2_title, d2_stage, d2_amount,
         owner_manager, lead_manager, d1_responsible, d2_responsible) in rows:
        if client_id is not None:
            key, name, owner_client, manager = ("client", client_id), client_name, client_id, owner_manager
        elif contact_id is not None:
            key, name, owner_client = ("contact", contact_id), contact_name, contact_client
            manager = owner_manager
        elif lead_id is not None and converted is None:
            key, name, owner_client, manager = ("lead", lead_id), lead_name, None, lead_manager
        elif user_id is not None and user_active:
            key, name, owner_client, manager = ("user", user_id), user_name, None, None
        else:
            continue
        found = matches.get(key)
        if found is None:
            found = matches[key] = ({"type": key[0], "id": key[1], "name": name, "client_id": owner_client,
                                     "open_deals": []}, _Facts(owner_client, manager))
        match, facts = found
        deal_id, title, stage, minor, responsible = (
            (d1_id, d1_title, d1_stage, d1_amount, d1_responsible) if d1_id is not None
            else (d2_id, d2_title, d2_stage, d2_amount, d2_responsible))
        if deal_id is not None and deal_id not in facts.deal_owners:
            facts.deal_owners[deal_id] = responsible
            match["open_deals"].append({"id": deal_id, "title": title, "stage": stage,
                                        "amount": amount(minor)})
    return sorted(matches.values(), key=lambda f: (_TYPE_ORDER[f[0]["type"]], f[0]["id"]))
