"""
What a WebSocket was opened with, and whether it still stands.

A socket outlives the request that opened it, so it is tied to its credential: the API token
(`?token=`, or the token a `?ticket=` was issued with) or the session (the cookie, or the session
a ticket was issued with). When the credential ends, its sockets close with 4401:

- at once, when it is deleted: logging out (`DELETE /identity/token/`, `logout()`), a password
  change or a disabled user (their tokens are deleted), a deleted user (cascade), the admin
  deleting a token (the receivers below, on commit);
- within SWEEP seconds otherwise: an expired token (`DJANGO_TOKEN_TTL`) or session, a user
  disabled by a path that sent nothing, a revocation lost while Redis was unreachable
  (`still_standing`, asked by every daphne process for its sockets).

Revocations travel through the channel layer to a group per credential, named by a digest:
no token or session key ever reaches Redis.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from identity.models import Token, User
from myproject import replicas
from myproject.db import close_old_connections
from myproject.realtime import publish, topics

SWEEP = 30  # seconds between two checks of every socket's credential


@dataclass(frozen=True)
class Credential:
    """A token (by its digest) or a session (by its key, which stays in this process)."""

    kind: Literal["token", "session"]
    key: str

    @property
    def group(self) -> str:
        """The channel-layer group of the sockets opened with this credential: a digest, so
        that no session key travels through Redis."""
        digest = hashlib.sha256(f"{self.kind}:{self.key}".encode()).hexdigest()[:40]
        return topics.credential_group(digest)


def of_token(token: Token) -> Credential:
    return Credential("token", token.digest)


def of_session(session_key: str) -> Credential:
    return Credential("session", session_key)


@close_old_connections
def still_standing(credentials: Iterable[Credential]) -> set[Credential]:
    """Those of `credentials` whose token or session is still valid for an enabled user. Asked
    of the primary: a replica behind would end a credential created a moment ago."""
    with replicas.primary():
        return _standing(set(credentials))


def _standing(wanted: set[Credential]) -> set[Credential]:
    digests = [c.key for c in wanted if c.kind == "token"]
    standing = {
        Credential("token", digest)
        for digest in Token.objects.unexpired()
        .filter(digest__in=digests, user__enable=True)
        .values_list("digest", flat=True)
    }
    keys = [c.key for c in wanted if c.kind == "session"]
    users = {
        session.session_key: session.get_decoded().get(SESSION_KEY)
        for session in Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
    }
    enabled = {
        str(pk)
        for pk in User.objects.filter(
            pk__in=[u for u in users.values() if u], enable=True
        ).values_list("pk", flat=True)
    }
    standing |= {Credential("session", key) for key, user in users.items() if user in enabled}
    return standing


@receiver(post_delete, sender=Token)
def _token_deleted(sender: type[Token], instance: Token, **kwargs: Any) -> None:
    publish.revoke_on_commit([of_token(instance).group])


@receiver(post_delete, sender=Session)
def _session_deleted(sender: type[Session], instance: Session, **kwargs: Any) -> None:
    publish.revoke_on_commit([of_session(instance.session_key).group])
