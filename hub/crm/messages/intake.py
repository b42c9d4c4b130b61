"""``MessageIntake``: the ``hub.crm.ports.MessageIntakePort`` over a database."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events, routing
from hub.crm.attachments import store_bytes
from hub.crm.messages.conversations import _recipients, conversation_dict
from hub.crm.messages.inbound import take_message
from hub.crm.messages.statements import _remember_delivery, _save_cursor
from hub.crm.messages.statuses import apply_status
from hub.crm.models import ChannelCursor, Conversation, Message
from hub.crm.ports import DeliveryStatus, InboundMessage, MessageChannel
from hub.inbound import journal

log = logging.getLogger(__name__)

class UnitOfWork(Protocol):
    # urgent: as in ``hub.inbound.journal.UnitOfWork`` (the intake's journal writer shares it)
    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[AsyncSession]: ...


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

