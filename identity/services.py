"""
Writes on users, each publishing its event on commit (see `myproject.services`).

Disabling, deleting a user or changing its password also revokes its sessions: every token is
deleted and, once committed, its open sockets are told to close (code 4401). Taking staff status
away closes the user's sockets alone (its tokens stay): they were opened as staff, and read every
user's contact details. A password change closes the sockets itself, whatever makes it
(identity.credentials).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from identity.models import Token, User
from identity.serializers import UserSerializer, public_representation
from myproject.realtime import publish, topics
from myproject.services import ModelService, Row


class UserService(ModelService[User]):
    model = User
    resource = "user"
    topic = topics.USERS
    serializer_class = UserSerializer

    def public(self, data: dict[str, Any]) -> dict[str, Any]:
        """Others than staff (and the user itself) read the public fields alone, in events as
        over REST."""
        return public_representation(data)

    def build(self, fields: dict[str, Any]) -> User:
        password = fields.pop("password", None)
        user = User(**fields)
        user.set_password(password)  # None -> unusable until set_password
        return user

    @transaction.atomic
    def save(self, instance: User, *, created: bool, before: Row = None) -> User:
        if not created and before is None:
            before = self.stored(instance)
        disabled = before is not None and before["enable"] and not instance.enable
        demoted = before is not None and before["is_staff"] and not instance.is_staff
        instance = super().save(instance, created=created, before=before)
        if disabled:
            revoke_sessions([instance.pk])
        elif demoted:
            close_sockets([instance.pk])
        return instance

    @transaction.atomic
    def bulk_update(self, changes: Sequence[tuple[User, dict[str, Any]]]) -> list[User]:
        disabled = _disabled_by(changes)
        demoted = [pk for pk in _demoted_by(changes) if pk not in disabled]
        instances = super().bulk_update(changes)
        revoke_sessions(disabled)
        close_sockets(demoted)
        return instances

    @transaction.atomic
    def delete(self, instance: User) -> None:
        uuid = instance.pk
        super().delete(instance)
        publish.revoke_on_commit([topics.user_group(uuid)])

    @transaction.atomic
    def bulk_delete(self, queryset: QuerySet) -> list[Any]:
        uuids = super().bulk_delete(queryset)
        publish.revoke_on_commit([topics.user_group(uuid) for uuid in uuids])
        return uuids

    @transaction.atomic
    def set_password(self, user: User, password: str | None) -> None:
        """Set (None: disable) the password and delete every token of the user; the change
        itself closes the user's sockets (identity.credentials)."""
        user.set_password(password)
        user.save(update_fields=["password"])
        Token.objects.filter(user_id=user.pk).delete()


users = UserService()


def _disabled_by(changes: Iterable[tuple[User, dict[str, Any]]]) -> list[object]:
    return [user.pk for user, fields in changes if user.enable and fields.get("enable") is False]


def _demoted_by(changes: Iterable[tuple[User, dict[str, Any]]]) -> list[object]:
    return [
        user.pk for user, fields in changes if user.is_staff and fields.get("is_staff") is False
    ]


def revoke_sessions(uuids: Sequence[object]) -> None:
    """Delete the users' tokens now and close their sockets once this transaction commits."""
    if not uuids:
        return
    Token.objects.filter(user_id__in=uuids).delete()
    close_sockets(uuids)


def close_sockets(uuids: Sequence[object]) -> None:
    """Close (4401) every socket of the users once this transaction commits; their tokens
    stay."""
    if uuids:
        publish.revoke_on_commit([topics.user_group(uuid) for uuid in uuids])
