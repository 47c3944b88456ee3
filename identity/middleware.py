"""
WebSocket authentication. A handshake names its user with one of:

- `?ticket=<ticket>`: a one-use ticket from `POST /identity/ws-ticket/` (identity.tickets), what
  browsers use, so that no long-lived token appears in a URL;
- `?token=<key>`: an API token, for clients that keep their URLs out of logs;
- the session cookie (the admin, the browsable API).

A ticket or token, when given, decides: a bad one is not rescued by a cookie. A ticket opens a
socket only while the token or session it was issued with still stands (a session: signed in
with the user's current password, as the cookie is checked). The scope gets `user` and
`credential` (what the socket lives on, and whether its user was staff when it opened:
identity.credentials).
"""

from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.auth import get_user
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser

from identity import credentials, tickets
from identity.credentials import Credential, of_session, of_token
from identity.models import Token, User
from myproject import replicas
from myproject.db import close_old_connections


class WebSocketAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        user: User | None = None
        credential: Credential | None = None
        if "ticket" in query:
            found = await tickets.redeem(query["ticket"][-1])
            if found is not None:
                user_id, credential = found
                user = await sync_to_async(credentials.holder)(credential)
                if user is not None and str(user.pk) != user_id:
                    user = None
        elif "token" in query:
            token = await token_for_key(query["token"][-1])
            if token is not None:
                user, credential = token.user, of_token(token)
        else:
            # On the primary: a session opened a moment ago may not be on a replica yet (and
            # sockets opened with a session, the admin's, are few).
            with replicas.primary():
                user = await get_user(scope)
            session_key = scope["session"].session_key
            if user.is_authenticated and session_key:
                credential = of_session(session_key)
        authenticated = user is not None and user.is_authenticated and credential is not None
        scope = {
            **scope,
            "user": user if authenticated else AnonymousUser(),
            "credential": credential.opened_by(user) if authenticated else None,
        }
        return await super().__call__(scope, receive, send)


def WebSocketAuthMiddlewareStack(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(WebSocketAuthMiddleware(inner)))


@close_old_connections
async def token_for_key(key: str) -> Token | None:
    """The unexpired token of an enabled user with this key, on the primary as over HTTP: a
    token created a moment ago opens a socket at once, and a revoked one (a logout, a disabled
    user) opens none, whatever a replica's lag. This is the handshake's first query, outside
    any consumer handler, on a connection that may have idled for hours: hence the decorator."""
    with replicas.primary():
        token = await Token.objects.unexpired().by_key(key).afirst()
    return token if token is not None and token.user.is_active else None
