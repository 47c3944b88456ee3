"""
The REST representation of users, and the rules on who may set and see which field.

`password` is write-only and set only on create (later through `set_password`, which also
revokes tokens). `enable` and `is_staff` are staff-only, and ignored on oneself: nobody,
staff included, can lock themselves out or raise their own privileges.

Contact details are private: a reader who is not staff sees others' `PUBLIC_FIELDS` alone
(its own record in full). The reduction is `public_representation`, so that anything else
that hands users to non-staff readers (events to their sockets) reduces them the same way:

    public_representation(UserSerializer(user).data)   # {"uuid": ..., "name": ..., ...}
"""

from typing import Any

from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.functional import cached_property
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from identity.models import User
from myproject.bulk import BulkListSerializer, ServiceSerializerMixin
from myproject.representation import DateTimeRepresentation

PRIVILEGED_FIELDS = ("enable", "is_staff")
# What every signed-in user may read of every user; the rest is for staff and the user itself.
PUBLIC_FIELDS = ("uuid", "name", "enable", "is_staff", "date_joined")


def public_representation(data: dict[str, Any]) -> dict[str, Any]:
    """A user's full representation reduced to `PUBLIC_FIELDS`."""
    return {name: data[name] for name in PUBLIC_FIELDS if name in data}


class UserSerializer(DateTimeRepresentation, ServiceSerializerMixin, serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Only on create; omitted means the user cannot log in until one is set.",
    )

    class Meta:
        model = User
        fields = [
            "uuid",
            "name",
            "email",
            "phone",
            "comment",
            "enable",
            "is_staff",
            "date_joined",
            "password",
        ]
        read_only_fields = ["uuid", "date_joined"]
        list_serializer_class = BulkListSerializer

    def to_representation(self, instance: User) -> dict[str, Any]:
        """DRF's field-by-field walk, written out (tests/identity/test_serializers.py holds
        them equal): in a list of 50 users that walk, and building the fields for it on every
        request, was most of the request."""
        if not isinstance(instance, User):  # validated data, not a saved row
            data = super().to_representation(instance)
        else:
            data = {
                "uuid": str(instance.uuid),
                "name": instance.name,
                "email": instance.email,
                "phone": instance.phone,
                "comment": instance.comment,
                "enable": instance.enable,
                "is_staff": instance.is_staff,
                "date_joined": self._datetime(instance.date_joined),
            }
        reader = self._reader
        if reader is None or reader.is_staff or instance.pk == reader.pk:
            return data  # no request: the full record (events, the shell)
        return public_representation(data)

    @cached_property
    def _reader(self) -> Any:
        return getattr(self.context.get("request"), "user", None)

    # to_representation is DRF's walk, then the reduction: lists read as values
    # (myproject.rows), reduced by `reduce_rows`.
    values_representation = True

    @classmethod
    def reduce_rows(cls, rows: list[dict[str, Any]], context: dict[str, Any]) -> list[dict]:
        """What `to_representation` keeps of each row for the request's reader."""
        reader = getattr(context.get("request"), "user", None)
        if reader is None or reader.is_staff:
            return rows
        own = str(reader.pk)
        return [row if row["uuid"] == own else public_representation(row) for row in rows]

    def validate_password(self, value: str) -> str:
        if self.instance is not None:
            raise serializers.ValidationError("Change a password through set_password/.")
        _validate_password(value, None)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        actor = getattr(self.context.get("request"), "user", None)
        on_self = self.instance is not None and actor is not None and self.instance.pk == actor.pk
        if not getattr(actor, "is_staff", False) or on_self:
            for name in PRIVILEGED_FIELDS:
                attrs.pop(name, None)
        if "password" in attrs:
            # Now that the other fields are known: not too similar to the name or email.
            candidate = User(**{k: v for k, v in attrs.items() if k != "password"})
            _validate_password(attrs["password"], candidate, field="password")
        return attrs


class UserSchema(OpenApiSerializerExtension):
    """OpenAPI: in a response, only `PUBLIC_FIELDS` are sure to be there (readers who are not
    staff get no more of others)."""

    target_class = UserSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = super().map_serializer(auto_schema, direction)
        if direction == "response":
            schema["required"] = [name for name in schema["required"] if name in PUBLIC_FIELDS]
        return schema


class SetPasswordSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False)
    old_password = serializers.CharField(write_only=True, required=False, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user: User = self.context["user"]
        if self.context["request"].user.pk == user.pk:
            old = attrs.get("old_password")
            if not old or not user.check_password(old):
                raise serializers.ValidationError(
                    {"old_password": ["Your current password is required and must match."]}
                )
        _validate_password(attrs["password"], user, field="password")
        return attrs


class TokenRequestSerializer(serializers.Serializer):
    # No name is longer: a longer one is refused before any query.
    username = serializers.CharField(max_length=User._meta.get_field("name").max_length)
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(
            self.context["request"], username=attrs["username"], password=attrs["password"]
        )
        if user is None:
            # One answer for an unknown name, a wrong password and a disabled user.
            raise serializers.ValidationError(
                "Unable to log in with provided credentials.", code="authorization"
            )
        attrs["user"] = user
        return attrs


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


class WebSocketTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(read_only=True)
    expires_in = serializers.IntegerField(read_only=True, help_text="Seconds left to use it.")


def _validate_password(password: str, user: User | None, field: str | None = None) -> None:
    """AUTH_PASSWORD_VALIDATORS; errors keyed by `field` when raised from `validate()`."""
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        messages = list(exc.messages)
        raise serializers.ValidationError({field: messages} if field else messages) from exc
