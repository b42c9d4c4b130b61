"""Every JSON answer of the hub, written by the one serialiser (``hub.serialise``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hub.serialise import to_json


def json_answer(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=to_json(data), status=status, headers=headers, content_type="application/json",
                        charset="utf-8")
