"""Third-party front-end files, installed from npm into ``hub/webui/node_modules`` (never committed).

Only the four distribution files the pages use are reachable, under ``/static/vendor/<name>``.
When ``node_modules`` is missing (``scripts/setup`` runs ``npm ci --prefix hub/webui``) the hub still
starts and says so once in its log; the pages work without their enhancements, and each missing
file answers 404 with the command that fixes it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

# ``hub/webui/vendor.json``: served name → path inside node_modules and the licence files a wheel
# carries (setup.py reads the same manifest; hub/webui/package.json pins the versions).
MANIFEST = Path(__file__).resolve().parent.parent / "webui" / "vendor.json"
FILES: dict[str, str] = {name: entry["path"]
                         for name, entry in json.loads(MANIFEST.read_text(encoding="utf-8"))["files"].items()}
FIX = "run scripts/setup (or: npm ci --prefix hub/webui)"
CACHE = "public, max-age=3600"


def missing(node_modules: Path) -> list[str]:
    return [name for name, rel in FILES.items() if not (node_modules / rel).is_file()]


def setup(router: web.UrlDispatcher, node_modules: Path) -> None:
    """Register ``/static/vendor/{name}`` (before the generic ``/static`` route)."""
    absent = missing(node_modules)
    if absent:
        log.warning("front-end libraries missing in %s (%s): pages run without them; %s",
                    node_modules, ", ".join(absent), FIX)

    async def vendor_file(request: web.Request) -> web.StreamResponse:
        rel = FILES.get(request.match_info["name"])
        if rel is None:
            raise web.HTTPNotFound()
        path = node_modules / rel
        if not path.is_file():
            name = request.match_info["name"]
            return web.Response(status=404, text=f"/* {name} is not installed: {FIX} */",
                                content_type="application/javascript")
        return web.FileResponse(path, headers={"Cache-Control": CACHE})

    router.add_get("/static/vendor/{name}", vendor_file)
