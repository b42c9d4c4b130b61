"""A simulated Telegram: a local Bot API server (aiohttp on 127.0.0.1) whose "users" are demo people.

``crmhub demo`` runs one and points ``[telegram]`` at it (polling mode), so a newcomer can chat with
clients without creating a bot; the tests' fake Bot API (``tests/fakes/telegram_api.py``) extends it.
It answers what ``hub.messengers.telegram.TelegramChannel`` calls — ``getMe``, ``setWebhook`` /
``deleteWebhook``, ``getUpdates`` (offset, long-poll timeout, 409 while a webhook is set),
``sendMessage``, ``sendDocument``, ``sendPhoto``, ``getFile`` and the file download,
``answerCallbackQuery`` — with the Bot API's JSON shapes.

``play`` makes the demo people write: every ``interval`` seconds one of them sends a message about
windows (a measurement, an estimate, a delivery, the fitting...), now and then with a photo (a small
generated PNG of a window); one in four times it is somebody new (a lead in Unsorted for the CRM).
When the bot writes to one of them, the person answers a few seconds later ("Спасибо!", "Хорошо,
ждём", a question). The texts and that rhythm are ``DemoPeople``'s, which the simulated Twilio
(``hub.messengers.twilio_simulator``) shares.

    sim = TelegramSimulator(token="123:abc")
    await sim.start()                     # sim.url is the api_url of [telegram]
    play = asyncio.create_task(sim.play(interval=(30, 60)))
    sim.write(sim.people[0], "Добрый день!")   # an update for getUpdates
    await sim.stop()
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
import logging
import random
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

DEMO_TOKEN = "8291746530:AAHdemoTokenOfTheSimulatedTelegram_0000"
BOT_USER: dict[str, Any] = {
    "id": 8291746530, "is_bot": True, "first_name": "Комфорт Дом", "username": "komfortdom_crm_bot",
    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
    "can_connect_to_business": False, "has_main_web_app": False,
}


@dataclass(frozen=True)
class Person:
    """A Telegram user of the simulation (a private chat: its id is the user's id)."""

    id: int
    first_name: str
    last_name: str = ""
    username: str | None = None
    client: bool = True  # a client of the demo data (False: a lead, or somebody new)

    def user(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        data["language_code"] = "ru"
        return data

    def chat(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        data["type"] = "private"
        return data


# The demo data (hub.crm.demo) links these chats to its clients and its lead: keep the ids in step.
DEMO_PEOPLE: tuple[Person, ...] = (
    Person(6149027731, "Ольга", "Кузнецова", "olga_kuz"),
    Person(7125590348, "Екатерина", "Яковлева"),
    Person(6873401592, "Елена", "Смирнова", "elena_smirnova_msk"),
    Person(5731946208, "Евгений", "Фёдоров", "e_fedorov"),
    Person(5290183746, "Дмитрий", "Лебедев", "dlebedev", client=False),  # a lead of the demo data
)
NEW_NAMES = (("Марина", "Киселева"), ("Игорь", "Волков"), ("Светлана", "Морозова"), ("Павел", "Никитин"),
             ("Татьяна", "Белова"), ("Артём", "Соловьёв"), ("Юлия", "Гаврилова"), ("Николай", "Фомин"),
             ("Ирина", "Зайцева"), ("Максим", "Орлов"))
CLIENT_TEXTS = (
    "Добрый день! Замерщик в субботу точно приедет? Во сколько его ждать?",
    "Здравствуйте! Когда будет готова смета по нашим окнам?",
    "Подскажите, пожалуйста, на какое число назначена доставка?",
    "Монтажники завтра во сколько приедут? Нужно отпроситься с работы.",
    "Можно перенести замер на следующую неделю? В субботу не получается.",
    "Здравствуйте! Окно на кухне после монтажа туго закрывается, ручка еле поворачивается. "
    "Можно прислать мастера?",
    "Смету получили, спасибо. А если взять профиль попроще, насколько дешевле выйдет?",
    "Оплатили счёт по договору, пришлите, пожалуйста, подтверждение.",
    "Добрый день! Хотим ещё заказать откосы и подоконник в детскую. Посчитаете?",
    "А москитные сетки входят в смету или это отдельно?",
    "Доставку можно на вечер после 18:00? Днём дома никого.",
)
NEW_TEXTS = (
    "Здравствуйте! Сколько стоит поменять два окна в панельном доме?",
    "Добрый вечер. Делаете остекление лоджии под ключ? Длина 6 метров.",
    "Здравствуйте, нужен замер в частном доме, 9 окон. Выезжаете в Подмосковье?",
    "Добрый день! Сколько по времени делаются окна, если заказать сейчас?",
    "Здравствуйте! Нашла вас по рекламе. Замер бесплатный?",
    "Добрый день, нужна замена стеклопакета, треснул. Это к вам?",
)
LEAD_TEXTS = (
    "А замер у вас бесплатный?",
    "Сколько по времени занимает монтаж одного окна?",
    "А рассрочка есть? Хотим поменять все окна в квартире.",
    "Какой профиль посоветуете для детской, чтобы было тепло?",
)
PHOTO_CAPTIONS = (
    "Вот окно, которое нужно заменить. Размер примерно 1300×1400 мм.",
    "Так сейчас выглядит балкон, посмотрите, пожалуйста.",
    "После доставки на стеклопакете трещина, вот фото.",
    "Вот откос после монтажа, так и должно быть?",
)
ANSWERS = (
    "Спасибо!", "Хорошо, ждём.", "Отлично, договорились 👍", "А сколько это будет стоить примерно?",
    "А можно пораньше, до обеда?", "Понял, спасибо. Тогда жду звонка.", "Да, так удобно.",
    "Спасибо, а доставка входит в стоимость?", "Ок, спасибо большое!",
)
CLIENT_ANSWERS = ("Хорошо. Адрес тот же.", "А оплата по счёту или мастеру на месте?")  # clients only


def window_png(glass: tuple[int, int, int], width: int = 160, height: int = 120) -> bytes:
    """A small PNG of a window (a white frame, a mullion and a transom over coloured glass), made
    without an imaging library: the demo people's "photos"."""
    frame, wall = (250, 250, 250), (214, 200, 178)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # no filter
        for x in range(width):
            if x < 10 or x >= width - 10 or y < 8 or y >= height - 8:
                colour = wall
            elif (x < 16 or x >= width - 16 or y < 14 or y >= height - 14
                  or abs(x - width // 2) < 3 or abs(y - height // 3) < 3):
                colour = frame
            else:
                shade = (y * 40) // height
                colour = (max(0, glass[0] - shade), max(0, glass[1] - shade), min(255, glass[2] + shade // 2))
            rows.extend(colour)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))


class DemoPeople(abc.ABC):
    """What the simulated channels of ``crmhub demo`` share (Telegram here, SMS in
    ``hub.messengers.twilio_simulator``): a seeded random generator, the demo people's texts, the
    rhythm of their messages (``play``: one every ``interval`` seconds) and their answers
    ``reply_delay`` seconds after the hub writes to one of them (while playing; one answer however
    many parts the hub's message had)."""

    channel = ""  # for the log: "demo <channel>: <who> wrote"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.reply_delay: tuple[float, float] = (3.0, 6.0)
        self._answering: dict[Hashable, asyncio.Task[None]] = {}
        self._playing = False

    def first_text(self) -> str:
        """What somebody new writes."""
        return self.rng.choice(NEW_TEXTS)

    def text(self, client: bool) -> str:
        """What a known person writes: a client about the order, a lead with questions."""
        return self.rng.choice(CLIENT_TEXTS if client else NEW_TEXTS + LEAD_TEXTS)

    def answer(self, client: bool) -> str:
        """A person's answer to the hub."""
        return self.rng.choice(ANSWERS + CLIENT_ANSWERS if client else ANSWERS)

    @abc.abstractmethod
    async def play_once(self) -> str:
        """One message of a demo person → who wrote (for the log): each channel's simulator says how."""

    async def play(self, interval: tuple[float, float] = (30.0, 60.0)) -> None:
        """Until cancelled: a message every ``interval`` seconds (uniform), answers to the hub's messages."""
        self._playing = True
        try:
            while True:
                await asyncio.sleep(self.rng.uniform(*interval))
                log.info("demo %s: %s wrote", self.channel, await self.play_once())
        finally:
            self._playing = False

    def answer_later(self, key: Hashable, answer: Callable[[], Awaitable[None]]) -> None:
        """While playing: ``answer()`` after ``reply_delay`` seconds, unless one for ``key`` is pending."""
        if not self._playing:
            return
        pending = self._answering.get(key)
        if pending is not None and not pending.done():
            return  # several parts of one answer: one reply
        self._answering[key] = asyncio.create_task(self._later(answer),
                                                   name=f"demo-{self.channel.lower()}-answer-{key}")

    async def _later(self, answer: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(self.rng.uniform(*self.reply_delay))
        await answer()

    async def stop_answering(self) -> None:
        for task in list(self._answering.values()):
            task.cancel()
        for task in list(self._answering.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._answering.clear()


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class TelegramSimulator(DemoPeople):
    """The Bot API server; ``play`` for the demo people's messages and answers."""

    channel = "Telegram"

    def __init__(self, token: str = DEMO_TOKEN, *, host: str = "127.0.0.1", port: int = 0,
                 people: Sequence[Person] = DEMO_PEOPLE, seed: int | None = None) -> None:
        super().__init__(seed)
        self.token = token
        self.host = host
        self.port = port
        self.bot_user: dict[str, Any] = dict(BOT_USER)
        self.updates: list[dict[str, Any]] = []
        self.confirmed = 0  # every update_id below this was confirmed by an offset
        self.files: dict[str, tuple[bytes, str]] = {}  # file_id → (data, file_path)
        self.webhook: dict[str, Any] | None = None
        self.sent: dict[int, list[dict[str, Any]]] = {}  # chat id → the messages the bot sent there
        self.written: list[dict[str, Any]] = []  # the messages the people wrote, in order
        self.people: list[Person] = list(people)
        self.known = {p.id: p for p in self.people}
        # ids that grow across restarts: the hub keeps its offset and the "<chat>:<message>" keys
        now = int(time.time())
        self._update_ids = itertools.count(now * 10)
        self._message_ids = itertools.count(now - 1_700_000_000)
        self._file_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # --- control ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)  # URLs hold the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None  # start() has made it
        # aiohttp types it AbstractServer; loop.create_server made a Server, which has sockets
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.port

    async def stop(self) -> None:
        await self.stop_answering()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def push(self, *updates: dict[str, Any]) -> None:
        """Updates as they are (the tests build their own) queued for getUpdates."""
        self.updates.extend(updates)
        self._new_update.set()

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        self.files[file_id] = (data, file_path)

    def write(self, person: Person, text: str = "", *, photo: bytes | None = None,
              reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """A message of ``person`` to the bot (text, or a photo with ``text`` as its caption) → the update."""
        message: dict[str, Any] = {"message_id": next(self._message_ids), "from": person.user(),
                                   "chat": person.chat(), "date": int(time.time())}
        if photo is not None:
            n = next(self._file_ids)
            file_id = f"AgACAgIAAxkBAAIDemo{n:04d}photo"
            self.add_file(file_id, photo, f"photos/file_{n}.png")
            width, height = struct.unpack(">II", photo[16:24]) if photo[1:4] == b"PNG" else (160, 120)
            message["photo"] = [{"file_id": file_id, "file_unique_id": f"AQADemo{n:04d}",
                                 "file_size": len(photo), "width": width, "height": height}]
            if text:
                message["caption"] = text
        else:
            message["text"] = text
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.written.append(message)
        update = {"update_id": next(self._update_ids), "message": message}
        self.push(update)
        return update

    # --- the demo people ----------------------------------------------------------------------------------

    def new_person(self) -> Person:
        taken = {(p.first_name, p.last_name) for p in self.people}
        first, last = self.rng.choice([n for n in NEW_NAMES if n not in taken] or NEW_NAMES)
        person = Person(5_400_000_000 + self.rng.randrange(100_000_000), first, last, client=False)
        self.people.append(person)
        self.known[person.id] = person
        return person

    def write_something(self) -> dict[str, Any]:
        """One demo message: a known person most of the time, somebody new one time in four."""
        rng = self.rng
        if rng.random() < 0.25 or not self.people:
            return self.write(self.new_person(), self.first_text())
        person = rng.choice(self.people)
        if rng.random() < 0.2:
            glass = rng.choice(((150, 190, 230), (170, 200, 215), (140, 175, 205)))
            return self.write(person, rng.choice(PHOTO_CAPTIONS), photo=window_png(glass))
        return self.write(person, self.text(person.client))

    async def play_once(self) -> str:
        sender = self.write_something()["message"]["from"]
        return f"{sender['first_name']} {sender.get('last_name', '')}".strip()

    def _bot_wrote(self, chat_id: int, message: dict[str, Any]) -> None:
        """The bot sent ``message`` to ``chat_id``: one of the people answers a little later."""
        person = self.known.get(chat_id)
        if person is not None:
            self.answer_later(chat_id, lambda: self._answer(person, message))

    async def _answer(self, person: Person, message: dict[str, Any]) -> None:
        quote = None
        if self.rng.random() < 0.3:
            bot = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
            quote = {"message_id": message["message_id"], "from": bot,
                     "chat": person.chat(), "date": message["date"],
                     **{k: message[k] for k in ("text", "caption") if k in message}}
        self.write(person, self.answer(person.client), reply_to=quote)

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
        """A form (or multipart with files) whose values are JSON-encoded, as PTB sends them; or JSON."""
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

    async def _method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, files = await self._params(request)
        return await self._dispatch(request, method, params, files)

    async def _dispatch(self, request: web.Request, method: str, params: dict[str, Any],
                        files: dict[str, tuple[str, str, bytes]]) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, "Not Found")
        response: web.StreamResponse = await handler(params, files)
        return response

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        path = request.match_info["path"]
        for data, file_path in self.files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return self._error(404, "Not Found")

    # --- methods ------------------------------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any], files: Any) -> web.Response:
        return self._ok(self.bot_user)

    async def _m_setWebhook(self, params: dict[str, Any], files: Any) -> web.Response:
        self.webhook = params
        return self._ok(True, description="Webhook was set")

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            ready = sorted((u for u in self.updates if u["update_id"] >= self.confirmed),
                           key=lambda u: u["update_id"])
            remaining = deadline - loop.time()
            if ready or remaining <= 0:
                limit = int(params.get("limit") or 100)
                return self._ok(ready[:limit])
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), remaining)

    def _chat(self, chat_id: int) -> dict[str, Any]:
        person = self.known.get(chat_id)
        if person is not None:
            return person.chat()
        return ({"id": chat_id, "type": "private", "first_name": "Анна"} if chat_id > 0
                else {"id": chat_id, "type": "group", "title": "Группа"})

    def _message(self, chat_id: Any, **content: Any) -> dict[str, Any]:
        chat_id = int(chat_id)
        message = {"message_id": next(self._message_ids),
                   "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
                   "chat": self._chat(chat_id), "date": int(time.time()), **content}
        self.sent.setdefault(chat_id, []).append(message)
        self._bot_wrote(chat_id, message)
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
