"""The inbound path's compiled reads and writes (a message is about eight statements)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.attachments import content_type_of, sanitize_filename
from hub.crm.messages.conversations import Person, _preview
from hub.crm.models import (
    Attachment,
    ChannelCursor,
    Client,
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
from hub.crm.ports import InboundMessage
from hub.crm.timeline import CompiledWrite, storable, storable_json
from hub.db import Prepared

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


def _payload(message: InboundMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"channel": message.channel, "from": message.sender_name,
                               "address": message.address, "status": "received"}
    optional = {"username": message.username, "extra": message.extra, "subject": message.subject,
                "html": message.html, "full_text": message.full_text, "mailbox": message.mailbox,
                "thread_ids": list(message.thread_ids), "recipients": list(message.recipients),
                "message_id": message.provider_id if message.channel == "email" else None}
    payload.update({key: value for key, value in optional.items() if value})
    return payload


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

