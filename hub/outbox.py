"""The outbox: sends the messages the CRM queued, through the channels' senders, exactly once.

A message is queued (``hub.crm.messages.queue_message``) in the same transaction as its timeline
entry. The worker here (infrastructure: it reaches the messages through an ``OutboxStore``, the core's
``hub.crm.outgoing.OutgoingStore``):

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
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from hub import background, backoff
from hub.bus import Bus, Event
from hub.delivery import PermanentFailure, RetryLater

log = logging.getLogger(__name__)


class Outgoing(Protocol):
    """What the outbox reads of a message it sends (the core's ``OutgoingMessage``)."""

    @property
    def id(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def attempt(self) -> int: ...


class Receipt(Protocol):
    @property
    def provider_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...


class Sender(Protocol):
    """A channel's sender (``hub.crm.ports.Sender``): a receipt, or ``RetryLater`` / ``PermanentFailure``."""

    async def send(self, message: Any) -> Receipt: ...


class OutboxStore(Protocol):
    """Where the queued messages are (``hub.crm.outgoing.OutgoingStore``); each call one unit of work."""

    async def recover(self) -> int:
        """Messages left ``sending`` by a crash → ``unknown``; → how many."""
        ...

    async def due(self, channels: Collection[str], limit: int) -> list[tuple[int, int]]:
        """(message id, conversation id) of due queued messages of these channels, oldest first."""
        ...

    async def claim(self, message_id: int) -> Outgoing | None:
        """``queued`` → ``sending``, committed; None when another worker took it, or it is not due."""
        ...

    async def record(self, message_id: int, status: str, **outcome: Any) -> None: ...


class Outbox:
    def __init__(self, store: OutboxStore, bus: Bus, senders: Mapping[str, Sender], *,
                 poll_seconds: float = 5.0, max_attempts: int = 10, concurrency: int = 8,
                 batch: int = 200) -> None:
        self.store = store
        self.bus = bus
        self.senders = dict(senders)
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
        await background.cancel(self._task)
        self._task = None

    def wake(self) -> None:
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.name == "message.queued":
            self._wake.set()

    async def recover(self) -> int:
        """Messages a previous run left ``sending`` → ``unknown`` (never resent blindly)."""
        count = await self.store.recover()
        if count:
            log.warning("outbox: %d messages were being sent when the hub stopped; marked unknown", count)
        return count

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
        return await self.store.due(list(self.senders), self.batch)

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
        outgoing = await self.store.claim(message_id)
        if outgoing is None:
            return False
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
                           retry_at=datetime.now(UTC) + timedelta(seconds=delay))

    async def _record(self, message_id: int, status: str, **outcome: Any) -> None:
        await self.store.record(message_id, status, **outcome)
