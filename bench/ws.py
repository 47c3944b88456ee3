"""
WebSocket benchmarks against daphne: event fan-out per channel layer, memory per idle socket,
and `check` frames per second with one daphne process and with two.
"""

import asyncio
import contextlib
import gc
import itertools
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench import wsclient
from bench.loadgen import spread
from bench.stack import NGINX, BenchStack, log, pid_file, pss_kib, self_cpu


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
    """One write -> N sockets on /catalog/ws/ through the stack's nginx, for each channel
    layer with the stack's two daphne processes, and for pub/sub with one. Variants alternate
    round by round; uWSGI and daphne are restarted with the variant's layer."""
    sizes = [100, 500] if quick else [100, 500, 1000]
    writes = 5 if quick else 10
    burst_writes = 200 if quick else 500
    variants = {"core": ("core", 2), "pubsub": ("pubsub", 2), "pubsub-1daphne": ("pubsub", 1)}
    layers = list(variants)
    start_layer = stack.layer
    runs: dict[str, dict[str, list]] = {
        layer: {**{str(n): [] for n in sizes}, "burst": []} for layer in layers
    }
    try:
        for rep in range(reps):
            for layer in layers if rep % 2 == 0 else layers[::-1]:
                backend, processes = variants[layer]
                stack.restart_apps(layer=backend, daphnes=processes)
                port = 8088
                for n in sizes:
                    run = asyncio.run(fanout_round(stack, port, n, writes, f"{layer}{rep}"))
                    runs[layer][str(n)].append(run)
                    log(f"  round {rep + 1}/{reps} {layer} N={n}: p50 {run['p50_ms']} ms, "
                        f"p99 {run['p99_ms']} ms, delivered {run['delivered']:.2%}, write "
                        f"{run['write_p50_ms']} ms; per write, POST {run['write_ms']} ms, last "
                        f"delivery {run['last_delivery_ms']} ms")  # fmt: skip
                run = asyncio.run(burst_round(stack, port, 100, burst_writes, f"{layer}{rep}"))
                runs[layer]["burst"].append(run)
                log(f"  round {rep + 1}/{reps} {layer} burst {burst_writes} writes x 100 "
                    f"sockets: delivered {run['delivered']:.2%}, p99 {run['p99_ms']} ms, "
                    f"drained in {run['drained_s']} s")  # fmt: skip
    finally:
        stack.restart_apps(layer=start_layer)
    summary: dict[str, Any] = {}
    for layer in layers:
        summary[layer] = {}
        for key, value in runs[layer].items():
            summary[layer][key] = {
                "p50_ms": spread([run["p50_ms"] for run in value]),
                "p99_ms": spread([run["p99_ms"] for run in value]),
                "delivered": min(run["delivered"] for run in value),
                "duplicates": sum(run["duplicates"] for run in value),
            }
            if key == "burst":
                summary[layer][key]["drained_s"] = spread([run["drained_s"] for run in value])
                summary[layer][key]["writes_per_s"] = spread([r["writes_per_s"] for r in value])
    top = str(sizes[-1])

    def ok(layer: str) -> bool:
        s = summary[layer]
        every = all(s[key]["delivered"] == 1.0 for key in s)
        return every and s[top]["p99_ms"]["median"] <= 100

    two = [layer for layer in layers if variants[layer][1] == 2]
    winner = min(two, key=lambda layer: summary[layer][top]["p99_ms"]["median"])
    line = "; ".join(
        f"{layer}: p99 {summary[layer][top]['p99_ms']['median']:.0f} ms at N={top}, "
        f"delivered {min(v['delivered'] for v in summary[layer].values()):.2%}"
        for layer in layers
    )
    return {
        "name": "fanout",
        "title": f"Fan-out: one write -> N = {', '.join(map(str, sizes))} sockets on "
        "/catalog/ws/, core vs pub/sub layer (two daphne), pub/sub with one; burst of "
        f"{burst_writes} writes to 100 sockets",
        "target": "100% delivered; p99 <= 100 ms at N = 1000",
        "measured": line,
        "pass": ok(start_layer),  # the shipped layer, with the stack's two daphne
        "pass_by_layer": {layer: ok(layer) for layer in layers},
        "faster_layer": winner,
        "summary": summary,
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
    three connect/disconnect cycles, for each layer on a freshly started daphne."""
    levels = [500, 1000, 2000] if quick else [1000, 2000, 5000]
    cycles = 3
    start_layer = stack.layer
    by_layer: dict[str, Any] = {}
    try:
        for layer in ["core", "pubsub"]:
            stack.restart_apps(layer=layer)
            log(f"  layer {layer}")
            by_layer[layer] = asyncio.run(_idle_cycles(levels, cycles))
    finally:
        stack.restart_apps(layer=start_layer)
    for data in by_layer.values():
        peaks = [cycle["points"][-1]["pss_kib"] for cycle in data["cycles"]]
        data["peak_growth_per_cycle"] = [
            round(peaks[i] / peaks[i - 1] - 1, 4) for i in range(1, len(peaks))
        ]
        afters = [cycle["after_close_kib"] for cycle in data["cycles"]]
        data["after_close_growth_per_cycle"] = [
            round(afters[i] / afters[i - 1] - 1, 4) for i in range(1, len(afters))
        ]
        # Per socket: on the fresh process (cycle 1) at every level, and at the top level of
        # every cycle (lower levels of later cycles sit on the high-water mark of the first).
        top = data["cycles"][0]["points"][-1]["sockets"]
        data["max_kib_per_socket"] = max(
            [point["kib_per_socket"] for point in data["cycles"][0]["points"]]
            + [(peak - data["baseline_kib"]) / top for peak in peaks]
        )
        data["all_open"] = all(
            point["open"] == point["sockets"] for c in data["cycles"] for point in c["points"]
        )

    def ok(data: dict[str, Any]) -> bool:
        return (
            data["max_kib_per_socket"] <= 100
            and bool(data["peak_growth_per_cycle"])
            and max(data["peak_growth_per_cycle"]) < 0.05
            and data["all_open"]
        )

    line = "; ".join(
        f"{layer}: {data['max_kib_per_socket']:.0f} KiB/socket, peak growth/cycle "
        + ", ".join(f"{g:+.1%}" for g in data["peak_growth_per_cycle"])
        for layer, data in by_layer.items()
    )
    return {
        "name": "sockets",
        "title": f"Idle sockets: daphne PSS per socket at {', '.join(map(str, levels))} "
        "sockets, 3 connect/disconnect cycles",
        "target": "<= 100 KiB per socket; < 5% growth per cycle",
        "measured": line,
        "pass": ok(by_layer[start_layer]),
        "pass_by_layer": {layer: ok(data) for layer, data in by_layer.items()},
        "layers": by_layer,
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
