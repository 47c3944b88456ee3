"""REST throttling: per client address and per user, counted in the shared cache."""

import pytest
from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_rates(monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/min")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "4/min")


def test_contract_defaults():
    rates = api_settings.DEFAULT_THROTTLE_RATES
    assert rates == {"anon": "600/min", "user": "6000/min", "login": "10/min"}
    assert settings.BULK_MAX_BATCH == 10000


def test_anonymous_clients_are_throttled_per_address(tight_rates):
    client = APIClient()
    codes = [client.get("/schema/?format=json").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client.get("/schema/?format=json").json()["detail"].startswith("Request was throttled")
    assert client.get("/schema/?format=json", REMOTE_ADDR="127.0.0.9").status_code == 200


def test_users_are_throttled_per_user(tight_rates, user_client):
    codes = [user_client.get("/identity/users/").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]


def test_spoofed_forwarded_for_does_not_dodge_the_limit(tight_rates, settings):
    """Behind nginx (one proxy, which appends the real address) only the last entry counts."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()
    codes = [
        client.get(
            "/schema/?format=json", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 192.0.2.7"
        ).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    assert client.get("/schema/?format=json", HTTP_X_FORWARDED_FOR="192.0.2.8").status_code == 200


def test_rate_off_disables_a_limit(monkeypatch):
    from myproject.settings import _rate

    monkeypatch.setenv("DJANGO_THROTTLE_ANON", "off")
    monkeypatch.setitem(
        SimpleRateThrottle.THROTTLE_RATES, "anon", _rate("DJANGO_THROTTLE_ANON", "3/min")
    )
    client = APIClient()
    assert all(client.get("/schema/?format=json").status_code == 200 for _ in range(5))
