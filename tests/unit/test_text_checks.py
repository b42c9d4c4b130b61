"""Security finding 9, the core's half: text a user typed (API or page form) with a lone surrogate or
a control character is refused by field; text from a channel (a webhook's JSON may carry
``\\ud800``) is kept, the unstorable characters replaced."""

from __future__ import annotations

import pytest

from hub.crm.errors import ValidationError
from hub.crm.timeline import storable
from hub.crm.validate import Fields, clean_text, small_int


@pytest.mark.parametrize(("text", "reason"), [
    ("ok\tтаб\r\nстрока", None), ("a\x00b", "NUL"), ("a\ud800b", "surrogate"), ("bell\x07", "control"),
    ("esc\x1b[31m", "control"), ("del\x7f", "control"),
])
def test_what_a_user_types_is_checked(text: str, reason: str | None) -> None:
    found = clean_text(text)
    assert (found is None) if reason is None else (reason in (found or "")), found
    if reason is not None:
        fields = Fields({"name": text})
        fields.text("name", required=True)
        with pytest.raises(ValidationError) as raised:
            fields.check()
        assert "name" in raised.value.fields


def test_text_from_a_channel_is_kept_with_the_unstorable_replaced() -> None:
    assert storable("При\x00вет \ud83d и \U0001f600") == "При\ufffdвет \ufffd и \U0001f600"
    assert storable("обычный текст\n") == "обычный текст\n"


@pytest.mark.parametrize(("text", "number"), [("42", 42), (" 7 ", 7), ("²", None), ("１", None),
                                              ("9" * 19, None), ("-1", None), ("", None), ("1e3", None)])
def test_small_int_never_raises(text: str, number: int | None) -> None:
    assert small_int(text) == number
