"""The desktop (рабочий стол): what one user should do now.

``desktop(s, actor, today_start=…)`` answers, for the actor's local day that starts at
``today_start`` (an aware datetime; the caller knows the time zone):

- ``tasks_today`` / ``tasks_tomorrow``: the actor's open tasks due that day (open overdue tasks of
  earlier days come first in ``tasks_today``, marked ``overdue``);
- ``deals_due``: the actor's open deals whose planned interaction is due by the end of today,
  nearest first (``overdue`` when it is in the past);
- ``inbound``: the latest inbound messages (SMS, Telegram, e-mail) and missed calls on what the
  actor may see, newest first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Result, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access
from hub.crm.deals import CLOSED, deal_dicts
from hub.crm.models import Client, Deal, Lead, Stage, Task, TimelineEntry, User, utcnow
from hub.crm.tasks import task_dicts
from hub.crm.timeline import entry_dicts

MESSAGE_KINDS = ("sms", "whatsapp", "telegram", "email")
MISSED = ("missed", "abandoned")
MAX_TASKS = 100
MAX_DEALS = 100
MAX_INBOUND = 20


async def _entries_filter(session: AsyncSession, actor: User) -> ColumnElement[bool]:
    """Timeline entries on a deal, client or lead the actor may see."""
    if await access.sees_all(session, actor):
        return true()
    deals = select(Deal.id).where(await access.deals_filter(session, actor))
    clients = select(Client.id).where(await access.clients_filter(session, actor))
    leads = select(Lead.id).where(await access.leads_filter(session, actor))
    return or_(TimelineEntry.deal_id.in_(deals), TimelineEntry.client_id.in_(clients),
               TimelineEntry.lead_id.in_(leads))


def is_missed_call(entry: dict[str, Any]) -> bool:
    payload = entry.get("payload") or {}
    return entry.get("kind") == "call" and (payload.get("status") in MISSED or payload.get("missed") is True)


async def _name_whom(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Add ``about``: the client, lead or deal an entry is about ({"type", "id", "name"})."""
    async def names(column: Any, label: Any, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows: Result[int, str] = await session.execute(select(column, label).where(column.in_(ids)))
        return {key: name for key, name in rows}

    clients = await names(Client.id, Client.name, {e["client_id"] for e in entries if e["client_id"]})
    leads = await names(Lead.id, Lead.name, {e["lead_id"] for e in entries if e["lead_id"]})
    deals = await names(Deal.id, Deal.title, {e["deal_id"] for e in entries if e["deal_id"]})
    for e in entries:
        if e["client_id"] in clients:
            e["about"] = {"type": "client", "id": e["client_id"], "name": clients[e["client_id"]]}
        elif e["lead_id"] in leads:
            e["about"] = {"type": "lead", "id": e["lead_id"], "name": leads[e["lead_id"]]}
        elif e["deal_id"] in deals:
            e["about"] = {"type": "deal", "id": e["deal_id"], "name": deals[e["deal_id"]]}
        else:
            e["about"] = None


async def desktop(session: AsyncSession, actor: User, *, today_start: datetime,
                  now: datetime | None = None) -> dict[str, Any]:
    now = (now or utcnow()).astimezone(UTC)
    start = today_start.astimezone(UTC)
    tomorrow = start + timedelta(days=1)
    day_after = start + timedelta(days=2)

    task_rows = list((await session.scalars(
        select(Task)
        .where(Task.assignee_id == actor.id, Task.completed_at.is_(None), Task.due_at.is_not(None),
               Task.due_at < day_after)
        .order_by(Task.due_at, Task.id).limit(MAX_TASKS)
    )).all())
    tasks = await task_dicts(session, task_rows, now)
    # (every due_at is set: the query asks for it)
    tasks_today = [t for t, row in zip(tasks, task_rows, strict=True)
                   if row.due_at is not None and row.due_at < tomorrow]
    tasks_tomorrow = [t for t, row in zip(tasks, task_rows, strict=True)
                      if row.due_at is not None and row.due_at >= tomorrow]

    deal_rows = list((await session.scalars(
        select(Deal).options(selectinload(Deal.stage), selectinload(Deal.tags))
        .join(Stage, Stage.id == Deal.stage_id)
        .where(Deal.responsible_id == actor.id, Stage.kind.not_in(CLOSED),
               Deal.next_interaction_at.is_not(None), Deal.next_interaction_at < tomorrow)
        .order_by(Deal.next_interaction_at, Deal.id).limit(MAX_DEALS)
    )).all())

    entry_rows = list((await session.scalars(
        select(TimelineEntry).options(selectinload(TimelineEntry.attachments))
        .where(TimelineEntry.direction == "in", TimelineEntry.kind.in_((*MESSAGE_KINDS, "call")),
               await _entries_filter(session, actor))
        .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc()).limit(MAX_INBOUND * 3)
    )).all())
    inbound = [e for e in await entry_dicts(session, entry_rows)
               if e["kind"] != "call" or is_missed_call(e)][:MAX_INBOUND]
    await _name_whom(session, inbound)

    return {
        "tasks_today": tasks_today,
        "tasks_tomorrow": tasks_tomorrow,
        "deals_due": await deal_dicts(session, deal_rows),
        "inbound": inbound,
    }
