"""Click-to-call: ring the user's own phone, then dial the number (through the ``Dialer`` port).

The call is then tracked like any other outbound call, from the facts the PBX reports."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import phones
from hub.crm.errors import OriginateRefused, TelephonyUnavailable, ValidationError
from hub.crm.extensions import extensions_of
from hub.crm.models import User
from hub.crm.ports import Dialer, DialerUnavailable, DialRefused


class Reader(Protocol):
    def reading(self) -> AbstractAsyncContextManager[AsyncSession]: ...


async def place_call(db: Reader, dialer: Dialer | None, user: User, raw_number: Any,
                     region: str) -> dict[str, Any]:
    """→ ``{action_id, extension, number}`` once the PBX accepted the Originate."""
    try:
        number = phones.normalize(raw_number, region)
    except ValueError as exc:
        raise ValidationError({"number": str(exc)}) from None
    async with db.reading() as s:
        mine = await extensions_of(s, user.id)
    if not mine:
        raise ValidationError({"extension": "no extension: ask an administrator to give you one"},
                              "no extension")
    if dialer is None:
        raise TelephonyUnavailable("telephony is not configured ([asterisk] host)")
    action_id = f"hub-originate-{uuid.uuid4().hex}"
    try:
        await dialer.originate(mine[0], number, action_id)
    except DialerUnavailable as exc:
        raise TelephonyUnavailable(str(exc)) from None
    except DialRefused as exc:
        raise OriginateRefused(f"Asterisk refused the call: {exc}") from None
    return {"action_id": action_id, "extension": mine[0], "number": number}
