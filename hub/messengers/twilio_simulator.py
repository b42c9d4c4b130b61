"""A simulated Twilio: a local Messages API (aiohttp on 127.0.0.1) whose "phones" are demo people.

``crmhub demo`` runs one and points ``[twilio] api_url`` at it (with a demo account), so a newcomer
sees SMS and WhatsApp conversations without a Twilio account; the demo people, their texts and their
rhythm are the simulated Telegram's (``hub.messengers.simulator.DemoPeople``). It does what Twilio does
for ``hub.messengers.twilio_sms.TwilioChannel``:

- answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (HTTP Basic auth with the account
  SID and auth token) with 201 and the message resource (the shape of
  ``tests/fixtures/twilio/Messages_create_201.json``), 401 (20003) or 400 (21604/21603/21617/21602,
  WhatsApp: 21910 a ``whatsapp:`` To from a plain From, 21655 an unknown ContentSid, 21656 its
  ContentVariables wrong);
- then posts the message's status callbacks (``queued`` → ``sent`` → ``delivered``, WhatsApp then
  ``read``) to its ``StatusCallback``;
- ``write`` posts an inbound SMS of a demo person to the hub's ``/webhooks/twilio/sms`` — or, for a
  ``WhatsAppPerson``, an inbound WhatsApp message (``From: whatsapp:+7…``, ``ProfileName``, ``WaId``)
  to the same webhook.

WhatsApp (``whatsapp_number`` set: the demo's WhatsApp sender): a send to ``whatsapp:+…`` carries
``Body`` (free text) or ``ContentSid`` + ``ContentVariables`` (one of ``templates``, the account's
approved templates: the message's body is the template's text with the variables filled in). Free
text goes only within 24 hours of the person's last message (``write``, or ``window_source`` for
those the simulator has not seen write: ``crmhub demo`` asks the hub's database); outside it Twilio
accepts the message (201) and then reports it ``failed`` with ErrorCode 63016, as here.

Every webhook goes to ``hub_url`` (where the hub listens) and is signed, as Twilio signs it, for the
URL the hub checks it against (``public_url`` + the path; the ``StatusCallback`` as given): the real
``X-Twilio-Signature`` of twilio's ``RequestValidator`` with the auth token.

``play`` makes the demo people write: every ``interval`` seconds one of them (the phones
``people_source`` gives: the demo's SMS conversations) sends an SMS about windows; one in four times
it is a number nobody knows (a lead in Unsorted). With a ``whatsapp_number`` every other message is a
WhatsApp one instead (the people ``whatsapp_source`` gives, or somebody new with a Russian profile
name). A message the hub sends is answered a few seconds after it was delivered (WhatsApp: read)
("Спасибо!", "Хорошо, ждём", a question), on the channel it came by.

    sim = TwilioSimulator()
    await sim.start()                     # sim.url is the api_url of [twilio]
    sim.hub_url = "http://127.0.0.1:8080"  # where the webhooks go; public_url: what they are signed for
    play = asyncio.create_task(sim.play(interval=(30, 60)))
    await sim.write(SmsPerson("+79161234567"), "Добрый день!")   # → the hub's answer (status, body)
    await sim.write(WhatsAppPerson("+79161234567", "Анна Соколова"), "Добрый день!")  # WhatsApp
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.messengers.simulator import NEW_NAMES, DemoPeople

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
          21602: "Message body is required", 21603: "A 'From' phone number is required",
          21604: "A 'To' phone number is required",
          21617: "The concatenated message body exceeds the 1600 character limit",
          21655: "The ContentSid is Invalid", 21656: "The ContentVariables Parameter is invalid",
          21910: "Invalid From and To pair. From and To should be of the same channel"}
MOBILE_CODES = ("903", "905", "915", "916", "925", "926", "977", "985", "999")
WHATSAPP = "whatsapp:"  # the address prefix of a WhatsApp message (From, To)
DEMO_WHATSAPP_NUMBER = "+74957654321"  # the demo's WhatsApp sender ([twilio] whatsapp_from)
WHATSAPP_WINDOW = timedelta(hours=24)  # free text only this long after the person's last message
OUTSIDE_WINDOW = "63016"  # the ErrorCode of a free-text message outside it
# the demo account's approved WhatsApp templates (``[twilio] whatsapp_templates`` of ``crmhub demo``)
DEMO_WHATSAPP_TEMPLATES: tuple[dict[str, str], ...] = (
    {"sid": "HX4d2a7f0c9b1e48d5a6f3c2b1e0d9a8c7", "name": "Напоминание о замере",
     "text": "Здравствуйте, {{1}}! Напоминаем: замер окон {{2}}, мастер позвонит за час. "
             "Если время не подходит, ответьте на это сообщение."},
    {"sid": "HX9e8f7a6b5c4d43e2a1b0c9d8e7f6a5b4", "name": "Спасибо за заказ",
     "text": "{{1}}, спасибо за заказ в «Комфорт Дом»! Номер заказа {{2}}, менеджер свяжется с вами "
             "в течение дня."},
    {"sid": "HX1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6", "name": "Доставка окон",
     "text": "Здравствуйте, {{1}}! Доставка окон назначена на {{2}}. Подтвердите, пожалуйста, что "
             "кто-то будет дома."},
)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class SmsPerson:
    """A phone of the simulation (an SMS carries no name: the hub knows people by their number)."""

    phone: str
    client: bool = True  # a client of the demo data (False: a lead, or a number nobody knows)

    @property
    def address(self) -> str:
        """Its From: the number itself."""
        return self.phone


@dataclass(frozen=True)
class WhatsAppPerson:
    """A WhatsApp user of the simulation: a number and the profile name Twilio passes (ProfileName)."""

    phone: str
    name: str
    client: bool = True  # a client of the demo data (False: a lead, or somebody new)

    @property
    def address(self) -> str:
        """Its From: ``whatsapp:+7…``."""
        return WHATSAPP + self.phone


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


def render_template(text: str, variables: dict[str, str]) -> str:
    """A template's body with its ``{{1}}``… filled in (KeyError: a variable missing)."""
    return _PLACEHOLDER.sub(lambda m: variables[m.group(1)], text)


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


Phone = SmsPerson | WhatsAppPerson


class TwilioSimulator(DemoPeople):
    """The Messages API and the webhooks Twilio would post; ``play`` for the demo people."""

    channel = "SMS"

    def __init__(self, account_sid: str = DEMO_ACCOUNT_SID, auth_token: str | None = None, *,
                 number: str = DEMO_NUMBER, host: str = "127.0.0.1", port: int = 0,
                 hub_url: str = "", public_url: str = "", people: Sequence[Phone] = (),
                 seed: int | None = None, whatsapp_number: str = "",
                 templates: Sequence[dict[str, str]] = ()) -> None:
        super().__init__(seed)
        self.account_sid = account_sid
        self.auth_token = auth_token or secrets.token_hex(16)
        self.number = number
        # the WhatsApp sender ("+…" or "whatsapp:+…"; "": no WhatsApp people) and its approved templates
        self.whatsapp_number = whatsapp_number.removeprefix(WHATSAPP)
        self.templates = {t["sid"]: dict(t) for t in templates}
        self.host = host
        self.port = port
        self.hub_url = hub_url.rstrip("/")  # where the hub listens
        self.public_url = public_url.rstrip("/")  # what the hub checks signatures against ("": hub_url)
        self.people: list[Phone] = []
        self.known: dict[str, Phone] = {}  # by address: "+7…" (SMS) or "whatsapp:+7…"
        for person in people:
            self._know(person)
        # the phones of the demo's people, asked before each message of ``play`` (the hub's database)
        self.people_source: Callable[[], Awaitable[Sequence[SmsPerson]]] | None = None
        self.whatsapp_source: Callable[[], Awaitable[Sequence[WhatsAppPerson]]] | None = None
        # when a WhatsApp number last wrote, for those not seen writing here (None: never, or unknown)
        self.window_source: Callable[[str], Awaitable[datetime | None]] | None = None
        self.last_written: dict[str, datetime] = {}  # WhatsApp phone → when they last wrote (here)
        self.status_delays: tuple[float, ...] = (0.3, 0.8, 1.5)  # queued, sent, delivered after the create
        self.read_delay = 2.0  # WhatsApp: read this long after delivered
        self.created: list[dict[str, Any]] = []  # the messages the hub sent (the 201 answers)
        self.written: list[dict[str, str]] = []  # the inbound SMS and WhatsApp messages posted, in order
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

    async def write(self, person: Phone, text: str) -> tuple[int, str]:
        """A message of ``person`` to the hub, posted to its ``/webhooks/twilio/sms`` as Twilio does →
        the hub's answer (status, body): an SMS to ``number`` (the fixture ``inbound_sms_russian``'s
        fields), or for a ``WhatsAppPerson`` a WhatsApp message to ``whatsapp_number`` (with its
        ProfileName and WaId); it opens (renews) the person's 24-hour window."""
        sid = fresh_sid()
        if isinstance(person, WhatsAppPerson):
            if not self.whatsapp_number:
                raise ValueError("the simulator has no whatsapp_number: nobody to write to on WhatsApp")
            form = {"SmsMessageSid": sid, "NumMedia": "0", "ProfileName": person.name, "MessageType": "text",
                    "SmsSid": sid, "WaId": person.phone.lstrip("+"), "SmsStatus": "received", "Body": text,
                    "To": WHATSAPP + self.whatsapp_number, "NumSegments": "1", "ReferralNumMedia": "0",
                    "MessageSid": sid, "AccountSid": self.account_sid, "From": person.address,
                    "ApiVersion": API_VERSION}
            self.last_written[person.phone] = datetime.now(UTC)
        else:
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
            if status == 0:  # not reachable: the hub is starting or stopping (the demo's own process)
                log.info("demo SMS: the hub could not be reached for the message from %s: %s",
                         person.address, body[:200])
            else:
                log.warning("demo SMS: the hub answered the message from %s with %s %s", person.address,
                            status, body[:200])
            if 400 <= status < 500:
                break
            await asyncio.sleep(1.0 + attempt)
        return status, body

    # --- the demo people ----------------------------------------------------------------------------------

    def _know(self, person: Phone) -> Phone:
        known = self.known.setdefault(person.address, person)
        if known is person and person not in self.people:
            self.people.append(person)
        return known

    def _new_phone(self) -> str:
        while True:
            phone = f"+7{self.rng.choice(MOBILE_CODES)}{self.rng.randrange(10**7):07d}"
            if phone not in self.known and WHATSAPP + phone not in self.known:
                return phone

    def new_person(self) -> SmsPerson:
        """A number nobody knows (a Russian mobile)."""
        person = self._know(SmsPerson(self._new_phone(), client=False))
        assert isinstance(person, SmsPerson)
        return person

    def new_whatsapp_person(self) -> WhatsAppPerson:
        """Somebody new on WhatsApp: a Russian mobile and profile name."""
        first, last = self.rng.choice(NEW_NAMES)
        person = self._know(WhatsAppPerson(self._new_phone(), f"{first} {last}", client=False))
        assert isinstance(person, WhatsAppPerson)
        return person

    async def _refresh(self, source: Callable[[], Awaitable[Sequence[Phone]]] | None) -> None:
        if source is None:
            return
        try:
            for person in await source():
                self._know(person)
        except Exception:  # the demo goes on with the people it knows
            log.exception("demo SMS: the demo people could not be read")

    async def write_something(self) -> tuple[Phone, tuple[int, str]]:
        """One demo message: an SMS — or, with a ``whatsapp_number``, every other time (at random) a
        WhatsApp message —, of a known person most of the time, somebody new one time in four."""
        whatsapp = bool(self.whatsapp_number) and self.rng.random() < 0.5
        await self._refresh(self.whatsapp_source if whatsapp else self.people_source)
        kind = WhatsAppPerson if whatsapp else SmsPerson
        people = [p for p in self.people if isinstance(p, kind)]
        if self.rng.random() < 0.25 or not people:
            person: Phone = self.new_whatsapp_person() if whatsapp else self.new_person()
            return person, await self.write(person, self.first_text())
        person = self.rng.choice(people)
        return person, await self.write(person, self.text(person.client))

    async def play_once(self) -> str:
        person, _ = await self.write_something()
        if isinstance(person, WhatsAppPerson):
            return f"{person.name} (WhatsApp {person.phone})"
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
        whatsapp = form["To"].startswith(WHATSAPP)
        if whatsapp != form.get("From", "").startswith(WHATSAPP):
            return web.json_response(error_body(400, 21910), status=400)
        if len(form.get("Body", "")) > MAX_BODY:
            return web.json_response(error_body(400, 21617), status=400)
        if whatsapp and form.get("ContentSid"):
            template = self.templates.get(form["ContentSid"])
            if template is None:
                return web.json_response(error_body(400, 21655), status=400)
            try:
                given = json.loads(form.get("ContentVariables") or "{}")
                form["Body"] = render_template(template["text"], {str(k): str(v) for k, v in given.items()})
            except (ValueError, AttributeError, KeyError):
                return web.json_response(error_body(400, 21656), status=400)
        elif not form.get("Body", "").strip() and not form.get("MediaUrl"):
            return web.json_response(error_body(400, 21602), status=400)
        message = message_resource(self.account_sid, fresh_sid(), form)
        refused = None
        if whatsapp:
            message["num_segments"] = "1"
            if not form.get("ContentSid") and not await self._window_open(form["To"].removeprefix(WHATSAPP)):
                refused = OUTSIDE_WINDOW  # accepted, then failed: as Twilio does
        self.created.append(message)
        task = asyncio.create_task(self._deliver(message, form.get("StatusCallback", ""), refused),
                                   name=f"demo-sms-status-{message['sid']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(message, status=201)

    async def _window_open(self, phone: str) -> bool:
        """The person wrote on WhatsApp within 24 hours (free text may go to them)."""
        last = self.last_written.get(phone)
        if last is None and self.window_source is not None:
            try:
                last = await self.window_source(phone)
            except Exception:
                log.exception("demo WhatsApp: when %s last wrote could not be read", phone)
        return last is not None and datetime.now(UTC) - last < WHATSAPP_WINDOW

    async def _deliver(self, message: dict[str, Any], callback: str, refused: str | None = None) -> None:
        """The message's way to the phone: its status callbacks, then (while playing) the answer.
        ``refused``: the ErrorCode it fails with after ``queued``."""
        whatsapp = message["to"].startswith(WHATSAPP)
        steps: list[tuple[str, float]] = list(zip(("queued", "sent", "delivered"), self.status_delays,
                                                  strict=True))
        if refused:
            steps = [steps[0], ("failed", steps[1][1])]
        elif whatsapp:
            steps.append(("read", steps[-1][1] + self.read_delay))
        waited = 0.0
        for status, at in steps:
            await asyncio.sleep(max(0.0, at - waited))
            waited = at
            if not callback:
                continue
            await self._status(message, callback, status, refused if status == "failed" else None)
        if refused:
            return
        to = message["to"]
        person = self.known.get(to) or (  # everybody is simulated
            WhatsAppPerson(to.removeprefix(WHATSAPP), " ".join(self.rng.choice(NEW_NAMES)), client=False)
            if whatsapp else SmsPerson(to))
        self.answer_later(person.address, lambda: self._answer(person))

    async def _status(self, message: dict[str, Any], callback: str, status: str, error: str | None) -> None:
        if message["to"].startswith(WHATSAPP):  # the fields of a WhatsApp status callback
            form = {"ChannelPrefix": "whatsapp", "ApiVersion": API_VERSION, "MessageStatus": status,
                    "SmsSid": message["sid"], "SmsStatus": status, "To": message["to"],
                    "From": message["from"], "MessageSid": message["sid"], "AccountSid": self.account_sid}
            if error:
                form["ErrorCode"] = error
        else:
            form = {"SmsSid": message["sid"], "SmsStatus": status, "MessageStatus": status,
                    "To": message["to"]}
            if message["messaging_service_sid"]:
                form["MessagingServiceSid"] = message["messaging_service_sid"]
            form.update({"MessageSid": message["sid"], "AccountSid": self.account_sid,
                         "From": message["from"] or self.number, "ApiVersion": API_VERSION})
            if status == "delivered":
                form["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        code, body = await self.post(callback, form)
        if code == 0:
            log.info("demo SMS: the hub could not be reached for the %s callback of %s: %s", status,
                     message["sid"], body[:200])
        elif code != 204:
            log.warning("demo SMS: the hub answered the %s callback of %s with %s %s", status,
                        message["sid"], code, body[:200])

    async def _answer(self, person: Phone) -> None:
        await self.write(self._know(person), self.answer(person.client))
