"""
The broker (myproject/realtime/broker.py), the one source of truth for numbering, against the
suite's real Redis and against the embedded default's SQLite file: the same behaviour from both.
"""

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync

from myproject.realtime.broker import LocalBroker, RedisBroker, broker
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
    positions = store.publish([(name, f'{{"frame": {{"n": {n}}}}}') for n in range(3)])
    positions += store.publish([(name, '{"frame": {"n": 3}}')])
    assert [p.seq for p in positions] == [1, 2, 3, 4]
    assert len({p.epoch for p in positions}) == 1
    assert store.position(name) == positions[-1]


def test_the_history_gives_back_what_it_holds_and_says_when_it_cannot(store):
    name = topic()
    epoch = store.publish([(name, f'{{"frame": {{"n": {n}}}}}') for n in range(8)])[0].epoch

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
    stale = store.publish([(name, '{"frame": {}}')])[0]
    fresh = async_to_sync(store.new_epoch)(name, stale.epoch)
    assert fresh.epoch != stale.epoch
    assert fresh.seq == 0
    assert async_to_sync(store.new_epoch)(name, stale.epoch) == fresh  # already replaced
    assert store.publish([(name, '{"frame": {}}')])[0] == Position(fresh.epoch, 1)


def test_listening_hears_every_frame_with_its_position(store):
    name = topic()

    async def scenario() -> list[tuple[str, str, int, str]]:
        from myproject.realtime.broker import Subscriptions

        heard, connected = [], asyncio.Event()
        subscriptions = Subscriptions()

        async def on_connected() -> None:
            connected.set()

        listening = asyncio.ensure_future(
            store.listen(
                lambda: [name], lambda *frame: heard.append(frame), on_connected, subscriptions
            )
        )
        await asyncio.wait_for(connected.wait(), 5)
        await store.apublish(name, '{"frame": {"n": 1}}')
        await asyncio.to_thread(store.publish, [(name, '{"frame": {"n": 2}}')])
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
    position = broker().publish([("ops", '{"frame": {}}')])[0]
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
        from myproject.realtime.broker import Subscriptions

        heard, connected = [], asyncio.Event()

        async def on_connected() -> None:
            connected.set()

        listening = asyncio.ensure_future(
            RedisBroker().listen(
                lambda: [name], lambda *frame: heard.append(frame), on_connected, Subscriptions()
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
