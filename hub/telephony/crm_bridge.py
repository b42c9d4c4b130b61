"""From the tracker's call facts to the CRM's door (``hub.crm.ports``).

The AMI connection hands every fact to ``on_fact``; the composition root makes that a
``CrmBridge(CallIntake(db, settings))``: agent ringing → screen-pop, its ring ended → that popup
closes, answered → popups close, ended → the call log, callbacks. Started and transferred facts
need nothing from the core yet (the end carries the final agent). Pure translation: no database,
no web.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hub.config import AsteriskConfig
from hub.crm.ports import (
    CallAnsweredFact,
    CallEndedFact,
    CallIntakePort,
    CallRingEnded,
    CallRinging,
    CallSettings,
    UnknownCaller,
)
from hub.telephony.events import AgentRingEnded, AgentRinging, CallAnswered, CallEnded, Fact

PortFact = CallRinging | CallRingEnded | CallAnsweredFact | CallEndedFact


def settings_from(asterisk: AsteriskConfig, region: str = "RU") -> CallSettings:
    """The intake's settings from ``[asterisk]`` and ``[phones] default_region``."""
    mode: UnknownCaller = "ask" if asterisk.unknown_caller == "ask" else "auto"
    return CallSettings(region=region or "RU", unknown_caller=mode,
                        ignored_numbers=tuple(str(n) for n in asterisk.ignored_numbers))


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def to_port(fact: Fact) -> PortFact | None:
    """The core's fact for a tracker fact, or None when the core needs nothing from it."""
    if isinstance(fact, AgentRinging):
        return CallRinging(call_key=fact.call_id, direction=fact.direction, number=fact.external_number,
                           did=fact.did, extension=fact.extension, at=_time(fact.at),
                           caller_extension=fact.caller_extension, caller_name=fact.caller_name,
                           hidden_number=fact.hidden_number)
    if isinstance(fact, AgentRingEnded):
        return CallRingEnded(call_key=fact.call_id, direction=fact.direction, number=fact.external_number,
                             did=fact.did, extension=fact.extension, reason=fact.reason, at=_time(fact.at))
    if isinstance(fact, CallAnswered):
        return CallAnsweredFact(call_key=fact.call_id, direction=fact.direction, number=fact.external_number,
                                did=fact.did, extension=fact.extension, at=_time(fact.at),
                                wait_seconds=fact.wait_seconds)
    if isinstance(fact, CallEnded):
        return CallEndedFact(
            call_key=fact.call_id, direction=fact.direction, status=fact.status,
            number=fact.external_number, did=fact.did,
            agent_extension=fact.agent or fact.caller_extension,
            started_at=_time(fact.started_at), answered_at=_time(fact.answered_at),
            ended_at=_time(fact.ended_at if fact.ended_at is not None else fact.at),
            wait_seconds=fact.wait_seconds, talk_seconds=fact.talk_seconds, hangup_cause=fact.hangup_cause,
            recording=fact.recording, recordings=fact.recordings,
            recording_extensions=tuple(_recording_agent(fact, name) for name in fact.recordings),
            rung_extensions=tuple(fact.rung), caller_name=fact.caller_name)
    return None


def _recording_agent(fact: CallEnded, name: str) -> str | None:
    """The extension of the agent leg that made the recording, if one did."""
    return next((leg.extension for leg in fact.legs if leg.recording == name and leg.extension), None)


class CrmBridge:
    """``on_fact`` for the AMI connection: each fact into the core. The connection calls it from one
    lane per call (a call's facts in order, different calls concurrently); the intake decides how
    facts share units of work (``hub.crm.intake.CallIntake``)."""

    def __init__(self, intake: CallIntakePort) -> None:
        self.intake = intake

    async def __call__(self, fact: Fact) -> None:
        port_fact = to_port(fact)
        if isinstance(port_fact, CallRinging):
            await self.intake.ringing(port_fact)
        elif isinstance(port_fact, CallRingEnded):
            await self.intake.ring_ended(port_fact)
        elif isinstance(port_fact, CallAnsweredFact):
            await self.intake.answered(port_fact)
        elif isinstance(port_fact, CallEndedFact):
            await self.intake.ended(port_fact)
