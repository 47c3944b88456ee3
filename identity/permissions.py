"""
Who may do what on users: everyone signed in reads; staff writes; a user may update itself
and set its own password (with the old one, see `SetPasswordSerializer`).
"""

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from identity.models import User

READ_ACTIONS = {"list", "retrieve", "metadata"}
SELF_ACTIONS = {"update", "partial_update", "set_password"}


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
