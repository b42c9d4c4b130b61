"""How a person can be reached: what the message composer of a deal, client or lead card offers.

Their phones, e-mail addresses and Telegram ids (a deal's: its client's and its contact's, or its
lead's), their chats by channel (the latest first), and their open deals the user sees (where a
message entry may be moved)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, contact_points
from hub.crm.models import Conversation, Deal, Stage, User


@dataclass(frozen=True, slots=True)
class Reach:
    points: dict[str, Any]  # phones, emails, telegram: lists; bounced_emails: address → when and why
    chats: list[tuple[str, str, str, int]]  # (channel, address, state, conversation id), latest first
    deals: list[dict[str, Any]]  # {id, title} of the open deals the user sees


async def of(session: AsyncSession, user: User, target: str, target_id: int) -> Reach:
    """``target``: "deal", "client" or "lead". The caller has checked that the user sees it."""
    client_id = lead_id = contact_id = None
    if target == "deal":
        deal = await session.get(Deal, target_id)
        if deal is not None:
            client_id, lead_id, contact_id = deal.client_id, deal.lead_id, deal.contact_id
    elif target == "client":
        client_id = target_id
    else:
        lead_id = target_id
    owners = [("client_id", client_id), ("contact_id", contact_id)] if client_id else [("lead_id", lead_id)]
    if not (client_id or lead_id):
        return Reach(await _points(session, owners), [], [])
    owned = Conversation.client_id == client_id if client_id else Conversation.lead_id == lead_id
    chats = [(ch, a, st, i) for ch, a, st, i in (await session.execute(
        select(Conversation.channel, Conversation.address, Conversation.state, Conversation.id)
        .where(owned).order_by(Conversation.last_message_at.desc()))).all()]
    theirs = Deal.client_id == client_id if client_id else Deal.lead_id == lead_id
    deals = [{"id": i, "title": t} for i, t in (await session.execute(
        select(Deal.id, Deal.title).join(Stage, Stage.id == Deal.stage_id)
        .where(theirs, Stage.kind == "active", await access.deals_filter(session, user))
        .order_by(Deal.id))).all()]
    return Reach(await _points(session, owners), chats, deals)


async def _points(session: AsyncSession, owners: list[tuple[str, int | None]]) -> dict[str, Any]:
    points: dict[str, Any] = {"phones": [], "telegram": [], "emails": [], "bounced_emails": {}}
    for field, owner in owners:
        if owner is not None:
            found = (await contact_points.of(session, field, [owner]))[owner]
            points["phones"] += found["phones"]
            points["telegram"] += found["telegram"]
            points["emails"] += found["emails"]
            points["bounced_emails"].update(found["bounced_emails"])
    return points
