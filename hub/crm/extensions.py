"""The phone extensions that ring the hub's users: what a PBX adapter needs to tell agents' phones
from the outside world (the composition root feeds them to the AMI tracker)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm.models import User, UserExtension


async def all_extensions(session: AsyncSession) -> set[str]:
    """Every extension of an active user (one query)."""
    rows = await session.scalars(
        select(UserExtension.extension).join(User, User.id == UserExtension.user_id)
        .where(User.active.is_(True)))
    return set(rows)


async def extensions_of(session: AsyncSession, user_id: int) -> list[str]:
    """The user's extensions, in a stable order (the first one places click-to-call)."""
    rows = await session.scalars(
        select(UserExtension.extension).where(UserExtension.user_id == user_id)
        .order_by(UserExtension.extension))
    return list(rows)
