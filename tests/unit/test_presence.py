"""Presence: the pure tracker of the phones' states (per event kind × prior state, on the captured
traces, listing and loss) and the core's board (a user's busiest phone, presence.changed)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.crm.presence import PresenceBoard, busiest
from hub.telephony.ami_parse import iter_jsonl
from hub.telephony.presence import PresenceTracker, hint_state, phone_extension
from tests.paths import AMI_FIXTURES


def dsc(device: str, state: str) -> dict[str, Any]:
    return {"Event": "DeviceStateChange", "Device": device, "State": state}


# the prior state of extension 101, made by these events
PRIOR: dict[str, list[dict[str, Any]]] = {
    "nothing": [],
    "free": [dsc("PJSIP/101", "NOT_INUSE")],
    "ringing": [dsc("PJSIP/101", "RINGING")],
    "on_call": [dsc("PJSIP/101", "INUSE")],
    "unavailable": [dsc("PJSIP/101", "UNAVAILABLE")],
    "dnd": [dsc("PJSIP/101", "NOT_INUSE"), dsc("Custom:DND101", "BUSY")],
}
PRIOR_STATE = {"nothing": "unavailable", "free": "free", "ringing": "ringing", "on_call": "on_call",
               "unavailable": "unavailable", "dnd": "dnd"}

# event → the state it leaves for each prior state (the busiest reading wins; DND yields to a call)
CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("NOT_INUSE", dsc("PJSIP/101", "NOT_INUSE"),
     {**dict.fromkeys(PRIOR, "free"), "dnd": "dnd"}),
    ("INUSE", dsc("PJSIP/101", "INUSE"), dict.fromkeys(PRIOR, "on_call")),
    ("BUSY", dsc("PJSIP/101", "BUSY"), dict.fromkeys(PRIOR, "on_call")),
    ("ONHOLD", dsc("PJSIP/101", "ONHOLD"), dict.fromkeys(PRIOR, "on_call")),
    ("RINGINUSE", dsc("PJSIP/101", "RINGINUSE"), dict.fromkeys(PRIOR, "on_call")),
    ("RINGING", dsc("PJSIP/101", "RINGING"), dict.fromkeys(PRIOR, "ringing")),
    ("UNAVAILABLE", dsc("PJSIP/101", "UNAVAILABLE"),
     {**dict.fromkeys(PRIOR, "unavailable"), "dnd": "dnd"}),
    ("INVALID", dsc("PJSIP/101", "INVALID"), {**dict.fromkeys(PRIOR, "unavailable"), "dnd": "dnd"}),
    ("UNKNOWN", dsc("PJSIP/101", "UNKNOWN"), {**dict.fromkeys(PRIOR, "unavailable"), "dnd": "dnd"}),
    ("DND on", dsc("Custom:DND101", "INUSE"),
     {"nothing": "dnd", "free": "dnd", "ringing": "ringing", "on_call": "on_call", "unavailable": "dnd",
      "dnd": "dnd"}),
    ("DND off", dsc("Custom:DND101", "NOT_INUSE"), {**PRIOR_STATE, "dnd": "free"}),
    ("presence dnd", {"Event": "PresenceStateChange", "Presentity": "CustomPresence:101", "Status": "dnd"},
     {"nothing": "dnd", "free": "dnd", "ringing": "ringing", "on_call": "on_call", "unavailable": "dnd",
      "dnd": "dnd"}),
    ("presence available", {"Event": "PresenceStateChange", "Presentity": "CustomPresence:101",
                            "Status": "available"}, {**PRIOR_STATE, "dnd": "free"}),
    ("contact removed", {"Event": "ContactStatus", "URI": "sip:101@127.0.0.1:5101",
                         "ContactStatus": "Removed", "AOR": "101", "EndpointName": "101"},
     {"nothing": "unavailable", "free": "unavailable", "ringing": "ringing", "on_call": "on_call",
      "unavailable": "unavailable", "dnd": "dnd"}),
    ("contact reachable", {"Event": "ContactStatus", "URI": "sip:101@127.0.0.1:5101",
                           "ContactStatus": "Reachable", "AOR": "101", "EndpointName": "101"},
     {**PRIOR_STATE, "nothing": "free"}),
    ("peer unregistered", {"Event": "PeerStatus", "Peer": "PJSIP/101", "PeerStatus": "Unregistered"},
     {"nothing": "unavailable", "free": "unavailable", "ringing": "ringing", "on_call": "on_call",
      "unavailable": "unavailable", "dnd": "dnd"}),
    ("hint idle", {"Event": "ExtensionStatus", "Exten": "101", "Context": "ext-local", "Status": "0",
                   "StatusText": "Idle"}, {**PRIOR_STATE, "nothing": "free"}),
    ("hint ringing", {"Event": "ExtensionStatus", "Exten": "101", "Status": "8", "StatusText": "Ringing"},
     {**PRIOR_STATE, "nothing": "ringing"}),
    ("hint in use", {"Event": "ExtensionStatus", "Exten": "101", "Status": "1", "StatusText": "InUse"},
     {**PRIOR_STATE, "nothing": "on_call"}),
]


@pytest.mark.parametrize("prior", list(PRIOR))
@pytest.mark.parametrize(("name", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_event_after_each_prior_state(name: str, event: dict[str, Any], expected: dict[str, str],
                                           prior: str) -> None:
    tracker = PresenceTracker()
    tracker.feed_all(PRIOR[prior])
    assert tracker.state("101") == PRIOR_STATE[prior]
    changes = tracker.feed(event)
    assert tracker.state("101") == expected[prior]
    # a change is answered exactly when the state changed
    assert changes == ({"101": expected[prior]} if expected[prior] != PRIOR_STATE[prior] else {})


def test_other_events_and_channels_change_nothing() -> None:
    tracker = PresenceTracker()
    assert tracker.feed({"Event": "Newchannel", "Channel": "PJSIP/101-00000001"}) == {}
    assert tracker.feed(dsc("PJSIP/101-00000001", "INUSE")) == {}  # a channel, not a device
    assert tracker.feed(dsc("Queue:sales", "INUSE")) == {}
    assert tracker.feed(dsc("PJSIP/101", "SOMETHING_NEW")) == {}
    assert tracker.known() == set()
    assert phone_extension("SIP/102") == "102" and phone_extension("Local/101@x") is None
    assert hint_state("9", "InUse&Ringing") == "on_call" and hint_state("-1", "") == "unavailable"
    assert hint_state("4", "Unavailable") == "unavailable" and hint_state("x", None) is None
    assert hint_state("2", "DND") == "dnd"


def test_a_second_contact_keeps_the_phone_registered() -> None:
    tracker = PresenceTracker()
    for uri in ("sip:101@a", "sip:101@b"):
        tracker.feed({"Event": "ContactStatus", "URI": uri, "ContactStatus": "Created",
                      "EndpointName": "101"})
    tracker.feed({"Event": "ContactStatus", "URI": "sip:101@a", "ContactStatus": "Removed",
                  "EndpointName": "101"})
    assert tracker.state("101") == "free"
    tracker.feed({"Event": "ContactStatus", "URI": "sip:101@b", "ContactStatus": "Unreachable",
                  "EndpointName": "101"})
    assert tracker.state("101") == "unavailable"


def states_over(trace: str) -> dict[str, list[str]]:
    """Each agent's states, in order, as the trace goes."""
    tracker = PresenceTracker()
    seen: dict[str, list[str]] = {}
    for message in iter_jsonl(AMI_FIXTURES / f"{trace}.jsonl"):
        for extension, state in tracker.feed(message).items():
            seen.setdefault(extension, []).append(state)
    return {e: s for e, s in seen.items() if e != "trunk"}


@pytest.mark.parametrize(("trace", "expected"), [
    ("inbound_answered", {"101": ["ringing", "on_call", "free"]}),
    ("inbound_missed", {"101": ["ringing", "free"]}),
    ("inbound_abandoned", {"101": ["ringing", "free"]}),
    ("queue_answered", {"101": ["ringing", "free"], "102": ["ringing", "on_call", "free"]}),
    ("queue_abandoned", {"101": ["ringing", "free"]}),
    ("click_to_call", {"101": ["ringing", "on_call", "free"]}),
    ("blind_transfer", {"101": ["ringing", "on_call", "free"], "102": ["ringing", "on_call", "free"]}),
    ("internal_call", {"101": ["on_call", "free"], "102": ["ringing", "on_call", "free"]}),
    ("agent_busy", {}),  # the trace has no device state at all
    ("agent_unavailable", {}),
])
def test_the_captured_traces(trace: str, expected: dict[str, list[str]]) -> None:
    assert states_over(trace) == expected


def test_a_listing_replaces_everything_and_answers_the_whole_picture() -> None:
    tracker = PresenceTracker()
    tracker.feed_all([dsc("PJSIP/101", "INUSE"), dsc("PJSIP/102", "NOT_INUSE"), dsc("Custom:DND103", "BUSY")])
    tracker.begin_listing()
    # the listed items and live events during the listing answer nothing yet
    assert tracker.feed(dsc("PJSIP/101", "NOT_INUSE")) == {}
    assert tracker.feed(dsc("PJSIP/104", "RINGING")) == {}
    assert tracker.end_listing() == {"101": "free", "104": "ringing"}
    assert tracker.state("102") == "unavailable" and tracker.state("103") == "unavailable"
    assert tracker.feed(dsc("PJSIP/104", "INUSE")) == {"104": "on_call"}


def test_a_lost_connection_makes_every_phone_unavailable_once() -> None:
    tracker = PresenceTracker()
    tracker.feed_all([dsc("PJSIP/101", "INUSE"), dsc("PJSIP/102", "UNAVAILABLE")])
    assert tracker.lost() == {"101": "unavailable"}
    assert tracker.lost() == {}
    assert tracker.feed(dsc("PJSIP/101", "NOT_INUSE")) == {"101": "free"}


# ------------------------------------------------------------------ the core's board
class Published(list[tuple[str, dict[str, Any], dict[str, Any]]]):
    def __call__(self, name: str, data: dict[str, Any], *, users: Any = (),
                 scope: dict[str, Any] | None = None) -> None:
        self.append((name, data, scope or {}))


def test_busiest_state_wins() -> None:
    assert busiest({}) == (None, "unavailable")
    assert busiest({"101": "free", "201": "on_call"}) == ("201", "on_call")
    assert busiest({"101": "dnd", "201": "free"}) == ("101", "dnd")
    assert busiest({"101": "ringing", "201": "dnd"}) == ("101", "ringing")
    assert busiest({"101": "unavailable", "201": "free"}) == ("201", "free")
    assert busiest({"201": "free", "101": "free"}) == ("101", "free")


def test_the_board_publishes_each_users_change_to_everyone() -> None:
    published = Published()
    board = PresenceBoard(published)
    board.set_owners({"101": 1, "201": 1, "102": 2})
    assert published == []  # everybody starts unavailable
    board.phones_changed({"101": "free", "102": "free"})
    assert [(d["user_id"], d["extension"], d["state"]) for _, d, _ in published] == [
        (1, "101", "free"), (2, "102", "free")]
    assert all(name == "presence.changed" and scope == {"everyone": True} for name, _, scope in published)
    published.clear()
    board.phones_changed({"201": "ringing"})
    board.phones_changed({"201": "on_call"})
    board.phones_changed({"101": "on_call"})  # user 1 is on a call already: nothing new
    board.phones_changed({"999": "on_call"})  # nobody's phone
    assert [(d["user_id"], d["extension"], d["state"]) for _, d, _ in published] == [
        (1, "201", "ringing"), (1, "201", "on_call")]
    published.clear()
    board.phones_changed({"101": "free"}, complete=True)  # 102 and 201 were not listed
    assert [(d["user_id"], d["state"]) for _, d, _ in published] == [(1, "free"), (2, "unavailable")]
    published.clear()
    board.set_owners({"101": 1})  # user 2 deactivated: no event, just gone
    assert published == [] and board.user_state(["102"]) == ("102", "unavailable")
