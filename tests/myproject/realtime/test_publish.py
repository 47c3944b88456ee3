"""
Change events (myproject/realtime/publish.py): every write path publishes after commit, one
event per bulk request (per 1000 rows); Redis trouble never fails or slows a write, and its
frames arrive once Redis is back; a burst reaches every subscriber.
"""

import asyncio
import io
import signal
import threading
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connection
from django.test import Client

from catalog.models import Item
from catalog.services import items
from identity.models import User
from tests.conftest import client_for
from tests.factories import CategoryFactory, StaffFactory, token_for
from tests.ws import body, open_socket, quiet, receive, receive_type

pytestmark = pytest.mark.django_db(transaction=True)


def item_row(category, sku: str) -> dict:
    return {"sku": sku, "name": sku, "price": "1.00", "stock": 1, "category": str(category.uuid)}


async def call(func, *args, **kwargs):
    return await sync_to_async(func)(*args, **kwargs)


# --- every write path ---------------------------------------------------------------------


async def test_rest_single_and_bulk_writes_publish_one_event_each(staff):
    stream = await open_socket("/catalog/ws/")
    api = await call(client_for, staff)
    category = await call(CategoryFactory)

    created = await call(api.post, "/catalog/items/", item_row(category, "A-1"), format="json")
    event = await receive_type(stream, "item.created")
    assert body(event) == {"type": "item.created", "data": created.json()}

    uuid = created.json()["uuid"]
    await call(api.patch, f"/catalog/items/{uuid}/", {"stock": 9}, format="json")
    assert (await receive_type(stream, "item.updated"))["data"]["stock"] == 9

    rows = [item_row(category, f"B-{i}") for i in range(3)]
    bulk = await call(api.post, "/catalog/items/", rows, format="json")
    event = await receive_type(stream, "item.bulk_created")
    assert event["data"] == {"uuids": [row["uuid"] for row in bulk.json()]}

    changes = [{"uuid": row["uuid"], "stock": 0} for row in bulk.json()]
    await call(api.patch, "/catalog/items/", changes, format="json")
    assert len((await receive_type(stream, "item.bulk_updated"))["data"]["uuids"]) == 3

    await call(api.delete, "/catalog/items/?search=B-")
    assert len((await receive_type(stream, "item.bulk_deleted"))["data"]["uuids"]) == 3

    await call(api.delete, f"/catalog/items/{uuid}/")
    assert (await receive_type(stream, "item.deleted"))["data"] == {"uuid": uuid}

    await call(api.patch, f"/catalog/categories/{category.uuid}/", {"name": "X"}, format="json")
    assert (await receive_type(stream, "category.updated"))["data"]["name"] == "X"
    assert await quiet(stream, 0.3)  # nothing more than one event per write
    await stream.disconnect()


async def test_a_bulk_event_carries_at_most_1000_uuids(staff):
    stream = await open_socket("/catalog/ws/")
    api = await call(client_for, staff)
    category = await call(CategoryFactory)
    rows = [item_row(category, f"MANY-{i}") for i in range(2500)]
    created = await call(api.post, "/catalog/items/", rows, format="json")
    assert created.status_code == 201
    sizes = [len((await receive_type(stream, "item.bulk_created"))["data"]["uuids"])
             for _ in range(3)]  # fmt: skip
    assert sizes == [1000, 1000, 500]
    assert await quiet(stream, 0.3)
    await stream.disconnect()


async def test_user_writes_publish_to_the_users_group(user, staff):
    socket = await open_socket("/identity/ws/check/users/", await call(token_for, staff))
    api = await call(client_for, staff)
    response = await call(
        api.post, "/identity/users/", {"name": "bob", "email": "bob@example.com"}, format="json"
    )
    assert (await receive_type(socket, "user.created"))["data"] == response.json()
    rows = [{"name": f"u{i}", "email": f"u{i}@example.com"} for i in range(2)]
    await call(api.post, "/identity/users/", rows, format="json")
    assert len((await receive_type(socket, "user.bulk_created"))["data"]["uuids"]) == 2
    await call(api.delete, f"/identity/users/{response.json()['uuid']}/")
    assert (await receive_type(socket, "user.deleted"))["data"]["uuid"] == response.json()["uuid"]
    await socket.disconnect()


def admin_client() -> Client:
    client = Client()
    client.force_login(StaffFactory(is_superuser=True))
    return client


async def test_admin_writes_publish_events():
    stream = await open_socket("/catalog/ws/")
    admin = await call(admin_client)
    category = await call(CategoryFactory)
    form = {"sku": "ADM-1", "name": "From admin", "description": "", "price": "3.00",
            "stock": "2", "category": str(category.uuid), "enable": "on"}  # fmt: skip
    response = await call(admin.post, "/admin/catalog/item/add/", form)
    assert response.status_code == 302
    event = await receive_type(stream, "item.created")
    assert event["data"]["sku"] == "ADM-1"

    item = await call(Item.objects.get, sku="ADM-1")
    response = await call(admin.post, f"/admin/catalog/item/{item.uuid}/change/",
                          {**form, "stock": "5"})  # fmt: skip
    assert response.status_code == 302
    assert (await receive_type(stream, "item.updated"))["data"]["stock"] == 5

    response = await call(
        admin.post,
        "/admin/catalog/item/",
        {"action": "delete_selected", "_selected_action": [str(item.uuid)], "post": "yes"},
    )
    assert response.status_code == 302
    assert (await receive_type(stream, "item.bulk_deleted"))["data"]["uuids"] == [str(item.uuid)]
    await stream.disconnect()


async def test_admin_disabling_a_user_closes_its_sockets(user):
    socket = await open_socket("/identity/ws/check/room/", await call(token_for, user))
    admin = await call(admin_client)
    form = {
        "name": user.name,
        "email": user.email,
        "phone": "",
        "comment": "",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
    }  # enable unticked
    response = await call(admin.post, f"/admin/identity/user/{user.uuid}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    assert not (await call(User.objects.get, pk=user.pk)).enable


async def test_import_catalog_publishes_one_event_per_batch(tmp_path):
    stream = await open_socket("/catalog/ws/")
    path = tmp_path / "items.csv"
    path.write_text("sku,name,price,stock,category\n" + "".join(
        f"I-{i},Item,1.00,1,imported\n" for i in range(5)))  # fmt: skip
    await call(call_command, "import_catalog", str(path), "--batch-size", "3", stdout=io.StringIO())
    assert (await receive_type(stream, "category.bulk_created"))["data"]["uuids"]
    sizes = [len((await receive_type(stream, "item.bulk_created"))["data"]["uuids"])
             for _ in range(2)]  # fmt: skip
    assert sizes == [3, 2]
    await stream.disconnect()


async def test_a_rolled_back_write_publishes_nothing(staff):
    stream = await open_socket("/catalog/ws/")
    api = await call(client_for, staff)
    category = await call(CategoryFactory)
    rows = [item_row(category, "OK"), {**item_row(category, "BAD"), "price": "-1"}]
    assert (await call(api.post, "/catalog/items/", rows, format="json")).status_code == 400
    assert await quiet(stream, 0.5)
    await stream.disconnect()


async def test_a_wsgi_requests_frames_go_out_once_its_response_is_sent(staff):
    """Under a WSGI server the publisher waits for the response: uWSGI sends the body, then
    closes the response (`request_finished`); only then are the request's frames handed over."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    stream = await open_socket("/catalog/ws/")
    category = await call(CategoryFactory)
    token = await call(token_for, staff)
    environ = RequestFactory().post(
        "/catalog/items/", item_row(category, "WSGI-1"), content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}", SERVER_NAME="localhost",
    ).environ  # fmt: skip
    statuses = []
    response = await call(WSGIHandler(), environ, lambda status, headers: statuses.append(status))
    body_sent = b"".join(response)
    assert statuses == ["201 Created"], body_sent
    assert await quiet(stream, 0.5)  # answered, not yet closed
    await call(response.close)
    assert (await receive_type(stream, "item.created"))["data"]["sku"] == "WSGI-1"
    await stream.disconnect()


# --- broadcast ---------------------------------------------------------------------------


async def test_broadcast_command_reaches_the_group(user):
    socket = await open_socket("/identity/ws/check/ops/", await call(token_for, user))
    out = io.StringIO()
    await call(call_command, "broadcast", "ops", '{"text": "maintenance at 18:00"}', stdout=out)
    frame = await receive(socket)
    assert body(frame) == {"type": "message", "message": {"text": "maintenance at 18:00"},
                     "sender": None}  # fmt: skip
    await socket.disconnect()


def test_broadcast_command_refuses_bad_input():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("broadcast", "ops", "{nope")
    with pytest.raises(CommandError, match="not a valid group"):
        call_command("broadcast", "bad group", "{}")


# --- bursts --------------------------------------------------------------------------------


def _burst_while_nobody_reads(count: int) -> None:
    """Real writes from another thread while the event loop (and so every socket) is blocked:
    every frame has to wait on the way until the sockets read again."""

    def write() -> None:
        category = CategoryFactory()
        for i in range(count):
            items.create({"sku": f"BURST-{i}", "name": "b", "price": Decimal(1), "stock": 1,
                          "category": category})  # fmt: skip
        connection.close()  # this thread's own connection

    worker = threading.Thread(target=write)
    worker.start()
    worker.join()


async def drain(socket, type_: str) -> list[int]:
    """The seqs of the `type_` frames that arrive until the socket falls quiet for a second."""
    seqs = []
    while not await socket.receive_nothing(timeout=1):
        frame = await receive(socket)
        if frame["type"] == type_:
            seqs.append(frame["seq"])
    return seqs


async def test_a_burst_of_500_events_reaches_every_subscriber_in_order():
    sockets = [await open_socket("/catalog/ws/") for _ in range(4)]
    _burst_while_nobody_reads(500)  # blocks this loop on purpose
    received = [await drain(s, "item.created") for s in sockets]
    assert all(len(seqs) == 500 for seqs in received)
    first = received[0][0]
    assert all(seqs == list(range(first, first + 500)) for seqs in received)
    for socket in sockets:
        await socket.disconnect()


# --- Redis trouble never fails, slows or rolls back a write -----------------------------------


def timed_create(api, category, sku: str) -> float:
    started = time.monotonic()
    response = api.post("/catalog/items/", item_row(category, sku), format="json")
    assert response.status_code == 201, response.content
    return time.monotonic() - started


async def test_writes_succeed_quickly_while_redis_is_down_and_their_frames_come_after(
    private_redis, staff, caplog
):
    api = await call(client_for, staff)
    category = await call(CategoryFactory)
    private_redis.stop()
    assert await call(timed_create, api, category, "DOWN-1") < 0.5
    assert await call(Item.objects.filter(sku="DOWN-1").exists)
    await asyncio.sleep(0.5)
    assert "could not publish" in caplog.text

    private_redis.start()
    stream = await open_socket("/catalog/ws/")
    await call(timed_create, api, category, "BACK-1")
    skus = [(await receive_type(stream, "item.created", timeout=5))["data"]["sku"]
            for _ in range(2)]  # fmt: skip
    # The frame of the write made while Redis was down is late, not lost.
    assert sorted(skus) == ["BACK-1", "DOWN-1"]
    await stream.disconnect()


async def test_writes_succeed_quickly_while_redis_hangs(private_redis, staff):
    api = await call(client_for, staff)
    category = await call(CategoryFactory)
    private_redis.proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        assert await call(timed_create, api, category, "HUNG-1") < 0.5
    finally:
        private_redis.proc.send_signal(signal.SIGCONT)
    assert await call(Item.objects.filter(sku="HUNG-1").exists)


def test_broadcast_says_when_nothing_was_sent(settings):
    from django.core.management import CommandError

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    started = time.monotonic()
    with pytest.raises(CommandError, match="Nothing was sent"):
        call_command("broadcast", "ops", "{}")
    assert time.monotonic() - started < 1.5
