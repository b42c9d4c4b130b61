"""Configuration: a TOML file plus ``CRMHUB_<SECTION>_<KEY>`` environment overrides.

With no file at all the hub runs on SQLite in ``./var/crmhub.db`` on 127.0.0.1:8080.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.texts import LANGUAGES

ENV_PREFIX = "CRMHUB_"


class ConfigError(Exception):
    """The configuration file or an override is unusable; the message says which key and why."""


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    secret_key: str = ""
    max_body_bytes: int = 10 * 1024 * 1024
    session_days: int = 14
    token_days: int = 90  # an API token's life; then it is refused (401)
    # reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the login
    # limits count the client's address, not the proxy's
    trusted_proxies: list[str] = field(default_factory=list)
    audit_days: int = 365  # how long the audit log keeps an event
    attachments_dir: str = "var/attachments"
    timezone: str = "Europe/Moscow"  # the day the pages count "today" in, and how they show times
    # the language of the texts the hub writes for everyone (a callback task's subject, a placeholder
    # for a sticker): hub.texts; each user still reads the pages in their own
    language: str = "ru"


@dataclass
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/crmhub.db"
    echo: bool = False


@dataclass
class PhonesConfig:
    default_region: str = "RU"


@dataclass
class AsteriskConfig:
    host: str = ""
    port: int = 5038
    username: str = ""
    secret: str = ""
    trunks: list[str] = field(default_factory=list)
    recordings_dir: str = ""
    recordings_url: str = ""
    unknown_caller: str = "auto"
    ignored_numbers: list[str] = field(default_factory=list)
    reconnect_max_seconds: float = 2.0  # the AMI reconnect backoff's cap (docs/decisions.md)


# numbers with a range, low < value <= high (a value outside stops the hub, naming the key)
_RANGES: dict[str, tuple[float, float]] = {"asterisk.reconnect_max_seconds": (0.0, 300.0)}


@dataclass
class TelegramConfig:
    token: str = ""
    mode: str = "webhook"
    webhook_secret: str = ""
    api_url: str = "https://api.telegram.org"


@dataclass
class TwilioConfig:
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""
    messaging_service_sid: str = ""
    api_url: str = "https://api.twilio.com"
    # WhatsApp through the same account: the sender ("whatsapp:+…" or "+…"; "" = no WhatsApp) and
    # the templates approved for it, sent outside the 24-hour window: [{sid = "HX…", name, text}]
    whatsapp_from: str = ""
    whatsapp_templates: list[dict[str, str]] = field(default_factory=list)


@dataclass
class MailboxConfig:
    """One ``[[mailboxes]]`` entry: IMAP in, SMTP out. TLS: "ssl" (implicit), "starttls" or "none"."""

    name: str = ""
    imap_host: str = ""
    imap_port: int = 993
    imap_tls: str = "ssl"
    username: str = ""
    password: str = ""
    folder: str = "INBOX"
    sent_folder: str = "Sent"  # where a copy of each letter we send is APPENDed ("" to skip)
    smtp_host: str = ""
    smtp_port: int = 465
    smtp_tls: str = "ssl"
    smtp_username: str = ""  # defaults to username
    smtp_password: str = ""  # defaults to password
    # SMTP login: None (unset) when the server offers AUTH and there are credentials; True always
    # (a server without AUTH is a configuration failure); False never (a relay that takes our IP)
    smtp_auth: bool | None = None
    from_address: str = ""
    from_name: str = ""
    assignee: str = ""  # a user's login: a shared mailbox's new conversations go to them
    idle: bool = True  # IMAP IDLE; false (or a server without IDLE): poll every poll_seconds
    poll_seconds: int = 60
    ca_file: str = ""  # an extra CA certificate to trust (a private mail server)


MAILBOX_TLS = ("ssl", "starttls", "none")


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    phones: PhonesConfig = field(default_factory=PhonesConfig)
    asterisk: AsteriskConfig = field(default_factory=AsteriskConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    mailboxes: list[MailboxConfig] = field(default_factory=list)
    source: str = "(defaults)"


def load_config(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the TOML file (``path`` or ``$CRMHUB_CONFIG``), then apply environment overrides."""
    env = dict(os.environ if env is None else env)
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    raw: dict[str, Any] = {}
    config = Config()
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        config.source = str(path)
    for section in _sections(config):
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        _apply(section, getattr(config, section), values, env)
    mailboxes = raw.get("mailboxes", [])
    if not isinstance(mailboxes, list):
        raise ConfigError("[[mailboxes]] must be an array of tables")
    config.mailboxes = [_mailbox(index, entry) for index, entry in enumerate(mailboxes)]
    names = [m.name for m in config.mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError("[[mailboxes]] names must differ")
    config.twilio.whatsapp_templates = _whatsapp_templates(config.twilio.whatsapp_templates)
    for proxy in config.server.trusted_proxies:
        try:
            ipaddress.ip_network(str(proxy), strict=False)
        except ValueError as exc:
            raise ConfigError(f"server.trusted_proxies: {proxy!r} is not an address or a network") from exc
    try:
        ZoneInfo(config.server.timezone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ConfigError(f"server.timezone: unknown time zone {config.server.timezone!r}") from exc
    if config.server.language not in LANGUAGES:
        raise ConfigError(f"server.language: expected one of {', '.join(LANGUAGES)}, "
                          f"got {config.server.language!r}")
    if not config.server.secret_key:
        config.server.secret_key = secrets.token_hex(32)
    return config


def _mailbox(index: int, entry: Any) -> MailboxConfig:
    where = f"mailboxes[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    mailbox = MailboxConfig()
    _apply(where, mailbox, entry, {})
    for key in ("name", "imap_host", "username", "from_address"):
        if not getattr(mailbox, key):
            raise ConfigError(f"{where}.{key} is required")
    for key in ("imap_tls", "smtp_tls"):
        if getattr(mailbox, key) not in MAILBOX_TLS:
            raise ConfigError(f"{where}.{key}: expected one of {', '.join(MAILBOX_TLS)}")
    if mailbox.smtp_auth is not None and not isinstance(mailbox.smtp_auth, bool):
        raise ConfigError(f"{where}.smtp_auth: expected true or false")
    mailbox.smtp_username = mailbox.smtp_username or mailbox.username
    mailbox.smtp_password = mailbox.smtp_password or mailbox.password
    return mailbox


def _whatsapp_templates(entries: list[Any]) -> list[dict[str, str]]:
    """Each template a table of ``sid`` (Twilio's ContentSid, "HX…"), ``name`` and ``text`` (its body,
    ``{{1}}``… for the variables); names and sids unique."""
    templates: list[dict[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"twilio.whatsapp_templates[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table {{sid, name, text}}")
        unknown = sorted(set(entry) - {"sid", "name", "text"})
        if unknown:
            raise ConfigError(f"{where}: unknown key: {unknown[0]}")
        for key in ("sid", "name", "text"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ConfigError(f"{where}.{key} is required (a string)")
        if not entry["sid"].startswith("HX"):
            raise ConfigError(f"{where}.sid: expected a Content SID (HX…), got {entry['sid']!r}")
        templates.append({key: entry[key].strip() for key in ("sid", "name", "text")})
    for key in ("sid", "name"):
        values = [t[key] for t in templates]
        if len(set(values)) != len(values):
            raise ConfigError(f"twilio.whatsapp_templates: each {key} must differ")
    return templates


def _sections(config: Config) -> list[str]:
    return [f.name for f in fields(config) if f.name not in ("mailboxes", "source")]


def _apply(section: str, target: Any, values: dict[str, Any], env: dict[str, str]) -> None:
    known = {f.name: f for f in fields(target)}
    for key in values:
        if key not in known:
            raise ConfigError(f"[{section}] unknown key: {key}")
    for name in known:
        env_key = f"{ENV_PREFIX}{section.upper()}_{name.upper()}"
        if env_key in env:
            value: Any = _from_env(env_key, env[env_key], getattr(target, name))
        elif name in values:
            value = values[name]
        else:
            continue
        setattr(target, name, _checked(f"{section}.{name}", value, getattr(target, name)))


def _from_env(key: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{key}: expected true or false, got {text!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError as exc:
            raise ConfigError(f"{key}: expected an integer, got {text!r}") from exc
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError as exc:
            raise ConfigError(f"{key}: expected a number, got {text!r}") from exc
    if isinstance(default, list):
        text = text.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{key}: expected a JSON list or comma-separated values") from exc
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _checked(name: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{name}: expected true or false")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name}: expected an integer")
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number")
        value = float(value)
        limits = _RANGES.get(name)
        if limits is not None and not limits[0] < value <= limits[1]:  # NaN and inf fail too
            low, high = limits
            raise ConfigError(f"{name}: expected a number > {low:g} and <= {high:g}, got {value:g}")
    if expected is str and not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string")
    if expected is list and not isinstance(value, list):
        raise ConfigError(f"{name}: expected a list")
    return value
