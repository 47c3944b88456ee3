"""
Committed means announced, on the running stack, with the real processes killed: a write that
committed reaches the sockets once, whatever process dies after its commit and whatever Redis
was doing meanwhile (the outbox, myproject/realtime/outbox.py).
"""

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager

import httpx
import MySQLdb
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.hardening.test_faults import readyz
from tests.live import children
from tests.stack import (
    NGINX,
    ORIGIN,
    ROOT,
    STACK_DB,
    new_category,
    new_item,
    pid_file,
    raw_socket_that_never_reads,
    wait_for,
)
from tests.ws import greeted_sync

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")


@pytest.fixture(scope="module")
def category(stack) -> str:
    return new_category(stack, "delivery")


@contextmanager
def redis_paused(stack):
    """Redis accepts connections and answers nothing, as a hung or overloaded server does."""
    stack.redis.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        stack.redis.proc.send_signal(signal.SIGCONT)


def collect(socket: ClientConnection, type_: str, wanted: int, timeout: float) -> list[dict]:
    """The `type_` frames the socket receives until `wanted` have come (or `timeout`), and any
    more within the next second (a duplicate would show there)."""
    frames, deadline = [], time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            break
        if frame["type"] == type_:
            frames.append(frame)
            if len(frames) == wanted:
                deadline = time.monotonic() + 1.0
    return frames


def items_named(stack, prefix: str) -> int:
    """Straight from the stack's database: REST would wait on the paused Redis."""
    connection = MySQLdb.connect(host="127.0.0.1", port=stack.mariadb.port, user="root",
                                 database=STACK_DB)  # fmt: skip
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT COUNT(*) FROM catalog_item WHERE sku LIKE %s", [prefix + "%"])
        return cursor.fetchone()[0]
    finally:
        connection.close()


def test_writes_committed_before_every_uwsgi_worker_was_killed_reach_their_sockets_once(
    stack, category
):
    """Redis paused, items POSTed (committed, 201), every uWSGI worker SIGKILLed before any
    could publish, Redis resumed: each frame comes, once, in order, to a socket that listened
    throughout and to one that resumes from before the writes."""
    with connect(f"{WS}/catalog/ws/", origin=ORIGIN) as held:
        hello = greeted_sync(held)
        with redis_paused(stack), httpx.Client(timeout=30) as client:
            created = [new_item(stack, category)(client) for _ in range(3)]
            assert [r.status_code for r in created] == [201] * 3, created[0].text
            workers = children(pid_file("uwsgi"))
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        uuids = [r.json()["uuid"] for r in created]
        frames = collect(held, "item.created", len(uuids), timeout=30)
        assert [f["data"]["uuid"] for f in frames] == uuids  # each once, in commit order
        assert [f["seq"] for f in frames] == sorted(f["seq"] for f in frames)
    wait_for(lambda: len(children(pid_file("uwsgi"))) == len(workers), 30, "no workers again")
    since = f"{hello['epoch']}:{hello['seq']}"
    with connect(f"{WS}/catalog/ws/?since={since}", origin=ORIGIN) as resumed:
        assert greeted_sync(resumed)["recovered"] is True
        frames = collect(resumed, "item.created", len(uuids), timeout=10)
        assert [f["data"]["uuid"] for f in frames if f["data"]["uuid"] in uuids] == uuids


def test_an_import_killed_half_way_with_redis_paused_announces_every_batch_it_committed(
    stack, tmp_path
):
    prefix = f"KILLED-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "items.csv"
    path.write_text("sku,name,price,stock,category\n" + "".join(
        f"{prefix}-{n:05d},Imported,1.00,1,killed-import\n" for n in range(10000)))  # fmt: skip
    with connect(f"{WS}/catalog/ws/", origin=ORIGIN) as held:
        greeted_sync(held)
        with redis_paused(stack):
            command = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "import_catalog", str(path),
                 "--batch", "--batch-size", "100"],
                cwd=ROOT, env={**stack.env, "DJANGO_SECRET_KEY": "stack-test-manage"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                wait_for(lambda: items_named(stack, prefix) >= 500, 60, "no batch committed")
                assert command.poll() is None, "the import ended before it could be killed"
            finally:
                command.kill()
                command.wait()
        committed = items_named(stack, prefix)
        assert 500 <= committed < 10000, "the import should have been stopped half-way"
        frames = collect(held, "item.bulk_created", committed // 100, timeout=30)
    announced = [uuid for frame in frames for uuid in frame["data"]["uuids"]]
    assert len(announced) == len(set(announced)) == committed


def metric(name: str) -> float:
    text = httpx.get(f"{NGINX}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not among the metrics")


def test_the_outbox_drains_after_an_outage_and_says_how_far_behind_it_is(stack, category):
    with connect(f"{WS}/catalog/ws/", origin=ORIGIN) as held:
        greeted_sync(held)
        stack.redis.stop()
        try:
            with httpx.Client(timeout=30) as client:
                created = [new_item(stack, category)(client) for _ in range(20)]
            assert {r.status_code for r in created} == {201}
            time.sleep(2.5)
            assert metric("outbox_frames") >= 20
            assert metric("outbox_oldest_frame_age_seconds") >= 2
        finally:
            stack.redis.start()
        wait_for(lambda: readyz() == 200, 20, "/readyz did not recover once Redis was back")
        wait_for(lambda: metric("outbox_frames") == 0, 20, "the outbox did not drain")
        assert metric("outbox_oldest_frame_age_seconds") == 0
        uuids = [r.json()["uuid"] for r in created]
        frames = collect(held, "item.created", len(uuids), timeout=20)
    assert [f["data"]["uuid"] for f in frames] == uuids


# --- a client that stops reading -------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def daphne_metric(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_a_client_that_stops_reading_is_closed_with_4408_and_daphne_holds_little_for_it(stack):
    """4,000 frames of 20 KB on the catalog stream: a socket that never reads is closed once it
    has left DJANGO_WS_MAX_BUFFER (1 MiB) unread, instead of daphne keeping 80 MB for it."""
    port = 8080
    pid = pid_file(f"daphne-{port}")
    stalled = raw_socket_that_never_reads(port, "/catalog/ws/")
    closed_before = daphne_metric(port, "ws_slow_closed_total")
    before = rss_kib(pid)
    stack.publish("catalog", 4000, filler=20_000)
    wait_for(lambda: daphne_metric(port, "ws_slow_closed_total") > closed_before, 30,
             "the stalled socket was not closed")  # fmt: skip
    sent = -1.0
    while (now := daphne_metric(port, "ws_frames_sent_total")) != sent:  # daphne is done
        sent = now
        time.sleep(1)
    grown = rss_kib(pid) - before
    assert grown < 40 * 1024, f"daphne grew by {grown} KiB"  # 97 MB before the sink's limit
    # The close frame (4408) comes after what the socket had not read, once it reads again.
    stalled.settimeout(10)
    tail = b""
    while not tail.endswith(b"\x88\x02\x11\x38"):  # FIN close, 2 bytes: 4408
        chunk = stalled.recv(1 << 20)
        assert chunk, "the connection ended without its close frame"
        tail = (tail + chunk)[-16:]
    stalled.close()


def test_a_reader_too_slow_for_a_burst_is_cut_off_and_resumes_every_frame(stack):
    """A client that reads, but slower than a burst: closed with 4408 past its buffer, it
    reconnects with `since` and gets the rest from the history, as its socket drains, once."""
    topic = f"burst-{uuid.uuid4().hex[:8]}"
    url = f"ws://127.0.0.1:8080/identity/ws/check/{topic}/?token={stack.token}"
    seen: list[int] = []
    # Straight to daphne, with a receive buffer of 128 KiB (set before connecting, and above
    # loopback's 64 KiB segments, or the window never opens): loopback's autotuned buffers (and
    # nginx's) would otherwise take the whole burst from daphne, leaving nothing unread there.
    tight = socket.socket()
    tight.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    tight.connect(("127.0.0.1", 8080))
    with connect(url, origin=ORIGIN, max_size=None, sock=tight) as slow:
        hello = greeted_sync(slow)
        position = f"{hello['epoch']}:{hello['seq']}"
        stack.publish(topic, 400, filler=20_000)  # 8 MB at once, far over what is buffered
        code = None
        try:
            while True:
                frame = json.loads(slow.recv(timeout=30))
                seen.append(frame["message"]["n"])
                position = f"{frame['epoch']}:{frame['seq']}"
                time.sleep(0.01)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        assert code == 4408
    assert 0 < len(seen) < 400
    with connect(f"{url}&since={position}", origin=ORIGIN, max_size=None) as again:
        assert greeted_sync(again)["recovered"] is True
        while len(seen) < 400:
            seen.append(json.loads(again.recv(timeout=30))["message"]["n"])
            time.sleep(0.002)  # slower than daphne, and yet never past the buffer: paced
    assert seen == list(range(400))
