"""Token login and logout, the limit on failed logins, and the tokens' lifetime."""

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from identity.models import Token
from tests.conftest import client_for
from tests.factories import PASSWORD, UserFactory

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


@pytest.fixture
def three_per_minute(monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login", "3/min")


def test_failed_logins_are_limited_per_address(anon, user, three_per_minute):
    codes = [login(anon, f"name{i}", "x").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]
    # The right password does not get through either while throttled...
    refused = login(anon, "alice")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    # ...but another address is not concerned.
    assert login(anon, "alice", REMOTE_ADDR="10.0.0.2").status_code == 200


def test_successful_logins_do_not_count(anon, user, three_per_minute):
    assert [login(anon, "alice").status_code for _ in range(5)] == [200] * 5
    assert [login(anon, "alice", "typo").status_code for _ in range(2)] == [400, 400]
    assert login(anon, "alice").status_code == 200  # below the limit, the right password works


def test_failures_on_one_name_from_many_addresses_do_not_lock_its_owner_out(
    anon, user, three_per_minute
):
    codes = [login(anon, "alice", "x", REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(9)]
    assert codes == [400] * 9
    assert login(anon, "alice").status_code == 200


def test_the_admin_login_form_shares_the_limit(user, three_per_minute):
    UserFactory(name="boss", is_staff=True)
    form = Client()
    for _ in range(2):
        failed = form.post("/admin/login/", {"username": "boss", "password": "x"})
        assert failed.status_code == 200  # the form again, with its error
    assert login(APIClient(), "alice", "x").status_code == 400  # the third failure
    refused = form.post("/admin/login/", {"username": "boss", "password": PASSWORD})
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert form.get("/admin/login/").status_code == 200  # showing the form is not limited
    assert login(APIClient(), "alice").status_code == 429
    other = Client(REMOTE_ADDR="10.0.0.3")
    assert (
        other.post("/admin/login/", {"username": "boss", "password": PASSWORD}).status_code == 302
    )


def test_off_disables_the_login_limit(anon, user, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "login", None)
    assert [login(anon, "alice", "x").status_code for _ in range(12)] == [400] * 12


def test_a_name_longer_than_any_is_refused_before_a_query(anon, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = login(anon, "x" * 151)
    assert response.status_code == 400
    assert "username" in response.json()


# --- lifetime ------------------------------------------------------------------------------


def age(token_owner, **delta: int) -> None:
    Token.objects.filter(user=token_owner).update(
        created=timezone.now() - datetime.timedelta(**delta)
    )


def test_a_token_expires_its_lifetime_after_creation(user, settings):
    settings.TOKEN_TTL = datetime.timedelta(days=30)
    client = client_for(user)
    age(user, days=29, hours=23)
    assert client.get("/identity/users/").status_code == 200
    age(user, days=30, seconds=1)
    response = client.get("/identity/users/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_unexpired_and_is_expired_agree(user, settings):
    settings.TOKEN_TTL = datetime.timedelta(hours=12)
    young, _ = Token.objects.issue(user)
    old, _ = Token.objects.issue(user)
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - datetime.timedelta(hours=13))
    old.refresh_from_db()
    assert list(Token.objects.unexpired()) == [young]
    assert (young.is_expired, old.is_expired) == (False, True)
    key = Token.objects.issue(user)[1]
    assert Token.objects.by_key(key).unexpired().get().user == user


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30d", datetime.timedelta(days=30)), ("12h", datetime.timedelta(hours=12)),
     ("90m", datetime.timedelta(minutes=90)), ("3600s", datetime.timedelta(seconds=3600))],
)  # fmt: skip
def test_token_ttl_reads_a_number_and_a_unit(monkeypatch, value, expected):
    from myproject.settings import _duration

    monkeypatch.setenv("DJANGO_TOKEN_TTL", value)
    assert _duration("DJANGO_TOKEN_TTL", "30d") == expected


@pytest.mark.parametrize("value", ["", "30", "0d", "-1d", "1w", "1.5h", "d"])
def test_token_ttl_refuses_anything_else(monkeypatch, value):
    from myproject.settings import _duration

    monkeypatch.setenv("DJANGO_TOKEN_TTL", value)
    with pytest.raises(ImproperlyConfigured):
        _duration("DJANGO_TOKEN_TTL", "30d")


def test_the_default_lifetime_is_30_days():
    from myproject.settings import TOKEN_TTL

    assert datetime.timedelta(days=30) == TOKEN_TTL
