"""The AMI connection: panoramisk underneath; the queue, reconnect, resync and watchdog are ours.

``AmiConnection`` logs in to Asterisk, feeds every AMI event, in wire order, through one queue into
the pure :class:`~hub.telephony.tracker.Tracker` and hands each fact it emits to ``on_fact``:

| piece            | what it does                                                                  |
|------------------|-------------------------------------------------------------------------------|
| panoramisk       | the wire: framing, ActionIDs, Login, futures for responses                    |
| ``_Protocol``    | puts every event on the hub's queue (nothing else runs in a panoramisk callback)|
| consumer task    | the only reader of the queue and the only user of the tracker (wire order);  |
|                  | hands each fact to its call's lane                                            |
| lane tasks       | one per call with facts in hand: awaits ``on_fact`` for that call's facts in  |
|                  | order; different calls' lanes run concurrently (at most ``max_lanes``)        |
| supervisor task  | connect → Login → resync (Status, then CoreShowChannels) → Ping watchdog; on  |
|                  | any end: backoff (exponential, jitter, capped) and again; a refused Login     |
|                  | waits ``auth_retry``                                                          |

The resync runs when ``CoreShowChannelsComplete`` is consumed, the latest picture (the live events
before it are already fed). The ``Status`` listed just before it, asked with
``tracker.STATUS_VARIABLES``, lends the calls it picks up their DID, recording and answer time
(``Tracker.resync``); refused or unanswered, the resync goes on without it.

With ``on_presence`` (the phones' states, ``hub.crm.ports.PresencePort``) the consumer also feeds
every message to the pure :class:`~hub.telephony.presence.PresenceTracker`, and after the resync the
supervisor lists the phones (``PRESENCE_LISTS``) between two queue markers: docs/decisions.md.

The state (``connecting``, ``connected``, ``auth_failed: <reason>``, ``disconnected``) is read by
``health()``. ``originate()`` refuses while not connected: panoramisk would queue the action and
dial it late after a reconnect. Why we drive the reconnect ourselves: docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from hub import backoff
from hub.config import AsteriskConfig
from hub.crm.ports import DialerUnavailable, DialRefused, PresenceState
from hub.telephony.events import Fact
from hub.telephony.presence import PresenceTracker
from hub.telephony.tracker import STATUS_VARIABLES, Tracker

log = logging.getLogger(__name__)

CONNECTING = "connecting"
CONNECTED = "connected"
AUTH_FAILED = "auth_failed"
DISCONNECTED = "disconnected"

OnFact = Callable[[Fact], Awaitable[None]]
OnResync = Callable[[frozenset[str]], Awaitable[object]]
# the phones' presence (hub.crm.ports.PresencePort.phones_changed): extension → state, whole picture?
OnPresence = Callable[..., None]
# after each login's resync: the phones' states are listed (each action's error or silence is skipped)
PRESENCE_LISTS = ("DeviceStateList", "ExtensionStateList", "PresenceStateList", "PJSIPShowContacts")


class AmiUnavailable(DialerUnavailable):
    """The AMI connection is not up: the action was refused, nothing is queued for later."""


class OriginateFailed(DialRefused):
    """Asterisk answered the Originate with an error (the message says why)."""


class _AuthFailed(Exception):
    pass


# ------------------------------------------------------------------ queue items besides AMI events
@dataclass(frozen=True, slots=True)
class _Listing:
    """A CoreShowChannels with this ActionID is being sent: collect its CoreShowChannel events (and,
    with ``status_id``, the Status events of the Status action sent just before it)."""

    action_id: str
    status_id: str | None = None


@dataclass(frozen=True, slots=True)
class _OriginateRequest:
    action_id: str
    extension: str
    number: str


_PRESENCE_LISTING = object()  # the presence listing begins: the tracker forgets what it knew
_PRESENCE_LISTED = object()  # ... and is over: its whole picture goes to on_presence
_LOST = object()  # the connection ended: a listing in progress is incomplete
_STOP = object()  # stop() was called: the consumer ends after what is already queued


# ------------------------------------------------------------------ panoramisk, wrapped
class _Protocol(AMIProtocol):
    """panoramisk's protocol, with the framing done here: every event goes, as it arrives, to the
    hub's queue as a plain dict of wire headers (``parse_event``); panoramisk sees the responses,
    the events that answer an action (an ``ActionID``) and ``Shutdown``.

    - **Events skip panoramisk's Message**: a busy PBX writes thousands of events a second that no
      action waits for; building a case-insensitive Message of each cost more than the rest of the
      path.
    - **Whole messages are decoded**: bytes are decoded only up to a message's end, so a name in
      Cyrillic split by TCP is never cut (panoramisk decodes each read and drops a split character).
    - **A slice at a time** (``SLICE`` bytes): a read of a backlog can bring 256 KiB, a thousand
      events, and whatever else the loop runs (a unit of work's next statement, a screen-pop's
      read) would wait for all of it. The rest waits its turn on the loop (``call_soon``); the
      socket is paused while it is large.
    """

    SLICE = 16 * 1024  # about sixty events, a millisecond of parsing
    BACKLOG_HIGH = 1024 * 1024  # unparsed bytes that pause reading the socket
    MAX_FRAME = 256 * 1024  # bytes without a message's end: garbage, dropped
    version: str | None  # panoramisk's: the banner's protocol version
    encoding: str  # panoramisk's Manager sets it once connected

    def __init__(self, manager: _Manager) -> None:
        super().__init__()
        self._manager = manager
        self._backlog = bytearray()
        self._slicing = False  # a slice is waiting its turn on the loop
        self._parsing = False
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.factory = self._manager  # so no event can arrive before there is somewhere to put it

    def data_received(self, data: bytes) -> None:
        self._backlog += data
        if not self._slicing:
            self._parse_slice()
        elif len(self._backlog) > self.BACKLOG_HIGH and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def _parse_slice(self) -> None:
        self._slicing = False
        backlog = self._backlog
        end = backlog.rfind(END, 0, self.SLICE)
        if end < 0 and len(backlog) > self.SLICE:
            end = backlog.find(END, self.SLICE)  # one message longer than a slice
        if end < 0:
            if len(backlog) > self.MAX_FRAME:
                log.warning("AMI: skipped %d bytes with no message end: %r", len(backlog),
                            bytes(backlog[:80]))
                backlog.clear()
            self._resume()
            return
        text = backlog[:end].decode(getattr(self, "encoding", "utf-8"), "replace")
        del backlog[:end + len(END)]
        self._handle_frames(text)
        if END in backlog and not self.closed:
            self._slicing = True
            asyncio.get_running_loop().call_soon(self._parse_slice)
        else:
            self._resume()

    def _resume(self) -> None:
        if self._paused and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def _handle_frames(self, text: str) -> None:
        self._parsing = True
        try:
            for frame in text.split("\r\n\r\n"):
                frame = frame.strip()
                if self.version is None and frame.startswith(BANNER):
                    banner, _, frame = frame.partition("\r\n")
                    self.version = banner.partition("/")[2].strip()
                if frame.startswith("Event: "):
                    self._event(frame)
                elif frame and (message := Message.from_line(frame)) is not None:
                    if "event" in message:  # an event whose first header is not Event (none seen)
                        self._manager.sink(message)
                    self.handle_message(message)  # an action's response
        finally:
            self._parsing = False

    def _event(self, frame: str) -> None:
        event = parse_event(frame)
        self._manager.sink(event)
        if "ActionID" in event or event["Event"] == "Shutdown":  # an action's list, or the end
            self.handle_message(Message.from_line(frame))

    def connection_lost(self, exc: Any) -> None:
        # what arrived before the end is handled before it (unless the end is a Shutdown event read
        # in the middle of a slice: Asterisk is going away)
        if not self.closed and not self._parsing:
            while END in self._backlog and not self.closed:
                self._parse_slice()
        super().connection_lost(exc)


END = b"\r\n\r\n"
BANNER = "Asterisk Call Manager/"


def parse_event(frame: str) -> dict[str, Any]:
    """An event's lines → its headers in wire order, as panoramisk's ``Message.from_line`` reads
    them (a line without ``": "`` is skipped; a repeated header, ``ChanVariable``, is a list)."""
    event: dict[str, Any] = {}
    for line in frame.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in event:
            previous = event[key]
            if isinstance(previous, list):
                previous.append(value)
            else:
                event[key] = [previous, value]
        else:
            event[key] = value
    return event


class _Manager(Manager):
    """One connection's panoramisk Manager, with its own reconnect, pinger and replay switched off."""

    pinger: asyncio.TimerHandle | None  # panoramisk's (untyped)

    def __init__(self, *, sink: Callable[[Any], None], on_lost: Callable[[Any], None],
                 **config: Any) -> None:
        super().__init__(**config)
        # panoramisk replays actions pending at a drop on FullyBooted (a late Originate dials late)
        self.callbacks.clear()
        self.patterns.clear()
        self.sink = sink
        self._on_lost = on_lost

    def ping(self) -> None:  # our watchdog pings, and notices an answer that never comes
        pass

    def connection_lost(self, exc: Any) -> None:  # no call_later(reconnect): the supervisor decides
        self._connected = False
        self.authenticated = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        self.forget_pending()
        self._on_lost(exc)

    def forget_pending(self) -> None:
        """Cancel what panoramisk kept to replay after a re-login."""
        protocol = getattr(self, "protocol", None)
        pending = list(self.awaiting_actions)
        if protocol is not None:
            pending.extend(protocol.responses.values())
            protocol.responses.clear()
        self.awaiting_actions.clear()
        for action in pending:
            if action["action"].lower() not in self.forgetable_actions and not action.future.done():
                action.future.cancel()


# ------------------------------------------------------------------ the connection
class AmiConnection:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_fact: OnFact,
        on_resync: OnResync | None = None,
        tracker: Tracker | None = None,
        trunks: Iterable[str] = ("trunk",),
        extensions: Iterable[str] | None = None,
        only_named_trunks: bool = False,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 2.0,
        auth_retry: float = 30.0,
        drain_timeout: float = 0.5,
        max_lanes: int = 256,
        on_presence: OnPresence | None = None,
        originate_channel: str = "PJSIP/{extension}",
        originate_context: str = "from-internal",
        originate_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.secret = secret
        self.on_fact = on_fact
        # after each resync: the calls Asterisk still has (and those the resync ended), so the
        # core can end what an earlier run of the hub left unfinished
        self.on_resync = on_resync
        self.resync_closings = 0  # on_resync calls completed (for tests)
        self._live_after_resync: frozenset[str] | None = None
        self._up_until: float | None = None  # when the last logged-in session ended (epoch seconds)
        self._resync_tasks: set[asyncio.Task[None]] = set()
        self.tracker = tracker if tracker is not None else Tracker(
            trunks=trunks, extensions=extensions, only_named_trunks=only_named_trunks)
        # the phones' presence (hub/telephony/presence.py), only when somebody listens
        self.on_presence = on_presence
        self.presence = PresenceTracker()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.auth_retry = auth_retry
        self.drain_timeout = drain_timeout
        self.max_lanes = max(1, max_lanes)
        self.originate_channel = originate_channel
        self.originate_context = originate_context
        self.originate_timeout = originate_timeout
        self.state = DISCONNECTED
        self.reason = ""
        # what happened so far (for logs, tests and benchmarks)
        self.logins = 0
        self.attempts = 0
        self.resyncs = 0
        self.watchdog_aborts = 0
        self.last_resync_seconds: float | None = None  # login → resync facts handed on
        self._login_at = 0.0
        self._queue: asyncio.Queue[Any] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._manager: _Manager | None = None
        self._lost: asyncio.Future[Any] | None = None
        self._ids = itertools.count(1)
        self._listing_id: str | None = None
        self._listing: list[dict[str, Any]] = []
        self._status_id: str | None = None  # the resync's Status action, until its StatusComplete
        self._status_items: list[dict[str, Any]] = []
        self._statuses: list[dict[str, Any]] | None = None  # its Status events, once complete
        # call id → the facts of that call not yet handed on (the first one is in on_fact now)
        self._lanes: dict[str, collections.deque[Fact]] = {}
        self._lane_tasks: dict[str, asyncio.Task[None]] = {}
        self._lane_freed: asyncio.Event | None = None

    @classmethod
    def from_config(cls, config: AsteriskConfig, *, on_fact: OnFact, **options: Any) -> AmiConnection:
        options.setdefault("trunks", config.trunks or ("trunk",))
        options.setdefault("only_named_trunks", bool(config.trunks))
        options.setdefault("backoff_max", config.reconnect_max_seconds)
        return cls(config.host, config.port, config.username, config.secret, on_fact=on_fact, **options)

    # -------------------------------------------------------------- public
    def health(self) -> str:
        """The state as /healthz shows it."""
        if self.state == AUTH_FAILED:
            return f"{AUTH_FAILED}: {self.reason}"
        return self.state

    def healths(self) -> dict[str, Callable[[], str]]:
        return {"asterisk": self.health}

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED and self._manager is not None

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._queue = asyncio.Queue()
        self._lane_freed = asyncio.Event()
        self._consumer = asyncio.create_task(self._consume(), name="ami-consumer")
        self._runner = asyncio.create_task(self._supervise(), name="ami-connection")

    @property
    def facts_in_hand(self) -> int:
        """Facts handed to lanes and not yet through ``on_fact`` (for tests and benchmarks)."""
        return sum(len(lane) for lane in self._lanes.values())

    async def stop(self) -> None:
        """Close the connection, let the consumer and the lanes hand on what is queued (up to
        ``drain_timeout`` in all)."""
        runner, consumer = self._runner, self._consumer
        self._runner = self._consumer = None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._set_state(DISCONNECTED)
        if consumer is not None and self._queue is not None:
            self._queue.put_nowait(_STOP)
            try:
                await asyncio.wait_for(asyncio.shield(consumer), self.drain_timeout)
            except TimeoutError:
                log.warning("AMI: %d queued messages and %d facts dropped at stop",
                            self._queue.qsize(), self.facts_in_hand)
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
        lanes = [*self._lane_tasks.values(), *self._resync_tasks]
        for lane in lanes:
            lane.cancel()
        for lane in lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await lane

    async def __aenter__(self) -> AmiConnection:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def originate(self, extension: str, number: str, action_id: str) -> dict[str, Any]:
        """Ring ``extension``, then dial ``number`` (click-to-call). Always ``Async: true``.

        Raises ``AmiUnavailable`` while not connected (nothing is queued to dial late) and
        ``OriginateFailed`` when Asterisk refuses. The call itself arrives as facts, the
        ``CallStarted`` carrying ``action_id``.
        """
        manager, lost, queue = self._manager, self._lost, self._queue
        if not self.connected or manager is None or lost is None or queue is None:
            raise AmiUnavailable(f"Asterisk is not connected ({self.health()}): click-to-call refused")
        queue.put_nowait(_OriginateRequest(action_id, extension, number))  # before any of its events
        action = {
            "Action": "Originate", "ActionID": action_id,
            "Channel": self.originate_channel.format(extension=extension),
            "Context": self.originate_context, "Exten": number, "Priority": "1",
            "Timeout": str(int(self.originate_timeout * 1000)), "Async": "true",
        }
        try:
            response = await self._ask(manager, lost, action, self.ping_timeout, as_list=False)
        except (TimeoutError, ConnectionError) as exc:
            raise AmiUnavailable(f"Asterisk did not take the Originate: {exc or type(exc).__name__}") from exc
        if not response.success:
            raise OriginateFailed(str(response.get("Message") or "Originate refused"))
        return _plain(response)

    # -------------------------------------------------------------- supervisor
    def _set_state(self, state: str, reason: str = "") -> None:
        if (state, reason) != (self.state, self.reason):
            self.state, self.reason = state, reason
            level = logging.INFO if state in (CONNECTING, CONNECTED) else logging.WARNING
            log.log(level, "AMI %s:%s %s%s", self.host, self.port, state, f" ({reason})" if reason else "")

    @staticmethod
    def backoff_delay(failures: int, initial: float, cap: float, *, floor: float = 0.2,
                      uniform: Callable[[float, float], float] = random.uniform) -> float:
        """The wait after ``failures`` failed attempts in a row: min(cap, initial·2^failures), jittered
        to 50–100 % of that (many hubs do not reconnect in lockstep), never below ``floor`` (no tight
        loop; a cap below the floor wins: whoever set it asked for it) nor above ``cap``. A small cap
        (``[asterisk] reconnect_max_seconds``, 2 s) so calls are tracked again soon after Asterisk is
        back (docs/decisions.md)."""
        return backoff.delay(failures, initial=initial, cap=cap, jitter=(0.5, 1.0), floor=floor,
                             uniform=uniform)

    def _delay(self, failures: int, auth_failed: bool) -> float:
        if auth_failed:
            return self.auth_retry  # wrong credentials: not fixed by hammering
        return self.backoff_delay(failures, self.backoff_initial, self.backoff_max)

    async def _supervise(self) -> None:
        failures = 0
        while True:
            auth_failed = False
            logins = self.logins
            try:
                await self._session()
            except _AuthFailed as exc:
                auth_failed = True
                self._set_state(AUTH_FAILED, str(exc))
            except (OSError, TimeoutError, ConnectionError) as exc:
                log.warning("AMI %s:%s: %s", self.host, self.port, exc or type(exc).__name__)
            except Exception:
                log.exception("AMI %s:%s: the connection failed unexpectedly", self.host, self.port)
            if self.state != AUTH_FAILED:
                self._set_state(DISCONNECTED)
            if self.logins > logins:
                failures = 0  # it was up: the first retry is quick
            delay = self._delay(failures, auth_failed)
            failures += 1
            log.info("AMI: next attempt in %.2f s", delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        queue = self._queue
        lost: asyncio.Future[Any] = loop.create_future()

        def on_lost(exc: Any) -> None:
            if not lost.done():
                lost.set_result(exc)

        manager = _Manager(
            loop=loop, host=self.host, port=self.port, username=self.username, secret=self.secret,
            events="on", ping_delay=86400, reconnect_timeout=86400,
            sink=queue.put_nowait, on_lost=on_lost,
        )
        self.attempts += 1
        logged_in = False
        if self.state != AUTH_FAILED:
            self._set_state(CONNECTING)
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(manager), self.host, self.port),
                self.connect_timeout,
            )
            made: asyncio.Future[Any] = loop.create_future()
            made.set_result((transport, protocol))
            manager.connection_made(made)  # panoramisk sends Login
            login = manager.authenticated_future
            response = await self._wait(login, lost, self.connect_timeout)
            if not response.success:
                raise _AuthFailed(str(response.get("Message") or "login refused"))
            self._manager, self._lost = manager, lost
            logged_in = True
            self.logins += 1
            self._login_at = time.monotonic()
            self._set_state(CONNECTED)
            await self._resync(manager, lost)
            await self._list_presence(manager, lost)
            await self._watchdog(manager, lost)
            exc = lost.result() if lost.done() else None
            raise ConnectionError(f"connection lost{f': {exc}' if exc else ''}")
        finally:
            if logged_in:  # the calls Asterisk had were last known up now
                self._up_until = time.time()
            self._manager = self._lost = None
            manager.close()
            manager.forget_pending()
            queue.put_nowait(_LOST)

    async def _resync(self, manager: _Manager, lost: asyncio.Future[Any]) -> None:
        number = next(self._ids)
        action_id, status_id = f"hub-resync-{number}", f"hub-status-{number}"
        assert self._queue is not None
        self._queue.put_nowait(_Listing(action_id, status_id))
        # what Asterisk knows of each channel besides the listing: its DID, age, answer, recording
        status = {"Action": "Status", "ActionID": status_id, "Variables": ",".join(STATUS_VARIABLES)}
        try:
            response = await self._ask(manager, lost, status, self.ping_timeout)
        except TimeoutError:
            log.warning("AMI: no answer to Status: calls picked up now lack their DID, recording and answer")
        else:
            if not isinstance(response, list) and not getattr(response, "success", True):
                log.warning("AMI: Status refused (%s): calls picked up now lack their DID, recording and "
                            "answer", response.get("Message"))
        try:
            await self._ask(manager, lost, {"Action": "CoreShowChannels", "ActionID": action_id},
                            self.ping_timeout)
        except TimeoutError:
            self._abort(manager, "no answer to CoreShowChannels")
            raise ConnectionError("no answer to CoreShowChannels") from None

    async def _list_presence(self, manager: _Manager, lost: asyncio.Future[Any]) -> None:
        """The phones' states now (``PRESENCE_LISTS``), framed on the queue by two markers: every
        listed item is sunk before its action's answer, so before the closing marker."""
        if self.on_presence is None:
            return
        assert self._queue is not None
        self._queue.put_nowait(_PRESENCE_LISTING)
        try:
            for name in PRESENCE_LISTS:
                action = {"Action": name, "ActionID": f"hub-presence-{next(self._ids)}"}
                try:
                    await self._ask(manager, lost, action, self.ping_timeout)
                except TimeoutError:
                    log.warning("AMI: no answer to %s: the phones' states may be incomplete", name)
        finally:
            self._queue.put_nowait(_PRESENCE_LISTED)

    async def _watchdog(self, manager: _Manager, lost: asyncio.Future[Any]) -> None:
        while True:
            done, _ = await asyncio.wait({lost}, timeout=self.ping_interval)
            if done:
                return
            try:
                await self._ask(manager, lost, {"Action": "Ping"}, self.ping_timeout)
            except TimeoutError:
                self.watchdog_aborts += 1
                self._abort(manager, f"no answer to Ping within {self.ping_timeout:g} s")
                return

    def _abort(self, manager: _Manager, why: str) -> None:
        log.warning("AMI %s:%s: %s: aborting the connection", self.host, self.port, why)
        protocol = manager.protocol
        if protocol is not None and getattr(protocol, "transport", None) is not None:
            protocol.transport.abort()

    async def _ask(self, manager: _Manager, lost: asyncio.Future[Any], action: dict[str, Any],
                   within: float, as_list: bool | None = None) -> Any:
        return await self._wait(manager.send_action(action, as_list=as_list), lost, within)

    @staticmethod
    async def _wait(future: asyncio.Future[Any] | None, lost: asyncio.Future[Any], within: float) -> Any:
        if future is None:
            raise ConnectionError("no action was sent")
        done, _ = await asyncio.wait({future, lost}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if future in done and not future.cancelled():
            return future.result()
        if lost.done() or future.cancelled():
            raise ConnectionError("connection lost while waiting for an answer")
        raise TimeoutError(f"no answer within {within:g} s")

    # -------------------------------------------------------------- consumer
    async def _consume(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            item = await queue.get()
            if item is _STOP:
                break
            try:
                facts = self._handle(item)
            except Exception:
                log.exception("AMI: a message could not be handled; skipped")
                continue
            for fact in facts:
                await self._dispatch(fact)
            if self._live_after_resync is not None:
                self._close_unfinished(self._live_after_resync)
                self._live_after_resync = None
        while self._lane_tasks:  # stop(): what the lanes hold is handed on too
            await asyncio.wait(list(self._lane_tasks.values()))

    def _close_unfinished(self, live: frozenset[str]) -> None:
        """Hand the resync's result to ``on_resync`` beside the lanes (the calls it may end are
        none of theirs: those are in ``live`` or were never seen by this run)."""
        if self.on_resync is None:
            return
        task = asyncio.create_task(self._run_on_resync(self.on_resync, live), name="ami-resync-close")
        self._resync_tasks.add(task)
        task.add_done_callback(self._resync_tasks.discard)

    async def _run_on_resync(self, on_resync: OnResync, live: frozenset[str]) -> None:
        try:
            await on_resync(live)
        except Exception:
            log.exception("AMI: ending the calls left unfinished failed")
        else:
            self.resync_closings += 1

    async def _dispatch(self, fact: Fact) -> None:
        """Give the fact to its call's lane (made when the call has none; at most ``max_lanes``
        at once: the consumer waits for one to finish, the AMI queue holds the rest)."""
        key = fact.call_id
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(fact)
            return
        assert self._lane_freed is not None
        while len(self._lanes) >= self.max_lanes:
            self._lane_freed.clear()
            await self._lane_freed.wait()
        lane = self._lanes[key] = collections.deque((fact,))
        self._lane_tasks[key] = asyncio.create_task(self._lane(key, lane), name=f"ami-lane-{key}")

    async def _lane(self, key: str, lane: collections.deque[Fact]) -> None:
        """Hand on one call's facts in order; ends when it has none left (no await in between, so
        the consumer either appends before the check or makes a new lane after it)."""
        try:
            while lane:
                fact = lane[0]
                try:
                    await self.on_fact(fact)
                except Exception:
                    log.exception("AMI: on_fact failed for %s of call %s", type(fact).__name__, fact.call_id)
                lane.popleft()
        finally:
            self._lanes.pop(key, None)
            self._lane_tasks.pop(key, None)
            if self._lane_freed is not None:
                self._lane_freed.set()

    def _handle(self, item: Any) -> list[Fact]:
        if isinstance(item, _Listing):
            self._listing_id, self._listing = item.action_id, []
            self._status_id, self._status_items, self._statuses = item.status_id, [], None
            return []
        if item is _LOST:
            self._listing_id, self._listing = None, []
            self._status_id, self._status_items, self._statuses = None, [], None
            self._presence_changed(self.presence.lost())
            return []
        if item is _PRESENCE_LISTING:
            self.presence.begin_listing()
            return []
        if item is _PRESENCE_LISTED:
            self._presence_changed(self.presence.end_listing(), complete=True)
            return []
        if isinstance(item, _OriginateRequest):
            self.tracker.originate_requested(item.action_id, item.extension, item.number)
            return []
        message = _plain(item)
        if self._listing_id is not None and message.get("ActionID") == self._listing_id:
            event = message.get("Event")
            if event == "CoreShowChannel":
                self._listing.append(message)
                return []
            if event == "CoreShowChannelsComplete":
                channels, self._listing_id, self._listing = self._listing, None, []
                return self._resynced(channels)
        if self._status_id is not None and message.get("ActionID") == self._status_id:
            event = message.get("Event")
            if event == "Status":
                self._status_items.append(message)
                return []
            if event == "StatusComplete":
                self._statuses, self._status_id, self._status_items = self._status_items, None, []
                return []
        if self.on_presence is not None:
            self._presence_changed(self.presence.feed(message))
        return self.tracker.feed(message)

    def _resynced(self, channels: list[dict[str, Any]]) -> list[Fact]:
        """The listing is complete: the tracker's resync, with the Status details when they came
        whole (a refused or unanswered Status: without them)."""
        statuses, self._statuses, self._status_id, self._status_items = self._statuses, None, None, []
        facts = self.tracker.resync(channels, now=time.time(), gone_at=self._up_until, statuses=statuses)
        self._live_after_resync = self.tracker.call_ids() | {f.call_id for f in facts}
        self.resyncs += 1
        self.last_resync_seconds = time.monotonic() - self._login_at
        log.info("AMI: resync after login: %d channels listed (%s), %d facts, %d calls in progress",
                 len(channels), "no Status" if statuses is None else f"{len(statuses)} Status",
                 len(facts), self.tracker.active_calls)
        return facts

    def _presence_changed(self, states: dict[str, PresenceState], *, complete: bool = False) -> None:
        if self.on_presence is None or not (states or complete):
            return
        try:
            self.on_presence(states, complete=complete)
        except Exception:
            log.exception("AMI: the phones' presence could not be handed on")


def _plain(message: Any) -> dict[str, Any]:
    """A panoramisk Message as a plain dict (wire header names; its ``content`` body dropped)."""
    if type(message) is dict:  # an event (_Protocol.parse_event)
        return message
    store = getattr(message, "_store", None)  # CaseInsensitiveDict: lower name → (name, value)
    if isinstance(store, dict):  # ~10x cheaper than its Mapping iteration (a lower() per lookup)
        return {k: v for k, v in store.values() if k != "content"}
    return {k: v for k, v in message.items() if k != "content"}
