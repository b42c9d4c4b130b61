"""Mass actions on lists: one action on many deals or clients, each through the same service as a
single change (so every access rule, validation, history entry and event applies), in one unit of work.

A row the actor may not see or change, or that the action refuses, is skipped with the reason's code
and the rest goes on: ``{"done": [ids], "skipped": [{"id", "error", "reason"}]}``. The services
check before they write, so a skipped row leaves nothing half-changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import clients, deals
from hub.crm.errors import Conflict, Forbidden, NotFound, ValidationError
from hub.crm.models import User
from hub.crm.validate import Fields

MAX_IDS = 500
DEAL_ACTIONS = ("responsible", "tag", "stage", "delete")
CLIENT_ACTIONS = ("manager", "tag", "delete")

Change = Callable[[AsyncSession, User, int], Awaitable[Any]]


def _request(data: Any, actions: tuple[str, ...]) -> tuple[list[int], str, Any]:
    v = Fields(data)
    raw = v.data.get("ids")
    ids: list[int] = []
    if not isinstance(raw, list) or not raw or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i <= 2**62 for i in raw):
        v.fail("ids", "must be a non-empty list of ids")
    elif len(raw) > MAX_IDS:
        v.fail("ids", f"must be a list of at most {MAX_IDS}")
    else:
        ids = list(dict.fromkeys(raw))
    action = v.choice("action", actions, required=True)
    value = v.data.get("value")
    if action != "delete" and (value is None or value == ""):
        v.fail("value", "is required for this action")
    v.check()
    return ids, action, value


async def _each(session: AsyncSession, actor: User, ids: list[int], change: Change) -> dict[str, Any]:
    done: list[int] = []
    skipped: list[dict[str, Any]] = []
    for item_id in ids:
        try:
            await change(session, actor, item_id)
        except NotFound:
            skipped.append({"id": item_id, "error": "not_found", "reason": "not found"})
        except Forbidden as exc:
            skipped.append({"id": item_id, "error": "forbidden", "reason": str(exc)})
        except Conflict as exc:
            skipped.append({"id": item_id, "error": "conflict", "reason": str(exc)})
        except ValidationError as exc:
            reason = "; ".join(f"{k}: {r}" for k, r in exc.fields.items())
            skipped.append({"id": item_id, "error": "validation", "reason": reason})
        else:
            done.append(item_id)
    return {"done": done, "skipped": skipped}


async def bulk_deals(session: AsyncSession, actor: User, data: Any) -> dict[str, Any]:
    """``action``: responsible (``value``: a user id), tag (a tag name, added), stage (a stage id of
    the deal's pipeline: a move without a result), delete."""
    ids, action, value = _request(data, DEAL_ACTIONS)

    async def change(s: AsyncSession, user: User, deal_id: int) -> None:
        if action == "responsible":
            await deals.update_deal(s, user, deal_id, {"responsible_id": value})
        elif action == "tag":
            current = await deals.get_deal(s, user, deal_id)
            if value not in current["tags"]:
                await deals.update_deal(s, user, deal_id, {"tags": [*current["tags"], value]})
        elif action == "stage":
            await deals.move_deal(s, user, deal_id, {"stage_id": value})
        else:
            await deals.delete_deal(s, user, deal_id)

    return await _each(session, actor, ids, change)


async def bulk_clients(session: AsyncSession, actor: User, data: Any, region: str = "RU") -> dict[str, Any]:
    """``action``: manager (a user id), tag (a tag name, added), delete."""
    ids, action, value = _request(data, CLIENT_ACTIONS)

    async def change(s: AsyncSession, user: User, client_id: int) -> None:
        if action == "manager":
            await clients.update_client(s, user, client_id, {"manager_id": value}, region)
        elif action == "tag":
            current = await clients.get_client(s, user, client_id)
            if value not in current["tags"]:
                await clients.update_client(s, user, client_id, {"tags": [*current["tags"], value]}, region)
        else:
            await clients.delete_client(s, user, client_id)

    return await _each(session, actor, ids, change)
