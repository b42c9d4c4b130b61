"""hub.db.WriterGate: SQLite writers of one process take turns, urgent ones first."""

from __future__ import annotations

import asyncio

import pytest

from hub.db import WriterGate


async def test_turns_in_order_urgent_first() -> None:
    gate = WriterGate()
    order: list[str] = []

    async def write(name: str, urgent: bool = False) -> None:
        await gate.acquire(urgent)
        order.append(name)
        await asyncio.sleep(0.01)
        gate.release()

    await gate.acquire()  # a long unit of work holds it
    waiting = [asyncio.create_task(write("crm-1")), asyncio.create_task(write("crm-2"))]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(write("journal", urgent=True)))
    await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(*waiting)
    assert order == ["journal", "crm-1", "crm-2"]


async def test_a_cancelled_waiter_does_not_keep_the_gate() -> None:
    gate = WriterGate()
    await gate.acquire()
    cancelled = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # free again
    gate.release()
