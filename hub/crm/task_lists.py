"""The open tasks (not completed yet) for the /tasks page's default view.

``tasks.list_tasks`` knows mine / overdue / today / done; the page also wants "what is still to do",
newest first with the same cursor paging and the same visibility rules.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access
from hub.crm.models import Task, User
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.tasks import task_dicts


async def list_open_tasks(session: AsyncSession, actor: User, *, cursor: str | None = None,
                          limit: int | None = None) -> Page:
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    query = select(Task).where(await access.tasks_filter(session, actor), Task.completed_at.is_(None))
    if after is not None:
        query = query.where(Task.id < after)
    rows = list((await session.scalars(query.order_by(Task.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await task_dicts(session, rows), encode_cursor(rows[-1].id) if more and rows else None)
