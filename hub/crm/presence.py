"""Who is free: each user's phone state, live (the core side of presence).

Presence is no database fact: ``PresenceBoard`` keeps, in memory, the last state the PBX adapter gave
for each extension (``phones_changed``, the ``PresencePort``) and which active user owns which
extension (``set_owners``, re-read by the composition root with the extensions). A user's state is
their busiest extension's: ``on_call`` > ``ringing`` > ``dnd`` > ``free`` > ``unavailable`` (busy on
one phone is busy; "do not disturb" on one phone is not "free"). When a user's state changes,
``presence.changed`` ``{user_id, extension, state}`` (``extension``: the one that decides it) goes to
every logged-in user's stream. A hub restart or an AMI reconnect rebuilds it all from the PBX's
listing; while the PBX is not connected every phone is ``unavailable`` (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.models import User, UserExtension
from hub.crm.ports import PresenceState

EVENT = "presence.changed"
STATES: tuple[PresenceState, ...] = ("on_call", "ringing", "dnd", "free", "unavailable")  # busiest first
_RANK: dict[str, int] = {state: len(STATES) - i for i, state in enumerate(STATES)}

# ``hub.bus.Bus.publish`` (the core does not import the bus): name, data, users=, scope=
Publish = Callable[..., object]


class PresenceItem(TypedDict):
    user_id: int
    name: str
    extension: str
    state: PresenceState


def busiest(states: Mapping[str, PresenceState]) -> tuple[str | None, PresenceState]:
    """The deciding (extension, state) of one user's phones; ties: the smallest extension."""
    if not states:
        return None, "unavailable"
    extension = min(states, key=lambda e: (-_RANK[states[e]], e))
    return extension, states[extension]


class PresenceBoard:
    """The phones' states and their owners, in memory; publishes each user's change."""

    def __init__(self, publish: Publish | None = None) -> None:
        self._publish = publish
        self._phones: dict[str, PresenceState] = {}  # extension → its state (absent: unavailable)
        self._owners: dict[str, int] = {}  # extension → active user id
        self._users: dict[int, tuple[str | None, PresenceState]] = {}  # user → deciding (extension, state)

    # -------------------------------------------------------------- the PBX adapter's port
    def phones_changed(self, states: dict[str, PresenceState], *, complete: bool = False) -> None:
        if complete:
            self._phones = {e: s for e, s in states.items() if s != "unavailable"}
        else:
            for extension, state in states.items():
                if state == "unavailable":
                    self._phones.pop(extension, None)
                else:
                    self._phones[extension] = state
        self._recompute()

    # -------------------------------------------------------------- the users
    def set_owners(self, owners: Mapping[str, int]) -> None:
        """extension → user id, of active users (a changed mapping publishes what it changes)."""
        if dict(owners) != self._owners:
            self._owners = dict(owners)
            self._recompute()

    def phone_state(self, extension: str) -> PresenceState:
        return self._phones.get(extension, "unavailable")

    def user_state(self, extensions: list[str]) -> tuple[str | None, PresenceState]:
        return busiest({e: self.phone_state(e) for e in extensions})

    def _recompute(self) -> None:
        by_user: dict[int, dict[str, PresenceState]] = {}
        for extension, user_id in self._owners.items():
            by_user.setdefault(user_id, {})[extension] = self.phone_state(extension)
        now = {user_id: busiest(states) for user_id, states in by_user.items()}
        for user_id, (deciding, state) in sorted(now.items()):
            _, before = self._users.get(user_id, (None, "unavailable"))
            if state != before and self._publish is not None:
                self._publish(EVENT, {"user_id": user_id, "extension": deciding, "state": state},
                              scope={"everyone": True})
        self._users = now


async def owners(session: AsyncSession) -> dict[str, int]:
    """extension → user id, for every active user's extension (one query)."""
    rows = await session.execute(
        select(UserExtension.extension, UserExtension.user_id)
        .join(User, User.id == UserExtension.user_id).where(User.active.is_(True)))
    extensions: list[tuple[str, int]] = [(row[0], row[1]) for row in rows]
    return dict(extensions)


async def presence_items(session: AsyncSession, board: PresenceBoard | None) -> list[PresenceItem]:
    """Every active user with an extension, by name, with their state (no board, that is no
    telephony: ``unavailable``)."""
    found: dict[int, tuple[str, list[str]]] = {}
    rows = await session.execute(
        select(User.id, User.name, UserExtension.extension)
        .join(UserExtension, UserExtension.user_id == User.id)
        .where(User.active.is_(True)).order_by(User.name, User.id, UserExtension.extension))
    for row in rows:
        found.setdefault(row[0], (row[1], []))[1].append(row[2])
    items: list[PresenceItem] = []
    for user_id, (name, extensions) in found.items():
        deciding: str | None = extensions[0]
        state: PresenceState = "unavailable"
        if board is not None:
            deciding, state = board.user_state(extensions)
        items.append({"user_id": user_id, "name": name, "extension": deciding or extensions[0],
                      "state": state})
    return items
