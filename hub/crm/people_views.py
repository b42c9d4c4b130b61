"""Read-only helpers for the client and lead pages: what their filters offer, and phones for people.

No flush, no events: the choices of the list filters (managers, tags, regions the actor can see) and
an E.164 number written the way people read it.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, identify
from hub.crm.models import Client, Tag, User, client_tags

MAX_CHOICES = 200
MAX_LOOKUPS = 10


async def client_filter_choices(session: AsyncSession, actor: User) -> dict[str, Any]:
    """``{"managers": [{id, name}], "tags": [name], "regions": [name]}`` — active users, and the tags
    and regions of the clients the actor may see (alphabetical, at most ``MAX_CHOICES`` each)."""
    visible = await access.clients_filter(session, actor)
    managers = (await session.execute(
        select(User.id, User.name).where(User.active.is_(True)).order_by(User.name, User.id)
        .limit(MAX_CHOICES))).all()
    tags = (await session.scalars(
        select(Tag.name).where(Tag.id.in_(
            select(client_tags.c.tag_id).join(Client, Client.id == client_tags.c.client_id).where(visible)))
        .order_by(Tag.name).limit(MAX_CHOICES))).all()
    regions = (await session.scalars(
        select(Client.region).where(visible, Client.region != "").distinct().order_by(Client.region)
        .limit(MAX_CHOICES))).all()
    return {"managers": [{"id": i, "name": n} for i, n in managers], "tags": list(tags),
            "regions": list(regions)}


async def clients_sharing_points(session: AsyncSession, actor: User, lead: dict[str, Any],
                                 region: str = "RU") -> list[dict[str, Any]]:
    """Clients (directly or through a contact person) that already have one of this lead's phones
    or e-mails, among those the actor may see: ``[{"id", "name", "value", "kind"}]`` — before a
    conversion makes a duplicate. Looks up at most ``MAX_LOOKUPS`` contact points."""
    found: dict[int, dict[str, Any]] = {}
    points = [("phone", p) for p in lead.get("phones", [])] + [("email", e) for e in lead.get("emails", [])]
    for kind, value in points[:MAX_LOOKUPS]:
        for match in await identify.identify(session, region=region, **{kind: value}):
            client_id = match["client_id"] if match["type"] in ("client", "contact") else None
            if client_id is not None and client_id not in found:
                found[client_id] = {"id": client_id, "value": value, "kind": kind}
    if not found:
        return []
    visible = await access.clients_filter(session, actor)
    names = dict((await session.execute(
        select(Client.id, Client.name).where(Client.id.in_(found), visible))).all())
    return [{**found[i], "name": names[i]} for i in found if i in names]


def phone_display(e164: str) -> str:
    """``+79161234567`` → ``+7 916 123-45-67`` (international format); unreadable input as it is."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
