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
