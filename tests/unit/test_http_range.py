"""The Range header of a call's recording, read as RFC 9110 §14 says: parse_range (what to answer for a
file of a known size) and range_spec (whether a Range is valid and single, for the proxied recordings)."""

from __future__ import annotations

import pytest

from hub.web.api.calls import UNSATISFIABLE, parse_range, range_spec

SIZE = 1000


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-99", (0, 99)),
    ("bytes=100-", (100, 999)),
    ("bytes=-100", (900, 999)),
    ("bytes=-999999", (0, 999)),           # a suffix longer than the file: all of it
    ("bytes=0-999999", (0, 999)),          # last-pos past the end: clamped
    ("bytes=999-", (999, 999)),
    ("bytes=5-5", (5, 5)),
    ("bytes=-1", (999, 999)),
    ("bytes=-1000", (0, 999)),
    ("BYTES=0-99", (0, 99)),               # the unit is case-insensitive
    (" bytes=0-99 ", (0, 99)),             # the field value's own whitespace
    ("bytes= 0-99 ,", (0, 99)),            # OWS and empty list elements
    ("bytes=000010-00019", (10, 19)),
    ("bytes=0-" + "9" * 5000, (0, 999)),   # no int() of 5000 digits (Python refuses them)
    ("bytes=-" + "9" * 5000, (0, 999)),
])
def test_a_satisfiable_range(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", [
    f"bytes={SIZE}-",                      # first-pos at the end
    f"bytes={SIZE + 10}-",
    f"bytes={SIZE}-{SIZE + 5}",
    "bytes=-0",                            # a suffix of 0 bytes selects nothing, whatever the size
    "bytes=-000",
    "bytes=" + "9" * 5000 + "-",
])
def test_an_unsatisfiable_range(header: str) -> None:
    assert parse_range(header, SIZE) is UNSATISFIABLE


@pytest.mark.parametrize("header", [
    None, "", "bytes", "bytes=", "bytes=-", "bytes=abc", "bytes=1-abc", "bytes=a-1", "items=0-1",
    "bytes 0-1", "bytes=5-2", "bytes=0-1,5-6", "bytes=0-1, -5", "bytes=--5", "bytes=0--1", "bytes=+1-2",
    "bytes=0 - 1", "bytes=0x1-2", "bytes=١-٢",  # Arabic-Indic digits are not DIGIT
    "bytes=0-1;q=1", "bytes==0-1", "bytes=,", "bytes= , ",
    "bytes=" + "9" * 5001 + "-" + "9" * 5000,  # last-pos before first-pos, however long
])
def test_an_invalid_or_multiple_range_is_ignored(header: str | None) -> None:
    assert parse_range(header, SIZE) is None
    assert range_spec(header) is None


def test_an_empty_file() -> None:
    assert parse_range("bytes=0-", 0) is UNSATISFIABLE
    assert parse_range("bytes=-0", 0) is UNSATISFIABLE
    assert parse_range("bytes=-5", 0) is None  # satisfiable, but no byte to send: the whole (empty) file
    assert parse_range("bytes=x", 0) is None


def test_range_spec_is_the_syntax_alone() -> None:
    assert range_spec("bytes=0-99") == ("0", "99")
    assert range_spec("bytes=5000-") == ("5000", "")
    assert range_spec("bytes=-0") == ("", "0")
    assert range_spec("Bytes=\t7-7\t") == ("7", "7")
