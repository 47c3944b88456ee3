"""
Per-user WebSocket quotas (myproject/realtime/quotas.py) against the suite's Redis (REDIS_URL):
a user's socket places are capped across processes (two `SocketPlaces`, as two daphnes), given
back on release, renewed after Redis lost them and dropped once expired; a user's frames are
rated across its sockets; without Redis the same rules hold in the process, and while Redis is
unreachable the limits fail open.
"""

import uuid

import pytest
import redis
from django.conf import settings as django_settings

from myproject.realtime import quotas
from myproject.realtime.quotas import RateLimit, SocketPlaces, user_rate_allowed


@pytest.fixture
def store():
    """The suite's Redis, as the test starts (a test may point the application elsewhere)."""
    assert django_settings.REDIS_URL, "these tests run against Redis (REDIS_URL)"
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def user_id(store):
    """A user of the test's own, and its keys removed afterwards."""
    user = str(uuid.uuid4())
    yield user
    store.delete(*(f"myproject:ws-{kind}:{user}" for kind in ("sockets", "messages", "signals")))


@pytest.fixture
def cap_of_two(settings):
    settings.WS_MAX_SOCKETS_PER_USER = 2


def places(store, user_id: str) -> list[bytes]:
    return store.zrange(f"myproject:ws-sockets:{user_id}", 0, -1)


async def test_past_the_cap_a_socket_is_refused_and_a_release_gives_the_place_back(
    cap_of_two, store, user_id
):
    sockets = SocketPlaces()
    assert await sockets.acquire(user_id, "a")
    assert await sockets.acquire(user_id, "b")
    assert not await sockets.acquire(user_id, "c")
    assert await sockets.acquire(user_id, "a")  # a place already held is held again
    await sockets.release(user_id, "a")
    assert await sockets.acquire(user_id, "c")
    assert sorted(places(store, user_id)) == [b"b", b"c"]
    for member in ("b", "c"):
        await sockets.release(user_id, member)
    assert places(store, user_id) == []


async def test_the_cap_holds_across_processes(cap_of_two, store, user_id):
    first, second = SocketPlaces(), SocketPlaces()  # two daphnes
    assert await first.acquire(user_id, "a")
    assert await second.acquire(user_id, "b")
    assert not await first.acquire(user_id, "c")
    assert not await second.acquire(user_id, "c")
    await first.release(user_id, "b")  # not its place: gives nothing back
    assert not await second.acquire(user_id, "c")
    await second.release(user_id, "b")
    await second.release(user_id, "b")  # twice: harmless
    assert await first.acquire(user_id, "c")
    for member in ("a", "c"):
        await first.release(user_id, member)


async def test_an_expired_place_is_dropped(cap_of_two, store, user_id):
    """A daphne that died renews its places no more: they expire and free their users' caps."""
    store.zadd(f"myproject:ws-sockets:{user_id}", {"dead-1": 1, "dead-2": 1})  # expired in 1970
    sockets = SocketPlaces()
    assert await sockets.acquire(user_id, "a")
    assert await sockets.acquire(user_id, "b")
    assert sorted(places(store, user_id)) == [b"a", b"b"]
    for member in ("a", "b"):
        await sockets.release(user_id, member)


async def test_renewal_takes_again_the_places_redis_lost(cap_of_two, store, user_id):
    sockets = SocketPlaces()
    for member in ("a", "b"):
        assert await sockets.acquire(user_id, member)
    store.delete(f"myproject:ws-sockets:{user_id}")  # a Redis restart, a failover
    await sockets.renew()
    assert sorted(places(store, user_id)) == [b"a", b"b"]
    ttl = store.pttl(f"myproject:ws-sockets:{user_id}")
    assert 0 < ttl <= quotas.PLACE_TTL * 1000
    assert not await SocketPlaces().acquire(user_id, "c")  # the cap holds again
    for member in ("a", "b"):
        await sockets.release(user_id, member)


async def test_the_nth_plus_one_frame_in_a_period_is_refused_per_user_and_kind(store, user_id):
    allowed = [await user_rate_allowed("signals", user_id, "3/min") for _ in range(4)]
    assert allowed == [True, True, True, False]
    assert await user_rate_allowed("messages", user_id, "3/min")  # another kind
    other = str(uuid.uuid4())
    assert await user_rate_allowed("signals", other, "3/min")  # another user
    assert await user_rate_allowed("signals", user_id, None)  # no rate: no limit
    assert store.exists(f"myproject:ws-signals:{user_id}")  # counted in Redis, for every daphne
    store.delete(f"myproject:ws-signals:{other}")


async def test_without_redis_the_same_rules_hold_in_the_process(settings, user_id, monkeypatch):
    settings.REDIS_URL = ""
    settings.WS_MAX_SOCKETS_PER_USER = 1
    monkeypatch.setattr(quotas, "_buckets", {})
    sockets = SocketPlaces()
    assert await sockets.acquire(user_id, "a")
    assert not await sockets.acquire(user_id, "b")
    await sockets.release(user_id, "a")
    assert await sockets.acquire(user_id, "b")
    await sockets.release(user_id, "b")
    allowed = [await user_rate_allowed("signals", user_id, "2/min") for _ in range(3)]
    assert allowed == [True, True, False]


async def test_while_redis_is_unreachable_the_limits_fail_open(settings, user_id):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.WS_MAX_SOCKETS_PER_USER = 1
    sockets = SocketPlaces()
    assert await sockets.acquire(user_id, "a")
    assert await sockets.acquire(user_id, "b")
    assert all([await user_rate_allowed("signals", user_id, "1/min") for _ in range(3)])
    await sockets.release(user_id, "a")  # logged, and the place expires on its own


def test_a_rate_limit_refuses_past_its_capacity_then_refills():
    limit = RateLimit("2/s")
    assert [limit.allow() for _ in range(3)] == [True, True, False]
    limit.stamp -= 0.5  # half a second passes: one token back
    assert [limit.allow() for _ in range(2)] == [True, False]
    assert RateLimit("600/min").per_second == 10
    unlimited = RateLimit(None)
    assert all(unlimited.allow() for _ in range(1000))


async def test_a_rate_of_zero_allows_no_frame(user_id, caplog):
    assert not await user_rate_allowed("signals", user_id, "0/s")
    assert "unreachable" not in caplog.text
