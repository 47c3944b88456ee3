"""
Positions, history and resume (myproject/realtime/hub.py) in-process, against real Redis: the
first frame is `hello`, every frame is numbered, `?since=` replays what was missed with no gap
and no duplicate or says it cannot, a lost subscription is caught up, and a reset history is
announced before the first frame of its new epoch.
"""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async

from catalog.services import items
from myproject.realtime import publish
from myproject.realtime.broker import broker
from tests.factories import ItemFactory, token_for
from tests.live import PrivateRedis
from tests.ws import connect, open_socket, quiet, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


def room() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


async def say(topic: str, n: int) -> None:
    await broker().apublish(topic, publish.message({"n": n}, None))


async def messages(socket, count: int) -> list[tuple[int, int]]:
    """(seq, n) of the next `count` message frames."""
    frames = [await receive(socket) for _ in range(count)]
    assert all(frame["type"] == "message" for frame in frames), frames
    return [(frame["seq"], frame["message"]["n"]) for frame in frames]


@pytest.fixture
def token(user) -> str:
    return token_for(user)


async def test_the_first_frame_is_hello_with_the_current_position(token):
    name = room()
    for n in range(3):
        await say(name, n)
    socket = await open_socket(f"/identity/ws/check/{name}/", token)
    position = await broker().aposition(name)
    assert socket.hello == {"type": "hello", "topic": name, "epoch": position.epoch,
                            "seq": 3, "recovered": None}  # fmt: skip
    await say(name, 3)
    frame = await receive(socket)
    assert (frame["topic"], frame["epoch"], frame["seq"]) == (name, position.epoch, 4)
    await socket.disconnect()


async def test_since_replays_the_missed_frames_then_the_live_ones(token):
    name = room()
    path = f"/identity/ws/check/{name}/"
    first = await open_socket(path, token)
    await say(name, 0)
    (seen,) = await messages(first, 1)
    await first.disconnect()
    for n in range(1, 6):  # while away
        await say(name, n)
    epoch = first.hello["epoch"]
    again, accepted, _ = await connect(f"{path}?since={epoch}:{seen[0]}", token)
    assert accepted
    hello = await receive(again)
    assert hello == {"type": "hello", "topic": name, "epoch": epoch, "seq": seen[0],
                     "recovered": True}  # fmt: skip
    await say(name, 6)
    assert await messages(again, 6) == [(seen[0] + n, n) for n in range(1, 7)]
    assert await quiet(again, 0.3)  # no duplicate
    await again.disconnect()


@pytest.mark.parametrize("since", ["other-epoch:1", "no colon", "x:-1", "{epoch}:1"])
async def test_what_cannot_be_replayed_is_said_with_recovered_false(token, settings, since):
    settings.WS_HISTORY_SIZE = 3
    name = room()
    for n in range(6):  # seq 1..3 are trimmed away
        await say(name, n)
    epoch = (await broker().aposition(name)).epoch
    socket, accepted, _ = await connect(
        f"/identity/ws/check/{name}/?since={since.format(epoch=epoch)}", token
    )
    assert accepted
    hello = await receive(socket)
    assert hello == {"type": "hello", "topic": name, "epoch": epoch, "seq": 6,
                     "recovered": False}  # fmt: skip
    await socket.disconnect()


async def test_rest_reads_report_the_position_to_resume_from(anon):
    item = await sync_to_async(ItemFactory)()
    listed = await sync_to_async(anon.get)("/catalog/items/")
    position = listed.headers["X-Stream-Position"]
    retrieved = await sync_to_async(anon.get)(f"/catalog/items/{item.uuid}/")
    assert retrieved.headers["X-Stream-Position"] == position
    # A write after the read, before the socket: the socket resuming from the read hears it.
    await sync_to_async(items.update)(item, {"stock": 77})
    socket, accepted, _ = await connect(f"/catalog/ws/?since={position}")
    assert accepted
    assert (await receive(socket))["recovered"] is True
    frame = await receive(socket)
    assert (frame["type"], frame["data"]["stock"]) == ("item.updated", 77)
    await socket.disconnect()


def kill_subscriptions(server: PrivateRedis) -> None:
    import redis

    redis.Redis.from_url(server.url).client_kill_filter(_type="pubsub")


async def test_frames_lost_with_the_subscription_are_read_back_in_order(private_redis, token):
    name = room()
    socket = await open_socket(f"/identity/ws/check/{name}/", token)
    await say(name, 0)
    assert await messages(socket, 1) == [(1, 0)]
    kill_subscriptions(private_redis)
    for n in range(1, 20):  # while this process is not subscribed
        await say(name, n)
    assert await messages(socket, 19) == [(n + 1, n) for n in range(1, 20)]
    assert await quiet(socket, 0.3)
    await socket.disconnect()


async def test_a_history_reset_is_announced_before_the_new_epochs_first_frame(private_redis, token):
    name = room()
    socket = await open_socket(f"/identity/ws/check/{name}/", token)
    await say(name, 0)
    await messages(socket, 1)
    private_redis.stop()  # Redis restarts with nothing: a new epoch
    private_redis.start()
    await asyncio.sleep(0.5)
    await say(name, 1)
    hello = await receive(socket, timeout=5)
    assert hello["type"] == "hello"
    assert hello["recovered"] is False
    assert hello["epoch"] != socket.hello["epoch"]
    frame = await receive(socket)
    assert (frame["epoch"], frame["seq"], frame["message"]) == (hello["epoch"], hello["seq"] + 1,
                                                                {"n": 1})  # fmt: skip
    await socket.disconnect()


async def test_a_failover_that_reuses_a_delivered_seq_is_announced(private_redis, settings, token):
    """A Redis failover to a replica that had not received the last frame: the promoted replica
    numbers its next frame with the seq the hub already delivered. The hub, reconnecting, finds
    another frame there and announces it, rather than skipping the new one as a duplicate."""
    import redis

    replica = PrivateRedis()
    replica.start()
    try:
        primary = redis.Redis.from_url(private_redis.url, socket_timeout=30)
        primary.config_set("repl-diskless-sync-delay", 0)  # the first sync starts at once
        promoted = redis.Redis.from_url(replica.url, socket_timeout=30)
        promoted.config_set("repl-diskless-load", "swapdb")  # no dump.rdb in the working tree
        promoted.replicaof("127.0.0.1", private_redis.port)
        linked = lambda: promoted.info("replication")["master_link_status"] == "up"  # noqa: E731
        for _ in range(200):
            if linked():
                break
            await asyncio.sleep(0.05)
        assert linked(), "the replica did not sync"
        name = room()
        socket = await open_socket(f"/identity/ws/check/{name}/", token)
        await say(name, 0)
        assert await messages(socket, 1) == [(1, 0)]
        assert primary.wait(1, 5000) == 1  # the replica has received it...
        meta = f"myproject:rt:{{{name}}}:meta"
        for _ in range(100):  # ...and applied it (WAIT does not say so)
            if promoted.hget(meta, "s") == b"1":
                break
            await asyncio.sleep(0.02)
        promoted.replicaof("no", "one")  # promoted before the next frame reached it
        await say(name, 1)
        assert await messages(socket, 1) == [(2, 1)]
        settings.REDIS_URL = replica.url  # where clients find the primary now (as Sentinel says)
        await say(name, 2)  # seq 2 again, on the promoted replica
        private_redis.stop()  # the old primary dies: the hub's subscription drops
        hello = await receive(socket, timeout=10)
        assert (hello["type"], hello["recovered"]) == ("hello", False)
        assert hello["epoch"] != socket.hello["epoch"]
        await say(name, 3)
        frame = await receive(socket, timeout=5)
        expected = (hello["epoch"], hello["seq"] + 1, {"n": 3})
        assert (frame["epoch"], frame["seq"], frame["message"]) == expected
        private_redis.start()  # back, for the socket's channel layer to leave its groups
        await socket.disconnect()
    finally:
        replica.stop()


async def test_chat_messages_go_through_the_same_numbering(token):
    name = room()
    socket = await open_socket(f"/identity/ws/check/{name}/", token)
    await send(socket, {"message": {"n": 1}})
    assert await messages(socket, 1) == [(1, 1)]
    await say(name, 2)
    assert await messages(socket, 1) == [(2, 2)]
    await socket.disconnect()
