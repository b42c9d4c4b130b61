"""Call facts emitted by :mod:`hub.telephony.tracker`.

Every fact names its call by ``call_id`` (the AMI ``Linkedid``) and repeats what is known about the
call at that moment: direction, external number, DID. Times are epoch seconds taken from the AMI
``Timestamp`` header (``None`` when the event had none).

| fact            | when                                                                          |
|-----------------|-------------------------------------------------------------------------------|
| CallStarted     | the direction is known (inbound: trunk leg appears; outbound/internal: dial)  |
| AgentRinging    | an agent's phone starts ringing (each queue member rung gets one)             |
| AgentRingEnded  | an agent's phone stopped ringing unanswered while the call goes on (a queue   |
|                 | moved to the next member, the agent declined or was busy)                     |
| CallAnswered    | an agent answers (inbound, internal, after a transfer) or the callee (outbound)|
| CallTransferred | a blind or attended transfer moved the call from one agent to another         |
| CallEnded       | the last channel of the call hung up (or a resync found it gone)              |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["inbound", "outbound", "internal"]
Status = Literal["answered", "missed", "abandoned", "busy", "failed"]

INBOUND: Direction = "inbound"
OUTBOUND: Direction = "outbound"
INTERNAL: Direction = "internal"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFact:
    call_id: str
    direction: Direction
    external_number: str | None
    did: str | None
    at: float | None
    caller_name: str | None = None  # the caller's display name as the PBX had it (CallerIDName)
    hidden_number: bool = False  # the caller withheld the number (anonymous, restricted, private)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(CallFact):
    started_at: float | None
    # the agent who placed the call (outbound, internal, click-to-call)
    caller_extension: str | None = None
    # click-to-call: the Originate's ActionID when the hub asked for it
    originate_action_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRinging(CallFact):
    extension: str
    channel: str
    queue: str | None = None
    caller_extension: str | None = None  # an internal call: the colleague's phone that calls


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingEnded(CallFact):
    extension: str
    channel: str
    reason: str  # the DialStatus (NOANSWER, BUSY, CANCEL, …) or HANGUP


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(CallFact):
    extension: str | None  # the agent who talks (for outbound: the agent who placed the call)
    channel: str | None
    wait_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(CallFact):
    kind: Literal["blind", "attended"]
    from_extension: str | None
    to_extension: str | None  # the target (blind: the extension dialled; attended: the agent reached)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLeg:
    """One agent's part of an answered call (a transferred call has several)."""

    extension: str
    answered_at: float
    ended_at: float
    talk_seconds: float
    recording: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(CallFact):
    status: Status
    # the agent who answered last; for an unanswered call, the last agent tried
    agent: str | None
    caller_extension: str | None
    started_at: float | None
    answered_at: float | None
    ended_at: float | None
    wait_seconds: float
    talk_seconds: float
    hangup_cause: int | None
    hangup_by: Literal["external", "agent", "system"]
    # the most decisive DialStatus seen (ANSWER, NOANSWER, CANCEL, BUSY, CHANUNAVAIL, CONGESTION)
    dial_status: str | None
    recording: str | None  # the first recording's file name (base name)
    recordings: tuple[str, ...] = ()
    legs: tuple[AgentLeg, ...] = ()
    rung: tuple[str, ...] = ()  # every agent extension that rang (or was tried), in order
    queue: str | None = None
    originate_action_id: str | None = None
    resynced: bool = False  # ended by a resync after a reconnect, not by its Hangup events

    @property
    def missed(self) -> bool:
        """An inbound call nobody took: a callback is due."""
        return self.direction == INBOUND and self.status != "answered"


Fact = CallStarted | AgentRinging | AgentRingEnded | CallAnswered | CallTransferred | CallEnded
