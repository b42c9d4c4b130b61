"""A fake Telegram Bot API server for the tests: aiohttp on 127.0.0.1, the JSON shapes of the Bot API
(``/work/shared/fixtures/telegram``), the real python-telegram-bot ``Bot`` pointed at it.

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
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

FIXTURES = Path("/work/shared/fixtures/telegram")
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


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeTelegramApi:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        # awaited after each webhook delivery the hub answered 200 (tests: let the hub take it in)
        self.after_delivery: Callable[[], Awaitable[None]] | None = None
        self.bot_user = fixture("getMe_response")["result"]
        self.requests: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.confirmed = 0  # every update_id below this was confirmed by an offset
        self.files: dict[str, tuple[bytes, str]] = {}  # file_id → (data, file_path)
        self.faults: dict[str, list[Fault]] = {}
        self.webhook: dict[str, Any] | None = None
        self.sent: dict[int, list[dict[str, Any]]] = {}  # chat id → the messages the bot sent there
        self._message_ids = itertools.count(100)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- control ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)  # URLs hold the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def push(self, *updates: dict[str, Any]) -> None:
        self.updates.extend(updates)
        self._new_update.set()

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

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        self.files[file_id] = (data, file_path)

    def fault(self, method: str, kind: str, *, times: int = 1, retry_after: int = 35,
              seconds: float = 2.0) -> None:
        self.faults.setdefault(method, []).append(Fault(kind, times, retry_after, seconds))

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.requests if c.method == method]

    def call_files(self, method: str) -> list[dict[str, tuple[str, str, bytes]]]:
        return [c.files for c in self.requests if c.method == method]

    # --- the server -------------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    @staticmethod
    def _ok(result: Any, **extra: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result, **extra})

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, tuple[str, str, bytes]]]:
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, str, bytes]] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    files[name] = (value.filename, value.content_type, value.file.read())
                else:
                    params[name] = _decode(str(value))
        params.update({k: _decode(v) for k, v in request.query.items()})
        return params, files

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
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, "Not Found")
        response: web.StreamResponse = await handler(params, files)
        return response

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        path = request.match_info["path"]
        self.requests.append(Call("download", {"path": path}))
        for data, file_path in self.files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return self._error(404, "Not Found")

    # --- methods ------------------------------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any], files: Any) -> web.Response:
        return self._ok(self.bot_user)

    async def _m_setWebhook(self, params: dict[str, Any], files: Any) -> web.Response:
        self.webhook = params
        return web.json_response(fixture("setWebhook_response"))

    async def _m_deleteWebhook(self, params: dict[str, Any], files: Any) -> web.Response:
        self.webhook = None
        return self._ok(True, description="Webhook was deleted")

    async def _m_getUpdates(self, params: dict[str, Any], files: Any) -> web.Response:
        if self.webhook is not None:
            return self._error(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        self.confirmed = max(self.confirmed, offset)
        wait = float(params.get("timeout") or 0)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            ready = sorted((u for u in self.updates if u["update_id"] >= self.confirmed),
                           key=lambda u: u["update_id"])
            remaining = deadline - asyncio.get_running_loop().time()
            if ready or remaining <= 0:
                limit = int(params.get("limit") or 100)
                return self._ok(ready[:limit])
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), remaining)
            except TimeoutError:
                pass

    def _message(self, chat_id: Any, **content: Any) -> dict[str, Any]:
        chat_id = int(chat_id)
        chat: dict[str, Any] = ({"id": chat_id, "type": "private", "first_name": "Анна"} if chat_id > 0
                                else {"id": chat_id, "type": "group", "title": "Группа"})
        message = {"message_id": next(self._message_ids),
                   "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
                   "chat": chat, "date": int(time.time()), **content}
        self.sent.setdefault(chat_id, []).append(message)
        return message

    def _reply(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            return {"reply_to_message": {"message_id": reply["message_id"], "date": int(time.time()),
                                         "chat": {"id": int(params["chat_id"]), "type": "private"}}}
        return {}

    async def _m_sendMessage(self, params: dict[str, Any], files: Any) -> web.Response:
        text = params.get("text")
        if not isinstance(text, str) or not text:
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        return self._ok(self._message(params["chat_id"], text=text, **self._reply(params)))

    def _caption(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"caption": params["caption"]} if params.get("caption") else {}

    async def _m_sendDocument(self, params: dict[str, Any],
                              files: dict[str, tuple[str, str, bytes]]) -> web.Response:
        if "document" not in files:
            return self._error(400, "Bad Request: there is no document in the request")
        filename, content_type, data = files["document"]
        document = {"file_name": filename, "mime_type": content_type, "file_id": f"BQAC-{len(data)}",
                    "file_unique_id": f"AgAD-{len(data)}", "file_size": len(data)}
        return self._ok(self._message(params["chat_id"], document=document, **self._caption(params),
                                      **self._reply(params)))

    async def _m_sendPhoto(self, params: dict[str, Any],
                           files: dict[str, tuple[str, str, bytes]]) -> web.Response:
        if "photo" not in files:
            return self._error(400, "Bad Request: there is no photo in the request")
        data = files["photo"][2]
        photo = [{"file_id": f"AgAC-{len(data)}", "file_unique_id": f"AQAD-{len(data)}",
                  "file_size": len(data), "width": 90, "height": 90}]
        return self._ok(self._message(params["chat_id"], photo=photo, **self._caption(params),
                                      **self._reply(params)))

    async def _m_getFile(self, params: dict[str, Any], files: Any) -> web.Response:
        found = self.files.get(str(params.get("file_id")))
        if found is None:
            return self._error(400, "Bad Request: invalid file_id")
        data, path = found
        if len(data) > 20 * 1024 * 1024:
            return self._error(400, "Bad Request: file is too big")
        return self._ok({"file_id": params["file_id"], "file_unique_id": "AgAD" + str(len(data)),
                         "file_size": len(data), "file_path": path})

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: Any) -> web.Response:
        return self._ok(True)
