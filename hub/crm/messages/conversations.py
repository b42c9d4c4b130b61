"""Conversations and the shapes of messages: who a conversation is with, where an entry goes, whom
its events reach."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypedDict

from msgspec import UNSET
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import resources
from hub.crm.models import Client, Conversation, Deal, Lead, Message, Stage, utcnow
from hub.crm.validate import iso
from hub.serialise import plain

SENDABLE = ("telegram", "sms", "whatsapp", "email")
# the longest text one outgoing message carries; a longer Telegram text is split, a longer SMS or
# WhatsApp text refused
TEXT_LIMITS = {"telegram": 4096, "sms": 1600, "whatsapp": 1600, "email": 200_000}
PHONE_CHANNELS = ("sms", "whatsapp")
# WhatsApp's customer service window: free text only this long after the person's last message
WHATSAPP_WINDOW = timedelta(hours=24)
MAX_PARTS = 10
PREVIEW = 300
LEAD_SOURCES = {"telegram": "telegram", "sms": "sms", "whatsapp": "whatsapp", "email": "e-mail"}


# --- shapes ---------------------------------------------------------------------------------------------

def message_dict(m: Message, conversation: Conversation | None = None) -> dict[str, Any]:
    return plain(message_resource(m, conversation))


def message_resource(m: Message, conversation: Conversation | None = None) -> resources.Message:
    return resources.Message(
        id=m.id, channel=m.channel, direction=m.direction, status=m.status,
        conversation_id=m.conversation_id, entry_id=m.entry_id, provider_id=m.provider_id,
        reply_to_id=m.reply_to_id, author_id=m.author_id, text=m.text, subject=m.subject,
        attempts=m.attempts, error_code=m.error_code, error=m.error, created_at=iso(m.created_at),
        sent_at=iso(m.sent_at), next_attempt_at=iso(m.next_attempt_at),
        conversation=conversation_row(conversation) if conversation is not None else UNSET)


def conversation_dict(c: Conversation) -> dict[str, Any]:
    return plain(conversation_row(c))


def conversation_row(c: Conversation) -> resources.ConversationRow:
    return resources.ConversationRow(
        id=c.id, channel=c.channel, address=c.address, title=c.title, username=c.username,
        client_id=c.client_id, contact_id=c.contact_id, lead_id=c.lead_id, assignee_id=c.assignee_id,
        unread=c.unread, state=c.state, last_message_at=iso(c.last_message_at), last_text=c.last_text)


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a paragraph, line or word break when one is near."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


# --- who writes -----------------------------------------------------------------------------------------

Person = tuple[str, int, int | None]  # ("client" | "contact" | "lead", id, client id)


def _person_of(conversation: Conversation) -> Person | None:
    if conversation.contact_id is not None:
        return "contact", conversation.contact_id, conversation.client_id
    if conversation.client_id is not None:
        return "client", conversation.client_id, conversation.client_id
    if conversation.lead_id is not None:
        return "lead", conversation.lead_id, None
    return None


def _first_person(matches: list[dict[str, Any]]) -> Person | None:
    for m in matches:
        if m["type"] in ("client", "contact", "lead"):
            return m["type"], m["id"], m["client_id"]
    return None


def _link(conversation: Conversation, person: Person) -> None:
    kind, person_id, client_id = person
    conversation.client_id = client_id
    conversation.contact_id = person_id if kind == "contact" else None
    conversation.lead_id = person_id if kind == "lead" else None


# --- where an entry goes ----------------------------------------------------------------------------------

async def placement_deal(session: AsyncSession, client_id: int | None, lead_id: int | None) -> int | None:
    """The person's single open deal, else their most recently active open deal, else None."""
    if client_id is None and lead_id is None:
        return None
    owner = Deal.client_id == client_id if client_id is not None else Deal.lead_id == lead_id
    return await session.scalar(
        select(Deal.id).join(Stage, Stage.id == Deal.stage_id).where(owner, Stage.kind == "active")
        .order_by(Deal.last_activity_at.desc(), Deal.id.desc()).limit(1))


class _Targets(TypedDict, total=False):
    deal_id: int
    client_id: int | None
    lead_id: int


def _targets(person: Person | None, deal_id: int | None) -> _Targets:
    if deal_id is not None:
        return {"deal_id": deal_id}
    if person is None:
        return {}
    kind, person_id, client_id = person
    if kind == "lead":
        return {"lead_id": person_id}
    return {"client_id": client_id}


# --- conversations ----------------------------------------------------------------------------------------

async def _conversation(session: AsyncSession, channel: str, address: str, title: str = "",
                        username: str | None = None) -> Conversation:
    """The conversation of this channel and address, created when new (a concurrent creator wins)."""
    query = select(Conversation).where(Conversation.channel == channel, Conversation.address == address)
    found = await session.scalar(query)
    if found is not None:
        return found
    conversation = Conversation(channel=channel, address=address, title=title[:300], username=username,
                                unread=0, last_message_at=utcnow(), last_text="", state="open",
                                created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(conversation)
            await session.flush()
    except IntegrityError:
        found = await session.scalar(query)
        if found is None:
            raise
        return found
    return conversation


async def _recipients(session: AsyncSession, conversation: Conversation) -> dict[str, Any]:
    """The event scope of a conversation: its assignee, else the person's manager (an unknown one: all)."""
    manager_id = None
    if conversation.client_id is not None:
        manager_id = await session.scalar(
            select(Client.manager_id).where(Client.id == conversation.client_id))
    elif conversation.lead_id is not None:
        manager_id = await session.scalar(select(Lead.manager_id).where(Lead.id == conversation.lead_id))
    scope: dict[str, Any] = {"manager_id": manager_id, "assignee_id": conversation.assignee_id}
    if manager_id is None and conversation.assignee_id is None:
        scope["unassigned"] = True
    return scope


def _preview(text: str, files: Sequence[Any]) -> str:
    text = " ".join(text.split())
    if not text and files:
        text = "📎 " + ", ".join(getattr(f, "filename", "") for f in files)
    return text[:PREVIEW]

