"""The one door into the core for channels: plain frozen facts and the intake they go through.

A channel adapter (``hub.telephony``...) imports only this module: it translates its protocol's
events into these facts and hands them to an intake it was given by the composition root
(``hub.app`` builds ``hub.crm.intake.CallIntake(db, settings)``). Nothing here touches the
database, so importing it costs an adapter nothing and keeps ``sqlalchemy`` and the ORM out of it.

Facts name their call by ``call_key`` — the PBX's own id (AMI ``Linkedid``): the intake is
idempotent on it. Times are aware datetimes (``None``: "now"). Numbers are as the PBX gave them;
the core normalises them (E.164 in ``CallSettings.region``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

CallDirection = Literal["inbound", "outbound", "internal"]
CallStatus = Literal["answered", "missed", "abandoned", "busy", "failed"]
UnknownCaller = Literal["auto", "ask"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSettings:
    """The ``[asterisk]`` / ``[phones]`` values the call intake needs (the core reads no config)."""

    region: str = "RU"
    # "auto": a lead is created (Unsorted) when an unknown number rings; "ask": the agent decides.
    unknown_caller: UnknownCaller = "auto"
    # numbers never made into leads nor given a callback task (any format; normalised by the core)
    ignored_numbers: tuple[str, ...] = ()
    # a callback task for a missed call is due this long after the call ended
    callback_due_minutes: int = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging:
    """An agent's phone started ringing (a queue call gives one per agent rung)."""

    call_key: str
    direction: CallDirection
    number: str | None  # the external party (caller on inbound, callee on outbound)
    did: str | None
    extension: str  # the agent phone that rings
    at: datetime | None = None
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnsweredFact:
    """Somebody took the call: ``extension`` is the agent who talks (outbound: who placed it)."""

    call_key: str
    direction: CallDirection
    number: str | None
    did: str | None
    extension: str | None
    at: datetime | None = None
    wait_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEndedFact:
    """The call is over, with its outcome. ``agent_extension``: the agent who answered last; for an
    unanswered call the last agent tried; for an outbound call the agent who placed it."""

    call_key: str
    direction: CallDirection
    status: CallStatus
    number: str | None
    did: str | None
    agent_extension: str | None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    hangup_cause: int | None = None
    recording: str | None = None  # the recording's file name (base name under recordings_dir)
    rung_extensions: tuple[str, ...] = ()  # every agent extension that rang, in order

    @property
    def missed(self) -> bool:
        """An inbound call nobody took: a callback is due."""
        return self.direction == "inbound" and self.status != "answered"


class CallIntakePort(Protocol):
    """What a telephony adapter calls; one unit of work per fact, events published after commit."""

    async def ringing(self, fact: CallRinging) -> dict[str, Any]:
        """→ the screen-pop payload sent to the rung agent as ``call.ringing``."""
        ...

    async def answered(self, fact: CallAnsweredFact) -> dict[str, Any] | None: ...

    async def ended(self, fact: CallEndedFact) -> dict[str, Any] | None:
        """→ the stored call (API shape); a replayed end changes nothing."""
        ...
