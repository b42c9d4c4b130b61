"""Cursor pagination: an opaque cursor that names the last id of the page before."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from hub.crm.errors import ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"i:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "i" or not value.isdecimal() or int(value) > 2**62:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": "is not a cursor this server issued"}) from exc


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationError({"limit": f"must be between 1 and {MAX_LIMIT}"})
    return limit


def page_of(rows: list[Any], limit: int, to_dict: Any) -> Page:
    """``rows`` were fetched with ``limit + 1``; the extra row only says that there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_dict(r) for r in rows], encode_cursor(rows[-1].id) if more and rows else None)
