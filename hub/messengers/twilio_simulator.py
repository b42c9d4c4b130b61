"""A simulated Twilio: a local Messages API (aiohttp on 127.0.0.1) whose "phones" are demo people.

``crmhub demo`` runs one and points ``[twilio] api_url`` at it (with a demo account), so a newcomer
sees SMS conversations without a Twilio account; the demo people, their texts and their rhythm are
the simulated Telegram's (``hub.messengers.simulator.DemoPeople``). It does what Twilio does for
``hub.messengers.twilio_sms.TwilioChannel``:

- answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (HTTP Basic auth with the account
  SID and auth token) with 201 and the message resource (the shape of
  ``tests/fixtures/twilio/Messages_create_201.json``), 401 (20003) or 400 (21604/21603/21617);
- then posts the message's status callbacks (``queued`` → ``sent`` → ``delivered``) to its
  ``StatusCallback``;
- ``write`` posts an inbound SMS of a demo person to the hub's ``/webhooks/twilio/sms``.

Every webhook goes to ``hub_url`` (where the hub listens) and is signed, as Twilio signs it, for the
URL the hub checks it against (``public_url`` + the path; the ``StatusCallback`` as given): the real
``X-Twilio-Signature`` of twilio's ``RequestValidator`` with the auth token.

``play`` makes the demo people write: every ``interval`` seconds one of them (the phones
``people_source`` gives: the demo's SMS conversations) sends an SMS about windows; one in four times
it is a number nobody knows (a lead in Unsorted). An SMS the hub sends is answered a few seconds
after it was delivered ("Спасибо!", "Хорошо, ждём", a question).

    sim = TwilioSimulator()
    await sim.start()                     # sim.url is the api_url of [twilio]
    sim.hub_url = "http://127.0.0.1:8080"  # where the webhooks go; public_url: what they are signed for
    play = asyncio.create_task(sim.play(interval=(30, 60)))
    await sim.write(SmsPerson("+79161234567"), "Добрый день!")   # → the hub's answer (status, body)
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.messengers.simulator import DemoPeople

log = logging.getLogger(__name__)

DEMO_ACCOUNT_SID = "AC0de0000000000000000000000000demo"
DEMO_NUMBER = "+74951234567"  # the hub's number in the demo data's SMS conversations too
API_VERSION = "2010-04-01"
SMS_PATH = "/webhooks/twilio/sms"  # hub.messengers.twilio_sms's paths
STATUS_PATH = "/webhooks/twilio/status"
MAX_BODY = 1600  # Twilio's limit (error 21617)
GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
          "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
ERRORS = {20003: "Authenticate", 20404: "The requested resource was not found",
          21603: "A 'From' phone number is required", 21604: "A 'To' phone number is required",
          21617: "The concatenated message body exceeds the 1600 character limit"}
MOBILE_CODES = ("903", "905", "915", "916", "925", "926", "977", "985", "999")


@dataclass(frozen=True)
class SmsPerson:
    """A phone of the simulation (an SMS carries no name: the hub knows people by their number)."""

    phone: str
    client: bool = True  # a client of the demo data (False: a lead, or a number nobody knows)


@dataclass
class Callback:
    """A webhook the simulator posted: its URL, form, and the hub's answer (0: not reached)."""

    url: str
    form: dict[str, str]
    status: int = 0


def sign(token: str, url: str, form: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio sends with a POST of ``form`` to ``url``."""
    return str(RequestValidator(token).compute_signature(url, form))


def fresh_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def segments(text: str) -> int:
    """How many SMS a text takes: 160/153 GSM-7 characters, else 70/67 UCS-2 units."""
    single, part = (160, 153) if set(text) <= GSM else (70, 67)
    units = len(text.encode("utf-16-le")) // 2 if single == 70 else len(text)
    return 1 if units <= single else -(-units // part)


def _now() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True).replace("GMT", "+0000")


def message_resource(account_sid: str, sid: str, form: dict[str, str]) -> dict[str, Any]:
    """The Messages API's answer to a create with ``form`` (Messages_create_201.json's shape)."""
    now = _now()
    service = form.get("MessagingServiceSid") or None
    base = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "body": form.get("Body", ""), "num_segments": "0" if service else str(segments(form.get("Body", ""))),
        "direction": "outbound-api", "from": form.get("From") or None,
        "date_updated": now, "price": None, "error_message": None, "uri": base + ".json",
        "account_sid": account_sid, "num_media": "0", "to": form["To"], "date_created": now,
        "status": "accepted" if service else "queued", "sid": sid, "date_sent": None,
        "messaging_service_sid": service, "error_code": None, "price_unit": "USD",
        "api_version": API_VERSION, "subresource_uris": {"media": base + "/Media.json"},
    }


def basic_auth_matches(request: web.Request, account_sid: str, auth_token: str) -> bool:
    """The request's HTTP Basic credentials are this account's (as Twilio's API checks them)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == account_sid and password == auth_token


def error_body(status: int, code: int) -> dict[str, Any]:
    return {"code": code, "message": ERRORS.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


class TwilioSimulator(DemoPeople):
    """The Messages API and the webhooks Twilio would post; ``play`` for the demo people."""

    channel = "SMS"

    def __init__(self, account_sid: str = DEMO_ACCOUNT_SID, auth_token: str | None = None, *,
                 number: str = DEMO_NUMBER, host: str = "127.0.0.1", port: int = 0,
                 hub_url: str = "", public_url: str = "", people: Sequence[SmsPerson] = (),
                 seed: int | None = None) -> None:
        super().__init__(seed)
        self.account_sid = account_sid
        self.auth_token = auth_token or secrets.token_hex(16)
        self.number = number
        self.host = host
        self.port = port
        self.hub_url = hub_url.rstrip("/")  # where the hub listens
        self.public_url = public_url.rstrip("/")  # what the hub checks signatures against ("": hub_url)
        self.people: list[SmsPerson] = list(people)
        self.known = {p.phone: p for p in self.people}
        # the phones of the demo's people, asked before each message of ``play`` (the hub's database)
        self.people_source: Callable[[], Awaitable[Sequence[SmsPerson]]] | None = None
        self.status_delays: tuple[float, ...] = (0.3, 0.8, 1.5)  # queued, sent, delivered after the create
        self.created: list[dict[str, Any]] = []  # the messages the hub sent (the 201 answers)
        self.written: list[dict[str, str]] = []  # the inbound SMS posted, in order
        self.callbacks: list[Callback] = []  # every webhook posted (inbound and statuses)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- control ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Messages.json", self._create)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None  # start() has made it
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._session = aiohttp.ClientSession(trust_env=False, timeout=aiohttp.ClientTimeout(total=15))
        return self.port

    async def stop(self) -> None:
        await self.stop_answering()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def signed_url(self, path: str) -> str:
        """The URL the hub checks a webhook to ``path`` against."""
        return (self.public_url or self.hub_url) + path

    async def post(self, url: str, form: dict[str, str]) -> tuple[int, str]:
        """POST ``form`` signed for ``url`` (the public URL) to the same path on ``hub_url`` → (status,
        body); (0, reason) when the hub could not be reached."""
        parts = urlsplit(url)
        target = self.hub_url + parts.path + (f"?{parts.query}" if parts.query else "")
        callback = Callback(url, form)
        self.callbacks.append(callback)
        headers = {"X-Twilio-Signature": sign(self.auth_token, url, form),
                   "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1"}
        if self._session is None or not self.hub_url:
            return 0, "the simulator is not started or has no hub_url"
        try:
            async with self._session.post(target, data=urlencode(form).encode(), headers=headers) as r:
                callback.status = r.status
                return r.status, await r.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            return 0, str(error) or type(error).__name__

    async def write(self, person: SmsPerson, text: str) -> tuple[int, str]:
        """An SMS of ``person`` to the hub's number, posted to its ``/webhooks/twilio/sms`` as Twilio
        does (the fixture ``inbound_sms_russian``'s fields) → the hub's answer (status, body)."""
        sid = fresh_sid()
        form = {"ToCountry": "RU", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
                "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
                "Body": text, "FromCountry": "RU", "To": self.number, "ToZip": "",
                "NumSegments": str(segments(text)), "MessageSid": sid, "AccountSid": self.account_sid,
                "From": person.phone, "ApiVersion": API_VERSION}
        self.written.append(form)
        self._know(person)
        for attempt in range(3):  # the hub may be starting, or answer 5xx: Twilio tries again too
            status, body = await self.post(self.signed_url(SMS_PATH), form)
            if status == 200:
                return status, body
            log.warning("demo SMS: the hub answered the SMS from %s with %s %s", person.phone, status,
                        body[:200])
            if 400 <= status < 500:
                break
            await asyncio.sleep(1.0 + attempt)
        return status, body

    # --- the demo people ----------------------------------------------------------------------------------

    def _know(self, person: SmsPerson) -> SmsPerson:
        known = self.known.setdefault(person.phone, person)
        if known is person and person not in self.people:
            self.people.append(person)
        return known

    def new_person(self) -> SmsPerson:
        """A number nobody knows (a Russian mobile)."""
        while True:
            phone = f"+7{self.rng.choice(MOBILE_CODES)}{self.rng.randrange(10**7):07d}"
            if phone not in self.known:
                return self._know(SmsPerson(phone, client=False))

    async def write_something(self) -> tuple[SmsPerson, tuple[int, str]]:
        """One demo SMS: a known person most of the time, a new number one time in four."""
        if self.people_source is not None:
            try:
                for person in await self.people_source():
                    self._know(person)
            except Exception:  # the demo goes on with the people it knows
                log.exception("demo SMS: the demo people could not be read")
        if self.rng.random() < 0.25 or not self.people:
            person = self.new_person()
            return person, await self.write(person, self.first_text())
        person = self.rng.choice(self.people)
        return person, await self.write(person, self.text(person.client))

    async def play_once(self) -> str:
        person, _ = await self.write_something()
        return person.phone

    # --- the Messages API ---------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        return basic_auth_matches(request, self.account_sid, self.auth_token)

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return web.json_response(error_body(401, 20003), status=401)
        form = dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")):
            code = 21604 if not form.get("To") else 21603
            return web.json_response(error_body(400, code), status=400)
        if len(form.get("Body", "")) > MAX_BODY:
            return web.json_response(error_body(400, 21617), status=400)
        message = message_resource(self.account_sid, fresh_sid(), form)
        self.created.append(message)
        task = asyncio.create_task(self._deliver(message, form.get("StatusCallback", "")),
                                   name=f"demo-sms-status-{message['sid']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(message, status=201)

    async def _deliver(self, message: dict[str, Any], callback: str) -> None:
        """The message's way to the phone: its status callbacks, then (while playing) the answer."""
        waited = 0.0
        for status, at in zip(("queued", "sent", "delivered"), self.status_delays, strict=True):
            await asyncio.sleep(max(0.0, at - waited))
            waited = at
            if not callback:
                continue
            form = {"SmsSid": message["sid"], "SmsStatus": status, "MessageStatus": status,
                    "To": message["to"]}
            if message["messaging_service_sid"]:
                form["MessagingServiceSid"] = message["messaging_service_sid"]
            form.update({"MessageSid": message["sid"], "AccountSid": self.account_sid,
                         "From": message["from"] or self.number, "ApiVersion": API_VERSION})
            if status == "delivered":
                form["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
            code, body = await self.post(callback, form)
            if code != 204:
                log.warning("demo SMS: the hub answered the %s callback of %s with %s %s", status,
                            message["sid"], code, body[:200])
        person = self.known.get(message["to"]) or SmsPerson(message["to"])  # everybody is simulated
        self.answer_later(person.phone, lambda: self._answer(person))

    async def _answer(self, person: SmsPerson) -> None:
        await self.write(self._know(person), self.answer(person.client))
