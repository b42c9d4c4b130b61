"""Composition root: the one place that knows every part. It wires; it decides nothing.

``create_app(config)`` builds the application; the database engine, its migration, the bus and
the open event streams live and die with it (``cleanup_ctx`` / ``on_shutdown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from hub import texts
from hub.bus import InProcessBus
from hub.config import Config
from hub.crm import audit
from hub.crm.call_intake import CallIntake
from hub.crm.extensions import all_extensions
from hub.crm.messages import MessageIntake
from hub.crm.outgoing import OutgoingStore
from hub.crm.ports import CallSettings, Channel, JournalProcessor
from hub.crm.presence import PresenceBoard, owners
from hub.db import Database, create_engine, migrate
from hub.inbound.driver_store import driver_store
from hub.inbound.worker import JournalWorker
from hub.mail.channel import MailChannel
from hub.messengers.telegram import TelegramChannel
from hub.messengers.twilio_sms import TwilioChannel
from hub.outbox import Outbox
from hub.telephony.ami import AmiConnection
from hub.telephony.crm_bridge import CrmBridge, settings_from
from hub.web import auth, health, i18n, openapi, sse, vendor
from hub.web.api import attachments as attachment_api
from hub.web.api import calls as call_api
from hub.web.api import deals, notifications, people, timeline, webhooks
from hub.web.api import duplicates as duplicates_api
from hub.web.api import history as history_api
from hub.web.api import messages as message_api
from hub.web.api import presence as presence_api
from hub.web.api import search as search_api
from hub.web.api import settings as settings_api
from hub.web.errors import error_middleware
from hub.web.keys import (
    BUS,
    CALL_SETTINGS,
    CHANNELS,
    CONFIG,
    DB,
    DIALER,
    LOGIN_LIMITER,
    OPENAPI,
    PRESENCE,
    RECORDINGS_HTTP,
    STREAMS,
    TELEGRAM,
    TWILIO,
)
from hub.web.ratelimit import LoginLimiter
from hub.web.security import add_security_headers
from hub.web.views import bulk as bulk_views
from hub.web.views import chrome, deal_new, deals_board, pages
from hub.web.views import clients as client_views
from hub.web.views import deal_card as deal_card_views
from hub.web.views import duplicates as duplicate_views
from hub.web.views import inbox as inbox_views
from hub.web.views import leads as lead_views
from hub.web.views import presence as presence_views
from hub.web.views import reports as report_views
from hub.web.views import search as search_views
from hub.web.views import settings as settings_views
from hub.web.views import tasks as task_views

log = logging.getLogger(__name__)

# The parts the composition root built and keeps on the application (the web layer sees none of them).
AMI = web.AppKey("ami_connection", AmiConnection)
MAIL = web.AppKey("mail_channel", MailChannel)
OUTBOX = web.AppKey("outbox", Outbox)
MESSAGE_INTAKE = web.AppKey("message_intake", MessageIntake)
JOURNAL = web.AppKey("inbound_journal", JournalWorker)
# the messaging channels configured, in the order they start (each a crm.ports.Channel)
MESSAGING_CHANNELS = web.AppKey("messaging_channels", list[Channel])

# How often the tracker re-reads the users' extensions (users.py publishes no change event).
EXTENSIONS_REFRESH_SECONDS = 30.0

WEBUI = Path(__file__).resolve().parent / "webui"

# Every documented route table; the OpenAPI document is written from exactly these.
ROUTE_TABLES = (
    auth.routes, openapi.routes, health.routes, sse.routes,
    people.routes, deals.routes, timeline.routes, notifications.routes, attachment_api.routes,
    settings_api.routes, call_api.routes, webhooks.routes, message_api.routes, presence_api.routes,
    history_api.routes,
    search_api.routes,
    duplicates_api.routes,
)


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[error_middleware, auth.auth_middleware],
    )
    app[CONFIG] = config
    texts.use(config.server.language)  # what the core and the channels store is worded in it
    app[CALL_SETTINGS] = settings_from(config.asterisk, config.phones.default_region)
    app[BUS] = InProcessBus()
    # The engine connects lazily: nothing touches the database before startup migrates it.
    app[DB] = Database(create_engine(config.database.url, echo=config.database.echo), app[BUS],
                       ZoneInfo(config.server.timezone))
    app[STREAMS] = weakref.WeakSet()
    app[CHANNELS] = {}
    app[LOGIN_LIMITER] = LoginLimiter()
    app[OPENAPI] = openapi.build_document(ROUTE_TABLES)

    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(WEBUI / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    i18n.setup_jinja(env, i18n.load(WEBUI / "locale"), ZoneInfo(config.server.timezone))
    for table in ROUTE_TABLES:
        table.register(app.router)
    auth.register_views(app.router)
    pages.register_views(app.router)
    chrome.register_views(app.router)
    task_views.register_views(app.router)
    report_views.register_views(app.router)
    deal_new.register_views(app.router)  # /deals/new before /deals/{id}
    bulk_views.register_views(app.router)
    deals_board.register_views(app.router)
    deal_card_views.register_views(app.router)
    client_views.register_views(app.router)
    lead_views.register_views(app.router)
    inbox_views.register_views(app.router)
    settings_views.register_views(app.router)
    presence_views.register_views(app.router)
    search_views.register_views(app.router)
    duplicate_views.register_views(app.router)
    vendor.setup(app.router, WEBUI / "node_modules")
    app.router.add_static("/static", WEBUI / "static")

    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_audit_retention)
    if config.asterisk.host:
        # who is free: in memory, fed by the AMI connection (docs/decisions.md)
        app[PRESENCE] = PresenceBoard(app[BUS].publish)
        app[AMI] = _ami_connection(config, app[DB], app[CALL_SETTINGS], app[PRESENCE])
        app[CHANNELS].update(app[AMI].healths())  # started by _asterisk: its extensions are read first
        app[DIALER] = app[AMI]
        app.cleanup_ctx.append(_asterisk)
    _messaging(app, config)
    app.cleanup_ctx.append(_messaging_lifecycle)
    if config.asterisk.recordings_url and not config.asterisk.recordings_dir:
        app.cleanup_ctx.append(_recordings_http)
    app.on_shutdown.append(sse.stop_streams)
    app.on_response_prepare.append(add_security_headers)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    database = app[DB]
    try:
        await migrate(database.engine)
        yield
    finally:
        await database.dispose()


async def _audit_retention(app: web.Application) -> AsyncIterator[None]:
    """The audit log keeps ``[server] audit_days``: older events go at start and then daily."""
    async def purge_daily() -> None:
        while True:
            try:
                async with app[DB].transaction() as s:
                    await audit.purge(s, app[CONFIG].server.audit_days)
            except Exception:  # the next day tries again; the log says why
                log.exception("audit log: old events could not be purged")
            await asyncio.sleep(86_400)

    task = asyncio.create_task(purge_daily(), name="audit-retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _messaging(app: web.Application, config: Config) -> None:
    """The configured messaging channels and the outbox (which exists even with no channel: messages
    queued meanwhile wait for one)."""
    intake = MessageIntake(app[DB], attachments_dir=config.server.attachments_dir,
                           region=config.phones.default_region, journal_store=driver_store(app[DB]),
                           board=app.get(PRESENCE))
    senders: dict[str, Any] = {}
    processors: dict[str, JournalProcessor] = {}
    channels: list[Channel] = []
    if config.telegram.token:
        telegram = TelegramChannel(config.telegram, public_url=config.server.public_url, intake=intake)
        app[TELEGRAM] = telegram  # its webhook route
        channels.append(telegram)
        senders["telegram"] = processors["telegram"] = telegram
    if config.twilio.account_sid:
        twilio = TwilioChannel(config.twilio, public_url=config.server.public_url, intake=intake)
        app[TWILIO] = twilio  # its webhook routes
        channels.append(twilio)
        senders["sms"] = processors["sms"] = twilio
        if config.twilio.whatsapp_from:  # the same webhook and sender (hub.messengers.twilio_sms)
            senders["whatsapp"] = twilio
    if config.mailboxes:
        app[MAIL] = MailChannel(config.mailboxes, intake=intake)
        channels.append(app[MAIL])
        senders["email"] = app[MAIL]
    for channel in channels:
        app[CHANNELS].update(channel.healths())
    app[MESSAGING_CHANNELS] = channels
    app[OUTBOX] = Outbox(OutgoingStore(app[DB], config.server.attachments_dir), app[BUS], senders)
    app[MESSAGE_INTAKE] = intake
    app[JOURNAL] = JournalWorker(app[DB], processors, last_arrival=lambda: intake.writer.last_add)
    intake.journal_listeners.append(app[JOURNAL].wake)


async def _messaging_lifecycle(app: web.Application) -> AsyncIterator[None]:
    channels = app[MESSAGING_CHANNELS]
    started: list[Channel] = []
    try:
        for channel in channels:
            await channel.start()
            started.append(channel)
        await app[JOURNAL].start()
        await app[OUTBOX].start()
        yield
    finally:
        await app[OUTBOX].stop()
        for channel in reversed(started):
            await channel.stop()
        # deliveries still waiting to be journaled get an error (503): Telegram and Twilio send them again
        await app[MESSAGE_INTAKE].close()
        await app[JOURNAL].stop()


async def _recordings_http(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=30)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        app[RECORDINGS_HTTP] = session
        yield


def _ami_connection(config: Config, db: Database, settings: CallSettings,
                    presence: PresenceBoard) -> AmiConnection:
    intake = CallIntake(db, settings, board=presence)  # the board: route_to_free_agent (hub.crm.routing)
    # no extension is known before startup reads them: nothing is taken for an agent's phone
    return AmiConnection.from_config(config.asterisk, on_fact=CrmBridge(intake),
                                     on_resync=intake.close_unfinished, extensions=(),
                                     on_presence=presence.phones_changed)


async def _load_extensions(app: web.Application) -> None:
    async with app[DB].reading() as s:
        extensions = await all_extensions(s)
        phones = await owners(s)
    app[AMI].tracker.set_extensions(extensions)
    app[PRESENCE].set_owners(phones)


async def _refresh_extensions(app: web.Application) -> None:
    while True:
        await asyncio.sleep(EXTENSIONS_REFRESH_SECONDS)
        try:
            await _load_extensions(app)
        except Exception:
            log.exception("telephony: the users' extensions could not be re-read")


async def _asterisk(app: web.Application) -> AsyncIterator[None]:
    await _load_extensions(app)
    await app[AMI].start()
    refresher = asyncio.create_task(_refresh_extensions(app), name="telephony-extensions")
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await app[AMI].stop()
