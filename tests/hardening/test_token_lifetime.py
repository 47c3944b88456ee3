"""
Tokens expire `DJANGO_TOKEN_TTL` (30 days) after their creation, through nginx: a token one
day past that is a JSON 401 on every authenticated endpoint, one a day short still works.
"""

import httpx
import pytest

from tests.stack import NGINX, Stack, auth, login, new_account

pytestmark = pytest.mark.stack

ADDRESS = "127.0.0.59"


def age(stack: Stack, token_owner: str, days: int) -> None:
    """Make every token of the user `days` days old."""
    stack.manage("shell", "-c", (
        "import datetime; from django.utils import timezone; from identity.models import Token; "
        f"Token.objects.filter(user__name='{token_owner}')"
        f".update(created=timezone.now() - datetime.timedelta(days={days}))"
    ))  # fmt: skip


def test_a_token_older_than_its_lifetime_is_refused(stack):
    old = new_account(stack, "old-token", address=ADDRESS)
    age(stack, old.name, 31)
    for method, path in [("GET", "/identity/users/"), ("GET", f"/identity/users/{old.uuid}/"),
                         ("PATCH", f"/identity/users/{old.uuid}/"), ("POST", "/catalog/items/"),
                         ("DELETE", "/identity/token/")]:  # fmt: skip
        response = httpx.request(method, f"{NGINX}{path}", json={}, headers=old.auth, timeout=30)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/json"
    # Logging in again gives a token that works.
    fresh = login(old.name, old.password, ADDRESS)
    assert httpx.get(f"{NGINX}/identity/users/", headers=auth(fresh), timeout=30).status_code == 200


def test_a_token_within_its_lifetime_works(stack):
    account = new_account(stack, "young-token", address=ADDRESS)
    age(stack, account.name, 29)
    response = httpx.get(f"{NGINX}/identity/users/", headers=account.auth, timeout=30)
    assert response.status_code == 200, response.text
