"""The outbox: sends the messages the CRM queued, through the channels' senders, exactly once.

A message is queued (``hub.crm.messages.queue_message``) in the same transaction as its timeline
entry. The worker here:

1. at start, marks every message left ``sending`` by a crash as ``unknown``: it may have reached the
   channel, and neither Telegram nor Twilio lets us ask or dedupe a repeated send, so the agent
   decides (one click resends; see docs/decisions.md);
2. claims due ``queued`` messages one by one (``queued`` → ``sending``, committed before the send, so
   a second worker or process never takes the same one), oldest first, one conversation at a time
   in order, several conversations at once;
3. hands each to its channel's ``Sender``: a receipt → ``sent`` (Twilio: ``accepted``, its status
   callbacks follow); ``RetryLater`` → ``queued`` again after an exponential backoff with jitter (or
   the channel's ``retry_after``), ``failed`` after ``max_attempts``; ``PermanentFailure`` →
   ``failed`` with the reason; anything else → ``unknown``.

It wakes on the bus's ``message.queued`` hint and polls every ``poll_seconds`` besides (the
database is the truth: a hint lost, or a message queued by another process, is still found).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub import backoff, tasks
from hub.bus import Bus, Event
from hub.crm import messages
from hub.crm.models import Message, utcnow
from hub.crm.ports import PermanentFailure, RetryLater, Sender
from hub.db import Database

log = logging.getLogger(__name__)

UNKNOWN_REASON = "the hub stopped while sending: the message may or may not have been delivered"


class Outbox:
    def __init__(self, db: Database, bus: Bus, senders: Mapping[str, Sender], *, attachments_dir: str | Path,
                 poll_seconds: float = 5.0, max_attempts: int = 10, concurrency: int = 8,
                 batch: int = 200) -> None:
        self.db = db
        self.bus = bus
        self.senders = dict(senders)
        self.attachments_dir = Path(attachments_dir)
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self.sent = 0  # messages handed over since start (for the benchmark and the logs)

    async def start(self) -> None:
        await self.recover()
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await tasks.cancel(self._task)
        self._task = None

    def wake(self) -> None:
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.name == "message.queued":
            self._wake.set()

    async def recover(self) -> int:
        """Messages a previous run left ``sending`` → ``unknown`` (never resent blindly)."""
        async with self.db.transaction() as s:
            ids = (await s.scalars(select(Message.id).where(Message.status == "sending"))).all()
            for message_id in ids:
                await messages.record_outcome(s, message_id, "unknown", error=UNKNOWN_REASON)
        if ids:
            log.warning("outbox: %d messages were being sent when the hub stopped; marked unknown", len(ids))
        return len(ids)

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: a round failed; trying again")
                busy = False
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def due(self) -> list[tuple[int, int]]:
        """(message id, conversation id) of due queued messages of the channels we can send, oldest first."""
        async with self.db.reading() as s:
            rows = await s.execute(
                select(Message.id, Message.conversation_id)
                .where(Message.status == "queued", Message.next_attempt_at <= utcnow(),
                       Message.channel.in_(list(self.senders)))
                .order_by(Message.id).limit(self.batch))
            return [(r[0], r[1]) for r in rows]

    async def drain_once(self) -> bool:
        """Send what is due now; True when there may be more."""
        due = await self.due()
        if not due:
            return False
        lanes: dict[int, list[int]] = {}
        for message_id, conversation_id in due:
            lanes.setdefault(conversation_id, []).append(message_id)
        limit = asyncio.Semaphore(self.concurrency)

        async def lane(ids: list[int]) -> None:
            async with limit:
                for message_id in ids:
                    if not await self.send_one(message_id):
                        return  # keep the conversation's order: the rest waits for this one

        await asyncio.gather(*(lane(ids) for ids in lanes.values()))
        return len(due) >= self.batch

    async def send_one(self, message_id: int) -> bool:
        """Claim and send one message; False when it did not go (the next ones of its chat wait)."""
        async with self.db.transaction() as s:
            message = await messages.claim(s, message_id)
            if message is None:
                return False
            outgoing = await messages.outgoing(s, message, self.attachments_dir)
        sender = self.senders[outgoing.channel]
        try:
            receipt = await sender.send(outgoing)
        except RetryLater as retry:
            await self._retry(outgoing.id, outgoing.attempt, retry)
            return False
        except PermanentFailure as failure:
            await self._record(outgoing.id, "failed", error=failure.reason, error_code=failure.code)
            return True
        except asyncio.CancelledError:
            raise  # stopped mid-send: left "sending", recovered as unknown at the next start
        except Exception as error:
            log.exception("outbox: sending message %d failed in an unexpected way", outgoing.id)
            await self._record(outgoing.id, "unknown", error=f"{type(error).__name__}: {error}")
            return False
        status = "accepted" if receipt.status in ("accepted", "queued") else "sent"
        await self._record(outgoing.id, status, provider_id=receipt.provider_id)
        self.sent += 1
        return True

    async def _retry(self, message_id: int, attempt: int, retry: RetryLater) -> None:
        if attempt >= self.max_attempts:
            await self._record(message_id, "failed",
                               error=f"gave up after {attempt} attempts: {retry.reason}")
            return
        delay = backoff.delay(attempt - 1, initial=2.0, cap=600.0, jitter=(0.5, 1.0))
        if retry.after is not None:
            delay = max(delay, retry.after)
        await self._record(message_id, "queued", error=f"retrying: {retry.reason}",
                           retry_at=utcnow() + timedelta(seconds=delay))

    async def _record(self, message_id: int, status: str, **outcome: Any) -> None:
        async with self.db.transaction() as s:
            await messages.record_outcome(s, message_id, status, **outcome)
