"""
Committed means announced, on the running stack, with the real processes killed: a write that
committed reaches the sockets once, whatever process dies after its commit and whatever Redis
was doing meanwhile (the outbox, myproject/realtime/outbox.py).
"""

import json
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager

import httpx
import MySQLdb
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.hardening.test_faults import readyz
from tests.live import children
from tests.stack import NGINX, ROOT, STACK_DB, new_category, new_item, pid_file, wait_for
from tests.ws import greeted_sync

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"


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
