"""A fake Asterisk for the tests: the product's simulated PBX (``hub.telephony.simulator``) replaying
the full capture set of ``tests/fixtures/ami`` (every scenario, the load trace too).

Control API for tests::

    server = FakeAmiServer()
    await server.start()                       # server.port
    replay = await server.push("inbound_answered", stop_after=None, speed=0, numbers={...})
    replay.linkedids                           # the fresh call ids
    await server.drop()                        # close every client connection
    server.freeze() / server.unfreeze()        # stop answering (socket stays open, nothing is written)
    server.fail_auth = True                    # every Login fails
    server.originate_error = "Extension does not exist."  # every Originate is refused
    server.actions                             # every action received, in order
    server.devices / .hints / .presence / .contacts  # what the phones' lists answer (replays set them)
    server.now()                               # the replays' clock (channel ages, CDR(billsec))
    await server.stop()
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hub.telephony import simulator
from hub.telephony.simulator import BANNER, LOGIN_ARTIFACTS, AmiSimulator, Replay, Rewriter, encode
from tests.paths import AMI_FIXTURES

__all__ = ["BANNER", "FIXTURES", "LOGIN_ARTIFACTS", "FakeAmiServer", "Replay", "Rewriter", "encode",
           "load_trace", "scenarios"]

FIXTURES = AMI_FIXTURES


def load_trace(name: str, fixtures: Path = FIXTURES) -> list[dict[str, Any]]:
    """A fixture's messages (with ``_t``), banner line dropped."""
    return simulator.load_trace(name, fixtures)


class FakeAmiServer(AmiSimulator):
    def __init__(self, username: str = "hub", secret: str = "hubsecret", fixtures: Path = FIXTURES,
                 originate_scenario: str = "click_to_call") -> None:
        super().__init__(username, secret, fixtures, originate_scenario)


def scenarios(fixtures: Path = FIXTURES) -> Iterable[str]:
    return simulator.scenarios(fixtures)
