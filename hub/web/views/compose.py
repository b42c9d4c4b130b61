"""The message composer of the deal, client and lead cards (``_composer.html``): which channels the
person can be written to (Telegram once they have a chat with the bot, SMS with a phone, e-mail with an
address — a letter has a Subject field), the others shown off with the reason. The form posts to
``POST /api/v1/messages`` (``messages.js``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.crm import access, contact_points
from hub.crm.models import Conversation, Deal, Stage
from hub.web.i18n import N_
from hub.web.keys import CHANNELS, DB, USER

LABELS = {"telegram": N_("Telegram"), "sms": N_("SMS"), "email": N_("E-mail")}


def channel_connected(connected: Any, channel: str) -> bool:
    """Whether the hub runs the channel (e-mail: any mailbox, named ``mail:<name>`` in health)."""
    if channel == "email":
        return any(name.startswith("mail:") for name in connected)
    return channel in connected


async def compose_context(request: web.Request, target: str, target_id: int) -> dict[str, Any]:
    """``{"target", "target_id", "channels": [{key, label, available, reason, address, connected}],
    "default", "any", "deals"}`` — ``deals``: the person's open deals the user sees (where a message
    entry may be moved). The caller has checked that the user sees the target."""
    async with request.app[DB].reading() as s:
        client_id = lead_id = contact_id = None
        if target == "deal":
            deal = await s.get(Deal, target_id)
            if deal is not None:
                client_id, lead_id, contact_id = deal.client_id, deal.lead_id, deal.contact_id
        elif target == "client":
            client_id = target_id
        else:
            lead_id = target_id
        points: dict[str, Any] = {"phones": [], "telegram": [], "emails": [], "bounced_emails": {}}
        owners = ([("client_id", client_id), ("contact_id", contact_id)] if client_id
                  else [("lead_id", lead_id)])
        for field, owner in owners:
            if owner is not None:
                found = (await contact_points.of(s, field, [owner]))[owner]
                points["phones"] += found["phones"]
                points["telegram"] += found["telegram"]
                points["emails"] += found["emails"]
                points["bounced_emails"].update(found["bounced_emails"])
        chats: list[Any] = []
        if client_id or lead_id:
            owned = Conversation.client_id == client_id if client_id else Conversation.lead_id == lead_id
            chats = list((await s.execute(
                select(Conversation.channel, Conversation.address, Conversation.state).where(owned)
                .order_by(Conversation.last_message_at.desc()))).all())
        deals: list[dict[str, Any]] = []
        if client_id or lead_id:  # where a message entry may be moved: the person's open deals
            user = request[USER]
            theirs = Deal.client_id == client_id if client_id else Deal.lead_id == lead_id
            deals = [{"id": i, "title": t} for i, t in (await s.execute(
                select(Deal.id, Deal.title).join(Stage, Stage.id == Deal.stage_id)
                .where(theirs, Stage.kind == "active", await access.deals_filter(s, user))
                .order_by(Deal.id))).all()]
    telegram_chats = [a for ch, a, state in chats if ch == "telegram" and state != "blocked"]
    blocked = any(ch == "telegram" and state == "blocked" for ch, _, state in chats)
    telegram_ids = [v for v in points["telegram"] if v.lstrip("-").isdigit()]
    connected = request.app[CHANNELS]
    options = []
    tg_address = (telegram_chats or telegram_ids or [None])[0]
    tg_reason = None
    if tg_address is None:
        tg_reason = (N_("The person has blocked the bot.") if blocked else
                     N_("The person has not written to the Telegram bot yet.") if points["telegram"] else
                     N_("No Telegram."))
    options.append({"key": "telegram", "label": LABELS["telegram"], "available": tg_address is not None,
                    "reason": tg_reason, "address": tg_address or "", "connected": "telegram" in connected})
    phone = points["phones"][0] if points["phones"] else None
    options.append({"key": "sms", "label": LABELS["sms"], "available": phone is not None,
                    "reason": None if phone else N_("No phone number."), "address": phone or "",
                    "connected": "sms" in connected})
    mail_chats = [a for ch, a, _ in chats if ch == "email"]
    email = (mail_chats or points["emails"] or [None])[0]
    options.append({"key": "email", "label": LABELS["email"], "available": email is not None,
                    "reason": None if email else N_("No e-mail address."), "address": email or "",
                    "connected": channel_connected(connected, "email"),
                    "bounced": points["bounced_emails"].get(email or "")})
    latest = chats[0][0] if chats else None
    available = [o["key"] for o in options if o["available"]]
    asked = request.query.get("write")  # "Write" next to an address in the card: that channel
    default = next((key for key in (asked, latest) if key in available), available[0] if available else None)
    return {"target": target, "target_id": target_id, "channels": options, "default": default,
            "any": bool(available), "deals": deals}
