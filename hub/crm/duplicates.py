"""Duplicates: a client, contact person or lead whose INN, phone or e-mail is already another's.

Creating or changing one into a duplicate raises ``DuplicateFound`` (409 ``duplicate``) unless the
body says ``"allow_duplicate": true`` — which only managers and administrators may say. A contact
person shares its client's phone (a switchboard) as a matter of course: the points of the same
client and of its contact persons do not count. A duplicate the actor may not see still blocks, but
is shown by its type only, as identify does (see docs/decisions.md).

``likely_pairs`` lists the clients that look like one another (same INN, phone, e-mail or
normalised name), grouped in SQL so it stays cheap on big tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access
from hub.crm.contact_points import Normalised
from hub.crm.errors import DuplicateFound, Forbidden
from hub.crm.models import Client, ContactPerson, ContactPoint, Lead, User
from hub.crm.validate import Fields

MAX_SHOWN = 10
PAIRS_LIMIT = 200

@dataclass(frozen=True)
class Own:
    """What the record being checked is, so that it and its household do not match themselves:
    ``client_id`` — the client (or the contact person's client) whose points and contacts' points
    do not count; ``lead_id`` — the lead itself."""

    client_id: int | None = None
    lead_id: int | None = None


@dataclass
class _Found:
    items: dict[tuple[str, int | None], dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, obj_id: int, name: str | None, visible: bool, client_id: int | None) -> None:
        if not visible:  # as identify: a known person, not the actor's — no id, no name; one per type
            self.items.setdefault((kind, None), {"type": kind, "id": None, "name": None, "visible": False,
                                                 "client_id": None})
            return
        self.items.setdefault((kind, obj_id), {"type": kind, "id": obj_id, "name": name, "visible": True,
                                               "client_id": client_id})


def wants_override(v: Fields, actor: User | None) -> bool:
    """The body's ``allow_duplicate``; only staff may set it (a channel, ``actor`` None, is never
    checked)."""
    allow = bool(v.boolean("allow_duplicate", default=False))
    if allow and actor is not None and not access.is_staff(actor):
        raise Forbidden("only a manager or an administrator may save a duplicate")
    return allow


async def stored(session: AsyncSession, owner_field: str, owner_id: int) -> set[str]:
    """The phones and e-mails a record has already: a change re-checks only the new ones, so that
    duplicates older than this check (or saved with ``allow_duplicate``) do not block every edit."""
    column = getattr(ContactPoint, owner_field)
    return set((await session.scalars(select(ContactPoint.value).where(
        column == owner_id, ContactPoint.kind.in_(("phone", "email"))))).all())


async def check(session: AsyncSession, actor: User | None, v: Fields, *, inn: str | None,
                points: Normalised, own: Own = Own(), known: set[str] | frozenset[str] = frozenset()) -> None:
    """Raise ``DuplicateFound`` when the INN, a phone or an e-mail given is already another's and the
    body does not allow it. ``actor`` None (a channel's intake) is not checked; ``known``: values the
    record has already (``stored``, and its INN), not checked again."""
    if actor is None or wants_override(v, actor):
        return
    found = await find(session, actor, inn=inn if inn not in known else None,
                       phones=[p[0] for p in points.phones or () if p[0] not in known],
                       emails=[e[0] for e in points.emails or () if e[0] not in known], own=own)
    if found:
        raise DuplicateFound(found, may_override=access.is_staff(actor))


async def find(session: AsyncSession, actor: User, *, inn: str | None, phones: list[str], emails: list[str],
               own: Own = Own()) -> list[dict[str, Any]]:
    """``[{"type": "client"|"contact"|"lead", "id", "name", "visible", "client_id"}]``: who already has
    this INN, one of these phones or e-mails; one the actor may not see is only its type (``id``,
    ``name`` and ``client_id`` None, ``visible`` false), once per type."""
    found = _Found()
    if inn:
        stmt = select(Client).where(Client.inn == inn).limit(MAX_SHOWN)
        if own.client_id is not None:
            stmt = stmt.where(Client.id != own.client_id)
        for client in (await session.scalars(stmt)).all():
            found.add("client", client.id, client.name, await access.can_see_client(session, actor, client),
                      client.id)
    matches = []
    if phones:
        matches.append((ContactPoint.kind == "phone") & ContactPoint.value.in_(phones))
    if emails:
        matches.append((ContactPoint.kind == "email") & ContactPoint.value.in_(emails))
    if matches:
        await _points(session, actor, found, or_(*matches), own)
    return list(found.items.values())[:MAX_SHOWN]


async def _points(session: AsyncSession, actor: User, found: _Found, match: Any, own: Own) -> None:
    stmt = (select(ContactPoint.client_id, ContactPoint.contact_id, ContactPoint.lead_id,
                   ContactPerson.client_id)
            .outerjoin(ContactPerson, ContactPerson.id == ContactPoint.contact_id)
            .where(match, ContactPoint.user_id.is_(None)).limit(MAX_SHOWN * 4))
    rows = (await session.execute(stmt)).all()
    for client_id, contact_id, lead_id, contacts_client_id in rows:
        if own.client_id is not None and own.client_id in (client_id, contacts_client_id):
            continue
        if lead_id is not None and lead_id == own.lead_id:
            continue
        if client_id is not None:
            client = await session.get(Client, client_id)
            if client is not None:
                seen = await access.can_see_client(session, actor, client)
                found.add("client", client.id, client.name, seen, client.id)
        elif contact_id is not None:
            contact = await session.get(ContactPerson, contact_id)
            client = await session.get(Client, contacts_client_id)
            if contact is not None and client is not None:
                found.add("contact", contact.id, contact.name,
                          await access.can_see_client(session, actor, client), client.id)
        elif lead_id is not None:
            lead = await session.get(Lead, lead_id)
            if lead is not None:
                found.add("lead", lead.id, lead.name, await access.can_see_lead(session, actor, lead), None)


# --- the list of likely duplicates ----------------------------------------------------------------------

REASONS = ("inn", "phone", "email", "name")


async def likely_pairs(session: AsyncSession, actor: User, *,
                       limit: int = PAIRS_LIMIT) -> list[dict[str, Any]]:
    """Groups of clients that look like one another: ``[{"reason": "inn"|"phone"|"email"|"name",
    "value", "clients": [{"id", "name", "inn"}]}]``. Staff only (it spans every client). One grouping
    query per reason: the values shared by several clients, joined back to their clients."""
    access.require_staff(actor)
    groups: list[tuple[str, str, list[int]]] = []
    groups += await _grouped(session, "inn", Client.inn, Client.id,
                             (Client.inn.is_not(None), Client.inn != ""), limit)
    for kind in ("phone", "email"):
        groups += await _grouped(session, kind, ContactPoint.value, ContactPoint.client_id,
                                 (ContactPoint.kind == kind, ContactPoint.client_id.is_not(None)), limit)
    groups += await _grouped(session, "name", Client.name_key, Client.id, (Client.name_key != "",), limit)
    return await _described(session, groups)


async def _grouped(session: AsyncSession, reason: str, value: Any, owner: Any, where: tuple[Any, ...],
                   limit: int) -> list[tuple[str, str, list[int]]]:
    shared = (select(value).where(*where).group_by(value)
              .having(func.count(func.distinct(owner)) > 1).order_by(value).limit(limit))
    members = select(value, owner).distinct().where(*where, value.in_(shared)).order_by(value, owner)
    rows: list[Any] = list((await session.execute(members)).all())
    by_value: dict[str, list[int]] = {}
    for key, owner_id in rows:
        by_value.setdefault(str(key), []).append(int(owner_id))
    return [(reason, key, ids) for key, ids in by_value.items()]


async def _described(session: AsyncSession, groups: list[tuple[str, str, list[int]]]) -> list[dict[str, Any]]:
    ids = {i for _, _, group in groups for i in group}
    clients = {c.id: c for c in (await session.scalars(select(Client).where(Client.id.in_(ids)))).all()} \
        if ids else {}
    result = []
    seen: set[tuple[int, ...]] = set()
    for reason, value, group in groups:
        members = tuple(i for i in group if i in clients)
        if len(members) < 2 or members in seen:
            continue
        seen.add(members)
        result.append({"reason": reason, "value": value, "clients": [
            {"id": i, "name": clients[i].name, "inn": clients[i].inn} for i in members]})
    return result
