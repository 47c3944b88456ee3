"""
The stack on replicated stores (`make stack HA=1`), from outside, through nginx: a MariaDB primary
and replica with GTID replication, a Redis primary and replica under three Sentinels. Faults are
real: a replica behind by MASTER_DELAY, a replica shut down, the Redis primary SIGKILLed.

These tests run after every other stack test (they stop the session's stack for its ports).
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import MySQLdb
import pytest
import redis
import websockets

from tests.stack import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    NGINX,
    ROOT,
    STACK_PORTS,
    Traffic,
    answers,
    from_address,
    make,
    new_category,
    new_item,
    stack_env,
    stop_stack,
    traffic,
    wait_for,
)

pytestmark = [pytest.mark.stack, pytest.mark.ha]

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"
PRIMARY_DB, REPLICA_DB = 3316, 3317
REDIS_PORTS = (6381, 6382)
SENTINELS = (26381, 26382, 26383)
HA_PORTS = (PRIMARY_DB, REPLICA_DB, *REDIS_PORTS, *SENTINELS)
HA_DIR = ROOT / "var" / "ha"
CREDENTIALS = {"username": ADMIN_NAME, "password": ADMIN_PASSWORD}


@dataclass
class HAStack:
    env: dict[str, str]
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def in_stack_env(command: str, **extra: str) -> subprocess.CompletedProcess:
    """`command` in a shell that has nothing but `set -a; . var/run/stack.env`."""
    return subprocess.run(
        ["bash", "-c", f"set -a; . var/run/stack.env; set +a; {command}"],
        cwd=ROOT, env={"PATH": os.environ["PATH"], **extra},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ha(stack_ports: None) -> Iterator[HAStack]:
    stop_stack()  # the session's stack, on the same ports
    env = {**stack_env(), "HA": "1"}
    make("stack-stop", env)  # whatever an interrupted run left
    busy = [port for port in (*STACK_PORTS, *HA_PORTS) if answers(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use by something other than the stack")
    started = time.monotonic()
    try:
        make("stack", env, timeout=180)
        startup = time.monotonic() - started
        assert startup < 90, f"make stack HA=1 took {startup:.0f} s"
        # The admin is made by manage.py with only var/run/stack.env for an environment.
        admin = in_stack_env(
            f".venv/bin/python manage.py createsuperuser --noinput --name {ADMIN_NAME}"
            f" --email {ADMIN_NAME}@example.com",
            DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        )
        assert admin.returncode == 0, admin.stderr
        response = httpx.post(f"{NGINX}/identity/token/", json=CREDENTIALS, timeout=30)
        assert response.status_code == 200, response.text
        yield HAStack(env=env, token=response.json()["token"])
    finally:
        make("stack-stop", env)
    assert not [port for port in (*STACK_PORTS, *HA_PORTS) if answers(port)]


# --- the stores, seen directly ------------------------------------------------------------


def sql(port: int, statement: str, database: str | None = None) -> list[dict[str, Any]]:
    """Rows of `statement` on the MariaDB server on `port` (the stack's database: `myproject`)."""
    connection = MySQLdb.connect(host="127.0.0.1", port=port, user="root", connect_timeout=5,
                                 **({"database": database} if database else {}))  # fmt: skip
    try:
        cursor = connection.cursor(MySQLdb.cursors.DictCursor)
        cursor.execute(statement)
        return list(cursor.fetchall())
    finally:
        connection.close()


def on_replica(statement: str) -> list[dict[str, Any]]:
    return sql(REPLICA_DB, statement, database="myproject")


def com_select(port: int) -> int:
    return int(sql(port, "SHOW GLOBAL STATUS LIKE 'Com_select'")[0]["Value"])


def replica_status() -> dict[str, Any]:
    (status,) = sql(REPLICA_DB, "SHOW SLAVE STATUS")
    return status


def replicating() -> bool:
    with contextlib.suppress(MySQLdb.Error, ValueError):
        status = replica_status()
        return status["Slave_IO_Running"] == status["Slave_SQL_Running"] == "Yes"
    return False


@contextlib.contextmanager
def replica_delayed(seconds: int) -> Iterator[None]:
    """The replica applies every transaction `seconds` after the primary committed it."""

    def delay(value: int) -> None:
        sql(REPLICA_DB, "STOP SLAVE")
        sql(REPLICA_DB, f"CHANGE MASTER TO MASTER_DELAY={value}")
        sql(REPLICA_DB, "START SLAVE")

    delay(seconds)
    try:
        yield
    finally:
        delay(0)
        wait_for(lambda: replica_status()["Seconds_Behind_Master"] == 0, 30, "replica behind")


def sentinel_primary() -> int:
    _, port = redis.Redis(port=SENTINELS[0]).sentinel_get_master_addr_by_name("mymaster")
    return int(port)


def pid_in(directory: Path) -> int | None:
    """The process of the topology that runs in `directory` (scripts/ha.sh)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] not in "ZX" and (entry / "cwd").resolve() == directory:
                    return int(entry.name)
    return None


def ha_script(command: str) -> None:
    result = subprocess.run([str(ROOT / "scripts" / "ha.sh"), command], cwd=ROOT,
                            capture_output=True, text=True, timeout=90)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# --- traffic -------------------------------------------------------------------------------


def created(writes: Traffic) -> list[tuple[float, str]]:
    """(sent at, uuid) of each item created (its body begins with the uuid)."""
    return [
        (at, re.match(r'\{"uuid":"([0-9a-f-]{36})"', body)[1])
        for at, status, _, body in writes.results
        if status == 201
    ]


def failed(record: Traffic) -> list[tuple]:
    return [row for row in record.results if not 200 <= row[1] < 300]


# --- sockets -------------------------------------------------------------------------------


class Sockets:
    """Sockets held open through nginx by an event loop of their own, each frame recorded."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.frames: list[list[dict]] = [[] for _ in urls]
        self.closed: list[str | None] = [None] * len(urls)  # why a socket ended early
        self.opened = 0
        self.loop = asyncio.new_event_loop()
        self.done: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    def __enter__(self) -> "Sockets":
        self.thread.start()
        wait_for(lambda: self.opened == len(self.urls) or any(self.closed), 30, "sockets open")
        assert not any(self.closed), self.closed
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(30)

    async def _main(self) -> None:
        self.done = asyncio.Event()
        await asyncio.gather(*(self._hold(index, url) for index, url in enumerate(self.urls)))

    async def _hold(self, index: int, url: str) -> None:
        try:
            async with websockets.connect(url, origin=ORIGIN, open_timeout=20) as socket:
                self.frames[index].append(json.loads(await asyncio.wait_for(socket.recv(), 20)))
                self.opened += 1
                receiver = asyncio.ensure_future(self._receive(index, socket))
                await self.done.wait()
                receiver.cancel()
        except Exception as exc:  # a socket that did not open, or broke
            self.closed[index] = self.closed[index] or repr(exc)

    async def _receive(self, index: int, socket: websockets.ClientConnection) -> None:
        try:
            async for message in socket:
                self.frames[index].append(json.loads(message))
        finally:
            if not self.done.is_set():
                self.closed[index] = f"closed early: {socket.close_code} {socket.close_reason}"


def created_uuids(frames: list[dict]) -> set[str]:
    return {frame["data"]["uuid"] for frame in frames if frame["type"] == "item.created"}


# What a check channel's socket hears besides the numbered frames: never numbered, never kept.
EPHEMERAL = {"presence", "presence.joined", "presence.left", "signal"}


def check_continuity(frames: list[dict]) -> int:
    """Within an epoch each numbered frame's seq follows the one before; a jump or a new epoch
    comes only after a `hello` with `recovered: false`. Returns how many such hellos there were."""
    assert frames[0]["type"] == "hello", frames[0]
    epoch, seq, announced = frames[0]["epoch"], frames[0]["seq"], 0
    for frame in frames[1:]:
        if frame["type"] in EPHEMERAL:
            continue
        if frame["type"] == "hello":
            assert frame["recovered"] is False, frame
            epoch, seq, announced = frame["epoch"], frame["seq"], announced + 1
            continue
        assert (frame["epoch"], frame["seq"]) == (epoch, seq + 1), (epoch, seq, frame)
        seq += 1
    return announced


# --- the tests -----------------------------------------------------------------------------


def test_replication_runs_and_reads_are_served_by_the_replica(ha):
    status = replica_status()
    assert (status["Slave_IO_Running"], status["Slave_SQL_Running"]) == ("Yes", "Yes")
    assert status["Using_Gtid"] == "Slave_Pos"
    category = new_category(ha, "ha")  # a write: on the primary, then replicated
    wait_for(lambda: on_replica(f"SELECT 1 FROM catalog_category WHERE uuid = "
                                     f"'{category.replace('-', '')}'"),
             10, "the write did not reach the replica")  # fmt: skip
    time.sleep(1.5)  # every process has checked the replica since
    replica_before, primary_before = com_select(REPLICA_DB), com_select(PRIMARY_DB)
    # Anonymous: a signed-in request reads its token on the primary (a logout or a deleted user
    # must not outlive the replica's lag), which would be counted there.
    with httpx.Client(timeout=30) as client:
        for _ in range(40):
            response = client.get(f"{NGINX}/catalog/items/")
            assert response.status_code == 200, response.text
    assert com_select(REPLICA_DB) - replica_before >= 40  # the page (not full: no count)
    assert com_select(PRIMARY_DB) - primary_before < 10


def test_stack_env_gives_a_shell_the_same_database_and_redis(ha):
    category = new_category(ha, "ha")
    shown = in_stack_env(
        '.venv/bin/python manage.py shell -c "'
        "from django.conf import settings; from catalog.models import Category; "
        f"print(Category.objects.filter(uuid='{category}').exists(), "
        "settings.DATABASES['default']['PORT'], settings.DATABASE_REPLICAS, "
        'settings.REDIS_SENTINELS, settings.REDIS_SENTINEL_MASTER)"'
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1] == (
        "True 3316 ['replica1'] [('127.0.0.1', 26381), ('127.0.0.1', 26382), "
        "('127.0.0.1', 26383)] mymaster"
    )

    async def broadcast_reaches_a_socket() -> dict:
        async with websockets.connect(f"{WS}/catalog/ws/", origin=ORIGIN) as socket:
            await asyncio.wait_for(socket.recv(), 10)  # hello
            sent = await asyncio.to_thread(
                in_stack_env, ".venv/bin/python manage.py broadcast catalog '{\"ha\": 1}'"
            )
            assert sent.returncode == 0, sent.stderr
            return json.loads(await asyncio.wait_for(socket.recv(), 10))

    frame = asyncio.run(broadcast_reaches_a_socket())
    assert (frame["type"], frame["message"]) == ("message", {"ha": 1})


def test_150_writes_each_read_back_at_once_through_a_lagging_replica(ha):
    category = new_category(ha, "ha")
    items = []
    for _ in range(5):
        response = new_item(ha, category)(httpx.Client(timeout=30))
        items.append(response.json()["uuid"])
    lagged = []

    def rounds(item: str, echo_header: bool) -> list[str]:
        """Rename the item and read it back, 30 times; what was stale. With `echo_header`
        the client keeps no cookie and sends X-Read-After back instead."""
        stale = []
        with httpx.Client(timeout=30) as client:
            read_after: dict[str, str] = {}
            for number in range(30):
                name = f"round {number}"
                written = client.patch(f"{NGINX}/catalog/items/{item}/", headers=ha.auth,
                                       json={"name": name})  # fmt: skip
                assert written.status_code == 200, written.text
                if echo_header:
                    client.cookies.clear()
                    read_after = {"X-Read-After": written.headers["X-Read-After"]}
                if number % 10 == 0:  # the replica does lag behind the write
                    row = on_replica("SELECT name FROM catalog_item WHERE uuid = "
                                          f"'{item.replace('-', '')}'")  # fmt: skip
                    lagged.append(row[0]["name"] != name)
                read = client.get(f"{NGINX}/catalog/items/{item}/",
                                  headers={**ha.auth, **read_after})  # fmt: skip
                if read.status_code != 200 or read.json()["name"] != name:
                    stale.append(f"{number}: {read.status_code} {read.text[:100]}")
        return stale

    with replica_delayed(1), ThreadPoolExecutor(5) as pool:
        time.sleep(1.5)
        stale = list(pool.map(rounds, items, [False, False, False, False, True]))
    assert stale == [[]] * 5
    assert sum(lagged) >= len(lagged) // 2, lagged  # most of the time the replica was behind


def test_a_logout_holds_at_once_despite_the_replica_lag(ha):
    with replica_delayed(1):
        time.sleep(1.5)
        for _ in range(3):
            with from_address("127.0.0.7") as client:
                login = client.post(f"{NGINX}/identity/token/", json=CREDENTIALS)
                token = {"Authorization": f"Token {login.json()['token']}"}
                time.sleep(1.5)  # the token has reached the replica, its deletion will not have
                assert client.get(f"{NGINX}/catalog/items/", headers=token).status_code == 200
                assert client.delete(f"{NGINX}/identity/token/", headers=token).status_code == 204
                # The read-after cookie of the logout: the token is gone for this client at once.
                assert client.get(f"{NGINX}/catalog/items/", headers=token).status_code == 401


def test_the_stream_position_of_a_read_misses_no_write_despite_the_replica_lag(ha):
    category = new_category(ha, "ha")
    url = f"{NGINX}/catalog/items/?category={category}&page_size=1000"

    async def listen(since: str, until: float) -> list[dict]:
        frames = []
        async with websockets.connect(f"{WS}/catalog/ws/?since={since}", origin=ORIGIN) as socket:
            while time.monotonic() < until:
                with contextlib.suppress(TimeoutError):
                    frames.append(json.loads(await asyncio.wait_for(socket.recv(), 0.5)))
        return frames

    with replica_delayed(1), traffic(new_item(ha, category)) as writes:
        time.sleep(2)
        # A reader that never wrote: nothing but the position makes it wait for the writes.
        listed = httpx.get(url, headers=ha.auth, timeout=30)
        assert listed.status_code == 200
        position = listed.headers["X-Stream-Position"]
        counted_until = time.monotonic() + 0.5  # writes sent until then: heard by `listen`
        frames = asyncio.run(listen(position, until=counted_until + 4))
    assert (frames[0]["type"], frames[0]["recovered"]) == ("hello", True), frames[0]
    seen = {row["uuid"] for row in listed.json()["results"]} | created_uuids(frames)
    written = created(writes)
    assert {uuid_ for at, uuid_ in written if at < counted_until} - seen == set()
    assert len(written) > 10


def test_another_clients_reads_of_an_item_being_written_skip_a_delayed_replica(ha):
    """A reader that wrote nothing still waits for its X-Stream-Position's GTID, which a replica
    held 1 s back cannot have yet: the read goes straight to the primary instead of waiting
    DJANGO_REPLICA_GTID_WAIT (0.25 s) for nothing first."""
    category = new_category(ha, "ha")
    with httpx.Client(timeout=30) as client:
        item = new_item(ha, category)(client).json()["uuid"]
    url = f"{NGINX}/catalog/items/{item}/"

    def rename(client: httpx.Client) -> httpx.Response:
        return client.patch(url, headers=ha.auth, json={"name": f"at {time.monotonic()}"})

    took = []
    with replica_delayed(1), traffic(rename, threads=1) as writes:
        time.sleep(1.5)  # every process has checked the delayed replica since
        with httpx.Client(timeout=30) as reader:  # anonymous, no cookie: another client
            for _ in range(40):
                started = time.monotonic()
                read = reader.get(url)
                took.append(time.monotonic() - started)
                assert read.status_code == 200, read.text
                assert read.headers["X-Stream-Position"]
        status = replica_status()
    assert status["SQL_Delay"] == 1
    assert failed(writes) == []
    assert len(writes.results) >= 5
    p50 = statistics.median(took)
    print(f"reads beside a delayed replica: p50 {p50 * 1000:.1f} ms, max {max(took) * 1000:.1f} ms")
    assert p50 <= 0.1, sorted(took)


def test_a_replica_far_behind_is_skipped(ha):
    with replica_delayed(30):
        new_category(ha, "ha")  # something for the replica to be behind on
        wait_for(lambda: (replica_status()["Seconds_Behind_Master"] or 0) > 6, 20,
                 "the replica should be more than DJANGO_REPLICA_MAX_LAG behind")  # fmt: skip
        time.sleep(1.5)  # every process has checked it since
        before = com_select(REPLICA_DB)
        category = new_category(ha, "ha")
        for _ in range(20):
            response = httpx.get(f"{NGINX}/catalog/categories/{category}/", headers=ha.auth)
            assert response.status_code == 200, response.text
        assert com_select(REPLICA_DB) - before < 5


def test_the_replica_shut_down_under_reads_costs_no_request(ha):
    reader = lambda client: client.get(f"{NGINX}/catalog/items/", headers=ha.auth)  # noqa: E731
    with traffic(reader, threads=4) as reads:
        time.sleep(1.5)
        subprocess.run(["mariadb-admin", "--protocol=tcp", "-h127.0.0.1", f"-P{REPLICA_DB}",
                        "-uroot", "shutdown"], check=True, timeout=60)  # fmt: skip
        down = time.monotonic()
        time.sleep(3)
        ha_script("revive")  # what an operator does: the replica catches up by itself
        wait_for(replicating, 30, "the replica did not resume replicating")
        time.sleep(1.5)
        before = com_select(REPLICA_DB)
        time.sleep(1.5)
    assert failed(reads) == []
    assert len([row for row in reads.results if row[0] > down]) > 20
    assert com_select(REPLICA_DB) > before  # reads went back to it


def test_the_redis_primary_killed_under_writes_and_30_sockets(ha):
    primary = sentinel_primary()
    category = new_category(ha, "ha")
    # A second token whose socket is closed by logging out after the failover: the channel
    # layer follows the new primary too.
    with from_address("127.0.0.8") as client:
        login = client.post(f"{NGINX}/identity/token/", json=CREDENTIALS)
    revoked = login.json()["token"]
    urls = [f"{WS}/catalog/ws/"] * 20 + [f"{WS}/identity/ws/check/catalog/?token={ha.token}"] * 10
    with (
        Sockets([*urls, f"{WS}/identity/ws/check/room/?token={revoked}"]) as sockets,
        traffic(new_item(ha, category)) as writes,
    ):
        time.sleep(1.5)
        os.kill(pid_in(HA_DIR / f"redis-{primary}"), signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: sentinel_primary() != primary, 10, "no failover within 10 s")
        failed_over = time.monotonic()
        time.sleep(4)
        writes.stop.set()
        # New handshakes work on the new primary (tickets in the cache, socket places).
        ticket = httpx.post(f"{NGINX}/identity/ws-ticket/", headers=ha.auth, timeout=30)
        assert ticket.status_code == 200, ticket.text

        async def handshake() -> dict:
            url = f"{WS}/catalog/ws/?ticket={ticket.json()['ticket']}"
            async with websockets.connect(url, origin=ORIGIN) as socket:
                return json.loads(await asyncio.wait_for(socket.recv(), 10))

        assert asyncio.run(handshake())["type"] == "hello"
        logout = httpx.delete(f"{NGINX}/identity/token/", timeout=30,
                              headers={"Authorization": f"Token {revoked}"})  # fmt: skip
        assert logout.status_code == 204
        wait_for(lambda: sockets.closed[-1] is not None, 5, "the revoked socket stayed open")
        made = created(writes)
        last = made[-1][1]
        wait_for(lambda: all(last in created_uuids(frames) for frames in sockets.frames[:30]),
                 20, "events did not resume on every socket")  # fmt: skip
    assert failed_over - killed < 10
    assert "4401" in sockets.closed[-1]
    assert sockets.closed[:30] == [None] * 30  # no socket of the 30 was closed
    assert failed(writes) == [], failed(writes)[:3]  # no write failed
    assert len([at for at, _ in made if killed < at < failed_over]) >= 5
    resumed = {uuid_ for at, uuid_ in made if at > failed_over + 1}
    assert resumed
    for frames in sockets.frames[:30]:
        announced = check_continuity(frames)
        delivered = created_uuids(frames)
        assert resumed <= delivered  # events resume on the new primary
        if not announced:  # nothing lost without a hello saying so
            assert {uuid_ for _, uuid_ in made} <= delivered
    # What an operator does: bring the old primary back; Sentinel makes it a replica.
    ha_script("revive")
    info = redis.Redis(port=primary).info("replication")
    assert (info["role"], info["master_port"]) == ("slave", sentinel_primary())
