"""`Authorization: Token <key>`, checked against the stored digests of `identity.Token`: an
unknown, expired (`TOKEN_TTL`) or disabled user's token is a 401."""

from rest_framework import authentication, exceptions

from identity.models import Token, User
from myproject import replicas


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        # On the primary: a token revoked a moment ago (logout, a password change, a disabled
        # user) must stop working at once, whatever a replica's lag; one created a moment ago
        # must work. One indexed lookup per request; the request's own reads use a replica.
        # `[:1]`, not `.first()`: the digest is the key, and first() would compile an ORDER BY.
        with replicas.primary():
            token = next(iter(Token.objects.by_key(key)[:1]), None)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("Token expired; log in again.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
