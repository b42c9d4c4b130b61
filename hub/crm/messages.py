"""Messages: Telegram and SMS (later e-mail) conversations in the CRM.

Inbound (``MessageIntake``, the ``hub.crm.ports.MessageIntakePort`` the composition root hands an
adapter), one unit of work per message:

- idempotent: the delivery key (Telegram ``update_id``) and the message's ``provider_id`` are under
  unique constraints; a replay adds nothing, an edit replaces the text of the entry;
- the sender is identified (Telegram id, then @username; the phone; the address) or becomes a lead
  in Unsorted; a shared own contact links the account to the client whose phone it carries;
- the entry lands on the person's single open deal, else the most recently active one, else on the
  person's own timeline; the conversation gets the unread count and the preview; ``message.received``.

Outbound (``queue_message``): the message and its timeline entry are written ``queued`` in one
transaction; ``hub.outbox`` sends it. Delivery statuses never move backwards.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypedDict, cast

from sqlalchemy import bindparam, func, insert, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, contact_points, events, identify, leads, routing
from hub.crm.attachments import content_type_of, sanitize_filename, store_bytes
from hub.crm.errors import NotFound, ValidationError
from hub.crm.models import (
    Attachment,
    ChannelCursor,
    Client,
    ContactPoint,
    Conversation,
    Deal,
    InboundDelivery,
    Lead,
    Message,
    Stage,
    TimelineEntry,
    User,
    utcnow,
)
from hub.crm.ports import (
    DeliveryStatus,
    InboundMessage,
    MessageChannel,
    StatusBeforeSend,
)
from hub.crm.timeline import (
    CompiledWrite,
    add_entry,
    entry_dict,
    entry_scope,
    storable,
    storable_json,
    user_refs,
)
from hub.crm.validate import Fields, iso
from hub.db import Prepared
from hub.inbound import journal

log = logging.getLogger(__name__)

SENDABLE = ("telegram", "sms", "whatsapp", "email")
# the longest text one outgoing message carries; a longer Telegram text is split, a longer SMS or
# WhatsApp text refused
TEXT_LIMITS = {"telegram": 4096, "sms": 1600, "whatsapp": 1600, "email": 200_000}
PHONE_CHANNELS = ("sms", "whatsapp")
# WhatsApp's customer service window: free text only this long after the person's last message
WHATSAPP_WINDOW = timedelta(hours=24)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
MAX_PARTS = 10
PREVIEW = 300
LEAD_SOURCES = {"telegram": "telegram", "sms": "sms", "whatsapp": "whatsapp", "email": "e-mail"}
# how far each status is along the road: a report never moves a message back
STATUS_RANK = {"queued": 0, "sending": 1, "unknown": 1, "accepted": 2, "sent": 3,
               "delivered": 4, "undelivered": 4, "failed": 4, "received": 4, "read": 5}
# nothing moves a message from these (delivered still goes on to read: WhatsApp reports that)
FINAL = ("read", "undelivered", "failed")


class UnitOfWork(Protocol):
    # urgent: as in ``hub.inbound.journal.UnitOfWork`` (the intake's journal writer shares it)
    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[AsyncSession]: ...


# --- shapes ---------------------------------------------------------------------------------------------

def message_dict(m: Message, conversation: Conversation | None = None) -> dict[str, Any]:
    result = {
        "id": m.id, "channel": m.channel, "direction": m.direction, "status": m.status,
        "conversation_id": m.conversation_id, "entry_id": m.entry_id, "provider_id": m.provider_id,
        "reply_to_id": m.reply_to_id, "author_id": m.author_id, "text": m.text, "subject": m.subject,
        "attempts": m.attempts, "error_code": m.error_code, "error": m.error,
        "created_at": iso(m.created_at), "sent_at": iso(m.sent_at) if m.sent_at else None,
        "next_attempt_at": iso(m.next_attempt_at) if m.next_attempt_at else None,
    }
    if conversation is not None:
        result["conversation"] = conversation_dict(conversation)
    return result


def conversation_dict(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id, "channel": c.channel, "address": c.address, "title": c.title, "username": c.username,
        "client_id": c.client_id, "contact_id": c.contact_id, "lead_id": c.lead_id,
        "assignee_id": c.assignee_id, "unread": c.unread, "state": c.state,
        "last_message_at": iso(c.last_message_at), "last_text": c.last_text,
    }


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


# --- inbound ------------------------------------------------------------------------------------------------

class MessageIntake:
    """``hub.crm.ports.MessageIntakePort`` over a database."""

    def __init__(self, db: UnitOfWork, *, attachments_dir: str | Path, region: str = "RU",
                 journal_store: journal.DeliveryStore | None = None,
                 board: routing.Board | None = None) -> None:
        self.db = db
        self.board = board  # the phones' presence: a new unknown person's chat may go to a free agent
        self.attachments_dir = Path(attachments_dir)
        self.region = region
        self.journal_listeners: list[Callable[[], None]] = []
        self.writer = journal.JournalWriter(db, on_written=self._journal_written, store=journal_store)

    def _journal_written(self) -> None:
        for listener in self.journal_listeners:
            listener()

    async def journal(self, channel: MessageChannel, key: str, body: bytes) -> bool:
        return await self.writer.add(channel, key, body)

    async def finish(self, journal_id: int) -> bool:
        async with self.db.transaction() as s:
            return await journal.finish(s, journal_id)

    async def close(self) -> None:
        await self.writer.stop()

    async def received(self, message: InboundMessage, delivery_key: str | None = None,
                       journal_id: int | None = None) -> dict[str, Any] | None:
        stored = [(f, await store_bytes(self.attachments_dir, f.data)) for f in message.files if f.data]
        async with self.db.transaction() as s:
            if journal_id is not None and not await journal.finish(s, journal_id):
                return None  # taken in already (by another worker)
            if delivery_key is not None and not await _remember_delivery(s, message.channel, delivery_key):
                return None
            return await take_message(s, message, stored, self.region, board=self.board)

    async def delivery_seen(self, channel: MessageChannel, delivery_key: str) -> bool:
        async with self.db.transaction() as s:
            return await _remember_delivery(s, channel, delivery_key)

    async def blocked(self, channel: MessageChannel, address: str, blocked: bool) -> None:
        async with self.db.transaction() as s:
            conversation = await s.scalar(select(Conversation).where(
                Conversation.channel == channel, Conversation.address == address))
            if conversation is None:
                return
            conversation.state = "blocked" if blocked else "open"
            await s.flush()
            events.emit(s, "conversation.updated", {"conversation": conversation_dict(conversation)},
                        scope=await _recipients(s, conversation))

    async def status(self, update: DeliveryStatus) -> dict[str, Any] | None:
        async with self.db.transaction() as s:
            return await apply_status(s, update)

    async def part_sent(self, message_id: int, parts: int, first_part_id: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(Message).where(Message.id == message_id, Message.direction == "out")
                .values(parts_sent=parts, provider_id=func.coalesce(Message.provider_id, first_part_id))
                .execution_options(synchronize_session=False))

    async def cursor(self, name: str) -> str | None:
        async with self.db.transaction() as s:
            return await s.scalar(select(ChannelCursor.value).where(ChannelCursor.name == name))

    async def set_cursor(self, name: str, value: str) -> None:
        async with self.db.transaction() as s:
            await _save_cursor(s, name, value)

    async def received_batch(self, items: Sequence[tuple[InboundMessage, str | None, str | None]], *,
                             cursor: str | None = None) -> list[dict[str, Any] | Exception | None]:
        """Several messages (``(message, delivery key, position)``) in one unit of work, each in a
        savepoint of its own: one that fails is rolled back alone (its events dropped, its result the
        exception) and the others are kept. The channel cursor ``cursor`` is set, in the same unit,
        to the position of the last message of the unbroken run taken from the first one on, so a
        failed message is offered again (the ones after it are then dropped as taken)."""
        results: list[dict[str, Any] | Exception | None] = []
        stored: list[list[tuple[Any, str]] | Exception] = []
        for message, _, _ in items:
            try:
                stored.append([(f, await store_bytes(self.attachments_dir, f.data))
                               for f in message.files if f.data])
            except Exception as error:
                stored.append(error)
        async with self.db.transaction() as s:
            for (message, key, _), files in zip(items, stored, strict=True):
                if isinstance(files, Exception):
                    results.append(files)
                    continue
                mark = events.events_recorded(s)
                try:
                    async with s.begin_nested():
                        if key is not None and not await _remember_delivery(s, message.channel, key):
                            results.append(None)
                            continue
                        results.append(await take_message(s, message, files, self.region,
                                                          board=self.board))
                except Exception as error:
                    events.forget_events_since(s, mark)
                    log.exception("%s message %s could not be taken in", message.channel, message.provider_id)
                    results.append(error)
            taken = next((n for n, r in enumerate(results) if isinstance(r, Exception)), len(results))
            position = items[taken - 1][2] if taken else None
            if cursor is not None and position is not None:
                await _save_cursor(s, cursor, position)
        return results


async def _save_cursor(session: AsyncSession, name: str, value: str) -> None:
    """Set a channel cursor in one statement (an upsert)."""
    table = ChannelCursor.__table__
    statement = _insert(session, table).values(name=name, value=value, updated_at=utcnow())
    await session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at}))


async def _remember_delivery(session: AsyncSession, channel: str, key: str) -> bool:
    """False when this delivery was taken before (a retried webhook, a repeated poll): one
    ``INSERT … ON CONFLICT DO NOTHING``, no savepoint."""
    inserted = await _DELIVERY.first(session, channel=channel, key=str(key)[:100], status="done", body=None,
                                     attempts=0, next_attempt_at=None, error=None, processed_at=None,
                                     created_at=utcnow())
    return inserted is not None


async def _edit(session: AsyncSession, existing: Message, message: InboundMessage) -> dict[str, Any] | None:
    if not message.edited or existing.text == message.text:
        return None
    existing.text = storable(message.text)
    entry = await session.get(TimelineEntry, existing.entry_id) if existing.entry_id else None
    if entry is not None:
        entry.text = existing.text
        entry.payload = {**(entry.payload or {}), "edited_at": iso(message.at or utcnow())}
        await session.flush()
        await session.refresh(entry, ["attachments"])
        events.emit(session, "timeline.updated", {"entry": entry_dict(entry, await user_refs(session, []))},
                    scope=await entry_scope(session, entry))
    return message_dict(existing)


async def _bounce(session: AsyncSession, message: InboundMessage) -> None:
    """A delivery report about a letter of ours: that letter did not arrive, with the reason."""
    ours = await session.scalar(select(Message).where(
        Message.channel == message.channel, Message.provider_id == message.bounce_of,
        Message.direction == "out"))
    if ours is None or ours.status in ("undelivered", "failed"):
        return
    ours.status, ours.status_at = "undelivered", utcnow()
    ours.error = (message.bounce_reason or "the letter was returned")[:500]
    await session.flush()
    await show_status(session, ours)
    conversation = await session.get(Conversation, ours.conversation_id)
    if conversation is not None and conversation.channel == "email":  # the card warns before the next letter
        await contact_points.mark_bounced(session, conversation.address, ours.error, ours.status_at)


def _payload(message: InboundMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"channel": message.channel, "from": message.sender_name,
                               "address": message.address, "status": "received"}
    optional = {"username": message.username, "extra": message.extra, "subject": message.subject,
                "html": message.html, "full_text": message.full_text, "mailbox": message.mailbox,
                "thread_ids": list(message.thread_ids), "recipients": list(message.recipients),
                "message_id": message.provider_id if message.channel == "email" else None}
    payload.update({key: value for key, value in optional.items() if value})
    return payload


async def take_message(session: AsyncSession, message: InboundMessage,
                       stored: list[tuple[Any, str]], region: str = "RU",
                       board: routing.Board | None = None) -> dict[str, Any] | None:
    """Store one inbound message (see the module's docstring). None when it was taken before.
    The chat of a person the message made a lead for goes to a free agent when its assignee (a shared
    mailbox's, else nobody) is not free and routing is on (``hub.crm.routing``; ``board``: presence).

    Lean (about eight statements for a known conversation): the message and its conversation are
    read in one compiled statement, the person's manager and placement deal in another; the
    conversation, the entry and the message are each one ``INSERT … ON CONFLICT DO NOTHING``, so a
    concurrent delivery of the same message loses without a savepoint; the conversation is updated
    once; the events are built from the rows in hand."""
    found = await _fetch(session, _LOOKUP, channel=message.channel, address=message.address,
                         provider_id=message.provider_id)
    existing = found[0][0] if found else None
    if existing is not None:
        row = await session.get(Message, existing)
        assert row is not None
        return await _edit(session, row, message)
    if message.bounce_of:
        await _bounce(session, message)

    conversation = _conversation_of(found[0][1:]) if found and found[0][1] is not None else None
    if conversation is None:
        conversation = await _new_conversation(session, message)
    assignee_id = await _assignee(session, conversation, message.assignee)
    thread = await _thread_row(session, message) if message.thread_ids else None
    person: Person | None = None
    deal: _Deal | None = None
    if thread is not None:
        person, deal = thread.person, thread.deal
    managers: dict[tuple[str, int], int | None] = {}
    new_lead = False
    if person is None or _person_of(conversation) is not None:
        person = _person_of(conversation)
        if person is None:
            person, new_lead = await _sender(session, message, region)
    place: _Deal | None = None
    if person is not None and not new_lead:
        person, place = await _facts(session, person, managers)
    if person is not None and message.shared_phone and message.shared_own_phone:
        shared = await _shared_contact(session, conversation, person, message, region)
        if shared != person:
            person, place = await _facts(session, shared, managers)
    if person is not None:
        _link(conversation, person)
        if new_lead:
            managers[("lead", person[1])] = None
            routed = await routing.assignee_for_new_chat(session, board, assignee_id)
            if routed != assignee_id:
                conversation.assignee_id = assignee_id = routed
        if deal is None:
            deal = place

    entry = None
    if person is not None:
        targets = _entry_targets(person, deal)
        entry = await _new_entry(session, message, targets)
        if entry is None:
            return None  # taken before, or a concurrent delivery of the same message won
        if deal is not None and (deal.last_activity_at is None or entry.occurred_at > deal.last_activity_at):
            await _DEAL_ACTIVITY.first(session, deal_id=deal.id, before=entry.occurred_at,
                                       at=entry.occurred_at, updated_at=utcnow())
        entry_scope_ = await _entry_scope(session, entry, deal, managers)
        events.emit(session, "timeline.added", {"entry": entry_dict(entry, {})}, scope=entry_scope_)
        await _attach_rows(session, entry, stored)
    reply_to = thread.id if thread is not None else None
    if message.reply_to_provider_id:
        rows = await _fetch(session, _MESSAGE_ID, channel=message.channel,
                            provider_id=message.reply_to_provider_id)
        reply_to = rows[0][0] if rows else None
    now = utcnow()
    values: dict[str, Any] = {
        "channel": message.channel, "direction": "in", "status": "received",
        "conversation_id": conversation.id, "entry_id": entry.id if entry else None,
        "provider_id": message.provider_id, "reply_to_id": reply_to, "author_id": None,
        "text": storable(message.text), "subject": storable(message.subject)[:500], "attempts": 0,
        "parts_sent": 0, "next_attempt_at": None, "error_code": None, "error": None, "created_at": now,
        "sent_at": None, "status_at": now,
    }
    inserted = await _NEW_MESSAGE.first(session, **values)
    if inserted is None:
        return None  # a concurrent delivery of the same message (kept out of the timeline) won
    row = Message(id=inserted[0], **values)  # not added: only for its API shape
    await _touch(session, conversation, message, entry, assignee_id, linked=person is not None)
    result = message_dict(row, conversation)
    result["entry"] = entry_dict(entry) if entry is not None else None
    result["person"] = {"type": person[0], "id": person[1], "client_id": person[2]} if person else None
    events.emit(session, "message.received", {"message": result},
                scope=await _conversation_scope(session, conversation, managers))
    if entry is not None and stored:  # the entry went out (timeline.added) before its files were attached
        events.emit(session, "timeline.updated", {"entry": entry_dict(entry)}, scope=entry_scope_)
    return result


# --- the lean intake's reads and writes -------------------------------------------------------------------

_conv = Conversation.__table__
_msg = Message.__table__
_CONV_COLUMNS = (_conv.c.id, _conv.c.channel, _conv.c.address, _conv.c.title, _conv.c.username,
                 _conv.c.client_id, _conv.c.contact_id, _conv.c.lead_id, _conv.c.assignee_id, _conv.c.unread,
                 _conv.c.last_message_at, _conv.c.last_text, _conv.c.state, _conv.c.created_at)
_BY_ADDRESS = (_conv.c.channel == bindparam("channel"), _conv.c.address == bindparam("address"))
_existing = (select(_msg.c.id).where(_msg.c.channel == bindparam("channel"),
                                     _msg.c.provider_id == bindparam("provider_id")).scalar_subquery())
_found = select(*_CONV_COLUMNS).where(*_BY_ADDRESS).subquery()
# the message if taken before, and the conversation: one row (of NULLs when neither is there)
_LOOKUP = Prepared(select(_existing.label("existing"), *_found.c)
                   .select_from(select(literal(1).label("one")).subquery().outerjoin(_found, true())))
_CONVERSATION = Prepared(select(*_CONV_COLUMNS).where(*_BY_ADDRESS))
_MESSAGE_ID = Prepared(select(_msg.c.id).where(_msg.c.channel == bindparam("channel"),
                                               _msg.c.provider_id == bindparam("provider_id")))
_ACTIVE_USER = Prepared(select(User.id).where(User.login == bindparam("login"), User.active.is_(True)))
_CLIENT_MANAGER = Prepared(select(Client.manager_id).where(Client.id == bindparam("owner")))
_LEAD_MANAGER = Prepared(select(Lead.manager_id).where(Lead.id == bindparam("owner")))


@dataclass(frozen=True, slots=True)
class _Deal:
    id: int
    responsible_id: int | None
    client_id: int | None
    lead_id: int | None
    last_activity_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Thread:
    id: int
    person: Person | None
    deal: _Deal | None  # the earlier message's deal while it is still open


def _placement(owner: Any) -> Any:
    """The placement rule's deal of an owner (bound as ``owner``), as ``placement_deal`` orders it."""
    return (select(Deal.id, Deal.responsible_id, Deal.client_id, Deal.lead_id, Deal.last_activity_at)
            .join(Stage, Stage.id == Deal.stage_id).where(owner == bindparam("owner"), Stage.kind == "active")
            .order_by(Deal.last_activity_at.desc(), Deal.id.desc()).limit(1).subquery())


def _head(*columns: Any, owner: Any, deal_owner: Any) -> Prepared:
    head = select(*columns).where(owner == bindparam("owner")).subquery()
    deal = _placement(deal_owner)
    return Prepared(select(*head.c, *deal.c).select_from(head.outerjoin(deal, true())))


# a person's manager (a lead: and the client it became) with their placement deal: one statement
_CLIENT_HEAD = _head(Client.manager_id, owner=Client.id, deal_owner=Deal.client_id)
_LEAD_HEAD = _head(Lead.manager_id, Lead.converted_client_id, owner=Lead.id, deal_owner=Deal.lead_id)


def _binds(table: Any, *names: str) -> dict[str, Any]:
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


_entries = TimelineEntry.__table__
_ENTRY_COLUMNS = ("kind", "text", "direction", "author_id", "deal_id", "client_id", "lead_id", "payload",
                  "occurred_at", "external_key", "pinned", "created_at")
_MESSAGE_COLUMNS = ("channel", "direction", "status", "conversation_id", "entry_id", "provider_id",
                    "reply_to_id", "author_id", "text", "subject", "attempts", "parts_sent",
                    "next_attempt_at", "error_code", "error", "created_at", "sent_at", "status_at")
_DELIVERY_COLUMNS = ("channel", "key", "status", "body", "attempts", "next_attempt_at", "error",
                     "processed_at", "created_at")
_NEW_CONVERSATION = CompiledWrite(lambda insert_: insert_(_conv).values(**_binds(_conv, *(
    c.key for c in _CONV_COLUMNS[1:]))).on_conflict_do_nothing(
        index_elements=[_conv.c.channel, _conv.c.address]).returning(_conv.c.id))
_NEW_ENTRY = CompiledWrite(lambda insert_: insert_(_entries).values(**_binds(_entries, *_ENTRY_COLUMNS))
                    .on_conflict_do_nothing(index_elements=[_entries.c.external_key]).returning(_entries.c.id))
_NEW_MESSAGE = CompiledWrite(lambda insert_: insert_(_msg).values(**_binds(_msg, *_MESSAGE_COLUMNS))
                      .on_conflict_do_nothing(index_elements=[_msg.c.channel, _msg.c.provider_id])
                      .returning(_msg.c.id))
_DELIVERY = CompiledWrite(lambda insert_: insert_(InboundDelivery.__table__)
                   .values(**_binds(InboundDelivery.__table__, *_DELIVERY_COLUMNS))
                   .on_conflict_do_nothing(index_elements=[InboundDelivery.__table__.c.channel,
                                                           InboundDelivery.__table__.c.key])
                   .returning(InboundDelivery.__table__.c.id))
_deals = Deal.__table__
_DEAL_ACTIVITY = CompiledWrite(lambda _: update(_deals).where(
    _deals.c.id == bindparam("deal_id", type_=_deals.c.id.type),
    or_(_deals.c.last_activity_at.is_(None),
        _deals.c.last_activity_at < bindparam("before", type_=_deals.c.last_activity_at.type)))
    .values(last_activity_at=bindparam("at", type_=_deals.c.last_activity_at.type),
            updated_at=bindparam("updated_at", type_=_deals.c.updated_at.type)))


def _touch_statement(linked: bool) -> CompiledWrite:
    def build(_: Any) -> Any:
        values: dict[str, Any] = {
            "unread": _conv.c.unread + 1,
            **_binds(_conv, "last_message_at", "last_text"),
            "title": func.coalesce(bindparam("new_title", type_=_conv.c.title.type), _conv.c.title),
            "assignee_id": func.coalesce(bindparam("new_assignee", type_=_conv.c.assignee_id.type),
                                         _conv.c.assignee_id),
        }
        if linked:
            values.update(_binds(_conv, "client_id", "contact_id", "lead_id"))
        return (update(_conv).where(_conv.c.id == bindparam("conversation_id", type_=_conv.c.id.type))
                .values(**values).returning(_conv.c.unread))
    return CompiledWrite(build)


# the conversation after a message: the unread count counted by the database, the person written
# only when the message linked one
_TOUCH = {True: _touch_statement(True), False: _touch_statement(False)}


def _insert(session: AsyncSession, table: Any) -> Any:
    return (postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


async def _fetch(session: AsyncSession, statement: Prepared, **params: Any) -> list[tuple[Any, ...]]:
    """A compiled read on the unit of work's own connection (after flushing what the ORM holds)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await statement.all(await session.connection(), **params)


def _conversation_of(row: Sequence[Any]) -> Conversation:
    """A detached ``Conversation`` of a row of ``_CONV_COLUMNS`` (written back by ``_touch``)."""
    return Conversation(**{column.key: value for column, value in zip(_CONV_COLUMNS, row, strict=True)})


async def _new_conversation(session: AsyncSession, message: InboundMessage) -> Conversation:
    """The conversation made for this message, or the one a concurrent delivery made first (on
    PostgreSQL the INSERT waits for that transaction, so its person is seen: one lead, not two)."""
    now = utcnow()
    values = {"channel": message.channel, "address": message.address, "title": message.sender_name[:300],
              "username": message.username, "client_id": None, "contact_id": None, "lead_id": None,
              "assignee_id": None, "unread": 0, "last_message_at": now, "last_text": "", "state": "open",
              "created_at": now}
    inserted = await _NEW_CONVERSATION.first(session, **values)
    if inserted is not None:
        return Conversation(id=inserted[0], **values)
    rows = await _fetch(session, _CONVERSATION, channel=message.channel, address=message.address)
    if not rows:  # pragma: no cover - the conflict was about something else
        raise RuntimeError("conversation insert conflicted but none was found")
    return _conversation_of(rows[0])


async def _assignee(session: AsyncSession, conversation: Conversation, login: str | None) -> int | None:
    """A shared mailbox's assignee for a conversation that has had no message yet (else None)."""
    if login and conversation.assignee_id is None and conversation.unread == 0 and not conversation.last_text:
        rows = await _fetch(session, _ACTIVE_USER, login=login)
        if rows:
            assignee: int = rows[0][0]
            conversation.assignee_id = assignee
            return assignee
    return None


async def _thread_row(session: AsyncSession, message: InboundMessage) -> _Thread | None:
    """The message this letter answers (the first of its thread ids we hold), its person and its
    deal while still open: one statement for all the ids."""
    wanted = list(dict.fromkeys(message.thread_ids[:20]))
    entry = TimelineEntry.__table__
    active = (select(Deal.id, Deal.responsible_id, Deal.client_id, Deal.lead_id, Deal.last_activity_at)
              .join(Stage, Stage.id == Deal.stage_id).where(Stage.kind == "active").subquery())
    rows: Sequence[tuple[Any, ...]] = (await session.execute(
        select(_msg.c.id, _msg.c.provider_id, _conv.c.client_id, _conv.c.contact_id, _conv.c.lead_id,
               *active.c)
        .select_from(_msg.outerjoin(_conv, _conv.c.id == _msg.c.conversation_id)
                     .outerjoin(entry, entry.c.id == _msg.c.entry_id)
                     .outerjoin(active, active.c.id == entry.c.deal_id))
        .where(_msg.c.channel == message.channel, _msg.c.provider_id.in_(wanted)))).all()
    by_id = {row[1]: row for row in rows}
    for provider_id in wanted:
        row = by_id.get(provider_id)
        if row is None:
            continue
        _, _, client_id, contact_id, lead_id, deal_id, responsible_id, deal_client, deal_lead, at = row
        person: Person | None = None
        if contact_id is not None:
            person = "contact", contact_id, client_id
        elif client_id is not None:
            person = "client", client_id, client_id
        elif lead_id is not None:
            person = "lead", lead_id, None
        deal = _Deal(deal_id, responsible_id, deal_client, deal_lead, at) if deal_id is not None else None
        return _Thread(row[0], person, deal)
    return None


async def _facts(session: AsyncSession, person: Person,
                 managers: dict[tuple[str, int], int | None]) -> tuple[Person, _Deal | None]:
    """The person (a converted lead: its client) and their placement deal; their manager goes into
    ``managers`` for the events' scope."""
    if person[0] == "lead":
        rows = await _fetch(session, _LEAD_HEAD, owner=person[1])
        if not rows or rows[0][1] is None:
            if rows:
                managers[("lead", person[1])] = rows[0][0]
            return person, _deal_of(rows[0][2:]) if rows else None
        client_id = rows[0][1]
        person = ("client", client_id, client_id)
    rows = await _fetch(session, _CLIENT_HEAD, owner=person[2])
    if rows and person[2] is not None:  # (rows found by owner=person[2]: it is not None)
        managers[("client", person[2])] = rows[0][0]
    return person, _deal_of(rows[0][1:]) if rows else None


def _deal_of(row: Sequence[Any]) -> _Deal | None:
    return _Deal(*row) if row[0] is not None else None


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


def _entry_targets(person: Person, deal: _Deal | None) -> dict[str, int | None]:
    """What ``add_entry`` stores for ``_targets``: an entry on a deal carries the deal's client or lead."""
    if deal is not None:
        return {"deal_id": deal.id, "client_id": deal.client_id, "lead_id": deal.lead_id}
    kind, person_id, client_id = person
    if kind == "lead":
        return {"deal_id": None, "client_id": None, "lead_id": person_id}
    return {"deal_id": None, "client_id": client_id, "lead_id": None}


async def _manager(session: AsyncSession, managers: dict[tuple[str, int], int | None], kind: str,
                   owner: int) -> int | None:
    if (kind, owner) not in managers:
        rows = await _fetch(session, _CLIENT_MANAGER if kind == "client" else _LEAD_MANAGER, owner=owner)
        managers[(kind, owner)] = rows[0][0] if rows else None
    return managers[(kind, owner)]


async def _entry_scope(session: AsyncSession, entry: TimelineEntry, deal: _Deal | None,
                       managers: dict[tuple[str, int], int | None]) -> dict[str, Any]:
    """``timeline.entry_scope`` from the rows in hand."""
    scope: dict[str, Any] = {}
    if entry.deal_id is not None:
        scope["responsible_id"] = deal.responsible_id if deal is not None else None
    if entry.client_id is not None:
        scope["manager_id"] = await _manager(session, managers, "client", entry.client_id)
    elif entry.lead_id is not None:
        manager_id = await _manager(session, managers, "lead", entry.lead_id)
        scope["manager_id"] = manager_id
        scope["unassigned"] = manager_id is None
    return scope


async def _conversation_scope(session: AsyncSession, conversation: Conversation,
                              managers: dict[tuple[str, int], int | None]) -> dict[str, Any]:
    """``_recipients`` from the rows in hand."""
    manager_id = None
    if conversation.client_id is not None:
        manager_id = await _manager(session, managers, "client", conversation.client_id)
    elif conversation.lead_id is not None:
        manager_id = await _manager(session, managers, "lead", conversation.lead_id)
    scope: dict[str, Any] = {"manager_id": manager_id, "assignee_id": conversation.assignee_id}
    if manager_id is None and conversation.assignee_id is None:
        scope["unassigned"] = True
    return scope


async def _attach_rows(session: AsyncSession, entry: TimelineEntry, stored: list[tuple[Any, str]]) -> None:
    """``_attach`` in one INSERT (and one UPDATE of the payload when a letter has inline images)."""
    if not stored:
        return
    now = utcnow()
    rows = []
    for file, digest in stored:
        name = sanitize_filename(file.filename)
        rows.append({"entry_id": entry.id, "task_id": None, "filename": name,
                     "content_type": content_type_of(file.content_type, name), "size": len(file.data),
                     "sha256": digest, "created_at": now})
    table = Attachment.__table__
    ids = (await session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                 rows)).scalars().all()
    cids: dict[str, int] = {}
    for (file, _), row, attachment_id in zip(stored, rows, ids, strict=True):
        entry.attachments.append(Attachment(id=attachment_id, **row))
        if getattr(file, "content_id", None):
            cids[file.content_id.strip("<>")] = attachment_id
    if cids:
        entry.payload = {**(entry.payload or {}), "cids": cids}
        await session.execute(update(TimelineEntry).where(TimelineEntry.id == entry.id)
                              .values(payload=entry.payload).execution_options(synchronize_session=False))


async def _touch(session: AsyncSession, conversation: Conversation, message: InboundMessage,
                 entry: TimelineEntry | None, assignee_id: int | None, linked: bool) -> None:
    """The conversation after this message, in one UPDATE (see ``_TOUCH``)."""
    values: dict[str, Any] = {
        "conversation_id": conversation.id,
        "last_message_at": entry.occurred_at if entry else (message.at or utcnow()),
        "last_text": _preview(message.subject or message.text, message.files),
        "new_title": message.sender_name[:300] if message.sender_name and not conversation.title else None,
        "new_assignee": assignee_id,
    }
    if linked:
        values.update(client_id=conversation.client_id, contact_id=conversation.contact_id,
                      lead_id=conversation.lead_id)
    returned = await _TOUCH[linked].first(session, **values)
    assert returned is not None
    conversation.unread = returned[0]
    conversation.last_message_at = values["last_message_at"]
    conversation.last_text = values["last_text"]
    if values["new_title"] is not None:
        conversation.title = values["new_title"]
    if assignee_id is not None:
        conversation.assignee_id = assignee_id


async def _new_entry(session: AsyncSession, message: InboundMessage,
                     targets: dict[str, int | None]) -> TimelineEntry | None:
    """The message's entry in one ``INSERT … ON CONFLICT (external_key) DO NOTHING`` (what
    ``add_entry`` stores; None: the key is taken, by a replay or a concurrent delivery that won); a
    detached ``TimelineEntry`` for the events' shape."""
    now = utcnow()
    values: dict[str, Any] = {
        "kind": message.channel, "text": storable(message.text), "direction": "in", "author_id": None,
        **targets, "payload": storable_json(_payload(message)), "occurred_at": message.at or now,
        "external_key": storable(f"{message.channel}:{message.provider_id}"), "pinned": False,
        "created_at": now,
    }
    inserted = await _NEW_ENTRY.first(session, **values)
    if inserted is None:
        return None
    return TimelineEntry(id=inserted[0], attachments=[], **values)


# --- delivery statuses ------------------------------------------------------------------------------------

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


# --- outbound ---------------------------------------------------------------------------------------------

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


