"""Small rules on a call's numbers and row: the external number, ignored numbers, whose call it is,
who was rung, who hears of it."""

from __future__ import annotations

import functools
from typing import Any

from hub.crm import phones
from hub.crm.call_intake.unit import Agent
from hub.crm.models import Call, User
from hub.crm.ports import CallSettings


@functools.lru_cache(maxsize=4096)  # a ring parses its number twice (the early pop, its unit of work)
def external_number(raw: str | None, region: str) -> str | None:
    """E.164 when the number is valid, else its digits (with a leading + kept), else None."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > phones.MAX_INPUT:
        return None
    try:
        return phones.normalize(raw, region)
    except ValueError:
        text = raw.strip()
        found = phones.digits(text)
        if not found:
            return None
        return ("+" + found) if text.startswith("+") else found


def is_ignored(number: str | None, settings: CallSettings) -> bool:
    if not number:
        return False
    tail = phones.tail(number)
    return bool(tail) and any(isinstance(other, str) and phones.tail(other) == tail
                              for other in settings.ignored_numbers)


def seconds(value: float | None) -> int:
    return max(0, round(value or 0))


def person_of(matches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The match a call belongs to: the first client, contact or (not converted) lead."""
    return next((m for m in matches if m["type"] in ("client", "contact", "lead")), None)


def person_columns(match: dict[str, Any]) -> dict[str, Any]:
    if match["type"] == "client":
        return {"client_id": match["id"]}
    if match["type"] == "contact":
        return {"contact_id": match["id"], "client_id": match["client_id"]}
    return {"lead_id": match["id"]}


def set_person(call: Call, match: dict[str, Any]) -> None:
    for name, value in person_columns(match).items():
        setattr(call, name, value)


def add_rung(call: Call, user_ids: list[int]) -> None:
    current = [int(u) for u in (call.rung_user_ids or [])]
    new = [u for u in user_ids if u not in current]
    if new:
        call.rung_user_ids = current + new  # a new list: JSON columns track assignment only


def recipients(call: Call) -> set[int]:
    users = {int(u) for u in (call.rung_user_ids or [])}
    if call.agent_id is not None:
        users.add(call.agent_id)
    return users


def agent_ref(call: Call, agent: Agent | User | None) -> dict[str, Any] | None:
    if agent is None and not call.agent_extension:
        return None
    return {"id": agent.id if agent else call.agent_id, "name": agent.name if agent else None,
            "extension": call.agent_extension}
