"""
Staff cannot take over a superuser, through nginx as an attacker with a staff account would
try: change it, disable it, delete it or set its password, one at a time or hidden in a bulk
request beside an ordinary user, over REST or in the admin. Only a superuser may.
"""

import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.stack import NGINX, Account, Stack, from_address, login, new_account

pytestmark = pytest.mark.stack

ADDRESS = "127.0.0.50"
USERS = f"{NGINX}/identity/users/"


@dataclass
class World:
    tag: str
    staff: Account
    victim: Account  # a superuser
    plain: Account


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    tag = f"su{uuid.uuid4().hex[:6]}"
    staff = new_account(stack, f"{tag}-staff", address=ADDRESS, staff=True)
    victim = new_account(stack, f"{tag}-root", address=ADDRESS, superuser=True)
    plain = new_account(stack, f"{tag}-plain", address=ADDRESS)
    # The admin lets staff change and delete users only with these permissions.
    stack.manage("shell", "-c", (
        "from django.contrib.auth.models import Permission; "
        "from identity.models import User; "
        f"User.objects.get(name='{staff.name}').user_permissions.set(Permission.objects.filter("
        "content_type__app_label='identity', content_type__model='user'))"
    ))  # fmt: skip
    return World(tag, staff, victim, plain)


def detail(account: Account) -> str:
    return f"{USERS}{account.uuid}/"


def assert_untouched(stack: Stack, world: World) -> None:
    """The superuser still exists, is enabled, unchanged, and logs in with its password."""
    victim = httpx.get(detail(world.victim), headers=stack.auth, timeout=30)
    assert victim.status_code == 200, victim.text
    assert victim.json()["enable"] is True
    assert victim.json()["comment"] == ""
    assert victim.json()["is_staff"] is True
    login(world.victim.name, world.victim.password, ADDRESS)


def test_staff_cannot_change_disable_delete_or_set_the_password_of_a_superuser(stack, world):
    name, email = world.victim.name, f"{world.victim.name}@example.com"
    attempts = [
        ("PATCH", detail(world.victim), {"comment": "owned"}),
        ("PATCH", detail(world.victim), {"enable": False}),
        ("PATCH", detail(world.victim), {"email": f"{world.tag}@attacker.example"}),
        ("PUT", detail(world.victim), {"name": name, "email": email, "enable": False}),
        ("POST", f"{detail(world.victim)}set_password/", {"password": "attacker-Chosen-99"}),
        ("PUT", f"{detail(world.victim)}set_password/", {"password": "attacker-Chosen-99"}),
        ("DELETE", detail(world.victim), None),
    ]
    for method, url, body in attempts:
        response = httpx.request(method, url, json=body, headers=world.staff.auth, timeout=30)
        assert response.status_code == 403, (method, url, response.text)
        assert response.headers["content-type"] == "application/json"
    assert_untouched(stack, world)
    # The same staff user still manages ordinary users.
    changed = httpx.patch(detail(world.plain), json={"comment": "ok"}, headers=world.staff.auth,
                          timeout=30)  # fmt: skip
    assert changed.status_code == 200, changed.text


def test_a_bulk_update_touching_a_superuser_is_refused_whole(stack, world):
    for method in ("PATCH", "PUT"):
        batch = [
            {"uuid": world.plain.uuid, "name": world.plain.name,
             "email": f"{world.plain.name}@example.com", "comment": "bulk"},
            {"uuid": world.victim.uuid, "name": world.victim.name,
             "email": f"{world.victim.name}@example.com", "enable": False},
        ]  # fmt: skip
        response = httpx.request(method, USERS, json=batch, headers=world.staff.auth, timeout=30)
        assert response.status_code == 403, (method, response.text)
    assert_untouched(stack, world)
    plain = httpx.get(detail(world.plain), headers=stack.auth, timeout=30).json()
    assert plain["comment"] != "bulk"  # nothing of the batch was written


def test_a_bulk_delete_touching_a_superuser_is_refused_whole(stack, world):
    response = httpx.delete(USERS, params={"search": world.tag}, headers=world.staff.auth,
                            timeout=30)  # fmt: skip
    assert response.status_code == 403, response.text
    assert_untouched(stack, world)
    assert httpx.get(detail(world.plain), headers=stack.auth, timeout=30).status_code == 200


def test_the_admin_refuses_staff_on_a_superuser(stack, world):
    with from_address(ADDRESS) as client:
        client.get(f"{NGINX}/admin/login/")
        signed_in = client.post(f"{NGINX}/admin/login/", data={
            "username": world.staff.name, "password": world.staff.password, "next": "/admin/",
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        })  # fmt: skip
        assert signed_in.status_code == 302, signed_in.text
        csrf = {"csrfmiddlewaretoken": client.cookies["csrftoken"]}
        base = f"{NGINX}/admin/identity/user/"
        # The staff user may see the superuser, and change ordinary users...
        assert client.get(f"{base}{world.plain.uuid}/change/").status_code == 200
        attempts = [
            (f"{base}{world.victim.uuid}/password/",
             {"password1": "attacker-Chosen-99", "password2": "attacker-Chosen-99",
              "usable_password": "true"}),
            (f"{base}{world.victim.uuid}/change/",
             {"name": world.victim.name, "email": f"{world.victim.name}@example.com",
              "is_staff": "on", "is_superuser": "on", "date_joined_0": "2020-01-01",
              "date_joined_1": "00:00:00"}),
            (f"{base}{world.victim.uuid}/delete/", {"post": "yes"}),
            (base, {"action": "delete_selected", "post": "yes",
                    "_selected_action": [world.plain.uuid, world.victim.uuid]}),
        ]  # fmt: skip
        for url, data in attempts:
            response = client.post(url, data={**data, **csrf})
            assert response.status_code == 403, (url, response.status_code, response.text[:300])
    assert_untouched(stack, world)
    assert httpx.get(detail(world.plain), headers=stack.auth, timeout=30).status_code == 200


def test_a_superuser_may_change_a_superuser(stack, world):
    response = httpx.patch(detail(world.victim), json={"phone": "+14155550100"},
                           headers=stack.auth, timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "+14155550100"
