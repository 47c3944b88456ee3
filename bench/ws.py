"""
WebSocket benchmarks against daphne: fan-out latency, fan-out cost (CPU per delivered frame,
against a bare `websockets` server), resume, live queries, memory per idle socket, and `check`
frames per second with one daphne process and with two.
"""

import asyncio
import contextlib
import gc
import itertools
import json
import statistics
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx

from bench import wsclient
from bench.http import events_pair, post_pairs
from bench.loadgen import spread
from bench.stack import BIN, NGINX, BenchStack, cpu_ns, log, pid_file, pss_kib, self_cpu
from tests.live import free_port


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- fan-out ---------------------------------------------------------------------------------


class Inbox:
    """Every text frame of every socket, timestamped on arrival, parsed afterwards."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, int, bytes]] = []

    def __call__(self, socket: wsclient.Socket, payload: bytes) -> None:
        self.frames.append((time.perf_counter(), id(socket), payload))

    def deliveries(self, sent: dict[str, float]) -> tuple[list[float], set, int]:
        """Latencies (ms) of first deliveries, the (socket, sku) pairs seen, duplicates."""
        latencies, seen, duplicates = [], set(), 0
        for stamp, socket, payload in self.frames:
            event = json.loads(payload)
            if event.get("type") != "item.created":
                continue
            sku = event["data"]["sku"]
            if sku not in sent:
                continue
            if (socket, sku) in seen:
                duplicates += 1
                continue
            seen.add((socket, sku))
            latencies.append((stamp - sent[sku]) * 1000)
        return latencies, seen, duplicates

    def slowest(self, sent: dict[str, float]) -> list[float]:
        """Per write, in order, the latency (ms) of its last delivery: which writes make the
        tail."""
        last: dict[str, float] = {}
        for stamp, _, payload in self.frames:
            sku = json.loads(payload).get("data", {}).get("sku")
            if sku in sent:
                last[sku] = max(last.get(sku, 0.0), (stamp - sent[sku]) * 1000)
        return [round(last.get(sku, float("nan")), 1) for sku in sent]

    def summary(self, sent: dict[str, float], expected: int) -> tuple[list[float], dict]:
        """The latencies, and the delivered fraction, duplicates and p50/p99/max (ms)."""
        latencies, seen, duplicates = self.deliveries(sent)
        return latencies, {
            "delivered": round(len(seen) / expected, 5),
            "duplicates": duplicates,
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "max_ms": round(max(latencies, default=float("nan")), 2),
        }


@contextlib.contextmanager
def client_gc_paused() -> Iterator[None]:
    """No garbage collection in this (client) process while it timestamps arrivals: a full
    collection of its heap (Django is loaded here too, and every frame is kept) stalls the
    event loop for tens of milliseconds, which would be booked as delivery latency."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _item(sku: str, category: str) -> dict[str, Any]:
    return {"sku": sku, "name": "fan-out", "price": "1.00", "stock": 1, "category": category}


async def _wait_for(inbox: Inbox, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(inbox.frames) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.002)


async def fanout_round(
    stack: BenchStack, port: int, sockets: int, writes: int, tag: str
) -> dict[str, Any]:
    """`writes` single item POSTs, one at a time, each waited for on every socket (or 3 s);
    latency is from sending the POST to the event's arrival on each socket."""
    inbox = Inbox()
    opened = time.monotonic()
    conns = await wsclient.connect(port, "/catalog/ws/", count=sockets, on_text=inbox)
    connect_s = time.monotonic() - opened
    await asyncio.sleep(0.5)
    inbox.frames.clear()
    sent: dict[str, float] = {}
    write_ms = []
    cpu = self_cpu()
    with client_gc_paused(), stack.meter() as meter:
        async with httpx.AsyncClient(base_url=NGINX, headers=stack.auth, timeout=30) as client:
            for w in range(writes):
                sku = f"FAN-{tag}-{sockets}-{w}"
                body = _item(sku, stack.category)
                started = time.perf_counter()
                sent[sku] = started
                response = await client.post("/catalog/items/", json=body)
                write_ms.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 201, response.text[:300]
                await _wait_for(inbox, sockets * (w + 1), 3.0)
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
    cpu = self_cpu() - cpu
    await wsclient.close_all(conns)
    latencies, delivery = inbox.summary(sent, sockets * writes)
    return {
        "sockets": sockets,
        "writes": writes,
        "connect_s": round(connect_s, 2),
        **delivery,
        "write_p50_ms": round(statistics.median(write_ms), 2),
        "write_ms": [round(value, 1) for value in write_ms],
        "last_delivery_ms": inbox.slowest(sent),
        "latency_cdf_ms": [round(percentile(latencies, q), 2) for q in range(1, 100)],
        "cpu": meter.report(client_cpu=cpu),
    }


async def burst_round(
    stack: BenchStack, port: int, sockets: int, writes: int, tag: str, writers: int = 8
) -> dict[str, Any]:
    """`writes` POSTs as fast as `writers` concurrent clients go, to `sockets` listeners."""
    inbox = Inbox()
    conns = await wsclient.connect(port, "/catalog/ws/", count=sockets, on_text=inbox)
    await asyncio.sleep(0.5)
    inbox.frames.clear()
    sent: dict[str, float] = {}
    counter = itertools.count()
    cpu = self_cpu()
    with client_gc_paused(), stack.meter() as meter:
        started = time.perf_counter()
        async with httpx.AsyncClient(
            base_url=NGINX, headers=stack.auth, timeout=30,
            limits=httpx.Limits(max_connections=writers),
        ) as client:  # fmt: skip

            async def writer() -> None:
                while (n := next(counter)) < writes:
                    sku = f"BURST-{tag}-{n}"
                    sent[sku] = time.perf_counter()
                    response = await client.post("/catalog/items/", json=_item(sku, stack.category))
                    assert response.status_code == 201, response.text[:300]

            await asyncio.gather(*(writer() for _ in range(writers)))
        writes_s = time.perf_counter() - started
        await _wait_for(inbox, sockets * writes, 30.0)
        drained_s = time.perf_counter() - started
        await asyncio.sleep(0.5)
    cpu = self_cpu() - cpu
    await wsclient.close_all(conns)
    _, delivery = inbox.summary(sent, sockets * writes)
    return {
        "sockets": sockets,
        "writes": writes,
        "writes_per_s": round(writes / writes_s, 1),
        "drained_s": round(drained_s, 2),
        **delivery,
        "cpu": meter.report(client_cpu=cpu),
    }


def fanout(stack: BenchStack, reps: int, quick: bool) -> dict[str, Any]:
    """One write -> N sockets on /catalog/ws/ through the stack's nginx, with the stack's two
    daphne processes and with one (the second stopped: nginx's upstream skips it); variants
    alternate round by round, daphne restarted for each."""
    sizes = [100, 1000] if quick else [100, 500, 1000]
    writes = 5 if quick else 10
    burst_writes = 200 if quick else 500
    variants = {"two daphne": 2} if quick else {"two daphne": 2, "one daphne": 1}
    names = list(variants)
    runs: dict[str, dict[str, list]] = {
        name: {**{str(n): [] for n in sizes}, "burst": []} for name in names
    }
    try:
        for rep in range(reps):
            for name in names if rep % 2 == 0 else names[::-1]:
                stack.restart_apps(daphnes=variants[name])
                tag = f"{name[:3]}{rep}"
                for n in sizes:
                    run = asyncio.run(fanout_round(stack, 8088, n, writes, tag))
                    runs[name][str(n)].append(run)
                    log(f"  round {rep + 1}/{reps} {name} N={n}: p50 {run['p50_ms']} ms, "
                        f"p99 {run['p99_ms']} ms, delivered {run['delivered']:.2%}, write "
                        f"{run['write_p50_ms']} ms; per write, POST {run['write_ms']} ms, last "
                        f"delivery {run['last_delivery_ms']} ms")  # fmt: skip
                run = asyncio.run(burst_round(stack, 8088, 100, burst_writes, tag))
                runs[name]["burst"].append(run)
                log(f"  round {rep + 1}/{reps} {name} burst {burst_writes} writes x 100 "
                    f"sockets: delivered {run['delivered']:.2%}, p99 {run['p99_ms']} ms, "
                    f"drained in {run['drained_s']} s")  # fmt: skip
    finally:
        stack.restart_apps()
    summary: dict[str, Any] = {}
    for name in names:
        summary[name] = {}
        for key, value in runs[name].items():
            summary[name][key] = {
                "p50_ms": spread([run["p50_ms"] for run in value]),
                "p99_ms": spread([run["p99_ms"] for run in value]),
                "delivered": min(run["delivered"] for run in value),
                "duplicates": sum(run["duplicates"] for run in value),
            }
            if key == "burst":
                summary[name][key]["drained_s"] = spread([run["drained_s"] for run in value])
                summary[name][key]["writes_per_s"] = spread([r["writes_per_s"] for r in value])
    top = str(sizes[-1])

    def ok(name: str) -> bool:
        s = summary[name]
        every = all(s[key]["delivered"] == 1.0 and s[key]["duplicates"] == 0 for key in s)
        return every and s[top]["p99_ms"]["median"] <= 100

    line = "; ".join(
        f"{name}: p99 {summary[name][top]['p99_ms']['median']:.0f} ms at N={top}, "
        f"delivered {min(v['delivered'] for v in summary[name].values()):.2%}"
        for name in names
    )
    return {
        "name": "fanout",
        "title": f"Fan-out latency: one write -> N = {', '.join(map(str, sizes))} sockets on "
        f"/catalog/ws/ through nginx, {' vs '.join(names)}; burst of {burst_writes} writes "
        "to 100 sockets",
        "target": "100% delivered, no duplicate; p99 <= 100 ms at N = 1000 (two daphne)",
        "measured": line,
        "pass": ok("two daphne") and top == "1000",
        "pass_by_variant": {name: ok(name) for name in names},
        "summary": summary,
        "runs": runs,
    }


# --- fan-out cost: CPU per delivered frame, daphne vs a bare websockets server ------------------


class Counter:
    """Counts text frames (all sockets together); keeps the first one after `reset`."""

    def __init__(self) -> None:
        self.count = 0
        self.first: bytes | None = None
        self.last_at = 0.0

    def __call__(self, socket: wsclient.Socket, payload: bytes) -> None:
        self.count += 1
        self.last_at = time.perf_counter()
        if self.first is None:
            self.first = payload

    def reset(self) -> None:
        self.count, self.first = 0, None


async def _until(counter: Counter, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while counter.count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


def sample_event(stack: BenchStack, sku: str) -> str:
    """The payload a single item POST publishes (its real representation), built the way
    the write path builds it (myproject.services)."""
    response = httpx.post(f"{NGINX}/catalog/items/", headers=stack.auth, timeout=30,
                          json=_item(sku, stack.category))  # fmt: skip
    response.raise_for_status()
    from myproject.realtime import publish, topics

    data = response.json()
    return publish.event(topics.event_type("item", "created"), data, subject=data["uuid"],
                         changes=("item", [(None, data)]))  # fmt: skip


def publish_frames(payload: str, count: int) -> None:
    """`count` frames to the catalog topic, in batches as the outbox's relay sends them."""
    from myproject.realtime import outbox, topics
    from myproject.realtime.broker import Outgoing, broker

    for start in range(0, count, outbox.BATCH):
        size = min(outbox.BATCH, count - start)
        broker().publish([Outgoing(topics.CATALOG, payload)] * size)


async def cost_round(
    server: str, port: int, pid: int, path: str, sockets: int, frames: int, start: Any
) -> dict[str, Any]:
    """`sockets` listeners on `port`; `start()` makes the server send `frames` frames to each.
    CPU of the server process (every thread, schedstat) from just before the start until the
    last frame has arrived."""
    counter = Counter()
    conns = await wsclient.connect(port, path, count=sockets, on_text=counter)
    await asyncio.sleep(0.5)  # hellos in, handshakes done
    counter.reset()
    expected = sockets * frames
    with client_gc_paused():
        cpu, started = cpu_ns(pid), time.perf_counter()
        await start()
        await _until(counter, expected, 60.0)
        used, wall = cpu_ns(pid) - cpu, counter.last_at - started
    await asyncio.sleep(0.2)
    delivered = counter.count
    await wsclient.close_all(conns)
    return {
        "server": server,
        "delivered": delivered,
        "expected": expected,
        "cpu_ms": round(used / 1e6, 2),
        "burst_ms": round(wall * 1000, 1),
        "us_per_frame": round(used / 1000 / max(delivered, 1), 3),
        "frame_bytes": len(counter.first or b""),
        "sample": counter.first,
    }


def cost(stack: BenchStack, reps: int, quick: bool) -> dict[str, Any]:
    """issue 19: CPU-µs per delivered frame of one daphne process (port 8080, no nginx) and of a
    bare `websockets` server (bench/bare_ws.py), each sending the same ~400-byte frame 200
    times to 200 sockets, no compression on either side; alternating rounds."""
    sockets, frames = 200, 200
    port = free_port()
    bare_pid = stack.start_extra("bare-ws", [str(BIN / "python"), "-m", "bench.bare_ws",
                                             str(port)], port)  # fmt: skip
    payload = sample_event(stack, "COST-SAMPLE")
    daphne_pid = pid_file("daphne-8080")
    assert daphne_pid, "daphne :8080 is not running"
    text = b""

    async def daphne_round() -> dict[str, Any]:
        async def start() -> None:
            await asyncio.to_thread(publish_frames, payload, frames)

        return await cost_round("daphne", 8080, daphne_pid, "/catalog/ws/", sockets, frames,
                                start)  # fmt: skip

    async def bare_round() -> dict[str, Any]:
        control = (await wsclient.connect(port, "/control", count=1))[0]

        async def start() -> None:
            control.send_text(json.dumps({"count": frames, "text": text.decode()}).encode())

        try:
            return await cost_round("bare", port, bare_pid, "/", sockets, frames, start)
        finally:
            await wsclient.close_all([control])

    warm = asyncio.run(daphne_round())  # warms daphne and gives the frame both servers send
    log(f"  warm-up daphne: {warm['us_per_frame']} us/frame, {warm['frame_bytes']} bytes")
    text = warm["sample"]
    asyncio.run(bare_round())  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {"daphne": [], "bare": []}
    try:
        for rep in range(reps):
            order = ["daphne", "bare"] if rep % 2 == 0 else ["bare", "daphne"]
            for name in order:
                run = asyncio.run(daphne_round() if name == "daphne" else bare_round())
                del run["sample"]
                runs[name].append(run)
                log(f"  round {rep + 1}/{reps} {name}: {run['us_per_frame']} us/frame "
                    f"({run['cpu_ms']} ms CPU for {run['delivered']}/{run['expected']} frames,"
                    f" burst {run['burst_ms']} ms)")  # fmt: skip
    finally:
        stack.stop_extra("bare-ws")
    ratio = spread([d["us_per_frame"] / b["us_per_frame"]
                    for d, b in zip(runs["daphne"], runs["bare"], strict=True)])  # fmt: skip
    per = {name: spread([run["us_per_frame"] for run in value]) for name, value in runs.items()}
    complete = all(run["delivered"] == run["expected"] for v in runs.values() for run in v)
    return {
        "name": "cost",
        "title": f"Fan-out cost: CPU per delivered frame, one daphne (:8080 direct) vs a bare "
        f"websockets server, {frames} frames x {sockets} sockets, {len(text)}-byte frame",
        "target": "daphne <= 3x the bare server; every frame delivered",
        "measured": f"daphne {per['daphne']['median']:.2f} us/frame, bare "
        f"{per['bare']['median']:.2f}: {ratio['median']:.2f}x ({ratio['min']:.2f}-"
        f"{ratio['max']:.2f})" + ("" if complete else "; frames missing"),
        "pass": ratio["median"] <= 3 and complete,
        "ratio": ratio,
        "us_per_frame": per,
        "frame_bytes": len(text),
        "runs": runs,
    }


# --- resume -------------------------------------------------------------------------------------


async def _hello(port: int, path: str) -> tuple[dict[str, Any], wsclient.Socket]:
    (socket,) = await wsclient.connect(port, path, count=1)
    deadline = time.monotonic() + 10
    while not socket.frames and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return json.loads(socket.frames[0][1]), socket


async def resume_round(port: int, missed: int, crowd: int, payload: str) -> dict[str, Any]:
    """Sockets leave at a position, `missed` frames are published, then `crowd` sockets come
    back with `?since=` at once: time from the reconnect to the last missed frame."""
    hello, socket = await _hello(port, "/catalog/ws/")
    await wsclient.close_all([socket])
    since = f"{hello['epoch']}:{hello['seq']}"
    await asyncio.to_thread(publish_frames, payload, missed)
    await asyncio.sleep(0.5)
    last = hello["seq"] + missed
    tail = b'"seq": %d}' % last
    frames: list[tuple[int, bytes]] = []
    done_at: dict[int, float] = {}

    def on_text(sock: wsclient.Socket, text: bytes) -> None:
        frames.append((id(sock), text))  # parsed afterwards: the client stays cheap
        if text.endswith(tail):
            done_at[id(sock)] = time.perf_counter()

    with client_gc_paused():
        started = time.perf_counter()
        conns = await wsclient.connect(port, f"/catalog/ws/?since={since}", count=crowd,
                                       on_text=on_text)  # fmt: skip
        deadline = time.monotonic() + 60
        while len(done_at) < crowd and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
    await wsclient.close_all(conns)
    got: dict[int, list[int]] = {}
    recovered = []
    for sock, text in frames:
        frame = json.loads(text)
        if frame["type"] == "hello":
            recovered.append(frame["recovered"])
        else:
            got.setdefault(sock, []).append(frame["seq"])
    expected = list(range(hello["seq"] + 1, last + 1))
    complete = sum(got.get(id(c)) == expected for c in conns)
    times = sorted((done_at[id(c)] - started) * 1000 for c in conns if id(c) in done_at)
    return {
        "crowd": crowd,
        "missed": missed,
        "recovered": sum(value is True for value in recovered),
        "complete_in_order": complete,
        "first_ms": round(times[0], 1) if times else None,
        "last_ms": round(times[-1], 1) if times else None,
        "median_ms": round(statistics.median(times), 1) if times else None,
    }


def resume(stack: BenchStack, reps: int, quick: bool) -> dict[str, Any]:
    """issue 15: a socket away during 1,000 frames comes back through nginx with `?since=`;
    time from its reconnect to the last missed frame, alone and as a crowd of 200 resuming at
    once (a daphne restart's sockets). The frames are item events published to the broker in
    batches, as the outbox's relay sends them."""
    missed = 1000
    payload = sample_event(stack, "RESUME-SAMPLE")
    crowds = [1, 200]
    runs: dict[str, list[dict[str, Any]]] = {str(crowd): [] for crowd in crowds}
    asyncio.run(resume_round(8088, 10, 1, payload))  # warm-up: the hubs exist
    for rep in range(reps + (0 if quick else 2)):
        for crowd in crowds:
            run = asyncio.run(resume_round(8088, missed, crowd, payload))
            runs[str(crowd)].append(run)
            log(f"  round {rep + 1}: {crowd} socket(s) resume {missed} frames: last in "
                f"{run['last_ms']} ms (first {run['first_ms']}), {run['recovered']} recovered, "
                f"{run['complete_in_order']} complete in order")  # fmt: skip
    summary = {
        crowd: {
            "last_ms": spread([run["last_ms"] or float("inf") for run in value]),
            "all_complete": all(
                run["complete_in_order"] == run["crowd"] == run["recovered"] for run in value
            ),
        }
        for crowd, value in runs.items()
    }
    one, many = summary["1"], summary[str(crowds[-1])]
    ok = one["all_complete"] and many["all_complete"]
    return {
        "name": "resume",
        "title": f"Resume: sockets away during {missed} frames reconnect with ?since= "
        "through nginx; time to the last missed frame",
        "target": "every missed frame, in order, recovered: true (time: report)",
        "measured": f"1 socket: {one['last_ms']['median']:.0f} ms ({one['last_ms']['min']:.0f}-"
        f"{one['last_ms']['max']:.0f}); {crowds[-1]} at once: last socket "
        f"{many['last_ms']['median']:.0f} ms; "
        + ("all complete, in order" if ok else "frames missing or out of order"),
        "pass": ok,
        "summary": summary,
        "runs": runs,
    }


# --- live queries -------------------------------------------------------------------------------

LIVE_CATEGORIES = 100
LIVE_PRICES = [10 * k for k in range(1, 11)]  # price_max of the filters: 10 per category
LIVE_COPIES = 10  # sockets' subscriptions per distinct filter
LIVE_PER_SOCKET = 20  # DJANGO_WS_MAX_SUBSCRIPTIONS' default


class RowInbox:
    """Per-row frames of subscriptions, timestamped on arrival; `subscribed` replies counted."""

    def __init__(self) -> None:
        self.subscribed = 0
        self.errors: list[bytes] = []
        self.frames: list[tuple[float, int, bytes]] = []

    def __call__(self, socket: wsclient.Socket, payload: bytes) -> None:
        if payload.startswith(b'{"type": "subscribed"'):
            self.subscribed += 1
        elif b'"subscription"' in payload:
            self.frames.append((time.perf_counter(), id(socket), payload))
        elif payload.startswith(b'{"type": "error"'):
            self.errors.append(payload)


def _matches(category: int, price: float) -> list[int]:
    """The filters (category index, price_max) a row of `category` at `price` matches."""
    return [p for p in LIVE_PRICES if price <= p]


def _row_frames(rows: list[tuple[int, float, float]]) -> int:
    """Per-row frames a bulk update gives: one per subscription that sees the row before or
    after (updated, entered, left)."""
    total = 0
    for category, before, after in rows:
        seen = set(_matches(category, before)) | set(_matches(category, after))
        total += len(seen) * LIVE_COPIES
    return total


async def _live_round(
    stack: BenchStack, inbox: RowInbox, cats: list[str], items: list[dict], writes: int, tag: str
) -> dict[str, Any]:
    """`writes` single POSTs (each matching 5 of its category's 10 filters), then one bulk
    PATCH of every item (prices moved so that rows enter, leave and stay)."""
    latencies: list[float] = []
    write_ms: list[float] = []
    per_write: list[int] = []
    delivered = expected = duplicates = 0
    async with httpx.AsyncClient(base_url=NGINX, headers=stack.auth, timeout=60) as client:
        for w in range(writes):
            category = (w * 37) % LIVE_CATEGORIES
            body = {**_item(f"LQ-{tag}-{w}", cats[category]), "price": "55.00"}
            want = len(_matches(category, 55.0)) * LIVE_COPIES
            inbox.frames.clear()
            started = time.perf_counter()
            response = await client.post("/catalog/items/", json=body)
            write_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text[:300]
            deadline = time.monotonic() + 3
            while len(inbox.frames) < want and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.02)
            seen = set()
            for stamp, sock, payload in inbox.frames:
                frame = json.loads(payload)
                key = (sock, frame["subscription"], frame["data"]["uuid"])
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                latencies.append((stamp - started) * 1000)
            per_write.append(len(seen))
            delivered += len(seen)
            expected += want
        # The bulk update: every item's price moves by 45 (up, or down past 0 back to the top).
        rows, body = [], []
        for item in items:
            before = float(item["price"])
            after = before + 45 if before < 55 else before - 45
            rows.append((item["category_index"], before, after))
            body.append({"uuid": item["uuid"], "price": f"{after:.2f}"})
            item["price"] = f"{after:.2f}"
        want = _row_frames(rows)
        inbox.frames.clear()
        started = time.perf_counter()
        response = await client.patch("/catalog/items/", json=body)
        bulk_write_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text[:300]
        deadline = time.monotonic() + 60
        while len(inbox.frames) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        bulk_all_ms = (inbox.frames[-1][0] - started) * 1000 if inbox.frames else float("nan")
        await asyncio.sleep(0.3)
        bulk_got = len(inbox.frames)
    return {
        "writes": writes,
        "write_p50_ms": round(statistics.median(write_ms), 2),
        "delivered": round(delivered / expected, 5) if expected else 0,
        "duplicates": duplicates,
        "frames_per_write": per_write,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "bulk_rows": len(items),
        "bulk_frames_expected": want,
        "bulk_frames": bulk_got,
        "bulk_write_ms": round(bulk_write_ms, 1),
        "bulk_all_delivered_ms": round(bulk_all_ms, 1),
    }


def matching(sku: str, cats: list[str]) -> dict[str, Any]:
    """An item that 5 of its category's 10 filters match (50 subscriptions)."""
    return {**_item(sku, cats[zlib.crc32(sku.encode()) % LIVE_CATEGORIES]), "price": "55.00"}


def live(stack: BenchStack, reps: int, quick: bool) -> dict[str, Any]:
    """issue 16: 10,000 live-query subscriptions over 1,000 distinct filters
    (`category=<c>&price_max=<p>`: 100 categories x 10 prices, each filter held 10 times) on
    500 sockets, 250 straight to each of the stack's two daphne, 20 subscriptions a socket; the
    10 sockets holding one filter subscribe with the same id, as copies of one page would.
    Then: single POSTs (delivery latency to the 50 matching subscriptions), a bulk PATCH of
    1,000 items (time until every per-row frame is in), and the cost a write adds in uWSGI
    (POST p50 to two identical uWSGI, events on and DJANGO_REALTIME_EVENTS=off, alternating
    request by request, as the write-path bench does)."""
    filters = LIVE_CATEGORIES * len(LIVE_PRICES)
    subscriptions = filters * LIVE_COPIES
    socket_count = subscriptions // LIVE_PER_SOCKET
    with httpx.Client(base_url=NGINX, headers=stack.auth, timeout=120) as client:
        made = client.post("/catalog/categories/", json=[
            {"name": f"Live {i}", "slug": f"live-{i}"} for i in range(LIVE_CATEGORIES)
        ])  # fmt: skip
        assert made.status_code == 201, made.text[:300]
        cats = [row["uuid"] for row in made.json()]
        rows = [
            {**_item(f"LQB-{c}-{k}", cats[c]), "price": f"{5 + 10 * k:.2f}"}
            for c in range(LIVE_CATEGORIES)
            for k in range(10)
        ]
        made = client.post("/catalog/items/", json=rows)
        assert made.status_code == 201, made.text[:300]
    items = [
        {"uuid": row["uuid"], "price": row["price"], "category_index": cats.index(row["category"])}
        for row in made.json()
    ]
    writes = 10 if quick else 20
    ports = events_pair(stack)
    post_pairs(stack, ports, 20, "LQW", lambda sku: matching(sku, cats))  # warm-up
    runs: list[dict[str, Any]] = []
    cost: dict[str, list[float]] = {"on": [], "off": []}

    async def subscribed_rounds() -> None:
        inbox = RowInbox()
        conns: list[wsclient.Socket] = []
        for port in (8080, 8081):
            conns += await wsclient.connect(port, "/catalog/ws/", count=socket_count // 2,
                                            on_text=inbox)  # fmt: skip
        started = time.perf_counter()
        for k in range(subscriptions):
            f = k % filters
            query = f"category={cats[f // len(LIVE_PRICES)]}&price_max={LIVE_PRICES[f % 10]}"
            conns[k // LIVE_PER_SOCKET].send_text(json.dumps({
                "type": "subscribe", "id": f"f{f}", "resource": "item", "filter": query,
            }).encode())  # fmt: skip
        deadline = time.monotonic() + 120
        while inbox.subscribed < subscriptions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        log(f"  {inbox.subscribed} subscriptions on {len(conns)} sockets in "
            f"{time.perf_counter() - started:.1f} s, {len(inbox.errors)} errors")  # fmt: skip
        assert inbox.subscribed == subscriptions, inbox.errors[:3]
        try:
            for rep in range(reps):
                with client_gc_paused(), stack.meter() as meter:
                    run = await _live_round(stack, inbox, cats, items, writes, f"{rep}")
                run["cpu"] = meter.report()
                runs.append(run)
                log(f"  round {rep + 1}/{reps}: p99 {run['p99_ms']} ms to matching sockets, "
                    f"delivered {run['delivered']:.2%}, POST p50 {run['write_p50_ms']} ms; bulk "
                    f"{run['bulk_rows']} rows: {run['bulk_frames']}/"
                    f"{run['bulk_frames_expected']} frames, all in {run['bulk_all_delivered_ms']}"
                    f" ms (PATCH answered in {run['bulk_write_ms']} ms)")  # fmt: skip
                # The sockets stop reading meanwhile (daphne's frames wait in the kernel): this
                # process's event loop would otherwise hold the GIL that the thread timing the
                # POSTs needs, for up to Python's 5 ms switch interval per write.
                for conn in conns:
                    conn.transport.pause_reading()
                try:
                    times = await asyncio.to_thread(
                        post_pairs, stack, ports, 100, f"LQP{rep}", lambda s: matching(s, cats)
                    )
                finally:
                    for conn in conns:
                        conn.transport.resume_reading()
                await asyncio.sleep(1.0)
                for state, values in times.items():
                    cost[state].append(statistics.median(values))
                log(f"  round {rep + 1}/{reps}: POST p50 events on {cost['on'][-1]:.2f} ms, "
                    f"off {cost['off'][-1]:.2f} ms")  # fmt: skip
        finally:
            await wsclient.close_all(conns)

    try:
        asyncio.run(subscribed_rounds())
    finally:
        for state in ports:
            stack.stop_extra(f"events-{state}")
    added = spread([a - b for a, b in zip(cost["on"], cost["off"], strict=True)])
    p99 = spread([run["p99_ms"] for run in runs])
    bulk = spread([run["bulk_all_delivered_ms"] for run in runs])
    complete = all(
        run["delivered"] == 1.0
        and run["duplicates"] == 0
        and run["bulk_frames"] == run["bulk_frames_expected"]
        for run in runs
    )
    return {
        "name": "live",
        "title": f"Live queries: {subscriptions:,} subscriptions over {filters:,} filters on "
        f"{socket_count} sockets, two daphne",
        "target": "a write adds <= 2 ms p50 in uWSGI; delivery p99 <= 100 ms; every frame",
        "measured": f"write +{added['median']:.2f} ms p50 ({added['min']:.2f}-{added['max']:.2f})"
        f"; p99 {p99['median']:.0f} ms; bulk of {len(items)} rows: every frame in "
        f"{bulk['median']:.0f} ms" + ("" if complete else "; FRAMES MISSING"),
        "pass": added["median"] <= 2 and p99["median"] <= 100 and complete,
        "write_added_ms": added,
        "post_p50_ms": {state: spread(values) for state, values in cost.items()},
        "p99_ms": p99,
        "bulk_all_delivered_ms": bulk,
        "runs": runs,
    }


# --- idle sockets -----------------------------------------------------------------------------


async def _idle_cycles(levels: list[int], cycles: int) -> dict[str, Any]:
    pid = pid_file("daphne-8080")
    assert pid, "daphne is not running"
    warm = await wsclient.connect(8080, "/catalog/ws/", count=20)
    await wsclient.close_all(warm)
    await asyncio.sleep(2)
    baseline = pss_kib(pid)
    out: dict[str, Any] = {"baseline_kib": baseline, "cycles": []}
    for cycle in range(cycles):
        held: list[wsclient.Socket] = []
        points = []
        try:
            for level in levels:
                started = time.monotonic()
                held += await wsclient.connect(8080, "/catalog/ws/", count=level - len(held))
                connect_s = time.monotonic() - started
                await asyncio.sleep(2)
                still_open = sum(socket.open for socket in held)
                pss = pss_kib(pid)
                points.append({
                    "sockets": level, "open": still_open, "pss_kib": pss,
                    "kib_per_socket": round((pss - baseline) / level, 1),
                    "connect_s": round(connect_s, 2),
                })  # fmt: skip
                log(f"    cycle {cycle + 1}: {level} sockets, PSS {pss / 1024:.1f} MiB, "
                    f"{(pss - baseline) / level:.1f} KiB/socket")  # fmt: skip
        finally:
            aborted = await wsclient.close_all(held)
        await asyncio.sleep(3)
        out["cycles"].append(
            {"points": points, "after_close_kib": pss_kib(pid), "aborted_on_close": aborted}
        )
    return out


def sockets(stack: BenchStack, quick: bool) -> dict[str, Any]:
    """PSS of one daphne process holding 1k, 2k, 5k idle sockets on /catalog/ws/ (straight to
    daphne: through nginx, 5k sockets would take 10k of its 8k worker connections), over
    three connect/disconnect cycles, on a freshly started daphne."""
    levels = [500, 1000, 2000] if quick else [1000, 2000, 5000]
    stack.restart_apps()
    data = asyncio.run(_idle_cycles(levels, cycles=3))
    peaks = [cycle["points"][-1]["pss_kib"] for cycle in data["cycles"]]
    data["peak_growth_per_cycle"] = [
        round(peaks[i] / peaks[i - 1] - 1, 4) for i in range(1, len(peaks))
    ]
    afters = [cycle["after_close_kib"] for cycle in data["cycles"]]
    data["after_close_growth_per_cycle"] = [
        round(afters[i] / afters[i - 1] - 1, 4) for i in range(1, len(afters))
    ]
    # Per socket: on the fresh process (cycle 1) at every level, and at the top level of every
    # cycle (lower levels of later cycles sit on the high-water mark of the first).
    top = data["cycles"][0]["points"][-1]["sockets"]
    data["max_kib_per_socket"] = max(
        [point["kib_per_socket"] for point in data["cycles"][0]["points"]]
        + [(peak - data["baseline_kib"]) / top for peak in peaks]
    )
    data["all_open"] = all(
        point["open"] == point["sockets"] for c in data["cycles"] for point in c["points"]
    )
    ok = (
        data["max_kib_per_socket"] <= 100
        and max(data["peak_growth_per_cycle"]) < 0.05
        and data["all_open"]
    )
    return {
        "name": "sockets",
        "title": f"Idle sockets: daphne PSS per socket at {', '.join(map(str, levels))} "
        "sockets, 3 connect/disconnect cycles",
        "target": "<= 100 KiB per socket; < 5% growth per cycle",
        "measured": f"{data['max_kib_per_socket']:.0f} KiB/socket, peak growth/cycle "
        + ", ".join(f"{g:+.1%}" for g in data["peak_growth_per_cycle"]),
        "pass": ok,
        **data,
    }


# --- check rate -------------------------------------------------------------------------------


class CheckLoad:
    """Keeps `depth` check frames in flight on every socket: each answer sends the next one."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.answered = 0
        self.errors = 0
        self.sending = True
        self.ids = itertools.count()

    def send(self, socket: wsclient.Socket) -> None:
        n = next(self.ids)
        socket.send_text(
            b'{"type":"check","id":%d,"resource":"item","field":"sku","value":"CHK-%d"}' % (n, n)
        )

    def __call__(self, socket: wsclient.Socket, payload: bytes) -> None:
        if payload.startswith(b'{"type": "hello"'):
            return  # every socket's first frame (its topic's position), not an answer
        if payload.startswith(b'{"type": "check.result"'):
            self.answered += 1
        else:
            self.errors += 1
        if self.sending:
            self.send(socket)


async def check_round(
    stack: BenchStack, ports: list[int], per_port: int, duration: float
) -> dict[str, Any]:
    load = CheckLoad(depth=4)
    path = f"/identity/ws/check/bench/?token={stack.token}"
    conns: list[wsclient.Socket] = []
    for port in ports:
        conns += await wsclient.connect(port, path, count=per_port, on_text=load)
    for socket in conns:
        for _ in range(load.depth):
            load.send(socket)
    await asyncio.sleep(1.0)  # warm-up
    cpu = self_cpu()
    with stack.meter() as meter:
        count, started = load.answered, time.perf_counter()
        await asyncio.sleep(duration)
        answered, elapsed = load.answered - count, time.perf_counter() - started
    cpu = self_cpu() - cpu
    load.sending = False
    await asyncio.sleep(0.5)
    await wsclient.close_all(conns)
    return {
        "ports": ports,
        "sockets": len(conns),
        "checks_per_s": round(answered / elapsed, 1),
        "errors": load.errors,
        "cpu": meter.report(client_cpu=cpu),
    }


def checks(stack: BenchStack, reps: int, duration: float) -> dict[str, Any]:
    """`check` frames (item sku: a uniqueness query each) answered per second by one daphne
    process and by two (8080 and 8081 hit directly), 16 sockets x 4 frames in flight."""
    variants = {"one": [8080], "two": [8080, 8081]}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    asyncio.run(check_round(stack, [8080, 8081], 8, 1.0))  # warm both
    for rep in range(reps):
        for name, ports in variants.items():
            run = asyncio.run(check_round(stack, ports, 16 // len(ports), duration))
            runs[name].append(run)
            log(f"  round {rep + 1}/{reps} {name} daphne: {run['checks_per_s']:.0f} checks/s,"
                f" daphne {run['cpu']['cores'].get('daphne', 0):.2f} cores, client "
                f"{run['cpu']['cores']['client']:.2f}, mariadb "
                f"{run['cpu']['cores'].get('mariadb (shared)', 0):.2f}")  # fmt: skip
    rate = {name: [run["checks_per_s"] for run in value] for name, value in runs.items()}
    scaling = spread([b / a for a, b in zip(rate["one"], rate["two"], strict=True)])
    errors = sum(run["errors"] for value in runs.values() for run in value)
    return {
        "name": "checks",
        "title": "Check rate: check frames answered per second, one daphne vs two",
        "target": ">= 1.7x from one to two processes",
        "measured": f"{scaling['median']:.2f}x ({scaling['min']:.2f}-{scaling['max']:.2f}); "
        f"one {statistics.median(rate['one']):.0f}/s, two {statistics.median(rate['two']):.0f}/s"
        f", {errors} errors",
        "pass": scaling["median"] >= 1.7 and errors == 0,
        "scaling": scaling,
        "checks_per_s": {name: spread(values) for name, values in rate.items()},
        "runs": runs,
    }
