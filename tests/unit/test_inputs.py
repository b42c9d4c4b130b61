"""Typed inputs: one declaration checks a body (every bad field at once) and gives its schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import pytest
from msgspec import Meta

from hub.crm.errors import ValidationError
from hub.crm.inputs import Input, LeadIn, TaskIn, read
from hub.crm.validate import Fields
from hub.web.api.schemas import input_schema, partial


def test_a_create_takes_every_field_with_its_default():
    values = read(Fields({"subject": " Call back "}), TaskIn)
    assert values == {"subject": "Call back", "description": "", "kind": "task", "start_at": None,
                      "due_at": None, "percent": 0}  # ids are the service's own: not read here


def test_every_bad_field_is_named_at_once():
    v = Fields({"subject": "", "kind": "meeting", "percent": 101, "due_at": "yesterday"})
    read(v, TaskIn)
    with pytest.raises(ValidationError) as caught:
        v.check()
    assert caught.value.fields == {
        "subject": "must not be empty", "kind": "must be one of: task, callback",
        "percent": "must be between 0 and 100", "due_at": "must be an ISO 8601 date and time"}


def test_a_change_reads_only_what_it_is_given_and_null_clears_a_nullable_field():
    values = read(Fields({"due_at": None, "percent": 50}, partial=True), TaskIn)
    assert values == {"due_at": None, "percent": 50}
    values = read(Fields({"start_at": "2026-12-07T10:00:00+03:00"}, partial=True), TaskIn)
    assert values == {"start_at": datetime(2026, 12, 7, 7, tzinfo=UTC)}


def test_a_field_over_its_declared_length_fails_with_the_limit():
    v = Fields({"name": "x" * 301, "source": "y" * 101})
    read(v, LeadIn)
    assert v.errors == {"name": "must be at most 300 characters", "source": "must be at most 100 characters"}


def test_the_schema_comes_from_the_same_declaration():
    schema = input_schema(TaskIn)
    assert schema["required"] == ["subject"]
    assert schema["properties"]["subject"]["maxLength"] == 300
    assert schema["properties"]["kind"]["enum"] == ["task", "callback"]
    percent = schema["properties"]["percent"]
    assert (percent["minimum"], percent["maximum"]) == (0, 100)
    assert "required" not in partial(schema)


def test_a_declaration_the_reader_cannot_check_is_refused_not_skipped():
    class Odd(Input, kw_only=True):
        ratio: Annotated[tuple[int, int], Meta(description="no reader for a pair")]

    with pytest.raises(TypeError, match="ratio"):
        read(Fields({"ratio": [1, 2]}), Odd)


def test_the_published_message_statuses_are_every_status_a_message_is_stored_with():
    from hub.crm.messages.statuses import STATUS_RANK
    from hub.crm.models import MESSAGE_STATUSES

    assert set(MESSAGE_STATUSES) == set(STATUS_RANK)
