"""SMS and WhatsApp through Twilio: signed webhooks in (messages and status callbacks), the REST API out.

WhatsApp is the same account, webhook and API: its addresses carry the ``whatsapp:`` prefix
(``From=whatsapp:+7916…``, with the sender's ``ProfileName``); such a message is the core's
``whatsapp`` channel, its address the bare number. Sending one goes ``from_`` the configured
``whatsapp_from`` to ``whatsapp:<number>``, as free text or, outside the 24-hour window, as an approved
template (``content_sid`` + ``content_variables``).

Inbound (``take_sms``; ``hub.web.webhooks`` reads the request, hands over the form, the raw body,
the path and the signature header, and words the ``hub.webhook.Outcome`` as HTTP): the
``X-Twilio-Signature`` is checked with twilio's ``RequestValidator`` against ``public_url`` + the path
(and query) Twilio called and every form field; ``MessageSid`` and ``From`` are required; then the raw
body is journaled (``intake.journal("sms", MessageSid, body)``, committed) and the outcome is ACCEPTED
(Twilio gets an empty TwiML document) — a failure to journal is NOT_STORED (a 5xx), so Twilio may
deliver it again. ``hub.inbound.worker`` later calls ``process``: the media are downloaded (HTTP Basic
auth with the account SID and auth token; a failed download keeps the message with a note) and the
message (``From``, ``To``, ``Body``) goes to the core's intake, idempotent on ``MessageSid``.

Status callbacks (``take_status``): same signature check, journaled under ``<MessageSid>:status:
<status>``, then ``MessageSid`` + ``MessageStatus`` (+ ``ErrorCode``) to the core, which never moves a
status backwards.

Outbound (``send``, the outbox's sender for ``sms``): twilio's real ``Client`` over an async HTTP
client of ours (``_HubHttpClient``): aiohttp, never blocking the loop, pointed at ``api_url``
(Twilio's host names are rewritten to it, the only supported way to reach another endpoint: region
and edge settings only choose among twilio.com hosts). 429 and 5xx → ``RetryLater`` (Retry-After
honoured), other 4xx → ``PermanentFailure`` with Twilio's code, connection refused / connect timeout
→ ``RetryLater``, a timeout after the request went out → raised as is (the outbox marks it ``unknown``).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import mimetypes
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from hub.config import TwilioConfig
from hub.crm.ports import (
    DeliveryStatus,
    InboundFile,
    InboundMessage,
    MessageChannel,
    MessageIntakePort,
    OutgoingMessage,
    PermanentFailure,
    RetryLater,
    SendReceipt,
)
from hub.texts import say
from hub.webhook import ACCEPTED, DUPLICATE, Outcome, Verdict, refused

log = logging.getLogger(__name__)

SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
TWILIO_API = "https://api.twilio.com"
STATUS_KEY = ":status:"  # the journal key of a status callback: <MessageSid>:status:<status>
WHATSAPP = "whatsapp:"
MAX_MEDIA_BYTES = 20 * 1024 * 1024  # Twilio accepts at most 5 MB per MMS; keep a margin
MAX_MEDIA = 10  # Twilio's own limit per message
STATUSES = ("accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed",
            "read", "canceled", "receiving", "received")
# the delivery errors an agent sees most often, in words (https://www.twilio.com/docs/api/errors)
ERROR_TEXTS = {
    "30001": "Queue overflow", "30002": "Account suspended", "30003": "Unreachable destination handset",
    "30004": "Message blocked", "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier", "30007": "Message filtered by the carrier",
    "30008": "Unknown error", "30034": "Sender not registered (A2P 10DLC)",
    "21610": "The recipient has unsubscribed (replied STOP)", "21211": "Invalid 'To' phone number",
    "21408": "Sending to this region is not enabled", "21614": "'To' is not a mobile number",
    "63016": "Outside the WhatsApp 24-hour window: only a template can be sent",
    "63003": "The number is not on WhatsApp", "63024": "Invalid WhatsApp recipient",
    "63032": "The person has blocked messages from this business",
}

# the headers of the last Twilio answer in this task (the exception twilio raises drops them)
_last_headers: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "twilio_last_headers", default=None)


def _root(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip() or TWILIO_API)
    return parts.scheme or "https", parts.netloc, parts.path.rstrip("/")


class _HubHttpClient(AsyncHttpClient):
    """twilio's async HTTP client contract over our aiohttp session: requests for a twilio.com host
    go to ``api_url`` instead (same path), with proper ``ClientTimeout`` objects; the answer's headers
    are kept for ``Retry-After``. Request headers are not logged (they are at INFO in twilio's own)."""

    def __init__(self, channel: TwilioChannel) -> None:
        super().__init__(log, is_async=True)
        self.channel = channel

    async def request(self, method: str, uri: str, params: dict[str, Any] | None = None,
                      data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,  # noqa: ASYNC109
                      allow_redirects: bool = False) -> TwilioResponse:
        session = self.channel.session
        if session is None or session.closed:
            raise RetryLater("the Twilio channel is not started")
        url = self.channel.rewrite(uri)
        client_timeout = aiohttp.ClientTimeout(total=None, connect=self.channel.connect_timeout,
                                               sock_read=timeout or self.channel.request_timeout)
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        async with session.request(method.upper(), url, params=params, data=data, headers=headers,
                                   timeout=client_timeout, allow_redirects=allow_redirects) as response:
            text = await response.text()
            _last_headers.set(response.headers)
            return TwilioResponse(response.status, text, response.headers)


class TwilioChannel:
    """``webhook_refusal`` then ``take_sms`` / ``take_status`` take the webhooks' deliveries; ``send`` is
    the outbox's sender for ``sms`` and ``whatsapp``; ``start``/``stop`` with the hub; ``health`` goes
    to /healthz (for both)."""

    name = "sms"

    def __init__(self, config: TwilioConfig, *, public_url: str, intake: MessageIntakePort) -> None:
        self.config = config
        self.public_url = (public_url or "").strip().rstrip("/")
        self.intake = intake
        self.validator = RequestValidator(config.auth_token or "")
        # seconds; the tests shorten them (a send whose answer never comes ends as "unknown")
        self.connect_timeout = 5.0
        self.request_timeout = 15.0
        self.media_timeout = 30.0
        self.session: aiohttp.ClientSession | None = None
        self.client: Client | None = None
        self.send_problem = self._check_sending()
        self.problem = self.send_problem or self._check_webhooks()
        self.state = "starting" if not self.problem else f"misconfigured: {self.problem}"
        scheme, netloc, prefix = _root(config.api_url)
        self._api = (scheme, netloc, prefix)
        self._trusted_hosts = {netloc.lower(), urlsplit(TWILIO_API).netloc}

    def _check_sending(self) -> str:
        missing = [name for name in ("account_sid", "auth_token") if not getattr(self.config, name)]
        if missing:
            return f"[twilio] {' and '.join(missing)} not set"
        if not (self.config.from_number or self.config.messaging_service_sid or self.config.whatsapp_from):
            return "[twilio] needs from_number, messaging_service_sid or whatsapp_from to send"
        return ""

    def _check_webhooks(self) -> str:
        if not self.public_url:
            return ("[server] public_url is not set: Twilio's webhook signatures cannot be checked, "
                    "inbound SMS and status callbacks are refused")
        return ""

    def health(self) -> str:
        return self.state

    def healths(self) -> dict[str, Callable[[], str]]:
        """SMS, and WhatsApp when it has a sender: one webhook and one sender for both."""
        return {"sms": self.health, **({"whatsapp": self.health} if self.whatsapp_from else {})}

    @property
    def whatsapp_from(self) -> str:
        sender = self.config.whatsapp_from.strip()
        return sender if not sender or sender.startswith(WHATSAPP) else WHATSAPP + sender

    async def start(self) -> None:
        # built inside the running loop, closed at stop
        self.session = aiohttp.ClientSession(trust_env=False)
        self.client = Client(self.config.account_sid or None, self.config.auth_token or None,
                             http_client=_HubHttpClient(self))
        if self.problem:
            log.error("twilio: %s", self.problem)
        else:
            self.state = "ready"

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        self.session = None
        self.client = None
        if not self.problem:
            self.state = "stopped"

    def rewrite(self, url: str) -> str:
        """A twilio.com URL → the same path under ``api_url`` (unchanged when api_url is Twilio's)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        scheme, netloc, prefix = self._api
        if host == "twilio.com" or host.endswith(".twilio.com"):
            return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, parts.fragment))
        return url

    # --- webhooks -------------------------------------------------------------------------------------

    def webhook_refusal(self) -> Outcome | None:
        """Whether this hub can check a webhook's signature at all, asked before its body is read."""
        if not self.public_url:
            log.error("twilio: refused a webhook: [server] public_url is not set, so its signature "
                      "cannot be checked")
            return refused(Verdict.NOT_CONFIGURED, "public_url_not_configured")
        if not self.config.auth_token:
            log.error("twilio: refused a webhook: [twilio] auth_token is not set")
            return refused(Verdict.NOT_CONFIGURED, "auth_token_not_configured")
        return None

    def _unsigned(self, form: _Form, *, path: str, signature: str) -> Outcome | None:
        """The refusal of a form Twilio did not sign for ``public_url`` + ``path`` (with its query)."""
        if not signature or not self._signed(self.public_url + path, form, signature):
            log.warning("twilio: refused a webhook to %s with %s signature", path,
                        "a wrong" if signature else "no")
            return refused(Verdict.FORBIDDEN, "invalid_signature")
        return None

    def _signed(self, url: str, form: Any, signature: str) -> bool:
        """The library's check, computed once for the usual case: ``validate`` always signs the URL
        twice (with and without a port), which was a tenth of a webhook's CPU."""
        if hmac.compare_digest(self.validator.compute_signature(url, form).encode(), signature.encode()):
            return True
        return bool(self.validator.validate(url, form, signature))

    async def take_sms(self, form: Sequence[tuple[str, str]], body: bytes, *, path: str,
                       signature: str) -> Outcome:
        """An inbound message's form (the pairs as posted) and raw body, the path (and query) it was
        posted to and its ``X-Twilio-Signature``: checked, then journaled (committed) before the
        answer; ``process`` takes it in later."""
        fields = _Form(form)
        refusal = (self._unsigned(fields, path=path, signature=signature)
                   or _missing(fields, "MessageSid", "From"))
        if refusal is not None:
            return refusal
        return await self._journal(fields["MessageSid"], body)

    async def take_status(self, form: Sequence[tuple[str, str]], body: bytes, *, path: str,
                          signature: str) -> Outcome:
        """A status callback, as ``take_sms``; a status the hub does not know is IGNORED."""
        fields = _Form(form)
        refusal = (self._unsigned(fields, path=path, signature=signature)
                   or _missing(fields, "MessageSid", "MessageStatus"))
        if refusal is not None:
            return refusal
        status = fields["MessageStatus"].lower()
        if status not in STATUSES:
            log.info("twilio: status %r of %s ignored", status, fields["MessageSid"])
            return Outcome(Verdict.IGNORED)
        # one journal key per (message, status): a repeated callback is one delivery, each status its own
        return await self._journal(f"{fields['MessageSid']}{STATUS_KEY}{status}", body)

    async def _journal(self, key: str, body: bytes) -> Outcome:
        try:
            stored = await self.intake.journal("sms", key, body)  # False: delivered before, answered the same
        except Exception:
            log.exception("twilio: webhook %s could not be stored; answering 5xx so that Twilio may "
                          "deliver it again", key)
            return refused(Verdict.NOT_STORED, "intake_failed")
        return ACCEPTED if stored is not False else DUPLICATE

    async def process(self, key: str, body: bytes, journal_id: int) -> None:
        """A journaled webhook into the CRM (``hub.crm.ports.JournalProcessor``); raises → retried."""
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        if STATUS_KEY in key:
            code = str(form.get("ErrorCode") or "").strip() or None
            update = DeliveryStatus(channel=_channel_of(form), provider_id=str(form["MessageSid"]),
                                    status=str(form["MessageStatus"]).lower(), error_code=code,
                                    error=_error_text(code) if code else None)
            await self.intake.status(update)  # never backwards: applying it twice changes nothing
            await self.intake.finish(journal_id)
            return
        await self.intake.received(await self._inbound(form), journal_id=journal_id)

    async def _inbound(self, form: Mapping[str, str]) -> InboundMessage:
        sid, sender = form["MessageSid"], form["From"]
        channel = _channel_of(form)
        sender = sender.removeprefix(WHATSAPP)
        files, failed = await self._media(form)
        text = form.get("Body", "")
        extra: dict[str, Any] = {}
        if failed:  # the message is kept; the agent sees what is missing (as Telegram's notes do)
            extra["media_not_downloaded"] = failed
            notes = [say('[attachment "%(name)s" not loaded: %(reason)s]', name=f["filename"],
                         reason=f["reason"]) for f in failed]
            text = "\n".join([text, *notes]) if text else "\n".join(notes)
        name = (form.get("ProfileName") or "").strip() if channel == "whatsapp" else ""
        return InboundMessage(channel=channel, provider_id=sid, address=sender, text=text,
                              sender_name=name or sender, files=tuple(files), extra=extra or None,
                              to_address=(form.get("To") or "").removeprefix(WHATSAPP) or None)

    async def _media(self, form: Any) -> tuple[list[InboundFile], list[dict[str, str]]]:
        try:
            count = min(int(str(form.get("NumMedia") or 0)), MAX_MEDIA)
        except ValueError:
            count = 0
        wanted = [(index, str(form.get(f"MediaUrl{index}") or ""),
                   str(form.get(f"MediaContentType{index}") or "application/octet-stream"))
                  for index in range(count)]
        results = await asyncio.gather(*(self._download(url, content_type)
                                         for _, url, content_type in wanted if url),
                                       return_exceptions=True)
        files: list[InboundFile] = []
        failed: list[dict[str, str]] = []
        for (index, url, content_type), result in zip([w for w in wanted if w[1]], results, strict=True):
            name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or f"media{index}"
            filename = name + (mimetypes.guess_extension(content_type.split(";")[0].strip()) or "")
            if isinstance(result, BaseException):
                reason = str(result) or type(result).__name__
                log.warning("twilio: media %d of an inbound MMS (%s) not downloaded: %s", index, url, reason)
                failed.append({"filename": filename, "url": url, "content_type": content_type,
                               "reason": reason})
                continue
            data, declared = result
            files.append(InboundFile(filename=filename, content_type=content_type or declared, data=data))
        return files, failed

    async def _download(self, url: str, content_type: str) -> tuple[bytes, str]:
        if self.session is None or self.session.closed:
            raise RuntimeError("the Twilio channel is not started")
        target = self.rewrite(url)
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https"):
            raise ValueError("not an http(s) URL")
        # our credentials go to Twilio (or the api_url standing in for it) only
        # (aiohttp drops the header on a redirect to another origin: Twilio's CDN never sees it)
        trusted = parts.netloc.lower() in self._trusted_hosts
        credentials = aiohttp.encode_basic_auth(self.config.account_sid, self.config.auth_token)
        headers = {"Authorization": credentials} if trusted else {}
        timeout = aiohttp.ClientTimeout(total=self.media_timeout, connect=self.connect_timeout)
        async with self.session.get(target, headers=headers, timeout=timeout) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            if (response.content_length or 0) > MAX_MEDIA_BYTES:
                raise RuntimeError(f"larger than {MAX_MEDIA_BYTES} bytes")
            data = await response.content.read(MAX_MEDIA_BYTES + 1)
            if len(data) > MAX_MEDIA_BYTES:
                raise RuntimeError(f"larger than {MAX_MEDIA_BYTES} bytes")
            return data, response.content_type

    # --- the outbox's sender ----------------------------------------------------------------------------

    def _whatsapp_kwargs(self, message: OutgoingMessage) -> dict[str, Any]:
        if not self.whatsapp_from:
            raise RetryLater("misconfigured: [twilio] whatsapp_from is not set", after=300)
        kwargs: dict[str, Any] = {"to": WHATSAPP + message.address, "from_": self.whatsapp_from}
        if message.template_sid:
            kwargs["content_sid"] = message.template_sid
            kwargs["content_variables"] = json.dumps(dict(message.template_variables), ensure_ascii=False)
        else:
            kwargs["body"] = message.text
        return kwargs

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.send_problem:  # kept queued: the next start with a fixed config sends it
            raise RetryLater(f"misconfigured: {self.send_problem}", after=300)
        if self.client is None:
            raise RetryLater("the Twilio channel is not started")
        if message.channel == "whatsapp":
            kwargs = self._whatsapp_kwargs(message)
        elif not (self.config.from_number or self.config.messaging_service_sid):
            raise RetryLater("misconfigured: [twilio] needs from_number or messaging_service_sid to "
                             "send SMS", after=300)
        else:
            kwargs = {"to": message.address, "body": message.text}
            if self.config.messaging_service_sid:
                kwargs["messaging_service_sid"] = self.config.messaging_service_sid
            if self.config.from_number:
                kwargs["from_"] = self.config.from_number
        if self.public_url:
            kwargs["status_callback"] = self.public_url + STATUS_PATH
        _last_headers.set(None)
        try:
            created = await self.client.messages.create_async(**kwargs)
        except (TwilioRestException, TwilioServiceException) as error:
            raise _classify(error, _last_headers.get()) from error
        except aiohttp.ClientConnectorError as error:  # refused, unreachable, DNS: nothing was sent
            raise RetryLater(f"Twilio unreachable: {error}") from error
        except aiohttp.ConnectionTimeoutError as error:  # no connection within connect_timeout
            raise RetryLater(f"Twilio connection timed out: {error}") from error
        status = created.status or "queued"
        return SendReceipt(provider_id=created.sid,
                           status="queued" if status in ("accepted", "queued", "scheduled") else status)


def _channel_of(form: Mapping[str, str]) -> MessageChannel:
    """A webhook's channel: WhatsApp when its addresses carry the prefix (inbound: From; a status
    callback of ours: From and To)."""
    addresses = (form.get("From") or "", form.get("To") or "")
    return "whatsapp" if any(a.startswith(WHATSAPP) for a in addresses) else "sms"


def _classify(error: TwilioRestException | TwilioServiceException,
              headers: Mapping[str, str] | None) -> Exception:
    status = int(error.status or 0)
    code = str(error.code) if error.code is not None else None
    reason = (error.msg if isinstance(error, TwilioRestException) else
              f"{error.title}: {error.detail}" if error.detail else error.title) or f"HTTP {status}"
    if status == 429 or code == "20429" or status >= 500:
        return RetryLater(f"Twilio answered {status}" + (f" ({code})" if code else "") + f": {reason}",
                          after=_retry_after(headers))
    if status in (401, 403) and code in ("20003", "20005", None):
        # credentials refused or the account suspended: no message will go; keep them queued
        return RetryLater(f"Twilio refused the credentials ({status}): {reason}", after=300)
    return PermanentFailure(reason, code)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def _error_text(code: str) -> str:
    words = ERROR_TEXTS.get(code)
    return f"Twilio error {code}: {words}" if words else f"Twilio error {code}"


class _Form(Mapping[str, str]):
    """A webhook's form fields as posted (a field may repeat): ``form[name]`` and ``get`` are the
    first value, ``getall`` every value (what twilio's ``RequestValidator`` signs)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        self._first: dict[str, str] = {}
        for name, value in self.pairs:
            self._first.setdefault(name, value)

    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


def _missing(form: Mapping[str, str], *names: str) -> Outcome | None:
    missing = tuple(name for name in names if not form.get(name))
    return refused(Verdict.MALFORMED, "validation_failed", fields=missing) if missing else None
