"""The audit log: who did what, when and from where, for the security-relevant actions.

``record`` adds one ``AuditEvent`` in the caller's unit of work (it commits, or is rolled back, with
the change it tells of). The address comes from ``REMOTE``, a per-request context variable the web
layer sets (the client's own address, behind a trusted proxy too); a command-line action has none.

The actions: ``login``, ``login_failed``, ``login_locked``, ``token_created``, ``token_revoked``,
``logout``, ``password_changed``, ``user_created``, ``user_updated`` (role, extensions, active, login:
what changed, from → to), ``user_deleted``, ``settings_changed``, ``client_deleted``,
``deal_deleted``, ``lead_deleted``.

``list_events`` is for administrators, newest first, filtered by action, actor login and period;
``purge`` drops what is older than the kept period (``[server] audit_days``).
"""

from __future__ import annotations

import contextvars
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access
from hub.crm.errors import ValidationError
from hub.crm.models import AuditEvent, User, utcnow
from hub.crm.paging import Page
from hub.crm.validate import iso

REMOTE: contextvars.ContextVar[str] = contextvars.ContextVar("audit_remote", default="")
ACTIONS = ("login", "login_failed", "login_locked", "token_created", "token_revoked", "logout",
           "password_changed", "user_created", "user_updated", "user_deleted", "settings_changed",
           "client_deleted", "deal_deleted", "lead_deleted", "client_merged", "client_merge_undone")
PAGE = 50


def record(session: AsyncSession, action: str, *, actor: User | None = None, actor_login: str = "",
           target: tuple[str, int | None] = ("", None), details: dict[str, Any] | None = None) -> None:
    """One event in the caller's unit of work."""
    assert action in ACTIONS, action
    session.add(AuditEvent(
        at=utcnow(), actor_id=actor.id if actor is not None else None,
        actor_login=(actor.login if actor is not None else actor_login)[:64], action=action,
        target_type=target[0], target_id=target[1], remote=REMOTE.get()[:64], details=details or {}))


def event_dict(e: AuditEvent) -> dict[str, Any]:
    return {"id": e.id, "at": iso(e.at), "actor_id": e.actor_id, "actor_login": e.actor_login,
            "action": e.action, "target_type": e.target_type, "target_id": e.target_id,
            "remote": e.remote, "details": e.details}


async def list_events(session: AsyncSession, actor: User, *, action: str | None = None,
                      login: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, before_id: int | None = None,
                      limit: int = PAGE) -> Page:
    """Administrators only: the events, newest first (``before_id``: the page after)."""
    access.require_admin(actor)
    if action is not None and action not in ACTIONS:
        raise ValidationError({"action": f"must be one of: {', '.join(ACTIONS)}"})
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
    if login:
        query = query.where(AuditEvent.actor_login == login)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = list((await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([event_dict(e) for e in rows], str(rows[-1].id) if more and rows else None)


async def purge(session: AsyncSession, keep_days: int, now: datetime | None = None) -> int:
    """Drop the events older than ``keep_days`` → how many."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    result = await session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff),
                                   execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)
