"""Tasks (задачи): subject, start, due, % done, client/deal/lead, assignee; overdue is derived."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import access, events, history, notifications, resources
from hub.crm.errors import Forbidden, ValidationError
from hub.crm.inputs import TaskIn, read
from hub.crm.models import TASK_KINDS, Client, Deal, Lead, Task, User, utcnow
from hub.crm.paging import Page, clamp_limit, decode_cursor, encode_cursor
from hub.crm.resources import Ref
from hub.crm.timeline import add_entry, refs, user_refs
from hub.crm.validate import Fields, iso
from hub.serialise import plain
from hub.texts import say

FILTERS = ("mine", "overdue", "today", "done", "open")
KINDS = TASK_KINDS
REFS = ("deal_id", "client_id", "lead_id", "assignee_id")
MAX_DESCRIPTION = 20_000


def is_overdue(task: Task, now: datetime | None = None) -> bool:
    return task.completed_at is None and task.due_at is not None and task.due_at < (now or utcnow())


async def task_dicts(session: AsyncSession, tasks: list[Task],
                     now: datetime | None = None) -> list[dict[str, Any]]:
    users = await user_refs(session, [t.assignee_id for t in tasks] + [t.author_id for t in tasks])
    clients = await refs(session, Client.id, Client.name, (t.client_id for t in tasks))
    leads = await refs(session, Lead.id, Lead.name, (t.lead_id for t in tasks))
    deals = await refs(session, Deal.id, Deal.title, (t.deal_id for t in tasks))
    now = now or utcnow()
    return [plain(resources.Task(
        id=t.id, subject=t.subject, description=t.description, kind=t.kind, start_at=iso(t.start_at),
        due_at=iso(t.due_at), percent=t.percent, client_id=t.client_id, client=_ref(clients, t.client_id),
        deal_id=t.deal_id, deal=_ref(deals, t.deal_id), lead_id=t.lead_id, lead=_ref(leads, t.lead_id),
        assignee_id=t.assignee_id, assignee=_ref(users, t.assignee_id), author_id=t.author_id,
        author=_ref(users, t.author_id), completed_at=iso(t.completed_at), done=t.completed_at is not None,
        overdue=is_overdue(t, now), created_at=iso(t.created_at), updated_at=iso(t.updated_at)))
        for t in tasks]


def _ref(known: dict[int, Ref], ref_id: int | None) -> Ref | None:
    return known.get(ref_id) if ref_id else None


async def task_dict(session: AsyncSession, task: Task) -> dict[str, Any]:
    return (await task_dicts(session, [task]))[0]


def _scope(task: Task) -> dict[str, Any]:
    return {"assignee_id": task.assignee_id, "author_id": task.author_id}


async def _visible_task(session: AsyncSession, actor: User, task_id: Any) -> Task:
    task = None
    if not isinstance(task_id, bool) and isinstance(task_id, int) and 0 < task_id <= 2**62:
        task = await session.get(Task, task_id, populate_existing=True)
    return await access.visible(session, actor, task, "task")


def _require_change(actor: User, task: Task) -> None:
    if not access.is_staff(actor) and actor.id not in (task.assignee_id, task.author_id):
        raise Forbidden("only the assignee, the author or a manager may change this task")


async def _check_refs(session: AsyncSession, actor: User, v: Fields, refs: dict[str, int | None],
                      changed: set[str]) -> dict[str, int | None]:
    """Check the referenced (changed) deal/client/lead/assignee; fill client/lead from the deal."""
    deal = None
    if refs["deal_id"] is not None and "deal_id" in changed:
        deal = await session.get(Deal, refs["deal_id"])
        if deal is None or not await access.can_see_deal(session, actor, deal):
            v.fail("deal_id", "does not exist")
            deal = None
    if refs["client_id"] is not None and "client_id" in changed:
        client = await session.get(Client, refs["client_id"])
        if client is None or not await access.can_see_client(session, actor, client):
            v.fail("client_id", "does not exist")
    if refs["lead_id"] is not None and "lead_id" in changed:
        lead = await session.get(Lead, refs["lead_id"])
        if lead is None or not await access.can_see_lead(session, actor, lead):
            v.fail("lead_id", "does not exist")
    if refs["assignee_id"] is not None and "assignee_id" in changed:
        user = await session.get(User, refs["assignee_id"])
        if user is None or not user.active:
            v.fail("assignee_id", "no such active user")
    if deal is not None:
        if refs["client_id"] is None and refs["lead_id"] is None:
            refs["client_id"], refs["lead_id"] = deal.client_id, deal.lead_id
        elif refs["client_id"] is not None and deal.client_id not in (None, refs["client_id"]):
            v.fail("deal_id", "is a deal of another client")
    return refs


async def _notify_assignee(session: AsyncSession, actor: User, task: Task) -> None:
    if task.assignee_id is not None and task.assignee_id != actor.id:
        await notifications.notify(
            session, task.assignee_id, kind="task_assigned",
            title=say("New task: %(subject)s", subject=task.subject),
            text=say("%(name)s assigned it to you", name=actor.name),
            link=f"/tasks/{task.id}",
            # What the web UI needs to say it in the reader's language.
            payload={"task_id": task.id, "subject": task.subject, "due_at": iso(task.due_at),
                     "assigned_by": {"id": actor.id, "name": actor.name}},
        )


async def _log(session: AsyncSession, actor: User, task: Task, what: str) -> None:
    """A ``task`` entry in the timeline of the deal / client / lead the task is about."""
    if task.deal_id is None and task.client_id is None and task.lead_id is None:
        return
    label = {"created": "Task", "completed": "Task done"}[what]
    await add_entry(session, kind="task", text=f"{label}: {task.subject}", author_id=actor.id,
                    deal_id=task.deal_id, client_id=task.client_id, lead_id=task.lead_id,
                    payload={"task_id": task.id, "event": what, "due_at": iso(task.due_at),
                             "assignee_id": task.assignee_id})


async def create_task(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    v = Fields(data)
    values = read(v, TaskIn)
    refs: dict[str, int | None] = {n: v.id(n) for n in REFS}
    if values["start_at"] and values["due_at"] and values["due_at"] < values["start_at"]:
        v.fail("due_at", "must not be before start_at")
    refs = await _check_refs(session, actor, v, refs, set(refs))
    v.check()
    now = utcnow()
    task = Task(**values, client_id=refs["client_id"], deal_id=refs["deal_id"], lead_id=refs["lead_id"],
                assignee_id=refs["assignee_id"] or actor.id, author_id=actor.id,
                completed_at=now if values["percent"] == 100 else None, created_at=now, updated_at=now)
    session.add(task)
    await session.flush()
    history.created(session, actor, "task", task.id, task.subject)
    await _notify_assignee(session, actor, task)
    await _log(session, actor, task, "created")
    result = await task_dict(session, task)
    events.emit(session, "task.updated", {"task": result}, scope=_scope(task))
    return result


async def get_task(session: AsyncSession, actor: User, task_id: int) -> dict[str, Any]:
    return await task_dict(session, await _visible_task(session, actor, task_id))


async def update_task(session: AsyncSession, actor: User, task_id: int, data: Any) -> dict[str, Any]:
    task = await _visible_task(session, actor, task_id)
    _require_change(actor, task)
    v = Fields(data, partial=True)
    given = read(v, TaskIn)
    subject, description, kind, start_at, due_at, percent = (
        given.get(name, getattr(task, name))
        for name in ("subject", "description", "kind", "start_at", "due_at", "percent"))
    refs: dict[str, int | None] = {n: (v.id(n) if v.has(n) else getattr(task, n)) for n in REFS}
    changed = {n for n in REFS if refs[n] != getattr(task, n)}
    if "assignee_id" in changed and refs["assignee_id"] is None:
        v.fail("assignee_id", "is required")
    if start_at and due_at and due_at < start_at:
        v.fail("due_at", "must not be before start_at")
    refs = await _check_refs(session, actor, v, refs, changed)
    v.check()
    before = history.task_values(await task_dict(session, task))
    was_done = task.completed_at is not None
    task.subject, task.description, task.kind = subject, description, kind
    task.start_at, task.due_at, task.percent = start_at, due_at, percent
    task.deal_id, task.client_id, task.lead_id = refs["deal_id"], refs["client_id"], refs["lead_id"]
    task.assignee_id = refs["assignee_id"]
    if percent == 100 and task.completed_at is None:
        task.completed_at = utcnow()
    elif percent < 100:
        task.completed_at = None
    task.updated_at = utcnow()
    await session.flush()
    if "assignee_id" in changed:
        await _notify_assignee(session, actor, task)
    if task.completed_at is not None and not was_done:
        await _log(session, actor, task, "completed")
    result = await task_dict(session, task)
    history.record(session, actor, "task", task.id, before, history.task_values(result))
    events.emit(session, "task.updated", {"task": result}, scope=_scope(task))
    return result


async def complete_task(session: AsyncSession, actor: User, task_id: int) -> dict[str, Any]:
    task = await _visible_task(session, actor, task_id)
    _require_change(actor, task)
    before = history.task_values(await task_dict(session, task))
    if task.completed_at is None:
        task.percent = 100
        task.completed_at = task.updated_at = utcnow()
        await session.flush()
        await _log(session, actor, task, "completed")
    result = await task_dict(session, task)
    history.record(session, actor, "task", task.id, before, history.task_values(result))
    events.emit(session, "task.updated", {"task": result}, scope=_scope(task))
    return result


async def delete_task(session: AsyncSession, actor: User, task_id: int) -> None:
    """The author or a manager may delete a task (an assignee can only complete it)."""
    task = await _visible_task(session, actor, task_id)
    if not access.is_staff(actor) and actor.id != task.author_id:
        raise Forbidden("only the author or a manager may delete this task")
    result = await task_dict(session, task)
    await history.forget(session, "task", [task.id])
    await session.delete(task)
    await session.flush()
    events.emit(session, "task.deleted", {"task": result}, scope=_scope(task))


async def list_tasks(session: AsyncSession, actor: User, *, assignee_id: int | None = None,
                     filter: str | None = None, deal_id: int | None = None, client_id: int | None = None,
                     cursor: str | None = None, limit: int | None = None, now: datetime | None = None,
                     lead_id: int | None = None) -> Page:
    """Newest first. ``filter``: mine (assigned to the actor), overdue (open, due in the past),
    today (due today, UTC), done (completed), open (not completed). ``now`` is for tests."""
    errors = {}
    if filter is not None and filter not in FILTERS:
        errors["filter"] = f"must be one of: {', '.join(FILTERS)}"
    for name, value in (("assignee_id", assignee_id), ("deal_id", deal_id), ("client_id", client_id),
                        ("lead_id", lead_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 < value <= 2**62):
            errors[name] = "must be an id"
    if errors:
        raise ValidationError(errors)
    after = decode_cursor(cursor)
    limit = clamp_limit(limit)
    now = (now or utcnow()).astimezone(UTC)
    query = select(Task).where(await access.tasks_filter(session, actor))
    if assignee_id is not None:
        query = query.where(Task.assignee_id == assignee_id)
    if deal_id is not None:
        query = query.where(Task.deal_id == deal_id)
    if client_id is not None:
        query = query.where(Task.client_id == client_id)
    if lead_id is not None:
        query = query.where(Task.lead_id == lead_id)
    if filter == "mine":
        query = query.where(Task.assignee_id == actor.id)
    elif filter == "overdue":
        query = query.where(Task.completed_at.is_(None), Task.due_at < now)
    elif filter == "open":
        query = query.where(Task.completed_at.is_(None))
    elif filter == "today":
        start = datetime.combine(now.date(), time(0), tzinfo=UTC)
        query = query.where(Task.due_at >= start, Task.due_at < start + timedelta(days=1))
    elif filter == "done":
        query = query.where(Task.completed_at.is_not(None))
    if after is not None:
        query = query.where(Task.id < after)
    rows = list((await session.scalars(query.order_by(Task.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(await task_dicts(session, rows, now), encode_cursor(rows[-1].id) if more and rows else None)
