"""The worker that takes journaled deliveries into the CRM (see ``hub.inbound.journal``).

Webhooks answer as soon as their delivery is stored; this worker hands each pending delivery,
oldest first, to its channel's ``process`` (``hub.delivery.JournalProcessor``), which stores what it
carries and marks the delivery done in the same transaction. A delivery whose processing fails is
tried again after an exponential backoff (the database down, a file that would not download) and is
marked ``failed`` after ``max_attempts`` (it stays in the journal with the error; the log says so).
After a crash, what was stored but not yet processed is simply still pending.

While deliveries are pouring in, the worker gives way: before each delivery it waits (up to
``max_pause``) until none has arrived for ``quiet`` seconds, so on SQLite's single writer the
webhooks' journal writes are not queued behind the CRM's units of work; the backlog is taken in
when the burst is over (and at least one delivery per ``max_pause`` during it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from hub import background, backoff
from hub.db import Database
from hub.delivery import JournalProcessor, RetryLater
from hub.inbound import journal
from hub.orm import utcnow

log = logging.getLogger(__name__)


class JournalWorker:
    def __init__(self, db: Database, processors: Mapping[str, JournalProcessor], *, poll_seconds: float = 2.0,
                 batch: int = 100, max_attempts: int = 8, base_delay: float = 2.0,
                 last_arrival: Callable[[], float] | None = None, quiet: float = 0.02,
                 max_pause: float = 1.0) -> None:
        self.db = db
        self.last_arrival = last_arrival
        self.quiet = quiet
        self.max_pause = max_pause
        self.processors = dict(processors)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.processed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.processors:
            self._task = asyncio.create_task(self._run(), name="inbound-journal")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                more = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbound journal: a round failed; trying again")
                more = False
            if more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def drain_once(self) -> bool:
        """Process what is due; True when there may be more."""
        async with self.db.reading() as s:
            due = await journal.pending(s, list(self.processors), self.batch)
        for delivery in due:
            await self._give_way()
            await self._process(delivery)
        return len(due) >= self.batch

    async def _give_way(self) -> None:
        if self.last_arrival is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_pause
        while (wait := self.last_arrival() + self.quiet - loop.time()) > 0 and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(wait, deadline - loop.time()))  # (a clock is polled, not a flag)

    async def _process(self, delivery: journal.Pending) -> None:
        try:
            await self.processors[delivery.channel].process(delivery.key, delivery.body, delivery.id)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            attempt = delivery.attempts + 1
            give_up = attempt >= self.max_attempts
            wait = backoff.delay(attempt - 1, initial=self.base_delay)
            retry_at = None if give_up else utcnow() + timedelta(seconds=wait)
            expected = isinstance(error, RetryLater) and not give_up  # e.g. a status ahead of its send
            (log.error if give_up else log.info if expected else log.warning)(
                "inbound journal: %s delivery %s failed (attempt %d%s): %s", delivery.channel, delivery.key,
                attempt, ", giving up" if give_up else "", error, exc_info=give_up)
            async with self.db.transaction() as s:
                await journal.postpone(s, delivery.id, f"{type(error).__name__}: {error}", retry_at)
            return
        self.processed += 1
        async with self.db.reading() as s:
            left_pending = await journal.is_pending(s, delivery.id)
        if left_pending:  # a processor bug: do not loop on it
            log.error("inbound journal: the %s processor left delivery %s pending", delivery.channel,
                      delivery.key)
            async with self.db.transaction() as s:
                await journal.postpone(s, delivery.id, "the processor did not finish it", None)
