"""Input checking for core services: collect every bad field, then fail once with all of them.

    v = Fields(data)
    name = v.text("name", required=True)
    due = v.datetime("due_at")
    v.check()          # raises ValidationError({"name": "is required", ...})
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.crm.errors import ValidationError

_MISSING = object()


_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str | None:
    """The reason a string a user typed cannot be stored, or None: NUL (PostgreSQL cannot hold it),
    a lone UTF-16 surrogate (no UTF-8 for it), a control character other than tab and line breaks."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if _SURROGATE.search(value):
        return "is not valid text (a lone UTF-16 surrogate)"
    if _CONTROL.search(value):
        return "must not contain control characters"
    return None


class Fields:
    def __init__(self, data: Any, *, partial: bool = False) -> None:
        if not isinstance(data, dict):
            raise ValidationError({"body": "must be a JSON object"})
        self.data = data
        self.partial = partial  # PATCH: absent fields are left alone
        self.errors: dict[str, str] = {}

    def has(self, name: str) -> bool:
        return name in self.data

    def fail(self, name: str, reason: str) -> None:
        self.errors.setdefault(name, reason)

    def check(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required and not self.partial:
                self.fail(name, "is required")
            return _MISSING
        return value

    def text(self, name: str, *, required: bool = False, max_len: int = 300, default: Any = "") -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return default
        value = value.strip()
        reason = clean_text(value)
        if reason:
            self.fail(name, reason)
        elif len(value) > max_len:
            self.fail(name, f"must be at most {max_len} characters")
        elif required and not value:
            self.fail(name, "must not be empty")
        return value

    def choice(self, name: str, options: tuple[str, ...], *, required: bool = False,
               default: Any = None) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if value not in options:
            self.fail(name, f"must be one of: {', '.join(options)}")
            return default
        return value

    def integer(self, name: str, *, required: bool = False, default: Any = None,
                minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be an integer")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.fail(name, f"must be between {minimum} and {maximum}")
            return default
        return value

    def id(self, name: str, *, required: bool = False) -> int | None:
        value: int | None = self.integer(name, required=required, minimum=1, maximum=2**62)
        return value

    def money(self, name: str, *, default: Any = 0) -> Any:
        """An amount in roubles (number or numeric string) → kopecks."""
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(name, "must be a number")
            return default
        try:
            amount = Decimal(str(value).replace(" ", "").replace(",", "."))
        except InvalidOperation:
            self.fail(name, "must be a number")
            return default
        if not amount.is_finite() or amount < 0 or amount >= Decimal("1e13"):
            self.fail(name, "must be a non-negative amount below 10^13")
            return default
        if amount != amount.quantize(Decimal("0.01")):
            self.fail(name, "must have at most two decimal places")
            return default
        return int(amount * 100)

    def number(self, name: str, *, default: Any = None) -> Any:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(name, "must be a number")
            return default
        return value

    def boolean(self, name: str, *, default: Any = None) -> Any:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
            return default
        return value

    def datetime(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        parsed = parse_datetime(value)
        if parsed is None:
            self.fail(name, "must be an ISO 8601 date and time")  # (years MIN_YEAR to MAX_YEAR)
            return default
        return parsed

    def strings(self, name: str, *, max_items: int = 50, max_len: int = 300) -> Any:
        value = self._get(name, False)
        if value is _MISSING:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or len(value) > max_items:
            self.fail(name, f"must be a list of at most {max_items} strings")
            return None
        result = []
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                self.fail(name, "must be a list of strings")
                return None
            item = item.strip()
            reason = clean_text(item) or (f"items must be at most {max_len} characters"
                                          if len(item) > max_len else None)
            if reason:
                self.fail(name, reason)
                return None
            if item:
                result.append(item)
        return result

    def mapping(self, name: str) -> Any:
        value = self._get(name, False)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.fail(name, "must be an object")
            return None
        return value


# the years a date may have: outside them a date is a typing slip, and near year 1 or 9999 a zone's
# offset overflows Python's datetime
MIN_YEAR, MAX_YEAR = 1900, 2200


def small_int(text: Any) -> int | None:
    """A number written in at most 18 ASCII digits (a sign-less id, a position), else None; never
    raises ("²".isdigit() is true but int() refuses it; int() refuses 5,000 digits too)."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdecimal() and len(text) <= 18 else None


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 between ``MIN_YEAR`` and ``MAX_YEAR``; a time without a zone is taken as UTC."""
    if not isinstance(value, str) or "\x00" in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    """An ISO 8601 day (``2026-12-07``) between ``MIN_YEAR`` and ``MAX_YEAR``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if MIN_YEAR <= parsed.year <= MAX_YEAR else None


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
