"""A fake Twilio REST API for the tests and the benchmark: aiohttp on 127.0.0.1, a random port.

It answers what the hub calls, in the shapes of ``tests/fixtures/twilio`` (``Messages_create_201``,
``Messages_error_400_21211``, ``Messages_error_429_20429``), checks HTTP Basic auth, records every
request, and injects faults. It also signs webhook bodies the way Twilio does, so tests can post
signed webhooks to the hub.

Control API::

    fake = FakeTwilio(account_sid, auth_token)
    await fake.start()                    # fake.url → "http://127.0.0.1:PORT" (the hub's [twilio] api_url)
    fake.faults.append(Fault(500))        # the next Messages create answers 500 (one fault per request)
    fake.faults.append(Fault(429, retry_after=7))    # 429 with code 20429 and Retry-After: 7
    fake.faults.append(Fault(400, code=21211))      # invalid 'To' (21610: unsubscribed, 21408 ...)
    fake.faults.append(Fault(delay=5))    # answers 201 after 5 s (longer than the client's timeout)
    fake.next_sids.append("SMcc31…")      # the SID the next created message gets
    fake.created                          # the forms of every create request that got a 201
    fake.requests                         # (method, path, form, headers, at, status) of every request,
                                          # faulted ones too
    fake.add_media(path, data, content_type)  # GET path (Basic auth checked) answers data
    fake.media_url(name)                  # a media URL on the fake (added with add_media)
    sign(token, url, params)              # the X-Twilio-Signature Twilio would send
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.messengers.twilio_simulator import basic_auth_matches, message_resource
from tests.paths import TWILIO_FIXTURES

FIXTURES = TWILIO_FIXTURES
ACCOUNT_SID = "ACf552cc5023d8319aea1181f76f3adcbd"
AUTH_TOKEN = "12345678901234567890123456789012"
SERVICE_SID = "MGc189941acf780de956fe5d1483d7a598"
OUR_NUMBER = "+16282904173"
PUBLIC_URL = "https://crm.example.ru"

ERRORS = {
    20429: "Too Many Requests",
    21211: "Invalid 'To' Phone Number: +792145XXXX",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21610: "Attempt to send to unsubscribed recipient",
    20500: "An internal server error has occurred",
    20003: "Authenticate",
}


@dataclass
class Fault:
    """What the next Messages create request gets instead of a plain 201."""

    status: int = 201
    code: int | None = None
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int = 0  # the status it was answered with (0: not answered yet)


def sign(token: str, url: str, params: dict[str, str] | list[tuple[str, str]]) -> str:
    """The X-Twilio-Signature of a POST to ``url`` with these form fields (twilio's own algorithm)."""
    return str(RequestValidator(token).compute_signature(url, dict(params)))


def fixture_form(name: str) -> bytes:
    """The raw body of a fixture (``inbound_sms_russian`` …), exactly as Twilio sends it."""
    return (FIXTURES / f"{name}.form").read_bytes()


def fixture_signature(name: str) -> str:
    data = json.loads((FIXTURES / "signatures.json").read_text(encoding="utf-8"))
    return str(data["vectors"][name]["x_twilio_signature"])


def fixture_fields(name: str) -> dict[str, str]:
    return dict(parse_qsl(fixture_form(name).decode(), keep_blank_values=True))


def fresh_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


class FakeTwilio:
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.faults: list[Fault] = []
        self.next_sids: list[str] = []
        self.created: list[dict[str, str]] = []
        self.requests: list[Recorded] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_requests: list[Recorded] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create)
        app.router.add_get("/{tail:.*}", self._get_media)
        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_media(self, path: str, data: bytes, content_type: str) -> str:
        """Serve ``data`` at ``path`` (Basic auth checked); → its URL on the fake."""
        self.media[path] = (data, content_type)
        return self.url + path

    def media_url(self, message_sid: str, media_sid: str) -> str:
        return f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    # --- handlers ---------------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        return basic_auth_matches(request, self.account_sid, self.auth_token)

    async def _create(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        recorded = Recorded("POST", request.path, form, dict(request.headers))
        self.requests.append(recorded)
        response = await self._answer(request, form)
        recorded.status = response.status
        return response

    async def _answer(self, request: web.Request, form: dict[str, str]) -> web.Response:
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return _error(401, 20003)
        fault = self.faults.pop(0) if self.faults else Fault()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status == 429:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return _error(429, fault.code or 20429, headers)
        if fault.status >= 500:
            return _error(fault.status, fault.code or 20500)
        if fault.status >= 400:
            return _error(fault.status, fault.code or 21211)
        if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")):
            return _error(400, 21604 if not form.get("To") else 21603)
        self.created.append(form)
        return web.json_response(self._message(form), status=201)

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        sid = self.next_sids.pop(0) if self.next_sids else fresh_sid()
        return message_resource(self.account_sid, sid, form)  # the simulated Twilio's shape

    async def _get_media(self, request: web.Request) -> web.Response:
        self.media_requests.append(Recorded("GET", request.path, {}, dict(request.headers)))
        if request.path not in self.media:
            return _error(404, 20404)
        if not self._authorised(request):
            return _error(401, 20003)
        data, content_type = self.media[request.path]
        return web.Response(body=data, content_type=content_type)


def _error(status: int, code: int, headers: dict[str, str] | None = None) -> web.Response:
    body = {"code": code, "message": ERRORS.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return web.json_response(body, status=status, headers=headers)
