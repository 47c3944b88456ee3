"""
The admin for users and tokens. Writes go through the services (events, revoked sessions); a
superuser is changed, deleted or given a password by superusers alone (`may_write`), and only
superusers grant superuser status or permissions, which would otherwise undo that rule.
"""

from typing import Any

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import forms as auth_forms
from django.http import HttpRequest

from identity.models import Token, User
from identity.permissions import may_write
from identity.services import users
from myproject.admin import ServiceAdmin

# What only a superuser may set: with it, anyone could make themselves a superuser.
ESCALATING_FIELDS = ("is_superuser", "groups", "user_permissions")


class UserCreationForm(auth_forms.BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("name", "email")


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class PasswordChangeForm(auth_forms.AdminPasswordChangeForm):
    """Goes through the service, so a new password revokes the user's sessions."""

    def save(self, commit: bool = True) -> Any:
        if commit:
            users.set_password(self.user, self.cleaned_data.get("password1") or None)
        return self.user


@admin.register(User)
class UserAdmin(ServiceAdmin, auth_admin.UserAdmin):
    service = users
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = PasswordChangeForm
    list_display = ("name", "email", "phone", "enable", "is_staff", "date_joined")
    list_filter = ("enable", "is_staff", "is_superuser")
    search_fields = ("name", "email", "phone")
    ordering = ("name",)
    readonly_fields = ("date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("name", "password")}),
        ("Contact", {"fields": ("email", "phone", "comment")}),
        (
            "Access",
            {"fields": ("enable", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("name", "email", "usable_password", "password1", "password2"),
            },
        ),
    )

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Also guards the password form and the change form's POST.
        return super().has_change_permission(request, obj) and may_write(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Also checked for each selected row by the "delete selected" action.
        return super().has_delete_permission(request, obj) and may_write(request.user, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple:
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, *ESCALATING_FIELDS)


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    """Tokens can be seen and revoked here, never created (their keys are not stored)."""

    list_display = ("user", "created")
    search_fields = ("user__name",)
    raw_id_fields = ("user",)

    def has_add_permission(self, request: Any) -> bool:
        return False
