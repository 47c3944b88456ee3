"""
The broker (myproject/realtime/broker/), the one source of truth for numbering, against the
suite's real Redis and against the embedded default's SQLite file: the same behaviour from both.
"""

import asyncio
import time
import uuid

import pytest
import redis
from asgiref.sync import async_to_sync

from myproject.realtime.broker import Listening, Outgoing, broker
from myproject.realtime.broker.local import LocalBroker
from myproject.realtime.broker.redis import RedisBroker
from myproject.realtime.topics import Position


@pytest.fixture(params=["redis", "local"])
def store(request, settings, tmp_path):
    settings.WS_HISTORY_SIZE = 5
    if request.param == "redis":
        return RedisBroker()
    return LocalBroker(tmp_path / "realtime.db")


def topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def test_a_topic_starts_at_zero_in_an_epoch_of_its_own(store):
    first, second = topic(), topic()
    position = store.position(first)
    assert position.seq == 0
    assert Position.parse(str(position)) == position  # an epoch fits in a URL as is
    assert store.position(first) == position  # reading creates it once
    assert store.position(second).epoch != position.epoch


def test_each_frame_gets_the_next_seq_in_publishing_order(store):
    name = topic()
    positions = store.publish([Outgoing(name, f'{{"frame": {{"n": {n}}}}}') for n in range(3)])
    positions += store.publish([Outgoing(name, '{"frame": {"n": 3}}')])
    assert [p.seq for p in positions] == [1, 2, 3, 4]
    assert len({p.epoch for p in positions}) == 1
    assert store.position(name) == positions[-1]


def test_the_history_gives_back_what_it_holds_and_says_when_it_cannot(store):
    name = topic()
    epoch = store.publish([Outgoing(name, f'{{"frame": {{"n": {n}}}}}') for n in range(8)])[0].epoch

    def history(epoch: str, after: int, until: int | None = None):
        return async_to_sync(store.history)(name, epoch, after, until)

    current, entries = history(epoch, 5)
    assert current == Position(epoch, 8)
    assert [e.seq for e in entries] == [6, 7, 8]
    assert entries[0].payload == '{"frame": {"n": 5}}'
    assert [e.seq for e in history(epoch, 4, until=6)[1]] == [5, 6]
    assert history(epoch, 8)[1] == []  # up to date
    assert history(epoch, 2)[1] is None  # seq 3 was trimmed away (5 kept)
    assert history("other-epoch", 7)[1] is None


def test_a_new_epoch_replaces_a_stale_one_once(store):
    name = topic()
    stale = store.publish([Outgoing(name, '{"frame": {}}')])[0]
    fresh = async_to_sync(store.new_epoch)(name, stale.epoch)
    assert fresh.epoch != stale.epoch
    assert fresh.seq == 0
    assert async_to_sync(store.new_epoch)(name, stale.epoch) == fresh  # already replaced
    assert store.publish([Outgoing(name, '{"frame": {}}')])[0] == Position(fresh.epoch, 1)


def test_a_frame_published_again_under_its_key_keeps_its_first_seq(store):
    """A publish retried after a lost reply, or by a second relay of the same outbox row, is
    numbered once: the topic's numbering has no duplicate."""
    name = topic()
    first = store.publish([Outgoing(name, '{"frame": {"n": 1}}', key="7"),
                           Outgoing(name, '{"frame": {"n": 2}}', key="8")])  # fmt: skip
    again = store.publish([Outgoing(name, '{"frame": {"n": 1}}', key="7"),
                           Outgoing(name, '{"frame": {"n": 3}}', key="9")])  # fmt: skip
    assert [p.seq for p in first] == [1, 2]
    assert [p.seq for p in again] == [1, 3]
    _, entries = async_to_sync(store.history)(name, first[0].epoch, 0)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert store.publish([Outgoing(name, "{}")])[0].seq == 4  # no key: always a new frame


def test_a_history_lasts_its_ttl_after_the_topics_last_frame(store, settings):
    """Not per frame: a topic whose frames came in over longer than the TTL keeps them all as
    long as frames keep coming."""
    settings.WS_HISTORY_SIZE = 100
    settings.WS_HISTORY_TTL = 2
    store = RedisBroker() if isinstance(store, RedisBroker) else LocalBroker(store.path)
    name = topic()
    epoch = store.publish([Outgoing(name, "{}")])[0].epoch
    for _ in range(3):
        time.sleep(0.8)
        store.publish([Outgoing(name, "{}")])
    assert len(async_to_sync(store.history)(name, epoch, 0)[1]) == 4  # 2.4 s since the first
    time.sleep(2.2)
    assert async_to_sync(store.history)(name, epoch, 0)[1] is None  # 2.2 s since the last
    assert async_to_sync(store.history)(name, epoch, 4)[1] == []  # nothing missed: fine


def test_a_topic_read_but_never_published_to_lives_as_long_as_a_history(settings):
    """A handshake to a new group name reads its topic's position: that alone must not leave a
    key in Redis for days (a flood of names would fill it)."""
    name = topic()
    RedisBroker().position(name)
    client = redis.Redis.from_url(settings.REDIS_URL)
    meta = f"myproject:rt:{{{name}}}:meta"
    assert 0 < client.pttl(meta) <= settings.WS_HISTORY_TTL * 1000
    RedisBroker().publish([Outgoing(name, "{}")])
    assert client.pttl(meta) > settings.WS_HISTORY_TTL * 1000  # a topic with frames lasts days
    client.close()


def test_a_topics_position_carries_the_gtid_that_covers_its_frames():
    """With database replicas a REST read at a position waits for its GTID: the position keeps
    the highest of each replication domain, whatever order relays publish in."""
    store, name = RedisBroker(), topic()
    assert store.position(name).gtid is None
    store.publish([Outgoing(name, "{}", gtid=gtid) for gtid in ("0-1-12", "0-1-10", None)])
    assert store.position(name).gtid == "0-1-12"
    store.publish([Outgoing(name, "{}", gtid="1-1-4")])
    position = store.position(name)
    assert position.gtid == "0-1-12,1-1-4"
    assert str(position) == f"{position.epoch}:4"  # not part of the position's text


def test_listening_hears_every_frame_with_its_position(store):
    name = topic()

    async def scenario() -> list[tuple[str, str, int, str]]:
        heard, connected = [], asyncio.Event()

        async def on_connected() -> None:
            connected.set()

        listening = asyncio.ensure_future(
            store.listen(
                lambda: [name], lambda *frame: heard.append(frame), on_connected, Listening()
            )
        )
        await asyncio.wait_for(connected.wait(), 5)
        await store.apublish(name, '{"frame": {"n": 1}}')
        await asyncio.to_thread(store.publish, [Outgoing(name, '{"frame": {"n": 2}}')])
        for _ in range(50):
            if len(heard) == 2:
                break
            await asyncio.sleep(0.05)
        listening.cancel()
        return heard

    heard = async_to_sync(scenario)()
    epoch = store.position(name).epoch
    assert heard == [
        (name, epoch, 1, '{"frame": {"n": 1}}'),
        (name, epoch, 2, '{"frame": {"n": 2}}'),
    ]


def test_without_redis_the_embedded_default_uses_the_shared_file(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.WS_LOCAL_HISTORY = tmp_path / "shared.db"
    assert isinstance(broker(), LocalBroker)
    position = broker().publish([Outgoing("ops", '{"frame": {}}')])[0]
    # Another process opening the same file sees the same numbering.
    assert LocalBroker(tmp_path / "shared.db").position("ops") == position


def test_a_deployment_on_another_database_of_the_server_is_not_heard(settings):
    """Redis's pub/sub channels belong to the server, not to a database: two deployments (or a
    developer's and CI's test runs) on databases of one Redis must not hear each other."""
    import json

    from tests.live import server_env
    from tests.stack import manage

    name = topic()
    base = settings.REDIS_URL.rsplit("/", 1)[0]
    other = f"{base}/{(settings.REDIS_DB + 1) % 16}"

    async def scenario() -> list[tuple[str, str, int, str]]:
        heard, connected = [], asyncio.Event()

        async def on_connected() -> None:
            connected.set()

        listening = asyncio.ensure_future(
            RedisBroker().listen(
                lambda: [name], lambda *frame: heard.append(frame), on_connected, Listening()
            )
        )
        await asyncio.wait_for(connected.wait(), 5)
        for url, n in ((other, 1), (settings.REDIS_URL, 2)):  # two processes of their own
            await asyncio.to_thread(
                manage, server_env(), "broadcast", name, json.dumps({"n": n}), REDIS_URL=url
            )
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        listening.cancel()
        return heard

    heard = async_to_sync(scenario)()
    assert [json.loads(payload)["frame"]["message"] for *_, payload in heard] == [{"n": 2}]
