"""Languages of the pages: gettext catalogs compiled in memory at startup, and Russian formats.

The catalogs are ``hub/webui/locale/{ru,en}/LC_MESSAGES/messages.po`` (English msgids), loaded by
``hub.texts`` when the app is created (Babel compiles them in a source checkout, so nothing generated
is kept in git; a wheel carries the ``messages.mo`` its build compiled). Templates say
``{{ _("Deals") }}`` (Jinja2's ``i18n`` extension); the web layer's Python code marks a message with
``N_("...")`` and the template translates it; the core and the adapters word what they store with
``hub.texts.say`` (in the hub's language, not the reader's). Russian is the default; a logged-in
user's ``language`` wins, else the ``crmhub_lang`` cookie that the header switch sets.

After changing texts, refresh both catalogs (new msgids get an empty translation to fill in):

    .venv/bin/python -m hub.web.i18n update
"""

from __future__ import annotations

import gettext
import sys
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from aiohttp import web
from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po
from babel.numbers import format_currency, format_decimal

from hub.texts import DEFAULT, DOMAIN, LANGUAGES, Translations, catalog_path
from hub.texts import N_ as N_  # the web layer marks its messages with it
from hub.texts import load as load
from hub.texts import read_catalog as read_catalog
from hub.web.keys import USER

LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}
# the sources the hub writes on the leads it makes (hub.crm.messages.conversations.LEAD_SOURCES)
CHANNEL_SOURCES = {"telegram": N_("Telegram"), "sms": N_("SMS"), "whatsapp": N_("WhatsApp"),
                   "e-mail": N_("E-mail"), "email": N_("E-mail")}
COOKIE = "crmhub_lang"
# Where msgids come from: the templates, and N_() / say() in the hub's Python code (the web layer's
# N_(), the core's and the adapters' stored texts: hub.texts).
SOURCES = (
    ("templates", [("**.html", "jinja2.ext:babel_extract")], {"extensions": "jinja2.ext.i18n"}),
)
PYTHON_SOURCES = ("hub",)
PYTHON_SKIPPED = ("migrations", "webui")  # no markers there; webui holds node_modules
PYTHON_KEYWORDS = {"N_": None, "say": None}


def language_of(user_language: str | None, cookie: str | None) -> str:
    for candidate in (user_language, cookie):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT


def context(request: web.Request) -> dict[str, Any]:
    """What every template needs to speak the request's language (and to switch it)."""
    user = request.get(USER)
    chosen = user.language if user is not None else None
    return {
        "lang": language_of(chosen, request.cookies.get(COOKIE)),
        "languages": LANGUAGE_NAMES,
        "here": request.path_qs,
    }


# --- Jinja2 ----------------------------------------------------------------------------------------

def _lang(ctx: Any) -> str:
    lang = ctx.get("lang")
    return lang if lang in LANGUAGES else DEFAULT


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if isinstance(value, datetime) else None


def _msgids(translations: gettext.NullTranslations) -> frozenset[str]:
    """The messages a compiled catalogue holds (a plural's by its singular)."""
    catalog = getattr(translations, "_catalog", {})  # GNUTranslations keeps them there
    return frozenset(key[0] if isinstance(key, tuple) else key for key in catalog if key)


def setup_jinja(env: jinja2.Environment, translations: Translations, zone: tzinfo) -> None:
    """Install ``_``/``gettext``/``ngettext`` (per the context's ``lang``) and the format filters:
    ``datetime`` (23.11.2026 14:05), ``date``, ``time``, ``money`` (1 234 567,00 ₽), ``number``."""

    # Jinja's newstyle gettext marks what ``_`` returns as safe markup: right for our catalogues'
    # texts, wrong for anything else passed through ``_`` (a custom field's label, a name from a
    # URL). So only a message the catalogue holds comes back as it is; any other is escaped.
    known = {language: _msgids(t) for language, t in translations.items()}

    @jinja2.pass_context
    def _gettext(ctx: Any, message: str) -> str:
        lang = _lang(ctx)
        if message not in known[lang]:
            return str(markupsafe.escape(message))
        return translations[lang].gettext(message)

    @jinja2.pass_context
    def _ngettext(ctx: Any, singular: str, plural: str, n: int) -> str:
        lang = _lang(ctx)
        if singular not in known[lang]:
            return str(markupsafe.escape(singular if n == 1 else plural))
        return translations[lang].ngettext(singular, plural, n)

    @jinja2.pass_context
    def format_datetime(ctx: Any, value: Any, fmt: str = "") -> str:
        moment = _as_datetime(value)
        if moment is None:
            return ""
        lang = _lang(ctx)
        pattern = fmt or ("dd.MM.yyyy HH:mm" if lang == "ru" else "d MMM yyyy, HH:mm")
        return babel_datetime(moment, pattern, tzinfo=zone, locale=lang)

    @jinja2.pass_context
    def format_time(ctx: Any, value: Any) -> str:
        moment = _as_datetime(value)
        return "" if moment is None else babel_datetime(moment, "HH:mm", tzinfo=zone, locale=_lang(ctx))

    @jinja2.pass_context
    def format_day(ctx: Any, value: Any) -> str:
        if isinstance(value, str | datetime):
            moment = _as_datetime(value)
            value = moment.astimezone(zone).date() if moment else None
        if value is None:
            return ""
        lang = _lang(ctx)
        return babel_date(value, "dd.MM.yyyy" if lang == "ru" else "d MMM yyyy", locale=lang)

    @jinja2.pass_context
    def money(ctx: Any, amount: Any, currency: str = "RUB") -> str:
        value = Decimal(str(amount or 0))
        return format_currency(value, currency or "RUB", locale=_lang(ctx))

    @jinja2.pass_context
    def number(ctx: Any, value: Any) -> str:
        return format_decimal(value or 0, locale=_lang(ctx))

    @jinja2.pass_context
    def lead_source(ctx: Any, value: Any) -> str:
        """A lead's source: the channel a lead came in by, named as the UI names channels; any other
        source (typed by a person) as it is."""
        label = CHANNEL_SOURCES.get(str(value or "").strip().lower())
        return _gettext(ctx, label) if label else str(value or "")

    env.add_extension("jinja2.ext.i18n")
    # jinja2's i18n extension adds this method to the Environment at run time; its types don't say so
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update({"datetime": format_datetime, "time": format_time, "date": format_day,
                        "money": money, "number": number, "lead_source": lead_source})

    def server_zone() -> str:
        """The zone every time on the pages is in, as a form states it: «Europe/Moscow, UTC+03:00»."""
        offset = datetime.now(zone).strftime("%z")
        return f"{getattr(zone, 'key', str(zone))}, UTC{offset[:3]}:{offset[3:]}"

    env.globals["server_zone"] = server_zone
    env.globals["server_zone_key"] = getattr(zone, "key", "UTC")


def set_cookie(response: web.StreamResponse, language: str, secure: bool) -> None:
    response.set_cookie(COOKIE, language, path="/", httponly=True, samesite="Lax", secure=secure,
                        max_age=365 * 86400)


# --- catalog maintenance ---------------------------------------------------------------------------

def extract(webui: Path, root: Path) -> Catalog:
    """Every msgid the templates, the web layer's N_() and the hub's say() use."""
    catalog = Catalog(domain=DOMAIN)
    for folder, method_map, options in SOURCES:
        options_map = {pattern: options for pattern, _ in method_map}
        for filename, lineno, message, comments, context in extract_from_dir(
                webui / folder, method_map, options_map, keywords={"_": None, "gettext": None,
                                                                   "ngettext": (1, 2)}):
            catalog.add(message, None, [(f"{folder}/{filename}", lineno)], auto_comments=comments,
                        context=context)
    for folder in PYTHON_SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                root / folder, [("**.py", "python")], keywords=PYTHON_KEYWORDS,
                directory_filter=_python_folder):
            catalog.add(message, None, [(f"{folder}/{filename}", lineno)], auto_comments=comments,
                        context=context)
    return catalog


def _python_folder(path: str) -> bool:
    name = Path(path).name
    return name not in PYTHON_SKIPPED and not name.startswith((".", "_"))


def _translated(string: str | tuple[str, ...] | list[str] | None) -> bool:
    return all(string) if isinstance(string, tuple) else bool(string)


def update(webui: Path, root: Path) -> None:
    """Merge the extracted msgids into both catalogs (English gets msgid = msgstr for new ones)."""
    template = extract(webui, root)
    for language in LANGUAGES:
        path = catalog_path(webui / "locale", language)
        if path.exists():
            catalog = read_catalog(webui / "locale", language)
        else:
            catalog = Catalog(locale=Locale.parse(language), domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.project, catalog.version, catalog.fuzzy = "CRM Hub", "", False
        for message in catalog:
            if message.id and language == "en" and not _translated(message.string):
                message.string = message.id
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=100, ignore_obsolete=True, sort_output=True, no_location=True)
        print(f"{path}: {len(catalog)} messages, "
              f"{sum(1 for m in catalog if m.id and not _translated(m.string))} untranslated")


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    if argv[1:] != ["update"]:
        print("usage: python -m hub.web.i18n update", file=sys.stderr)
        return 2
    update(root / "hub" / "webui", root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
