"""The bell: notifications of one user (a missed call, a task assigned, a reminder)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events, resources
from hub.crm.errors import ValidationError
from hub.crm.models import Notification, User, utcnow
from hub.crm.paging import Page, clamp_limit, decode_cursor, page_of
from hub.crm.validate import iso
from hub.serialise import plain

MAX_IDS = 1000


def notification_dict(n: Notification) -> dict[str, Any]:
    return plain(resources.Notification(
        id=n.id, user_id=n.user_id, kind=n.kind, title=n.title, text=n.text, link=n.link,
        payload=n.payload or {}, read=n.read_at is not None, read_at=iso(n.read_at),
        created_at=iso(n.created_at)))


def _fit(value: Any, limit: int | None) -> str:
    """Internal callers build titles from user input: keep them storable instead of failing."""
    text = ("" if value is None else str(value)).replace("\x00", "\ufffd")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


async def notify(session: AsyncSession, user_id: int, *, kind: str, title: str, text: str = "",
                 link: str = "", payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add a bell item for ``user_id`` and publish ``notification.created`` to that user after commit."""
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= 2**62:
        raise ValidationError({"user_id": "must be a user id"})
    if await session.get(User, user_id) is None:
        raise ValidationError({"user_id": "does not exist"})
    if payload is not None and not isinstance(payload, dict):
        raise ValidationError({"payload": "must be an object"})
    item = Notification(user_id=user_id, kind=_fit(kind, 32) or "info", title=_fit(title, 300),
                        text=_fit(text, None), link=_fit(link, 300), payload=payload or {},
                        created_at=utcnow())
    session.add(item)
    await session.flush()
    result = notification_dict(item)
    events.emit(session, "notification.created", {"notification": result}, users=[user_id])
    return result


async def list_notifications(session: AsyncSession, actor: User, *, unread: bool | None = None,
                             cursor: str | None = None, limit: int | None = None) -> Page:
    """The actor's own notifications, newest first."""
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    query = select(Notification).where(Notification.user_id == actor.id)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    if after is not None:
        query = query.where(Notification.id < after)
    rows = list((await session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1))).all())
    return page_of(rows, limit, notification_dict)


async def unread_count(session: AsyncSession, actor: User) -> int:
    return int(await session.scalar(
        select(func.count(Notification.id))
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
    ) or 0)


async def mark_read(session: AsyncSession, actor: User, ids: Any = None) -> int:
    """Mark the given ids (only the actor's own; others are ignored) or all as read → how many changed."""
    query = update(Notification).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
    if ids is not None:
        if (not isinstance(ids, list) or len(ids) > MAX_IDS
                or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= 2**62 for i in ids)):
            raise ValidationError({"ids": f"must be a list of at most {MAX_IDS} ids"})
        if not ids:
            return 0
        query = query.where(Notification.id.in_(ids))
    query = query.values(read_at=utcnow()).execution_options(synchronize_session=False)
    result = await session.execute(query)
    await session.flush()
    # AsyncSession.execute is typed to return Result; for a DML statement it is a CursorResult
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_all(session: AsyncSession, actor: User) -> int:
    result = await session.execute(
        delete(Notification).where(Notification.user_id == actor.id)
        .execution_options(synchronize_session=False)
    )
    # AsyncSession.execute is typed to return Result; for a DML statement it is a CursorResult
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
