"""
Users and their API tokens.

`User` is `AUTH_USER_MODEL`: a uuid primary key (never a guessable sequence), `name` to log in
with, `enable` as the active flag (Django's `is_active` reads it, so a disabled user fails
every authentication backend). `Token` allows several tokens per user (one per device, each
revocable on its own); only a SHA-256 digest of each is stored. A token lives `TOKEN_TTL`
(`DJANGO_TOKEN_TTL`) from its creation; whatever accepts tokens asks for unexpired ones:

    Token.objects.by_key(key).unexpired().first()     # None once it has expired
"""

import datetime
import hashlib
import secrets
import uuid

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from myproject.limits import TEXT_MAX_LENGTH

phone_validator = RegexValidator(
    r"^\+[1-9]\d{6,14}$",
    "Enter a phone number in international E.164 form, e.g. +14155550123.",
)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(
        self, name: str, email: str, password: str | None = None, **fields: object
    ) -> "User":
        """Through the users' one write path (identity.services), so that `createsuperuser`
        and code calling the manager publish `user.created` like every other write."""
        from identity.services import users

        fields = {"name": name, "email": self.normalize_email(email), **fields}
        return users.create({**fields, "password": password})  # None: an unusable password

    def create_superuser(
        self, name: str, email: str, password: str | None = None, **fields: object
    ) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(name, email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=150,
        unique=True,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @/./+/-/_ only.",
        error_messages={"unique": "A user with that name already exists."},
    )
    email = models.EmailField(
        unique=True, error_messages={"unique": "A user with that email already exists."}
    )
    phone = models.CharField(max_length=16, blank=True, validators=[phone_validator])
    comment = models.TextField(blank=True, max_length=TEXT_MAX_LENGTH)
    enable = models.BooleanField(default=True, help_text="A disabled user cannot log in.")
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "name"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["enable"]), models.Index(fields=["date_joined"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.enable


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _expiry() -> datetime.datetime:
    """Tokens created at or before this instant have expired."""
    return timezone.now() - settings.TOKEN_TTL


class TokenQuerySet(models.QuerySet["Token"]):
    def by_key(self, key: str) -> "TokenQuerySet":
        """The token with this key (at most one), with its user."""
        return self.select_related("user").filter(digest=_digest(key))

    def unexpired(self) -> "TokenQuerySet":
        """The tokens younger than `TOKEN_TTL` (`Token.is_expired` is false)."""
        return self.filter(created__gt=_expiry())


class TokenManager(models.Manager.from_queryset(TokenQuerySet)):
    def issue(self, user: User) -> tuple["Token", str]:
        """A new token for `user`; the plain key is returned once and never stored."""
        key = secrets.token_hex(20)
        return self.create(digest=_digest(key), user=user), key


class Token(models.Model):
    digest = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    created = models.DateTimeField(auto_now_add=True)

    objects = TokenManager()

    def __str__(self) -> str:
        return f"token of {self.user_id} from {self.created:%Y-%m-%d %H:%M}"

    @property
    def is_expired(self) -> bool:
        return self.created <= _expiry()
