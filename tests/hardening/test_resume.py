"""
Positions and resume through nginx against the split stack, proven by faulting the real thing:
a socket away during 500 writes, Redis killing every subscription mid-stream, Redis restarted
empty, positions older than the history, REST positions, and rolling daphne restarts under
writes. A client may lose a connection, never a frame without being told.
"""

import asyncio
import contextlib
import json
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
import websockets

from tests.stack import NGINX, Stack, daphne_started, new_category

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"
STREAM = f"{WS}/catalog/ws/"


@pytest.fixture(scope="module")
def category(stack) -> str:
    return new_category(stack, "resume")


def create_items(stack: Stack, category: str, count: int, client: httpx.Client) -> list[str]:
    uuids = []
    for _ in range(count):
        sku = f"RES-{uuid.uuid4().hex[:12]}"
        response = client.post(f"{NGINX}/catalog/items/", headers=stack.auth,
                               json={"sku": sku, "name": "resume", "price": "1.00", "stock": 1,
                                     "category": category})  # fmt: skip
        assert response.status_code == 201, response.text
        uuids.append(response.json()["uuid"])
    return uuids


def created(frames: list[dict]) -> list[str]:
    return [f["data"]["uuid"] for f in frames if f["type"] == "item.created"]


async def recv(socket: websockets.ClientConnection, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


@dataclass
class Client:
    """A client as the contract asks them to be: it remembers the last position it saw and,
    whenever its socket closes, reconnects with `?since=` that position."""

    url: str
    position: str | None = None
    frames: list[dict] = field(default_factory=list)
    hellos: list[dict] = field(default_factory=list)
    reconnections: int = 0

    def take(self, frame: dict) -> None:
        if frame["type"] == "hello":
            self.hellos.append(frame)
        else:
            self.frames.append(frame)
        self.position = f"{frame['epoch']}:{frame['seq']}"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            url = self.url + (f"?since={self.position}" if self.position else "")
            try:
                async with websockets.connect(url, origin=ORIGIN, open_timeout=30) as socket:
                    while not stop.is_set():
                        try:
                            self.take(await recv(socket, timeout=0.5))
                        except TimeoutError:
                            continue
            except (websockets.ConnectionClosed, OSError, websockets.InvalidStatus):
                self.reconnections += 1
                await asyncio.sleep(0.2)

    def assert_unbroken(self) -> None:
        """Consecutive seqs within each epoch; a new epoch only after a hello saying so."""
        previous = None
        for frame in self.frames:
            if previous is not None and frame["epoch"] == previous["epoch"]:
                assert frame["seq"] == previous["seq"] + 1, (previous, frame)
            elif previous is not None:
                told = [h for h in self.hellos if h["epoch"] == frame["epoch"]]
                assert told, (previous, frame)
                assert told[0]["recovered"] is False, (previous, frame)
            previous = frame


def test_a_socket_away_during_500_writes_gets_them_all_on_resume(stack, category):
    async def scenario() -> tuple[dict, list[dict], list[str]]:
        async with websockets.connect(STREAM, origin=ORIGIN) as socket:
            hello = await recv(socket)
        with httpx.Client(timeout=30) as client:
            written = await asyncio.to_thread(create_items, stack, category, 450, client)
            for n in range(50):  # bulk writes too: one frame each
                rows = [{"uuid": u, "stock": n} for u in written[n * 9 : n * 9 + 9]]
                response = await asyncio.to_thread(
                    client.patch, f"{NGINX}/catalog/items/", headers=stack.auth, json=rows
                )
                assert response.status_code == 200, response.text
        since = f"{hello['epoch']}:{hello['seq']}"
        async with websockets.connect(f"{STREAM}?since={since}", origin=ORIGIN) as socket:
            resumed = await recv(socket)
            frames = [await recv(socket) for _ in range(500)]
        return resumed, frames, written

    resumed, frames, written = asyncio.run(scenario())
    assert resumed["recovered"] is True
    assert [f["seq"] for f in frames] == list(range(resumed["seq"] + 1, resumed["seq"] + 501))
    # Each write exactly once. (Four uWSGI processes publish on their own: frames follow the
    # order they were published in, which need not be the order the requests returned in.)
    assert Counter(created(frames)) == Counter(written)
    assert [f["type"] for f in frames].count("item.bulk_updated") == 50


def kill_subscriptions(stack: Stack) -> None:
    subprocess.run(["redis-cli", "-p", str(stack.redis.port), "CLIENT", "KILL", "TYPE", "pubsub"],
                   check=True, capture_output=True, timeout=10)  # fmt: skip


def test_killing_every_subscription_mid_stream_loses_nothing_on_20_sockets(stack, category):
    written: list[str] = []

    def writer(stop: threading.Event) -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                written.extend(create_items(stack, category, 1, client))

    async def scenario() -> list[list[dict]]:
        sockets = [await websockets.connect(STREAM, origin=ORIGIN) for _ in range(20)]
        received: list[list[dict]] = [[] for _ in sockets]
        for socket in sockets:
            await recv(socket)  # hello

        async def read(socket: websockets.ClientConnection, frames: list[dict]) -> None:
            with contextlib.suppress(TimeoutError):
                while True:
                    frames.append(await recv(socket, timeout=5))

        readers = [asyncio.create_task(read(s, f)) for s, f in zip(sockets, received, strict=True)]
        stop = threading.Event()
        thread = threading.Thread(target=writer, args=(stop,))
        thread.start()
        try:
            for _ in range(3):
                await asyncio.sleep(1)
                await asyncio.to_thread(kill_subscriptions, stack)
            await asyncio.sleep(1)
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)
        await asyncio.gather(*readers)  # each ends once its socket is quiet for 5 s
        for socket in sockets:
            await socket.close()
        return received

    received = asyncio.run(scenario())
    assert len(written) > 20
    for frames in received:
        assert all(f["type"] != "hello" for f in frames), "a killed subscription lost frames"
        seqs = [f["seq"] for f in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert Counter(created(frames)) == Counter(written)


def test_a_redis_restart_is_announced_before_the_new_epochs_first_frame(stack, category):
    async def scenario() -> tuple[dict, list[dict]]:
        async with websockets.connect(STREAM, origin=ORIGIN) as socket:
            hello = await recv(socket)
            await asyncio.to_thread(stack.redis.stop)
            await asyncio.to_thread(stack.redis.start)
            await asyncio.sleep(1)
            with httpx.Client(timeout=30) as client:
                (created,) = await asyncio.to_thread(create_items, stack, category, 1, client)
            frames = []
            while not any(f.get("data", {}).get("uuid") == created for f in frames):
                frames.append(await recv(socket))
            return hello, frames

    hello, frames = asyncio.run(scenario())
    announced = frames[0]
    assert announced["type"] == "hello"
    assert announced["recovered"] is False
    assert announced["epoch"] != hello["epoch"]
    assert frames[-1]["epoch"] == announced["epoch"]
    assert frames[-1]["seq"] > announced["seq"]


@pytest.mark.parametrize("since", ["{epoch}:1", "another-epoch:5"])
def test_a_position_older_than_the_history_or_of_another_epoch_is_not_recovered(stack, since):
    topic = f"old-{uuid.uuid4().hex[:8]}"
    stack.publish(topic, 1100)  # DJANGO_WS_HISTORY_SIZE keeps 1000

    async def scenario() -> dict:
        url = f"{WS}/identity/ws/check/{topic}/?token={stack.token}"
        async with websockets.connect(url, origin=ORIGIN) as socket:
            epoch = (await recv(socket))["epoch"]
        async with websockets.connect(
            f"{url}&since={since.format(epoch=epoch)}", origin=ORIGIN
        ) as socket:
            return await recv(socket)

    hello = asyncio.run(scenario())
    assert hello["recovered"] is False
    assert hello["seq"] == 1100


def test_the_position_of_a_get_closes_the_gap_to_a_later_connect(stack, category):
    with httpx.Client(timeout=30) as client:
        (item,) = create_items(stack, category, 1, client)
        listed = client.get(f"{NGINX}/catalog/items/?category={category}")
        position = listed.headers["X-Stream-Position"]
        changed = client.patch(f"{NGINX}/catalog/items/{item}/", headers=stack.auth,
                               json={"stock": 42})  # fmt: skip
        assert changed.status_code == 200

    async def scenario() -> tuple[dict, list[dict]]:
        async with websockets.connect(f"{STREAM}?since={position}", origin=ORIGIN) as socket:
            hello, frames = await recv(socket), [await recv(socket)]
            if frames[0]["type"] == "item.created":
                frames.append(await recv(socket))
            return hello, frames

    hello, frames = asyncio.run(scenario())
    assert hello["recovered"] is True
    # The item's own creation may come first: committed before the GET read the list, its
    # frame can still be numbered after the position the GET read (the relay publishes after
    # the POST's response). Never missed, at worst told again.
    *before, frame = frames
    assert [(f["type"], f["data"]["uuid"]) for f in before] in ([], [("item.created", item)])
    assert (frame["type"], frame["data"]["uuid"], frame["data"]["stock"]) == (
        "item.updated", item, 42,
    )  # fmt: skip


@pytest.mark.parametrize("settled", [True, False], ids=["settled", "just-accepted"])
def test_rolling_daphne_restarts_lose_nothing_for_a_client_that_resumes(stack, category, settled):
    written: list[str] = []
    clients = [Client(STREAM) for _ in range(10)]

    def writer(stop: threading.Event) -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                written.extend(create_items(stack, category, 1, client))

    async def scenario() -> None:
        stop = asyncio.Event()
        running = [asyncio.create_task(client.run(stop)) for client in clients]
        if settled:  # let the daphne processes run a while first
            await asyncio.sleep(max(2.0, daphne_started() + 3 - time.time()))
        else:
            await asyncio.sleep(0.3)
        writes = threading.Event()
        thread = threading.Thread(target=writer, args=(writes,))
        thread.start()
        try:
            await asyncio.to_thread(stack.script, "restart-daphne")
            await asyncio.sleep(1)
        finally:
            writes.set()
            await asyncio.to_thread(thread.join)
        await asyncio.sleep(3)  # the last frames arrive
        stop.set()
        await asyncio.gather(*running)

    asyncio.run(scenario())
    assert len(written) > 10
    for client in clients:
        assert client.reconnections >= 1
        client.assert_unbroken()
        assert all(h["recovered"] is not False for h in client.hellos), client.hellos
        summary = (client.hellos, client.reconnections, Counter(f["type"] for f in client.frames))
        assert Counter(created(client.frames)) == Counter(written), summary
