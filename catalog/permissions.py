"""The catalog is public to read; only staff writes."""

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS or getattr(view, "action", "") is None:
            return True  # reads, and methods the route lacks (the view answers 405)
        return bool(request.user and request.user.is_staff)
