from typing import Any

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import forms as auth_forms

from identity.models import Token, User
from identity.services import users
from myproject.admin import ServiceAdmin


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


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    """Tokens can be seen and revoked here, never created (their keys are not stored)."""

    list_display = ("user", "created")
    search_fields = ("user__name",)
    raw_id_fields = ("user",)

    def has_add_permission(self, request: Any) -> bool:
        return False
