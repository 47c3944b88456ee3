"""
WebSocket benches against daphne: check frames, what a delivered frame costs (against a bare
`websockets` server and the baseline commit; signals against numbered frames), fan-out,
resume, live queries and the outbox's drain after a Redis outage.
"""

import asyncio
import gc
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench import wsclient
from bench.http import dataset
from bench.stack import Bench, baseline_tree, cpu_ns, log, wait_until
from tests.live import BIN, ROOT, free_port, running
from tests.stack import NGINX, pid_file

Rows = list[dict[str, Any]]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)


def publish(topic: str, text: str, count: int) -> None:
    """`count` copies of a frame to `topic`, in batches as the outbox's relay sends them."""
    from myproject.realtime.broker import Outgoing, broker

    for start in range(0, count, 200):
        broker().publish([Outgoing(topic, text)] * min(200, count - start))


def message(filler: int, n: int = 0) -> str:
    from myproject.realtime.publish import message as frame

    return frame({"n": n, "x": "x" * filler}, None)


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.002)


class Counter:
    """Text frames of every socket: how many, (arrival, socket, payload) if kept."""

    def __init__(self, keep: bool = False) -> None:
        self.count, self.keep, self.frames = 0, keep, []
        self.last = 0.0

    def __call__(self, socket: wsclient.Socket, payload: bytes) -> None:
        if payload.startswith(b'{"type": "hello"'):
            return
        self.count += 1
        self.last = time.perf_counter()
        if self.keep:
            self.frames.append((self.last, id(socket), payload))


# --- check frames -----------------------------------------------------------------------------


def checks(bench: Bench, quick: bool) -> Rows:
    """`check` frames answered per second (an item sku: a uniqueness query each), one daphne
    against two (8080 and 8081 straight), 16 sockets x 4 frames in flight."""
    path = f"/identity/ws/check/bench/?token={bench.stack.token}"
    ids = itertools.count()

    def send(socket: wsclient.Socket) -> None:
        n = next(ids)
        socket.send_text(b'{"type":"check","id":%d,"resource":"item","field":"sku","value":'
                         b'"CHK-%d"}' % (n, n))  # fmt: skip

    async def round_(ports: list[int], seconds: float) -> dict[str, Any]:
        answered = Counter()

        def on_text(socket: wsclient.Socket, payload: bytes) -> None:
            if payload.startswith(b'{"type": "check.result"'):
                answered(socket, payload)
                send(socket)

        conns = []
        for port in ports:
            conns += await wsclient.connect(port, path, count=16 // len(ports), on_text=on_text)
        for socket in conns * 4:
            send(socket)
        await asyncio.sleep(1)
        with bench.meter() as meter:
            before, started = answered.count, time.perf_counter()
            await asyncio.sleep(seconds)
            rate = (answered.count - before) / (time.perf_counter() - started)
        await wsclient.close_all(conns)
        return {"checks_per_s": round(rate, 1), **meter.cores}

    rows = []
    for r in range(1 if quick else 3):
        for name, ports in (("one daphne", [8080]), ("two daphne", [8080, 8081])):
            rows.append(
                {"round": r, "variant": name, **asyncio.run(round_(ports, 3 if quick else 8))}
            )
            log(f"  {rows[-1]}")
    return rows


# --- CPU per delivered frame ------------------------------------------------------------------


async def cpu_per_frame(pid: int, port: int, path: str, sockets: int, frames: int,
                        start: Callable[[], Awaitable[None]]) -> dict[str, Any]:  # fmt: skip
    """`sockets` listeners; `start()` has the server send them `frames` frames each: the CPU of
    process `pid` (every thread) from the start until the last frame is in."""
    counter = Counter()
    conns = await wsclient.connect(port, path, count=sockets, on_text=counter)
    await asyncio.sleep(0.5)
    gc.collect()
    gc.disable()  # a collection here would stall the loop and be booked as the server's time
    try:
        counter.count, before = 0, cpu_ns(pid)
        await start()
        await until(lambda: counter.count >= sockets * frames, 60)
        used = cpu_ns(pid) - before
    finally:
        gc.enable()
    await wsclient.close_all(conns)
    return {"delivered": counter.count, "expected": sockets * frames,
            "us_per_frame": round(used / 1000 / max(counter.count, 1), 2)}  # fmt: skip


PUBLISH = """
from myproject.realtime import broker as b
from myproject.realtime.publish import message
text = message({{"n": 0, "x": "x" * 300}}, None)
frame = b.Outgoing({topic!r}, text) if hasattr(b, "Outgoing") else ({topic!r}, text)
for _ in range(0, {count}, 200):
    b.broker().publish([frame] * 200)
"""


def cost(bench: Bench, quick: bool) -> Rows:
    """CPU per delivered frame: a daphne of this commit against a bare `websockets` server
    (bench/bare_ws.py) and against a daphne of the baseline commit, the same ~400-byte frame
    to every socket of a group, no compression anywhere."""
    sockets, frames = (100, 200) if quick else (200, 400)
    path = f"/identity/ws/check/{{}}/?token={bench.stack.token}"
    rows = []

    def daphne_round(root: Any, name: str) -> dict[str, Any]:
        topic = f"cost-{uuid.uuid4().hex[:8]}"
        code = PUBLISH.format(topic=topic, count=frames)

        async def start() -> None:
            await asyncio.to_thread(bench.manage, "shell", "-c", code, cwd=root)

        with bench.server("daphne", root) as (proc, port):
            asyncio.run(cpu_per_frame(proc.pid, port, path.format(topic), 20, 50, start))
            return asyncio.run(cpu_per_frame(proc.pid, port, path.format(topic), sockets, frames,
                                             start))  # fmt: skip

    def bare_round() -> dict[str, Any]:
        port = free_port()
        command = [str(BIN / "python"), "-m", "bench.bare_ws", str(port)]
        with running(command, port, bench.env) as proc:

            async def measure() -> dict[str, Any]:
                (control,) = await wsclient.connect(port, "/control", count=1)

                async def start() -> None:
                    control.send_text(json.dumps({"count": frames, "text": message(300)}).encode())

                result = await cpu_per_frame(proc.pid, port, "/", sockets, frames, start)
                await wsclient.close_all([control])
                return result

            return asyncio.run(measure())

    variants: dict[str, Callable[[], dict[str, Any]]] = {
        "daphne": lambda: daphne_round(ROOT, "daphne"),
        "bare websockets": bare_round,
    }
    if bench.baseline:
        tree = baseline_tree(bench.baseline)
        variants[f"daphne {bench.baseline}"] = lambda: daphne_round(tree, "baseline")
    for r in range(1 if quick else 3):
        for name, measure in variants.items():
            rows.append({"round": r, "variant": name, **measure()})
            log(f"  {rows[-1]}")
    return rows


def signals(bench: Bench, quick: bool) -> Rows:
    """CPU per delivered frame of a signal (the channel layer, not numbered) against a numbered
    message frame: the same group, sockets and payload, daphne :8080 straight."""
    from channels.layers import get_channel_layer

    sockets, frames = (100, 100) if quick else (200, 300)
    pid = pid_file("daphne-8080")
    payload = {"n": 0, "x": "x" * 300}
    layer = get_channel_layer()

    async def send_signals(group: str) -> None:
        for _ in range(frames):
            await layer.group_send(group, {"type": "signal", "event": "bench", "payload": payload,
                                           "sender": None, "origin": ""})  # fmt: skip

    async def send_numbered(group: str) -> None:
        from myproject.realtime.publish import message as frame

        await asyncio.to_thread(publish, group, frame(payload, None), frames)

    rows = []
    for r in range(1 if quick else 3):
        for name, send in (("signal", send_signals), ("numbered", send_numbered)):
            group = f"signals-{uuid.uuid4().hex[:8]}"
            path = f"/identity/ws/check/{group}/?token={bench.stack.token}"

            async def start(send: Any = send, group: str = group) -> None:
                await send(group)

            result = asyncio.run(cpu_per_frame(pid, 8080, path, sockets, frames, start))
            rows.append({"round": r, "variant": name, **result})
            log(f"  {rows[-1]}")
    return rows


# --- fan-out and resume -----------------------------------------------------------------------


def fanout(bench: Bench, quick: bool) -> Rows:
    """One write (an item POST through nginx) to N sockets on /catalog/ws/ through nginx, one
    write at a time: latency from the POST to each socket's frame; every frame once. The first
    write after the sockets connect is timed apart (`first_ms`, until every socket has it): it
    took longer than the round's p50 in 11 rounds of 14 (a worker's first POST: up to 120 ms)."""
    writes = 5 if quick else 20

    async def round_(sockets: int, tag: str) -> dict[str, Any]:
        inbox = Counter(keep=True)
        conns = await wsclient.connect(8088, "/catalog/ws/", count=sockets, on_text=inbox)
        await asyncio.sleep(0.5)
        sent: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=NGINX, headers=bench.auth, timeout=30) as client:
            for w in range(-1, writes):  # -1: the first write to the fresh sockets, apart
                sku = f"FAN-{tag}-{w}"
                started = time.perf_counter()
                if w >= 0:
                    sent[sku] = started
                response = await client.post("/catalog/items/", json=bench.item(sku))
                assert response.status_code == 201, response.text[:300]
                await until(lambda w=w: inbox.count >= sockets * (w + 2), 5)
                if w < 0:
                    first_ms = (time.perf_counter() - started) * 1000
        await wsclient.close_all(conns)
        seen, latencies, duplicates = set(), [], 0
        for stamp, socket, payload in inbox.frames:
            sku = json.loads(payload).get("data", {}).get("sku")
            if sku in sent:
                duplicates += (socket, sku) in seen
                seen.add((socket, sku))
                latencies.append((stamp - sent[sku]) * 1000)
        return {
            "sockets": sockets,
            "first_ms": round(first_ms, 1),
            "p50_ms": pct(latencies, 50),
            "p99_ms": pct(latencies, 99),
            "delivered": round(len(seen) / (sockets * writes), 4),
            "duplicates": duplicates,
        }

    rows = []
    for r in range(1 if quick else 2):
        for n in [200] if quick else [100, 500, 1000]:
            rows.append({"round": r, "variant": f"N={n}", **asyncio.run(round_(n, f"{r}-{n}"))})
            log(f"  {rows[-1]}")
    return rows


def resume(bench: Bench, quick: bool) -> Rows:
    """Sockets away during 1,000 frames come back through nginx with `?since=`: alone and as a
    crowd at once (a daphne restart's sockets); time to the last missed frame, every one in
    order."""
    missed = 1000

    async def round_(crowd: int) -> dict[str, Any]:
        (socket,) = await wsclient.connect(8088, "/catalog/ws/", count=1)
        await until(lambda: bool(socket.frames), 10)
        hello = json.loads(socket.frames[0][1])
        await wsclient.close_all([socket])
        await asyncio.to_thread(publish, "catalog", message(200), missed)
        got: dict[int, list[bytes]] = {}
        done: dict[int, float] = {}
        tail = b'"seq": %d}' % (hello["seq"] + missed)

        def on_text(sock: wsclient.Socket, text: bytes) -> None:
            got.setdefault(id(sock), []).append(text)
            if text.endswith(tail):
                done[id(sock)] = time.perf_counter()

        started = time.perf_counter()
        since = f"/catalog/ws/?since={hello['epoch']}:{hello['seq']}"
        conns = await wsclient.connect(8088, since, count=crowd, on_text=on_text)
        await until(lambda: len(done) == crowd, 60)
        await wsclient.close_all(conns)
        want = list(range(hello["seq"] + 1, hello["seq"] + missed + 1))
        in_order = sum([json.loads(t)["seq"] for t in texts[1:]] == want for texts in got.values())
        return {"crowd": crowd, "last_ms": round((max(done.values(), default=0) - started) * 1000),
                "complete_in_order": in_order}  # fmt: skip

    rows = []
    for r in range(1 if quick else 3):
        for crowd in (1, 50 if quick else 200):
            rows.append({"round": r, "variant": f"{crowd} socket(s)", **asyncio.run(round_(crowd))})
            log(f"  {rows[-1]}")
    return rows


# --- live queries -----------------------------------------------------------------------------


def live(bench: Bench, quick: bool) -> Rows:
    """10,000 live-query subscriptions (`category=<c>&price_max=<p>`, 100 categories x 10
    prices, each filter held by 10 sockets) on 500 sockets over both daphne: single POSTs
    (latency to the 50 matching subscriptions each) and a bulk PATCH of 1,000 rows (time until
    every per-row frame is in). --quick: 2,000 subscriptions."""
    cats_n, prices, copies, per_socket = (20 if quick else 100), 10, 10, 20
    filters = cats_n * prices
    with httpx.Client(base_url=NGINX, headers=bench.auth, timeout=120) as client:
        made = client.post("/catalog/categories/", json=[
            {"name": f"Live {i}", "slug": f"live-{uuid.uuid4().hex[:8]}"} for i in range(cats_n)
        ])  # fmt: skip
        cats = [row["uuid"] for row in made.raise_for_status().json()]
        made = client.post("/catalog/items/", json=[
            bench.item(f"LQB-{uuid.uuid4().hex[:8]}-{c}-{k}", category=cats[c],
                       price=f"{5 + 10 * k:.2f}") for c in range(cats_n) for k in range(prices)
        ])  # fmt: skip
        items = made.raise_for_status().json()

    def matching(price: float) -> int:
        return sum(price <= 10 * (k + 1) for k in range(prices)) * copies

    async def run() -> Rows:
        inbox = Counter(keep=True)
        subscribed = Counter()

        def on_text(socket: wsclient.Socket, payload: bytes) -> None:
            if payload.startswith(b'{"type": "subscribed"'):
                subscribed(socket, payload)
            elif b'"subscription"' in payload:
                inbox(socket, payload)

        count = filters * copies // per_socket
        conns = []
        for port in (8080, 8081):
            conns += await wsclient.connect(port, "/catalog/ws/", count=count // 2, on_text=on_text)
        for k in range(filters * copies):
            f = k % filters
            query = f"category={cats[f // prices]}&price_max={10 * (f % prices + 1)}"
            conns[k // per_socket].send_text(json.dumps({"type": "subscribe", "id": f"f{f}",
                                                         "resource": "item",
                                                         "filter": query}).encode())  # fmt: skip
        await until(lambda: subscribed.count >= filters * copies, 120)
        assert subscribed.count == filters * copies, subscribed.count
        rows = []
        async with httpx.AsyncClient(base_url=NGINX, headers=bench.auth, timeout=120) as client:
            for r in range(1 if quick else 3):
                latencies, delivered, want = [], 0, 0
                for w in range(10):
                    inbox.frames.clear()
                    want += matching(55.0)
                    started = time.perf_counter()
                    body = bench.item(f"LQ-{uuid.uuid4().hex[:8]}", category=cats[w % cats_n],
                                      price="55.00")  # fmt: skip
                    (await client.post("/catalog/items/", json=body)).raise_for_status()
                    await until(lambda: len(inbox.frames) >= matching(55.0), 5)
                    delivered += len(inbox.frames)
                    latencies += [(stamp - started) * 1000 for stamp, _, _ in inbox.frames]
                moved = [(float(i["price"]), float(i["price"]) + (45 if float(i["price"]) < 55
                          else -45)) for i in items]  # fmt: skip
                bulk_want = sum(max(matching(a), matching(b)) for a, b in moved)
                inbox.frames.clear()
                started = time.perf_counter()
                body = [
                    {"uuid": i["uuid"], "price": f"{b:.2f}"}
                    for i, (_, b) in zip(items, moved, strict=True)
                ]
                (await client.patch("/catalog/items/", json=body)).raise_for_status()
                for i, (_, b) in zip(items, moved, strict=True):
                    i["price"] = f"{b:.2f}"
                await until(lambda bw=bulk_want: len(inbox.frames) >= bw, 60)
                last = inbox.frames[-1][0] if inbox.frames else started
                rows.append({"round": r, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99),
                             "delivered": round(delivered / want, 4), "bulk_rows": len(items),
                             "bulk_frames": f"{len(inbox.frames)}/{bulk_want}",
                             "bulk_all_in_ms": round((last - started) * 1000)})  # fmt: skip
                log(f"  {rows[-1]}")
        await wsclient.close_all(conns)
        return rows

    return asyncio.run(run())


# --- the outbox's drain -----------------------------------------------------------------------


def drain(bench: Bench, quick: bool) -> Rows:
    """Redis stopped, 10,000 real item events put in the outbox (this process's relay held, as
    a WSGI request holds it), Redis started again: how fast the stack's relays empty the outbox
    and the frames reach 20 sockets on /catalog/ws/ through nginx, every one once. --quick:
    2,000 events."""
    from django.db import transaction

    from catalog.models import Item
    from catalog.serializers import ItemSerializer
    from myproject.realtime import outbox, topics
    from myproject.realtime import publish as events
    from myproject.realtime.models import Outbox

    count, sockets = (2000 if quick else 10_000), 20
    dataset(bench)
    data = ItemSerializer(Item.objects.order_by("pk")[:count], many=True).data
    frames = [(topics.CATALOG, events.event(topics.event_type("item", "created"), row,
               subject=row["uuid"], changes=("item", [(None, row)]))) for row in data]  # fmt: skip
    redis = bench.stack.redis

    def put() -> None:
        outbox.relay().hold()  # this thread's commits wait, as a WSGI request's do
        with transaction.atomic():
            outbox.add_many(frames)

    async def run() -> dict[str, Any]:
        inbox = Counter(keep=True)
        conns = await wsclient.connect(8088, "/catalog/ws/", count=sockets, on_text=inbox)
        await asyncio.sleep(0.5)
        redis.stop()
        await asyncio.to_thread(put)
        inbox.frames.clear()
        redis.start()
        started = time.perf_counter()
        emptied = 0.0
        while time.perf_counter() - started < 300:
            if not emptied and not await asyncio.to_thread(Outbox.objects.exists):
                emptied = time.perf_counter() - started
            if emptied and inbox.count >= sockets * len(frames):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        await wsclient.close_all(conns)
        items = [f for f in inbox.frames if b'"item.created"' in f[2]]
        seen = {(socket, json.loads(payload)["data"]["uuid"]) for _, socket, payload in items}
        first, last = (items[0][0], items[-1][0]) if items else (started, started)
        return {"events": len(frames), "sockets": sockets,
                "first_frame_s": round(first - started, 2), "outbox_empty_s": round(emptied, 2),
                "frames_per_s": round(len(items) / max(last - first, 1e-3)),
                "every_frame_once": len(seen) == len(items) == sockets * len(frames)}  # fmt: skip

    row = asyncio.run(run())
    wait_until(lambda: httpx.get(f"{NGINX}/readyz", timeout=5).status_code == 200, 60, "ready")
    log(f"  {row}")
    return [row]
