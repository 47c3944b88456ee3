"""
What a WebSocket was opened with, and whether it still stands.

A socket outlives the request that opened it, so it is tied to its credential: the API token
(`?token=`, or the token a `?ticket=` was issued with) or the session (the cookie, or the session
a ticket was issued with), and to whether its user was staff when it opened (staff sockets read
every user's contact details, in events and live queries). A session stands while it is
unexpired and signed in with the user's current password (Django's session auth hash, as for
HTTP requests). When the credential ends, or a staff socket's user is staff no more, its sockets
close with 4401:

- at once: logging out (`DELETE /identity/token/`, `logout()`), a disabled user (its tokens are
  deleted), a deleted user (cascade), the admin deleting a token, and any change of a user's
  password, whatever made it (the service, `manage.py changepassword`, the admin's form, a shell's
  `set_password()` and `save()`: the receivers below, on commit); staff status taken away
  through the user service (REST, single and bulk; the admin) closes the user's sockets too;
- within SWEEP seconds otherwise: an expired token (`DJANGO_TOKEN_TTL`) or session, a user
  disabled or demoted by a path that sent nothing, a revocation lost while Redis was
  unreachable (`still_standing`, asked by every daphne process for its sockets).

A ticket is checked the same way when it is redeemed (`holder`): one taken before its token or
session ended opens nothing.

Revocations are frames of the realtime control topic, to a group per credential named by a
digest (myproject.realtime.revocation): no token or session key ever reaches Redis. The sweep's
check is registered with the platform in `IdentityConfig.ready`.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import constant_time_compare

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
    # Opened by a staff user: it stands only while that user is still staff.
    staff: bool = False

    @property
    def group(self) -> str:
        """The channel-layer group of the sockets opened with this credential: a digest, so
        that no session key travels through Redis."""
        digest = hashlib.sha256(f"{self.kind}:{self.key}".encode()).hexdigest()[:40]
        return topics.credential_group(digest)

    def opened_by(self, user: User) -> "Credential":
        """This credential as a socket of `user` holds it: staff or not, as the user is now."""
        return replace(self, staff=bool(user.is_staff))


def of_token(token: Token) -> Credential:
    return Credential("token", token.digest)


def of_session(session_key: str) -> Credential:
    return Credential("session", session_key)


@close_old_connections
def still_standing(credentials: Iterable[Credential]) -> set[Credential]:
    """Those of `credentials` whose token or session still stands for an enabled user, who is
    still staff if it was when the socket opened. Asked of the primary: a replica behind would
    end a credential created a moment ago, or keep one revoked a moment ago."""
    with replicas.primary():
        holders = _holders(set(credentials))
    return {
        credential for credential, user in holders.items() if user.is_staff or not credential.staff
    }


@close_old_connections
def holder(credential: Credential) -> User | None:
    """The enabled user whose token or session this still is; None once it has ended (a
    ticket's handshake: the token was deleted, the session ended or its password changed)."""
    with replicas.primary():
        return _holders({credential}).get(credential)


def _holders(wanted: set[Credential]) -> dict[Credential, User]:
    digests = [c.key for c in wanted if c.kind == "token"]
    tokens = {
        token.digest: token.user
        for token in Token.objects.unexpired()
        .select_related("user")
        .filter(digest__in=digests, user__enable=True)
    }
    keys = [c.key for c in wanted if c.kind == "session"]
    sessions = {
        session.session_key: session.get_decoded()
        for session in Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
    }
    users = {
        str(user.pk): user
        for user in User.objects.filter(
            pk__in=[d[SESSION_KEY] for d in sessions.values() if d.get(SESSION_KEY)], enable=True
        )
    }
    found = {}
    for credential in wanted:
        if credential.kind == "token":
            user = tokens.get(credential.key)
        else:
            data = sessions.get(credential.key, {})
            user = users.get(data.get(SESSION_KEY))
            if user is not None and not _signed_in_with_current_password(data, user):
                user = None
        if user is not None:
            found[credential] = user
    return found


def _signed_in_with_current_password(session: dict[str, Any], user: User) -> bool:
    """Django's check of a session (`django.contrib.auth.get_user`): the hash it was signed in
    with is the user's current one, under SECRET_KEY or one of its fallbacks."""
    signed = session.get(HASH_SESSION_KEY)
    return bool(signed) and any(
        constant_time_compare(signed, current)
        for current in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    )


@receiver(post_delete, sender=Token)
def _token_deleted(sender: type[Token], instance: Token, **kwargs: Any) -> None:
    publish.revoke_on_commit([of_token(instance).group])


@receiver(post_delete, sender=Session)
def _session_deleted(sender: type[Session], instance: Session, **kwargs: Any) -> None:
    publish.revoke_on_commit([of_session(instance.session_key).group])


@receiver(pre_save, sender=User)
def _note_password_change(
    sender: type[User], instance: User, using: str, update_fields: Any = None, **kwargs: Any
) -> None:
    """Whether this save changes the stored password hash, asked of the database itself so
    that every way of changing it counts, not only the service's."""
    instance._password_changed = (
        not instance._state.adding
        and (update_fields is None or "password" in update_fields)
        and not sender._default_manager.using(using)
        .filter(pk=instance.pk, password=instance.password)
        .exists()
    )


@receiver(post_save, sender=User)
def _password_changed(sender: type[User], instance: User, **kwargs: Any) -> None:
    """A new password closes every socket of the user at once (its sessions end with it)."""
    if instance.__dict__.pop("_password_changed", False):
        publish.revoke_on_commit([topics.user_group(instance.pk)])
