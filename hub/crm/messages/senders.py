"""Who writes: an inbound message's sender identified, or made a lead; a shared own contact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import contact_points, identify, leads
from hub.crm.errors import ValidationError
from hub.crm.messages.conversations import LEAD_SOURCES, PHONE_CHANNELS, Person, _first_person, _link
from hub.crm.models import ContactPoint, Conversation
from hub.crm.ports import InboundMessage


async def _identify(session: AsyncSession, message: InboundMessage,
                    region: str) -> tuple[Person | None, bool]:
    """A Telegram or SMS sender's person, and whether it was found by @username only (the id is then
    worth keeping)."""
    if message.channel == "telegram":
        if message.sender_id:
            found = _first_person(await identify.identify(session, telegram=message.sender_id, region=region))
            if found:
                return found, False
        if message.username:
            found = _first_person(await identify.identify(session, telegram="@" + message.username,
                                                          region=region))
            return found, found is not None
        return None, False
    if message.channel in PHONE_CHANNELS:
        return _first_person(await identify.identify(session, phone=message.address, region=region)), False
    return None, False  # a letter's sender: see _sender


async def _add_point(session: AsyncSession, person: Person, kind: str, value: str, raw: str,
                     tail: str | None = None) -> None:
    """Give the person one more contact point (unless they have it already)."""
    owner_field = {"client": "client_id", "contact": "contact_id", "lead": "lead_id"}[person[0]]
    column = getattr(ContactPoint, owner_field)
    exists = await session.scalar(select(ContactPoint.id).where(
        column == person[1], ContactPoint.kind == kind, ContactPoint.value == value))
    if exists is None:
        session.add(ContactPoint(kind=kind, value=value, raw=raw[:320], tail=tail,
                                 **{owner_field: person[1]}))
        await session.flush()


async def _new_lead(session: AsyncSession, message: InboundMessage, region: str) -> Person:
    name = (message.sender_name or message.address).strip()[:300] or message.address
    data: dict[str, Any] = {"name": name, "source": (message.source or LEAD_SOURCES[message.channel])[:100],
                            "unsorted": True}
    if message.utm:
        data["utm"] = message.utm
    if message.channel == "telegram":
        data["telegram"] = [v for v in (message.sender_id, message.username and "@" + message.username) if v]
    elif message.channel in PHONE_CHANNELS:
        data["phones"] = [message.address]
    else:
        data["emails"] = [message.address]
    try:
        lead = await leads.create_channel_lead(session, data, region=region)
    except ValidationError:
        # an address the lead cannot keep (a short code, a malformed id): the lead without it
        data.pop("phones", None)
        data.pop("telegram", None)
        data.pop("emails", None)
        data.pop("utm", None)
        lead = await leads.create_channel_lead(session, data, region=region)
    return "lead", lead["id"], None


async def _shared_contact(session: AsyncSession, conversation: Conversation, person: Person,
                          message: InboundMessage, region: str) -> Person:
    """The sender shared their own phone: a known client's phone links this chat to that client (and
    keeps the Telegram account on them); otherwise the phone goes on the sender's lead."""
    phone = message.shared_phone or ""
    normalised = contact_points.normalise(phones=[phone], region=region)
    if normalised.errors or not normalised.phones:
        return person
    e164, tail, raw = normalised.phones[0]
    owner = _first_person(await identify.identify(session, phone=e164, region=region))
    if owner is not None and owner[0] != "lead" and owner != person:
        if message.sender_id:
            await _add_point(session, owner, "telegram_id", message.sender_id, message.sender_id)
        _link(conversation, owner)
        return owner
    if person[0] == "lead":
        await _add_point(session, person, "phone", e164, raw, tail)
    return person


async def _sender(session: AsyncSession, message: InboundMessage, region: str) -> tuple[Person | None, bool]:
    """The sender identified, else a new lead (when allowed): (person, whether the lead is new)."""
    if message.channel == "email":
        found = await identify.identify(session, email=message.address, region=region)
        person = _first_person(found)
        from_us = any(m["type"] == "user" for m in found)
        if person is None and from_us:
            for address in message.recipients[:20]:
                person = _first_person(await identify.identify(session, email=address, region=region))
                if person is not None:
                    break
        by_username = False
    else:
        from_us = False
        person, by_username = await _identify(session, message, region)
    if person is not None and by_username and message.sender_id:
        await _add_point(session, person, "telegram_id", message.sender_id, message.sender_id)
    if person is None and message.lead_allowed and not from_us:
        return await _new_lead(session, message, region), True
    return person, False

