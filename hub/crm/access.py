"""Who may see and change what — the one place that decides.

- admin: everything, including users and settings;
- manager: every client, lead, deal and task;
- agent: the deals they are responsible for, the clients and leads they manage, unassigned leads
  (so that somebody takes the Unsorted inbox), tasks assigned to or written by them; and everything
  when the ``agents_see_all`` setting is on;
- and, granted by their work (``granted_clients`` / ``granted_leads``): the client or lead of a call
  their phone rang for or they answered, with its open deals and the call, for as long as the
  ``call_grant`` setting says (by default until the end of that day, in the server's time zone); the
  client or lead of a conversation assigned to them, with its open deals, while it is. A call's
  grants are written here too (``AccessGrant``, by ``_grant_calls`` when a call's rung users or
  answering agent change), so the list filters stay one indexed look-up.

Reading something one may not see answers "not found" (existence must not leak); changing something
one may see but not change answers "forbidden".

The rules themselves are the pure functions ``sees_everything``, ``deal_rule``, ``client_rule`` and
``lead_rule``: the REST checks below, the event stream (``may_receive``) and identify
(``hub.crm.identify.identify_for``) all decide through them, so what leaves the hub follows one rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, event, inspect, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, ORMExecuteState, Session, UOWTransaction

from hub.crm.errors import Forbidden, NotFound
from hub.crm.models import (
    AccessGrant,
    AuthToken,
    Call,
    Client,
    Conversation,
    Deal,
    Lead,
    Setting,
    Stage,
    Task,
    User,
    utcnow,
)
from hub.db import DAY_ZONE

SHARE_SETTING = "agents_see_all"
GRANT_SETTING = "call_grant"
# how long a call lets the users it rang open the caller's card: until the end of that day, for a
# number of hours, or not at all
GRANT_MODES = ("end_of_day", "hours", "off")
DEFAULT_GRANT_HOURS = 8
MAX_GRANT_HOURS = 24 * 30


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


@dataclass(frozen=True)
class CallGrant:
    """The ``call_grant`` setting: ``mode`` one of ``GRANT_MODES``; ``hours`` for the ``hours`` mode."""

    mode: str = "end_of_day"
    hours: int = DEFAULT_GRANT_HOURS


def valid_grant_hours(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_GRANT_HOURS


async def call_grant(session: AsyncSession) -> CallGrant:
    row = await session.get(Setting, GRANT_SETTING)
    value = row.value if row is not None and isinstance(row.value, dict) else {}
    mode, hours = value.get("mode"), value.get("hours")
    return CallGrant(mode if isinstance(mode, str) and mode in GRANT_MODES else CallGrant.mode,
                     hours if isinstance(hours, int) and valid_grant_hours(hours) else DEFAULT_GRANT_HOURS)


def day_zone(session: AsyncSession) -> tzinfo:
    """The server's time zone, as the application gave it to the database's sessions (UTC by default)."""
    zone = session.info.get(DAY_ZONE)
    return zone if isinstance(zone, tzinfo) else UTC


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


def grant_cutoff(grant: CallGrant, now: datetime, zone: tzinfo) -> datetime | None:
    """The oldest call grant still valid at ``now``: one given today (in ``zone``) until the end of
    the day, one given in the last ``hours`` hours; None when calls grant nothing."""
    if grant.mode == "off":
        return None
    if grant.mode == "hours":
        return now - timedelta(hours=grant.hours)
    return datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)


def require_admin(user: User) -> None:
    if not is_admin(user):
        raise Forbidden("only an administrator may do this")


def require_staff(user: User) -> None:
    if not is_staff(user):
        raise Forbidden("only a manager or an administrator may do this")


# --- granted by work: the calls that rang a user, the conversations assigned to them ----------------

async def _cutoff(session: AsyncSession) -> datetime | None:
    return grant_cutoff(await call_grant(session), utcnow(), day_zone(session))


Ids = Select[Any]  # a query of ids (of clients, or of leads)


def _granted(user: User, cutoff: datetime | None, call_column: InstrumentedAttribute[int | None],
             chat_column: InstrumentedAttribute[int | None]) -> list[Ids]:
    """The ids (of clients, or of leads) granted to ``user``: by their assigned conversations, and by
    the calls that rang them since ``cutoff`` (an indexed range of their own grants)."""
    found: list[Ids] = [
        select(chat_column).where(Conversation.assignee_id == user.id, chat_column.is_not(None))]
    if cutoff is not None:
        found.append(select(call_column).select_from(AccessGrant).join(Call, Call.id == AccessGrant.call_id)
                     .where(AccessGrant.user_id == user.id, AccessGrant.granted_at >= cutoff,
                            call_column.is_not(None)))
    return found


def _granted_clients(user: User, cutoff: datetime | None) -> list[Ids]:
    return _granted(user, cutoff, Call.client_id, Conversation.client_id)


def _granted_leads(user: User, cutoff: datetime | None) -> list[Ids]:
    return _granted(user, cutoff, Call.lead_id, Conversation.lead_id)


def _in_any(column: Any, sets: list[Ids]) -> ColumnElement[bool]:
    return or_(*(column.in_(found) for found in sets))


_OPEN_STAGES = select(Stage.id).where(Stage.kind == "active")


async def granted_people(session: AsyncSession, user: User) -> tuple[set[int], set[int]]:
    """The ids of the clients and of the leads granted to ``user`` now (see the module's docstring)."""
    cutoff = await _cutoff(session)
    clients: set[int] = set()
    leads: set[int] = set()
    for into, sets in ((clients, _granted_clients(user, cutoff)), (leads, _granted_leads(user, cutoff))):
        for found in sets:
            into.update(i for i in (await session.scalars(found)).all() if i is not None)
    return clients, leads


async def _any_row(session: AsyncSession, queries: list[Ids]) -> bool:
    for query in queries:
        if await session.scalar(query.limit(1)) is not None:
            return True
    return False


async def client_granted(session: AsyncSession, user: User, client_id: int | None) -> bool:
    if client_id is None:
        return False
    chats, *calls = _granted_clients(user, await _cutoff(session))
    return await _any_row(session, [chats.where(Conversation.client_id == client_id),
                                    *(c.where(Call.client_id == client_id) for c in calls)])


async def lead_granted(session: AsyncSession, user: User, lead_id: int | None) -> bool:
    if lead_id is None:
        return False
    chats, *calls = _granted_leads(user, await _cutoff(session))
    return await _any_row(session, [chats.where(Conversation.lead_id == lead_id),
                                    *(c.where(Call.lead_id == lead_id) for c in calls)])


# --- SQL filters for lists -------------------------------------------------------------------------

async def clients_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    own_deal = select(Deal.id).where(Deal.client_id == Client.id, Deal.responsible_id == user.id).exists()
    granted = _in_any(Client.id, _granted_clients(user, await _cutoff(session)))
    return or_(Client.manager_id == user.id, own_deal, granted)


async def leads_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    granted = _in_any(Lead.id, _granted_leads(user, await _cutoff(session)))
    return or_(Lead.manager_id == user.id, Lead.manager_id.is_(None), granted)


async def deals_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if await sees_all(session, user):
        return true()
    cutoff = await _cutoff(session)
    granted = and_(Deal.stage_id.in_(_OPEN_STAGES), or_(
        _in_any(Deal.client_id, _granted_clients(user, cutoff)),
        _in_any(Deal.lead_id, _granted_leads(user, cutoff))))
    return or_(Deal.responsible_id == user.id, granted)


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
    return own is not None or await client_granted(session, user, client.id)


async def can_see_lead(session: AsyncSession, user: User, lead: Lead) -> bool:
    return lead_rule(user, lead.manager_id, False) or await sees_all(session, user) \
        or await lead_granted(session, user, lead.id)


async def can_see_deal(session: AsyncSession, user: User, deal: Deal) -> bool:
    if deal_rule(user, deal.responsible_id, False) or await sees_all(session, user):
        return True
    if deal.client_id is None and deal.lead_id is None:
        return False
    if await session.scalar(select(Stage.kind).where(Stage.id == deal.stage_id)) != "active":
        return False
    return (await client_granted(session, user, deal.client_id)
            or await lead_granted(session, user, deal.lead_id))


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


# --- writing the calls' grants ---------------------------------------------------------------------

def _reached(call: Call) -> set[int]:
    """The users this flush adds to the call: newly rung, or its new answering agent."""
    state = inspect(call)
    rung = state.attrs.rung_user_ids.history
    before = {int(u) for u in (rung.deleted[0] or [])} if rung.deleted else set()
    reached = {int(u) for u in (rung.added[0] or [])} - before if rung.added else set()
    agent = state.attrs.agent_id.history
    if agent.added and agent.added[0] is not None:
        reached.add(int(agent.added[0]))
    return reached


@event.listens_for(Session, "before_flush")
def _grant_calls(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    """Whoever a call rings or whoever answers it gets its grant, in the same flush as the call's row
    (through the relationship, so a call inserted by this flush gets its id first)."""
    calls = [obj for obj in (*session.new, *session.dirty) if isinstance(obj, Call)]
    now = utcnow()
    for call in calls:
        for user_id in sorted(_reached(call)):
            session.add(AccessGrant(user_id=user_id, call=call, granted_at=now))


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
