"""The users admin: staff with every user permission still cannot change, delete or set the
password of a superuser, nor make anyone (itself included) a superuser."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from identity.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

ADMIN = "/admin/identity/user/"


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_admin(db: None) -> User:
    """Staff with every permission on users, but not a superuser."""
    staff = StaffFactory(name="manager")
    staff.user_permissions.set(Permission.objects.filter(content_type__model="user"))
    return staff


@pytest.fixture
def superuser(db: None) -> User:
    return StaffFactory(name="super", is_superuser=True)


def change_form(user: User, **changes: str) -> dict[str, str]:
    form = {"name": user.name, "email": user.email, "date_joined_0": "2020-01-01",
            "date_joined_1": "00:00:00", "is_staff": "on", "enable": "on"}  # fmt: skip
    return {**form, **changes}


def test_staff_cannot_change_delete_or_set_the_password_of_a_superuser(staff_admin, superuser):
    client = admin_client(staff_admin)
    url = f"{ADMIN}{superuser.pk}/"
    assert client.get(f"{url}change/").status_code == 200  # it may look
    password = {"password1": "attacker-Chosen-99", "password2": "attacker-Chosen-99"}
    assert client.post(f"{url}password/", password).status_code == 403
    assert client.post(f"{url}change/", change_form(superuser, enable="")).status_code == 403
    assert client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    superuser.refresh_from_db()
    assert superuser.enable
    assert superuser.check_password(PASSWORD)


def test_delete_selected_refuses_a_selection_holding_a_superuser(staff_admin, superuser):
    plain = UserFactory()
    response = admin_client(staff_admin).post(ADMIN, {
        "action": "delete_selected", "post": "yes", "_selected_action": [plain.pk, superuser.pk],
    })  # fmt: skip
    assert response.status_code == 403
    assert User.objects.filter(pk__in=[plain.pk, superuser.pk]).count() == 2


def test_staff_still_manages_ordinary_users(staff_admin):
    plain = UserFactory()
    client = admin_client(staff_admin)
    changed = client.post(f"{ADMIN}{plain.pk}/change/", change_form(plain, comment="noted"))
    assert changed.status_code == 302
    plain.refresh_from_db()
    assert plain.comment == "noted"
    assert client.post(f"{ADMIN}{plain.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=plain.pk).exists()


def test_only_a_superuser_grants_superuser_status_or_permissions(staff_admin, superuser):
    url = f"{ADMIN}{staff_admin.pk}/change/"
    form = change_form(staff_admin, is_superuser="on", user_permissions=["1"])
    assert admin_client(staff_admin).post(url, form).status_code == 302
    staff_admin.refresh_from_db()
    assert not staff_admin.is_superuser
    assert staff_admin.user_permissions.count() > 1  # unchanged, not replaced by the form's
    assert admin_client(superuser).post(url, form).status_code == 302
    staff_admin.refresh_from_db()
    assert staff_admin.is_superuser


def test_a_superuser_changes_a_superuser(superuser):
    other = StaffFactory(is_superuser=True)
    client = admin_client(superuser)
    password = {"password1": "brand-New-secret-7", "password2": "brand-New-secret-7"}
    assert client.post(f"{ADMIN}{other.pk}/password/", password).status_code == 302
    other.refresh_from_db()
    assert other.check_password("brand-New-secret-7")
