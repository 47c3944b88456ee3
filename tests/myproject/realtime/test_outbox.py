"""
The outbox (myproject/realtime/outbox.py): a write's frames are stored with the write and
published from there, once each, oldest first, by whichever relay gets to them; against the
suite's real MariaDB and Redis. The faults that motivate it (processes killed with Redis
paused) are tried on the running stack in tests/hardening/test_delivery.py.
"""

import io
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.management import call_command
from django.db import connection, transaction

from catalog.services import categories
from identity.models import User
from myproject.realtime import outbox, publish
from myproject.realtime.broker import broker
from myproject.realtime.models import Outbox
from tests.factories import CategoryFactory
from tests.ws import open_socket, receive_type

pytestmark = pytest.mark.django_db(transaction=True)


def frames_of(topic: str) -> list[tuple[int, str]]:
    """(seq, payload) of every frame of `topic` in its history."""
    position = broker().position(topic)
    _, entries = async_to_sync(broker().history)(topic, position.epoch, 0)
    return [(entry.seq, entry.payload) for entry in entries]


def test_a_write_stores_its_frame_in_its_own_transaction():
    with transaction.atomic():
        categories.create({"name": "Shoes", "slug": "shoes-outbox"})
        (row,) = Outbox.objects.all()  # the same transaction sees it...
        assert row.topic == "catalog"
        assert '"category.created"' in row.payload
        transaction.set_rollback(True)
    assert not Outbox.objects.exists()  # ...and a rolled-back write leaves none


def test_what_the_outbox_holds_is_published_in_order_once_and_removed(private_redis):
    """Frames left by a process that died after its commit: another relay publishes them."""
    topic = "outbox-order"
    with transaction.atomic():
        for n in range(5):
            outbox.add(topic, publish.payload({"type": "n", "n": n}))
    assert outbox.relay().flush(10)
    assert not Outbox.objects.exists()
    frames = frames_of(topic)
    assert [seq for seq, _ in frames] == [1, 2, 3, 4, 5]
    assert [f'"n":{n}' in payload for n, (_, payload) in enumerate(frames)] == [True] * 5


def test_a_relay_publishes_its_own_frames_without_reading_them_back(
    private_redis, django_assert_num_queries
):
    """Every write is followed by its relay's run: the frames its process committed are
    published from memory (the oldest frames read, published, deleted: two statements), a
    frame another process committed is read back, and nothing is remembered once published."""
    topic = "outbox-own"
    relay = outbox.relay()
    relay.hold()  # as in a WSGI request: the relay thread is not woken meanwhile
    try:
        outbox.add(topic, publish.payload({"type": "n", "n": 0}))
        with django_assert_num_queries(2):
            assert not relay.relay_once()
        Outbox.objects.create(topic=topic, payload=publish.payload({"type": "n", "n": 1}), size=20)
        with django_assert_num_queries(3):  # another process's frame: its payload is read
            assert not relay.relay_once()
    finally:
        relay.release()
    assert [payload for _, payload in frames_of(topic)] == [
        publish.payload({"type": "n", "n": n}) for n in range(2)
    ]
    assert (relay.known, relay.known_bytes) == ({}, 0)


def test_what_a_relay_remembers_is_bounded(private_redis, monkeypatch):
    """Frames it cannot keep (a bulk write's, while Redis is away) are read back instead."""
    monkeypatch.setattr(outbox, "KNOWN_BYTES", 100)
    topic = "outbox-bounded"
    relay = outbox.relay()
    relay.hold()
    try:
        with transaction.atomic():
            outbox.add_many(
                [(topic, publish.payload({"type": "x" * 60, "n": n})) for n in range(3)]
            )
        assert relay.known == {}
        assert relay.flush(10)
    finally:
        relay.release()
    assert len(frames_of(topic)) == 3


def test_relays_racing_over_the_same_frames_number_each_once_in_commit_order(private_redis):
    """Every process's relay may wake at once: each publishes from the oldest frame on, and a
    frame's outbox id is its idempotency key, so the topic's numbering has no duplicate and
    follows the outbox's order."""
    topic = "outbox-race"
    for n in range(300):  # committed one by one, as 300 writes would be
        outbox.add(topic, publish.payload({"type": "n", "n": n}))
    relays = [outbox.Relay() for _ in range(4)]
    errors: list[BaseException] = []

    def run(relay: outbox.Relay) -> None:
        try:
            relay.flush(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert not Outbox.objects.exists()
    frames = frames_of(topic)
    assert [seq for seq, _ in frames] == list(range(1, 301))
    assert [payload for _, payload in frames] == [
        publish.payload({"type": "n", "n": n}) for n in range(300)
    ]


def test_while_redis_is_away_frames_wait_in_the_outbox_and_go_out_once_it_is_back(
    private_redis,
):
    topic = "outbox-outage"
    private_redis.stop()
    with transaction.atomic():
        outbox.add(topic, publish.payload({"type": "n", "n": 1}))
    assert not outbox.relay().flush(2)  # nothing can be published...
    count, age = outbox.backlog()
    assert count == 1  # ...and nothing is lost: the outbox holds it
    assert age >= 0
    private_redis.start()
    assert outbox.relay().flush(10)
    assert outbox.backlog() == (0, 0.0)
    assert [seq for seq, _ in frames_of(topic)] == [1]


async def test_the_user_manager_and_createsuperuser_publish_their_writes(monkeypatch):
    users = await open_socket_on_users()
    await sync_to_async(User.objects.create_user)("plain", "plain@example.com", "pw-Long-42x")
    assert (await receive_type(users, "user.created"))["data"]["name"] == "plain"
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Long-secret-42")
    await sync_to_async(call_command)(
        "createsuperuser", "--noinput", "--name", "boss", "--email", "boss@example.com",
        stdout=io.StringIO(),
    )  # fmt: skip
    created = await receive_type(users, "user.created")
    assert created["data"]["name"] == "boss"
    assert created["data"]["is_staff"] is True
    await users.disconnect()


async def open_socket_on_users():
    from tests.factories import StaffFactory, token_for

    staff = await sync_to_async(StaffFactory)(name="watcher")
    return await open_socket("/identity/ws/check/users/", await sync_to_async(token_for)(staff))


@pytest.mark.parametrize("batch", [True, False])
def test_an_import_stopped_half_way_keeps_and_announces_its_committed_batches_with_batch(
    tmp_path, monkeypatch, private_redis, batch
):
    """Without --batch an import is one transaction: stopped half-way, nothing is kept."""
    from catalog.models import Item
    from catalog.services import items

    category = CategoryFactory(slug="batched")
    path = tmp_path / "items.csv"
    path.write_text("sku,name,price,stock,category\n" + "".join(
        f"BATCH-{i},Item,1.00,1,{category.slug}\n" for i in range(6)))  # fmt: skip
    original, calls = items.bulk_create, []

    def bulk_create(rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("the import stops here")  # as a kill or a lost database would
        return original(rows)

    monkeypatch.setattr(items, "bulk_create", bulk_create)
    arguments = [str(path), "--batch-size", "3", *(["--batch"] if batch else [])]
    with pytest.raises(RuntimeError):
        call_command("import_catalog", *arguments, stdout=io.StringIO())
    kept = set(Item.objects.values_list("sku", flat=True))
    assert kept == ({"BATCH-0", "BATCH-1", "BATCH-2"} if batch else set())
    outbox.relay().flush(10)
    announced = [payload for _, payload in frames_of("catalog") if "item.bulk_created" in payload]
    assert len(announced) == (1 if batch else 0)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # its end
def test_the_relay_thread_outlives_a_failure_of_its_own_recovery(monkeypatch):
    """A failed run closes the thread's connections for the next try; when that fails as well
    (seen when the suite forbade the database to a thread left running), the thread goes on
    retrying instead of ending, which would leave frames to the other processes' relays."""
    tries = threading.Semaphore(0)
    done = threading.Event()

    def fails(self) -> bool:
        if done.is_set():
            raise SystemExit  # ends this test's thread: a relay catches only Exception
        tries.release()
        raise RuntimeError("the database is gone")

    def close_fails() -> None:
        raise RuntimeError("and cannot be closed either")

    monkeypatch.setattr(outbox.Relay, "relay_once", fails)
    monkeypatch.setattr(outbox.db, "close_old_connections", close_fails)
    relay = outbox.Relay()
    relay.kick()
    assert all(tries.acquire(timeout=5) for _ in range(3))  # retried (50, 100 ms apart)
    assert relay.thread is not None
    assert relay.thread.is_alive()
    done.set()
    relay.thread.join(5)
    assert not relay.thread.is_alive()
