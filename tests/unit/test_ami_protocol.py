"""The AMI connection's framing (``hub.telephony.ami._Protocol``): events as plain dicts, whole
messages decoded, a backlog parsed a slice at a time with the loop running in between."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.telephony.ami import _Protocol, parse_event

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


class Transport:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.closed = False

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        pass


class Manager:
    """What the protocol needs of panoramisk's Manager: where events go, and the end."""

    forgetable_actions = ()
    awaiting_actions: list[Any] = []

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.dispatched: list[Any] = []
        self.lost: list[Any] = []

    def sink(self, event: Any) -> None:
        self.events.append(event)

    def dispatch(self, message: Any) -> None:
        self.dispatched.append(message)

    def connection_lost(self, exc: Any) -> None:
        self.lost.append((exc, len(self.events)))


def connected() -> tuple[_Protocol, Manager, Transport]:
    manager, transport = Manager(), Transport()
    protocol = _Protocol(manager)  # type: ignore[arg-type]
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.encoding = "utf8"
    return protocol, manager, transport


def event(number: int, **headers: str) -> bytes:
    lines = ["Event: Newchannel", f"Uniqueid: 1700000000.{number}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_an_event_is_its_wire_headers_in_order_a_repeated_one_a_list() -> None:
    parsed = parse_event("Event: VarSet\r\nChanVariable: A=1\r\nChanVariable: B=2\r\nno colon here\r\n"
                         "Value: x: y")
    assert parsed == {"Event": "VarSet", "ChanVariable": ["A=1", "B=2"], "Value": "x: y"}
    assert list(parsed) == ["Event", "ChanVariable", "Value"]


def test_a_name_split_by_tcp_in_the_middle_of_a_letter_arrives_whole() -> None:
    protocol, manager, _ = connected()
    data = BANNER + event(1, CallerIDName="Иван Петров")
    cut = data.index("Петров".encode()) + 1  # inside the two bytes of «П»
    protocol.data_received(data[:cut])
    assert manager.events == []
    protocol.data_received(data[cut:])
    assert [e["CallerIDName"] for e in manager.events] == ["Иван Петров"]
    assert protocol.version == "9.0.0"


async def test_a_backlog_is_parsed_a_slice_at_a_time_with_the_loop_running_between() -> None:
    protocol, manager, transport = connected()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    blob = b"".join(event(n, Channel=f"PJSIP/101-{n:08x}") for n in range(3000))  # ~200 KiB
    protocol.data_received(blob)
    first_slice = len(manager.events)
    assert 0 < first_slice < 300
    protocol.data_received(b"x" * (_Protocol.BACKLOG_HIGH + 1))  # a flood while slicing: reading pauses
    assert transport.paused == 1
    for _ in range(1000):
        if len(manager.events) == 3000 and transport.resumed:
            break
        await asyncio.sleep(0)
    task.cancel()
    assert [e["Uniqueid"] for e in manager.events] == [f"1700000000.{n}" for n in range(3000)]
    assert ticks > 3000 // first_slice  # the loop ran between the slices
    assert transport.resumed == 1


def test_bytes_with_no_message_end_are_dropped_and_the_stream_goes_on(caplog: Any) -> None:
    protocol, manager, _ = connected()
    protocol.data_received(BANNER)
    protocol.data_received(b"x" * (_Protocol.MAX_FRAME + 1))
    assert "no message end" in caplog.text
    protocol.data_received(event(7))
    assert [e["Uniqueid"] for e in manager.events] == ["1700000000.7"]


async def test_what_arrived_before_the_end_is_handled_before_the_end() -> None:
    protocol, manager, _ = connected()
    protocol.data_received(b"".join(event(n) for n in range(1000)))
    assert len(manager.events) < 1000
    protocol.connection_lost(None)
    assert manager.lost == [(None, 1000)]


def test_events_that_answer_an_action_and_shutdown_reach_panoramisk_too() -> None:
    protocol, manager, transport = connected()
    protocol.data_received(b"Event: CoreShowChannel\r\nActionID: list-1\r\nChannel: PJSIP/101-1\r\n\r\n"
                           + event(2) + b"Event: Shutdown\r\nShutdown: Cleanly\r\n\r\n")
    assert [e["Event"] for e in manager.events] == ["CoreShowChannel", "Newchannel", "Shutdown"]
    assert [m["Event"] for m in manager.dispatched] == ["CoreShowChannel", "Shutdown"]
    assert transport.closed and len(manager.lost) == 1
