"""The inbox: conversations across channels (Telegram, SMS, e-mail) and what an agent does with
them — list (newest first), read one with its messages, mark it read, assign it, move a message's
entry to another open deal of the same person, make a lead of a conversation that belongs to nobody
(letters kept out of the timeline: bulk mail, ``noreply`` senders).

Who sees a conversation: staff (and everybody when ``agents_see_all`` is on) see all; an agent sees
the conversations assigned to them and those whose client or lead they may see (``hub.crm.access``);
one that belongs to nobody yet is everybody's. Reading one an agent may not see answers "not found".
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import ColumnElement, Result, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, events, leads, resources
from hub.crm.errors import NotFound, ValidationError
from hub.crm.messages import LEAD_SOURCES, _recipients, conversation_row, message_resource
from hub.crm.models import (
    CHANNELS,
    Client,
    ContactPerson,
    Conversation,
    Deal,
    Lead,
    Message,
    Stage,
    TimelineEntry,
    User,
)
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.resources import Ref
from hub.crm.timeline import add_entry, entry_dict, entry_resource, entry_scope, get_entry, user_refs
from hub.crm.validate import MAX_YEAR, MIN_YEAR, Fields
from hub.serialise import plain

MESSAGE_KINDS = ("sms", "whatsapp", "telegram", "email")
MOVED_MESSAGES = 200  # a new lead's timeline gets at most this many of its conversation's messages


# --- who sees what ---------------------------------------------------------------------------------------

async def conversations_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await access.sees_all(session, user):
        return true()
    clients = select(Client.id).where(await access.clients_filter(session, user))
    leads = select(Lead.id).where(await access.leads_filter(session, user))
    return or_(
        Conversation.assignee_id == user.id,
        Conversation.client_id.in_(clients),
        Conversation.lead_id.in_(leads),
        and_(Conversation.client_id.is_(None), Conversation.lead_id.is_(None)),
    )


async def can_see(session: AsyncSession, user: User, conversation: Conversation) -> bool:
    if await access.sees_all(session, user) or conversation.assignee_id == user.id:
        return True
    if conversation.client_id is not None:
        client = await session.get(Client, conversation.client_id)
        return client is not None and await access.can_see_client(session, user, client)
    if conversation.lead_id is not None:
        lead = await session.get(Lead, conversation.lead_id)
        return lead is not None and await access.can_see_lead(session, user, lead)
    return True


async def _visible(session: AsyncSession, user: User, conversation_id: Any) -> Conversation:
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int) \
            or not 0 < conversation_id <= 2**62:
        raise NotFound("conversation not found")
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or not await can_see(session, user, conversation):
        raise NotFound("conversation not found")
    return conversation


# --- shapes ----------------------------------------------------------------------------------------------

async def _people(session: AsyncSession, rows: list[Conversation]) -> dict[str, dict[int, str]]:
    def ids(attr: str) -> set[int]:
        return {getattr(c, attr) for c in rows if getattr(c, attr) is not None}

    names: dict[str, dict[int, str]] = {"client": {}, "contact": {}, "lead": {}, "user": {}}
    sources: tuple[tuple[str, Any, set[int]], ...] = (
        ("client", Client, ids("client_id")), ("contact", ContactPerson, ids("contact_id")),
        ("lead", Lead, ids("lead_id")), ("user", User, ids("assignee_id")))
    for key, model, wanted in sources:
        if wanted:
            result: Result[int, str] = await session.execute(
                select(model.id, model.name).where(model.id.in_(wanted)))
            names[key] = {row_id: name for row_id, name in result.all()}
    return names


async def _open_deals(session: AsyncSession, rows: list[Conversation]) -> dict[tuple[str, int], int]:
    """Each conversation's person's placement deal (``messages.placement_deal``), for a whole page in
    one query: the same order, the first deal of each owner."""
    clients = {c.client_id for c in rows if c.client_id is not None}
    leads = {c.lead_id for c in rows if c.client_id is None and c.lead_id is not None}
    if not clients and not leads:
        return {}
    found = await session.execute(
        select(Deal.id, Deal.client_id, Deal.lead_id).join(Stage, Stage.id == Deal.stage_id)
        .where(Stage.kind == "active", or_(Deal.client_id.in_(clients), Deal.lead_id.in_(leads)))
        .order_by(Deal.last_activity_at.desc(), Deal.id.desc()))
    deals: dict[tuple[str, int], int] = {}
    for deal_id, client_id, lead_id in found:
        if client_id in clients:
            deals.setdefault(("client", client_id), deal_id)
        if lead_id in leads:
            deals.setdefault(("lead", lead_id), deal_id)
    return deals


def _deal_of(c: Conversation, deals: dict[tuple[str, int], int]) -> int | None:
    if c.client_id is not None:
        return deals.get(("client", c.client_id))
    return deals.get(("lead", c.lead_id)) if c.lead_id is not None else None


def _person(c: Conversation, names: dict[str, dict[int, str]]) -> resources.Person | None:
    if c.client_id is not None:
        contact = (Ref(id=c.contact_id, name=names["contact"].get(c.contact_id, ""))
                   if c.contact_id is not None else UNSET)
        return resources.Person(type="client", id=c.client_id, name=names["client"].get(c.client_id, ""),
                                url=f"/clients/{c.client_id}", contact=contact)
    if c.lead_id is not None:
        return resources.Person(type="lead", id=c.lead_id, name=names["lead"].get(c.lead_id, ""),
                                url=f"/leads/{c.lead_id}")
    return None


def _shape(c: Conversation, names: dict[str, dict[int, str]], deals: dict[tuple[str, int], int],
           subject: str | UnsetType = UNSET) -> resources.Conversation:
    person = _person(c, names)
    assignee = Ref(id=c.assignee_id, name=names["user"].get(c.assignee_id, "")) if c.assignee_id else None
    return resources.Conversation(
        **msgspec.structs.asdict(conversation_row(c)), person=person, assignee=assignee,
        deal_id=_deal_of(c, deals), name=(person.name if person else "") or c.title or c.address,
        subject=subject)


async def _subjects(session: AsyncSession, rows: list[Conversation]) -> dict[int, str]:
    """The subject of each e-mail conversation's latest letter that has one."""
    ids = [c.id for c in rows if c.channel == "email"]
    if not ids:
        return {}
    latest = (select(func.max(Message.id)).where(Message.conversation_id.in_(ids), Message.subject != "")
              .group_by(Message.conversation_id))
    found = await session.execute(
        select(Message.conversation_id, Message.subject).where(Message.id.in_(latest)))
    return {conversation_id: subject for conversation_id, subject in found.all()}


async def conversation_dicts(session: AsyncSession, rows: list[Conversation]) -> list[dict[str, Any]]:
    """Conversations with their person, assignee, deal and display name; an e-mail one also with
    ``subject``, the subject of its latest letter."""
    return [plain(shaped) for shaped in await _conversations(session, rows)]


async def _conversations(session: AsyncSession, rows: list[Conversation]) -> list[resources.Conversation]:
    names = await _people(session, rows)
    subjects = await _subjects(session, rows)
    deals = await _open_deals(session, rows)
    return [_shape(c, names, deals, subjects.get(c.id, "") if c.channel == "email" else UNSET) for c in rows]


# --- cursor over (last_message_at, id) -------------------------------------------------------------------

def _encode(c: Conversation) -> str:
    raw = f"c:{c.last_message_at.isoformat()}|{c.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, rest = text.partition(":")
        at, _, ident = rest.partition("|")
        if kind != "c" or not ident.isdecimal() or int(ident) > 2**62:
            raise ValueError
        moment = datetime.fromisoformat(at)
        if not MIN_YEAR <= moment.year <= MAX_YEAR:  # a zone's offset would overflow near year 1
            raise ValueError
        return moment, int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": "is not a cursor this server issued"}) from exc


# --- services --------------------------------------------------------------------------------------------

async def list_conversations(session: AsyncSession, actor: User, *, channel: str | None = None,
                             unread: bool | None = None, assignee: str | None = None,
                             cursor: str | None = None, limit: int | None = None) -> Page:
    """Newest first (the last message's time), cursor-paginated. ``assignee``: ``me``, ``none`` or a
    user id; ``unread``: only those with unread messages."""
    errors: dict[str, str] = {}
    if channel is not None and channel not in CHANNELS:
        errors["channel"] = f"must be one of: {', '.join(CHANNELS)}"
    assignee_id: int | None = None
    if assignee is not None and assignee not in ("me", "none"):
        if not (assignee.isascii() and assignee.isdecimal()) or not 0 < int(assignee) <= 2**62:
            errors["assignee"] = "must be me, none or a user id"
        else:
            assignee_id = int(assignee)
    if errors:
        raise ValidationError(errors)
    after = _decode(cursor)
    limit = clamp_limit(limit)
    query = select(Conversation).where(await conversations_filter(session, actor))
    if channel is not None:
        query = query.where(Conversation.channel == channel)
    if unread:
        query = query.where(Conversation.unread > 0)
    if assignee == "me":
        query = query.where(Conversation.assignee_id == actor.id)
    elif assignee == "none":
        query = query.where(Conversation.assignee_id.is_(None))
    elif assignee_id is not None:
        query = query.where(Conversation.assignee_id == assignee_id)
    if after is not None:
        at, ident = after
        query = query.where(or_(Conversation.last_message_at < at,
                                and_(Conversation.last_message_at == at, Conversation.id < ident)))
    rows = list((await session.scalars(query.order_by(Conversation.last_message_at.desc(),
                                                      Conversation.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await conversation_dicts(session, rows), _encode(rows[-1]) if more and rows else None)


async def message_dicts(session: AsyncSession, rows: list[Message]) -> list[dict[str, Any]]:
    """Messages with their timeline entry (attachments, author) for a chat panel."""
    return [plain(message) for message in await _chat_messages(session, rows)]


async def _chat_messages(session: AsyncSession, rows: list[Message]) -> list[resources.ChatMessage]:
    entry_ids = [m.entry_id for m in rows if m.entry_id is not None]
    entries: dict[int, TimelineEntry] = {}
    if entry_ids:
        found = await session.scalars(select(TimelineEntry).where(TimelineEntry.id.in_(entry_ids))
                                      .options(selectinload(TimelineEntry.attachments)))
        entries = {e.id: e for e in found}
    authors = await user_refs(session, [m.author_id for m in rows])
    return [resources.ChatMessage(
        **msgspec.structs.asdict(message_resource(m)),
        author=authors.get(m.author_id) if m.author_id is not None else None,
        entry=entry_resource(entries[m.entry_id], authors) if m.entry_id in entries else None) for m in rows]


async def get_conversation(session: AsyncSession, actor: User, conversation_id: Any, *,
                           cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """The conversation with a page of its messages, newest last; ``messages_cursor`` reads older."""
    before = decode_cursor(cursor)
    limit = clamp_limit(limit)
    conversation = await _visible(session, actor, conversation_id)
    query = select(Message).where(Message.conversation_id == conversation.id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = list((await session.scalars(query.order_by(Message.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    shaped = (await _conversations(session, [conversation]))[0]
    is_mail = conversation.channel == "email"
    return plain(resources.ConversationWithMessages(
        **msgspec.structs.asdict(shaped), messages=await _chat_messages(session, list(reversed(rows))),
        messages_cursor=encode_cursor(rows[-1].id) if more and rows else None,
        reply_to=await _latest_letter(session, conversation.id) if is_mail else UNSET))


async def _latest_letter(session: AsyncSession, conversation_id: int) -> resources.ReplyTo | None:
    """The conversation's latest inbound letter on a timeline (what a reply answers by default):
    ``{"entry_id", "subject"}``, or None."""
    found = (await session.execute(
        select(Message.entry_id, Message.subject).where(
            Message.conversation_id == conversation_id, Message.direction == "in",
            Message.entry_id.is_not(None))
        .order_by(Message.id.desc()).limit(1))).first()
    if found is None or found.entry_id is None:
        return None
    return resources.ReplyTo(entry_id=found.entry_id, subject=found.subject)


async def _announce(session: AsyncSession, conversation: Conversation, **extra: Any) -> dict[str, Any]:
    await session.flush()
    shaped = (await conversation_dicts(session, [conversation]))[0]
    scope = await _recipients(session, conversation)
    scope.update(extra)
    events.emit(session, "conversation.updated", {"conversation": shaped}, scope=scope)
    return shaped


async def mark_read(session: AsyncSession, actor: User, conversation_id: Any) -> dict[str, Any]:
    conversation = await _visible(session, actor, conversation_id)
    if conversation.unread == 0:
        return (await conversation_dicts(session, [conversation]))[0]
    conversation.unread = 0
    return await _announce(session, conversation)


async def assign(session: AsyncSession, actor: User, conversation_id: Any, data: Any) -> dict[str, Any]:
    """Hand the conversation to a user (``assignee_id``; null: to nobody)."""
    conversation = await _visible(session, actor, conversation_id)
    v = Fields(data)
    if not v.has("assignee_id"):
        v.fail("assignee_id", "is required (null to unassign)")
    assignee_id = v.id("assignee_id")
    v.check()
    if assignee_id is not None:
        user = await session.get(User, assignee_id)
        if user is None or not user.active:
            raise ValidationError({"assignee_id": "no such active user"})
    previous = conversation.assignee_id
    conversation.assignee_id = assignee_id
    return await _announce(session, conversation, author_id=previous)


async def move_entry(session: AsyncSession, actor: User, entry_id: Any, data: Any) -> dict[str, Any]:
    """Move a message's timeline entry to another open deal of the same person."""
    entry = await get_entry(session, actor, entry_id)
    v = Fields(data)
    deal_id = v.id("deal_id", required=True)
    v.check()
    if entry.kind not in MESSAGE_KINDS:
        raise ValidationError({"entry": "only a message can be moved to another deal"})
    deal = await session.get(Deal, deal_id)
    if deal is None or not await access.can_see_deal(session, actor, deal):
        raise ValidationError({"deal_id": "no such deal"})
    same_person = (deal.client_id is not None and deal.client_id == entry.client_id) or \
        (deal.lead_id is not None and deal.lead_id == entry.lead_id)
    if not same_person:
        raise ValidationError({"deal_id": "is a deal of another person"})
    kind = await session.scalar(select(Stage.kind).where(Stage.id == deal.stage_id))
    if kind != "active":
        raise ValidationError({"deal_id": "is closed"})
    old_deal_id = entry.deal_id
    if old_deal_id == deal.id:
        return entry_dict(entry, await user_refs(session, [entry.author_id]))
    old_scope = await entry_scope(session, entry)
    entry.deal_id = deal.id
    if deal.last_activity_at is None or entry.occurred_at > deal.last_activity_at:
        deal.last_activity_at = entry.occurred_at
    await session.flush()
    result = entry_dict(entry, await user_refs(session, [entry.author_id]))
    scope = await entry_scope(session, entry)
    # the old deal's timeline loses it (``moved_from`` names it), the new one gains it
    events.emit(session, "timeline.updated", {"entry": result, "moved_from": {"deal_id": old_deal_id}},
                scope=old_scope)
    events.emit(session, "timeline.added", {"entry": result}, scope=scope)
    return result


async def make_lead(session: AsyncSession, actor: User, conversation_id: Any, *,
                    region: str = "RU") -> dict[str, Any]:
    """A lead (managed by the actor) for a conversation that belongs to nobody — letters kept out of
    the timeline (bulk mail, a ``noreply`` sender) that an agent decides are worth a lead after all:
    the lead gets the conversation's address and name, the conversation is linked to it, and its
    messages so far go on the lead's timeline. → ``{"lead", "conversation"}``."""
    conversation = await _visible(session, actor, conversation_id)
    if conversation.client_id is not None or conversation.lead_id is not None:
        raise ValidationError({"conversation": "belongs to a client or lead already"})
    data: dict[str, Any] = {"name": (conversation.title or conversation.address)[:300],
                            "source": LEAD_SOURCES.get(conversation.channel, conversation.channel)}
    points = {"email": "emails", "sms": "phones", "whatsapp": "phones",
              "telegram": "telegram"}.get(conversation.channel)
    if points is not None:
        data[points] = [conversation.address]
    try:
        async with session.begin_nested():
            lead = await leads.create_lead(session, actor, data, region=region)
    except ValidationError:  # an address a lead cannot keep (a short code…): the lead without it
        data.pop(points or "", None)
        lead = await leads.create_lead(session, actor, data, region=region)
    conversation.lead_id = lead["id"]
    rows = (await session.scalars(select(Message).where(
        Message.conversation_id == conversation.id, Message.entry_id.is_(None))
        .order_by(Message.id.desc()).limit(MOVED_MESSAGES))).all()
    for m in reversed(rows):
        at = m.created_at if m.created_at.tzinfo is not None else m.created_at.replace(tzinfo=UTC)
        payload: dict[str, Any] = {"channel": m.channel, "address": conversation.address, "status": m.status,
                                   "message_id": m.id}
        if m.direction == "in" and conversation.title:
            payload["from"] = conversation.title
        if m.subject:
            payload["subject"] = m.subject
        entry = await add_entry(session, kind=m.channel, direction=m.direction, text=m.text, payload=payload,
                                occurred_at=at, lead_id=lead["id"], author_id=m.author_id,
                                external_key=f"{m.channel}:{m.provider_id}" if m.provider_id else None)
        if entry is not None:
            m.entry_id = entry.id
    return {"lead": lead, "conversation": await _announce(session, conversation)}
