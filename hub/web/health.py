"""``GET /healthz``: is the database reachable, and how is each channel."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from hub.web.api.common import ok
from hub.web.api.schemas import HEALTH_OUT
from hub.web.keys import CHANNELS, DB
from hub.web.routing import Routes

log = logging.getLogger(__name__)

routes = Routes("meta")
TIMEOUT_SECONDS = 5.0


@routes.get("/healthz", "Health: the database and every configured channel", response=HEALTH_OUT,
            errors=(503,), public=True)
async def healthz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS), request.app[DB].engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # any failure to reach it means: down
        log.warning("health check: database unreachable: %s", exc)
        database = "error"
    channels = {name: state() for name, state in request.app[CHANNELS].items()}
    healthy = database == "ok"
    body = {"status": "ok" if healthy else "error", "database": database, "channels": channels}
    return ok(body, 200 if healthy else 503)
