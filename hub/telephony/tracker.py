"""The call tracker: a pure state machine fed AMI messages in order, emitting call facts.

No I/O, no asyncio: ``Tracker.feed(message)`` takes one AMI message (a dict of header → value, as
:mod:`hub.telephony.ami_parse` or panoramisk produce it) and returns the facts it caused.

A call is keyed by ``Linkedid``; its channels (legs) are indexed by ``Uniqueid``, so a channel that
an attended transfer moves into another call keeps being routed right. Which leg is the carrier and
which is an agent's phone is read from the channel's endpoint: one of ``trunks`` is external, one of
``extensions`` is an agent, and (when ``extensions`` is given) any other endpoint counts as
external too. Direction, DID and the external number come from the channels themselves, never from
dialplan variables a customer's Asterisk will not have.

Handled events (everything else is ignored on the first dictionary lookup):

| event                  | effect                                                                      |
|------------------------|-----------------------------------------------------------------------------|
| Newchannel             | a leg appears; the first leg of a Linkedid starts the call; a trunk leg     |
|                        | joining an agent's call makes it outbound                                   |
| NewCallerid            | an outbound trunk leg learns the called number                              |
| Newstate               | a leg goes Up                                                               |
| Newexten (Dial)        | the dial targets of a leg (an unreachable agent leaves no other trace)      |
| DialBegin, AgentCalled | an agent rings (AgentRinging) or, outbound, the callee rings; a DialBegin   |
|                        | with no calling channel is an Originate ringing its first leg               |
| DialEnd, AgentConnect  | ANSWER opens an agent leg (CallAnswered); other statuses are kept, one per  |
|                        | DestUniqueid (queues repeat DialEnd), and an agent whose phone stops        |
|                        | ringing while the call goes on unanswered gets AgentRingEnded               |
| VarSet DIALSTATUS      | CHANUNAVAIL / CONGESTION, which may exist only as a VarSet                  |
| VarSet MIXMONITOR_FILENAME, UserEvent with File | a recording (for the agent leg that records) |
| HangupRequest          | who hung up; the caller hanging up before an answer abandons the call      |
| QueueCallerJoin        | the queue's name (QueueCallerAbandon is ignored: Asterisk sends it on a     |
|                        | queue timeout too; only the caller's HangupRequest means they gave up)      |
| BlindTransfer, AttendedTransfer | CallTransferred; the transferer's leg closes                       |
| OriginateResponse      | links a click-to-call to the hub's ActionID; a failed Originate that made   |
|                        | no channel ends as failed                                                   |
| Hangup                 | a leg ends (a ringing one with no DialEnd: AgentRingEnded); the last leg    |
|                        | of a call ends it (CallEnded)                                               |

``resync(channels, statuses=...)`` takes the CoreShowChannel events listed after a reconnect (and the
``Status`` events asked just before them with ``Variables: STATUS_VARIABLES``): calls known but gone
are ended, calls present but unknown are started with what Asterisk still knows of them — the
trunk leg's ``DNID`` (the DID), each leg's age (``Seconds``, else ``Duration``), the answer
(``CDR(billsec)`` of the caller's leg, else the agent leg's age: a lower bound of the wait) and the
recording (``MIXMONITOR_FILENAME``).
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.telephony.events import (
    INBOUND,
    INTERNAL,
    OUTBOUND,
    AgentLeg,
    AgentRingEnded,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
    Fact,
    Status,
)

log = logging.getLogger(__name__)

Message = Mapping[str, Any]


class CallState(enum.StrEnum):
    NEW = "new"  # first leg seen, nobody rings yet
    RINGING = "ringing"  # an agent (or, outbound, the external party) rings
    ANSWERED = "answered"  # someone talks
    TRANSFERRING = "transferring"  # a blind transfer sent the caller back to the dialplan
    ENDED = "ended"


TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.NEW: frozenset({CallState.RINGING, CallState.ANSWERED, CallState.ENDED}),
    CallState.RINGING: frozenset({CallState.ANSWERED, CallState.ENDED}),
    CallState.ANSWERED: frozenset({CallState.TRANSFERRING, CallState.ENDED}),
    CallState.TRANSFERRING: frozenset({CallState.RINGING, CallState.ANSWERED, CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class Role(enum.StrEnum):
    TRUNK = "trunk"  # the external party
    AGENT = "agent"  # an agent's phone
    LOCAL = "local"  # half of a Local channel pair
    OTHER = "other"  # Bridge/, Announcer/, Snoop/...


INTERNAL_TECHS = frozenset(
    {"bridge", "announcer", "recorder", "snoop", "multicast", "message", "cbann", "cbrec"}
)
FAILED_STATUSES = frozenset({"CHANUNAVAIL", "CONGESTION"})
UNKNOWN_NUMBERS = frozenset({"", "<unknown>", "unknown", "anonymous", "s"})
HIDDEN_NUMBERS = frozenset({"anonymous", "restricted", "private", "withheld", "unavailable"})
# the channel variables (and functions) a resync asks Asterisk for in its ``Status`` action: the
# recording of the leg that records, and the seconds since the caller's leg was answered
STATUS_VARIABLES = ("MIXMONITOR_FILENAME", "CDR(billsec)")


def _number(value: Any) -> str | None:
    if not isinstance(value, str) or value in UNKNOWN_NUMBERS or value.lower() in HIDDEN_NUMBERS:
        return None
    return value


def _caller_name(message: Message) -> str | None:
    """CallerIDName when it names somebody (not a placeholder, not the number again)."""
    name = message.get("CallerIDName")
    if not isinstance(name, str) or name.strip().lower() in UNKNOWN_NUMBERS | HIDDEN_NUMBERS:
        return None
    name = name.strip()
    return None if name == message.get("CallerIDNum") else name[:200]


def _hidden(message: Message) -> bool:
    """The caller withheld the number: Asterisk says so in CallerIDNum or CallerIDName."""
    return any(isinstance(v := message.get(k), str) and v.strip().lower() in HIDDEN_NUMBERS
               for k in ("CallerIDNum", "CallerIDName"))


def _ts(message: Message) -> float | None:
    raw = message.get("Timestamp")
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _seconds(start: float | None, end: float | None) -> float:
    if start is None or end is None:
        return 0.0
    return round(max(0.0, end - start), 3)


def _known_times(call: Call) -> list[float]:
    """The moments a call is known to have been up at: its start and its answers."""
    return [t for t in (call.last_ts, *(leg.answered_at for leg in call.legs)) if t is not None]


def _strip_suffix(rest: str) -> str:
    """``trunk-0000000d`` → ``trunk``; ``101@ctx-00000001;2`` → ``101@ctx``."""
    rest = rest.split(";", 1)[0]
    base, sep, suffix = rest.rpartition("-")
    if sep and base and suffix and all(c in "0123456789abcdef" for c in suffix):
        return base
    return rest


def _duration(value: Any) -> float:
    """CoreShowChannel ``Duration`` (``HH:MM:SS``) in seconds."""
    try:
        parts = [int(p) for p in str(value).split(":")]
    except ValueError:
        return 0.0
    total = 0
    for part in parts:
        total = total * 60 + part
    return float(total)


def status_variables(message: Message) -> dict[str, str]:
    """A ``Status`` event's ``Variable: NAME=value`` lines (one header, or a list when repeated)."""
    raw = message.get("Variable")
    lines = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
    found: dict[str, str] = {}
    for line in lines:
        name, sep, value = str(line).partition("=")
        if sep and name:
            found[name] = value
    return found


def _whole(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number >= 0 else None


@dataclass(slots=True, eq=False)
class Channel:
    uid: str
    name: str
    role: Role
    extension: str | None  # the agent behind this leg (an agent's phone, or a Local pair towards one)
    created_at: float | None
    caller_num: str | None
    up: bool = False
    cause: int | None = None
    dial_targets: tuple[tuple[Role, str | None, str | None], ...] = ()  # (role, extension, number)


@dataclass(slots=True, eq=False)
class _Leg:
    extension: str
    channel_uid: str | None
    answered_at: float | None
    ended_at: float | None = None
    recording: str | None = None


@dataclass(slots=True, eq=False)
class _Originate:
    action_id: str
    extension: str
    number: str | None
    matched: bool = False


@dataclass(slots=True, eq=False)
class Call:
    id: str
    started_at: float | None
    state: CallState = CallState.NEW
    channels: dict[str, Channel] = field(default_factory=dict)
    live: int = 0
    first: Channel | None = None
    direction: str | None = None
    external: str | None = None
    did: str | None = None
    caller_extension: str | None = None
    caller_name: str | None = None
    hidden_number: bool = False
    announced: bool = False
    originated: bool = False
    action_id: str | None = None
    queue: str | None = None
    rung: list[str] = field(default_factory=list)
    ringing: dict[str, str] = field(default_factory=dict)  # dest uid → extension, ringing now
    dial_results: dict[str, str] = field(default_factory=dict)  # dest uid → first DialStatus
    last_status: str | None = None
    legs: list[_Leg] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    pending_recording: str | None = None
    answered_at: float | None = None
    transferred_at: float | None = None
    caller_gave_up: bool = False
    hangup_by: Literal["external", "agent"] | None = None
    last_ts: float | None = None

    def open_leg(self, extension: str | None = None) -> _Leg | None:
        for leg in reversed(self.legs):
            if leg.ended_at is None and (extension is None or leg.extension == extension):
                return leg
        return None


class Tracker:
    """Feed AMI messages in order; get call facts back."""

    def __init__(
        self,
        trunks: Iterable[str] = ("trunk",),
        extensions: Iterable[str] | None = (),
        *,
        only_named_trunks: bool = False,
    ) -> None:
        """``trunks``: endpoint names of carrier trunks; ``extensions``: the agents' extensions.

        An endpoint that is neither counts as external (a carrier not listed in ``trunks``).
        ``extensions=None`` or ``only_named_trunks`` (the PBX's trunks were named in the config)
        instead treat every endpoint that is no trunk as a phone: a user's, or one nobody has (its
        answer is still an answer).
        """
        self.trunks = frozenset(trunks)
        self.only_named_trunks = only_named_trunks
        self.extensions: frozenset[str] | None = None if extensions is None else frozenset(extensions)
        self._calls: dict[str, Call] = {}
        self._chans: dict[str, Call] = {}  # channel Uniqueid → its call
        self._originates: dict[str, _Originate] = {}
        self._last_ts: float | None = None
        self.skipped = 0  # messages that raised while handled (logged and skipped)
        self._handlers: dict[str, Callable[[Message, list[Fact]], None]] = {
            "Newchannel": self._on_newchannel,
            "NewCallerid": self._on_newcallerid,
            "Newstate": self._on_newstate,
            "Newexten": self._on_newexten,
            "DialBegin": self._on_dialbegin,
            "AgentCalled": self._on_dialbegin,
            "DialEnd": self._on_dialend,
            "AgentConnect": self._on_agentconnect,
            "VarSet": self._on_varset,
            "UserEvent": self._on_userevent,
            "HangupRequest": self._on_hanguprequest,
            "QueueCallerJoin": self._on_queuejoin,
            "BlindTransfer": self._on_blindtransfer,
            "AttendedTransfer": self._on_attendedtransfer,
            "OriginateResponse": self._on_originateresponse,
            "Hangup": self._on_hangup,
        }

    # ------------------------------------------------------------------ public
    def set_extensions(self, extensions: Iterable[str] | None) -> None:
        """The users' extensions changed (new channels are classified with the new set)."""
        self.extensions = None if extensions is None else frozenset(extensions)

    def originate_requested(self, action_id: str, extension: str, number: str | None) -> None:
        """The hub sent an Originate: the agent leg it creates is matched to this request."""
        self._originates[action_id] = _Originate(action_id, extension, number)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def call_ids(self) -> frozenset[str]:
        """The calls in progress (their Linkedids)."""
        return frozenset(self._calls)

    def call_state(self, call_id: str) -> CallState | None:
        call = self._calls.get(call_id)
        return None if call is None else call.state

    def feed(self, message: Message) -> list[Fact]:
        event = message.get("Event")
        handler = self._handlers.get(event) if type(event) is str else None
        if handler is None:
            return []
        out: list[Fact] = []
        try:
            handler(message, out)
        except Exception as exc:  # a malformed message never stops tracking
            self.skipped += 1
            log.warning("AMI: skipped a %s event the tracker could not use: %r", message.get("Event"), exc)
        return out

    def feed_all(self, messages: Iterable[Message]) -> list[Fact]:
        out: list[Fact] = []
        for message in messages:
            out.extend(self.feed(message))
        return out

    def resync(self, channels: Iterable[Message], now: float | None = None,
               gone_at: float | None = None, statuses: Iterable[Message] | None = None) -> list[Fact]:
        """Reconcile with the channels Asterisk lists after a reconnect (CoreShowChannel events).

        Known calls whose channels are gone end (status from what was seen; ``resynced=True``) at
        ``gone_at``, the last moment the hub knew them up (when it lost the connection: a crashed
        Asterisk took its calls down then), never before their own last event; without it, at
        ``now``. Unknown channels start calls, with their age taken from ``Duration``.

        ``statuses``: the ``Status`` events Asterisk answered just before the listing. They lend
        the calls started here their DID (``DNID``), ages (``Seconds``), answer time and recording
        (``Variable: CDR(billsec)=…``, ``Variable: MIXMONITOR_FILENAME=…``); a channel they lack
        (new since) is taken as listed.
        """
        listed = [c for c in channels if c.get("Uniqueid") and c.get("Channel")]
        details = {str(m["Uniqueid"]): m for m in statuses or () if m.get("Uniqueid")}
        if now is None:
            stamps = [t for t in (_ts(c) for c in listed) if t is not None]
            now = max(stamps) if stamps else self._last_ts
        present = {str(c["Uniqueid"]) for c in listed}
        out: list[Fact] = []
        for call in list(self._calls.values()):
            ended = now if gone_at is None else max(gone_at, *_known_times(call))
            if now is not None and ended is not None:
                ended = min(ended, now)
            for uid, chan in list(call.channels.items()):
                if uid not in present and uid in self._chans:
                    self._leg_gone(call, chan, ended, None, out, resynced=True)
        groups: dict[str, list[Message]] = {}
        for chan_msg in listed:
            if str(chan_msg["Uniqueid"]) in self._chans:
                continue
            groups.setdefault(str(chan_msg.get("Linkedid") or chan_msg["Uniqueid"]), []).append(chan_msg)
        for linkedid, group in groups.items():
            out.extend(self._resync_call(linkedid, group, now, details))
        return out

    # ------------------------------------------------------------ classification
    def _classify(self, name: str) -> tuple[Role, str | None]:
        tech, _, rest = name.partition("/")
        low = tech.lower()
        if low == "local":
            exten = rest.split("@", 1)[0]
            return Role.LOCAL, exten if self._is_extension(exten) else None
        if low in INTERNAL_TECHS or not rest:
            return Role.OTHER, None
        endpoint = _strip_suffix(rest)
        if endpoint in self.trunks:
            return Role.TRUNK, None
        if self.extensions is None or self.only_named_trunks or endpoint in self.extensions:
            return Role.AGENT, endpoint
        return Role.TRUNK, None

    def _is_extension(self, exten: str) -> bool:
        if self.extensions is not None:
            return exten in self.extensions
        return bool(exten) and exten not in self.trunks and exten.isdigit() and len(exten) <= 6

    def _dial_target(self, target: str) -> tuple[Role, str | None, str | None]:
        """One ``Dial()`` target: ``PJSIP/101``, ``PJSIP/+7916…@trunk``, ``SIP/trunk/+7916…``."""
        tech, _, rest = target.strip().partition("/")
        if tech.lower() == "local":
            exten = rest.split("@", 1)[0]
            return (Role.LOCAL, exten, None) if self._is_extension(exten) else (Role.LOCAL, None, exten)
        number: str | None = None
        if "@" in rest:
            number, _, rest = rest.partition("@")
        elif "/" in rest:
            rest, _, number = rest.partition("/")
        endpoint = rest
        if endpoint in self.trunks or (self.extensions is not None and not self.only_named_trunks
                                       and endpoint not in self.extensions):
            return Role.TRUNK, None, number or None
        return Role.AGENT, endpoint, None

    # ------------------------------------------------------------------ helpers
    def _lookup(self, message: Message, key: str = "Uniqueid") -> tuple[Call, Channel] | None:
        uid = message.get(key)
        if uid is None:
            return None
        call = self._chans.get(uid)
        if call is None:
            return None
        return call, call.channels[uid]

    def _move(self, call: Call, to: CallState) -> bool:
        if call.state is to:
            return True
        if to not in TRANSITIONS[call.state]:
            log.debug("call %s: no transition %s → %s", call.id, call.state, to)
            return False
        call.state = to
        return True

    def _base(self, call: Call, ts: float | None) -> dict[str, Any]:
        return {
            "call_id": call.id,
            "direction": call.direction or INTERNAL,
            "external_number": call.external,
            "did": call.did,
            "at": ts,
            "caller_name": call.caller_name,
            "hidden_number": call.hidden_number,
        }

    def _announce(self, call: Call, ts: float | None, out: list[Fact]) -> None:
        if call.announced or call.direction is None:
            return
        call.announced = True
        out.append(
            CallStarted(
                **self._base(call, ts),
                started_at=call.started_at,
                caller_extension=call.caller_extension,
                originate_action_id=call.action_id,
            )
        )

    def _set_direction(self, call: Call, direction: str, ts: float | None, out: list[Fact]) -> None:
        if call.direction is None or (call.direction == INTERNAL and direction == OUTBOUND):
            call.direction = direction
        self._announce(call, ts, out)

    def _agent_of(self, chan: Channel | None, fallback: str | None = None) -> str | None:
        if chan is not None and chan.extension:
            return chan.extension
        if fallback:
            role, ext = self._classify(fallback)
            if role in (Role.AGENT, Role.LOCAL):
                return ext
        return None

    def _ring(self, call: Call, dest_uid: str, ext: str, channel: str, queue: str | None,
              ts: float | None, out: list[Fact]) -> None:
        if ext not in call.rung:
            call.rung.append(ext)
        if ext in call.ringing.values() or call.open_leg(ext) is not None:
            call.ringing.setdefault(dest_uid, ext)
            return
        call.ringing[dest_uid] = ext
        if call.state in (CallState.NEW, CallState.TRANSFERRING):
            self._move(call, CallState.RINGING)
        if call.announced and call.state is not CallState.ENDED:
            out.append(
                AgentRinging(**self._base(call, ts), extension=ext, channel=channel,
                             queue=queue or call.queue,
                             caller_extension=call.caller_extension if call.direction == INTERNAL else None)
            )

    def _ring_ended(self, call: Call, ext: str, channel: str, reason: str, ts: float | None,
                    out: list[Fact]) -> None:
        """The agent's phone no longer rings for this call, which goes on unanswered (an answer or
        the end closes every popup anyway)."""
        if ext in call.ringing.values() or not call.announced or call.live <= 0 or call.caller_gave_up:
            return  # still ringing on another channel (a Local pair); never shown; or ending
        if call.state in (CallState.ANSWERED, CallState.ENDED):
            return
        out.append(AgentRingEnded(**self._base(call, ts), extension=ext, channel=channel, reason=reason))

    def _open_leg(self, call: Call, ext: str | None, chan_uid: str | None, ts: float | None,
                  out: list[Fact]) -> None:
        if ext is not None and call.open_leg(ext) is not None:
            return  # the other half of a Local pair, or AgentConnect after DialEnd
        if not self._move(call, CallState.ANSWERED):
            return
        since = call.transferred_at if call.transferred_at is not None else call.started_at
        leg = _Leg(extension=ext or "", channel_uid=chan_uid, answered_at=ts,
                   recording=call.pending_recording)
        call.pending_recording = None
        call.legs.append(leg)
        if call.answered_at is None:
            call.answered_at = ts
        call.ringing.clear()
        out.append(
            CallAnswered(**self._base(call, ts), extension=ext, channel=None if chan_uid is None
                         else call.channels[chan_uid].name if chan_uid in call.channels else None,
                         wait_seconds=_seconds(since, ts))
        )

    def _close_legs(self, call: Call, ts: float | None, chan_uid: str | None = None) -> _Leg | None:
        closed = None
        for leg in call.legs:
            if leg.ended_at is None and (chan_uid is None or leg.channel_uid == chan_uid):
                leg.ended_at = ts if ts is not None else leg.answered_at
                closed = leg
        return closed

    def _recording(self, call: Call, chan: Channel, path: str) -> None:
        name = os.path.basename(path.strip())
        if not name or name in call.recordings:
            return
        call.recordings.append(name)
        for leg in call.legs:  # a queue member starts recording just after its DialEnd ANSWER
            if leg.ended_at is None and leg.channel_uid == chan.uid and leg.recording is None:
                leg.recording = name
                return
        call.pending_recording = name  # usually a few ms before the answer: for the next leg

    def _status(self, call: Call, status: str) -> None:
        if status and status != "ANSWER":
            call.last_status = status

    # ------------------------------------------------------------------ handlers
    def _on_newchannel(self, m: Message, out: list[Fact]) -> None:
        uid = m["Uniqueid"]
        if uid in self._chans:
            return
        linkedid = m.get("Linkedid") or uid
        ts = _ts(m)
        if ts is not None:
            self._last_ts = ts
        name = m["Channel"]
        role, ext = self._classify(name)
        chan = Channel(uid=uid, name=name, role=role, extension=ext, created_at=ts,
                       caller_num=_number(m.get("CallerIDNum")), up=m.get("ChannelStateDesc") == "Up")
        call = self._calls.get(linkedid)
        if call is None:
            call = Call(id=linkedid, started_at=ts)
            self._calls[linkedid] = call
        call.channels[uid] = chan
        call.live += 1
        call.last_ts = ts
        self._chans[uid] = call
        if call.first is None:
            call.first = chan
            if role is Role.TRUNK:
                call.external = chan.caller_num
                call.caller_name, call.hidden_number = _caller_name(m), _hidden(m)
                exten = m.get("Exten")
                call.did = exten if isinstance(exten, str) and exten not in UNKNOWN_NUMBERS else None
                self._set_direction(call, INBOUND, ts, out)
            elif ext is not None:
                call.caller_extension = ext
            return
        if role is Role.TRUNK and call.first.role is not Role.TRUNK and call.direction != INBOUND:
            if chan.caller_num is not None:
                call.external = chan.caller_num
            self._set_direction(call, OUTBOUND, ts, out)

    def _on_newcallerid(self, m: Message, out: list[Fact]) -> None:
        found = self._lookup(m)
        if found is None:
            return
        call, chan = found
        chan.caller_num = _number(m.get("CallerIDNum"))
        if chan.role is Role.TRUNK and call.direction == OUTBOUND and chan.caller_num is not None:
            call.external = chan.caller_num
        if chan is call.first and chan.role is Role.TRUNK and call.direction == INBOUND:
            call.caller_name = _caller_name(m) or call.caller_name

    def _on_newstate(self, m: Message, out: list[Fact]) -> None:
        found = self._lookup(m)
        if found is not None and m.get("ChannelStateDesc") == "Up":
            found[1].up = True

    def _on_newexten(self, m: Message, out: list[Fact]) -> None:
        if m.get("Application") != "Dial":
            return
        found = self._lookup(m)
        if found is None:
            return
        call, chan = found
        data = m.get("AppData")
        if not isinstance(data, str):
            return
        targets = tuple(self._dial_target(t) for t in data.split(",", 1)[0].split("&") if t.strip())
        chan.dial_targets = targets
        if chan is call.first and chan.role is not Role.TRUNK and not call.announced:
            for role, _ext, number in targets:
                if role is Role.TRUNK:
                    if call.external is None:
                        call.external = number
                    self._set_direction(call, OUTBOUND, _ts(m), out)
                    return
            if any(role in (Role.AGENT, Role.LOCAL) and ext for role, ext, _ in targets):
                self._set_direction(call, INTERNAL, _ts(m), out)

    def _on_dialbegin(self, m: Message, out: list[Fact]) -> None:
        dest_uid = m.get("DestUniqueid")
        if dest_uid is None:
            return
        call = self._chans.get(dest_uid) or self._chans.get(m.get("Uniqueid", ""))
        if call is None:
            return
        ts = _ts(m)
        dest = call.channels.get(dest_uid)
        if "Uniqueid" not in m and "Channel" not in m:  # an Originate rings its first leg
            if dest is not None and dest is call.first:
                self._originated(call, dest, ts, out)
            return
        src = call.channels.get(m.get("Uniqueid", ""))
        dest_name = m.get("DestChannel", "")
        if dest is not None and dest.role is Role.TRUNK:
            number = _number(m.get("DestCallerIDNum"))
            if call.direction != INBOUND:
                if number is not None:
                    call.external = number
                self._set_direction(call, OUTBOUND, ts, out)
                if call.state in (CallState.NEW, CallState.TRANSFERRING):
                    self._move(call, CallState.RINGING)
            return
        ext = self._agent_of(dest, dest_name or m.get("Interface"))
        if ext is None and m.get("Interface"):
            ext = self._agent_of(None, m["Interface"])
        if ext is None:
            return
        if call.direction is None and src is not None:
            self._set_direction(call, INTERNAL, ts, out)
        if call.direction == OUTBOUND and call.state is not CallState.TRANSFERRING:
            return  # the agent's own leg of its outbound call (a Local pair dialling the phone)
        self._ring(call, dest_uid, ext, dest_name, m.get("Queue"), ts, out)

    def _originated(self, call: Call, dest: Channel, ts: float | None, out: list[Fact]) -> None:
        call.originated = True
        if call.caller_extension is None:
            call.caller_extension = dest.extension
        for pending in self._originates.values():
            if not pending.matched and pending.extension == call.caller_extension:
                pending.matched = True
                call.action_id = pending.action_id
                if call.external is None:
                    call.external = pending.number
                break
        if call.external is None:
            call.direction = OUTBOUND  # announced once the dialled number shows (Dial, trunk leg)
            return
        self._set_direction(call, OUTBOUND, ts, out)

    def _on_dialend(self, m: Message, out: list[Fact]) -> None:
        dest_uid = m.get("DestUniqueid")
        if dest_uid is None:
            return
        call = self._chans.get(dest_uid) or self._chans.get(m.get("Uniqueid", ""))
        if call is None:
            return
        status = m.get("DialStatus", "")
        if dest_uid in call.dial_results:
            return  # a duplicate DialEnd (queues: NOANSWER then CANCEL, or CANCEL twice)
        call.dial_results[dest_uid] = status
        ts = _ts(m)
        dest = call.channels.get(dest_uid)
        if "Uniqueid" not in m and "Channel" not in m:
            return  # the Originate's first leg: the agent picked up, the call is not answered yet
        rang = call.ringing.pop(dest_uid, None)
        if dest is not None and dest.role is Role.TRUNK:
            if status == "ANSWER" and call.direction == OUTBOUND:
                self._open_leg(call, call.caller_extension, m.get("Uniqueid"), ts, out)
            else:
                self._status(call, status)
            return
        ext = self._agent_of(dest, m.get("DestChannel"))
        if status != "ANSWER":
            self._status(call, status)
            if rang is not None:
                self._ring_ended(call, rang, m.get("DestChannel", ""), status, ts, out)
            return
        if ext is None or (call.direction == OUTBOUND and call.state is not CallState.TRANSFERRING):
            return
        self._open_leg(call, ext, dest_uid if dest is not None else None, ts, out)

    def _on_agentconnect(self, m: Message, out: list[Fact]) -> None:
        dest_uid = m.get("DestUniqueid")
        call = self._chans.get(dest_uid or "")
        if call is None or call.direction == OUTBOUND:
            return
        ext = self._agent_of(call.channels.get(dest_uid or ""), m.get("Interface") or m.get("DestChannel"))
        if ext is not None and call.open_leg(ext) is None:
            call.dial_results.setdefault(dest_uid or "", "ANSWER")
            self._open_leg(call, ext, dest_uid, _ts(m), out)

    def _on_varset(self, m: Message, out: list[Fact]) -> None:
        variable = m.get("Variable")
        if variable == "DIALSTATUS":
            value = m.get("Value", "")
            if value in FAILED_STATUSES:
                found = self._lookup(m)
                if found is None:
                    return
                call, chan = found
                call.last_status = value
                for role, ext, _ in chan.dial_targets:
                    if role in (Role.AGENT, Role.LOCAL) and ext and ext not in call.rung:
                        call.rung.append(ext)
        elif variable == "MIXMONITOR_FILENAME":
            found = self._lookup(m)
            value = m.get("Value")
            if found is not None and isinstance(value, str):
                self._recording(found[0], found[1], value)

    def _on_userevent(self, m: Message, out: list[Fact]) -> None:
        file = m.get("File")
        if not isinstance(file, str):
            return
        found = self._lookup(m)
        if found is not None:
            self._recording(found[0], found[1], file)

    def _on_hanguprequest(self, m: Message, out: list[Fact]) -> None:
        found = self._lookup(m)
        if found is None:
            return
        call, chan = found
        if call.answered_at is None and call.state is not CallState.ANSWERED and chan is call.first:
            call.caller_gave_up = True
        if call.hangup_by is None:
            if chan.role is Role.TRUNK:
                call.hangup_by = "external"
            elif chan.role in (Role.AGENT, Role.LOCAL) and (
                chan.up or (chan is call.first and call.answered_at is not None)
                or any(leg.ended_at is None and leg.channel_uid == chan.uid for leg in call.legs)
            ):
                call.hangup_by = "agent"

    def _on_queuejoin(self, m: Message, out: list[Fact]) -> None:
        found = self._lookup(m)
        if found is not None:
            found[0].queue = m.get("Queue") or found[0].queue

    def _on_blindtransfer(self, m: Message, out: list[Fact]) -> None:
        if m.get("Result", "Success") != "Success":
            return
        found = self._lookup(m, "TransfereeUniqueid") or self._lookup(m, "TransfererUniqueid")
        if found is None or found[0].state is not CallState.ANSWERED:
            return  # only a call in conversation can be transferred
        call, _ = found
        ts = _ts(m)
        transferer = call.channels.get(m.get("TransfererUniqueid", ""))
        from_ext = transferer.extension if transferer is not None else None
        self._close_legs(call, ts, transferer.uid if transferer is not None else None)
        self._move(call, CallState.TRANSFERRING)
        call.transferred_at = ts
        target = m.get("Extension")
        out.append(CallTransferred(**self._base(call, ts), kind="blind", from_extension=from_ext,
                                   to_extension=target if isinstance(target, str) and target else None))

    def _on_attendedtransfer(self, m: Message, out: list[Fact]) -> None:
        if m.get("Result", "Success") != "Success":
            return
        found = self._lookup(m, "TransfereeUniqueid") or self._lookup(m, "OrigTransfererUniqueid")
        if found is None or found[0].state is not CallState.ANSWERED:
            return  # only a call in conversation can be transferred
        call, _ = found
        ts = _ts(m)
        orig = call.channels.get(m.get("OrigTransfererUniqueid", ""))
        from_ext = orig.extension if orig is not None else None
        self._close_legs(call, ts, orig.uid if orig is not None else None)
        to_ext = None
        target_uid = m.get("TransferTargetUniqueid", "")
        other = self._chans.get(target_uid)
        if other is not None:
            target = other.channels[target_uid]
            to_ext = target.extension
            if other is not call:  # the consultation call hands its target leg over
                self._close_legs(other, ts, target_uid)
                del other.channels[target_uid]
                other.live -= 1
                call.channels[target_uid] = target
                call.live += 1
                self._chans[target_uid] = call
                if other.live <= 0:
                    self._finish(other, ts, out)
        self._move(call, CallState.TRANSFERRING)
        call.transferred_at = ts
        out.append(CallTransferred(**self._base(call, ts), kind="attended", from_extension=from_ext,
                                   to_extension=to_ext))
        if to_ext is not None and target_uid in call.channels:
            self._open_leg(call, to_ext, target_uid, ts, out)

    def _on_originateresponse(self, m: Message, out: list[Fact]) -> None:
        action_id = m.get("ActionID")
        pending = self._originates.pop(action_id, None) if action_id else None
        found = self._lookup(m)
        if found is not None:
            call = found[0]
            if call.action_id is None:
                call.action_id = action_id
            if call.external is None:
                call.external = (pending.number if pending else None) or _number(m.get("Exten"))
            return
        if m.get("Response") == "Success" or pending is None or pending.matched:
            return
        # the Originate made no channel we saw: the click-to-call failed before ringing anyone
        ts = _ts(m)
        out.append(CallEnded(
            call_id=f"originate:{action_id}", direction=OUTBOUND, external_number=pending.number,
            did=None, at=ts, status="failed", agent=pending.extension, caller_extension=pending.extension,
            started_at=ts, answered_at=None, ended_at=ts, wait_seconds=0.0, talk_seconds=0.0,
            hangup_cause=None, hangup_by="system", dial_status=None, recording=None,
            originate_action_id=action_id,
        ))

    def _on_hangup(self, m: Message, out: list[Fact]) -> None:
        found = self._lookup(m)
        if found is None:
            return
        call, chan = found
        cause_raw = m.get("Cause")
        try:
            cause = int(cause_raw) if cause_raw is not None and cause_raw != "" else None
        except (TypeError, ValueError):
            cause = None
        ts = _ts(m)
        if ts is not None:
            self._last_ts = ts
        self._leg_gone(call, chan, ts, cause, out)

    def _leg_gone(self, call: Call, chan: Channel, ts: float | None, cause: int | None,
                  out: list[Fact], resynced: bool = False) -> None:
        self._chans.pop(chan.uid, None)
        chan.cause = cause
        call.live -= 1
        rang = call.ringing.pop(chan.uid, None)
        if rang is not None:  # hung up while ringing with no DialEnd before it
            self._ring_ended(call, rang, chan.name, "HANGUP", ts, out)
        if chan.role is Role.TRUNK or chan is call.first:
            self._close_legs(call, ts)
        else:
            self._close_legs(call, ts, chan.uid)
        if call.live <= 0:
            self._finish(call, ts, out, resynced=resynced)

    # ------------------------------------------------------------------ the end
    def _finish(self, call: Call, ts: float | None, out: list[Fact], resynced: bool = False) -> None:
        self._calls.pop(call.id, None)
        for uid in list(call.channels):
            if self._chans.get(uid) is call:
                del self._chans[uid]
        self._close_legs(call, ts)
        self._move(call, CallState.ENDED)
        if not call.announced:
            if call.originated and call.caller_extension is not None:
                call.direction = OUTBOUND
                self._announce(call, call.started_at, out)
            else:
                return  # a phone picked up and put down, a lone Local half: no call
        legs = tuple(
            AgentLeg(extension=leg.extension, answered_at=leg.answered_at or 0.0,
                     ended_at=leg.ended_at or leg.answered_at or 0.0,
                     talk_seconds=_seconds(leg.answered_at, leg.ended_at), recording=leg.recording)
            for leg in call.legs
        )
        status: Status
        if legs:
            status = "answered"
        elif call.caller_gave_up:
            status = "abandoned"
        elif "NOANSWER" in call.dial_results.values() or call.last_status == "NOANSWER":
            status = "missed"
        elif call.last_status == "BUSY":
            status = "busy"
        elif call.last_status in FAILED_STATUSES or call.direction == OUTBOUND:
            status = "failed"
        else:
            status = "missed"
        agent = legs[-1].extension if legs else (call.rung[-1] if call.rung else call.caller_extension)
        if call.direction == OUTBOUND and call.caller_extension is not None:
            agent = call.caller_extension
        trunk = next((c for c in call.channels.values() if c.role is Role.TRUNK), None)
        cause_chan = trunk or call.first
        out.append(CallEnded(
            **self._base(call, ts),
            status=status,
            agent=agent or None,
            caller_extension=call.caller_extension if call.direction != INBOUND else None,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=ts,
            wait_seconds=_seconds(call.started_at, call.answered_at if call.answered_at is not None else ts),
            talk_seconds=round(sum(leg.talk_seconds for leg in legs), 3),
            hangup_cause=cause_chan.cause if cause_chan is not None else None,
            hangup_by=call.hangup_by or "system",
            dial_status="ANSWER" if legs else call.last_status,
            recording=call.recordings[0] if call.recordings else None,
            recordings=tuple(call.recordings),
            legs=legs,
            rung=tuple(call.rung),
            queue=call.queue,
            originate_action_id=call.action_id,
            resynced=resynced,
        ))

    # ------------------------------------------------------------------ resync
    def _resync_call(self, linkedid: str, group: list[Message], now: float | None,
                     details: Mapping[str, Message]) -> list[Fact]:
        def status(c: Message) -> Message:
            return details.get(str(c["Uniqueid"]), {})

        def age(c: Message) -> float:
            seconds = _whole(status(c).get("Seconds"))
            return float(seconds) if seconds is not None else _duration(c.get("Duration"))

        def created(c: Message) -> float | None:
            return None if now is None else now - age(c)

        group.sort(key=lambda c: (str(c["Uniqueid"]) != linkedid, -age(c)))
        out: list[Fact] = []
        for c in group:
            dnid = status(c).get("DNID")
            out.extend(self.feed({
                "Event": "Newchannel", "Channel": c["Channel"], "Uniqueid": c["Uniqueid"],
                "Linkedid": linkedid, "CallerIDNum": c.get("CallerIDNum", ""),
                "CallerIDName": c.get("CallerIDName", ""),
                # the number dialled (the DID, on a trunk leg); never the channel's current
                # extension, which is wherever the dialplan went since
                "Exten": dnid if isinstance(dnid, str) else "",
                "ChannelStateDesc": c.get("ChannelStateDesc", ""), "Timestamp": str(created(c) or ""),
            }))
        call = self._calls.get(linkedid)
        if call is None or call.first is None:
            return out
        first = call.first
        caller = next((c for c in group if str(c["Uniqueid"]) == first.uid), None)
        billsec = None if caller is None else _whole(status_variables(status(caller)).get("CDR(billsec)"))
        for c in group:
            uid = str(c["Uniqueid"])
            if uid == first.uid:
                continue
            begun = created(c)
            stamp = str(begun or "")
            out.extend(self.feed({
                "Event": "DialBegin", "Channel": first.name, "Uniqueid": first.uid, "Linkedid": linkedid,
                "DestChannel": c["Channel"], "DestUniqueid": uid,
                "DestCallerIDNum": c.get("CallerIDNum", ""), "Timestamp": stamp,
            }))
            if c.get("ChannelStateDesc") == "Up" and (c.get("BridgeId") or c.get("BridgeID")):
                # answered when the caller's leg was (its CDR's billable seconds), not before this
                # leg rang; without that, when this leg rang (the wait is then a lower bound)
                answer = begun
                if billsec and now is not None and begun is not None:
                    answer = max(begun, now - billsec)
                out.extend(self.feed({
                    "Event": "DialEnd", "Channel": first.name, "Uniqueid": first.uid, "Linkedid": linkedid,
                    "DestChannel": c["Channel"], "DestUniqueid": uid, "DialStatus": "ANSWER",
                    "Timestamp": str(answer or ""),
                }))
        for c in group:  # the recordings, once their legs are open
            recording = status_variables(status(c)).get("MIXMONITOR_FILENAME")
            if recording:
                out.extend(self.feed({
                    "Event": "VarSet", "Channel": c["Channel"], "Uniqueid": c["Uniqueid"],
                    "Linkedid": linkedid, "Variable": "MIXMONITOR_FILENAME", "Value": recording,
                }))
        return out
