"""
The stale-connection decorator (myproject/db.py): against MariaDB with a short `wait_timeout`,
ORM work outside a request or a consumer handler fails with "gone away" undecorated and succeeds
decorated, in process and in a real daphne process (where nothing stubs the cleanup).
"""

import asyncio
import json
import time

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync
from django.db import OperationalError, connection, connections

from identity.models import User
from myproject.db import close_old_connections
from myproject.realtime import outbox
from tests.factories import UserFactory, token_for
from tests.live import daphne, server_env
from tests.ws import greeted

pytestmark = pytest.mark.django_db(transaction=True)

GONE_AWAY = {2006, 2013}  # server has gone away / lost connection during query


@pytest.fixture(autouse=True)
def _fresh_connection_after():
    yield
    connection.close()  # the flush after each test needs a live connection


def make_connection_stale() -> None:
    """A fresh connection whose server side gives up after 1 s idle; then wait past it."""
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION wait_timeout = 1")
    time.sleep(2.5)


async def first_user_async() -> User | None:
    return await User.objects.order_by("name").afirst()


def first_user_sync() -> User | None:
    return User.objects.order_by("name").first()


def test_undecorated_async_orm_meets_a_dropped_connection():
    UserFactory()
    make_connection_stale()
    with pytest.raises(OperationalError) as exc:
        async_to_sync(first_user_async)()
    assert exc.value.args[0] in GONE_AWAY


def test_decorated_async_orm_survives_a_dropped_connection():
    user = UserFactory()
    make_connection_stale()
    assert async_to_sync(close_old_connections(first_user_async))() == user


def test_undecorated_sync_orm_meets_a_dropped_connection():
    UserFactory()
    make_connection_stale()
    with pytest.raises(OperationalError) as exc:
        first_user_sync()
    assert exc.value.args[0] in GONE_AWAY


def test_decorated_sync_orm_survives_a_dropped_connection():
    user = UserFactory()
    make_connection_stale()
    assert close_old_connections(first_user_sync)() == user


def test_decorator_keeps_names_and_results():
    decorated = close_old_connections(first_user_async)
    assert decorated.__name__ == "first_user_async"
    assert asyncio.iscoroutinefunction(decorated)


def _status(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE %s", [name])
        return int(cursor.fetchone()[1])


async def _stale_then_handshake(base: str, first: str, second: str) -> dict:
    """A socket's check is the last query; while it stays open the server drops the idle
    connection; then another socket's handshake looks up its token (middleware, no handler)."""
    ws = base.replace("http", "ws") + "/identity/ws/check/room/?token="
    async with websockets.connect(ws + first, origin="http://localhost") as socket:
        await greeted(socket)
        await socket.send(json.dumps({"type": "check", "id": 1, "resource": "user",
                                      "field": "email", "value": "x@example.com"}))  # fmt: skip
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["ok"] is True
        await asyncio.sleep(4)
        async with websockets.connect(ws + second, origin="http://localhost") as other:
            await greeted(other)
            await other.send(json.dumps({"message": "hello"}))
            return json.loads(await asyncio.wait_for(other.recv(), 5))


@pytest.fixture
def short_wait_timeout():
    """New MariaDB sessions (daphne's) get a 2 s wait_timeout while the test runs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.wait_timeout")
        (saved,) = cursor.fetchone()
        cursor.execute("SET GLOBAL wait_timeout = 2")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET GLOBAL wait_timeout = %s", [saved])
    # Sessions opened meanwhile (this thread's, the ORM thread's) keep the 2 s: drop them, so
    # the next test does not meet "server has gone away" after a pause.
    connections.close_all()


@pytest.mark.parametrize(
    ("app", "survives"),
    [("myproject.asgi:application", True), ("tests.undecorated_asgi:application", False)],
)
def test_real_daphne_with_and_without_the_decorator(short_wait_timeout, tmp_path, app, survives):
    first, second = token_for(UserFactory()), token_for(UserFactory())
    log = tmp_path / "daphne.log"
    with daphne(server_env(), app, log) as base:
        aborted = _status("Aborted_clients")
        if survives:
            assert async_to_sync(_stale_then_handshake)(base, first, second)["type"] == "message"
        else:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async_to_sync(_stale_then_handshake)(base, first, second)
            assert refused.value.response.status_code == 500
        assert _status("Aborted_clients") > aborted, "MariaDB should have dropped daphne's link"
    assert ("gone away" in log.read_text()) is not survives


def daphnes_connections() -> int:
    """Connections to the test database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = %s AND ID <> CONNECTION_ID()",
            [connection.settings_dict["NAME"]],
        )
        return cursor.fetchone()[0]


def test_http_over_daphne_leaves_no_connection_open():
    """Each ASGI request runs in a thread of its own: its connection is closed when it ends,
    not left for the garbage collector (without that, 100 probes left ~10 open, and a
    benchmark under load ran MariaDB out of connections)."""
    UserFactory()
    with daphne(server_env()) as base, httpx.Client(base_url=base, timeout=10) as client:
        # The process's own: its outbox relay's persistent connection, open from its first poll.
        time.sleep(outbox.POLL * 1.5)
        before = daphnes_connections()
        for _ in range(30):
            assert client.get("/readyz").status_code == 200
            assert client.get("/catalog/items/?page_size=5").status_code == 200
        deadline = time.monotonic() + 5
        while daphnes_connections() > before and time.monotonic() < deadline:
            time.sleep(0.1)
        # At most as many: another relay's idle connection (this process's) may have closed.
        assert daphnes_connections() <= before
