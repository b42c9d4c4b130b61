"""Events recorded by core services during a unit of work, published after it commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "pending_events"


@dataclass(frozen=True)
class PendingEvent:
    name: str
    data: dict[str, Any]
    users: frozenset[int] = frozenset()
    scope: dict[str, Any] = field(default_factory=dict)


def emit(session: AsyncSession, name: str, data: dict[str, Any], *, users: Iterable[int] = (),
         scope: dict[str, Any] | None = None) -> None:
    """``users``: exact recipients; ``scope``: facts the access rule needs (see ``access.may_receive``).

    A scope with ``responsible_id`` (even None) is about a deal — the deal itself or anything on it —
    and reaches only those who may open that deal (``access.deal_rule``), whatever else it names."""
    session.info.setdefault(_KEY, []).append(
        PendingEvent(name, data, frozenset(u for u in users if u is not None), scope or {})
    )


def take_pending(session: AsyncSession) -> list[PendingEvent]:
    pending: list[PendingEvent] = session.info.pop(_KEY, [])
    return pending
