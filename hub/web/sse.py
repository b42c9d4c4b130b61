"""``GET /api/v1/events``: the current user's live events as server-sent events.

Each event goes out as ``id:`` (the bus id), ``event:`` (its name) and one ``data:`` line of JSON,
and only to users ``access.may_receive`` lets see it. A browser that reconnects sends
``Last-Event-ID`` (or ``?last_event_id=``) and first gets what it missed from the bus history; when
the history cannot say (another run of the hub, too long ago) — or when this stream fell too far
behind — it gets a ``resync`` event and must re-read the database: the database is the truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from hub.bus import Event, InProcessBus
from hub.crm import access
from hub.crm.models import User
from hub.web.keys import BUS, DB, STREAMS, USER
from hub.web.routing import Param, Routes

log = logging.getLogger(__name__)

routes = Routes("events")

PING_SECONDS = 15.0
RETRY_MS = 3000
QUEUE_SIZE = 1000
RESYNC = "resync"


def _seq(event_id: str) -> int:
    _, _, seq = event_id.partition("-")
    return int(seq) if seq.isdigit() else 0


class Subscription:
    """The events one user may receive, queued in order; overflow turns into a resync."""

    def __init__(self, bus: InProcessBus, user: User, shared: bool) -> None:
        self.user = user
        self.shared = shared
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False
        self.unsubscribe: Callable[[], None] = bus.subscribe(self._put)

    def allowed(self, event: Event) -> bool:
        return access.may_receive(self.user, event.users, event.scope, self.shared)

    def _put(self, event: Event) -> None:
        if self.overflowed or not self.allowed(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event stream of user %s fell behind; it will be told to resync", self.user.id)
            self.overflowed = True


async def _send(stream: EventSourceResponse, event: Event) -> None:
    await stream.send(json.dumps(event.data, ensure_ascii=False, default=str), id=event.id, event=event.name)


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
        event = await sub.queue.get()
        if _seq(event.id) <= sent:
            continue
        sent = _seq(event.id)
        await _send(stream, event)


@routes.get("/api/v1/events", "The caller's live events (text/event-stream)",
            content_type="text/event-stream",
            response={"type": "string", "description": "id:, event: and one JSON data: line per event; "
                      "a 'resync' event means: re-read what you show"},
            params=(Param("last_event_id", description="like the Last-Event-ID header"),), errors=(401,))
async def events(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    bus = request.app[BUS]
    last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or None
    async with request.app[DB].reading() as s:
        shared = await access.agents_see_all(s)
    sub = Subscription(bus, user, shared)  # before the replay, so nothing falls between the two
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
