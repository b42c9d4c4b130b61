"""Phone numbers: everything is stored in E.164; caller ids are matched on E.164 or, when a caller id
cannot be read as a valid number, on its last ten digits (``ContactPoint.tail``).

    normalize("8 (916) 123-45-67")  -> "+79161234567"
    tail("+79161234567")            -> "9161234567"
    lookup_keys("00 7 916 123 45 67") -> (None, "9161234567")
"""

from __future__ import annotations

import phonenumbers

MAX_INPUT = 64  # longer input is not a phone number (and phonenumbers itself stops at 250)
TAIL_DIGITS = 10


def normalize(raw: object, region: str = "RU") -> str:
    """``raw`` in any usual format → E.164, or ``ValueError`` with a reason a person can read."""
    if not isinstance(raw, str):
        raise ValueError("must be a string")
    text = raw.strip()
    if not text:
        raise ValueError("must not be empty")
    if "\x00" in text or len(text) > MAX_INPUT:
        raise ValueError("not a valid phone number")
    try:
        number = phonenumbers.parse(text, (region or "RU").upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a valid phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


def tail(e164_or_digits: str) -> str:
    """The last ten digits (fewer if there are fewer)."""
    return digits(e164_or_digits)[-TAIL_DIGITS:]


def lookup_keys(raw: str, region: str = "RU") -> tuple[str | None, str | None]:
    """What to look a caller id up by: ``(e164, tail)`` for a valid number, ``(None, tail)`` when only
    the last ten digits can be trusted, ``(None, None)`` when there is nothing to match on."""
    if not isinstance(raw, str) or len(raw) > MAX_INPUT:
        return None, None
    try:
        e164 = normalize(raw, region)
    except ValueError:
        found = digits(raw)
        return None, (found[-TAIL_DIGITS:] if len(found) >= TAIL_DIGITS else None)
    return e164, tail(e164)
