"""The telephony → CRM bridge: tracker facts become the core's port facts (pure translation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.config import AsteriskConfig
from hub.crm.ports import CallAnsweredFact, CallEndedFact, CallRingEnded, CallRinging
from hub.telephony.crm_bridge import CrmBridge, settings_from, to_port
from hub.telephony.events import (
    AgentRingEnded,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
)

BASE: dict[str, Any] = {"call_id": "1795452014.0", "direction": "inbound", "external_number": "+79161234567",
                        "did": "74951234567", "at": 1795452016.0}


def test_ringing_answered_ended_translate_and_the_rest_is_skipped() -> None:
    ring = to_port(AgentRinging(**BASE, extension="101", channel="PJSIP/101-00000001"))
    assert ring == CallRinging(call_key="1795452014.0", direction="inbound", number="+79161234567",
                               did="74951234567", extension="101",
                               at=datetime.fromtimestamp(1795452016.0, UTC))
    stopped = to_port(AgentRingEnded(**BASE, extension="101", channel="PJSIP/101-00000001",
                                     reason="NOANSWER"))
    assert stopped == CallRingEnded(call_key="1795452014.0", direction="inbound", number="+79161234567",
                                    did="74951234567", extension="101", reason="NOANSWER",
                                    at=datetime.fromtimestamp(1795452016.0, UTC))
    answered = to_port(CallAnswered(**BASE, extension="101", channel="PJSIP/101-00000001", wait_seconds=2.0))
    assert isinstance(answered, CallAnsweredFact)
    assert answered.extension == "101" and answered.wait_seconds == 2.0
    ended = to_port(CallEnded(
        **{**BASE, "direction": "outbound"}, status="answered", agent=None, caller_extension="101",
        started_at=1795452014.0, answered_at=None, ended_at=None, wait_seconds=2.0, talk_seconds=3.0,
        hangup_cause=16, hangup_by="external", dial_status="ANSWER", recording="a.wav", rung=("101", "102")))
    assert isinstance(ended, CallEndedFact)
    assert ended.agent_extension == "101" and ended.rung_extensions == ("101", "102")
    assert ended.ended_at == datetime.fromtimestamp(1795452016.0, UTC) and ended.answered_at is None
    assert ended.recording == "a.wav" and ended.status == "answered" and not ended.missed
    assert to_port(CallStarted(**BASE, started_at=1.0)) is None
    assert to_port(CallTransferred(**BASE, kind="blind", from_extension="101", to_extension="102")) is None


async def test_the_bridge_calls_the_intake_in_order() -> None:
    seen: list[Any] = []

    class Intake:
        async def ringing(self, fact: CallRinging) -> dict[str, Any]:
            seen.append(fact)
            return {}

        async def ring_ended(self, fact: CallRingEnded) -> None:
            seen.append(fact)

        async def answered(self, fact: CallAnsweredFact) -> None:
            seen.append(fact)

        async def ended(self, fact: CallEndedFact) -> None:
            seen.append(fact)

    bridge = CrmBridge(Intake())
    await bridge(CallStarted(**BASE, started_at=1.0))
    await bridge(AgentRinging(**BASE, extension="101", channel="c"))
    await bridge(AgentRingEnded(**BASE, extension="101", channel="c", reason="NOANSWER"))
    await bridge(CallAnswered(**BASE, extension="101", channel="c", wait_seconds=1.0))
    assert [type(f) for f in seen] == [CallRinging, CallRingEnded, CallAnsweredFact]


def test_settings_from_the_asterisk_section() -> None:
    settings = settings_from(AsteriskConfig(unknown_caller="ask", ignored_numbers=["+78005553535"]), "RU")
    assert settings.unknown_caller == "ask" and settings.ignored_numbers == ("+78005553535",)
    assert settings_from(AsteriskConfig(unknown_caller="bogus")).unknown_caller == "auto"
