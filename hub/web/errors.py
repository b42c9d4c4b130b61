"""Errors as JSON, request bodies and query parameters.

Every failure under ``/api/`` answers ``{"error": {"code", "message", "fields"}}``. Bad input is
always a 4xx; only a bug is a 500, and a bug is logged.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.exc import IntegrityError
from yarl import URL

from hub.crm.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    OriginateRefused,
    TelephonyUnavailable,
    ValidationError,
)
from hub.crm.validate import clean_text, parse_datetime
from hub.web import i18n
from hub.web.answer import json_answer
from hub.web.i18n import N_
from hub.web.keys import SESSION, USER
from hub.web.views.common import page_context, safe_next

log = logging.getLogger(__name__)

STATUS = {ValidationError: 422, NotFound: 404, Forbidden: 403, Conflict: 409, TelephonyUnavailable: 503,
          OriginateRefused: 502}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "unavailable",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(DomainError):
    """The request itself cannot be read (malformed JSON, bad encoding): 400."""

    code = "bad_request"


class Unauthorized(DomainError):
    code = "unauthorized"


STATUS[BadRequest] = 400
STATUS[Unauthorized] = 401


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None,
                   extra: dict[str, Any] | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "fields": fields or {}, **(extra or {})}}
    return json_answer(body, status, headers)


# A card one may not open answers 404 as if it did not exist; the page says so in the reader's
# language (never the core's English detail) and leads back to the section's list.
NOT_FOUND_SECTIONS = (
    ("/clients/", N_("There is no such client, or it is not yours to open."), "/clients", N_("All clients")),
    ("/leads/", N_("There is no such lead, or it is not yours to open."), "/leads", N_("All leads")),
    ("/deals/", N_("There is no such deal, or it is not yours to open."), "/deals", N_("All deals")),
    ("/tasks/", N_("There is no such task, or it is not yours to open."), "/tasks", N_("All tasks")),
    ("/calls/", N_("There is no such call, or it is not yours to open."), "/calls", N_("All calls")),
    ("/inbox/", N_("There is no such conversation, or it is not yours to open."), "/inbox", N_("Inbox")),
)
NOT_FOUND_TEXT = N_("There is no such page, or it is not yours to open.")


def _not_found(request: web.Request) -> dict[str, Any]:
    """What a 404 page says, where it leads back, and the page the reader came from (same site)."""
    text, section, section_label = NOT_FOUND_TEXT, None, None
    for prefix, message, path, label in NOT_FOUND_SECTIONS:
        if request.path.startswith(prefix):
            text, section, section_label = message, path, label
            break
    referer = URL(request.headers.get("Referer", ""))
    came_from = safe_next(referer.path_qs, "") if referer.host == request.url.host else ""
    return {"not_found_text": text, "section_url": section, "section_label": section_label,
            "back_url": came_from if came_from and came_from != request.path_qs else None}


async def _chrome(request: web.Request) -> dict[str, Any]:
    """The page's header and menu for a signed-in reader (nothing for anybody else)."""
    if USER not in request or SESSION not in request:
        return {}
    try:
        return await page_context(request, request[USER])
    except Exception:  # the error page still shows, without the menu
        log.warning("no page chrome for the error page of %s", request.path, exc_info=True)
        return {}


async def html_error(request: web.Request, status: int, detail: str,
                     headers: dict[str, str] | None = None) -> web.Response:
    """An error page for the browser, in the reader's language (``error.html``), with the menu when
    the reader is signed in."""
    try:
        context = {**i18n.context(request), "status": status, "detail": detail,
                   "csrf_token": request[SESSION].csrf_token if SESSION in request else "",
                   **(await _chrome(request)), **(_not_found(request) if status == 404 else {})}
        response = aiohttp_jinja2.render_template("error.html", request, context, status=status)
    except Exception:  # no template engine (a bare test app): still an answer, not a 500
        response = web.Response(status=status, text=f"{status}: {detail}")
    response.headers.update(headers or {})
    return response


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        # a subclass (DuplicateFound is a Conflict) answers as its nearest mapped class
        status = next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), 400)
        if not is_api(request):
            return await html_error(request, status, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, exc.code, exc.message, exc.fields, headers, getattr(exc, "extra", None))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if not is_api(request):
            return await html_error(request, exc.status, exc.reason, headers={
                k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")})
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return error_response(exc.status, HTTP_CODES.get(exc.status, "error"), message,
                              headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except IntegrityError:
        # A service should have said Conflict; the database caught it instead. Still not a 500.
        log.warning("integrity error on %s %s", request.method, request.path, exc_info=True)
        return error_response(409, Conflict.code, "conflicts with existing data")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if is_api(request):
            return error_response(500, "internal", "internal server error")
        return web.Response(status=500, text="Внутренняя ошибка сервера / Internal server error")


# --- bodies ----------------------------------------------------------------------------------------

async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; 400 when it is not JSON or nested deeper than ``MAX_DEPTH``, 422
    when it is not an object or holds a value nothing downstream can take (``json_problems``)."""
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationError({"body": "must be a JSON object"})
    problems = json_problems(data)
    if problems:
        raise ValidationError(problems)
    return data


MAX_DEPTH = 32
INT64 = 2**63


def json_problems(value: Any) -> dict[str, str]:
    """The values of a parsed JSON document no field can hold, by path (``phones.0``): a lone UTF-16
    surrogate (``\\ud800``: no UTF-8 can store it) or a control character other than tab and line
    breaks in a string or key, an integer beyond 64 bits, a number that is not finite. Nesting deeper
    than ``MAX_DEPTH`` is a ``BadRequest``."""
    problems: dict[str, str] = {}
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        reason = None
        if isinstance(item, str):
            reason = _text_problem(item)
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            reason = "is beyond 64 bits" if not -INT64 <= item < INT64 else None
        elif isinstance(item, float):
            reason = None if math.isfinite(item) else "must be a finite number"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _text_problem(key):  # the key itself cannot name the field: its parent does
                    problems.setdefault(path or "body", "has a key that is not valid text")
                else:
                    stack.append((f"{path}.{key}" if path else key, child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{path}.{index}" if path else str(index), child, depth + 1)
                         for index, child in enumerate(item))
        if reason:
            problems.setdefault(path or "body", reason)
    return problems


_BAD_TEXT = re.compile("[\ud800-\udfff]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text_problem(text: str) -> str | None:
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if 0xD800 <= ord(found.group()) <= 0xDFFF:
        return "is not valid text (a lone UTF-16 surrogate)"
    return "must not contain control characters"


async def optional_json_body(request: web.Request) -> dict[str, Any]:
    """Like ``json_body``, but an empty body is an empty object."""
    if not (await request.read()).strip():
        return {}
    return await json_body(request)


# --- query parameters ------------------------------------------------------------------------------

def query_text(request: web.Request, name: str, *, max_len: int = 300) -> str | None:
    value = request.query.get(name)
    if value is None or value.strip() == "":
        return None
    reason = clean_text(value) or (f"must be at most {max_len} characters" if len(value) > max_len else None)
    if reason:
        raise ValidationError({name: reason})
    return value.strip()


def query_int(request: web.Request, name: str, *, minimum: int | None = 1,
              maximum: int = 2**62) -> int | None:
    value = query_text(request, name, max_len=30)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: "must be an integer"}) from None
    if (minimum is not None and number < minimum) or number > maximum:
        raise ValidationError({name: f"must be between {minimum} and {maximum}"})
    return number


def query_bool(request: web.Request, name: str) -> bool | None:
    value = query_text(request, name, max_len=10)
    if value is None:
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValidationError({name: "must be true or false"})


def query_datetime(request: web.Request, name: str) -> datetime | None:
    value = query_text(request, name, max_len=40)
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValidationError({name: "must be an ISO 8601 date and time"})
    return parsed


def query_list(request: web.Request, name: str, options: tuple[str, ...] | None = None) -> list[str] | None:
    """A comma-separated list (``kind=call,sms``), each item one of ``options`` when given."""
    value = query_text(request, name, max_len=1000)
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if options is not None:
        bad = [item for item in items if item not in options]
        if bad:
            raise ValidationError({name: f"unknown value {bad[0]!r}; expected any of: {', '.join(options)}"})
    return items or None


def query_choice(request: web.Request, name: str, options: tuple[str, ...]) -> str | None:
    value = query_text(request, name, max_len=50)
    if value is not None and value not in options:
        raise ValidationError({name: f"must be one of: {', '.join(options)}"})
    return value


def path_id(request: web.Request, name: str = "id") -> int:
    """An id from the URL; anything that is not one cannot name an object: 404."""
    text = request.match_info[name]
    # isdecimal, not isdigit: "²".isdigit() is true and int() refuses it
    if not (text.isascii() and text.isdecimal()) or len(text) > 18 or int(text) < 1:
        raise NotFound("not found")
    return int(text)
