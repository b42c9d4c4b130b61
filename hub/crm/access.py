"""Who may see and change what — the one place that decides.

- admin: everything, including users and settings;
- manager: every client, lead, deal and task;
- agent: the deals they are responsible for, the clients and leads they manage, unassigned leads
  (so that somebody takes the Unsorted inbox), tasks assigned to or written by them; and everything
  when the ``agents_see_all`` setting is on.

Reading something one may not see answers "not found" (existence must not leak); changing something
one may see but not change answers "forbidden".

The rules themselves are the pure functions ``sees_everything``, ``deal_rule``, ``client_rule`` and
``lead_rule``: the REST checks below, the event stream (``may_receive``) and identify
(``hub.crm.identify.identify_for``) all decide through them, so what leaves the hub follows one rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, event, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from hub.crm.errors import Forbidden, NotFound
from hub.crm.models import AuthToken, Client, Deal, Lead, Setting, Task, User, utcnow

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


# --- the rules, without the database --------------------------------------------------------------

def sees_everything(user: User, shared: bool) -> bool:
    """``shared``: the ``agents_see_all`` setting's value."""
    return is_staff(user) or shared


def deal_rule(user: User, responsible_id: int | None, shared: bool) -> bool:
    """A deal (and everything on it: its timeline entries, calls, messages, stage changes) is seen by
    its responsible user and by those who see everything — not by the client's manager."""
    return sees_everything(user, shared) or (responsible_id is not None and responsible_id == user.id)


def client_rule(user: User, manager_id: int | None, shared: bool, own_deal: bool = False) -> bool:
    """``own_deal``: the user is responsible for a deal of this client."""
    return sees_everything(user, shared) or own_deal or (manager_id is not None and manager_id == user.id)


def lead_rule(user: User, manager_id: int | None, shared: bool) -> bool:
    """An unassigned lead is everybody's (somebody must take the Unsorted inbox)."""
    return sees_everything(user, shared) or manager_id is None or manager_id == user.id


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
    if client_rule(user, client.manager_id, False) or await sees_all(session, user):
        return True
    own = await session.scalar(
        select(Deal.id).where(Deal.client_id == client.id, Deal.responsible_id == user.id).limit(1)
    )
    return own is not None


async def can_see_lead(session: AsyncSession, user: User, lead: Lead) -> bool:
    return lead_rule(user, lead.manager_id, False) or await sees_all(session, user)


async def can_see_deal(session: AsyncSession, user: User, deal: Deal) -> bool:
    return deal_rule(user, deal.responsible_id, False) or await sees_all(session, user)


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
    """Whether an event reaches this user's event stream — the REST rule for what it is about.

    ``users`` names the exact recipients (a screen-pop, a bell item); otherwise ``scope`` carries the
    ids the access rule looks at: ``responsible_id`` for a deal or anything on a deal (``deal_rule``:
    then neither the client's manager nor an unassigned lead opens it), ``manager_id``,
    ``assignee_id``, ``author_id``, ``unassigned`` for a lead nobody manages yet, and ``everyone`` for
    what every user sees (presence). ``shared``: the ``agents_see_all`` setting's current value.
    """
    if users:
        return user.id in users
    if sees_everything(user, shared) or scope.get("everyone"):
        return True
    if "responsible_id" in scope:
        return deal_rule(user, scope["responsible_id"], shared)
    if scope.get("unassigned"):
        return True
    return user.id in {scope.get(k) for k in ("manager_id", "assignee_id", "author_id")}


@dataclass(frozen=True)
class Viewer:
    """Who holds an open event stream, as the database says now: the user (a detached copy with the
    current role) and the ``agents_see_all`` setting."""

    user: User
    shared: bool


async def current_viewer(session: AsyncSession, user: User, token_hash: str | None) -> Viewer | None:
    """The stream's user re-read: None when the user is deactivated (or gone) or the bearer token or
    browser session it was opened with is revoked (logout, deactivation) or expired."""
    query = select(User.role).where(User.id == user.id, User.active.is_(True))
    if token_hash is not None:
        query = query.join(AuthToken, AuthToken.user_id == User.id).where(
            AuthToken.token_hash == token_hash,
            or_(AuthToken.expires_at.is_(None), AuthToken.expires_at > utcnow()))
    role = await session.scalar(query)
    if role is None:
        return None
    return Viewer(User(id=user.id, role=role, name=user.name, login=user.login, active=True),
                  await agents_see_all(session))


# A per-process counter, moved when a committed unit of work changed a user, a token or a setting
# (deactivation, a role, logout, ``agents_see_all``): an open stream re-reads its ``Viewer`` only
# when it moved (and every ``hub.web.sse.RECHECK_SECONDS`` for changes made by other processes).
# A token is revoked by deleting it: its updates (``last_used_at``) move nothing.
_version = [0]
_CHANGED = "access_changed"
_WATCHED = (User, Setting)


def access_version() -> int:
    return _version[0]


@event.listens_for(Session, "before_flush")
def _note_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    # (a new token or user narrows nobody's access; a new setting may)
    if any(isinstance(obj, _WATCHED) for obj in session.dirty) or \
            any(isinstance(obj, (*_WATCHED, AuthToken)) for obj in session.deleted) or \
            any(isinstance(obj, Setting) for obj in session.new):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    watched = (*_WATCHED, AuthToken) if state.is_delete else _WATCHED
    if any(m.class_ in watched for m in state.all_mappers):
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _bump(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        _version[0] += 1
