"""`Authorization: Token <key>`, checked against the stored digests of `identity.Token`: an
unknown, expired (`TOKEN_TTL`) or disabled user's token is a 401."""

from rest_framework import authentication, exceptions

from identity.models import Token, User
from myproject import replicas


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        # A token created a moment ago may not have reached the replica yet.
        token = replicas.or_primary(lambda: Token.objects.by_key(key).first())
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("Token expired; log in again.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
