"""The users API and token login/logout (`identity/urls.py` routes them)."""

from typing import Any

from django.contrib.auth import logout, user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from identity import credentials, tickets
from identity.models import Token, User
from identity.permissions import SuperuserPermission, UserPermission
from identity.serializers import (
    PUBLIC_FIELDS,
    SetPasswordSerializer,
    TokenRequestSerializer,
    TokenSerializer,
    UserSerializer,
    WebSocketTicketSerializer,
)
from identity.services import users
from identity.throttling import LoginThrottle
from myproject.viewsets import ServiceModelViewSet


class UserViewSet(ServiceModelViewSet):
    queryset = User.objects.all()
    serializer_class = UserSerializer
    service = users
    permission_classes = [UserPermission, SuperuserPermission]
    lookup_field = "uuid"
    filterset_fields = ["enable", "is_staff"]
    ordering = ["name"]

    # Searching or ordering by a field a reader cannot see would reveal it: one request per
    # guess tells whether someone's email contains it. Staff use them all, others the public.
    @property
    def search_fields(self) -> list[str]:
        return self._readable(["name", "email", "phone"])

    @property
    def ordering_fields(self) -> list[str]:
        return self._readable(["name", "email", "date_joined"])

    def _readable(self, fields: list[str]) -> list[str]:
        user = getattr(getattr(self, "request", None), "user", None)
        return fields if user and user.is_staff else [f for f in fields if f in PUBLIC_FIELDS]

    def get_serializer_class(self) -> type[BaseSerializer]:
        return SetPasswordSerializer if self.action == "set_password" else UserSerializer

    @extend_schema(responses={204: None})
    @action(detail=True, methods=["post", "put"])
    def set_password(self, request: Request, uuid: str | None = None) -> Response:
        """Set a password: staff for anyone, a user for itself with `old_password`."""
        user = self.get_object()
        serializer = SetPasswordSerializer(
            data=request.data, context={"request": request, "user": user}
        )
        serializer.is_valid(raise_exception=True)
        users.set_password(user, serializer.validated_data["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MethodFirst:
    """A method the view lacks is answered 405 before anything else: its authentication would
    answer 401 first (`GET /identity/token/`), which tells the client the wrong thing."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)


class TokenView(MethodFirst, APIView):
    """POST a name and password for a token; DELETE revokes the token sent (log out)."""

    serializer_class = TokenRequestSerializer

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request.method == "POST":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(LoginThrottle())
        return throttles

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        _, key = Token.objects.issue(user)
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        return Response({"token": key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.auth, Token):
            request.auth.delete()
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebSocketTicketView(MethodFirst, APIView):
    """A one-use ticket for one WebSocket handshake (`?ticket=`) within 30 seconds, bound to the
    token or session this request was made with (identity.tickets)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: WebSocketTicketSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.auth, Token):
            credential = credentials.of_token(request.auth)
        else:
            credential = credentials.of_session(request.session.session_key)
        ticket = tickets.issue(request.user, credential)
        if ticket is None:
            raise ServiceUnavailable
        return Response({"ticket": ticket, "expires_in": tickets.TTL})


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Tickets cannot be issued right now; retry shortly."
    default_code = "unavailable"
