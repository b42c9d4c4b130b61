"""Russian company codes: INN (ИНН), KPP (КПП) and OKPO (ОКПО). Each check returns the reason the
text is not a valid code, or None."""

from __future__ import annotations

import re

_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KPP = re.compile(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}")


def _control(numbers: list[int], weights: tuple[int, ...]) -> int:
    return sum(n * w for n, w in zip(numbers, weights, strict=False)) % 11 % 10


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdecimal()


def check_inn(text: str) -> str | None:
    if not isinstance(text, str) or not _is_digits(text) or len(text) not in (10, 12):
        return "must be 10 or 12 digits"
    d = [int(c) for c in text]
    if len(d) == 10:
        ok = _control(d, _INN10) == d[9]
    else:
        ok = _control(d, _INN11) == d[10] and _control(d, _INN12) == d[11]
    return None if ok else "checksum does not match"


def check_kpp(text: str) -> str | None:
    if not isinstance(text, str) or not _KPP.fullmatch(text):
        return "must be 9 characters: 4 digits, 2 digits or capital letters, 3 digits"
    return None


def check_okpo(text: str) -> str | None:
    if not isinstance(text, str) or not _is_digits(text) or len(text) not in (8, 10):
        return "must be 8 or 10 digits"
    d = [int(c) for c in text]
    body, control = d[:-1], d[-1]
    for shift in (0, 2):
        # weights are positions 1, 2, ... (+2 on the second pass), counted modulo 10 as 1..10
        total = sum(n * ((i + shift) % 10 + 1) for i, n in enumerate(body)) % 11
        if total < 10:
            break
    expected = 0 if total == 10 else total
    return None if expected == control else "checksum does not match"
