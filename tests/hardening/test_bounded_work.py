"""
No client can make daphne do unbounded work, against the running stack: what anonymous sockets
can ask of one daphne process (live queries tested against every written row, replays of a long
history) is bounded, yields to the other sockets, and another socket's round trip on the same
process stays short meanwhile.
"""

import asyncio
import json
import time
import uuid

import httpx
import pytest
import websockets

from tests.stack import NGINX, Stack, new_category

pytestmark = pytest.mark.stack

DAPHNE = "ws://127.0.0.1:8080"  # one process: the bystander shares it with the load
ORIGIN = "http://localhost"


async def open_from(address: str, path: str = "/catalog/ws/") -> websockets.ClientConnection:
    socket = await websockets.connect(
        f"{DAPHNE}{path}", origin=ORIGIN, max_size=None, local_addr=(address, 0)
    )
    assert json.loads(await socket.recv())["type"] == "hello"
    return socket


async def subscribe(socket: websockets.ClientConnection, id_: str, query: str, **extra) -> dict:
    await socket.send(json.dumps({"type": "subscribe", "id": id_, "resource": "item",
                                  "filter": query, **extra}))  # fmt: skip
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
        if frame.get("id") == id_ and frame["type"] in ("subscribed", "error"):
            return frame


class Bystander:
    """A socket of its own on the same daphne, timing round trips (a frame the server answers
    with an error at once) every 20 ms."""

    def __init__(self) -> None:
        self.round_trips: list[float] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        socket = await open_from("127.0.0.1")
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                await socket.send('{"type": "ping"}')
                while json.loads(await socket.recv()).get("code") != "read_only":
                    pass  # the catalog's frames: not the answer
                self.round_trips.append(time.monotonic() - started)
                await asyncio.sleep(0.02)
        finally:
            await socket.close()


def bulk_items(stack: Stack, category: str, count: int, name: str) -> None:
    rows = [{"sku": f"BW-{uuid.uuid4().hex[:12]}", "name": name, "price": "1.00", "stock": 1,
             "category": category} for _ in range(count)]  # fmt: skip
    response = httpx.post(f"{NGINX}/catalog/items/", json=rows, headers=stack.auth, timeout=60)
    assert response.status_code == 201, response.text[:300]


def test_200_search_only_live_queries_keep_a_bulk_write_from_holding_up_other_sockets(stack):
    """Each is tested against every row of every write: 200 of them (from five addresses, 40
    each) and a 100-row bulk write once held daphne for 1.46 s."""
    category = new_category(stack, "bounded")
    tag = uuid.uuid4().hex[:8]

    async def scenario() -> tuple[list[float], int]:
        sockets = []
        for n in range(10):
            socket = await open_from(f"127.0.0.{2 + n // 2}")
            for i in range(20):
                answer = await subscribe(socket, f"q{i}", f"search=bounded {tag} nothing-{n}-{i}")
                assert answer["type"] == "subscribed", answer
                await asyncio.sleep(0.1)  # within DJANGO_WS_SUBSCRIBE_RATE
            sockets.append(socket)
        witness = await open_from("127.0.0.7")
        assert (await subscribe(witness, "all", f"search=bounded {tag}"))["type"] == "subscribed"
        bystander = Bystander()
        running = asyncio.ensure_future(bystander.run())
        await asyncio.sleep(0.5)
        await asyncio.to_thread(bulk_items, stack, category, 100, f"bounded {tag}")
        created = 0
        while created < 100:  # the write's rows reached the one query that matches them
            frame = json.loads(await asyncio.wait_for(witness.recv(), 30))
            created += frame.get("subscription") == "all"
        await asyncio.sleep(0.5)
        bystander.stop.set()
        await running
        for socket in (*sockets, witness):
            await socket.close()
        return bystander.round_trips, created

    round_trips, created = asyncio.run(scenario())
    assert created == 100
    assert_answered(round_trips)


def assert_answered(round_trips: list[float]) -> None:
    """The bystander was answered throughout: nearly always within a few turns of the loop,
    and its waits past 50 ms add up to under a second. The unpaced work held the loop 0.4-0.8 s
    per replay (4-8 s over ten) and 1.5 s per bulk write. On this 2-core machine, with the
    whole stack and the suite on it, a pause or two happen now and then (seen at 0.1-0.35 s,
    once 0.54 s, in fresh-clone runs; their cause is not found): noise this bound allows."""
    assert len(round_trips) > 20
    ordered = sorted(round_trips)
    assert ordered[int(len(ordered) * 0.95)] < 0.05, ordered[-5:]
    assert sum(rtt for rtt in ordered if rtt > 0.05) < 1.0, ordered[-5:]


def test_ten_replays_of_a_long_history_keep_other_sockets_answered(stack):
    """Subscriptions with a many-term search and a `since` before three 1,000-row bulk writes:
    each replay tests every row of the history, as the socket drains and yielding as it goes."""
    category = new_category(stack, "replays")
    tag = uuid.uuid4().hex[:8]
    terms = " ".join(["replay", tag, "ay", "pl", "re", tag[:4], tag[4:], "r", "e"])

    async def scenario() -> list[float]:
        probe = await open_from("127.0.0.1")
        since = await subscribe(probe, "p", f"category={category}")
        position = f"{since['epoch']}:{since['seq']}"
        await probe.close()
        for _ in range(3):
            await asyncio.to_thread(bulk_items, stack, category, 1000, f"replay {tag}")
        bystander = Bystander()
        running = asyncio.ensure_future(bystander.run())
        await asyncio.sleep(0.3)
        sockets = [await open_from(f"127.0.0.{2 + n // 5}") for n in range(10)]
        answers = await asyncio.gather(*(
            subscribe(s, "r", f"search={terms} nowhere", since=position) for s in sockets
        ))  # fmt: skip
        assert all(a["type"] == "subscribed" and a["recovered"] for a in answers), answers
        await asyncio.sleep(2)  # the replays run
        bystander.stop.set()
        await running
        for socket in sockets:
            await socket.close()
        return bystander.round_trips

    round_trips = asyncio.run(scenario())
    assert_answered(round_trips)
