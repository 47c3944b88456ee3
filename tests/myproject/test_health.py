"""Liveness and readiness, against the real database and Redis."""

import pytest

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def redis_unreachable(settings) -> None:
    """Redis, and the channel layer on it, pointed where nothing answers."""
    settings.REDIS_URL = NOWHERE
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": NOWHERE, "socket_connect_timeout": 0.5}]},
        }
    }


@pytest.mark.django_db
def test_healthz_and_readyz_answer_when_everything_is_up(anon):
    assert anon.get("/healthz").json() == {"status": "ok"}
    ready = anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "channel_layer": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_with_details_when_redis_is_unreachable(anon, redis_unreachable):
    response = anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["channel_layer"].startswith("error")


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.2", "::2"])
def test_readyz_details_are_for_loopback_alone(anon, request, address):
    assert anon.get("/readyz", REMOTE_ADDR=address).json() == {"status": "ok"}
    request.getfixturevalue("redis_unreachable")
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


@pytest.mark.django_db
def test_readyz_pings_the_channel_layer_itself(anon, settings):
    """Redis answering is not enough: the channel layer it is configured with must carry a
    message (here: it points at a Redis that does not answer, the rest at one that does)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": NOWHERE, "socket_connect_timeout": 0.5}]},
        }
    }
    response = anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"].startswith("error")


@pytest.mark.django_db
def test_readyz_lets_go_of_the_channel_it_pinged_through(anon, settings):
    """daphne asks /readyz every few seconds on its own loop, whose layer lives on: each ping's
    channel must be dropped, not kept subscribed."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    for _ in range(5):
        assert anon.get("/readyz").status_code == 200
    layer = get_channel_layer()
    assert not async_to_sync(_channels_of)(layer)


async def _channels_of(layer) -> dict:
    return dict(layer.channels)
