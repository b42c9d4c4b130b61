"""The demo PBX's replays (hub.telephony.simulator): the packaged traces, rewritten with a demo client's
number and a demo agent's extension, still make the calls the tracker expects."""

from __future__ import annotations

import pytest

from hub.telephony.events import AgentRinging, CallEnded
from hub.telephony.simulator import DEMO_SCENARIOS, TRACE_NUMBER, DemoRewriter, load_trace, scenarios
from hub.telephony.tracker import Tracker

NUMBER = "9031112233"

OUTCOMES = {
    "inbound_answered": ("inbound", "answered"), "inbound_missed": ("inbound", "missed"),
    "inbound_abandoned": ("inbound", "abandoned"), "click_to_call": ("outbound", "answered"),
    "queue_answered": ("inbound", "answered"), "queue_abandoned": ("inbound", "abandoned"),
}


def test_every_demo_scenario_ships_with_the_package() -> None:
    assert set(scenarios()) == set(DEMO_SCENARIOS) == set(OUTCOMES)


@pytest.mark.parametrize("scenario", sorted(DEMO_SCENARIOS))
@pytest.mark.parametrize("agent", ["101", "102"])
def test_a_demo_replay_is_the_clients_call_to_the_chosen_agent(scenario: str, agent: str) -> None:
    single = DEMO_SCENARIOS[scenario]
    rewrite = DemoRewriter({TRACE_NUMBER: NUMBER}, agent if single else "101")
    tracker = Tracker(trunks=["trunk"], extensions=["101", "102"])
    facts = tracker.feed_all([rewrite(m) for m in load_trace(scenario) if "Event" in m])
    [ended] = [f for f in facts if isinstance(f, CallEnded)]
    assert (ended.direction, ended.status) == OUTCOMES[scenario]
    assert ended.external_number == "+7" + NUMBER
    rung = [f.extension for f in facts if isinstance(f, AgentRinging)]
    if single:
        assert ended.agent == agent and set(rung) <= {agent}
    else:
        assert rung and set(rung) <= {"101", "102"}
    assert tracker.active_calls == 0
