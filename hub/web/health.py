"""``GET /healthz``: is the database reachable, and how is each channel.

Anybody may ask whether the hub is up (``{"status"}``, a load balancer's probe); the database's and
the channels' states (which name configuration errors) are shown to an administrator's token or
session, and to a request from this machine itself that no proxy forwarded."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from hub.web.api.common import ok
from hub.web.api.schemas import HEALTH_OUT
from hub.web.keys import CHANNELS, DB, USER
from hub.web.routing import Routes, answer

log = logging.getLogger(__name__)

routes = Routes("meta")
TIMEOUT_SECONDS = 5.0


LOOPBACK = ("127.0.0.1", "::1")


def _detailed(request: web.Request) -> bool:
    user = request.get(USER)
    if user is not None:
        return bool(user.role == "admin")
    return request.remote in LOOPBACK and "X-Forwarded-For" not in request.headers


@routes.get("/healthz", "Health: `status` for anybody; the database and every configured channel for an "
            "administrator or from loopback", response=HEALTH_OUT, public=True,
            responses={503: answer("The database is unreachable (the same report, status error)",
                                   HEALTH_OUT)})
async def healthz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await request.app[DB].ping()
        database = "ok"
    except Exception as exc:  # any failure to reach it means: down
        log.warning("health check: database unreachable: %s", exc)
        database = "error"
    channels = {name: state() for name, state in request.app[CHANNELS].items()}
    healthy = database == "ok"
    body: dict[str, object] = {"status": "ok" if healthy else "error"}
    if _detailed(request):
        body.update(database=database, channels=channels)
    return ok(body, 200 if healthy else 503)
