"""Background tasks (not the CRM's tasks, hub.crm.tasks): the one way the hub's workers stop theirs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended (its cancellation swallowed, not re-raised)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
