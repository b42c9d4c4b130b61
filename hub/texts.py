"""The hub's gettext catalogues, and the texts the core and the adapters store in the hub's language.

The catalogues are ``hub/webui/locale/{ru,en}/LC_MESSAGES/messages.po`` (English msgids): a source
checkout compiles them in memory, a wheel carries only the ``messages.mo`` its build compiled
(``setup.py``). The pages translate per reader (``hub.web.i18n`` builds on this module); a text the
hub stores — a callback task's subject, a placeholder for a sticker, a caller's lead source — is
written once for everyone, so it is worded in the hub's language (``server.language``, Russian by
default; the composition root calls ``use``)::

    say("[sticker %(emoji)s]", emoji="👍")   # "[стикер 👍]" in a Russian hub

``N_("...")`` marks a msgid that is translated later (by a template, or by ``say`` where it is used).
Both are extracted into the catalogues by ``python -m hub.web.i18n update``.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LANGUAGES = ("ru", "en")
DEFAULT = "ru"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "webui" / "locale"

Translations = dict[str, gettext.NullTranslations]

_hub_language = DEFAULT


def N_(message: str) -> str:
    """Mark a message for extraction; whoever shows it translates it."""
    return message


def catalog_path(locale_dir: Path, language: str) -> Path:
    return locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale_dir: Path, language: str) -> Catalog:
    with catalog_path(locale_dir, language).open("rb") as f:
        return read_po(f, locale=language, domain=DOMAIN)


def compiled_path(locale_dir: Path, language: str) -> Path:
    return catalog_path(locale_dir, language).with_suffix(".mo")


def compile_catalog(catalog: Catalog) -> gettext.GNUTranslations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _load_one(locale_dir: Path, language: str) -> gettext.GNUTranslations:
    """The ``.po`` when there is one (a source checkout: always current), else the wheel's ``.mo``."""
    if catalog_path(locale_dir, language).exists():
        return compile_catalog(read_catalog(locale_dir, language))
    with compiled_path(locale_dir, language).open("rb") as f:
        return gettext.GNUTranslations(f)


def load(locale_dir: Path) -> Translations:
    """Every language's translations; a missing or broken catalog logs why and shows msgids."""
    result: Translations = {}
    for language in LANGUAGES:
        try:
            result[language] = _load_one(locale_dir, language)
        except (OSError, ValueError) as exc:
            log.error("translations for %r not loaded from %s: %s", language,
                      catalog_path(locale_dir, language), exc)
            result[language] = gettext.NullTranslations()
    return result


@functools.cache
def _hub_translations() -> Translations:
    return load(LOCALE_DIR)


def use(language: str) -> None:
    """Make ``language`` the hub's: the one ``say`` writes stored texts in."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: expected one of {', '.join(LANGUAGES)}")
    global _hub_language
    _hub_language = language


def hub_language() -> str:
    return _hub_language


def say(message: str, /, **values: object) -> str:
    """``message`` (an English msgid) in the hub's language, its ``%(name)s`` filled from ``values``."""
    text = _hub_translations()[_hub_language].gettext(message)
    return text % values if values else text


def translate(language: str, message: str) -> str:
    """``message`` (an English msgid) in ``language`` (a reader's: an exported file's column names)."""
    translations = _hub_translations()
    return translations.get(language, translations[DEFAULT]).gettext(message)
