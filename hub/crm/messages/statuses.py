"""Delivery statuses of the messages we send: they never move backwards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events
from hub.crm.messages.conversations import message_dict
from hub.crm.models import Message, TimelineEntry, utcnow
from hub.crm.ports import DeliveryStatus, StatusBeforeSend
from hub.crm.timeline import entry_dict, entry_scope, user_refs

# how far each status is along the road: a report never moves a message back
STATUS_RANK = {"queued": 0, "sending": 1, "unknown": 1, "accepted": 2, "sent": 3,
               "delivered": 4, "undelivered": 4, "failed": 4, "received": 4, "read": 5}
# nothing moves a message from these (delivered still goes on to read: WhatsApp reports that)
FINAL = ("read", "undelivered", "failed")


async def show_status(session: AsyncSession, message: Message) -> None:
    """Copy the status onto the entry people see, and tell them."""
    entry = await session.get(TimelineEntry, message.entry_id) if message.entry_id else None
    payload = {"message_id": message.id, "status": message.status, "error": message.error,
               "error_code": message.error_code}
    if entry is not None:
        entry.payload = {**(entry.payload or {}), **payload}
        await session.flush()
        await session.refresh(entry, ["attachments"])
        scope = await entry_scope(session, entry)
        events.emit(session, "timeline.updated", {"entry": entry_dict(entry, await user_refs(
            session, [entry.author_id]))}, scope=scope)
    else:
        scope = {}
    events.emit(session, "message.status", {"message": message_dict(message)}, scope=scope)


async def apply_status(session: AsyncSession, update: DeliveryStatus) -> dict[str, Any] | None:
    """A provider's report on a message we sent; None for an unknown message or a stale report.
    ``StatusBeforeSend`` when the message is unknown while a send on the channel has no provider id
    yet: the report may be that send's, arriving before its id was stored."""
    message = await session.scalar(select(Message).where(
        Message.channel == update.channel, Message.provider_id == update.provider_id))
    if message is None and await session.scalar(select(Message.id).where(
            Message.channel == update.channel, Message.direction == "out", Message.status == "sending",
            Message.provider_id.is_(None)).limit(1)) is not None:
        raise StatusBeforeSend(f"no message has the id {update.provider_id} yet; a send is in flight")
    status = "accepted" if update.status in ("accepted", "queued", "scheduled") else update.status
    if message is None or message.direction != "out" or status not in STATUS_RANK:
        return None
    if message.status in FINAL or STATUS_RANK[status] <= STATUS_RANK.get(message.status, 0):
        return None
    message.status = status
    message.status_at = update.at or utcnow()
    if status in ("undelivered", "failed"):
        message.error_code = (update.error_code or "")[:40] or None
        message.error = (update.error or f"error {update.error_code}" if update.error_code else None)
    await session.flush()
    await show_status(session, message)
    return message_dict(message)

