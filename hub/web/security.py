"""Headers that keep pages from being framed, sniffed or fed foreign scripts.

``img-src`` also allows https: images, for one reason: a letter's HTML version is an
``<iframe sandbox srcdoc>`` (``hub/webui/static/messages.js``), which inherits this policy, and its
remote images are loaded once the user clicks "show images". Scripts, styles, frames, fonts and
connections stay same-origin only; the letter's document adds its own stricter policy (remote images
only after the click) and its sandbox has no ``allow-scripts``."""

from __future__ import annotations

from aiohttp import web

from hub.web.keys import CONFIG

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy":
        "default-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'",
    "Referrer-Policy": "same-origin",
    # the pages use none of these: no embedded content may either
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                          "interest-cohort=()",
}
SERVER = "CRM Hub"  # not aiohttp's name and version
HSTS = "max-age=31536000"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, errors and static files included. HSTS when the hub is
    served over https (its ``public_url``, or the request itself)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER
    config = request.app.get(CONFIG)
    public_url = config.server.public_url if config is not None else ""
    if request.scheme == "https" or public_url.lower().startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if response.content_type == "text/html" or request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
