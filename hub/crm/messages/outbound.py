"""Outbound messages: queued with their timeline entry, sent by ``hub.outbox``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, events
from hub.crm.errors import NotFound, ValidationError
from hub.crm.messages.conversations import (
    MAX_PARTS,
    PHONE_CHANNELS,
    SENDABLE,
    TEXT_LIMITS,
    WHATSAPP_WINDOW,
    Person,
    _conversation,
    _link,
    _person_of,
    _preview,
    _recipients,
    _targets,
    message_dict,
    placement_deal,
    split_text,
)
from hub.crm.messages.statuses import show_status
from hub.crm.models import (
    Attachment,
    Client,
    ContactPoint,
    Conversation,
    Deal,
    Lead,
    Message,
    TimelineEntry,
    User,
    utcnow,
)
from hub.crm.timeline import add_entry, storable
from hub.crm.validate import Fields

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


async def _target_person(session: AsyncSession, actor: User, v: Fields) -> tuple[Person, int | None]:
    """The person (and deal) a message from the card goes to; the actor must see it."""
    deal_id, client_id, lead_id = v.integer("deal_id"), v.integer("client_id"), v.integer("lead_id")
    v.check()
    if deal_id is not None:
        deal = await access.visible(session, actor, await session.get(Deal, deal_id), "deal")
        if deal.client_id is not None:
            contact_id = deal.contact_id
            return (("contact", contact_id, deal.client_id) if contact_id else
                    ("client", deal.client_id, deal.client_id)), deal.id
        # a deal has a client or a lead (deals.create_deal requires one)
        return ("lead", cast(int, deal.lead_id), None), deal.id
    if client_id is not None:
        await access.visible(session, actor, await session.get(Client, client_id), "client")
        return ("client", client_id, client_id), None
    if lead_id is not None:
        await access.visible(session, actor, await session.get(Lead, lead_id), "lead")
        return ("lead", lead_id, None), None
    raise ValidationError({"deal_id": "a deal, client or lead is required"})


async def _person_conversation(session: AsyncSession, channel: str, person: Person) -> Conversation | None:
    """The person's latest conversation on the channel, or one opened from their contact points."""
    kind, person_id, client_id = person
    if kind == "lead":
        owned = Conversation.lead_id == person_id
    elif kind == "contact":
        owned = Conversation.contact_id == person_id
    else:
        owned = Conversation.client_id == client_id
    found = await session.scalar(select(Conversation).where(Conversation.channel == channel, owned)
                                 .order_by(Conversation.last_message_at.desc()).limit(1))
    if found is not None or (kind == "contact" and (
            # a contact's Person carries its client's id, never None there (Person says int | None)
            found := await _person_conversation(session, channel, ("client", client_id, client_id)))):  # type: ignore[arg-type]
        return found
    owner_field = {"client": "client_id", "contact": "contact_id", "lead": "lead_id"}[kind]
    kinds = (("telegram_id",) if channel == "telegram" else ("phone",) if channel in PHONE_CHANNELS
             else ("email",))
    address = await session.scalar(select(ContactPoint.value).where(
        getattr(ContactPoint, owner_field) == person_id, ContactPoint.kind.in_(kinds),
    ).order_by(ContactPoint.id))
    if address is None:
        return None
    conversation = await _conversation(session, channel, address)
    if _person_of(conversation) is None:
        _link(conversation, person)
    return conversation


async def _reply_target(session: AsyncSession, actor: User, entry_id: int) -> Message:
    message = await session.scalar(select(Message).where(Message.entry_id == entry_id))
    if message is None:
        raise ValidationError({"reply_to": "is not a message"})
    entry = await session.get(TimelineEntry, entry_id)
    if entry is None:
        raise ValidationError({"reply_to": "does not exist"})
    await _check_entry_visible(session, actor, entry)
    return message


async def _check_entry_visible(session: AsyncSession, actor: User, entry: TimelineEntry) -> None:
    if entry.deal_id is not None:
        await access.visible(session, actor, await session.get(Deal, entry.deal_id), "timeline entry")
    elif entry.client_id is not None:
        await access.visible(session, actor, await session.get(Client, entry.client_id), "timeline entry")
    elif entry.lead_id is not None:
        await access.visible(session, actor, await session.get(Lead, entry.lead_id), "timeline entry")


async def queue_message(session: AsyncSession, actor: User, data: Any,
                        files: Sequence[tuple[str, str, str, int]] = (),
                        templates: Sequence[Mapping[str, str]] = ()) -> list[dict[str, Any]]:
    """Queue an outgoing message (split into several when a Telegram text is too long) → the queued
    messages. ``files``: (filename, content type, sha256, size) already stored under attachments_dir.
    ``templates``: the WhatsApp templates (``{sid, name, text}``: Twilio's ContentSid, a name, the body
    with ``{{1}}``… variables) a message outside the 24-hour window may use (``data``'s
    ``template``: ``{"sid", "variables": {"1": …}}``)."""
    v = Fields(data)
    channel = v.text("channel", required=True, max_len=20)
    text = v.text("text", max_len=max(TEXT_LIMITS.values()), default="")
    subject = v.text("subject", max_len=500, default="")
    reply_to_entry = v.integer("reply_to")
    if channel and channel not in SENDABLE:
        v.fail("channel", f"must be one of: {', '.join(SENDABLE)}")
    v.check()
    text = storable(text or "")
    a_template = channel == "whatsapp" and data.get("template") is not None
    if not text.strip() and not files and not a_template:
        raise ValidationError({"text": "is required (or a file)"})
    limit = TEXT_LIMITS[channel]
    name = {"sms": "SMS", "whatsapp": "WhatsApp"}.get(channel, channel)
    if channel in PHONE_CHANNELS and len(text) > limit:
        raise ValidationError({"text": f"a {name} message carries at most {limit} characters, "
                                       f"this one has {len(text)}"})
    if channel in PHONE_CHANNELS and files:
        raise ValidationError({"attachments": f"files cannot be sent by {name}"})

    reply_to = await _reply_target(session, actor, reply_to_entry) if reply_to_entry is not None else None
    if reply_to is not None and reply_to.channel != channel:
        raise ValidationError({"reply_to": f"is a {reply_to.channel} message, not {channel}"})
    if reply_to is not None:
        conversation = await session.get(Conversation, reply_to.conversation_id)
        assert conversation is not None
        person = _person_of(conversation)
        replied = await session.get(TimelineEntry, reply_to.entry_id) if reply_to.entry_id else None
        assert replied is not None or not reply_to.entry_id  # a message's entry_id is a foreign key
        deal_id = replied.deal_id if replied is not None else None
    else:
        person, deal_id = await _target_person(session, actor, v)
        conversation = await _person_conversation(session, channel, person)
        if conversation is None:
            what = {"telegram": "no Telegram chat (the person has not written to the bot)",
                    "sms": "no phone number", "whatsapp": "no phone number",
                    "email": "no e-mail address"}[channel]
            raise ValidationError({"channel": f"the {person[0]} has {what}"})
    if conversation.state == "blocked":
        raise ValidationError({"channel": "the person has blocked the bot"})
    template = None
    if channel == "whatsapp":
        template = await _whatsapp_template(session, conversation, data, text, templates)
        if template is not None:
            text = template["text"]
            if len(text) > limit:  # one template is one message: it is never split
                raise ValidationError({"template.variables": f"make the message longer than {limit} "
                                                             "characters"})
    if deal_id is None and person is not None:
        deal_id = await placement_deal(session, person[2], person[1] if person[0] == "lead" else None)

    if channel == "email":
        if any(c in subject for c in "\r\n"):  # a header's line: a break would end it mid-send
            raise ValidationError({"subject": "must be one line"})
        subject = subject.strip() or _reply_subject(reply_to)
        if not subject:
            raise ValidationError({"subject": "is required for a new letter"})
    parts = split_text(text, limit) if text else [""]
    if len(parts) > MAX_PARTS:
        raise ValidationError({"text": f"is too long: at most {limit * MAX_PARTS} characters"})
    now = utcnow()
    results = []
    for index, part in enumerate(parts):
        payload = {"channel": channel, "status": "queued", "address": conversation.address}
        if subject:
            payload["subject"] = subject
        if template is not None:
            payload["template"] = {"sid": template["sid"], "name": template["name"],
                                   "variables": template["variables"]}
        entry = await add_entry(session, kind=channel, direction="out", text=part, author_id=actor.id,
                                payload=payload,
                                **_targets(person, deal_id))
        assert entry is not None
        if index == len(parts) - 1:
            for filename, content_type, sha256, size in files:
                entry.attachments.append(Attachment(filename=filename, content_type=content_type, size=size,
                                                    sha256=sha256, created_at=now))
        row = Message(channel=channel, direction="out", status="queued", conversation_id=conversation.id,
                      entry_id=entry.id, reply_to_id=reply_to.id if reply_to and index == 0 else None,
                      author_id=actor.id, text=part, subject=subject, attempts=0, next_attempt_at=now,
                      created_at=now, status_at=now)
        session.add(row)
        await session.flush()
        entry.payload = {**entry.payload, "message_id": row.id}
        results.append(message_dict(row))
    conversation.last_message_at = now
    conversation.last_text = _preview(text, [f for f in files])
    conversation.unread = 0
    await session.flush()
    events.emit(session, "message.queued", {"ids": [r["id"] for r in results]},
                scope=await _recipients(session, conversation))
    return results


class _ChosenTemplate(TypedDict):
    sid: str
    name: str
    text: str  # the body with the variables filled in: what the person reads
    variables: dict[str, str]


def template_placeholders(text: str) -> list[str]:
    """The variables of a template body (``{{1}}``, ``{{2}}``…), in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


async def whatsapp_window_ends(session: AsyncSession, conversation_id: int,
                               now: datetime | None = None) -> datetime | None:
    """When the 24-hour window of a WhatsApp conversation closes (None: it is closed, the person
    has not written within 24 hours): free text goes only while it is open."""
    last_in = await session.scalar(select(func.max(Message.created_at)).where(
        Message.conversation_id == conversation_id, Message.direction == "in"))
    if last_in is None:
        return None
    ends: datetime = last_in + WHATSAPP_WINDOW
    return ends if ends > (now or utcnow()) else None


async def _whatsapp_template(session: AsyncSession, conversation: Conversation, data: Any, text: str,
                             templates: Sequence[Mapping[str, str]]) -> _ChosenTemplate | None:
    """The template a WhatsApp message is sent as (None: free text, only inside the window)."""
    chosen = data.get("template")
    if chosen is None:
        if await whatsapp_window_ends(session, conversation.id) is None:
            raise ValidationError({"template": "the person has not written within 24 hours: WhatsApp "
                                               "takes only an approved template now"})
        return None
    if not isinstance(chosen, dict):
        raise ValidationError({"template": "must be an object {sid, variables}"})
    if text.strip():
        raise ValidationError({"text": "must be empty when a template is sent"})
    template = next((t for t in templates if t["sid"] == chosen.get("sid")), None)
    if template is None:
        raise ValidationError({"template.sid": "is not one of the configured WhatsApp templates"})
    given = chosen.get("variables") or {}
    if not isinstance(given, dict):
        raise ValidationError({"template.variables": "must be an object {\"1\": value, …}"})
    variables: dict[str, str] = {}
    for name in template_placeholders(template["text"]):
        value = given.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError({f"template.variables.{name}": "is required"})
        variables[name] = storable(value.strip())[:1000]
    body = _PLACEHOLDER.sub(lambda m: variables[m.group(1)], template["text"])
    return {"sid": template["sid"], "name": template["name"], "text": body, "variables": variables}


def _reply_subject(reply_to: Message | None) -> str:
    if reply_to is None or not reply_to.subject:
        return ""
    subject = reply_to.subject.strip()
    return subject if subject.lower().startswith(("re:", "on:")) else f"Re: {subject}"


async def retry_message(session: AsyncSession, actor: User, message_id: Any) -> dict[str, Any]:
    """Queue a failed message (or one whose result is unknown) again, at the agent's word."""
    message = await session.get(Message, message_id) if isinstance(message_id, int) else None
    if message is None or message.direction != "out" or message.entry_id is None:
        raise NotFound("message not found")
    entry = await session.get(TimelineEntry, message.entry_id)
    assert entry is not None
    await _check_entry_visible(session, actor, entry)
    if message.status not in ("failed", "unknown"):
        raise ValidationError({"status": "only a failed message can be sent again, "
                                         f"this one is {message.status}"})
    message.status, message.attempts, message.next_attempt_at = "queued", 0, utcnow()
    message.error = message.error_code = None
    await session.flush()
    await show_status(session, message)
    events.emit(session, "message.queued", {"ids": [message.id]}, scope={"author_id": actor.id})
    return message_dict(message)


