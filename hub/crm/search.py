"""Search conditions shared by the lists: case-insensitive text and phone numbers in any format.

Case folding relies on ``lower()`` knowing Unicode: PostgreSQL's does, and ``hub.db`` replaces
SQLite's ASCII-only one on every connection, so "ромашка" finds "ООО «Ромашка»" on both.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_

from hub.crm import phones
from hub.crm.models import ContactPoint

PHONE_LIKE = re.compile(r"[\d\s()+\-.]{5,30}")


def contains(column: Any, q: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.icontains(q, autoescape=True)
    return condition


def contact_point_match(q: str, region: str) -> ColumnElement[bool] | None:
    """Contact points that a search text names: a phone (E.164, or else its last ten digits) or an
    e-mail; None when the text is neither."""
    if PHONE_LIKE.fullmatch(q):
        e164, tail = phones.lookup_keys(q, region)
        if e164:
            return and_(ContactPoint.kind == "phone", ContactPoint.value == e164)
        if tail:
            return and_(ContactPoint.kind == "phone", ContactPoint.tail == tail)
        return None
    if "@" in q:
        return and_(ContactPoint.kind == "email", ContactPoint.value == q.strip().lower())
    return None
