"""Who takes new work when its responsible is busy or away: a free agent, round-robin (issue 12).

The setting ``route_to_free_agent`` (off by default; an administrator turns it on with the access
settings) sends a missed call's callback task, and a new conversation with an unknown person, to a
free agent of the group when the responsible user is not free.

- **The group**: the active users with role ``agent`` who have an extension (there are no user groups
  in the model). Managers and administrators are not in it: they keep work that is theirs, and are
  never handed other people's.
- **Free**: the user's presence (``hub.crm.presence.PresenceBoard``: their busiest phone) is ``free``.
  Busy is ``ringing``/``on_call``; offline is ``unavailable``/``dnd``; an inactive user is never free.
  A responsible with no extension has no presence (the hub cannot tell whether they are away): they
  keep the work.
- **Round-robin**: among the free agents, the one with the smallest id greater than the last one
  this routing chose (wrapping around); the last one is the ``settings`` row
  ``route_to_free_agent.last`` (``{"user_id": …}``), so the rotation survives a restart and is shared
  by calls and chats. On PostgreSQL the row is locked until the unit of work commits: two
  concurrent assignments never take the same turn.
- **Nobody free**: the responsible stays (``None`` when there was none).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.models import Setting, User, UserExtension
from hub.crm.ports import PresenceState

SETTING = "route_to_free_agent"  # {"enabled": bool}
ROTATION = "route_to_free_agent.last"  # {"user_id": the agent this routing chose last}
GROUP_ROLE = "agent"


class Board(Protocol):
    """What routing reads of ``hub.crm.presence.PresenceBoard``."""

    def user_state(self, extensions: list[str]) -> tuple[str | None, PresenceState]: ...


async def enabled(session: AsyncSession) -> bool:
    """Whether ``route_to_free_agent`` is on."""
    row = await session.get(Setting, SETTING)
    return bool(row is not None and (row.value or {}).get("enabled"))


async def set_enabled(session: AsyncSession, value: bool) -> None:
    row = await session.get(Setting, SETTING)
    if row is None:
        session.add(Setting(key=SETTING, value={"enabled": value}))
    else:
        row.value = {**(row.value or {}), "enabled": value}
    await session.flush()


async def _extensions(session: AsyncSession, user_id: int) -> tuple[bool, list[str]]:
    """(active, extensions) of one user."""
    active = await session.scalar(select(User.active).where(User.id == user_id))
    if not active:
        return False, []
    rows = await session.scalars(select(UserExtension.extension).where(UserExtension.user_id == user_id)
                                 .order_by(UserExtension.extension))
    return True, list(rows.all())


async def _free_agents(session: AsyncSession, board: Board) -> list[int]:
    """The ids of the group's agents who are free now, ascending."""
    rows = await session.execute(
        select(User.id, UserExtension.extension).join(UserExtension, UserExtension.user_id == User.id)
        .where(User.active.is_(True), User.role == GROUP_ROLE).order_by(User.id, UserExtension.extension))
    phones: dict[int, list[str]] = {}
    for user_id, extension in rows:
        phones.setdefault(int(user_id), []).append(str(extension))
    return [user_id for user_id, extensions in phones.items() if board.user_state(extensions)[1] == "free"]


async def _last_turn(session: AsyncSession) -> int | None:
    """The agent chosen last, its row locked (PostgreSQL) until the unit of work commits; the row
    is made when there is none (concurrently made: nothing happens)."""
    table = Setting.__table__
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(table).values(key=ROTATION, value={"user_id": None})
                          .on_conflict_do_nothing(index_elements=[table.c.key]))
    value: Any = await session.scalar(select(Setting.value).where(Setting.key == ROTATION).with_for_update())
    last = (value or {}).get("user_id") if isinstance(value, dict) else None
    return last if isinstance(last, int) and not isinstance(last, bool) else None


async def _take_turn(session: AsyncSession, free: list[int]) -> int:
    last = await _last_turn(session)
    chosen = next((user_id for user_id in free if last is None or user_id > last), free[0])
    await session.execute(update(Setting).where(Setting.key == ROTATION).values(value={"user_id": chosen}),
                          execution_options={"synchronize_session": False})
    return chosen


async def free_agent(session: AsyncSession, board: Board | None, *, responsible_id: int | None) -> int | None:
    """Who takes a new piece of work whose responsible is ``responsible_id`` (None: nobody's).

    ``responsible_id`` when routing is off, when there is no board (no telephony), when the
    responsible is free or has no extension; else the next free agent of the group, round-robin
    (the turn is stored: call it inside the unit of work that assigns the work); when nobody is
    free, ``responsible_id``.
    """
    if board is None or not await enabled(session):
        return responsible_id
    if responsible_id is not None:
        active, extensions = await _extensions(session, responsible_id)
        if active and (not extensions or board.user_state(extensions)[1] == "free"):
            return responsible_id
    free = await _free_agents(session, board)
    if not free:
        return responsible_id
    return await _take_turn(session, free)


async def assignee_for_new_chat(session: AsyncSession, board: Board | None,
                                responsible_id: int | None) -> int | None:
    """The user a new conversation with an unknown person (and the lead made for them) goes to.

    Call it in the messaging intake's unit of work that creates the conversation, with
    ``responsible_id`` the user it would go to without routing (``None``: unassigned, Unsorted) and
    ``board`` the composition root's presence board (``None`` without telephony). It returns
    ``responsible_id`` unless ``route_to_free_agent`` is on and that user is busy or offline (or
    there is none) and an agent is free: then that agent (round-robin, shared with the callbacks).
    It may write the rotation row (locked on PostgreSQL until the commit) and notifies nobody: the
    caller assigns and announces as it does for ``responsible_id``.
    """
    return await free_agent(session, board, responsible_id=responsible_id)
