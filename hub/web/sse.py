"""``GET /api/v1/events``: the current user's live events as server-sent events.

Each event goes out as ``id:`` (the bus id), ``event:`` (its name) and one ``data:`` line of JSON,
and only to users ``access.may_receive`` lets see it. A browser that reconnects sends
``Last-Event-ID`` (or ``?last_event_id=``) and first gets what it missed from the bus history; when
the history cannot say (another run of the hub, too long ago) — or when this stream fell too far
behind — it gets a ``resync`` event and must re-read the database: the database is the truth.

An open stream is re-checked against the user's current state before each event it sends: when a
user, a token or a setting changed in this process since the last look (``access.access_version``),
and at least every ``RECHECK_SECONDS`` (for changes made by another process, and on a quiet stream),
it re-reads the user and the ``agents_see_all`` setting (``access.current_viewer``). A user who was
deactivated, or whose token or browser session is gone (logout, deactivation) or expired, has the
stream ended; a changed role or sharing setting is applied to the next event and announced with a
``resync`` (what the user may see has changed: re-read it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from hub.bus import Event, InProcessBus
from hub.crm import access
from hub.crm.models import User
from hub.db import Database
from hub.serialise import to_json
from hub.web.errors import Unauthorized
from hub.web.keys import BUS, DB, SESSION, STREAMS, USER
from hub.web.routing import Param, Routes

log = logging.getLogger(__name__)

routes = Routes("events")

PING_SECONDS = 15.0
RETRY_MS = 3000
QUEUE_SIZE = 1000
RESYNC = "resync"
RECHECK_SECONDS = 30.0  # the longest a stream goes without re-reading its user's state


def _seq(event_id: str) -> int:
    _, _, seq = event_id.partition("-")
    return int(seq) if seq.isdecimal() else 0


class Subscription:
    """The events one user may receive, queued in order; overflow turns into a resync.

    ``viewer`` is the user's state as last read; events are queued by it and checked again by the
    state re-read (``refresh``) before they are sent."""

    def __init__(self, bus: InProcessBus, db: Database, viewer: access.Viewer, token_hash: str | None,
                 version: int) -> None:
        self.db = db
        self.viewer = viewer
        self.token_hash = token_hash
        self.version = version  # ``access.access_version()`` when ``viewer`` was read
        self.checked = time.monotonic()
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False
        self.unsubscribe: Callable[[], None] = bus.subscribe(self._put)

    @property
    def user(self) -> User:
        return self.viewer.user

    def allowed(self, event: Event) -> bool:
        return access.may_receive(self.viewer.user, event.users, event.scope, self.viewer.shared)

    async def refresh(self) -> tuple[bool, bool]:
        """(still allowed to stream, what the user may see changed) — re-read only when a user, token
        or setting changed since the last look, or that look is ``RECHECK_SECONDS`` old."""
        version = access.access_version()
        if version == self.version and time.monotonic() - self.checked < RECHECK_SECONDS:
            return True, False
        async with self.db.reading() as s:
            viewer = await access.current_viewer(s, self.viewer.user, self.token_hash)
        self.version, self.checked = version, time.monotonic()
        if viewer is None:
            return False, False
        changed = (viewer.user.role, viewer.shared) != (self.viewer.user.role, self.viewer.shared)
        self.viewer = viewer
        return True, changed

    def _put(self, event: Event) -> None:
        if self.overflowed or not self.allowed(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event stream of user %s fell behind; it will be told to resync", self.user.id)
            self.overflowed = True


async def _send(stream: EventSourceResponse, event: Event) -> None:
    await stream.send(to_json(event.data).decode(), id=event.id, event=event.name)


async def _pump(stream: EventSourceResponse, bus: InProcessBus, sub: Subscription,
                last_id: str | None) -> None:
    await stream.write(f"retry: {RETRY_MS}\r\n\r\n".encode())  # also flushes the headers to the client
    sent = 0  # the sequence number of the last event sent; later duplicates from the queue are skipped
    if last_id:
        missed = bus.since(last_id)
        if missed is None:
            await stream.send("{}", event=RESYNC)
        else:
            for event in missed:
                sent = _seq(event.id)
                if sub.allowed(event):
                    await _send(stream, event)
    while True:
        if sub.overflowed:
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.overflowed = False
            await stream.send("{}", event=RESYNC)
            continue
        try:
            got: Event | None = await asyncio.wait_for(sub.queue.get(), RECHECK_SECONDS)
        except TimeoutError:
            got = None  # a quiet stream is re-checked too
        still, changed = await sub.refresh()
        if not still:
            log.info("event stream of user %s ended: the user or the session is no longer valid", sub.user.id)
            return  # the pump's end ends the response
        if changed:
            await stream.send("{}", event=RESYNC)
        if got is None or _seq(got.id) <= sent:
            continue
        sent = _seq(got.id)
        if sub.allowed(got):  # again: the user's state may have changed since it was queued
            await _send(stream, got)


@routes.get("/api/v1/events", "The caller's live events (text/event-stream)",
            content_type="text/event-stream",
            response={"type": "string", "description": "id:, event: and one JSON data: line per event; "
                      "a 'resync' event means: re-read what you show"},
            params=(Param("last_event_id", description="like the Last-Event-ID header"),), errors=(401,))
async def events(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    bus = request.app[BUS]
    last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or None
    token_hash = request[SESSION].token_hash if SESSION in request else None
    version = access.access_version()  # before the read: a change from now on is seen by the stream
    async with request.app[DB].reading() as s:
        viewer = await access.current_viewer(s, user, token_hash)
    if viewer is None:  # logged out or deactivated since the request was authenticated
        raise Unauthorized("the token is unknown, expired or its user is inactive")
    sub = Subscription(bus, request.app[DB], viewer, token_hash, version)  # before the replay
    try:
        async with sse_response(request, ping_interval=PING_SECONDS) as stream:
            request.app[STREAMS].add(stream)
            pump = asyncio.create_task(_pump(stream, bus, sub, last_id))
            pump.add_done_callback(lambda _: stream.stop_streaming())
            try:
                await stream.wait()
            finally:
                pump.cancel()
                await asyncio.wait([pump])
                if not pump.cancelled() and (exc := pump.exception()) is not None \
                        and not isinstance(exc, ConnectionError | RuntimeError):
                    log.error("event stream of user %s failed", user.id, exc_info=exc)
    finally:
        sub.unsubscribe()
    return stream


async def stop_streams(app: web.Application) -> None:
    """on_shutdown: open streams would otherwise hold the server for a minute."""
    streams = app[STREAMS]
    for stream in list(streams):
        if stream.is_connected():
            stream.stop_streaming()
