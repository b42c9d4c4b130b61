"""Telegram through python-telegram-bot: webhook or long polling in, the outbox's sender out.

What it handles (one ``Update`` → one call into ``hub.crm.ports.MessageIntakePort``):

=====================  ===================================================================================
update                 what the intake gets
=====================  ===================================================================================
message                ``received`` (text or caption; photo, document, voice, video, audio, animation,
                       video note downloaded as ``InboundFile``; sticker, location, venue, contact as text
                       in brackets, in the hub's language (``hub.texts``), plus ``extra``; ``/start
                       PAYLOAD`` → source / UTM; a shared own contact → ``shared_phone`` +
                       ``shared_own_phone``)
edited_message         ``received`` with ``edited=True`` (the core replaces the entry's text)
callback_query         ``received``: ``[кнопка] <button text>`` (``[button]`` in an English hub) as a
                       message of the user, a reply to the bot's message that carried the keyboard (the
                       callback is answered, best effort)
my_chat_member         ``blocked`` (kicked / left → True, member / administrator → False), then
                       ``delivery_seen``
anything else          ``delivery_seen``; ignored (debug log)
=====================  ===================================================================================

Every delivery is keyed by its ``update_id`` (``delivery_key``), every message by
``"<chat_id>:<message_id>"``: a webhook delivered twice, or a poll repeated after a crash between the
intake and saving the offset, adds nothing.

Sending is plain text (no ``parse_mode``): whatever the agent typed — ``<b>``, ``*``, ``_`` — arrives
literally, so nothing needs escaping and nothing can break the request (docs/decisions.md, Telegram).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import Bot, Message, ReplyParameters, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from hub import background, backoff
from hub.config import TelegramConfig
from hub.crm.ports import (
    InboundFile,
    InboundMessage,
    MessageIntakePort,
    OutgoingFile,
    OutgoingMessage,
    PermanentFailure,
    RetryLater,
    SendReceipt,
)
from hub.texts import say
from hub.webhook import ACCEPTED, DUPLICATE, Outcome, Verdict, refused

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
OFFSET_CURSOR = "telegram.offset"
ALLOWED_UPDATES = ("message", "edited_message", "my_chat_member", "callback_query")
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile serves files up to 20 MB
CAPTION_LIMIT = 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto takes photos up to 10 MB; larger images go as documents
# httpx errors raised before a byte of the request left: such a send certainly did not happen
NOT_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol", "ProxyError")
UTM_KEYS = ("source", "medium", "campaign", "content", "term")


def _redact(text: str, token: str) -> str:
    """Never let the bot token (it is in every request URL) reach a log, a health text or a reason."""
    return text.replace(token, "<token>") if token else text


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _retry_after(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int will become a timedelta
        warnings.simplefilter("ignore")
        return _seconds(error.retry_after)


def _cause_name(error: BaseException) -> str:
    return type(error.__cause__).__name__ if error.__cause__ is not None else ""


def start_payload(text: str) -> str | None:
    """The payload of ``/start PAYLOAD`` (``/start@bot PAYLOAD`` too); None for any other text."""
    match = re.match(r"^/start(?:@\w+)?(?:\s+(\S.*))?$", text.strip(), re.DOTALL)
    if match is None:
        return None
    return (match.group(1) or "").strip()


def parse_utm(payload: str) -> dict[str, str] | None:
    """``utm_source-yandex_campaign-ac`` (deep links allow only ``A-Za-z0-9_-``: ``_`` separates the
    pairs, ``-`` a key from its value) → ``{"utm_source": "yandex", "utm_campaign": "ac"}``; a value
    containing ``_`` keeps it (a part that starts no known key continues the previous value). None
    when the payload does not look like UTM marks."""
    if not payload.lower().startswith("utm_"):
        return None
    result: dict[str, str] = {}
    current: str | None = None
    for part in payload.split("_"):
        if part.lower() == "utm":
            continue
        key, dash, value = part.partition("-")
        if dash and key.lower() in UTM_KEYS:
            current = "utm_" + key.lower()
            result[current] = value
        elif current is not None:
            result[current] += "_" + part
    result = {k: v for k, v in result.items() if v}
    return result or None


class TelegramChannel:
    """``start``/``stop`` with the hub; ``webhook_refusal`` + ``take_webhook`` take a delivery of
    ``POST /webhooks/telegram`` (read and answered by ``hub.web.webhooks``);
    ``send`` is the outbox's sender for ``telegram``; ``health`` goes to /healthz.

    The knobs below are attributes so a test (or a slow network) can change them before ``start``.
    """

    name = "telegram"

    def __init__(self, config: TelegramConfig, *, public_url: str, intake: MessageIntakePort) -> None:
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.intake = intake
        self.state = "connecting"
        self.request_timeout = 10.0  # seconds for each Bot API call but the long poll
        self.poll_timeout = 25  # seconds getUpdates waits for an update
        self.backoff_base = 1.0  # first pause after a failure; doubles up to backoff_cap (with jitter)
        self.backoff_cap = 60.0
        self.download_limit = DOWNLOAD_LIMIT
        self.download_attempts = 3
        self.bot: Bot | None = None
        self._task: asyncio.Task[None] | None = None
        # parts of a multi-part message (text, then files) already sent, by our message id: a retry
        # after a failure half-way sends only the rest
        self._progress: dict[int, tuple[int, str]] = {}

    # --- lifecycle ------------------------------------------------------------------------------------

    def health(self) -> str:
        return self.state

    def healths(self) -> dict[str, Callable[[], str]]:
        return {"telegram": self.health}

    def _set_state(self, state: str) -> None:
        if state != self.state:
            (log.info if state in ("webhook", "polling") else log.warning)("telegram: %s", state)
        self.state = state

    def _build_bot(self) -> Bot:
        root = self.config.api_url.rstrip("/")
        # trust_env=False: a proxy from the environment must not capture a local Bot API server
        kwargs: dict[str, Any] = {"httpx_kwargs": {"trust_env": False}}
        timeout = self.request_timeout
        request = HTTPXRequest(connection_pool_size=16, read_timeout=timeout, write_timeout=timeout,
                               connect_timeout=timeout, pool_timeout=timeout, media_write_timeout=60.0,
                               **kwargs)
        # getUpdates adds its own ``timeout`` to this read timeout
        polling = HTTPXRequest(connection_pool_size=1, read_timeout=timeout, write_timeout=timeout,
                               connect_timeout=timeout, pool_timeout=timeout, **kwargs)
        return Bot(self.config.token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot",
                   request=request, get_updates_request=polling)

    async def start(self) -> None:
        """Never raises for Telegram being away: the state says it and a background task retries."""
        # httpx logs every request's URL at INFO, and a Bot API URL carries the bot token (unless
        # somebody chose the httpx logger's level on purpose)
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            httpx_log.setLevel(logging.WARNING)
        self.bot = self._build_bot()
        mode = self.config.mode
        if mode == "webhook":
            if not self.config.webhook_secret:
                self._set_state("error: webhook mode needs [telegram] webhook_secret "
                                "(updates without it would be unauthenticated); not receiving")
                log.error("telegram: %s", self.state)
                return
            if not self.public_url:
                self._set_state("error: webhook mode needs [server] public_url; not receiving")
                log.error("telegram: %s", self.state)
                return
            self._task = asyncio.create_task(self._register_webhook(), name="telegram-webhook")
        elif mode == "polling":
            self._task = asyncio.create_task(self._poll(), name="telegram-polling")
        else:
            self._set_state(f"error: unknown [telegram] mode {mode!r} (webhook or polling)")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.shutdown()
            self.bot = None
        self.state = "stopped"

    def _pause(self, failures: int) -> float:
        return backoff.delay(failures - 1, initial=self.backoff_base, cap=self.backoff_cap, jitter=(0.5, 1.0))

    def _failed(self, error: BaseException, doing: str) -> None:
        text = _redact(str(error) or type(error).__name__, self.config.token)
        if isinstance(error, InvalidToken):
            self._set_state("auth_failed: the bot token was rejected by Telegram")
        else:
            self._set_state(f"error: {doing}: {text}")

    async def _connect(self) -> None:
        """getMe until it answers (the token checked), with backoff."""
        assert self.bot is not None
        failures = 0
        while True:
            try:
                await self.bot.initialize()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self._failed(error, "cannot reach the Bot API")
                await asyncio.sleep(self._pause(failures))

    async def _register_webhook(self) -> None:
        assert self.bot is not None
        await self._connect()
        url = self.public_url + WEBHOOK_PATH
        failures = 0
        while True:
            try:
                await self.bot.set_webhook(url, secret_token=self.config.webhook_secret,
                                           allowed_updates=list(ALLOWED_UPDATES))
                self._set_state("webhook")
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self._failed(error, "setWebhook failed")
                await asyncio.sleep(self._pause(failures))

    async def _poll(self) -> None:
        """getUpdates from the stored offset; the offset saved after each batch."""
        assert self.bot is not None
        await self._connect()
        failures = 0
        webhook_removed = False
        offset: int | None = None
        while True:
            try:
                if not webhook_removed:
                    # getUpdates answers 409 while a webhook is set
                    await self.bot.delete_webhook(drop_pending_updates=False)
                    webhook_removed = True
                    self._set_state("polling")  # the API answered: polling from now on
                if offset is None:
                    stored = await self.intake.cursor(OFFSET_CURSOR)
                    offset = int(stored) if stored and stored.isdecimal() else 0
                updates = await self.bot.get_updates(offset=offset or None, timeout=self.poll_timeout,
                                                     allowed_updates=list(ALLOWED_UPDATES))
                self._set_state("polling")
                failures = 0
                if not updates:
                    continue
                try:
                    for update in updates:
                        await self._take(update)
                        offset = max(offset, update.update_id + 1)
                finally:
                    # what was taken is not asked for again (an update taken twice would be a no-op)
                    await self.intake.set_cursor(OFFSET_CURSOR, str(offset))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                if not isinstance(error, TelegramError):
                    log.exception("telegram: an update could not be taken in; retrying")
                self._failed(error, "polling failed")
                await asyncio.sleep(self._pause(failures))

    # --- inbound ----------------------------------------------------------------------------------------

    def webhook_refusal(self, secret_token: str) -> Outcome | None:
        """The ``X-Telegram-Bot-Api-Secret-Token`` a webhook delivery carried, checked before its body
        is read: the refusal, or None."""
        secret = self.config.webhook_secret
        if not secret:
            return refused(Verdict.NOT_CONFIGURED, "webhook_disabled")
        if not hmac.compare_digest(secret_token.encode(), secret.encode()):
            return refused(Verdict.FORBIDDEN, "forbidden")
        return None

    async def take_webhook(self, body: bytes) -> Outcome:
        """An update's body (its secret checked by ``webhook_refusal``): the JSON checked, then
        journaled before the answer; NOT_STORED when the journal fails, so Telegram delivers again."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
            return refused(Verdict.MALFORMED, "bad_json", f"{type(error).__name__}: {error}")
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return refused(Verdict.MALFORMED, "bad_update")
        try:
            # stored before we answer (the full parse is the journal worker's: see process below)
            # and taken into the CRM by hub.inbound.worker
            stored = await self.intake.journal("telegram", str(update_id), body)
        except Exception:
            log.exception("telegram: update %s could not be stored; Telegram will deliver it again",
                          update_id)
            return refused(Verdict.NOT_STORED, "unavailable")
        return ACCEPTED if stored is not False else DUPLICATE

    async def process(self, key: str, body: bytes, journal_id: int) -> None:
        """A journaled webhook update into the CRM (``hub.crm.ports.JournalProcessor``)."""
        await self._take(Update.de_json(json.loads(body), self.bot), journal_id=journal_id)

    async def _received(self, inbound: InboundMessage, key: str, journal_id: int | None) -> None:
        if journal_id is None:
            await self.intake.received(inbound, delivery_key=key)
        else:
            await self.intake.received(inbound, journal_id=journal_id)

    async def _seen(self, key: str, journal_id: int | None) -> None:
        if journal_id is None:
            await self.intake.delivery_seen("telegram", key)
        else:
            await self.intake.finish(journal_id)

    async def _take(self, update: Update, journal_id: int | None = None) -> None:
        """One update into the CRM (see the module's table); raises when the intake fails. Polled
        updates are remembered by their update_id here; webhook ones were journaled (``journal_id``)."""
        key = str(update.update_id)
        message = update.message or update.edited_message
        if message is not None:
            inbound = await self._inbound(message, edited=update.edited_message is not None)
            if inbound is None:
                await self._seen(key, journal_id)
                log.debug("telegram: update %s carries a service message; ignored", key)
                return
            await self._received(inbound, key, journal_id)
            return
        if update.callback_query is not None:
            await self._callback(update, key, journal_id)
            return
        member = update.my_chat_member
        if member is not None:
            status = member.new_chat_member.status
            if status in ("kicked", "left"):
                await self.intake.blocked("telegram", str(member.chat.id), True)
            elif status in ("member", "administrator", "creator", "restricted"):
                await self.intake.blocked("telegram", str(member.chat.id), False)
            await self._seen(key, journal_id)
            return
        await self._seen(key, journal_id)
        log.debug("telegram: update %s of a kind not handled; ignored", key)

    async def _callback(self, update: Update, key: str, journal_id: int | None) -> None:
        """A press on an inline button: kept as the user's message ``[кнопка] <text>`` answering the
        bot's message that carried it; the spinner on the button is stopped (best effort)."""
        query = update.callback_query
        assert query is not None
        user = query.from_user
        source = query.message if isinstance(query.message, Message) else None
        chat_id = source.chat.id if source is not None else user.id
        label = query.data or query.game_short_name or ""
        if source is not None and source.reply_markup is not None:
            for row in source.reply_markup.inline_keyboard:
                for button in row:
                    if button.callback_data is not None and button.callback_data == query.data:
                        label = button.text
        inbound = InboundMessage(
            channel="telegram", provider_id=f"{chat_id}:cb{query.id}", address=str(chat_id),
            text=say("[button] %(label)s", label=label).strip(), sender_name=user.full_name,
            sender_id=str(user.id), username=user.username,
            reply_to_provider_id=f"{chat_id}:{source.message_id}" if source is not None else None,
            extra={"callback_data": query.data} if query.data else None)
        await self._received(inbound, key, journal_id)
        if self.bot is not None:
            try:
                await self.bot.answer_callback_query(query.id)
            except Exception as error:  # the press is stored; the spinner stops by itself
                log.debug("telegram: answerCallbackQuery failed: %s", _redact(str(error), self.config.token))

    async def _inbound(self, message: Message, *, edited: bool) -> InboundMessage | None:
        """The core's view of a message; None for a service message (joined, pinned...)."""
        chat = message.chat
        user = message.from_user
        chat_id = chat.id
        text = message.text or message.caption or ""
        notes: list[str] = []
        extra: dict[str, Any] = {}
        files: list[InboundFile] = []
        source = utm = None
        shared_phone, shared_own = None, False

        payload = start_payload(message.text) if message.text else None
        if payload:
            source = payload[:100]
            utm = parse_utm(payload)

        media = self._media(message)
        if media is not None:
            attachment, filename, content_type, size = media
            if size is not None and size > self.download_limit:
                notes.append(say('[file "%(name)s" not loaded: %(size)s MB, over %(limit)s MB]',
                                 name=filename, size=format(size / 1048576, ".1f"),
                                 limit=self.download_limit // 1048576))
                extra["file_not_downloaded"] = {"filename": filename, "size": size, "reason": "too_big"}
            else:
                data = await self._download(attachment.file_id, filename, notes, extra)
                if data is not None:
                    files.append(InboundFile(filename=filename, content_type=content_type, data=data))
        if message.sticker is not None:
            emoji = message.sticker.emoji or ""
            notes.append(say("[sticker %(emoji)s]", emoji=emoji).replace(" ]", "]"))
            extra["sticker"] = {"emoji": emoji, "set_name": message.sticker.set_name}
        if message.venue is not None:
            venue = message.venue
            extra["venue"] = {"title": venue.title, "address": venue.address}
        if message.location is not None:
            loc = message.location
            extra["location"] = {"latitude": loc.latitude, "longitude": loc.longitude}
            where = f"{loc.latitude:.6f}, {loc.longitude:.6f}"
            if message.venue is not None:
                where = f"{message.venue.title}, {message.venue.address} ({where})"
            notes.append(say("[location %(place)s]", place=where))
        if message.contact is not None:
            contact = message.contact
            shared_phone = contact.phone_number
            shared_own = contact.user_id is not None and user is not None and contact.user_id == user.id
            name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
            notes.append(say("[contact %(name)s %(phone)s]", name=name, phone=contact.phone_number)
                         .replace("  ", " "))
            extra["contact"] = {"phone": contact.phone_number, "name": name, "user_id": contact.user_id,
                                "own": shared_own}
        if not text and not notes and not files:
            return None  # a service message: a member joined, a pin, a new title...

        if notes:
            text = "\n".join([text, *notes]) if text else "\n".join(notes)
        if chat.type != "private":
            # the conversation is the group; each message names its author (payload "from")
            extra["chat"] = {"type": str(chat.type), "title": chat.title}
        if user is not None:
            sender_name, sender_id, username = user.full_name, str(user.id), user.username
        else:  # posted on behalf of a chat (an anonymous admin, a channel)
            sender = message.sender_chat or chat
            sender_name, sender_id, username = sender.title or sender.full_name or "", None, sender.username
        reply = message.reply_to_message
        at = (message.edit_date or message.date) if edited else message.date
        return InboundMessage(
            channel="telegram", provider_id=f"{chat_id}:{message.message_id}", address=str(chat_id),
            text=text, sender_name=sender_name, sender_id=sender_id, username=username, files=tuple(files),
            at=at, edited=edited,
            reply_to_provider_id=f"{chat_id}:{reply.message_id}" if reply is not None else None,
            source=source, utm=utm, shared_phone=shared_phone, shared_own_phone=shared_own,
            extra=extra or None)

    @staticmethod
    def _media(message: Message) -> tuple[Any, str, str, int | None] | None:
        """(the file object, a file name, its content type, its size) of the message's one file."""
        mid = message.message_id
        if message.photo:
            largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
            return largest, f"photo_{mid}.jpg", "image/jpeg", largest.file_size
        if message.document is not None:
            d = message.document
            return d, d.file_name or f"document_{mid}", d.mime_type or "application/octet-stream", d.file_size
        if message.voice is not None:
            v = message.voice
            return v, f"voice_{mid}.ogg", v.mime_type or "audio/ogg", v.file_size
        if message.video is not None:
            vid = message.video
            return vid, vid.file_name or f"video_{mid}.mp4", vid.mime_type or "video/mp4", vid.file_size
        if message.audio is not None:
            a = message.audio
            return a, a.file_name or f"audio_{mid}.mp3", a.mime_type or "audio/mpeg", a.file_size
        if message.animation is not None:
            gif = message.animation
            return gif, gif.file_name or f"animation_{mid}.mp4", gif.mime_type or "video/mp4", gif.file_size
        if message.video_note is not None:
            note = message.video_note
            return note, f"video_note_{mid}.mp4", "video/mp4", note.file_size
        return None

    async def _download(self, file_id: str, filename: str, notes: list[str],
                        extra: dict[str, Any]) -> bytes | None:
        """getFile + the download, tried ``download_attempts`` times over a network failure; a failure
        keeps the message with a note instead of the file (a message is never held back for a file)."""
        assert self.bot is not None
        attempt = 0
        while True:
            attempt += 1
            try:
                file = await self.bot.get_file(file_id)
                if file.file_size is not None and file.file_size > self.download_limit:
                    raise BadRequest("file is too big")
                return bytes(await file.download_as_bytearray())
            except Exception as error:
                transient = isinstance(error, NetworkError | RetryAfter) and not isinstance(error, BadRequest)
                if transient and attempt < self.download_attempts:
                    await asyncio.sleep(backoff.delay(attempt - 1, initial=self.backoff_base,
                                                      cap=self.backoff_cap))
                    continue
                reason = _redact(str(error) or type(error).__name__, self.config.token)
                log.warning("telegram: file %r could not be downloaded: %s", filename, reason)
                notes.append(say('[file "%(name)s" not loaded: %(reason)s]', name=filename, reason=reason))
                extra["file_not_downloaded"] = {"filename": filename, "reason": reason}
                return None

    # --- outbound ---------------------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """Text as plain text (no parse_mode), files as photos or documents; a caption when the text
        fits one, else the text first. Errors → RetryLater / PermanentFailure / raised (unknown).
        The parts of a message already sent are remembered (in the database through the intake, and
        in this process), so a retry — the outbox's, or the agent's after a crash — sends only the
        rest."""
        if self.bot is None:
            raise RetryLater("the Telegram channel is not started")
        address = message.address
        chat_id: int | str = int(address) if re.fullmatch(r"-?\d+", address) else address
        reply_id = None
        if message.reply_to_provider_id:
            chat_part, _, msg_part = message.reply_to_provider_id.rpartition(":")
            if chat_part == str(chat_id) and msg_part.isdecimal():
                reply_id = int(msg_part)
        text = message.text or ""
        steps: list[tuple[str, Any]] = []  # ("text", text) | ("file", (OutgoingFile, caption))
        caption_fits = bool(message.files) and len(text) <= CAPTION_LIMIT
        if text and not caption_fits:
            steps.append(("text", text))
        for index, file in enumerate(message.files):
            steps.append(("file", (file, text if caption_fits and index == 0 and text else None)))
        if not steps:
            raise PermanentFailure("nothing to send: no text and no file", code="empty")

        done, first_id = max((message.parts_sent, message.first_part_id or ""),
                             self._progress.get(message.id, (0, "")))
        try:
            for number, (kind, what) in enumerate(steps):
                if number < done:
                    continue
                reply = (ReplyParameters(message_id=reply_id, allow_sending_without_reply=True)
                         if reply_id is not None and number == 0 else None)
                if kind == "text":
                    sent = await self.bot.send_message(chat_id, what, reply_parameters=reply)
                else:
                    sent = await self._send_file(chat_id, what[0], what[1], reply)
                if number == 0:
                    first_id = f"{sent.chat.id}:{sent.message_id}"
                done = number + 1
                self._progress[message.id] = (done, first_id)
                if len(steps) > 1:
                    await self._part_sent(message.id, done, first_id)
        except RetryAfter as error:
            after = _retry_after(error)
            raise RetryLater(f"Telegram flood control: retry after {after:g} s", after=after) from error
        except Forbidden as error:
            reason = self._reason(error)
            with contextlib.suppress(Exception):  # the conversation shows it; queueing more is refused
                await self.intake.blocked("telegram", message.address, True)
            raise PermanentFailure(reason, code="forbidden") from error
        except InvalidToken as error:
            raise PermanentFailure("the bot token was rejected by Telegram", code="unauthorized") from error
        except ChatMigrated as error:
            raise PermanentFailure(f"the group became a supergroup (new chat id {error.new_chat_id}); "
                                   "write to it there", code="chat_migrated") from error
        except BadRequest as error:
            raise PermanentFailure(self._reason(error), code="bad_request") from error
        except TimedOut as error:
            if _cause_name(error) in NOT_SENT:
                raise RetryLater(f"Telegram unreachable: {self._reason(error)}") from error
            raise  # the request may have reached Telegram: the outbox marks the result unknown
        except NetworkError as error:
            # no cause, or a body that was no JSON: the server answered with an HTTP error (5xx);
            # a connect error: nothing left. Otherwise the connection broke mid-way: unknown
            if (error.__cause__ is None or isinstance(error.__cause__, TelegramError)
                    or _cause_name(error) in NOT_SENT):
                raise RetryLater(f"Telegram unavailable: {self._reason(error)}") from error
            raise
        except OSError as error:  # an attachment missing on disk
            raise PermanentFailure(f"an attachment cannot be read: {error.strerror or error}",
                                   code="file_missing") from error
        self._progress.pop(message.id, None)
        return SendReceipt(provider_id=first_id or None, status="sent")

    async def _part_sent(self, message_id: int, done: int, first_id: str) -> None:
        try:
            await self.intake.part_sent(message_id, done, first_id)
        except Exception:  # the process still remembers it; only a crash now would repeat the part
            log.warning("telegram: could not record that %d part(s) of message %d went out", done, message_id,
                        exc_info=True)

    def _reason(self, error: TelegramError) -> str:
        return _redact(error.message or type(error).__name__, self.config.token)

    async def _send_file(self, chat_id: int | str, file: OutgoingFile, caption: str | None,
                         reply: ReplyParameters | None) -> Message:
        assert self.bot is not None
        data = await asyncio.to_thread(Path(file.path).read_bytes)
        if file.content_type in PHOTO_TYPES and len(data) <= PHOTO_LIMIT:
            return await self.bot.send_photo(chat_id, data, caption=caption, reply_parameters=reply,
                                             filename=file.filename)
        return await self.bot.send_document(chat_id, data, caption=caption, reply_parameters=reply,
                                            filename=file.filename)
