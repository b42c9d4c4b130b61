"""``hub.filenames.sanitize_filename``: the one sanitiser of file names (uploads, letters, messages)."""

from __future__ import annotations

import pytest

from hub.crm.attachments import sanitize_filename as core_name
from hub.filenames import MAX_FILENAME, sanitize_filename


def test_the_core_and_the_mail_parser_use_this_one() -> None:
    from hub.mail import parse

    assert core_name is sanitize_filename and parse.sanitize_filename is sanitize_filename
    assert not hasattr(parse, "_safe_filename")


@pytest.mark.parametrize(("raw", "want"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
    ("C:\\Users\\evil\\..\\a<b>.exe", "a_b_.exe"),
    ("/abs/path/report.pdf", "report.pdf"),
    ("dir/", "file"),
    ("..", "file"), (".", "file"), ("...", "file"),
    (".bashrc", "bashrc"), ("name.", "name"), ("  spaced  .txt  ", "spaced  .txt"),
    ('a:b*c?d"e|f<g>h.txt', "a_b_c_d_e_f_g_h.txt"),
])
def test_path_parts_and_unsafe_characters(raw: str, want: str) -> None:
    assert sanitize_filename(raw) == want


def test_control_characters_nul_and_invisible_marks_are_dropped() -> None:
    assert sanitize_filename("re\x00port\x07.pdf") == "report.pdf"
    assert sanitize_filename("line\nbreak\r\t.txt") == "linebreak.txt"
    assert sanitize_filename("c1\x85\x9fname\x7f.txt") == "c1name.txt"
    # right-to-left override: "photo\u202egnp.exe" reads as "photoexe.png"
    assert sanitize_filename("photo\u202egnp.exe") == "photognp.exe"
    assert sanitize_filename("zero\u200bwidth\u2066.txt") == "zerowidth.txt"
    assert sanitize_filename("bad\udcffbyte.txt") == "badbyte.txt"  # a lone surrogate cannot be stored


def test_empty_or_not_a_string_is_the_default() -> None:
    assert sanitize_filename("") == "file"
    assert sanitize_filename("\x00\n") == "file"
    assert sanitize_filename(None) == "file" and sanitize_filename(42) == "file"
    assert sanitize_filename(" \u00a0\u3000 ") == "file"  # any kind of space
    assert sanitize_filename("", default="") == ""  # the mail parser then makes up a name


def test_very_long_names_are_cut_keeping_the_extension() -> None:
    long = sanitize_filename("я" * 500 + ".docx")
    assert len(long) == MAX_FILENAME and long == "я" * 195 + ".docx"
    assert sanitize_filename("x" * 500) == "x" * MAX_FILENAME
    tail = sanitize_filename("a" * 300 + "." + "b" * 40)  # not an extension: a plain cut
    assert tail == "a" * MAX_FILENAME
    assert sanitize_filename("a" * 150 + " " * 100 + ".pdf") == "a" * 150 + ".pdf"  # no space before the dot
    assert sanitize_filename("subject " * 30, limit=100) == "subject " * 12 + "subj"
    # no space or dot left at the end by the cut
    assert sanitize_filename("a" * 98 + "  " + "c" * 10, limit=100) == "a" * 98
    assert sanitize_filename("a" * 99 + "." + "c" * 40, limit=100) == "a" * 99
    assert len(sanitize_filename("z" * 10_000 + ".tar.gz")) == MAX_FILENAME


@pytest.mark.parametrize("raw", ["CON", "con.txt", "Nul.tar.gz", "aux", "PRN.log", "com1.txt", "LPT9",
                                 "COM0.csv", "CON .txt"])
def test_windows_device_names_are_not_left_as_they_are(raw: str) -> None:
    assert sanitize_filename(raw) == "_" + raw


@pytest.mark.parametrize("raw", ["CONSOLE.txt", "confirm.pdf", "nullable.json", "COM10.txt", "icon.png"])
def test_names_that_only_start_like_a_device_are_kept(raw: str) -> None:
    assert sanitize_filename(raw) == raw


def test_unicode_is_kept_and_composed() -> None:
    assert sanitize_filename("Смета №1042 (Лесной пр., 12).pdf") == "Смета №1042 (Лесной пр., 12).pdf"
    assert sanitize_filename("報告書 2026.xlsx") == "報告書 2026.xlsx"
    assert sanitize_filename("cafe\u0301.txt") == "caf\u00e9.txt"  # NFC
    assert sanitize_filename("😀 photo.jpg") == "😀 photo.jpg"
