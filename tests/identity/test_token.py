"""Token login and logout, and the brute-force limits on them."""

import pytest
from rest_framework.test import APIClient

from identity.models import Token
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN = "/identity/token/"


def login(client: APIClient, name: str, password: str = PASSWORD, **extra: str):
    return client.post(TOKEN, {"username": name, "password": password}, format="json", **extra)


def test_login_returns_a_token_that_authenticates(anon, user):
    response = login(anon, "alice")
    assert response.status_code == 200
    key = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/identity/users/").status_code == 200


def test_only_a_digest_of_the_token_is_stored(anon, user):
    key = login(anon, "alice").json()["token"]
    assert not Token.objects.filter(digest=key).exists()
    assert Token.objects.filter(user=user).count() == 1


def test_unknown_name_and_wrong_password_get_the_same_answer(anon, user):
    wrong_password = login(anon, "alice", "not-the-password")
    unknown_name = login(anon, "nobody")
    assert wrong_password.status_code == unknown_name.status_code == 400
    assert wrong_password.json() == unknown_name.json()


def test_login_needs_both_fields(anon):
    response = anon.post(TOKEN, {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


def test_logout_revokes_only_the_token_sent(anon, user):
    first = login(anon, "alice").json()["token"]
    second = login(anon, "alice").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.delete(TOKEN).status_code == 204
    assert client.get("/identity/users/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert client.get("/identity/users/").status_code == 200


def test_logout_needs_authentication(anon):
    assert anon.delete(TOKEN).status_code == 401


def test_login_is_throttled_per_address(anon, user, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login", "3/min")
    codes = [login(anon, f"name{i}", "x").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]
    # The right password does not get through either while throttled.
    assert login(anon, "alice").status_code == 429


def test_login_is_throttled_per_name_across_addresses(anon, user, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login", "3/min")
    codes = [login(anon, "alice", "x", REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]
    assert login(anon, "bob", "x", REMOTE_ADDR="10.0.0.99").status_code == 400
