"""Users of the hub: logins with argon2 password hashes, roles, languages and phone extensions.

Every logged-in user may list and read users (to pick a manager or an assignee); creating and changing
them is for administrators, except that anybody may change their own name, language and password.
Deleting a user deactivates them: their sessions end and their extensions are freed.

Passwords follow a policy (``password_problem``): at least ten characters, not containing the login,
not in the shipped list of common passwords. A password change or reset ends every other session
and API token of that user; changing one's own password needs the current one. The demo users
(``hub.crm.demo``) are made with ``check_policy=False``: their passwords are their logins.

The caller's own token (kept when they change their own password, flagged ``current`` in their
list of tokens) is the SHA-256 in ``CURRENT_TOKEN``, which the web layer sets for each request.
"""

from __future__ import annotations

import re
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crm import access, audit, contact_points, resources
from hub.crm.clients import page_rows, read_points
from hub.crm.common_passwords import COMMON_PASSWORDS
from hub.crm.errors import Conflict, Forbidden, NotFound
from hub.crm.inputs import UserIn, read
from hub.crm.models import LANGUAGES, ROLES, User, UserExtension
from hub.crm.paging import Page
from hub.crm.tokens import CURRENT_TOKEN, end_tokens
from hub.crm.validate import Fields, iso
from hub.serialise import plain

MAX_PASSWORD = 1024
MIN_PASSWORD = 10
_LOGIN = re.compile(r"[\w.@+\-]{1,64}")  # what may log in (logins made before the rule below)
# a new login: Latin letters, digits and . @ + - _ only, so that no look-alike (a Cyrillic «а»,
# full-width letters) can pose as another user; and unique whatever the case («Admin» is «admin»)
_NEW_LOGIN = re.compile(r"[A-Za-z0-9.@+\-_]{1,64}", re.ASCII)
_EXTENSION = re.compile(r"[0-9]{1,32}")  # a phone's number on the PBX: 101, 2045
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anybody has")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Argon2's order: the stored hash first, then the password given."""
    if not password_hash or not isinstance(password, str):
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def authenticate(session: AsyncSession, login: str, password: str) -> User | None:
    """The active user with this login and password, or None (in about the same time either way)."""
    if not isinstance(login, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD \
            or not _LOGIN.fullmatch(login):
        return None
    user = await _by_login(session, login)
    if user is None or not user.active or not user.password_hash:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        await session.flush()
    return user


async def login_exists(session: AsyncSession, login: str) -> bool:
    """Whether somebody has this login (the login limits count unknown logins apart)."""
    if not isinstance(login, str) or not _LOGIN.fullmatch(login):
        return False
    return await session.scalar(select(User.id).where(User.login == login)) is not None


async def _by_login(session: AsyncSession, login: str) -> User | None:
    return (await session.scalars(
        select(User).options(selectinload(User.extensions)).where(User.login == login)
    )).one_or_none()


async def _load(session: AsyncSession, user_id: Any) -> User | None:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < 2**62:
        return None
    return (await session.scalars(
        select(User).options(selectinload(User.extensions)).where(User.id == user_id)
        .execution_options(populate_existing=True)
    )).one_or_none()


async def user_dicts(session: AsyncSession, users: list[User]) -> list[dict[str, Any]]:
    points = await contact_points.of(session, "user_id", [u.id for u in users])
    return [plain(resources.User(
        id=u.id, login=u.login, name=u.name, role=u.role, language=u.language, active=u.active,
        extensions=[e.extension for e in u.extensions], **points[u.id], created_at=iso(u.created_at)))
        for u in users]


async def _dict(session: AsyncSession, user_id: int) -> dict[str, Any]:
    user = await _load(session, user_id)
    assert user is not None
    return (await user_dicts(session, [user]))[0]


def password_problem(password: str, login: str | None) -> str | None:
    """Why this password may not be used by this login, or None (the policy; case-insensitive)."""
    folded = password.casefold()
    if len(password) < MIN_PASSWORD:
        return f"must be at least {MIN_PASSWORD} characters"
    if login and (folded == login.casefold() or (len(login) >= 3 and login.casefold() in folded)):
        return "must not contain the login"
    if folded in COMMON_PASSWORDS or folded.strip() in COMMON_PASSWORDS:
        return "is too common"
    return None


def _password(v: Fields, required: bool, login: str | None = None, check_policy: bool = True) -> str | None:
    value = v.data.get("password")
    if value is None:
        if required and not v.partial:
            v.fail("password", "is required")
        return None
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > MAX_PASSWORD:
        v.fail("password", f"must be a non-empty string of at most {MAX_PASSWORD} characters")
        return None
    if check_policy and (problem := password_problem(value, login)):
        v.fail("password", problem)
        return None
    return value


def _extensions(v: Fields) -> list[str] | None:
    values = v.strings("extensions", max_items=20, max_len=32)
    if values is None:
        return None
    for ext in values:
        if not _EXTENSION.fullmatch(ext):
            v.fail("extensions", f"'{ext}' is not an extension (digits only)")
            return None
    return list(dict.fromkeys(values))


async def _set_extensions(session: AsyncSession, user: User, extensions: list[str]) -> None:
    taken = (await session.execute(
        select(UserExtension.extension, User.login).join(User, User.id == UserExtension.user_id)
        .where(UserExtension.extension.in_(extensions), UserExtension.user_id != user.id)
    )).all() if extensions else []
    if taken:
        ext, login = taken[0]
        raise Conflict(f"extension {ext} belongs to {login}", {"extensions": f"{ext} belongs to {login}"})
    kept = set((await session.scalars(
        select(UserExtension.extension).where(UserExtension.user_id == user.id))).all())
    await session.execute(delete(UserExtension).where(UserExtension.user_id == user.id,
                                                      UserExtension.extension.not_in(extensions)),
                          execution_options={"synchronize_session": False})
    session.add_all(UserExtension(extension=e, user_id=user.id) for e in extensions if e not in kept)
    await session.flush()


def _login(v: Fields, required: bool) -> str | None:
    if not required and not v.has("login"):
        return None
    login = v.text("login", required=required, max_len=64)
    if login and not v.errors.get("login") and not _NEW_LOGIN.fullmatch(login):
        v.fail("login", "may contain only letters, digits and . @ + - _")
    return login or None


async def _ensure_login_free(session: AsyncSession, login: str, user_id: int | None) -> None:
    same = or_(User.login == login, func.lower(User.login) == login.lower())
    other = await session.scalar(select(User.id).where(same, User.id != (user_id or 0)).limit(1))
    if other is not None:
        raise Conflict("this login is taken", {"login": "is taken"})


async def create_or_update_user(session: AsyncSession, login: str, password: str, role: str,
                                name: str | None = None, extensions: list[str] | None = None,
                                language: str | None = None, *,
                                check_policy: bool = True) -> dict[str, Any]:
    """For the command line: create the user or update the one with this login (and reactivate it).

    A new password ends the user's sessions and tokens. ``check_policy=False`` only for the demo
    users, whose passwords are their logins."""
    data: dict[str, Any] = {"login": login, "password": password, "role": role}
    if name is not None:
        data["name"] = name
    if extensions is not None:
        data["extensions"] = extensions
    if language is not None:
        data["language"] = language
    v = Fields(data)
    login_ = _login(v, True)
    password_ = _password(v, True, login_, check_policy)
    role_ = v.choice("role", ROLES, required=True)
    name_ = v.text("name", max_len=200, default=None)
    language_ = v.choice("language", LANGUAGES, default=None)
    extensions_ = _extensions(v)
    v.check()
    assert login_ is not None and password_ is not None
    user = await _by_login(session, login_)
    if user is None:
        await _ensure_login_free(session, login_, None)  # «Admin» when «admin» exists
        user = User(login=login_, name=name_ or login_, role=role_, language=language_ or "ru")
        session.add(user)
    else:
        user.role, user.active = role_, True
        if name_:
            user.name = name_
        if language_:
            user.language = language_
    created = user.id is None
    if not user.password_hash or not verify_password(user.password_hash, password_):
        if user.id is not None:  # a reset: whoever knew the old password is out
            await end_tokens(session, user.id)
            audit.record(session, "password_changed", actor_login="(command line)", target=("user", user.id),
                         details={"reset": True})
        user.password_hash = hash_password(password_)
    await session.flush()
    if extensions_ is not None:
        await _set_extensions(session, user, extensions_)
    result = await _dict(session, user.id)
    audit.record(session, "user_created" if created else "user_updated", actor_login="(command line)",
                 target=("user", user.id), details={"login": user.login, "role": user.role,
                                                     "active": True, "extensions": result["extensions"]})
    return result


async def create_user(session: AsyncSession, actor: User, data: Any, region: str = "RU") -> dict[str, Any]:
    access.require_admin(actor)
    v = Fields(data)
    login = _login(v, True)
    password = _password(v, True, login)
    values = read(v, UserIn)
    extensions = _extensions(v)
    points = read_points(v, region)
    v.check()
    assert login is not None and password is not None
    await _ensure_login_free(session, login, None)
    user = User(login=login, name=values["name"] or login, role=values["role"], language=values["language"],
                password_hash=hash_password(password))
    session.add(user)
    await session.flush()
    if extensions:
        await _set_extensions(session, user, extensions)
    await contact_points.store(session, "user_id", user.id, points)
    result = await _dict(session, user.id)
    audit.record(session, "user_created", actor=actor, target=("user", user.id),
                 details={"login": login, "role": user.role, "extensions": result["extensions"]})
    return result


def _security_facts(user: User, extensions: list[str]) -> dict[str, Any]:
    return {"login": user.login, "role": user.role, "active": user.active, "extensions": extensions}


async def get_user(session: AsyncSession, actor: User, user_id: Any) -> dict[str, Any]:
    user = await _load(session, user_id)
    if user is None:
        raise NotFound("user not found")
    return (await user_dicts(session, [user]))[0]


_SELF_SERVICE = {"name", "language", "password", "current_password"}


async def _active_admins(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)
                                    .where(User.role == "admin", User.active.is_(True))) or 0)


async def update_user(session: AsyncSession, actor: User, user_id: Any, data: Any,
                      region: str = "RU") -> dict[str, Any]:
    user = await _load(session, user_id)
    if user is None:
        raise NotFound("user not found")
    if not access.is_admin(actor):
        if user.id != actor.id or not isinstance(data, dict) or set(data) - _SELF_SERVICE:
            raise Forbidden("only an administrator may do this")
    v = Fields(data, partial=True)
    login = _login(v, False)
    password = _password(v, False, login or user.login)
    if v.data.get("password") is not None and user.id == actor.id:  # one's own: prove it is you
        current = v.data.get("current_password")
        if not isinstance(current, str) or not current:
            v.fail("current_password", "is required")
        elif len(current) > MAX_PASSWORD or not verify_password(user.password_hash, current):
            v.fail("current_password", "is wrong")
    given = read(v, UserIn, skip=("name",))
    role, language = given.get("role"), given.get("language")
    name = v.text("name", required=True, max_len=200, default=None) if v.has("name") else None
    active = v.boolean("active")
    extensions = _extensions(v)
    points = read_points(v, region)
    v.check()
    before = _security_facts(user, (await _dict(session, user.id))["extensions"])
    if login is not None and login != user.login:
        await _ensure_login_free(session, login, user.id)
        user.login = login
    losing_admin = user.role == "admin" and user.active and (
        (role is not None and role != "admin") or active is False)
    if losing_admin and await _active_admins(session) <= 1:
        raise Conflict("the last active administrator cannot be demoted or deactivated")
    if password is not None:
        user.password_hash = hash_password(password)
        # every other session and token ends; one's own current one stays
        await end_tokens(session, user.id, keep=CURRENT_TOKEN.get() if user.id == actor.id else None)
    for attr, value in (("role", role), ("name", name), ("language", language), ("active", active)):
        if value is not None:
            setattr(user, attr, value)
    await session.flush()
    if active is False:
        await _end_sessions(session, user)
    if extensions is not None:
        await _set_extensions(session, user, extensions)
    await contact_points.store(session, "user_id", user.id, points)
    result = await _dict(session, user.id)
    after = _security_facts(user, result["extensions"])
    changed = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
    if changed:
        audit.record(session, "user_updated", actor=actor, target=("user", user.id), details=changed)
    if password is not None:
        audit.record(session, "password_changed", actor=actor, target=("user", user.id),
                     details={"own": user.id == actor.id})
    return result


async def _end_sessions(session: AsyncSession, user: User) -> None:
    await end_tokens(session, user.id)
    await session.execute(delete(UserExtension).where(UserExtension.user_id == user.id),
                          execution_options={"synchronize_session": False})


async def delete_user(session: AsyncSession, actor: User, user_id: Any) -> None:
    """Deactivates: the user's history stays; their tokens are revoked and extensions freed."""
    access.require_admin(actor)
    user = await _load(session, user_id)
    if user is None:
        raise NotFound("user not found")
    if user.role == "admin" and user.active and await _active_admins(session) <= 1:
        raise Conflict("the last active administrator cannot be deactivated")
    user.active = False
    await session.flush()
    await _end_sessions(session, user)
    audit.record(session, "user_deleted", actor=actor, target=("user", user.id),
                 details={"login": user.login})


async def list_users(session: AsyncSession, actor: User, *, cursor: str | None = None,
                     limit: int | None = None, active: bool | None = None) -> Page:
    stmt = select(User).options(selectinload(User.extensions)).execution_options(populate_existing=True)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    rows, next_cursor = await page_rows(session, stmt, User.id, cursor, limit)
    return Page(await user_dicts(session, rows), next_cursor)


async def active_admin_ids(session: AsyncSession) -> list[int]:
    rows = await session.scalars(select(User.id).where(User.role == "admin", User.active.is_(True)))
    return list(rows)
