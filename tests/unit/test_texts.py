"""Stored texts (hub.texts): worded in the hub's language — Russian by default, byte for byte what the hub
always wrote — and no Russian literal in the core or the adapters outside the catalogues."""

from __future__ import annotations

import ast
import asyncio
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import texts
from hub.config import ConfigError, TelegramConfig, TwilioConfig, load_config
from hub.messengers.telegram import TelegramChannel
from hub.messengers.twilio_sms import TwilioChannel
from tests.paths import TELEGRAM_FIXTURES
from tests.unit.test_fuzz_parsers import FakeBot, FakeIntake

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"


@pytest.fixture
def language() -> Iterator[Any]:
    """``language("en")`` makes the hub English for the test; the hub's language comes back after."""
    before = texts.hub_language()
    yield texts.use
    texts.use(before)


# --- the setting ---------------------------------------------------------------------------------------

def test_russian_by_default_and_configurable() -> None:
    assert load_config(env={}).server.language == "ru"
    assert load_config(env={"CRMHUB_SERVER_LANGUAGE": "en"}).server.language == "en"


@pytest.mark.parametrize("value", ["de", "", "RU"])
def test_an_unknown_language_is_refused_with_its_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.language"):
        load_config(env={"CRMHUB_SERVER_LANGUAGE": value})


def test_use_refuses_a_language_without_a_catalogue(language: Any) -> None:
    with pytest.raises(ValueError, match="de"):
        language("de")


def test_the_app_makes_the_configured_language_the_hubs(language: Any, tmp_path: Path) -> None:
    from hub.app import create_app

    env = {"CRMHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db", "CRMHUB_SERVER_LANGUAGE": "en"}
    create_app(load_config(env=env))
    assert texts.hub_language() == "en"
    create_app(load_config(env={"CRMHUB_DATABASE_URL": env["CRMHUB_DATABASE_URL"]}))
    assert texts.hub_language() == "ru"


# --- say -----------------------------------------------------------------------------------------------

def test_say_words_the_message_in_the_hubs_language(language: Any) -> None:
    number, status, time = "+79161234567", "missed", "2030-06-15T09:00:00+00:00"
    assert texts.hub_language() == "ru"
    # what the f-strings in hub.crm.call_intake wrote before the catalogue did
    assert texts.say("Missed call %(number)s (%(status)s), %(time)s", number=number, status=status,
                     time=time) == f"Пропущенный звонок {number} ({status}), {time}"
    assert texts.say("Call back: %(name)s", name="Анна") == "Перезвонить: Анна"
    assert texts.say("Called back %(time)s", time=None) == "Перезвонили None"
    assert texts.say("phone call") == "звонок"
    language("en")
    assert texts.say("Call back: %(name)s", name="Anna") == "Call back: Anna"
    assert texts.say("phone call") == "phone call"


def test_a_value_is_not_read_as_a_format(language: Any) -> None:
    assert texts.say("[button] %(label)s", label="100% %(x)s") == "[кнопка] 100% %(x)s"


# --- the adapters --------------------------------------------------------------------------------------

def _update(name: str) -> Any:
    from telegram import Update

    data = json.loads((Path(TELEGRAM_FIXTURES) / f"{name}.json").read_text(encoding="utf-8"))
    return Update.de_json(copy.deepcopy(data), None)  # type: ignore[arg-type]


def _telegram_texts(download_limit: int | None = None) -> dict[str, str]:
    intake = FakeIntake()
    channel = TelegramChannel(TelegramConfig(token="1:x"), public_url="http://127.0.0.1",
                              intake=intake)  # type: ignore[arg-type]
    channel.bot = FakeBot()  # type: ignore[assignment]
    if download_limit is not None:
        channel.download_limit = download_limit
    names = ("message_sticker", "message_location", "message_contact_other", "callback_query_inline_button",
             "message_document_pdf")
    for name in names:
        asyncio.run(channel._take(_update(name), journal_id=1))
    return dict(zip(names, (m.text for m in intake.inbound), strict=True))


def test_a_russian_hub_stores_telegrams_placeholders_as_it_always_did() -> None:
    found = _telegram_texts()
    assert found["message_sticker"] == "[стикер 👍]"
    assert found["message_location"] == "[геопозиция 59.974128, 30.342031]"
    assert found["message_contact_other"] == "[контакт Сергей Кузнецов +79167773344]"
    assert found["callback_query_inline_button"] == "[кнопка] ✅ Подтверждаю"
    assert found["message_document_pdf"].endswith(
        "\n[файл «Смета на остекление балкона.pdf» не загружен: Wrong file_id]")
    too_big = _telegram_texts(download_limit=100_000)["message_document_pdf"]
    assert too_big.endswith("\n[файл «Смета на остекление балкона.pdf» не загружен: 0.2 МБ, больше 0 МБ]")


def test_an_english_hub_stores_telegrams_placeholders_in_english(language: Any) -> None:
    language("en")
    found = _telegram_texts()
    assert found["message_sticker"] == "[sticker 👍]"
    assert found["message_location"] == "[location 59.974128, 30.342031]"
    assert found["message_contact_other"] == "[contact Сергей Кузнецов +79167773344]"
    assert found["callback_query_inline_button"] == "[button] ✅ Подтверждаю"
    assert found["message_document_pdf"].endswith(
        '\n[file "Смета на остекление балкона.pdf" not loaded: Wrong file_id]')
    too_big = _telegram_texts(download_limit=100_000)["message_document_pdf"]
    assert too_big.endswith('\n[file "Смета на остекление балкона.pdf" not loaded: 0.2 MB, over 0 MB]')


def _twilio_text() -> str:
    config = TwilioConfig(account_sid="AC" + "0" * 32, auth_token="secret", from_number="+15005550006")
    channel = TwilioChannel(config, public_url="http://127.0.0.1", intake=FakeIntake())  # type: ignore[arg-type]

    async def media(form: Any) -> tuple[list[Any], list[dict[str, str]]]:
        return [], [{"filename": "MEgone.jpg", "reason": "HTTP 404"}]

    channel._media = media  # type: ignore[method-assign]
    inbound = asyncio.run(channel._inbound({"MessageSid": "SM1", "From": "+79161234567",
                                            "Body": "Договор во вложении"}))
    return inbound.text


def test_twilio_notes_a_lost_attachment_in_the_hubs_language(language: Any) -> None:
    assert _twilio_text() == "Договор во вложении\n[вложение «MEgone.jpg» не загружено: HTTP 404]"
    language("en")
    assert _twilio_text() == 'Договор во вложении\n[attachment "MEgone.jpg" not loaded: HTTP 404]'


# --- no Russian literal creeps back --------------------------------------------------------------------

CYRILLIC = re.compile("[\u0400-\u04ff]")
# Not the hub's own texts: the pages (their catalogue is the templates'), the migrations (history),
# the demo's data and its simulated outside world.
SKIPPED = ("hub/web/", "hub/webui/", "hub/migrations/", "hub/crm/demo.py", "hub/messengers/simulator.py",
           "hub/messengers/twilio_simulator.py")
# Input patterns: they recognise what people write (the module-level names that hold them).
PATTERNS = {
    "hub/mail/parse.py": {"_SEPARATOR", "_HDR_FROM", "_HDR_NEXT", "_ATTRIBUTION", "_AUTO_SUBJECT",
                          "_BOUNCE_SUBJECT"},
    "hub/crm/importer.py": {"COLUMNS", "KINDS", "LEGAL_FORMS", "_FULL_NAME"},
    "hub/crm/common_passwords.py": {"_LIST"},
    "hub/crm/search_query.py": {"_CONSONANT", "_DROPS_VOWEL", "_LOST_VOWEL", "_CYRILLIC", "ENDINGS", "_YO",
                                "_FLEETING_VOWELS"},
    "hub/crm/names.py": {"_LEGAL_FORMS", "_YO"},
}
# The API's words in English that name a Russian thing (a registry number, a page's title).
NAMES = {
    ("hub/crm/inputs.py", "ИНН: 10 or 12 digits with a valid check digit"),
    ("hub/crm/inputs.py", "КПП: 9 characters"),
    ("hub/crm/inputs.py", "ОКПО: 8 or 10 digits with a valid check digit"),
    ("hub/crm/inputs.py", "not yet taken by anybody (Не разобрано)"),
}


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _top_level_names(statement: ast.stmt) -> set[str]:
    targets = statement.targets if isinstance(statement, ast.Assign) else (
        [statement.target] if isinstance(statement, ast.AnnAssign) else [])
    return {t.id for t in targets if isinstance(t, ast.Name)}


def russian_literals(where: str, source: str) -> list[str]:
    """``where:line: literal`` for each string constant with Cyrillic that is not a docstring, an input
    pattern or an allowed name."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for statement in tree.body:
        if _top_level_names(statement) & PATTERNS.get(where, set()):
            continue
        for node in ast.walk(statement):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and CYRILLIC.search(node.value)
                    and id(node) not in docstrings and (where, node.value) not in NAMES):
                found.append(f"{where}:{node.lineno}: {node.value[:60]!r}")
    return found


def test_no_russian_literal_in_the_core_or_the_adapters() -> None:
    modules = {path.relative_to(ROOT).as_posix(): path for path in sorted(HUB.rglob("*.py"))}
    found = [hit for where, path in modules.items() if not where.startswith(SKIPPED)
             for hit in russian_literals(where, path.read_text(encoding="utf-8"))]
    assert not found, ("a text the hub stores is worded with hub.texts.say('English msgid') and "
                       "translated in hub/webui/locale (python -m hub.web.i18n update):\n" + "\n".join(found))


def test_the_scan_finds_a_russian_literal_but_no_docstring_or_pattern() -> None:
    source = ('"""Модуль."""\nKINDS = {"физлицо": "person"}\n'
              'def f() -> str:\n    """Строка."""\n    return "Пропущенный звонок"\n')
    assert russian_literals("hub/crm/importer.py", source) == ["hub/crm/importer.py:5: 'Пропущенный звонок'"]
    assert len(russian_literals("hub/crm/leads.py", source)) == 2  # KINDS is a pattern only in the importer
