"""The ``crmhub`` command (API.md, "Command line").

Every command loads the configuration and brings the database schema up to date first. User
errors (a bad config, a missing file, invalid input, a refused action) end in one line on stderr
and a non-zero exit code, never a traceback:

- 0: done;
- 1: the command failed or was refused (invalid input, missing file, database unreachable, ...);
- 2: usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hub.bus import InProcessBus
from hub.config import Config, ConfigError, load_config
from hub.crm.errors import DomainError
from hub.crm.models import LANGUAGES, ROLES, Setting, User
from hub.db import Database, create_engine, migrate

if TYPE_CHECKING:
    from hub.messengers.twilio_simulator import WhatsAppPerson

PROG = "crmhub"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A user-facing failure: the message is printed as is."""


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: the error message says so anyway
        return url


# --- the database around a command --------------------------------------------------------------

async def _with_database(config: Config, work: Callable[[Database], Awaitable[int]]) -> int:
    try:
        engine = create_engine(config.database.url, echo=config.database.echo)
    except Exception as exc:  # bad URL, unknown driver
        raise CommandError(f"cannot use database URL {_safe_url(config.database.url)}: {exc}") from exc
    database = Database(engine, InProcessBus(), ZoneInfo(config.server.timezone))
    try:
        try:
            await migrate(engine)
        except (OSError, SQLAlchemyError) as exc:
            raise CommandError(
                f"cannot open the database {_safe_url(config.database.url)}: {_first_line(exc)}"
            ) from exc
        return await work(database)
    finally:
        await database.dispose()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


# --- commands ------------------------------------------------------------------------------------

def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        _out(f"database {_safe_url(config.database.url)} is up to date")
        return EXIT_OK

    return asyncio.run(_with_database(config, work))


def cmd_backup(config: Config, args: argparse.Namespace) -> int:
    from hub import backup

    try:
        done = backup.backup(config.database.url, Path(args.file))
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from exc
    _out(f"backed up {_safe_url(config.database.url)} to {done.path} ({done.size} bytes, "
         f"schema {done.revision}); copy {config.server.attachments_dir} too")
    return EXIT_OK


def cmd_restore(config: Config, args: argparse.Namespace) -> int:
    from hub import backup

    try:
        done = backup.restore(config.database.url, Path(args.file))
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from exc
    _out(f"restored {_safe_url(config.database.url)} from {done.path} (schema {done.revision}); "
         "`crmhub migrate` brings an older schema up to date")
    return EXIT_OK


def cmd_create_user(config: Config, args: argparse.Namespace) -> int:
    from hub.crm import users

    async def work(database: Database) -> int:
        async with database.transaction() as s:
            existed = await s.scalar(select(User.id).where(User.login == args.login)) is not None
            user = await users.create_or_update_user(
                s, args.login, args.password, args.role, name=args.name,
                extensions=args.extension, language=args.language,
            )
        exts = ", ".join(str(e) for e in user.get("extensions") or []) or "none"
        _out(f"{'updated' if existed else 'created'} user {user.get('login', args.login)} "
             f"(id {user.get('id')}, role {user.get('role', args.role)}, extensions: {exts})")
        return EXIT_OK

    return asyncio.run(_with_database(config, work))


def cmd_demo_data(config: Config, args: argparse.Namespace) -> int:
    from hub.crm import demo

    async def work(database: Database) -> int:
        try:
            summary = await demo.fill(database, region=config.phones.default_region,
                                      attachments_dir=config.server.attachments_dir)
        except demo.NotEmpty as exc:
            raise CommandError(str(exc)) from exc
        _out(demo.describe(summary))
        return EXIT_OK

    return asyncio.run(_with_database(config, work))


def cmd_import_clients(config: Config, args: argparse.Namespace) -> int:
    from hub.crm import importer

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"file not found: {path}")

    async def work(database: Database) -> int:
        actor = await importer.default_actor(database, args.actor)
        try:
            result = await importer.import_clients(database, path, actor, config.phones.default_region)
        except importer.ImportFileError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        for bad in result.bad:
            _out(f"{path.name}: {bad}")
        _out(f"imported {result.imported} of {result.total} rows from {path.name}; "
             f"{len(result.bad)} bad row{'s' if len(result.bad) != 1 else ''}")
        return EXIT_OK if not result.bad else EXIT_FAILED

    return asyncio.run(_with_database(config, work))


async def _login_hint(database: Database) -> str | None:
    """The demo logins whose password is still the demo one (a changed password is not shown)."""
    from hub.crm import users
    from hub.crm.demo import SETTING_KEY

    pairs = []
    async with database.reading() as s:
        row = await s.get(Setting, SETTING_KEY)
        for item in (row.value.get("logins") or []) if row is not None else []:
            if await users.authenticate(s, item["login"], item["password"]) is not None:
                pairs.append(f"{item['login']} / {item['password']}")
    return f"demo data is loaded; log in as {', '.join(pairs)}" if pairs else None


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from hub.app import create_app

    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    _print_login_hint(config)
    return _serve(config, args, create_app(config))


def _print_login_hint(config: Config) -> None:
    async def prepare(database: Database) -> int:
        hint = await _login_hint(database)
        if hint:
            _out(hint)
        return EXIT_OK

    asyncio.run(_with_database(config, prepare))


def _serve(config: Config, args: argparse.Namespace, app: Any) -> int:
    from aiohttp import web

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "access_log", False):  # a line per request costs time on every request; opt in
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    host, port = config.server.host, config.server.port
    try:
        web.run_app(
            app, host=host, port=port,
            print=lambda _text: _out(f"CRM Hub is listening on http://{_display_host(host)}:{port}/ "
                                     "(Ctrl+C to stop)"),
        )
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return EXIT_OK


DEMO_INTERVAL_ENV = "CRMHUB_DEMO_CALL_INTERVAL"  # seconds between the demo PBX's calls (default 20–40)
DEMO_MESSAGE_INTERVAL_ENV = "CRMHUB_DEMO_MESSAGE_INTERVAL"  # between simulated Telegram/SMS messages (30–60)


def _demo_interval(env: str = DEMO_INTERVAL_ENV,
                   default: tuple[float, float] = (20.0, 40.0)) -> tuple[float, float]:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"{env} must be a number of seconds, not {raw!r}") from None
    if not 0 < seconds <= 3600:
        raise ConfigError(f"{env} must be between 0 and 3600 seconds")
    return (seconds, seconds)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def cmd_demo(config: Config, args: argparse.Namespace) -> int:
    """``run`` with demo data (when the database has none), a simulated PBX and, unless the config
    names a bot or a Twilio account, a simulated Telegram and a simulated Twilio on 127.0.0.1."""
    from aiohttp import web

    from hub.app import create_app
    from hub.crm import demo
    from hub.messengers.simulator import TelegramSimulator
    from hub.messengers.twilio_simulator import (
        DEMO_ACCOUNT_SID,
        DEMO_NUMBER,
        DEMO_WHATSAPP_NUMBER,
        DEMO_WHATSAPP_TEMPLATES,
        WHATSAPP,
        SmsPerson,
        TwilioSimulator,
    )
    from hub.telephony.simulator import AmiSimulator, leave_recording, run_demo_calls
    from hub.web.keys import DB

    interval = _demo_interval()
    message_interval = _demo_interval(DEMO_MESSAGE_INTERVAL_ENV, (30.0, 60.0))
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port

    # the simulated PBX's recordings (demo dialogues), next to the attachments
    recordings = Path(config.server.attachments_dir).parent / "demo-recordings"

    async def fill(database: Database) -> int:
        try:
            _out(demo.describe(await demo.fill(database, region=config.phones.default_region,
                                               attachments_dir=config.server.attachments_dir)))
        except demo.NotEmpty:
            pass  # the database has data already: it is used as it is
        async with database.reading() as s:  # the demo data's calls, and those of a previous run
            for name in await demo.call_recordings(s):
                leave_recording(recordings, name)
        return EXIT_OK

    asyncio.run(_with_database(config, fill))
    _print_login_hint(config)
    pbx_port = _free_port()  # for the simulated PBX
    asterisk = config.asterisk
    asterisk.host, asterisk.port = "127.0.0.1", pbx_port
    asterisk.username, asterisk.secret = "crmhub-demo", secrets.token_urlsafe(16)
    asterisk.trunks = ["trunk"]
    asterisk.recordings_dir, asterisk.recordings_url = str(recordings), ""
    telegram = config.telegram
    simulate_telegram = not telegram.token  # a bot of the user's own is kept
    tg_port = 0
    if simulate_telegram:
        tg_port = _free_port()
        telegram.token = f"{random.randrange(10**9, 10**10)}:AA{secrets.token_urlsafe(24)}"
        telegram.mode, telegram.api_url = "polling", f"http://127.0.0.1:{tg_port}"
    twilio = config.twilio
    simulate_sms = not twilio.account_sid  # a Twilio account of the user's own is kept
    sms_port = 0
    hub_host = config.server.host if config.server.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    hub_url = f"http://{_display_host(hub_host)}:{config.server.port}"  # where its webhooks go
    if simulate_sms:
        sms_port = _free_port()
        twilio.account_sid, twilio.auth_token = DEMO_ACCOUNT_SID, secrets.token_hex(16)
        twilio.from_number, twilio.messaging_service_sid = DEMO_NUMBER, ""
        twilio.api_url = f"http://127.0.0.1:{sms_port}"
        # WhatsApp through the same simulated account: its sender and approved templates
        twilio.whatsapp_from = WHATSAPP + DEMO_WHATSAPP_NUMBER
        if not twilio.whatsapp_templates:
            twilio.whatsapp_templates = [dict(t) for t in DEMO_WHATSAPP_TEMPLATES]
        if not config.server.public_url:  # the signatures of its webhooks are checked against it
            config.server.public_url = hub_url
    app = create_app(config)

    async def pick_number() -> str | None:
        async with app[DB].reading() as s:
            numbers = [n[2:] for n in await demo.client_phones(s) if n.startswith("+7") and len(n) == 12]
        return random.choice(numbers) if numbers else None

    async def pbx(app: web.Application) -> Any:
        sim = AmiSimulator(asterisk.username, asterisk.secret, host="127.0.0.1", port=pbx_port)
        sim.recordings_dir = recordings
        await sim.start()
        calls = asyncio.create_task(run_demo_calls(sim, pick_number, interval=interval), name="demo-pbx")
        _out(f"demo PBX (simulated Asterisk) on 127.0.0.1:{pbx_port}: a call every "
             f"{interval[0]:g}–{interval[1]:g} s to agent1 (101) and agent2 (102)")
        try:
            yield
        finally:
            calls.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await calls
            await sim.stop()

    async def simulated(sim: Any, name: str, line: str) -> Any:
        """A demo channel's simulator, up and playing for the app's lifetime."""
        # the people answer the agent a few seconds later (sooner when they write more often)
        sim.reply_delay = (min(3.0, message_interval[0]), min(6.0, message_interval[1]))
        await sim.start()
        play = asyncio.create_task(sim.play(message_interval), name=name)
        _out(line)
        try:
            yield
        finally:
            play.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await play
            await sim.stop()

    every = f"{message_interval[0]:g}–{message_interval[1]:g} s"

    async def messenger(app: web.Application) -> Any:
        sim = TelegramSimulator(telegram.token, host="127.0.0.1", port=tg_port)
        async for _ in simulated(sim, "demo-telegram",
                                 f"demo Telegram (simulated Bot API) on 127.0.0.1:{tg_port}: a client writes "
                                 f"every {every}; answer in the inbox, they write back"):
            yield

    async def sms_people() -> list[SmsPerson]:
        async with app[DB].reading() as s:
            return [SmsPerson(phone, client) for phone, client in await demo.sms_people(s)]

    async def sms(app: web.Application) -> Any:
        sim = TwilioSimulator(twilio.account_sid, twilio.auth_token, number=twilio.from_number,
                              host="127.0.0.1", port=sms_port, hub_url=hub_url,
                              public_url=config.server.public_url,
                              whatsapp_number=twilio.whatsapp_from, templates=twilio.whatsapp_templates)
        sim.people_source = sms_people
        sim.whatsapp_source = lambda: demo_whatsapp_people(app[DB])
        sim.window_source = lambda phone: whatsapp_last_written(app[DB], phone)
        async for _ in simulated(sim, "demo-sms",
                                 f"demo SMS and WhatsApp (simulated Twilio) on 127.0.0.1:{sms_port}: a "
                                 f"client texts every {every}, by SMS or WhatsApp ({twilio.whatsapp_from}); "
                                 f"answer in the inbox, they text back"):
            yield

    app.cleanup_ctx.insert(0, pbx)  # up before the AMI connection logs in
    if simulate_telegram:
        app.cleanup_ctx.insert(0, messenger)  # up before the channel's first getMe
    else:
        _out("Telegram: the bot of [telegram] token is used (no simulated Telegram)")
    if simulate_sms:
        app.cleanup_ctx.insert(0, sms)  # up before the outbox's first SMS
    else:
        _out("SMS: the Twilio account of [twilio] account_sid is used (no simulated Twilio)")
    return _serve(config, args, app)


async def demo_whatsapp_people(database: Database, at_least: int = 3) -> list[WhatsAppPerson]:
    """The people ``crmhub demo``'s simulated Twilio plays on WhatsApp (``WhatsAppPerson``): those of
    the WhatsApp conversations with a client or a lead (the titles: their profile names), then clients
    who are people, on their mobiles, until there are ``at_least``."""
    from hub.crm.models import Client, ContactPoint, Conversation
    from hub.messengers.twilio_simulator import WhatsAppPerson

    async with database.reading() as s:
        rows = (await s.execute(
            select(Conversation.address, Conversation.title, Conversation.client_id)
            .where(Conversation.channel == "whatsapp",
                   (Conversation.client_id.is_not(None)) | (Conversation.lead_id.is_not(None)))
            .order_by(Conversation.id))).all()
        people = [WhatsAppPerson(address, title or address, client_id is not None)
                  for address, title, client_id in rows]
        if len(people) < at_least:
            taken = {p.phone for p in people}
            mobiles = (await s.execute(
                select(ContactPoint.value, Client.name).join(Client, Client.id == ContactPoint.client_id)
                .where(ContactPoint.kind == "phone", Client.kind == "person",
                       ContactPoint.value.startswith("+79"))
                .order_by(ContactPoint.id).limit(at_least + len(taken)))).all()
            people += [WhatsAppPerson(phone, name) for phone, name in mobiles if phone not in taken]
        return people[:max(at_least, len(rows))]


async def whatsapp_last_written(database: Database, phone: str) -> datetime | None:
    """When a WhatsApp number last wrote, as far as the hub knows (``crmhub demo``'s simulated Twilio
    asks it about the people it has not seen write: the demo data, a restart)."""
    from sqlalchemy import func

    from hub.crm.models import Conversation, Message

    async with database.reading() as s:
        last: datetime | None = await s.scalar(
            select(func.max(Message.created_at))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.channel == "whatsapp", Conversation.address == phone,
                   Message.direction == "in"))
    return last


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- parsing -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="TOML configuration file (default: $CRMHUB_CONFIG, else built-in defaults)")

    parser = argparse.ArgumentParser(prog=PROG, description="CRM Hub: telephony and messengers around a CRM")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", parents=[common], help="migrate the database and start the HTTP server")
    p.add_argument("--host", help="address to listen on (overrides [server] host)")
    p.add_argument("--port", type=int, help="port to listen on (overrides [server] port)")
    p.add_argument("--access-log", action="store_true", help="log every HTTP request")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", parents=[common],
                       help="run with demo data, a simulated PBX placing calls (screen-pops, no Asterisk) "
                            "and simulated Telegram, SMS and WhatsApp clients writing (no bot, no Twilio "
                            "account)")
    p.add_argument("--host", help="address to listen on (overrides [server] host)")
    p.add_argument("--port", type=int, help="port to listen on (overrides [server] port)")
    p.add_argument("--access-log", action="store_true", help="log every HTTP request")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", parents=[common], help="apply database migrations and exit")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("backup", parents=[common],
                       help="copy the SQLite database, consistently, while the hub runs "
                            "(PostgreSQL: pg_dump)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", parents=[common],
                       help="replace the SQLite database with a backup (stop the hub first)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("create-user", parents=[common], help="create or update a user")
    p.add_argument("--login", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--name", help="display name (default: the login)")
    p.add_argument("--extension", action="append", metavar="EXT",
                   help="internal phone number that rings this user (repeatable)")
    p.add_argument("--language", choices=LANGUAGES)
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser("demo-data", parents=[common], help="fill an empty database with Russian demo data")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("import-clients", parents=[common],
                       help="import clients from a CSV file "
                       "(columns name, inn, kpp, phones, emails, manager)")
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--actor", metavar="LOGIN",
                   help="user the import is done as (default: the first administrator)")
    p.set_defaults(func=cmd_import_clients)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error; argparse has printed why
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return EXIT_USAGE
    try:
        return int(args.func(config, args))
    except CommandError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return EXIT_USAGE
    except DomainError as exc:
        _err(_domain_message(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _domain_message(exc: DomainError) -> str:
    if exc.fields:
        details = "; ".join(f"{name}: {reason}" for name, reason in exc.fields.items())
        return f"{exc.message}: {details}"
    return exc.message


def _entry(argv: Any = None) -> None:  # pragma: no cover - ``python -m hub.cli``
    sys.exit(main(argv))


if __name__ == "__main__":  # pragma: no cover
    _entry()
