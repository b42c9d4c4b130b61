"""Taking one inbound message in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import contact_points, events, routing
from hub.crm.messages.conversations import Person, _link, _person_of, message_dict
from hub.crm.messages.senders import _sender, _shared_contact
from hub.crm.messages.statements import (
    _ACTIVE_USER,
    _CLIENT_HEAD,
    _CLIENT_MANAGER,
    _DEAL_ACTIVITY,
    _LEAD_HEAD,
    _LEAD_MANAGER,
    _LOOKUP,
    _MESSAGE_ID,
    _NEW_MESSAGE,
    _attach_rows,
    _conv,
    _conversation_of,
    _Deal,
    _fetch,
    _msg,
    _new_conversation,
    _new_entry,
    _Thread,
    _touch,
)
from hub.crm.messages.statuses import show_status
from hub.crm.models import Conversation, Deal, Message, Stage, TimelineEntry, utcnow
from hub.crm.ports import InboundMessage
from hub.crm.timeline import entry_dict, entry_scope, storable, user_refs
from hub.crm.validate import iso


async def _edit(session: AsyncSession, message_id: int, message: InboundMessage) -> dict[str, Any] | None:
    """A message taken before: its edit replaces the text of its entry (a replay changes nothing)."""
    existing = await session.get(Message, message_id)
    assert existing is not None
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


@dataclass(slots=True)
class _Arrival:
    """What taking one message in has found so far: the steps of ``take_message`` fill it in."""

    message: InboundMessage
    conversation: Conversation
    assignee_id: int | None = None  # a shared mailbox's assignee, or the free agent routing chose
    thread: _Thread | None = None  # the earlier message a letter answers
    person: Person | None = None
    deal: _Deal | None = None  # where the entry goes (else the person's own timeline)
    new_lead: bool = False  # the person is a lead this message made
    managers: dict[tuple[str, int], int | None] = field(default_factory=dict)  # for the events' scope
    entry: TimelineEntry | None = None
    entry_scope: dict[str, Any] = field(default_factory=dict)


async def take_message(session: AsyncSession, message: InboundMessage,
                       stored: list[tuple[Any, str]], region: str = "RU",
                       board: routing.Board | None = None) -> dict[str, Any] | None:
    """Store one inbound message (see ``hub.crm.messages``). None when it was taken before.
    The chat of a person the message made a lead for goes to a free agent when its assignee (a shared
    mailbox's, else nobody) is not free and routing is on (``hub.crm.routing``; ``board``: presence).

    Lean (about eight statements for a known conversation): the message and its conversation are
    read in one compiled statement, the person's manager and placement deal in another; the
    conversation, the entry and the message are each one ``INSERT … ON CONFLICT DO NOTHING``, so a
    concurrent delivery of the same message loses without a savepoint; the conversation is updated
    once; the events are built from the rows in hand."""
    found = await _fetch(session, _LOOKUP, channel=message.channel, address=message.address,
                         provider_id=message.provider_id)
    if found and found[0][0] is not None:
        return await _edit(session, found[0][0], message)
    if message.bounce_of:
        await _bounce(session, message)
    arrival = _Arrival(message, await _conversation_for(session, message, found))
    arrival.assignee_id = await _assignee(session, arrival.conversation, message.assignee)
    await _find_person(session, arrival, region)
    if arrival.person is not None:
        await _link_person(session, arrival, board)
        if not await _write_entry(session, arrival, stored):
            return None  # taken before, or a concurrent delivery of the same message won
    row = await _write_message(session, arrival)
    if row is None:
        return None  # a concurrent delivery of the same message (kept out of the timeline) won
    await _touch(session, arrival.conversation, message, arrival.entry, arrival.assignee_id,
                 linked=arrival.person is not None)
    return await _announce(session, arrival, row, stored)


async def _conversation_for(session: AsyncSession, message: InboundMessage,
                            found: list[tuple[Any, ...]]) -> Conversation:
    """The conversation ``_LOOKUP`` found (its columns after the message's id), else a new one."""
    if found and found[0][1] is not None:
        return _conversation_of(found[0][1:])
    return await _new_conversation(session, message)


async def _find_person(session: AsyncSession, arrival: _Arrival, region: str) -> None:
    """Who wrote: the person of the thread a letter answers (with its deal), the conversation's
    person, else the sender identified or made a lead; a converted lead's client; a shared own phone's
    owner. Their manager and placement deal come with them (``_facts``)."""
    message, conversation = arrival.message, arrival.conversation
    if message.thread_ids and (thread := await _thread_row(session, message)) is not None:
        arrival.thread, arrival.person, arrival.deal = thread, thread.person, thread.deal
    if arrival.person is None or _person_of(conversation) is not None:
        arrival.person = _person_of(conversation)
        if arrival.person is None:
            arrival.person, arrival.new_lead = await _sender(session, message, region)
    person, place = arrival.person, None
    if person is not None and not arrival.new_lead:
        person, place = await _facts(session, person, arrival.managers)
    if person is not None and message.shared_phone and message.shared_own_phone:
        shared = await _shared_contact(session, conversation, person, message, region)
        if shared != person:
            person, place = await _facts(session, shared, arrival.managers)
    arrival.person = person
    if arrival.deal is None:
        arrival.deal = place


async def _link_person(session: AsyncSession, arrival: _Arrival, board: routing.Board | None) -> None:
    """The conversation is the person's; a new lead's chat may go to a free agent."""
    assert arrival.person is not None
    _link(arrival.conversation, arrival.person)
    if not arrival.new_lead:
        return
    arrival.managers[("lead", arrival.person[1])] = None
    routed = await routing.assignee_for_new_chat(session, board, arrival.assignee_id)
    if routed != arrival.assignee_id:
        arrival.conversation.assignee_id = arrival.assignee_id = routed


async def _write_entry(session: AsyncSession, arrival: _Arrival, stored: list[tuple[Any, str]]) -> bool:
    """The message's timeline entry (the deal's latest activity), ``timeline.added`` and its files;
    False when the entry's key is taken (a replay, or a concurrent delivery that won)."""
    assert arrival.person is not None
    deal = arrival.deal
    entry = await _new_entry(session, arrival.message, _entry_targets(arrival.person, deal))
    if entry is None:
        return False
    if deal is not None and (deal.last_activity_at is None or entry.occurred_at > deal.last_activity_at):
        await _DEAL_ACTIVITY.first(session, deal_id=deal.id, before=entry.occurred_at,
                                   at=entry.occurred_at, updated_at=utcnow())
    arrival.entry = entry
    arrival.entry_scope = await _entry_scope(session, entry, deal, arrival.managers)
    events.emit(session, "timeline.added", {"entry": entry_dict(entry, {})}, scope=arrival.entry_scope)
    await _attach_rows(session, entry, stored)
    return True


async def _write_message(session: AsyncSession, arrival: _Arrival) -> Message | None:
    """The message's row (one ``INSERT … ON CONFLICT DO NOTHING``): a detached ``Message`` for its API
    shape, or None when a concurrent delivery of the same message won."""
    message, entry = arrival.message, arrival.entry
    reply_to = arrival.thread.id if arrival.thread is not None else None
    if message.reply_to_provider_id:
        rows = await _fetch(session, _MESSAGE_ID, channel=message.channel,
                            provider_id=message.reply_to_provider_id)
        reply_to = rows[0][0] if rows else None
    now = utcnow()
    values: dict[str, Any] = {
        "channel": message.channel, "direction": "in", "status": "received",
        "conversation_id": arrival.conversation.id, "entry_id": entry.id if entry else None,
        "provider_id": message.provider_id, "reply_to_id": reply_to, "author_id": None,
        "text": storable(message.text), "subject": storable(message.subject)[:500], "attempts": 0,
        "parts_sent": 0, "next_attempt_at": None, "error_code": None, "error": None, "created_at": now,
        "sent_at": None, "status_at": now,
    }
    inserted = await _NEW_MESSAGE.first(session, **values)
    return Message(id=inserted[0], **values) if inserted is not None else None


async def _announce(session: AsyncSession, arrival: _Arrival, row: Message,
                    stored: list[tuple[Any, str]]) -> dict[str, Any]:
    """``message.received`` (and the entry again, now with its files) → the message's API shape."""
    person, entry = arrival.person, arrival.entry
    result = message_dict(row, arrival.conversation)
    result["entry"] = entry_dict(entry) if entry is not None else None
    result["person"] = {"type": person[0], "id": person[1], "client_id": person[2]} if person else None
    events.emit(session, "message.received", {"message": result},
                scope=await _conversation_scope(session, arrival.conversation, arrival.managers))
    if entry is not None and stored:  # the entry went out (timeline.added) before its files were attached
        events.emit(session, "timeline.updated", {"entry": entry_dict(entry)}, scope=arrival.entry_scope)
    return result


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

