"""``MessageIntake``: the ``hub.crm.ports.MessageIntakePort`` over a database — the scheduling around
the rules (``hub.crm.messages.inbound``, ``statuses``): a unit of work per fact, batches of messages
on the write engine (``hub.writes``), the inbound journal's writer (``hub.inbound.journal``)."""

from __future__ import annotations

import asyncio
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
from hub.writes import NoContext, Step, WriteEngine

log = logging.getLogger(__name__)

MAX_BATCH = 100  # messages in one unit of work of ``received_batch``


class UnitOfWork(Protocol):
    # urgent: as in ``hub.inbound.journal.UnitOfWork`` (the intake's journal writer shares it)
    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[AsyncSession]: ...


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
        self.engine: WriteEngine[None] = WriteEngine(db, NoContext(), max_batch=MAX_BATCH,
                                                     name="message-intake")
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
        await self.engine.stop(RuntimeError("the hub is stopping"))
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
        """Several messages (``(message, delivery key, position)``) through the write engine: those
        waiting are taken in together, one unit of work; one that fails is rolled back and tried again
        alone (the others are kept; its result is the exception). Then the channel cursor ``cursor`` is
        set to the position of the last message of the unbroken run taken from the first one on, so a
        failed message is offered again (the ones after it are then dropped as taken: their delivery
        keys are stored with them, which also makes a crash before the cursor is saved harmless)."""
        stored = [await self._store_files(message) for message, _, _ in items]
        answers = [self._enqueue(message, key, files)
                   for (message, key, _), files in zip(items, stored, strict=True)]
        results: list[dict[str, Any] | Exception | None] = []
        try:
            for (message, _, _), answer in zip(items, answers, strict=True):
                try:
                    results.append(await answer)
                except Exception as error:
                    log.error("%s message %s could not be taken in", message.channel, message.provider_id,
                              exc_info=error)
                    results.append(error)
        except asyncio.CancelledError:
            for answer in answers:
                answer.cancel()
            raise
        taken = next((n for n, r in enumerate(results) if isinstance(r, Exception)), len(results))
        position = items[taken - 1][2] if taken else None
        if cursor is not None and position is not None:
            await self.engine.submit(("cursor", cursor), _cursor_step(cursor, position))
        return results

    async def _store_files(self, message: InboundMessage) -> list[tuple[Any, str]] | Exception:
        try:
            return [(f, await store_bytes(self.attachments_dir, f.data)) for f in message.files if f.data]
        except Exception as error:
            return error

    def _enqueue(self, message: InboundMessage, delivery_key: str | None,
                 stored: list[tuple[Any, str]] | Exception) -> asyncio.Future[Any]:
        """The message's step on the engine (its files already stored); a message is its own key, so
        a repeat waits for the first to commit and is recognised."""
        if isinstance(stored, Exception):
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(stored)
            return failed

        async def take(session: AsyncSession, _: None) -> dict[str, Any] | None:
            if delivery_key is not None and not await _remember_delivery(session, message.channel,
                                                                         delivery_key):
                return None
            return await take_message(session, message, stored, self.region, board=self.board)

        return self.engine.enqueue((message.channel, message.provider_id), take)


def _cursor_step(name: str, position: str) -> Step[None]:
    async def save(session: AsyncSession, _: None) -> None:
        await _save_cursor(session, name, position)
    return save

