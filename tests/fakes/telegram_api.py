"""A fake Telegram Bot API server for the tests: the product's simulated Telegram
(``hub.messengers.simulator``) with the JSON shapes of ``tests/fixtures/telegram``, faults and a
log of every call; the real python-telegram-bot ``Bot`` pointed at it.

Control API for tests::

    api = FakeTelegramApi(token="123:abc")
    await api.start()                      # api.url is the api_url of [telegram]
    api.push(update_dict)                  # queued for getUpdates (long poll honours offset/timeout)
    api.add_file(file_id, b"...", "documents/file_3.pdf")   # served by getFile + the download
    api.fault("sendMessage", "429", retry_after=1)          # the next sendMessage answers 429
    api.fault("sendMessage", "delay", seconds=2)            # answers late (longer than the client waits)
    api.fault("getMe", "down", times=3)                     # kinds: 500 502 429 403 400 401 delay down
    api.requests                           # every call received: Call(method, params, files)
    api.calls("sendMessage")               # the params of each sendMessage
    api.webhook                            # {"url", "secret_token", ...} after setWebhook
    await api.deliver(update_dict)         # POST it to the registered webhook, as Telegram does
                                           # → (status, body); secret= overrides the header
    await api.stop()

Parameters arrive as PTB sends them: a form (or multipart with files) whose values are JSON-encoded;
each value is decoded back (``chat_id`` → int, ``reply_parameters`` → dict, ``text`` → str).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from hub.messengers.simulator import TelegramSimulator
from tests.paths import TELEGRAM_FIXTURES

FIXTURES = TELEGRAM_FIXTURES
TOKEN = "8291746530:AAFakeTokenForTheCrmHubTests_0123456789"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


ERRORS = {
    "400": (400, "error_400_chat_not_found"),
    "401": (401, "error_401_unauthorized"),
    "403": (403, "error_403_bot_blocked"),
    "429": (429, "error_429_too_many_requests"),
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name → (filename, type, data)
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    kind: str
    times: int = 1
    retry_after: int = 35
    seconds: float = 2.0


class FakeTelegramApi(TelegramSimulator):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__(token, people=())
        # awaited after each webhook delivery the hub answered 200 (tests: let the hub take it in)
        self.after_delivery: Callable[[], Awaitable[None]] | None = None
        self.bot_user = fixture("getMe_response")["result"]
        self.requests: list[Call] = []
        self.faults: dict[str, list[Fault]] = {}
        self._message_ids = itertools.count(100)

    # --- control ----------------------------------------------------------------------------------------

    async def start(self) -> int:
        self.port = 0
        return await super().start()

    async def deliver(self, update: dict[str, Any] | bytes, *,
                      secret: str | None = None) -> tuple[int, Any]:
        """What Telegram does with an update while a webhook is set: POST the JSON, with the secret
        header when one was registered (``secret=""`` sends none, another string a wrong one)."""
        assert self.webhook is not None, "no webhook registered"
        secret = self.webhook.get("secret_token") if secret is None else secret
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = update if isinstance(update, bytes) else json.dumps(update, ensure_ascii=True).encode()
        async with aiohttp.ClientSession() as session, session.post(
                self.webhook["url"], data=body, headers=headers) as response:
            text = await response.text()
        if response.status == 200 and self.after_delivery is not None:
            await self.after_delivery()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def fault(self, method: str, kind: str, *, times: int = 1, retry_after: int = 35,
              seconds: float = 2.0) -> None:
        self.faults.setdefault(method, []).append(Fault(kind, times, retry_after, seconds))

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.requests if c.method == method]

    def call_files(self, method: str) -> list[dict[str, tuple[str, str, bytes]]]:
        return [c.files for c in self.requests if c.method == method]

    # --- the server -------------------------------------------------------------------------------------

    async def _fault(self, method: str) -> web.Response | None:
        queue = self.faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            return None  # then answered normally (the client gave up waiting meanwhile)
        if fault.kind == "down":
            raise web.HTTPBadGateway(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if fault.kind in ("500", "502"):
            return self._error(int(fault.kind), "Internal Server Error")
        status, name = ERRORS[fault.kind]
        body = fixture(name)
        if fault.kind == "429":
            body["parameters"]["retry_after"] = fault.retry_after
            body["description"] = f"Too Many Requests: retry after {fault.retry_after}"
        return web.json_response(body, status=status)

    async def _method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, files = await self._params(request)
        self.requests.append(Call(method, params, files))
        if request.match_info["token"] != self.token:
            body = fixture("error_401_unauthorized")
            return web.json_response(body, status=401)
        failure = await self._fault(method)
        if failure is not None:
            return failure
        return await self._dispatch(request, method, params, files)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] == self.token:
            self.requests.append(Call("download", {"path": request.match_info["path"]}))
        return await super()._download(request)

    async def _m_setWebhook(self, params: dict[str, Any], files: Any) -> web.Response:
        self.webhook = params
        return web.json_response(fixture("setWebhook_response"))
