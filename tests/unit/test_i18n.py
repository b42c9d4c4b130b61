"""Both gettext catalogs are complete, and the format filters write Russian dates and money."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest

from hub.web import i18n

ROOT = Path(__file__).resolve().parents[2]
WEBUI = ROOT / "hub" / "webui"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.fixture(scope="module")
def extracted() -> dict[str, object]:
    return {m.id if isinstance(m.id, str) else m.id[0]: m.id for m in i18n.extract(WEBUI, ROOT) if m.id}


def test_extraction_finds_templates_and_python_markers(extracted: dict[str, object]) -> None:
    assert "Desktop" in extracted  # N_() in hub/web/views/common.py
    assert "Wrong login or password." in extracted  # N_() in hub/web/auth.py
    assert "My tasks for today" in extracted  # a template
    assert len(extracted) > 30


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_message_is_translated(language: str, extracted: dict[str, object]) -> None:
    catalog = i18n.read_catalog(WEBUI / "locale", language)
    problems = []
    for key, msgid in extracted.items():
        message = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
        if message is None:
            problems.append(f"missing: {key!r}")
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            problems.append(f"untranslated or fuzzy: {key!r}")
            continue
        for string in strings:
            if set(PLACEHOLDER.findall(string)) - set(PLACEHOLDER.findall(key)) - {"num"}:
                problems.append(f"placeholders differ: {key!r} → {string!r}")
    assert not problems, f"{language} catalog (run: python -m hub.web.i18n update):\n" + "\n".join(problems)


def test_catalogs_compile_and_russian_plurals_work() -> None:
    translations = i18n.load(WEBUI / "locale")
    ru = translations["ru"]
    assert ru.gettext("Desktop") == "Рабочий стол"
    assert translations["en"].gettext("Desktop") == "Desktop"
    forms = [ru.ngettext("%(num)d unread notification", "%(num)d unread notifications", n) % {"num": n}
             for n in (1, 3, 5, 21)]
    assert forms == ["1 непрочитанное уведомление", "3 непрочитанных уведомления",
                     "5 непрочитанных уведомлений", "21 непрочитанное уведомление"]


def test_a_missing_catalog_falls_back_to_msgids(tmp_path: Path) -> None:
    translations = i18n.load(tmp_path)
    assert translations["ru"].gettext("Desktop") == "Desktop"


def test_formats_follow_the_language_and_the_time_zone() -> None:
    env = jinja2.Environment(autoescape=True)
    i18n.setup_jinja(env, i18n.load(WEBUI / "locale"), ZoneInfo("Europe/Moscow"))
    template = env.from_string(
        "{{ _('Desktop') }}|{{ when | datetime }}|{{ amount | money }}|{{ when | date }}")
    when = datetime(2026, 11, 23, 11, 5, tzinfo=UTC).isoformat()
    ru = template.render(lang="ru", when=when, amount=1234567)
    plain = ru.replace("\xa0", " ").replace("\u202f", " ")
    assert plain == "Рабочий стол|23.11.2026 14:05|1 234 567,00 ₽|23.11.2026"
    en = template.render(lang="en", when=when, amount=1234567.5)
    assert en.startswith("Desktop|23 Nov 2026, 14:05|") and "1,234,567.50" in en
    empty = template.render(when=None, amount=None)
    assert empty.replace("\xa0", " ") == "Рабочий стол||0,00 ₽|"
    assert env.from_string("{{ _('Desktop') }}").render(lang="xx") == "Рабочий стол"
