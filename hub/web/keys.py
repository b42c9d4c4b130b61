"""Typed keys of what the composition root puts on the application and the auth layer on a request."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from hub.bus import InProcessBus
from hub.config import Config
from hub.crm.models import User
from hub.crm.ports import CallSettings, Dialer
from hub.crm.presence import PresenceBoard
from hub.db import Database
from hub.web.ratelimit import LoginLimiter
from hub.webhook import TelegramWebhook, TwilioWebhooks


@dataclass(frozen=True)
class Session:
    """How the current request was authenticated: ``kind`` is "bearer" or "session"."""

    kind: str
    token_hash: str
    csrf_token: str = ""


CONFIG = web.AppKey("config", Config)
# the call intake's settings from [asterisk] and [phones], mapped once by the composition root
CALL_SETTINGS = web.AppKey("call_settings", CallSettings)
DB = web.AppKey("database", Database)
BUS = web.AppKey("bus", InProcessBus)
# Open event streams, stopped on shutdown so that they do not hold the server open.
STREAMS = web.AppKey("event_streams", weakref.WeakSet[EventSourceResponse])
# Channel name → a function answering its state ("connected", "disconnected", ...) for /healthz.
CHANNELS = web.AppKey("channels", dict[str, Callable[[], str]])

# Click-to-call's way to the PBX, when [asterisk] host is set (the AMI connection).
DIALER: web.AppKey[Dialer] = web.AppKey("dialer")
# Who is free: the phones' states in memory (fed by the AMI connection when [asterisk] host is set).
PRESENCE = web.AppKey("presence_board", PresenceBoard)
# The messaging channels that receive webhooks, when configured ([telegram] token, [twilio] account_sid).
TELEGRAM: web.AppKey[TelegramWebhook] = web.AppKey("telegram_channel")
TWILIO: web.AppKey[TwilioWebhooks] = web.AppKey("twilio_channel")

# The HTTP client that fetches recordings from [asterisk] recordings_url (when set).
RECORDINGS_HTTP = web.AppKey("recordings_http", aiohttp.ClientSession)

OPENAPI = web.AppKey("openapi_document", dict[str, Any])
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)

USER = web.RequestKey("user", User)
SESSION = web.RequestKey("session", Session)
