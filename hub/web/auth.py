"""Who is calling: bearer tokens for programs, a session cookie (with a CSRF token) for the browser.

Only the SHA-256 of a token or session secret is stored (``AuthToken``). A request authenticated by
the cookie that changes something must carry the session's CSRF token (form field ``csrf_token``
or header ``X-CSRF-Token``); a bearer request needs none, since no browser sends it by itself.

Both expire: a session after ``[server] session_days``, an API token after ``[server] token_days``.
A caller lists their sessions and tokens (``GET /api/v1/auth/tokens``) and revokes one by id or the
current bearer token (``DELETE /api/v1/auth/token``); a password change ends the others
(``hub.crm.users``), which learns the request's own token from ``tokens.CURRENT_TOKEN``.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from hub.crm import audit, notifications, tokens, users
from hub.crm.errors import Forbidden
from hub.crm.models import AuthToken, User
from hub.crm.validate import Fields
from hub.web import i18n
from hub.web.answer import json_answer
from hub.web.errors import Handler, Unauthorized, json_body, path_id, query_int
from hub.web.i18n import N_
from hub.web.keys import CONFIG, DB, LOGIN_LIMITER, SESSION, USER, Session
from hub.web.ratelimit import Lockout, client_address
from hub.web.routing import Param, Routes, is_public, mark_public, ref

SESSION_COOKIE = "crmhub_session"
LOGIN_COOKIE = "crmhub_login"  # guards the login form itself against cross-site posts
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

routes = Routes("auth")


async def _lookup(request: web.Request, token_hash: str, kind: str) -> tokens.Holder | None:
    async with request.app[DB].read_connection() as conn:
        found = await tokens.holder(conn, token_hash, kind)
    if found is not None and found.stale:
        async with request.app[DB].transaction() as s:
            await tokens.touch(s, found.token_id)
    return found


def _bearer(request: web.Request) -> str | None:
    """The bearer token, if any. Other schemes are not ours (a proxy's Basic auth): ignored."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    if not value.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return value.strip()


async def _csrf_from(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    public = is_public(request.match_info.handler)
    bearer = _bearer(request)
    if bearer is not None:
        token_hash = tokens.hash_token(bearer)
        found = await _lookup(request, token_hash, "api")
        if found is not None:
            request[USER] = found.user
            request[SESSION] = Session("bearer", token_hash)
        elif not public:
            raise Unauthorized("the token is unknown, expired or its user is inactive")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        token_hash = tokens.hash_token(cookie)
        found = await _lookup(request, token_hash, "session")
        if found is not None:
            request[USER], csrf_token = found.user, found.csrf_token
            request[SESSION] = Session("session", token_hash, csrf_token)
            if request.method not in SAFE_METHODS and not public:
                sent = await _csrf_from(request)
                if not sent or not hmac.compare_digest(sent.encode(), csrf_token.encode()):
                    raise Forbidden("the CSRF token is missing or wrong; reload the page")
    if USER not in request and request.path.startswith("/api/") and not public:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    reset = tokens.CURRENT_TOKEN.set(request[SESSION].token_hash if SESSION in request else None)
    remote = audit.REMOTE.set(_client(request))
    try:
        return await handler(request)
    finally:
        audit.REMOTE.reset(remote)
        tokens.CURRENT_TOKEN.reset(reset)


def _client(request: web.Request) -> str:
    """The client's address (behind a trusted proxy: the one it names)."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"),
                          request.app[CONFIG].server.trusted_proxies)


# --- logging in ------------------------------------------------------------------------------------

async def _authenticate(request: web.Request, login: str, password: str) -> User:
    """The active user with these credentials, else Unauthorized (and counted against the limit)."""
    limiter = request.app[LOGIN_LIMITER]
    remote = _client(request)
    wait = limiter.retry_after(remote, login)
    if wait > 0:
        raise web.HTTPTooManyRequests(reason="too many failed logins; try again in a few minutes",
                                      headers={"Retry-After": str(int(wait) + 1)})
    async with request.app[DB].transaction() as s:
        user = await users.authenticate(s, login, password)
        known = user is not None or await users.login_exists(s, login)
        if user is None or not user.active:
            lockouts = limiter.failed(remote, login, known=known)
            audit.record(s, "login_failed", actor_login=login[:64], details={"known": known})
            for lock in lockouts:
                audit.record(s, "login_locked", actor_login=login[:64],
                             details={"lock": lock.kind, "seconds": int(lock.seconds)})
            await _tell_admins(s, [lock for lock in lockouts if lock.kind != "pair"])
    if user is None or not user.active:
        raise Unauthorized("wrong login or password")
    limiter.succeeded(remote, login)
    return user


async def _tell_admins(session: Any, lockouts: list[Lockout]) -> None:
    """A bell item to every active admin when failures lock an account, an address or the unknown
    logins: a burst, not one user's typos (those lock only that login from that address)."""
    if not lockouts:
        return
    admins = await users.active_admin_ids(session)
    for lock in lockouts:
        for admin_id in admins:
            await notifications.notify(
                session, admin_id, kind="login_lockout", title=f"Logins locked ({lock.kind}): {lock.login}",
                text=f"from {lock.remote}, for {int(lock.seconds)} s", link="/settings/users",
                payload={"lock": lock.kind, "login": lock.login, "remote": lock.remote,
                         "minutes": max(1, round(lock.seconds / 60))})


async def _issue(request: web.Request, user: User, kind: str, expires_in: timedelta,
                 name: str = "") -> tuple[str, AuthToken]:
    async with request.app[DB].transaction() as s:
        raw, token = await tokens.issue(s, user, kind, expires_in, name)
        details = {"kind": kind, "name": name} if name else {"kind": kind}
        audit.record(s, "login" if kind == "session" else "token_created", actor=user,
                     target=("token", token.id), details=details)
    return raw, token


TOKEN_REQUEST = {
    "type": "object",
    "required": ["login", "password"],
    "properties": {"login": {"type": "string"}, "password": {"type": "string"},
                   "name": {"type": "string", "description": "what the token is for (shown in the list)"}},
}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
TOKEN_RESPONSE = {
    "type": "object",
    "required": ["token", "user", "id", "expires_at"],
    "properties": {"token": {"type": "string"}, "user": ref("User"), "id": {"type": "integer"},
                   "name": {"type": "string"}, "expires_at": _TIME_OR_NULL},
}
TOKEN_INFO = {
    "type": "object",
    "required": ["id", "kind", "name", "user_id", "created_at", "expires_at", "last_used_at", "current"],
    "properties": {
        "id": {"type": "integer"}, "kind": {"enum": ["api", "session"]}, "name": {"type": "string"},
        "user_id": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
        "expires_at": _TIME_OR_NULL, "last_used_at": _TIME_OR_NULL,
        "current": {"type": "boolean", "description": "the token or session of this request"},
    },
}
TOKEN_LIST = {"type": "object", "required": ["items"],
              "properties": {"items": {"type": "array", "items": TOKEN_INFO}}}


@routes.post("/api/v1/auth/token", "Exchange a login and password for a bearer token "
             "(it expires after [server] token_days)",
             request=TOKEN_REQUEST, response=TOKEN_RESPONSE, errors=(401, 422, 429), public=True)
async def issue_token(request: web.Request) -> web.Response:
    data = await json_body(request)
    v = Fields(data)
    login = v.text("login", required=True, max_len=64)
    password = v.text("password", required=True, max_len=1024)
    v.check()
    name = tokens.token_name({"name": data.get("name")})
    user = await _authenticate(request, login, password)
    days = request.app[CONFIG].server.token_days
    raw, token = await _issue(request, user, "api", timedelta(days=days), name)
    async with request.app[DB].reading() as s:
        user_dict = await users.get_user(s, user, user.id)
    info = tokens.token_dict(token)
    return json_answer({"token": raw, "user": user_dict, "id": info["id"], "name": info["name"],
                        "expires_at": info["expires_at"]})


@routes.delete("/api/v1/auth/token", "Revoke the bearer token of this request (log out a program)",
               status=204, errors=(401,))
async def revoke_current_token(request: web.Request) -> web.Response:
    async with request.app[DB].transaction() as s:
        await tokens.revoke_by_hash(s, request[SESSION].token_hash)
        audit.record(s, "token_revoked", actor=request[USER], details={"current": True})
    return web.Response(status=204)


@routes.get("/api/v1/auth/tokens", "The caller's live API tokens and browser sessions",
            response=TOKEN_LIST, errors=(401, 403, 404, 422),
            params=(Param("user_id", "integer", "another user's (administrators only)"),))
async def list_tokens(request: web.Request) -> web.Response:
    user_id = query_int(request, "user_id")
    async with request.app[DB].reading() as s:
        items = await tokens.list_tokens(s, request[USER], user_id)
    return json_answer({"items": items})


@routes.delete("/api/v1/auth/tokens/{id}", "Revoke one API token or browser session (one's own; "
               "an administrator's: anybody's)", status=204, errors=(401, 404))
async def revoke_token(request: web.Request) -> web.Response:
    token_id = path_id(request)
    async with request.app[DB].transaction() as s:
        await tokens.revoke_token(s, request[USER], token_id)
        audit.record(s, "token_revoked", actor=request[USER], target=("token", token_id))
    return web.Response(status=204)


# --- the browser's session -------------------------------------------------------------------------

def _secure(request: web.Request) -> bool:
    return request.app[CONFIG].server.public_url.lower().startswith("https://")


def _render_login(request: web.Request, *, error: str = "", login: str = "",
                  status: int = 200) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    response = aiohttp_jinja2.render_template(
        "login.html", request,
        {**i18n.context(request), "csrf_token": nonce, "error": error, "login": login,
         "next": _safe_next(request.query.get("next"))},
        status=status)
    response.set_cookie(LOGIN_COOKIE, nonce, path="/login", httponly=True, samesite="Lax",
                        secure=_secure(request), max_age=3600)
    return response


def _safe_next(value: Any) -> str:
    """Only a local path is a place to go after login (no open redirect). No whitespace or control
    character either: the Location header drops a tab or a line break, so ``/\t/evil.example``
    would become ``//evil.example``."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return "/"
    if value.startswith("//") or any(c <= " " or c in "\\\x7f" for c in value):
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


async def login_page(request: web.Request) -> web.StreamResponse:
    if USER in request:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _render_login(request)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    login = form.get("login")
    password = form.get("password")
    nonce = form.get(CSRF_FIELD)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not isinstance(nonce, str) or not cookie or not hmac.compare_digest(nonce.encode(), cookie.encode()):
        return _render_login(request, error=N_("The form has expired, please try again."), status=403)
    if not isinstance(login, str) or not isinstance(password, str) or not login.strip() or not password:
        return _render_login(request, error=N_("Enter your login and password."), status=422)
    login = login.strip()
    try:
        if "\x00" in login + password or len(login) > 64 or len(password) > 1024:
            raise Unauthorized("wrong login or password")
        user = await _authenticate(request, login, password)
    except Unauthorized:
        return _render_login(request, error=N_("Wrong login or password."), login=login, status=401)
    except web.HTTPTooManyRequests:
        return _render_login(request, error=N_("Too many attempts; wait a few minutes."),
                             login=login, status=429)
    days = request.app[CONFIG].server.session_days
    raw, _ = await _issue(request, user, "session", timedelta(days=days))
    response = web.HTTPSeeOther(_safe_next(request.query.get("next")))
    response.set_cookie(SESSION_COOKIE, raw, path="/", httponly=True, samesite="Lax",
                        secure=_secure(request), max_age=days * 86400)
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    if SESSION in request and request[SESSION].kind == "session":
        async with request.app[DB].transaction() as s:
            await tokens.revoke_by_hash(s, request[SESSION].token_hash)
            audit.record(s, "logout", actor=request[USER])
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def register_views(router: web.UrlDispatcher) -> None:
    router.add_get("/login", login_page)
    router.add_post("/login", mark_public(login_submit))
    router.add_post("/logout", logout)

