"""What the /tasks page needs beyond ``tasks.py``: the open tasks (not completed yet) and the files
attached to tasks.

``tasks.list_tasks`` knows mine / overdue / today / done (newest first, as the API lists them); the
page also wants "what is still to do" and "due today", in the order work is done: the soonest due
first (so the overdue ones lead), undated last, with the same visibility rules. Files on tasks are stored
like the timeline's (``attachments.py``) and downloaded through ``GET /api/v1/attachments/{id}``,
which checks that the reader may see the task.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, attachments, events
from hub.crm.errors import Forbidden, NotFound, ValidationError
from hub.crm.models import Attachment, Task, User, utcnow
from hub.crm.paging import Page, after_date, clamp_limit, encode_date_cursor
from hub.crm.tasks import task_dict, task_dicts


async def list_open_tasks(session: AsyncSession, actor: User, *, cursor: str | None = None,
                          limit: int | None = None) -> Page:
    """The open tasks the actor may see, the soonest due first (overdue first), undated last."""
    return await _by_due_date(session, actor, [Task.completed_at.is_(None)], cursor, limit)


async def list_due_between(session: AsyncSession, actor: User, since: datetime, until: datetime, *,
                           cursor: str | None = None, limit: int | None = None) -> Page:
    """The tasks the actor may see that are due in ``[since, until)`` (e.g. the reader's local day:
    ``tasks.list_tasks(filter="today")`` takes the UTC day), done or not, the soonest first."""
    return await _by_due_date(session, actor, [Task.due_at >= since.astimezone(UTC),
                                               Task.due_at < until.astimezone(UTC)], cursor, limit)


async def _by_due_date(session: AsyncSession, actor: User, where: list[ColumnElement[bool]],
                       cursor: str | None, limit: int | None) -> Page:
    limit = clamp_limit(limit)
    where = [await access.tasks_filter(session, actor), *where]
    if cursor:
        where.append(after_date(Task.due_at, Task.id, cursor))
    query = select(Task).where(*where).order_by(Task.due_at.asc().nulls_last(), Task.id.asc())
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await task_dicts(session, rows),
                encode_date_cursor(rows[-1].due_at, rows[-1].id) if more and rows else None)


# --- files attached to tasks -----------------------------------------------------------------------

async def task_attachments(session: AsyncSession, task_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The files of these tasks, oldest first, by task id."""
    found: dict[int, list[dict[str, Any]]] = {}
    if not task_ids:
        return found
    rows = await session.scalars(
        select(Attachment).where(Attachment.task_id.in_(task_ids)).order_by(Attachment.id))
    for a in rows:
        assert a.task_id is not None
        found.setdefault(a.task_id, []).append(attachments.attachment_dict(a))
    return found


async def _changeable_task(session: AsyncSession, actor: User, task_id: int) -> Task:
    task = None
    if not isinstance(task_id, bool) and isinstance(task_id, int) and 0 < task_id <= 2**62:
        task = await session.get(Task, task_id)
    task = await access.visible(session, actor, task, "task")
    if not access.is_staff(actor) and actor.id not in (task.assignee_id, task.author_id):
        raise Forbidden("only the assignee, the author or a manager may change this task")
    return task


async def _changed(session: AsyncSession, task: Task) -> None:
    result = await task_dict(session, task)
    events.emit(session, "task.updated", {"task": result},
                scope={"assignee_id": task.assignee_id, "author_id": task.author_id})


async def attach_to_task(session: AsyncSession, actor: User, task_id: int, *, filename: Any,
                         content_type: Any, data: Any, directory: str | Path,
                         max_bytes: int) -> dict[str, Any]:
    """Attach a file to a task the actor may change (assignee, author, staff); emits task.updated.
    The bytes are stored as for timeline entries (``attachments.store_bytes``, by SHA-256)."""
    task = await _changeable_task(session, actor, task_id)
    if not isinstance(data, bytes | bytearray):
        raise ValidationError({"file": "is required"})
    if not data:
        raise ValidationError({"file": "is empty"})
    if len(data) > max_bytes:
        raise ValidationError({"file": f"is larger than {max_bytes} bytes"})
    name = attachments.sanitize_filename(filename)
    digest = await attachments.store_bytes(directory, bytes(data))
    attachment = Attachment(task_id=task.id, filename=name, size=len(data), sha256=digest,
                            content_type=attachments.content_type_of(content_type, name), created_at=utcnow())
    session.add(attachment)
    await session.flush()
    await _changed(session, task)
    return attachments.attachment_dict(attachment)


async def detach_from_task(session: AsyncSession, actor: User, task_id: int, attachment_id: int) -> None:
    """Remove a file from a task (the stored bytes stay: another row may share them)."""
    task = await _changeable_task(session, actor, task_id)
    attachment = await session.get(Attachment, attachment_id) if 0 < attachment_id <= 2**62 else None
    if attachment is None or attachment.task_id != task.id:
        raise NotFound("attachment not found")
    await session.delete(attachment)
    await session.flush()
    await _changed(session, task)
