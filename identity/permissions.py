"""
Who may do what on users: everyone signed in reads; staff writes; a user may update itself
and set its own password (with the old one, see `SetPasswordSerializer`).

Only a superuser may write a superuser (change, disable, delete, set its password): otherwise
any staff user could take one over. `may_write` is that rule; the REST permission below and
the admin (`identity/admin.py`) both apply it, and a bulk write that touches a superuser is
refused whole (`has_bulk_permission`, see `myproject.bulk`).
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from identity.models import User

READ_ACTIONS = {"list", "retrieve", "metadata"}
SELF_ACTIONS = {"update", "partial_update", "set_password"}


def may_write(actor: Any, user: User | None) -> bool:
    """Whether `actor` may change, disable, delete or set the password of `user` as far as
    superuser status goes (None: no particular user)."""
    return user is None or not user.is_superuser or bool(getattr(actor, "is_superuser", False))


class UserPermission(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.action is None:
            return True  # a method the route lacks: let the view answer 405
        return view.action in READ_ACTIONS | SELF_ACTIONS or request.user.is_staff

    def has_object_permission(self, request: Request, view: APIView, obj: User) -> bool:
        if view.action in READ_ACTIONS or request.user.is_staff:
            return True
        return view.action in SELF_ACTIONS and obj.pk == request.user.pk


class SuperuserPermission(permissions.BasePermission):
    """Writes on a superuser, single or bulk, are for superusers alone."""

    message = "Only a superuser may change, disable, delete or set the password of a superuser."

    def has_object_permission(self, request: Request, view: APIView, obj: User) -> bool:
        return view.action in READ_ACTIONS or may_write(request.user, obj)

    def has_bulk_permission(self, request: Request, view: APIView, queryset: QuerySet) -> bool:
        return request.user.is_superuser or not queryset.filter(is_superuser=True).exists()
