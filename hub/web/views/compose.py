"""The message composer of the deal, client and lead cards (``_composer.html``): which channels the
person can be written to (Telegram once they have a chat with the bot, SMS with a phone, WhatsApp with a
phone when the hub has a WhatsApp sender — free text only within 24 hours of the person's last
message, else an approved template —, e-mail with an address — a letter has a Subject field), the
others shown off with the reason. The form posts to
``POST /api/v1/messages`` (``messages.js``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hub.crm import messages, reach
from hub.web.i18n import N_
from hub.web.keys import CHANNELS, CONFIG, DB, USER

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

LABELS = {"telegram": N_("Telegram"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp"), "email": N_("E-mail")}


async def whatsapp_state(request: web.Request, s: AsyncSession,
                         conversation_id: int | None) -> dict[str, Any]:
    """The composer's WhatsApp part: when the 24-hour window closes (None: closed, only a template)
    and the templates (each with its variables' names)."""
    ends = await messages.whatsapp_window_ends(s, conversation_id) if conversation_id else None
    templates = [{**t, "variables": messages.template_placeholders(t["text"])}
                 for t in request.app[CONFIG].twilio.whatsapp_templates]
    return {"window_ends": ends, "templates": templates}


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
        found = await reach.of(s, request[USER], target, target_id)
        points, chats, deals = found.points, found.chats, found.deals
        whatsapp_chat = next(((a, i) for ch, a, _, i in chats if ch == "whatsapp"), None)
        whatsapp = await whatsapp_state(request, s, whatsapp_chat[1] if whatsapp_chat else None)
    telegram_chats = [a for ch, a, state, _ in chats if ch == "telegram" and state != "blocked"]
    blocked = any(ch == "telegram" and state == "blocked" for ch, _, state, _ in chats)
    telegram_ids = [v for v in points["telegram"] if v.lstrip("-").isdecimal()]
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
    if "whatsapp" in connected or whatsapp_chat is not None:
        wa_address = whatsapp_chat[0] if whatsapp_chat else phone
        options.append({"key": "whatsapp", "label": LABELS["whatsapp"], "available": wa_address is not None,
                        "reason": None if wa_address else N_("No phone number."), "address": wa_address or "",
                        "connected": "whatsapp" in connected})
    mail_chats = [a for ch, a, _, _ in chats if ch == "email"]
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
            "any": bool(available), "deals": deals, "whatsapp": whatsapp}
