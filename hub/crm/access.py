"""Who may see and change what — the one place that decides.

- admin: everything, including users and settings;
- manager: every client, lead, deal and task;
- agent: the deals they are responsible for, the clients and leads they manage, unassigned leads
  (so that somebody takes the Unsorted inbox), tasks assigned to or written by them; and everything
  when the ``agents_see_all`` setting is on.

Reading something one may not see answers "not found" (existence must not leak); changing something
one may see but not change answers "forbidden".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.errors import Forbidden, NotFound
from hub.crm.models import Client, Deal, Lead, Setting, Task, User

SHARE_SETTING = "agents_see_all"


def is_admin(user: User) -> bool:
    return user.role == "admin"


def is_staff(user: User) -> bool:
    """Admins and managers see every client and deal."""
    return user.role in ("admin", "manager")


async def agents_see_all(session: AsyncSession) -> bool:
    row = await session.get(Setting, SHARE_SETTING)
    return bool(row and row.value.get("enabled"))


async def sees_all(session: AsyncSession, user: User) -> bool:
    return is_staff(user) or await agents_see_all(session)


def require_admin(user: User) -> None:
    if not is_admin(user):
        raise Forbidden("only an administrator may do this")


def require_staff(user: User) -> None:
    if not is_staff(user):
        raise Forbidden("only a manager or an administrator may do this")


# --- SQL filters for lists -------------------------------------------------------------------------

async def clients_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    own_deal = select(Deal.id).where(Deal.client_id == Client.id, Deal.responsible_id == user.id).exists()
    return or_(Client.manager_id == user.id, own_deal)


async def leads_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    return or_(Lead.manager_id == user.id, Lead.manager_id.is_(None))


async def deals_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    return Deal.responsible_id == user.id


async def tasks_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    return or_(Task.assignee_id == user.id, Task.author_id == user.id)


# --- single objects --------------------------------------------------------------------------------

async def can_see_client(session: AsyncSession, user: User, client: Client) -> bool:
    if client.manager_id == user.id or await sees_all(session, user):
        return True
    own = await session.scalar(
        select(Deal.id).where(Deal.client_id == client.id, Deal.responsible_id == user.id).limit(1)
    )
    return own is not None


async def can_see_lead(session: AsyncSession, user: User, lead: Lead) -> bool:
    return lead.manager_id in (None, user.id) or await sees_all(session, user)


async def can_see_deal(session: AsyncSession, user: User, deal: Deal) -> bool:
    return deal.responsible_id == user.id or await sees_all(session, user)


async def can_see_task(session: AsyncSession, user: User, task: Task) -> bool:
    return user.id in (task.assignee_id, task.author_id) or await sees_all(session, user)


_Seen = TypeVar("_Seen", Client, Lead, Deal, Task)


async def visible(session: AsyncSession, user: User, obj: _Seen | None, what: str) -> _Seen:
    """``obj`` if the user may see it, else NotFound (also for None)."""
    checks: dict[type, Callable[[AsyncSession, User, Any], Awaitable[bool]]] = {
        Client: can_see_client, Lead: can_see_lead, Deal: can_see_deal, Task: can_see_task}
    if obj is None or not await checks[type(obj)](session, user, obj):
        raise NotFound(f"{what} not found")
    return obj


# --- live events -----------------------------------------------------------------------------------

def may_receive(user: User, users: frozenset[int], scope: dict[str, Any], shared: bool) -> bool:
    """Whether an event reaches this user's event stream.

    ``users`` names the exact recipients (a screen-pop, a bell item); otherwise ``scope`` carries the
    ids the access rule looks at: ``responsible_id``, ``manager_id``, ``assignee_id``, ``author_id``,
    ``unassigned`` for a lead nobody manages yet, and ``everyone`` for what every user sees (presence).
    """
    if users:
        return user.id in users
    if is_staff(user) or shared or scope.get("unassigned") or scope.get("everyone"):
        return True
    return user.id in {scope.get(k) for k in ("responsible_id", "manager_id", "assignee_id", "author_id")}


