"""Events recorded by core services during a unit of work, published after it commits.

The recording itself is the unit of work's (``hub.db.record_event``); this is the core's name for it,
with what a scope means to the core's access rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import PendingEvent, record_event, take_pending

__all__ = ["PendingEvent", "emit", "take_pending"]


def emit(session: AsyncSession, name: str, data: dict[str, Any], *, users: Iterable[int] = (),
         scope: dict[str, Any] | None = None) -> None:
    """``users``: exact recipients; ``scope``: facts the access rule needs (see ``access.may_receive``).

    A scope with ``responsible_id`` (even None) is about a deal — the deal itself or anything on it —
    and reaches only those who may open that deal (``access.deal_rule``), whatever else it names."""
    record_event(session, name, data, users=users, scope=scope)
