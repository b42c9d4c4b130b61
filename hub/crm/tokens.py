"""Sessions and API tokens: issued at login, looked up on every request, listed, revoked, expired.

Only the SHA-256 of a token or session secret is stored (``AuthToken``). A password change ends a
user's other tokens (``hub.crm.users``); the caller's own token is the hash in ``CURRENT_TOKEN``,
which the web layer sets for each request.
"""

from __future__ import annotations

import hashlib
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from hub.crm import access
from hub.crm.errors import NotFound
from hub.crm.models import AuthToken, User, utcnow
from hub.crm.validate import Fields, iso
from hub.db import Prepared

CURRENT_TOKEN: ContextVar[str | None] = ContextVar("crmhub_current_token", default=None)
LAST_USED_EVERY = timedelta(minutes=5)  # how stale a token's last_used_at may get (one write then)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


# Every authenticated request runs this: one indexed query (token hash → its active user), no ORM
# query, no session, no transaction (see decisions.md, "The request's token is looked up ...").
# The password hash stays out of the request's user.
_USER_COLUMNS = [c for c in User.__table__.c if c.key != "password_hash"]
_TOKEN = AuthToken.__table__
_LOOKUP = Prepared(
    select(*_USER_COLUMNS, _TOKEN.c.csrf_token, _TOKEN.c.expires_at, _TOKEN.c.id, _TOKEN.c.last_used_at)
    .join(_TOKEN, _TOKEN.c.user_id == User.__table__.c.id)
    .where(_TOKEN.c.token_hash == bindparam("token_hash"), _TOKEN.c.kind == bindparam("kind"),
           User.__table__.c.active.is_(True))
)
_N_USER = len(_USER_COLUMNS)


@dataclass(frozen=True, slots=True)
class Holder:
    """Whose a live token is: the user (detached, without the password hash), the session's CSRF
    token, and whether its ``last_used_at`` is stale enough to be written (``touch``)."""

    user: User
    csrf_token: str
    token_id: int
    stale: bool


async def holder(conn: AsyncConnection, token_hash: str, kind: str) -> Holder | None:
    """The active user of a live token of this kind, else None."""
    rows = await _LOOKUP.all(conn, token_hash=token_hash, kind=kind)
    if not rows:
        return None
    row = rows[0]
    csrf_token, expires_at, token_id, last_used_at = row[_N_USER:]
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        return None
    user = User(**{c.key: value for c, value in zip(_USER_COLUMNS, row, strict=False)})
    make_transient_to_detached(user)  # like a user loaded by a closed session: no lazy loads
    return Holder(user, csrf_token, token_id, last_used_at is None or last_used_at <= now - LAST_USED_EVERY)


async def touch(session: AsyncSession, token_id: int, now: datetime | None = None) -> None:
    stmt = update(AuthToken).where(AuthToken.id == token_id).values(last_used_at=now or utcnow())
    await session.execute(stmt, execution_options={"synchronize_session": False})


async def issue(session: AsyncSession, user: User, kind: str, expires_in: timedelta,
                name: str = "") -> tuple[str, AuthToken]:
    """A new session (with its CSRF token) or API token: → the secret (shown once) and its row."""
    raw = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32) if kind == "session" else ""
    now = utcnow()
    token = AuthToken(token_hash=hash_token(raw), user_id=user.id, kind=kind, csrf_token=csrf, name=name,
                      created_at=now, expires_at=now + expires_in)
    await purge_expired_tokens(session, user.id)  # tidy this user's expired ones while we are here
    session.add(token)
    await session.flush()
    return raw, token


async def revoke_by_hash(session: AsyncSession, token_hash: str) -> None:
    """End the session or token with this hash (a logout; the caller's own bearer token)."""
    await session.execute(delete(AuthToken).where(AuthToken.token_hash == token_hash),
                          execution_options={"synchronize_session": False})


async def end_tokens(session: AsyncSession, user_id: int, *, keep: str | None = None) -> None:
    """End every session and API token of the user, except the one whose hash is ``keep``."""
    stmt = delete(AuthToken).where(AuthToken.user_id == user_id)
    if keep:
        stmt = stmt.where(AuthToken.token_hash != keep)
    await session.execute(stmt, execution_options={"synchronize_session": False})


async def purge_expired_tokens(session: AsyncSession, user_id: int | None = None) -> None:
    stmt = delete(AuthToken).where(AuthToken.expires_at <= utcnow())
    if user_id is not None:
        stmt = stmt.where(AuthToken.user_id == user_id)
    await session.execute(stmt, execution_options={"synchronize_session": False})


def token_dict(token: AuthToken, current: str | None = None) -> dict[str, Any]:
    return {"id": token.id, "kind": token.kind, "name": token.name, "user_id": token.user_id,
            "created_at": iso(token.created_at), "expires_at": iso(token.expires_at),
            "last_used_at": iso(token.last_used_at), "current": token.token_hash == current}


async def list_tokens(session: AsyncSession, actor: User, user_id: Any = None) -> list[dict[str, Any]]:
    """The live sessions and API tokens of the actor, or (for an administrator) of another user."""
    if user_id is None or user_id == actor.id:
        user_id = actor.id
    else:
        access.require_admin(actor)
        if not _an_id(user_id) or await session.get(User, user_id) is None:
            raise NotFound("user not found")
    rows = (await session.scalars(
        select(AuthToken).where(AuthToken.user_id == user_id)
        .where((AuthToken.expires_at.is_(None)) | (AuthToken.expires_at > utcnow()))
        .order_by(AuthToken.id)
    )).all()
    current = CURRENT_TOKEN.get()
    return [token_dict(t, current) for t in rows]


def _an_id(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 < value < 2**62


async def revoke_token(session: AsyncSession, actor: User, token_id: Any) -> None:
    """End one session or token: one's own, or anybody's for an administrator (else not found)."""
    if not _an_id(token_id):
        raise NotFound("token not found")
    token = await session.get(AuthToken, token_id)
    if token is None or (token.user_id != actor.id and not access.is_admin(actor)):
        raise NotFound("token not found")
    await session.delete(token)
    await session.flush()


def token_name(data: Any) -> str:
    """The optional ``name`` of a new API token."""
    v = Fields(data)
    name = v.text("name", max_len=100, default="")
    v.check()
    return str(name or "")

