"""In-process publish/subscribe of named events (deal.updated, timeline.added, ...).

Events are hints, the database is the truth: an event carries ids and a small payload. Every event
gets an id ``<epoch>-<seq>``; the last ``history`` events are kept so that a subscriber that comes
back with the id of the last event it saw gets what it missed (``since``). When that id is from
another run of the hub or has fallen out of the history, ``since`` returns ``None`` and the
subscriber must re-read the database instead.

``Bus`` is the interface; a PostgreSQL LISTEN/NOTIFY implementation can take the same shape.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """``users``: the only users who may receive it (empty: decided by ``scope``).
    ``scope``: facts a subscriber's access rule looks at (e.g. responsible_id, manager_id)."""

    name: str
    data: dict[str, Any]
    users: frozenset[int] = frozenset()
    scope: dict[str, Any] = field(default_factory=dict)
    id: str = ""


Handler = Callable[[Event], None]


class Bus(Protocol):
    def publish(self, name: str, data: dict[str, Any], *, users: Iterable[int] = (),
                scope: dict[str, Any] | None = None) -> Event: ...

    def subscribe(self, handler: Handler) -> Callable[[], None]: ...

    def since(self, last_id: str) -> list[Event] | None: ...


class InProcessBus:
    def __init__(self, history: int = 10_000) -> None:
        self._epoch = secrets.token_hex(4)
        self._seq = itertools.count(1)
        self._handlers: list[Handler] = []
        self._history: collections.deque[Event] = collections.deque(maxlen=history)

    def publish(self, name: str, data: dict[str, Any], *, users: Iterable[int] = (),
                scope: dict[str, Any] | None = None) -> Event:
        event = Event(name, data, frozenset(users), scope or {}, f"{self._epoch}-{next(self._seq)}")
        self._history.append(event)
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                log.exception("bus handler failed on %s", name)
        return event

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def since(self, last_id: str) -> list[Event] | None:
        epoch, _, seq_text = last_id.partition("-")
        if epoch != self._epoch or not seq_text.isdecimal():
            return None
        seq = int(seq_text)
        if self._history and int(self._history[0].id.split("-")[1]) > seq + 1:
            return None  # the gap has fallen out of the history
        return [e for e in self._history if int(e.id.split("-")[1]) > seq]

    def queue(self, maxsize: int = 1000) -> tuple[asyncio.Queue[Event], Callable[[], None]]:
        """A subscription as a queue, for stream consumers (SSE)."""
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize)

        def put(event: Event) -> None:
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("event queue full, dropping %s", event.name)

        return q, self.subscribe(put)
