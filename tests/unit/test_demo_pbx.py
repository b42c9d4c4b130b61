"""The demo PBX's replays (hub.telephony.simulator): the packaged traces, rewritten with a demo client's
number and a demo agent's extension, still make the calls the tracker expects; an Originate is played
from the phone and to the number it names; the recordings it leaves are the packaged dialogues."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import pytest

from hub.telephony.events import AgentRinging, CallEnded
from hub.telephony.simulator import (
    DEMO_RECORDINGS,
    DEMO_SCENARIOS,
    TRACE_NUMBER,
    DemoRewriter,
    leave_recording,
    load_trace,
    originate_rewriter,
    scenarios,
)
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


def test_the_demo_dialogues_ship_with_the_package_as_small_telephone_wavs() -> None:
    clips = sorted(DEMO_RECORDINGS.glob("*.wav"))
    assert {c.name.split("-")[0] for c in clips} == {"inbound", "outbound"}
    assert 4 <= len(clips) <= 8 and sum(c.stat().st_size for c in clips) < 1_500_000
    for clip in clips:
        with wave.open(str(clip)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
            assert 8 <= w.getnframes() / 8000 <= 25, clip.name  # seconds of dialogue


def test_a_recording_is_left_under_its_base_name_as_a_dialogue_of_its_direction(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    name = "/var/spool/asterisk/monitor/outbound-20261123-164123-79031112233-102-1795452081.12.wav"
    made = leave_recording(folder, name)
    assert made == folder / "outbound-20261123-164123-79031112233-102-1795452081.12.wav"
    assert made.read_bytes() in {c.read_bytes() for c in DEMO_RECORDINGS.glob("outbound-*.wav")}
    inbound = leave_recording(folder, "inbound-20261123-164016-79161234567-101-1795452014.1.wav")
    assert inbound is not None
    assert inbound.read_bytes() in {c.read_bytes() for c in DEMO_RECORDINGS.glob("inbound-*.wav")}
    inbound.write_bytes(b"kept")  # a recording that is there stays as it is
    assert leave_recording(folder, inbound.name) == inbound and inbound.read_bytes() == b"kept"
    assert leave_recording(folder, "..") is None and leave_recording(folder, "") is None
    # the recordings are served only from inside the folder: files (or links) there, none out of it
    assert all(p.resolve().parent == folder.resolve() for p in folder.iterdir())


@pytest.mark.parametrize(("extension", "number"), [("102", "+79031112233"), ("101", "+74957067660")])
def test_an_originate_is_replayed_from_the_phone_asked_to_the_number_asked(extension: str,
                                                                           number: str) -> None:
    rewrite = originate_rewriter({"Action": "Originate", "Channel": f"PJSIP/{extension}", "Exten": number,
                                  "Context": "from-internal", "ActionID": "c2c-1"})
    tracker = Tracker(trunks=["trunk"], extensions=["101", "102"])
    facts = tracker.feed_all([rewrite(m) for m in load_trace("click_to_call") if "Event" in m])
    [ended] = [f for f in facts if isinstance(f, CallEnded)]
    assert (ended.direction, ended.status) == ("outbound", "answered")
    assert ended.external_number == number and ended.agent == extension
    assert ended.recording and number[1:] in ended.recording
    assert f"outbound-{time.strftime('%Y%m%d')}-" in ended.recording  # named when it was made
