"""
WebSocket authentication: `?token=<key>` (browsers cannot set headers on a WebSocket), else
the session cookie. A token, when given, decides: a bad one is not rescued by a cookie.
"""

from typing import Any
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser

from identity.models import Token, User
from myproject.db import close_old_connections


class WebSocketAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        keys = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        user = await user_for_token(keys[-1]) if keys else await get_user(scope)
        scope = {**scope, "user": user or AnonymousUser()}
        return await super().__call__(scope, receive, send)


def WebSocketAuthMiddlewareStack(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(WebSocketAuthMiddleware(inner)))


@close_old_connections
async def user_for_token(key: str) -> User | None:
    """The enabled user a token belongs to. This is the handshake's first query, outside any
    consumer handler, on a connection that may have idled for hours: hence the decorator."""
    token = await Token.objects.by_key(key).afirst()
    return token.user if token is not None and token.user.is_active else None
