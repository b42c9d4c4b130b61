"""Missed calls and callbacks: a callback task and a bell item for a missed inbound call (one open
task per number), completed when an outbound call to the number is answered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events, notifications, routing
from hub.crm.calls import CALL_STATUS_WORDS
from hub.crm.models import Call, Client, Lead, Task, User, utcnow
from hub.crm.ports import CallSettings
from hub.crm.tasks import task_dict
from hub.crm.timeline import add_entry
from hub.crm.validate import iso
from hub.texts import say


async def _manager_of(session: AsyncSession, call: Call) -> int | None:
    if call.client_id is not None:
        manager = await session.scalar(select(Client.manager_id).where(Client.id == call.client_id))
    elif call.lead_id is not None:
        manager = await session.scalar(select(Lead.manager_id).where(Lead.id == call.lead_id))
    else:
        return None
    if manager is None:
        return None
    active = await session.scalar(select(User.active).where(User.id == manager))
    return manager if active else None


async def _open_callback(session: AsyncSession, number: str) -> Task | None:
    return await session.scalar(
        select(Task).where(Task.kind == "callback", Task.completed_at.is_(None),
                           Task.id.in_(select(Call.callback_task_id).where(Call.external_number == number)))
        .order_by(Task.id.desc()).limit(1))


async def callback(session: AsyncSession, call: Call, name: str | None, settings: CallSettings,
                   board: routing.Board | None = None) -> None:
    """A missed inbound call: a callback task for the person's manager (else the agents rung) and a
    bell item; a repeated miss from the same number joins the open task. With ``route_to_free_agent``
    on and a presence board, a new task whose manager (else first agent rung) is busy or offline goes
    to a free agent instead (``hub.crm.routing``), and only that agent gets the bell item."""
    number = call.external_number
    assert number is not None
    manager = await _manager_of(session, call)
    rung = [int(u) for u in (call.rung_user_ids or [])] or ([call.agent_id] if call.agent_id else [])
    when = call.ended_at or utcnow()
    status = say(CALL_STATUS_WORDS.get(call.status, call.status))
    line = say("Missed call %(number)s (%(status)s), %(time)s", number=number, status=status,
               time=iso(call.started_at))
    task = await _open_callback(session, number)
    rerouted = False
    if task is not None:
        count = 1 + int(await session.scalar(
            select(func.count(Call.id)).where(Call.callback_task_id == task.id)) or 0)
        task.description = f"{task.description}\n{line}".strip()
        task.updated_at = utcnow()
        if task.client_id is None and task.lead_id is None:
            task.client_id, task.lead_id = call.client_id, call.lead_id
    else:
        count = 1
        assignee = manager if manager is not None else (rung[0] if rung else None)
        routed = await routing.free_agent(session, board, responsible_id=assignee)
        rerouted = routed != assignee
        assignee = routed
        subject = say("Call back: %(name)s", name=name or number)[:300]
        task = Task(subject=subject, description=line, kind="callback",
                    start_at=when, due_at=when + timedelta(minutes=settings.callback_due_minutes),
                    percent=0, client_id=call.client_id, lead_id=call.lead_id, deal_id=call.deal_id,
                    assignee_id=assignee, author_id=None, created_at=utcnow(), updated_at=utcnow())
        session.add(task)
    await session.flush()
    call.callback_task_id = task.id
    recipients = [task.assignee_id] if manager is not None and task.assignee_id is not None else rung
    if rerouted and task.assignee_id is not None:
        recipients = [task.assignee_id]
    if not recipients and task.assignee_id is not None:
        recipients = [task.assignee_id]
    for user_id in dict.fromkeys(recipients):
        await notifications.notify(
            session, user_id, kind="missed_call", title=say("Missed call from %(who)s", who=name or number),
            text=number if count == 1 else say("%(number)s — %(count)s missed calls",
                                               number=number, count=count),
            link=f"/tasks/{task.id}",
            payload={"call_id": call.id, "task_id": task.id, "number": number, "name": name, "count": count,
                     "client_id": call.client_id, "lead_id": call.lead_id, "status": call.status})
    events.emit(session, "task.updated", {"task": await task_dict(session, task)},
                scope={"assignee_id": task.assignee_id, "author_id": task.author_id})


async def complete_callbacks(session: AsyncSession, call: Call) -> None:
    """An answered outbound call to a number completes its open callback task."""
    number = call.external_number
    assert number is not None
    while (task := await _open_callback(session, number)) is not None:
        task.percent = 100
        task.completed_at = task.updated_at = utcnow()
        called_back = say("Called back %(time)s", time=iso(call.started_at))
        task.description = f"{task.description}\n{called_back}".strip()
        await session.flush()
        if task.deal_id is not None or task.client_id is not None or task.lead_id is not None:
            await add_entry(session, kind="task", text=f"Task done: {task.subject}", author_id=call.agent_id,
                            deal_id=task.deal_id, client_id=task.client_id, lead_id=task.lead_id,
                            payload={"task_id": task.id, "event": "completed", "due_at": iso(task.due_at),
                                     "assignee_id": task.assignee_id, "call_id": call.id})
        events.emit(session, "task.updated", {"task": await task_dict(session, task)},
                    scope={"assignee_id": task.assignee_id, "author_id": task.author_id})
