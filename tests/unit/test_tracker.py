"""The call tracker on every captured trace (the fixtures' README is the answer key), on the load run,
per (event × prior state) like Zammad's cti log spec, and on bad input."""

from __future__ import annotations

import gzip
import logging
from collections import Counter

import pytest

from hub.telephony.ami_parse import AmiParser, iter_jsonl, parse_bytes, read_capture
from hub.telephony.events import (
    AgentRingEnded,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
)
from hub.telephony.tracker import TRANSITIONS, CallState, Tracker
from tests.paths import AMI_FIXTURES

FIXTURES = AMI_FIXTURES
SCENARIOS = [
    "inbound_answered",
    "inbound_missed",
    "inbound_abandoned",
    "queue_answered",
    "queue_abandoned",
    "click_to_call",
    "blind_transfer",
    "internal_call",
    "agent_busy",
    "agent_unavailable",
]
AGENTS = ("101", "102", "103", "104")
CALLER = "+79161234567"
TOL = 1.0  # seconds: the README states whole seconds


def tracker() -> Tracker:
    return Tracker(trunks=["trunk"], extensions=AGENTS)


def replay(name: str, source: str = "jsonl") -> list:
    if source == "ami":
        messages = read_capture(FIXTURES / f"{name}.ami")
    else:
        messages = list(iter_jsonl(FIXTURES / f"{name}.jsonl"))
    t = tracker()
    facts = t.feed_all(messages)
    assert t.active_calls == 0, "every call of the trace must be finished"
    assert t.skipped == 0
    return facts


def only(facts: list, kind: type):
    found = [f for f in facts if isinstance(f, kind)]
    assert len(found) == 1, found
    return found[0]


def of(facts: list, kind: type) -> list:
    return [f for f in facts if isinstance(f, kind)]


def test_every_fixture_is_covered() -> None:
    on_disk = {p.name.split(".")[0] for p in FIXTURES.iterdir() if p.suffix in (".ami", ".jsonl", ".gz")}
    assert on_disk == {*SCENARIOS, "load_test"}


# ---------------------------------------------------------------- parser vs the JSONL answer key
@pytest.mark.parametrize("name", SCENARIOS)
def test_parser_reads_the_raw_capture_like_the_jsonl(name: str) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    banner, messages = parse_bytes(data)
    assert banner == "Asterisk Call Manager/11.0.0"
    expected = [{k: v for k, v in m.items() if k != "_t"} for m in iter_jsonl(FIXTURES / f"{name}.jsonl")]
    assert messages == expected


@pytest.mark.parametrize("name", SCENARIOS)
def test_parser_is_incremental(name: str) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    parser = AmiParser()
    got = []
    for i in range(0, len(data), 97):  # reads that cut headers, CRLFs and UTF-8 sequences in half
        got.extend(parser.feed(data[i : i + 97]))
    assert got == parse_bytes(data)[1]


@pytest.mark.parametrize("name", SCENARIOS)
def test_raw_capture_and_jsonl_give_the_same_facts(name: str) -> None:
    assert replay(name, "ami") == replay(name, "jsonl")


# ---------------------------------------------------------------- the ten scenarios, one by one
def test_inbound_answered() -> None:
    facts = replay("inbound_answered")
    assert [type(f) for f in facts] == [CallStarted, AgentRinging, CallAnswered, CallEnded]
    started = facts[0]
    assert (started.call_id, started.direction, started.external_number, started.did) == (
        "1795452014.0", "inbound", CALLER, "74951234567")
    assert facts[1].extension == "101" and facts[1].channel == "PJSIP/101-00000001"
    assert facts[2].extension == "101"
    end = facts[3]
    assert end.status == "answered" and not end.missed
    assert end.direction == "inbound" and end.external_number == CALLER and end.did == "74951234567"
    assert end.agent == "101"
    assert end.wait_seconds == pytest.approx(2, abs=TOL)
    assert end.talk_seconds == pytest.approx(3, abs=TOL)
    assert end.hangup_cause == 16
    assert end.hangup_by == "external"  # ended by the client
    assert end.recordings == ("inbound-20261123-164016-79161234567-101-1795452014.1.wav",)
    assert end.recording == end.recordings[0] and end.legs[0].recording == end.recording
    assert end.started_at == pytest.approx(1795452014.432399)  # from the Timestamp header


def test_inbound_missed() -> None:
    facts = replay("inbound_missed")
    end = only(facts, CallEnded)
    assert end.call_id == "1795452023.2"
    assert end.status == "missed" and end.missed  # → a callback task
    assert end.direction == "inbound" and end.external_number == CALLER
    assert end.agent == "101" and end.rung == ("101",)
    assert end.wait_seconds == pytest.approx(15, abs=TOL)
    assert end.talk_seconds == 0
    assert end.recording is None and end.recordings == ()
    assert end.hangup_cause == 19
    assert end.dial_status == "NOANSWER"
    assert of(facts, CallAnswered) == []


def test_inbound_abandoned() -> None:
    end = only(replay("inbound_abandoned"), CallEnded)
    assert end.call_id == "1795452042.4"
    assert end.status == "abandoned" and end.missed
    assert end.agent == "101"
    assert end.wait_seconds == pytest.approx(5, abs=TOL)
    assert end.hangup_cause == 127 and end.hangup_by == "external"
    assert end.dial_status == "CANCEL" and end.recording is None


def test_queue_answered() -> None:
    facts = replay("queue_answered")
    rings = of(facts, AgentRinging)
    assert [(r.extension, r.queue) for r in rings] == [("101", "sales"), ("102", "sales")]
    answered = only(facts, CallAnswered)
    assert answered.extension == "102"
    end = only(facts, CallEnded)
    assert end.call_id == "1795452050.6" and end.did == "74951234568"
    assert end.status == "answered" and end.agent == "102" and end.queue == "sales"
    assert end.wait_seconds == pytest.approx(12, abs=TOL)
    assert end.talk_seconds == pytest.approx(4, abs=TOL)
    assert end.recordings == ("inbound-20261123-164101-79161234567-102-1795452059.8.wav",)
    assert end.legs[0].recording == end.recording  # recorded just after the DialEnd ANSWER
    assert end.rung == ("101", "102")  # the "missed by 101" attempt
    # 101's phone stops ringing after 8 s (its popup closes) before 102's starts
    assert [type(f).__name__ for f in facts] == [
        "CallStarted", "AgentRinging", "AgentRingEnded", "AgentRinging", "CallAnswered", "CallEnded"]
    stopped = only(facts, AgentRingEnded)
    assert (stopped.extension, stopped.reason, stopped.call_id) == ("101", "NOANSWER", "1795452050.6")
    assert stopped.at is not None and rings[0].at < stopped.at < rings[1].at


def test_queue_abandoned() -> None:
    facts = replay("queue_abandoned")
    assert [r.extension for r in of(facts, AgentRinging)] == ["101"]
    assert of(facts, AgentRingEnded) == []  # the caller gave up: the end closes the popup
    end = only(facts, CallEnded)
    assert end.call_id == "1795452069.9"
    assert end.status == "abandoned" and end.missed and end.queue == "sales"
    assert end.wait_seconds == pytest.approx(6, abs=TOL)
    assert end.hangup_cause == 127


@pytest.mark.parametrize(("name", "extension", "reason"), [("inbound_missed", "101", "NOANSWER"),
                                                           ("agent_busy", "103", "BUSY")])
def test_an_agent_ring_that_ends_unanswered_before_the_call(name: str, extension: str, reason: str) -> None:
    facts = replay(name)
    stopped = only(facts, AgentRingEnded)
    assert (stopped.extension, stopped.reason) == (extension, reason)
    assert facts.index(stopped) == len(facts) - 2  # then the call ends


def test_no_ring_ended_for_an_answered_or_abandoned_call() -> None:
    for name in ("inbound_answered", "inbound_abandoned", "internal_call", "blind_transfer"):
        assert of(replay(name), AgentRingEnded) == [], name


def test_click_to_call() -> None:
    facts = replay("click_to_call")
    started = only(facts, CallStarted)
    assert started.direction == "outbound" and started.caller_extension == "101"
    assert started.external_number == CALLER  # the called client, read from the trunk side
    assert of(facts, AgentRinging) == []  # the agent's own phone ringing for its click-to-call is no pop
    end = only(facts, CallEnded)
    assert end.call_id == "1795452079.11"
    assert end.direction == "outbound" and end.status == "answered"
    assert end.agent == "101" and end.external_number == CALLER and end.did is None
    assert end.talk_seconds == pytest.approx(5, abs=TOL)  # from the client's answer, not the agent's
    assert end.recordings == ("outbound-20261123-164123-79161234567-101-1795452081.12.wav",)
    assert end.originate_action_id == "c2c-1"
    assert end.hangup_by == "external"


def test_click_to_call_matched_to_the_hubs_request() -> None:
    t = tracker()
    t.originate_requested("c2c-1", "101", CALLER)
    facts = t.feed_all(iter_jsonl(FIXTURES / "click_to_call.jsonl"))
    started = only(facts, CallStarted)
    assert started.originate_action_id == "c2c-1" and started.external_number == CALLER
    assert started.at == pytest.approx(1795452079.616287)  # announced as soon as the agent's phone rings


def test_blind_transfer() -> None:
    facts = replay("blind_transfer")
    assert [type(f).__name__ for f in facts] == [
        "CallStarted", "AgentRinging", "CallAnswered", "CallTransferred", "AgentRinging", "CallAnswered",
        "CallEnded"]
    transfer = only(facts, CallTransferred)
    assert (transfer.kind, transfer.from_extension, transfer.to_extension) == ("blind", "101", "102")
    assert [a.extension for a in of(facts, CallAnswered)] == ["101", "102"]
    end = only(facts, CallEnded)
    assert end.call_id == "1795452092.13"
    assert end.status == "answered" and end.direction == "inbound" and end.agent == "102"
    assert [leg.extension for leg in end.legs] == ["101", "102"]
    assert end.legs[0].talk_seconds == pytest.approx(3, abs=TOL)
    assert end.legs[1].talk_seconds == pytest.approx(7, abs=TOL)
    assert end.recordings == (
        "inbound-20261123-164133-79161234567-101-1795452092.14.wav",
        "inbound-20261123-164138-79161234567-102-1795452096.15.wav",
    )
    assert [leg.recording for leg in end.legs] == list(end.recordings)


def test_internal_call() -> None:
    facts = replay("internal_call")
    end = only(facts, CallEnded)
    assert end.call_id == "1795452109.16"
    assert end.direction == "internal" and end.external_number is None and end.did is None
    assert end.caller_extension == "101" and end.agent == "102"
    assert end.status == "answered" and not end.missed
    assert end.talk_seconds == pytest.approx(3, abs=TOL)
    assert end.recording is None
    assert end.hangup_by == "agent"  # 101 hung up


def test_agent_busy() -> None:
    end = only(replay("agent_busy"), CallEnded)
    assert end.call_id == "1795452118.18" and end.did == "74951234569"
    assert end.status == "busy" and end.missed and end.agent == "103"
    assert end.hangup_cause == 17 and end.dial_status == "BUSY"


def test_agent_unavailable() -> None:
    facts = replay("agent_unavailable")
    assert of(facts, AgentRinging) == []  # 104 has no contact: no channel rang
    end = only(facts, CallEnded)
    assert end.call_id == "1795452122.20" and end.did == "74951234570"
    assert end.status == "failed" and end.missed and end.agent == "104"
    assert end.hangup_cause == 20 and end.dial_status == "CHANUNAVAIL"


def test_each_scenario_is_one_call_started_before_anything_else() -> None:
    for name in SCENARIOS:
        facts = replay(name)
        assert isinstance(facts[0], CallStarted), name
        assert isinstance(facts[-1], CallEnded), name
        assert len({f.call_id for f in facts}) == 1, name


# ---------------------------------------------------------------- the load run
def test_load_run_every_call_accounted_for() -> None:
    messages = list(iter_jsonl(FIXTURES / "load_test.jsonl.gz"))
    assert len(messages) == 48438
    t = Tracker(trunks=["trunk"], extensions=AGENTS)
    facts = t.feed_all(messages)
    assert t.active_calls == 0 and t.skipped == 0
    ends = of(facts, CallEnded)
    assert len(ends) == 400 and len({e.call_id for e in ends}) == 400
    assert Counter(e.status for e in ends) == {"answered": 400}
    assert Counter(e.direction for e in ends) == {"inbound": 400}
    assert {e.external_number for e in ends} == {f"+7916500{i:04d}" for i in range(400)}
    assert {e.did for e in ends} == {"74951230000"}
    assert {e.agent for e in ends} <= {"101", "102", "103"}
    assert all(e.recording for e in ends)
    assert all(e.wait_seconds == pytest.approx(1, abs=TOL) for e in ends)
    assert all(e.talk_seconds == pytest.approx(10, abs=TOL) for e in ends)
    counts = Counter(type(f).__name__ for f in facts)
    assert counts == {"CallStarted": 400, "AgentRinging": 400, "CallAnswered": 400, "CallEnded": 400}


def test_load_run_raw_capture_parses_completely() -> None:
    with gzip.open(FIXTURES / "load_test.ami.gz", "rb") as fh:
        parser = AmiParser()
        messages = []
        while chunk := fh.read(65536):
            messages.extend(parser.feed(chunk))
    assert len(messages) == 48438 and parser.bad_frames == 0
    t = tracker()
    assert len(of(t.feed_all(messages), CallEnded)) == 400


# ---------------------------------------------------------------- synthetic AMI
class Pbx:
    """Builds AMI messages for hand-written cases."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def ev(self, event: str, dt: float = 0.001, **headers: str) -> dict:
        self.t += dt
        return {"Event": event, "Timestamp": f"{self.t:.6f}", **headers}

    def newchannel(self, name: str, uid: str, lid: str, num: str = "", exten: str = "s") -> dict:
        return self.ev("Newchannel", Channel=name, Uniqueid=uid, Linkedid=lid, CallerIDNum=num or "<unknown>",
                       Exten=exten, ChannelStateDesc="Down" if exten == "s" else "Ring")

    def dialbegin(self, src: tuple[str, str] | None, dest: tuple[str, str], num: str = "", **kw) -> dict:
        headers = {"DestChannel": dest[0], "DestUniqueid": dest[1], "DestCallerIDNum": num or "<unknown>"}
        if src is not None:
            headers.update(Channel=src[0], Uniqueid=src[1])
        return self.ev(kw.pop("event", "DialBegin"), **headers, **kw)

    def dialend(self, src: tuple[str, str] | None, dest: tuple[str, str], status: str,
                dt: float = 0.001) -> dict:
        headers = {"DestChannel": dest[0], "DestUniqueid": dest[1], "DialStatus": status}
        if src is not None:
            headers.update(Channel=src[0], Uniqueid=src[1])
        return self.ev("DialEnd", dt, **headers)

    def hangup(self, chan: tuple[str, str], cause: str = "16", dt: float = 0.001) -> dict:
        return self.ev("Hangup", dt, Channel=chan[0], Uniqueid=chan[1], Cause=cause)

    def request(self, chan: tuple[str, str], cause: str = "16", dt: float = 0.001) -> dict:
        return self.ev("HangupRequest", dt, Channel=chan[0], Uniqueid=chan[1], Cause=cause)

    def up(self, chan: tuple[str, str]) -> dict:
        return self.ev("Newstate", Channel=chan[0], Uniqueid=chan[1], ChannelStateDesc="Up")


TRUNK = ("PJSIP/trunk-00000001", "100.1")
A101 = ("PJSIP/101-00000002", "100.2")
A102 = ("PJSIP/102-00000003", "100.3")
LID = "100.1"


def at_state(state: CallState) -> tuple[Tracker, Pbx]:
    """An inbound call from CALLER with agent legs 101 and 102 created, brought to ``state``."""
    t, p = tracker(), Pbx()
    t.feed_all([
        p.newchannel(*TRUNK, LID, CALLER, "74951234567"),
        p.newchannel(*A101, LID, "101"),
        p.newchannel(*A102, LID, "102"),
    ])
    steps = {
        CallState.RINGING: [p.dialbegin(TRUNK, A101)],
        CallState.ANSWERED: [p.dialbegin(TRUNK, A101), p.up(A101), p.dialend(TRUNK, A101, "ANSWER", dt=2)],
        CallState.TRANSFERRING: [
            p.dialbegin(TRUNK, A101), p.up(A101), p.dialend(TRUNK, A101, "ANSWER", dt=2),
            p.ev("BlindTransfer", 3, Result="Success", TransfererChannel=A101[0], TransfererUniqueid=A101[1],
                 TransfereeChannel=TRUNK[0], TransfereeUniqueid=TRUNK[1], Extension="102"),
            p.hangup(A101),
        ],
    }
    t.feed_all(steps.get(state, []))
    assert t.call_state(LID) is state
    return t, p


EVENTS = {
    "agent 102 rings": lambda p: [p.dialbegin(TRUNK, A102)],
    "agent 102 answers": lambda p: [p.up(A102), p.dialend(TRUNK, A102, "ANSWER")],
    "agent 102 does not answer": lambda p: [p.dialend(TRUNK, A102, "NOANSWER")],
    "blind transfer to 102": lambda p: [
        p.ev("BlindTransfer", Result="Success", TransfererChannel=A101[0], TransfererUniqueid=A101[1],
             TransfereeChannel=TRUNK[0], TransfereeUniqueid=TRUNK[1], Extension="102")],
    "agent 101 hangs up": lambda p: [p.request(A101), p.hangup(A101)],
    "everybody hangs up, caller first": lambda p: [
        p.request(TRUNK, dt=1), p.hangup(TRUNK), p.hangup(A101), p.hangup(A102)],
}

N, R, A, T, E = CallState.NEW, CallState.RINGING, CallState.ANSWERED, CallState.TRANSFERRING, CallState.ENDED
# (event, prior state) → (state after, facts emitted)
MATRIX = {
    ("agent 102 rings", N): (R, ["AgentRinging"]),
    ("agent 102 rings", R): (R, ["AgentRinging"]),
    ("agent 102 rings", A): (A, ["AgentRinging"]),
    ("agent 102 rings", T): (R, ["AgentRinging"]),
    ("agent 102 answers", N): (A, ["CallAnswered"]),
    ("agent 102 answers", R): (A, ["CallAnswered"]),
    ("agent 102 answers", A): (A, ["CallAnswered"]),
    ("agent 102 answers", T): (A, ["CallAnswered"]),
    ("agent 102 does not answer", N): (N, []),
    ("agent 102 does not answer", R): (R, []),
    ("agent 102 does not answer", A): (A, []),
    ("agent 102 does not answer", T): (T, []),
    ("blind transfer to 102", N): (N, []),
    ("blind transfer to 102", R): (R, []),
    ("blind transfer to 102", A): (T, ["CallTransferred"]),
    ("blind transfer to 102", T): (T, []),
    ("agent 101 hangs up", N): (N, []),
    ("agent 101 hangs up", R): (R, ["AgentRingEnded"]),  # declined: its popup closes
    ("agent 101 hangs up", A): (A, []),
    ("agent 101 hangs up", T): (T, []),
    ("everybody hangs up, caller first", N): (E, ["CallEnded:abandoned"]),
    ("everybody hangs up, caller first", R): (E, ["CallEnded:abandoned"]),
    ("everybody hangs up, caller first", A): (E, ["CallEnded:answered"]),
    ("everybody hangs up, caller first", T): (E, ["CallEnded:answered"]),
}


@pytest.mark.parametrize(("event", "prior"), list(MATRIX), ids=[f"{e} / {s}" for e, s in MATRIX])
def test_event_in_state(event: str, prior: CallState) -> None:
    t, p = at_state(prior)
    facts = t.feed_all(EVENTS[event](p))
    after, expected = MATRIX[(event, prior)]
    names = [type(f).__name__ + (f":{f.status}" if isinstance(f, CallEnded) else "") for f in facts]
    assert names == expected
    assert (t.call_state(LID) or CallState.ENDED) is after
    assert after in TRANSITIONS[prior] or after is prior


def test_matrix_covers_every_event_and_live_state() -> None:
    assert set(MATRIX) == {(e, s) for e in EVENTS for s in (N, R, A, T)}


@pytest.mark.parametrize("event", list(EVENTS))
def test_event_after_the_call_ended_is_ignored(event: str) -> None:
    t, p = at_state(CallState.RINGING)
    t.feed_all(EVENTS["everybody hangs up, caller first"](p))
    assert t.call_state(LID) is None
    assert t.feed_all(EVENTS[event](p)) == []
    assert t.active_calls == 0


def test_ended_is_final() -> None:
    assert TRANSITIONS[CallState.ENDED] == frozenset()


def test_talk_after_transfer_counts_each_agent() -> None:
    t, p = at_state(CallState.TRANSFERRING)
    facts = t.feed_all([p.dialbegin(TRUNK, A102), p.dialend(TRUNK, A102, "ANSWER", dt=2),
                        p.request(TRUNK, dt=5), p.hangup(TRUNK), p.hangup(A102)])
    end = only(facts, CallEnded)
    assert [(leg.extension, round(leg.talk_seconds)) for leg in end.legs] == [("101", 3), ("102", 5)]
    assert round(end.talk_seconds) == 8 and end.agent == "102"


# ---------------------------------------------------------------- other call shapes
def test_outbound_call_from_a_phone() -> None:
    t, p = tracker(), Pbx()
    agent = ("PJSIP/101-00000010", "200.1")
    trunk = ("PJSIP/trunk-00000011", "200.2")
    facts = t.feed_all([
        p.newchannel(*agent, "200.1", "101", "89161234567"),
        p.ev("Newexten", Channel=agent[0], Uniqueid=agent[1], Application="Dial",
             AppData="PJSIP/+79161234567@trunk,30"),
        p.newchannel(*trunk, "200.1", ""),
        p.ev("NewCallerid", Channel=trunk[0], Uniqueid=trunk[1], CallerIDNum=CALLER),
        p.dialbegin(agent, trunk, CALLER),
        p.up(trunk),
        p.dialend(agent, trunk, "ANSWER", dt=4),
        p.request(agent, dt=10), p.hangup(agent), p.hangup(trunk),
    ])
    started = only(facts, CallStarted)
    assert (started.direction, started.external_number) == ("outbound", CALLER)
    assert started.caller_extension == "101"
    assert of(facts, AgentRinging) == []
    end = only(facts, CallEnded)
    assert (end.status, end.agent, end.external_number) == ("answered", "101", CALLER)
    assert round(end.talk_seconds) == 10 and round(end.wait_seconds) == 4
    assert end.hangup_by == "agent"


@pytest.mark.parametrize(("status", "expected"), [("BUSY", "busy"), ("NOANSWER", "missed"),
                                                  ("CONGESTION", "failed")])
def test_outbound_not_answered(status: str, expected: str) -> None:
    t, p = tracker(), Pbx()
    agent = ("PJSIP/102-00000010", "201.1")
    trunk = ("PJSIP/trunk-00000011", "201.2")
    facts = t.feed_all([
        p.newchannel(*agent, "201.1", "102", CALLER),
        p.newchannel(*trunk, "201.1", CALLER),
        p.dialbegin(agent, trunk, CALLER),
        p.dialend(agent, trunk, status, dt=3),
        p.hangup(trunk), p.hangup(agent),
    ])
    end = only(facts, CallEnded)
    assert (end.direction, end.status, end.agent, end.missed) == ("outbound", expected, "102", False)


def test_failed_originate_without_a_channel() -> None:
    t, p = tracker(), Pbx()
    t.originate_requested("c2c-9", "101", CALLER)
    facts = t.feed(p.ev("OriginateResponse", ActionID="c2c-9", Response="Failure", Channel="PJSIP/101",
                        Uniqueid="<unknown>", Reason="0", Exten=CALLER))
    end = only(facts, CallEnded)
    assert (end.call_id, end.direction) == ("originate:c2c-9", "outbound")
    assert (end.status, end.agent) == ("failed", "101")
    assert end.external_number == CALLER


def test_failed_originate_whose_agent_never_answers_is_not_inbound() -> None:
    t, p = tracker(), Pbx()
    t.originate_requested("c2c-10", "101", CALLER)
    leg = ("PJSIP/101-00000020", "300.1")
    facts = t.feed_all([
        p.newchannel(*leg, "300.1", "101"),
        p.dialbegin(None, leg),  # an Originate: no calling channel
        p.hangup(leg, "0", dt=30),
        p.ev("OriginateResponse", ActionID="c2c-10", Response="Failure", Channel="PJSIP/101",
             Uniqueid="<unknown>", Reason="0", Exten=CALLER),
    ])
    ends = of(facts, CallEnded)
    assert len(ends) == 1
    assert (ends[0].direction, ends[0].status, ends[0].external_number) == ("outbound", "failed", CALLER)
    assert ends[0].originate_action_id == "c2c-10"


def test_failed_originate_unannounced_still_ends_once() -> None:
    t, p = tracker(), Pbx()
    leg = ("PJSIP/101-00000021", "301.1")
    facts = t.feed_all([p.newchannel(*leg, "301.1", "101"), p.dialbegin(None, leg), p.hangup(leg, "0")])
    assert [type(f) for f in facts] == [CallStarted, CallEnded]
    assert facts[1].direction == "outbound" and facts[1].status == "failed"


def test_queue_with_local_channel_members() -> None:
    t, p = tracker(), Pbx()
    trunk = ("PJSIP/trunk-00000030", "400.1")
    l1 = ("Local/101@agents-00000001;1", "400.2")
    l2 = ("Local/101@agents-00000001;2", "400.3")
    phone = ("PJSIP/101-00000031", "400.4")
    facts = t.feed_all([
        p.newchannel(*trunk, "400.1", CALLER, "74951234568"),
        p.ev("QueueCallerJoin", Channel=trunk[0], Uniqueid=trunk[1], Queue="sales"),
        p.newchannel(*l1, "400.1"), p.newchannel(*l2, "400.1"),
        p.dialbegin(trunk, l1, event="AgentCalled", Queue="sales", Interface="Local/101@agents"),
        p.dialbegin(trunk, l1),
        p.newchannel(*phone, "400.1", "101"),
        p.dialbegin(l2, phone),
        p.up(phone),
        p.dialend(l2, phone, "ANSWER", dt=2),
        p.dialend(trunk, l1, "ANSWER"),
        p.request(trunk, dt=6), p.hangup(trunk), p.hangup(l1), p.hangup(l2), p.hangup(phone),
    ])
    assert [(r.extension, r.queue) for r in of(facts, AgentRinging)] == [("101", "sales")]
    assert [a.extension for a in of(facts, CallAnswered)] == ["101"]
    end = only(facts, CallEnded)
    assert (end.status, end.agent, end.queue, end.direction) == ("answered", "101", "sales", "inbound")
    assert round(end.talk_seconds) == 6


def test_click_to_call_through_a_local_channel_pair() -> None:
    t, p = tracker(), Pbx()
    l1 = ("Local/101@from-internal-00000005;1", "900.1")
    l2 = ("Local/101@from-internal-00000005;2", "900.2")
    phone, trunk = ("PJSIP/101-00000050", "900.3"), ("PJSIP/trunk-00000051", "900.4")
    facts = t.feed_all([
        p.newchannel(*l1, "900.1"), p.newchannel(*l2, "900.1"),
        p.dialbegin(None, l1),
        p.newchannel(*phone, "900.1", "101"),
        p.dialbegin(l2, phone), p.up(phone), p.dialend(l2, phone, "ANSWER", dt=2),
        p.dialend(None, l1, "ANSWER"),
        p.ev("Newexten", Channel=l1[0], Uniqueid=l1[1], Application="Dial",
             AppData="PJSIP/+79161234567@trunk,30"),
        p.newchannel(*trunk, "900.1"),
        p.dialbegin(l1, trunk, CALLER), p.up(trunk), p.dialend(l1, trunk, "ANSWER", dt=3),
        p.request(trunk, dt=8), p.hangup(trunk), p.hangup(l1), p.hangup(l2), p.hangup(phone),
    ])
    assert [type(f).__name__ for f in facts] == ["CallStarted", "CallAnswered", "CallEnded"]
    end = facts[-1]
    assert (end.direction, end.status) == ("outbound", "answered")
    assert (end.agent, end.external_number) == ("101", CALLER)
    assert round(end.talk_seconds) == 8 and end.hangup_by == "external"


def test_attended_transfer_moves_the_target_leg_into_the_call() -> None:
    t, p = tracker(), Pbx()
    trunk, a101 = ("PJSIP/trunk-00000040", "500.1"), ("PJSIP/101-00000041", "500.2")
    b101, b102 = ("PJSIP/101-00000042", "501.1"), ("PJSIP/102-00000043", "501.2")
    facts = t.feed_all([
        p.newchannel(*trunk, "500.1", CALLER, "74951234567"),
        p.newchannel(*a101, "500.1", "101"),
        p.dialbegin(trunk, a101), p.up(a101), p.dialend(trunk, a101, "ANSWER", dt=2),
        # 101 puts the caller on hold and consults 102
        p.newchannel(*b101, "501.1", "101", "102"),
        p.newchannel(*b102, "501.1", "102"),
        p.dialbegin(b101, b102), p.up(b102), p.dialend(b101, b102, "ANSWER", dt=2),
        p.ev("AttendedTransfer", dt=3, Result="Success", OrigTransfererChannel=a101[0],
             OrigTransfererUniqueid=a101[1], SecondTransfererChannel=b101[0],
             SecondTransfererUniqueid=b101[1],
             TransfereeChannel=trunk[0], TransfereeUniqueid=trunk[1], TransferTargetChannel=b102[0],
             TransferTargetUniqueid=b102[1], DestType="Bridge"),
        p.hangup(a101), p.hangup(b101),
        p.request(trunk, dt=10), p.hangup(trunk), p.hangup(b102),
    ])
    transfer = only(facts, CallTransferred)
    assert (transfer.call_id, transfer.kind, transfer.from_extension, transfer.to_extension) == (
        "500.1", "attended", "101", "102")
    ends = {e.call_id: e for e in of(facts, CallEnded)}
    assert ends["501.1"].direction == "internal"  # the consultation
    main = ends["500.1"]
    assert main.status == "answered" and main.agent == "102"
    assert [(leg.extension, round(leg.talk_seconds)) for leg in main.legs] == [("101", 5), ("102", 10)]
    assert t.active_calls == 0


def test_unknown_endpoint_counts_as_external_by_default() -> None:
    t, p = Tracker(trunks=[], extensions=["101"]), Pbx()
    carrier = ("PJSIP/mts-sip-0000000a", "600.1")
    facts = t.feed_all([p.newchannel(*carrier, "600.1", CALLER, "74951234567")])
    assert only(facts, CallStarted).direction == "inbound"


def test_without_extensions_every_non_trunk_endpoint_is_an_agent() -> None:
    t, p = Tracker(trunks=["trunk"], extensions=None), Pbx()
    a, b = ("PJSIP/alice-0000000a", "601.1"), ("PJSIP/bob-0000000b", "601.2")
    facts = t.feed_all([p.newchannel(*a, "601.1", "alice"), p.newchannel(*b, "601.1"), p.dialbegin(a, b)])
    assert only(facts, CallStarted).direction == "internal"
    assert only(facts, AgentRinging).extension == "bob"


def test_by_default_an_unknown_endpoint_is_external() -> None:
    t, p = Tracker(), Pbx()  # no extensions known yet
    a = ("PJSIP/101-0000000a", "603.1")
    facts = t.feed_all([p.newchannel(*a, "603.1", CALLER, "74951234567")])
    assert only(facts, CallStarted).direction == "inbound"


def test_a_message_with_a_malformed_event_header_is_ignored() -> None:
    t = tracker()
    assert t.feed({"Event": ["Hangup", "Hangup"], "Uniqueid": "1"}) == []
    assert t.feed({"Event": None}) == []


def test_a_phone_picked_up_and_put_down_is_no_call() -> None:
    t, p = tracker(), Pbx()
    leg = ("PJSIP/101-0000000c", "602.1")
    assert t.feed_all([p.newchannel(*leg, "602.1", "101"), p.hangup(leg)]) == []
    assert t.active_calls == 0


# ---------------------------------------------------------------- resync after a reconnect
def show(chan: tuple[str, str], lid: str, state: str, duration: str, num: str = "", bridge: str = "") -> dict:
    return {"Event": "CoreShowChannel", "Channel": chan[0], "Uniqueid": chan[1], "Linkedid": lid,
            "ChannelStateDesc": state, "Duration": duration, "CallerIDNum": num, "BridgeId": bridge,
            "Exten": "101", "Context": "dial-agent"}


def test_resync_ends_a_call_that_vanished_while_ringing() -> None:
    t, _ = at_state(CallState.RINGING)
    now = 1_800_000_100.0
    facts = t.resync([], now=now)
    end = only(facts, CallEnded)
    assert end.resynced and end.status == "missed" and end.ended_at == now and end.agent == "101"
    assert t.active_calls == 0


def test_resync_ends_an_answered_call_as_answered() -> None:
    t, _ = at_state(CallState.ANSWERED)
    end = only(t.resync([], now=1_800_000_100.0), CallEnded)
    assert end.status == "answered" and end.agent == "101" and end.talk_seconds > 90


def test_resync_ends_the_calls_gone_when_the_connection_was_lost_not_at_the_reconnect() -> None:
    """Asterisk crashed 3.8 s into the talk; the hub logged in again 55 s later: 3.8 s of talk."""
    t, p = at_state(CallState.ANSWERED)
    answered = only(t.resync([], now=p.t + 1000), CallEnded).legs[0].answered_at  # (a twin's answer)
    t, p = at_state(CallState.ANSWERED)
    end = only(t.resync([], now=answered + 55.0, gone_at=answered + 3.8), CallEnded)
    assert end.status == "answered" and end.ended_at == answered + 3.8
    assert round(end.talk_seconds, 1) == 3.8 and round(end.legs[0].talk_seconds, 1) == 3.8


def test_resync_never_ends_a_call_before_its_answer_or_after_now() -> None:
    t, p = at_state(CallState.ANSWERED)
    early = only(t.resync([], now=p.t + 9, gone_at=p.t - 3600), CallEnded)
    assert early.ended_at >= early.legs[0].answered_at and early.talk_seconds >= 0
    t, p = at_state(CallState.ANSWERED)
    assert only(t.resync([], now=p.t + 9, gone_at=p.t + 60), CallEnded).ended_at == p.t + 9


def test_resync_keeps_a_call_still_present() -> None:
    t, _ = at_state(CallState.ANSWERED)
    listed = [show(TRUNK, LID, "Up", "00:00:05", CALLER, "b1"),
              show(A101, LID, "Up", "00:00:04", "101", "b1"),
              show(A102, LID, "Down", "00:00:05", "102")]
    assert t.resync(listed, now=1_800_000_010.0) == []
    assert t.call_state(LID) is CallState.ANSWERED


def test_resync_closes_the_legs_that_are_gone_only() -> None:
    t, _ = at_state(CallState.ANSWERED)
    listed = [show(TRUNK, LID, "Up", "00:00:05", CALLER, "b1"),
              show(A101, LID, "Up", "00:00:04", "101", "b1")]
    assert t.resync(listed, now=1_800_000_010.0) == []  # 102's idle leg went away
    assert t.call_state(LID) is CallState.ANSWERED


def test_resync_starts_calls_that_began_during_the_outage() -> None:
    t = tracker()
    now = 1_800_000_500.0
    trunk, agent = ("PJSIP/trunk-000000a0", "700.1"), ("PJSIP/101-000000a1", "700.2")
    trunk2, ringing = ("PJSIP/trunk-000000a2", "701.1"), ("PJSIP/102-000000a3", "701.2")
    facts = t.resync([
        show(agent, "700.1", "Up", "00:00:40", "101", "br-1"),
        show(trunk, "700.1", "Up", "00:00:42", CALLER, "br-1"),
        show(trunk2, "701.1", "Ring", "00:00:03", "+79160000001"),
        show(ringing, "701.1", "Ringing", "00:00:03", "102"),
    ], now=now)
    talking = [f for f in facts if f.call_id == "700.1"]
    assert [type(f) for f in talking] == [CallStarted, AgentRinging, CallAnswered]
    assert talking[0].direction == "inbound" and talking[0].external_number == CALLER
    assert talking[0].started_at == now - 42
    assert talking[2].extension == "101"
    waiting = [f for f in facts if f.call_id == "701.1"]
    assert [type(f) for f in waiting] == [CallStarted, AgentRinging]
    assert waiting[1].extension == "102"
    # and they end normally afterwards
    p = Pbx()
    p.t = now
    ends = of(t.feed_all([p.request(trunk, dt=5), p.hangup(trunk), p.hangup(agent)]), CallEnded)
    assert ends[0].status == "answered" and ends[0].talk_seconds >= 5
    assert t.active_calls == 1


def test_resync_is_idempotent() -> None:
    t = tracker()
    listed = [show(("PJSIP/trunk-000000b0", "800.1"), "800.1", "Ring", "00:00:02", CALLER)]
    assert len(t.resync(listed, now=1_800_000_000.0)) == 1
    assert t.resync(listed, now=1_800_000_001.0) == []


RECORDING = "inbound-20261123-164016-79161234567-101-900.2.wav"


def status(chan: tuple[str, str], lid: str, seconds: int, dnid: str = "", **variables: str) -> dict:
    """Asterisk 22's Status event (the fields the tracker reads), ``Variable`` lines as panoramisk
    gives them: one string, or a list when the header repeats."""
    lines = [f"{name}={value}" for name, value in variables.items()]
    return {"Event": "Status", "Channel": chan[0], "Uniqueid": chan[1], "Linkedid": lid, "DNID": dnid,
            "Exten": "101", "Context": "dial-agent", "Seconds": str(seconds),
            **({"Variable": lines[0] if len(lines) == 1 else lines} if lines else {})}


def test_resync_with_status_keeps_the_did_the_recording_and_the_wait() -> None:
    """42 s ago a call came in on DID 74951234567; 101 rang from 40 s ago and answered 30 s ago, and
    records: the call picked up keeps all three (the listing alone has none of them)."""
    t = tracker()
    now = 1_800_000_900.0
    trunk, agent = ("PJSIP/trunk-000000c0", "900.1"), ("PJSIP/101-000000c1", "900.2")
    listed = [show(trunk, "900.1", "Up", "00:00:42", CALLER, "br-9"),
              show(agent, "900.1", "Up", "00:00:40", "101", "br-9")]
    statuses = [
        status(trunk, "900.1", 42, "74951234567", MIXMONITOR_FILENAME="", **{"CDR(billsec)": "30"}),
        status(agent, "900.1", 40, MIXMONITOR_FILENAME=f"/var/spool/asterisk/monitor/{RECORDING}",
               **{"CDR(billsec)": "30"}),
    ]
    facts = t.resync(listed, now=now, statuses=statuses)
    started, answered = only(facts, CallStarted), only(facts, CallAnswered)
    assert started.did == "74951234567" and started.started_at == now - 42
    assert answered.at == now - 30 and answered.wait_seconds == 12.0 and answered.did == "74951234567"
    p = Pbx()
    p.t = now
    end = only(t.feed_all([p.request(trunk, dt=5), p.hangup(trunk), p.hangup(agent)]), CallEnded)
    assert (end.status, end.did, end.recording, end.recordings) == (
        "answered", "74951234567", RECORDING, (RECORDING,))
    assert end.started_at == now - 42 and end.answered_at == now - 30 and end.wait_seconds == 12.0
    assert end.legs[0].recording == RECORDING and end.talk_seconds >= 35


def test_resync_without_the_cdr_waits_until_the_agent_leg_rang() -> None:
    """No CDR(billsec) (CDRs off): the answer is taken at the agent leg's creation (a lower bound of
    the wait); one Variable line comes as a string."""
    t = tracker()
    now = 1_800_001_000.0
    trunk, agent = ("PJSIP/trunk-000000d0", "910.1"), ("PJSIP/101-000000d1", "910.2")
    listed = [show(trunk, "910.1", "Up", "00:00:25", CALLER, "br-10"),
              show(agent, "910.1", "Up", "00:00:20", "101", "br-10")]
    statuses = [status(trunk, "910.1", 26, "74951234569", **{"CDR(billsec)": ""}),
                status(agent, "910.1", 21)]
    facts = t.resync(listed, now=now, statuses=statuses)
    assert only(facts, CallStarted).started_at == now - 26  # Status' Seconds before Duration
    answered = only(facts, CallAnswered)
    assert answered.at == now - 21 and answered.wait_seconds == 5.0 and answered.did == "74951234569"


def test_resync_takes_no_did_from_the_channels_current_extension() -> None:
    """Without Status the DID is unknown: ``Exten`` is wherever the dialplan went (101), no DID."""
    t = tracker()
    listed = [show(("PJSIP/trunk-000000e0", "920.1"), "920.1", "Ring", "00:00:02", CALLER)]
    assert only(t.resync(listed, now=1_800_000_000.0), CallStarted).did is None
    t = tracker()
    started = only(t.resync(listed, now=1_800_000_000.0,
                            statuses=[status(("PJSIP/trunk-000000e0", "920.1"), "920.1", 2, "74951234570")]),
                   CallStarted)
    assert started.did == "74951234570"


# ---------------------------------------------------------------- bad input
def test_parser_skips_a_bad_frame_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    data = (b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: 1\r\n\r\n"
            b"this is no header\r\nEvent: Foo\r\n\r\n"
            b"Event: Hangup\r\nUniqueid: 1.1\r\nCallerIDName: \xd0\x9c\xd0\xb0\r\n\r\n")
    parser = AmiParser()
    with caplog.at_level(logging.WARNING, logger="hub.telephony.ami_parse"):
        messages = parser.feed(data)
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert messages == [{"Response": "Success", "ActionID": "1"},
                        {"Event": "Hangup", "Uniqueid": "1.1", "CallerIDName": "Ма"}]
    assert parser.bad_frames == 1 and len(caplog.records) == 1


def test_parser_survives_invalid_utf8_and_garbage_without_terminator() -> None:
    parser = AmiParser()
    got = parser.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: X\r\nName: \xff\xfe\r\n\r\n")
    assert got == [{"Event": "X", "Name": "\ufffd\ufffd"}]
    assert parser.feed(b"x" * (300 * 1024)) == []
    assert parser.bad_frames == 1
    assert parser.feed(b"\r\n\r\nEvent: Y\r\n\r\n") == [{"Event": "Y"}]


def test_parser_repeated_headers_become_a_list() -> None:
    _, messages = parse_bytes(
        b"Event: N\r\nChanVariable: A=1\r\nChanVariable: B=2\r\nChanVariable: C=3\r\n\r\n")
    assert messages == [{"Event": "N", "ChanVariable": ["A=1", "B=2", "C=3"]}]


def test_tracker_skips_malformed_messages_and_keeps_tracking(caplog: pytest.LogCaptureFixture) -> None:
    t, p = tracker(), Pbx()
    with caplog.at_level(logging.WARNING, logger="hub.telephony.tracker"):
        assert t.feed({"Event": "Newchannel", "Channel": "PJSIP/trunk-1"}) == []  # no Uniqueid
    assert t.skipped == 1 and len(caplog.records) == 1
    assert t.feed({"Event": "Hangup", "Uniqueid": "nobody"}) == []  # unknown channel
    assert t.feed({"Event": "DialBegin", "DestUniqueid": "nobody"}) == []
    assert t.feed({"Event": "SomethingNew", "Uniqueid": "x"}) == []
    assert t.feed({"Response": "Success", "ActionID": "x"}) == []
    facts = t.feed_all([
        {**p.newchannel(*TRUNK, LID, CALLER, "74951234567"), "Timestamp": "garbage"},
        p.newchannel(*A101, LID, "101"),
        p.dialbegin(TRUNK, A101),
        {**p.hangup(A101), "Cause": "not-a-number"},
        p.hangup(TRUNK, "19"),
    ])
    end = only(facts, CallEnded)
    assert end.status == "missed" and end.started_at is None and end.hangup_cause == 19


@pytest.mark.parametrize("named", [True, False])
def test_with_the_trunks_named_a_phone_that_is_no_users_answers_the_call(named: bool) -> None:
    """101 is a PBX endpoint nobody made a user for. With ``trunks`` named in the config it is a
    phone like any other, so the call it answers is answered; without, an endpoint that is no
    user's counts as external (the documented default), and the caller is left unanswered."""
    t = Tracker(trunks=["trunk"], extensions={"102", "103"}, only_named_trunks=named)
    facts = t.feed_all(iter_jsonl(FIXTURES / "inbound_answered.jsonl"))
    end = only(facts, CallEnded)
    if named:
        assert end.status == "answered" and end.agent == "101" and end.direction == "inbound"
        assert [type(f).__name__ for f in facts if isinstance(f, AgentRinging | CallAnswered)] == [
            "AgentRinging", "CallAnswered"]
    else:
        assert end.status != "answered"


@pytest.mark.parametrize(("num", "name", "number", "caller_name", "hidden"), [
    (CALLER, "Иванов Пётр", CALLER, "Иванов Пётр", False),  # the PBX's display name, UTF-8
    (CALLER, CALLER, CALLER, None, False),  # the name is the number again: no name
    (CALLER, "<unknown>", CALLER, None, False),
    ("anonymous", "Anonymous", None, None, True),  # a withheld number
    ("restricted", "", None, None, True),
])
def test_the_callers_display_name_and_a_withheld_number_reach_the_facts(
        num: str, name: str, number: str | None, caller_name: str | None, hidden: bool) -> None:
    t, p = tracker(), Pbx()
    trunk = p.newchannel(*TRUNK, LID, num, "74951234567")
    trunk["CallerIDName"] = name
    facts = t.feed_all([trunk, p.newchannel(*A101, LID, "101"), p.dialbegin(TRUNK, A101),
                        p.hangup(A101), p.hangup(TRUNK)])
    ring, end = only(facts, AgentRinging), only(facts, CallEnded)
    for fact in (ring, end):
        assert (fact.external_number, fact.caller_name, fact.hidden_number) == (number, caller_name, hidden)


def queue_timeout_trace() -> list[dict]:
    """queue_abandoned as a queue timeout makes it: the caller never hangs up (no HangupRequest);
    Asterisk still sends QueueCallerAbandon, then the dialplan hangs the caller up with cause 19."""
    out = []
    for message in iter_jsonl(FIXTURES / "queue_abandoned.jsonl"):
        if message.get("Event") == "HangupRequest":
            continue
        if message.get("Event") in ("SoftHangupRequest", "Hangup") and "trunk" in message.get("Channel", ""):
            message = {**message, "Cause": "19", "Cause-txt": "No answer"}
        out.append(message)
    return out


def test_a_queue_timeout_is_missed_and_a_caller_who_hangs_up_in_the_queue_abandons() -> None:
    timeout = only(tracker().feed_all(queue_timeout_trace()), CallEnded)
    assert timeout.status == "missed" and timeout.hangup_cause == 19 and timeout.direction == "inbound"
    gave_up = only(tracker().feed_all(iter_jsonl(FIXTURES / "queue_abandoned.jsonl")), CallEnded)
    assert gave_up.status == "abandoned"
