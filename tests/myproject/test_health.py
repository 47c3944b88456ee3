"""Liveness and readiness, against the real database and Redis."""

import pytest


@pytest.mark.django_db
def test_healthz_and_readyz_answer_when_everything_is_up(anon):
    assert anon.get("/healthz").json() == {"status": "ok"}
    ready = anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "channel_layer": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_with_details_when_redis_is_unreachable(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["channel_layer"].startswith("error")


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.2", "::2"])
def test_readyz_details_are_for_loopback_alone(anon, settings, address):
    assert anon.get("/readyz", REMOTE_ADDR=address).json() == {"status": "ok"}
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    down = anon.get("/readyz", REMOTE_ADDR=address)
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable"}
    assert "checks" in anon.get("/readyz", REMOTE_ADDR="::1").json()


@pytest.mark.django_db
def test_readyz_judges_the_address_the_proxy_saw(anon, settings):
    """Behind nginx (one proxy) only the entry it appended to X-Forwarded-For counts."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    forged = anon.get("/readyz", HTTP_X_FORWARDED_FOR="127.0.0.1, 10.1.2.3")
    assert forged.json() == {"status": "ok"}
    local = anon.get("/readyz", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="10.1.2.3, 127.0.0.1")
    assert "checks" in local.json()
