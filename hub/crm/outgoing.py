"""The core's side of the outbox (``hub.outbox``): which queued messages are due, claiming one, the
sender's view of it, and the outcome of an attempt. ``OutgoingStore`` is the outbox's port over a
database; the functions below are its rules, each inside the caller's unit of work."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.attachments import stored_path
from hub.crm.messages import show_status
from hub.crm.models import Attachment, Conversation, Message, TimelineEntry, utcnow
from hub.crm.ports import MessageChannel, OutgoingFile, OutgoingMessage

UNKNOWN_REASON = "the hub stopped while sending: the message may or may not have been delivered"


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
    def reading(self) -> AbstractAsyncContextManager[AsyncSession]: ...


class OutgoingStore:
    """``hub.outbox.OutboxStore`` over a database: each call one unit of work."""

    def __init__(self, db: UnitOfWork, attachments_dir: str | Path) -> None:
        self.db = db
        self.attachments_dir = Path(attachments_dir)

    async def recover(self) -> int:
        """Messages a previous run left ``sending`` → ``unknown`` (never resent blindly)."""
        async with self.db.transaction() as s:
            ids = (await s.scalars(select(Message.id).where(Message.status == "sending"))).all()
            for message_id in ids:
                await record_outcome(s, message_id, "unknown", error=UNKNOWN_REASON)
        return len(ids)

    async def due(self, channels: Collection[str], limit: int) -> list[tuple[int, int]]:
        """(message id, conversation id) of due queued messages of these channels, oldest first."""
        async with self.db.reading() as s:
            rows = await s.execute(
                select(Message.id, Message.conversation_id)
                .where(Message.status == "queued", Message.next_attempt_at <= utcnow(),
                       Message.channel.in_(list(channels)))
                .order_by(Message.id).limit(limit))
            return [(r[0], r[1]) for r in rows]

    async def claim(self, message_id: int) -> OutgoingMessage | None:
        async with self.db.transaction() as s:
            message = await claim(s, message_id)
            if message is None:
                return None
            return await outgoing(s, message, self.attachments_dir)

    async def record(self, message_id: int, status: str, **outcome: Any) -> None:
        async with self.db.transaction() as s:
            await record_outcome(s, message_id, status, **outcome)


async def outgoing(session: AsyncSession, message: Message, attachments_dir: str | Path) -> OutgoingMessage:
    """The sender's view of a queued message."""
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    files: tuple[OutgoingFile, ...] = ()
    template: dict[str, Any] = {}
    if message.entry_id is not None:
        rows = (await session.scalars(select(Attachment).where(Attachment.entry_id == message.entry_id)
                                      .order_by(Attachment.id))).all()
        files = tuple(OutgoingFile(filename=a.filename, content_type=a.content_type,
                                   path=str(stored_path(attachments_dir, a.sha256))) for a in rows)
        if message.channel == "whatsapp":
            entry = await session.get(TimelineEntry, message.entry_id)
            template = ((entry.payload or {}).get("template") or {}) if entry is not None else {}
    references: tuple[str, ...]
    reply_to, references, mailbox = None, (), None
    if message.reply_to_id is not None:
        earlier = await session.get(Message, message.reply_to_id)
        if earlier is not None:
            reply_to = earlier.provider_id
            references, mailbox = await _thread_of(session, earlier)
    if message.channel == "email" and mailbox is None:
        mailbox = await _last_mailbox(session, conversation.id)
    channel = cast(MessageChannel, message.channel)  # a column of str, always one of MessageChannel
    return OutgoingMessage(id=message.id, channel=channel, address=conversation.address,
                           text=message.text, files=files, reply_to_provider_id=reply_to,
                           subject=message.subject, attempt=message.attempts, references=references,
                           mailbox=mailbox, to_name=conversation.title, parts_sent=message.parts_sent,
                           first_part_id=message.provider_id if message.parts_sent else None,
                           template_sid=template.get("sid"),
                           template_variables=tuple((template.get("variables") or {}).items()))


async def _thread_of(session: AsyncSession, earlier: Message) -> tuple[tuple[str, ...], str | None]:
    """The References of a reply to ``earlier`` (its own thread, oldest first, then it) and the
    mailbox it came to."""
    entry = await session.get(TimelineEntry, earlier.entry_id) if earlier.entry_id else None
    payload = entry.payload if entry is not None else {}
    older = [i for i in reversed(payload.get("thread_ids") or []) if isinstance(i, str)]
    own = [earlier.provider_id] if earlier.provider_id else []
    return tuple(dict.fromkeys(older + own))[-20:], payload.get("mailbox")


async def _last_mailbox(session: AsyncSession, conversation_id: int) -> str | None:
    """The mailbox the conversation's latest letter came to: the reply goes out from it."""
    rows = await session.scalars(
        select(TimelineEntry).join(Message, Message.entry_id == TimelineEntry.id)
        .where(Message.conversation_id == conversation_id, Message.direction == "in")
        .order_by(Message.id.desc()).limit(1))
    entry = rows.first()
    return (entry.payload or {}).get("mailbox") if entry is not None else None


async def claim(session: AsyncSession, message_id: int) -> Message | None:
    """Mark a queued message ``sending`` (one worker wins); None when another took it first, or when
    it is not due (another worker tried it meanwhile and put it back for later: a stale list of due
    messages must not send it before its retry time)."""
    result = await session.execute(
        update(Message).where(Message.id == message_id, Message.status == "queued",
                              Message.next_attempt_at <= utcnow())
        .values(status="sending", attempts=Message.attempts + 1, status_at=utcnow())
        .execution_options(synchronize_session=False))
    # AsyncSession.execute is typed to return Result; for a DML statement it is a CursorResult
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    message = await session.get(Message, message_id, populate_existing=True)
    return message


async def record_outcome(session: AsyncSession, message_id: int, status: str, *,
                         provider_id: str | None = None, error: str | None = None,
                         error_code: str | None = None, retry_at: datetime | None = None) -> Message | None:
    """The outbox's result of one attempt: sent/accepted, queued again (``retry_at``), failed, unknown."""
    message = await session.get(Message, message_id)
    if message is None:
        return None
    now = utcnow()
    message.status, message.status_at = status, now
    message.error, message.error_code = (error[:500] if error else None), error_code
    message.next_attempt_at = retry_at
    if provider_id is not None:
        message.provider_id = provider_id[:300]
    if status in ("sent", "accepted"):
        message.sent_at = now
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the provider gave an id we hold already: keep the message, not the id
        message.provider_id = None
        await session.flush()
    await show_status(session, message)
    return message
