"""Cursor pagination: an opaque cursor that names the last row of the page before — its id (newest
first), or its date and id for a list ordered by a date, soonest first and undated last
(``encode_date_cursor`` / ``after_date``: the kanban's columns, the open tasks)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from hub.crm.errors import ValidationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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


def encode_date_cursor(at: datetime | None, last_id: int) -> str:
    key = "-" if at is None else str((at - EPOCH) // timedelta(microseconds=1))
    return base64.urlsafe_b64encode(f"k:{key}:{last_id}".encode()).decode().rstrip("=")


def decode_date_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, key, last_id = text.split(":")
        if (kind != "k" or not last_id.isdecimal() or int(last_id) > 2**62
                or not (key == "-" or key.lstrip("-").isdecimal())):
            raise ValueError
        at = None if key == "-" else EPOCH + timedelta(microseconds=int(key))
        return at, int(last_id)
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ValidationError({"cursor": "is not a cursor this server issued"}) from exc


def after_date(date: Any, row_id: Any, cursor: str) -> ColumnElement[bool]:
    """The rows after the cursor's in the order ``date`` ascending (undated last), then ``row_id``."""
    at, last_id = decode_date_cursor(cursor)
    if at is None:
        return and_(date.is_(None), row_id > last_id)
    return or_(date > at, and_(date == at, row_id > last_id), date.is_(None))


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
