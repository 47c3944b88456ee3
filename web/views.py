"""
The web client: one page (`/`) whose ES modules talk to the REST API and the WebSocket
channels like any other client. The page holds no data and no token (the token lives in the
browser's sessionStorage), so it is the same for everyone and must never be cached.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


def content_security_policy(request: HttpRequest) -> str:
    """Scripts, styles and requests from this origin only, WebSockets to this host only.

    `connect-src 'self'` does not cover ws:/wss: in every browser, so the page's own host is
    named for both schemes (it was validated against ALLOWED_HOSTS by `get_host()`), which is
    stricter than allowing every ws: or wss: URL."""
    host = request.get_host()
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self' ws://{host} wss://{host}",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])  # fmt: skip


@never_cache
@require_safe
def index(request: HttpRequest) -> HttpResponse:
    response = render(request, "web/index.html")
    response["Content-Security-Policy"] = content_security_policy(request)
    return response
