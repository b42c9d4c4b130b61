"""The inbound journal (``InboundDelivery``): a webhook's delivery is stored before it is answered.

``JournalWriter.add(channel, key, body)`` returns once the delivery is committed — True when it is
new, False when that key was delivered before. Concurrent requests are written together by the write
engine (``hub.writes``: group commit, a key's deliveries in order), one INSERT for all that are
waiting, so the channel's server gets its answer after one short write however many deliveries
arrive at once; a batch that fails is answered with its error at once (the webhooks answer 5xx and
the channels deliver again). ``hub.inbound.worker`` then takes pending
deliveries into the CRM, each marked ``done`` in the same transaction as what it stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Index, Integer, LargeBinary, Result, String, UniqueConstraint, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from hub.orm import Base, utcnow
from hub.writes import Job, WriteEngine

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_KEY = 100
Row = tuple[str, str, bytes | None]  # channel, key, body


class InboundDelivery(Base):
    """The inbound journal: every delivery a channel received, by its own key (Telegram ``update_id``,
    Twilio ``MessageSid``), unique — a webhook retried or a poll repeated is recognised even when it
    carries no message. A webhook's raw ``body`` is written here (``pending``) before it is answered;
    ``hub.inbound.worker`` then takes it into the CRM (``done``), retrying what fails (``failed`` at last)."""

    __tablename__ = "inbound_deliveries"
    __table_args__ = (
        UniqueConstraint("channel", "key", name="uq_inbound_deliveries_channel_key"),
        Index("ix_inbound_deliveries_pending", "status", "next_attempt_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(100))
    # pending | done | failed (the server defaults are migration 0005's, which filled the existing rows)
    status: Mapped[str] = mapped_column(String(10), default="done", server_default="done")
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnitOfWork(Protocol):
    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[AsyncSession]: ...


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    channel: str
    key: str
    body: bytes
    attempts: int


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(InboundDelivery).on_conflict_do_nothing(index_elements=["channel", "key"])


async def write(session: AsyncSession, rows: Sequence[Row]) -> set[tuple[str, str]]:
    """Store pending deliveries (channel, key, body; keys unique); → the (channel, key) of those that
    were new. A multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` names them."""
    now = utcnow()
    values = [{"channel": c, "key": k, "status": "pending", "body": b, "attempts": 0,
               "next_attempt_at": now, "created_at": now} for c, k, b in rows]
    new: set[tuple[str, str]] = set()
    for start in range(0, len(values), 200):  # within SQLite's limit of bound parameters
        statement = _insert(session).values(values[start:start + 200]).returning(
            InboundDelivery.channel, InboundDelivery.key)
        returned: Result[str, str] = await session.execute(statement)
        new.update((channel, key) for channel, key in returned)
    return new


class DeliveryStore(Protocol):
    """Where a batch of deliveries is committed: ``hub.inbound.driver_store`` (through the driver, on the
    webhooks' path) or ``SessionStore`` (through a unit of work)."""

    async def insert(self, rows: Sequence[Row]) -> set[tuple[str, str]]: ...
    async def close(self) -> None: ...


class SessionStore:
    def __init__(self, db: UnitOfWork) -> None:
        self.db = db

    async def insert(self, rows: Sequence[Row]) -> set[tuple[str, str]]:
        # urgent: the channel's server is waiting for our answer, the CRM's work is not
        async with self.db.transaction(urgent=True) as s:
            return await write(s, rows)

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class Batch:
    """One unit of the journal writer: its deliveries' rows (a key once: the engine keeps a key's
    deliveries in separate units), then the (channel, key) of those that were new."""

    rows: list[Row] = field(default_factory=list)
    new: set[tuple[str, str]] = field(default_factory=set)


class _StoreUnits:
    """The write engine's unit of work for the journal: empty, because the store commits each batch
    itself (one statement through the driver, or a session of its own) when the batch closes."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        yield None


class _BatchHooks:
    def __init__(self, store: DeliveryStore, on_written: Callable[[], None] | None) -> None:
        self.store = store
        self.on_written = on_written

    async def open(self, session: Any, jobs: Sequence[Job[Batch]], alone: bool) -> Batch:
        return Batch()

    async def close(self, session: Any, batch: Batch) -> None:
        try:
            batch.new = await self.store.insert(batch.rows)
        except Exception:
            log.exception("inbound journal: %d deliveries could not be written", len(batch.rows))
            raise
        if self.on_written is not None and batch.new:
            self.on_written()


class JournalWriter:
    """Group commit of deliveries: ``await add(...)`` → True (new) / False (seen before)."""

    def __init__(self, db: UnitOfWork, on_written: Callable[[], None] | None = None,
                 max_batch: int = MAX_BATCH, store: DeliveryStore | None = None) -> None:
        self.store = store or SessionStore(db)
        self.engine: WriteEngine[Batch] = WriteEngine(
            _StoreUnits(), _BatchHooks(self.store, on_written), max_batch=max_batch, retry_alone=False,
            name="journal-writer")
        self.last_add = 0.0  # loop time of the latest delivery (the journal worker gives way to bursts)

    async def add(self, channel: str, key: str, body: bytes | None) -> bool:
        self.last_add = asyncio.get_running_loop().time()
        row = (channel, key[:MAX_KEY], body)

        async def journal_row(session: Any, batch: Batch) -> Batch:
            batch.rows.append(row)
            return batch

        batch: Batch = await self.engine.submit(row[:2], journal_row)
        return row[:2] in batch.new

    async def stop(self) -> None:
        await self.engine.stop(RuntimeError("the hub is stopping"))
        await self.store.close()


async def pending(session: AsyncSession, channels: list[str], limit: int = 100) -> list[Pending]:
    rows = await session.execute(
        select(InboundDelivery.id, InboundDelivery.channel, InboundDelivery.key, InboundDelivery.body,
               InboundDelivery.attempts)
        .where(InboundDelivery.status == "pending", InboundDelivery.next_attempt_at <= utcnow(),
               InboundDelivery.channel.in_(channels))
        .order_by(InboundDelivery.id).limit(limit))
    return [Pending(r[0], r[1], r[2], r[3] or b"", r[4]) for r in rows]


async def finish(session: AsyncSession, journal_id: int) -> bool:
    """Mark a pending delivery done (in the transaction that stored what it carried); False when it
    was done already (another worker took it)."""
    result = await session.execute(
        update(InboundDelivery).where(InboundDelivery.id == journal_id, InboundDelivery.status == "pending")
        .values(status="done", processed_at=utcnow(), error=None)
        .execution_options(synchronize_session=False))
    # AsyncSession.execute is typed to return Result; for a DML statement it is a CursorResult
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count == 1


async def is_pending(session: AsyncSession, journal_id: int) -> bool:
    return await session.scalar(select(InboundDelivery.status).where(InboundDelivery.id == journal_id)) \
        == "pending"


async def postpone(session: AsyncSession, journal_id: int, error: str, retry_at: datetime | None) -> None:
    """A failed attempt: try again at ``retry_at``, or give up (``failed``) when it is None."""
    await session.execute(
        update(InboundDelivery).where(InboundDelivery.id == journal_id)
        .values(attempts=InboundDelivery.attempts + 1, error=error[:500],
                status="pending" if retry_at is not None else "failed", next_attempt_at=retry_at)
        .execution_options(synchronize_session=False))
