"""Headers that keep pages from being framed, sniffed or fed foreign scripts."""

from __future__ import annotations

from aiohttp import web

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy":
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "Referrer-Policy": "same-origin",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, errors and static files included."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html" or request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
