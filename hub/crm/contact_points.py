"""Phones, e-mails and Telegram accounts of clients, contact persons, leads and users.

Values are stored normalised (see ``ContactPoint``): phones in E.164 with their last ten digits in
``tail``, e-mails lower-cased, Telegram ids as digits, Telegram usernames lower-cased without "@".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Result, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import phones as phone_numbers
from hub.crm.errors import ValidationError
from hub.crm.models import ContactPoint
from hub.crm.validate import clean_text, iso

OWNER_FIELDS = ("client_id", "contact_id", "lead_id", "user_id")
MAX_ITEMS = 20
MAX_EMAIL = 254
MAX_RAW = 320

_EMAIL = re.compile(
    r"[^\s@<>()\[\],;:\"\\]{1,64}@(?=.{1,253}$)[^\s@<>()\[\],;:\"\\.]{1,63}(?:\.[^\s@<>()\[\],;:\"\\.]{1,63})+"
)
_TG_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_TG_ID = re.compile(r"-?[0-9]{1,20}")


@dataclass
class Normalised:
    """Validated contact points; ``None`` for a kind means "leave what is stored"."""

    phones: list[tuple[str, str, str]] | None = None  # (e164, tail, raw)
    emails: list[tuple[str, str]] | None = None  # (value, raw)
    telegram: list[tuple[str, str, str]] | None = None  # (kind, value, raw)
    errors: dict[str, str] = field(default_factory=dict)


def _items(name: str, values: Any, errors: dict[str, str]) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str | int) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, list | tuple) or len(values) > MAX_ITEMS:
        errors[name] = f"must be a list of at most {MAX_ITEMS} values"
        return None
    result = []
    for item in values:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            errors[name] = "must be a list of strings"
            return None
        item = item.strip()
        if item:
            result.append(item)
    return result


def _shown(value: str) -> str:
    """The bad value as quoted in an error message: short and without NUL."""
    value = value.replace("\x00", "")
    return value if len(value) <= 40 else value[:40] + "…"


def normalise(phones: Any = None, emails: Any = None, telegram: Any = None,
              region: str = "RU") -> Normalised:
    """Check and normalise; errors (named by field, quoting the bad value) are in ``.errors``."""
    out = Normalised()
    errors = out.errors

    raw_phones = _items("phones", phones, errors)
    if raw_phones is not None:
        out.phones, seen = [], set()
        for raw in raw_phones:
            try:
                e164 = phone_numbers.normalize(raw, region)
            except ValueError:
                errors.setdefault("phones", f"'{_shown(raw)}' is not a valid phone number")
                continue
            if e164 not in seen:
                seen.add(e164)
                out.phones.append((e164, phone_numbers.tail(e164), raw[:MAX_RAW]))

    raw_emails = _items("emails", emails, errors)
    if raw_emails is not None:
        out.emails, seen = [], set()
        for raw in raw_emails:
            value = raw.lower()
            if clean_text(raw) or len(value) > MAX_EMAIL or not _EMAIL.fullmatch(value):
                errors.setdefault("emails", f"'{_shown(raw)}' is not a valid e-mail address")
                continue
            if value not in seen:
                seen.add(value)
                out.emails.append((value, raw))

    raw_tg = _items("telegram", telegram, errors)
    if raw_tg is not None:
        out.telegram = []
        seen_tg: set[tuple[str, str]] = set()
        for raw in raw_tg:
            parsed = parse_telegram(raw)
            if parsed is None:
                errors.setdefault("telegram", f"'{_shown(raw)}' is not a Telegram "
                                  "id or @username")
                continue
            if parsed not in seen_tg:
                seen_tg.add(parsed)
                out.telegram.append((*parsed, raw[:MAX_RAW]))
    return out


def parse_telegram(raw: str) -> tuple[str, str] | None:
    """A numeric id → ("telegram_id", digits);
    "@name", "name" or "t.me/name" → ("telegram_username", lower-cased name)."""
    text = raw.strip()
    if _TG_ID.fullmatch(text):
        return "telegram_id", str(int(text))
    for prefix in ("https://t.me/", "http://t.me/", "t.me/", "@"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
            break
    if _TG_USERNAME.fullmatch(text):
        return "telegram_username", text.lower()
    return None


def _owner(owner_field: str) -> Any:
    if owner_field not in OWNER_FIELDS:
        raise ValueError(f"unknown owner field {owner_field!r}")
    return getattr(ContactPoint, owner_field)


async def mark_bounced(session: AsyncSession, address: str, reason: str, at: datetime) -> None:
    """Letters to ``address`` come back: every owner's e-mail point with it says so."""
    await session.execute(
        update(ContactPoint)
        .where(ContactPoint.kind == "email", ContactPoint.value == address.strip().lower())
        .values(bounced_at=at, bounce_reason=reason[:500]).execution_options(synchronize_session=False))


async def store(session: AsyncSession, owner_field: str, owner_id: int, points: Normalised) -> None:
    """Replace the kinds present in ``points`` (already validated) for this owner."""
    column = _owner(owner_field)
    kinds: list[str] = []
    rows: list[ContactPoint] = []
    if points.phones is not None:
        kinds.append("phone")
        rows += [ContactPoint(kind="phone", value=v, tail=t, raw=r, **{owner_field: owner_id})
                 for v, t, r in points.phones]
    if points.emails is not None:
        kinds.append("email")
        bounced = {value: (at, reason) for value, at, reason in await session.execute(
            select(ContactPoint.value, ContactPoint.bounced_at, ContactPoint.bounce_reason).where(
                column == owner_id, ContactPoint.kind == "email", ContactPoint.bounced_at.is_not(None)))}
        for value, raw in points.emails:  # an address kept keeps its bounce
            at, reason = bounced.get(value, (None, None))
            rows.append(ContactPoint(kind="email", value=value, raw=raw, bounced_at=at, bounce_reason=reason,
                                     **{owner_field: owner_id}))
    if points.telegram is not None:
        kinds += ["telegram_id", "telegram_username"]
        rows += [ContactPoint(kind=k, value=v, raw=r, **{owner_field: owner_id})
                 for k, v, r in points.telegram]
    if not kinds:
        return
    await session.execute(
        delete(ContactPoint).where(column == owner_id, ContactPoint.kind.in_(kinds)),
        execution_options={"synchronize_session": False},
    )
    session.add_all(rows)
    await session.flush()


async def replace(session: AsyncSession, owner_field: str, owner_id: int, phones: Any = None,
                  emails: Any = None, telegram: Any = None, region: str = "RU") -> None:
    """Validate, then replace this owner's phones / e-mails / Telegram accounts (``None``: keep)."""
    points = normalise(phones, emails, telegram, region)
    if points.errors:
        raise ValidationError(points.errors)
    await store(session, owner_field, owner_id, points)


def empty() -> dict[str, Any]:
    return {"phones": [], "emails": [], "telegram": [], "bounced_emails": {}}


async def of(session: AsyncSession, owner_field: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """``{owner_id: {"phones": [...], "emails": [...], "telegram": [...], "bounced_emails": {address:
    {"at", "reason"}}}}`` for every id asked for (``bounced_emails``: letters to it came back)."""
    column = _owner(owner_field)
    wanted = list(dict.fromkeys(ids))
    result = {i: empty() for i in wanted}
    if not wanted:
        return result
    rows: Result[int, str, str, datetime | None, str | None] = await session.execute(
        select(column, ContactPoint.kind, ContactPoint.value, ContactPoint.bounced_at,
               ContactPoint.bounce_reason)
        .where(column.in_(wanted)).order_by(ContactPoint.id)
    )
    for owner_id, kind, value, bounced_at, reason in rows:
        bucket = result[owner_id]
        if kind == "phone":
            bucket["phones"].append(value)
        elif kind == "email":
            bucket["emails"].append(value)
            if bounced_at is not None:
                bucket["bounced_emails"][value] = {"at": iso(bounced_at), "reason": reason or ""}
        elif kind == "telegram_username":
            bucket["telegram"].append("@" + value)
        else:
            bucket["telegram"].append(value)
    return result
