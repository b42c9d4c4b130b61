"""What the call intake stores for everyone — a missed call's callback task, an unknown caller's lead — is
worded in the hub's language (hub.texts): Russian by default, English when the hub is English."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hub import texts
from hub.crm.call_intake import scheduling as intake
from hub.crm.models import Lead, Task, UserExtension
from hub.db import Database
from tests.integration.test_call_intake import AUTO, UNKNOWN, ended, ringing
from tests.integration.test_deals import make_user


@pytest.fixture(params=["ru", "en"])
def hub_language(request: pytest.FixtureRequest) -> Iterator[str]:
    before = texts.hub_language()
    texts.use(request.param)
    yield request.param
    texts.use(before)


async def _missed_then_called_back(database: Database) -> tuple[Task, Lead]:
    async with database.transaction() as s:
        anna = await make_user(s, "anna", "agent", "Анна")
        s.add(UserExtension(extension="101", user_id=anna.id))
    await intake.call_ringing(database, ringing("M1", UNKNOWN), AUTO)
    await intake.call_ended(database, ended("M1", UNKNOWN, "missed"), AUTO)
    await intake.call_ended(database, ended("O1", UNKNOWN, "answered", direction="outbound"), AUTO)
    async with database.reading() as s:
        task = (await s.scalars(select(Task))).one()
        lead = (await s.scalars(select(Lead))).one()
    return task, lead


WORDS: dict[str, dict[str, str]] = {
    "ru": {"subject": "Перезвонить: ", "missed": "Пропущенный звонок ", "back": "\nПерезвонили ",
           "source": "звонок", "status": "пропущен"},
    "en": {"subject": "Call back: ", "missed": "Missed call ", "back": "\nCalled back ",
           "source": "phone call", "status": "missed"},
}


async def test_a_callback_and_a_callers_lead_speak_the_hubs_language(database: Database,
                                                                      hub_language: str) -> None:
    task, lead = await _missed_then_called_back(database)
    words: dict[str, Any] = WORDS[hub_language]
    assert lead.source == words["source"]
    assert task.subject == words["subject"] + lead.name
    assert task.description.startswith(f"{words['missed']}{UNKNOWN} ({words['status']}), 2030-06-15T09:00:00")
    assert words["back"] in task.description and task.completed_at is not None
