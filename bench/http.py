"""
HTTP benchmarks: the split (the same DRF list on uWSGI and on daphne), the ceiling (a static
file and a constant JsonResponse), the write path (events on and off), uWSGI's sizing under a
mixed load, the cost of one serialized row, and the queries per list request.
"""

import json
import statistics
import threading
import time
from typing import Any

import httpx

from bench.loadgen import cpu_summary, median_run, spread, wrk
from bench.stack import NGINX, ROOT, UWSGI, WORK, BenchStack, log, mysql

LIST = "/catalog/items/?page_size=50"
CONNECTIONS = 16
# A run during which processes outside the stack and the client (another test session on
# this shared machine) used more than this many cores is measured again, at most RETRIES
# times; the CPU columns of the results show what each kept run had.
NEIGHBOUR_CORES = 0.3
RETRIES = 2


def alternate(
    stack: BenchStack,
    variants: dict[str, str],
    reps: int,
    duration: float,
    connections: int = CONNECTIONS,
    threads: int = 2,
) -> dict[str, list[dict[str, Any]]]:
    """Every variant once per round, A B C A B C ...: drift on a shared machine (another
    process waking up, the page cache, MariaDB's buffer pool) hits all variants alike."""
    for name, url in variants.items():
        wrk(stack, url, connections, min(2.0, duration), threads)  # warm-up, not recorded
        log(f"  warmed {name}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for rep in range(reps):
        for name, url in variants.items():
            run = wrk(stack, url, connections, duration, threads)
            for _ in range(RETRIES):
                if run["cpu"]["other_cores"] <= NEIGHBOUR_CORES:
                    break
                other = run["cpu"]["other_cores"]
                log(f"  {name}: other processes used {other:.2f} cores; measuring again")
                time.sleep(5)
                run = wrk(stack, url, connections, duration, threads)
            runs[name].append(run)
            log(
                f"  round {rep + 1}/{reps} {name}: {run['rps']:.0f} req/s, "
                f"p50 {run['latency_us']['percentiles']['50'] / 1000:.1f} ms, "
                f"{run['errors']} errors, client {run['cpu']['cores'].get('client', 0):.2f} cores"
            )
    return runs


def variant_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = median_run(runs)
    return {
        "rps": spread([run["rps"] for run in runs]),
        "p50_ms": spread([run["latency_us"]["percentiles"]["50"] / 1000 for run in runs]),
        "p99_ms": spread([run["latency_us"]["percentiles"]["99"] / 1000 for run in runs]),
        "errors": sum(run["errors"] for run in runs),
        "requests": sum(run["requests"] for run in runs),
        "cpu_cores": cpu_summary(runs),
        "latency_percentiles_us": best["latency_us"]["percentiles"],
        "url": best["url"],
    }


def ratio(a: list[float], b: list[float]) -> dict[str, float]:
    """Round-by-round ratios a/b (each round measured both back to back), median and range."""
    return spread([x / y for x, y in zip(a, b, strict=True)])


def save_list_body() -> bytes:
    """The DRF list's bytes, for the static file and the constant app."""
    body = httpx.get(f"{UWSGI}{LIST}", timeout=30).raise_for_status().content
    (WORK / "items-50.json").write_bytes(body)
    static = ROOT / "var" / "static" / "bench"
    static.mkdir(parents=True, exist_ok=True)
    (static / "items-50.json").write_bytes(body)
    return body


def fronts(stack: BenchStack) -> None:
    """The constant app and the benchmarks' nginx (to daphne and to the constant app)."""
    save_list_body()
    stack.constant_uwsgi(WORK / "items-50.json")
    stack.bench_nginx()


def same_results(urls: list[str]) -> None:
    """Every variant answers 200 with the same items: the comparison is like for like."""
    bodies = []
    for url in urls:
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        bodies.append(response.json()["results"])
    assert all(body == bodies[0] for body in bodies), "variants disagree on the list"


def split(stack: BenchStack, reps: int, duration: float) -> dict[str, Any]:
    """nginx -> uWSGI vs nginx -> daphne, the same DRF list, 16 connections. daphne as one
    process (the target) and as the stack's two (what serving REST from daphne alone would
    run on 2 cores), reported beside it."""
    fronts(stack)
    variants = {
        "uwsgi": f"{NGINX}{LIST}",
        "daphne": f"http://127.0.0.1:{stack.ports['nginx_daphne']}{LIST}",
        "daphne-x2": f"http://127.0.0.1:{stack.ports['nginx_daphnes']}{LIST}",
    }
    same_results(list(variants.values()))
    runs = alternate(stack, variants, reps, duration)
    rps = {name: [run["rps"] for run in value] for name, value in runs.items()}
    result = ratio(rps["uwsgi"], rps["daphne"])
    result_x2 = ratio(rps["uwsgi"], rps["daphne-x2"])
    errors = sum(run["errors"] for value in runs.values() for run in value)
    return {
        "name": "http",
        "title": "HTTP split: DRF list via nginx -> uWSGI vs nginx -> daphne, 16 connections",
        "target": "uWSGI >= 2x daphne req/s; 0 errors",
        "measured": f"{result['median']:.2f}x ({result['min']:.2f}-{result['max']:.2f}), "
        f"{errors} errors; against two daphne {result_x2['median']:.2f}x "
        f"({result_x2['min']:.2f}-{result_x2['max']:.2f})",
        "pass": result["median"] >= 2.0 and errors == 0,
        "ratio_uwsgi_over_daphne": result,
        "ratio_uwsgi_over_two_daphne": result_x2,
        "variants": {name: variant_summary(value) for name, value in runs.items()},
        "runs": runs,
    }


def ceiling(stack: BenchStack, reps: int, duration: float) -> dict[str, Any]:
    """What the DRF list costs against Django alone (constant JsonResponse, uWSGI) and
    against no Python at all (the same bytes as a static file from nginx)."""
    fronts(stack)
    variants = {
        "drf": f"{NGINX}{LIST}",
        "constant": f"http://127.0.0.1:{stack.ports['nginx_constant']}/bench/constant/",
        "static": f"{NGINX}/static/bench/items-50.json",
    }
    for url in variants.values():
        assert httpx.get(url, timeout=30).status_code == 200, url
    runs = alternate(stack, variants, reps, duration)
    rps = {name: [run["rps"] for run in value] for name, value in runs.items()}
    drf_constant = ratio(rps["drf"], rps["constant"])
    static_drf = ratio(rps["static"], rps["drf"])
    return {
        "name": "ceiling",
        "title": "Ceiling: the same JSON bytes as a static file (nginx) and a constant "
        "JsonResponse (uWSGI)",
        "target": "report DRF/constant and static/DRF",
        "measured": f"DRF/constant {drf_constant['median']:.2f}, "
        f"static/DRF {static_drf['median']:.1f}x",
        "pass": None,
        "ratio_drf_over_constant": drf_constant,
        "ratio_static_over_drf": static_drf,
        "variants": {name: variant_summary(value) for name, value in runs.items()},
        "runs": runs,
    }


def events_pair(stack: BenchStack) -> dict[str, int]:
    """Two uWSGI of the benchmarks' own, identical but for DJANGO_REALTIME_EVENTS (on, and off:
    writes publish nothing); their HTTP ports."""
    return {
        state: stack.extra_uwsgi(
            f"events-{state}", "myproject.wsgi:application", {"DJANGO_REALTIME_EVENTS": state}
        )
        for state in ("on", "off")
    }


def post_pairs(
    stack: BenchStack, ports: dict[str, int], count: int, tag: str, body: Any
) -> dict[str, list[float]]:
    """`count` single item POSTs to each of `ports`, one request at a time, alternating between
    them request by request (A B B A ...: no drift between the two); latencies in ms.
    `body(sku)` gives each POST's item."""
    times: dict[str, list[float]] = {state: [] for state in ports}
    # uWSGI's HTTP port closes every connection after its response: each POST opens its own.
    headers = {**stack.auth, "Connection": "close"}
    clients = {
        state: httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)
        for state, port in ports.items()
    }
    try:
        names = list(ports)
        for n in range(count):
            for state in names if n % 2 == 0 else names[::-1]:
                started = time.perf_counter()
                response = clients[state].post("/catalog/items/", json=body(f"{tag}{state}-{n}"))
                times[state].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 201, response.text[:300]
    finally:
        for client in clients.values():
            client.close()
    return times


def writes(stack: BenchStack, reps: int, count: int) -> dict[str, Any]:
    """issues 15 and 19: what publishing costs a write. Two identical uWSGI, one with events and
    one with DJANGO_REALTIME_EVENTS=off, take single item POSTs (straight to their HTTP ports),
    one request at a time, alternating request by request; p50 of each, per round."""
    ports = events_pair(stack)

    def body(sku: str) -> dict[str, Any]:
        return {"sku": sku, "name": "write path", "price": "1.00", "stock": 1,
                "category": stack.category}  # fmt: skip

    post_pairs(stack, ports, 50, "WW", body)  # warm-up: every worker has loaded everything
    rounds = []
    for rep in range(reps):
        times = post_pairs(stack, ports, count, f"W{rep}", body)
        p50 = {state: statistics.median(values) for state, values in times.items()}
        p99 = {state: sorted(values)[int(len(values) * 0.99)] for state, values in times.items()}
        rounds.append({"p50_ms": p50, "p99_ms": p99, "posts": count})
        log(f"  round {rep + 1}/{reps}: POST p50 events on {p50['on']:.2f} ms, off "
            f"{p50['off']:.2f} ms: {p50['on'] - p50['off']:+.2f} ms")  # fmt: skip
    for state in ports:
        stack.stop_extra(f"events-{state}")
    added = spread([r["p50_ms"]["on"] - r["p50_ms"]["off"] for r in rounds])
    p50 = {state: spread([r["p50_ms"][state] for r in rounds]) for state in ports}
    return {
        "name": "writes",
        "title": f"Write path: single item POST p50, {count} per round each, to two identical "
        "uWSGI (straight to their HTTP ports), events on vs DJANGO_REALTIME_EVENTS=off, "
        "alternating request by request",
        "target": "events add <= 0.5 ms to the p50",
        "measured": f"+{added['median']:.2f} ms ({added['min']:.2f}-{added['max']:.2f}): p50 "
        f"{p50['on']['median']:.2f} ms on, {p50['off']['median']:.2f} off",
        "pass": added["median"] <= 0.5,
        "added_ms": added,
        "p50_ms": p50,
        "runs": rounds,
    }


MIX_BULK = 2000  # items per bulk POST of the mixed load


class BulkLoop:
    """Bulk POSTs of MIX_BULK items, one after another, in a thread: the long request of the
    mixed load."""

    def __init__(self, stack: BenchStack, tag: str) -> None:
        self.stack, self.tag = stack, tag
        self.seconds: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {**self.stack.auth, "Content-Type": "application/json"}
        with httpx.Client(base_url=NGINX, headers=headers, timeout=120) as client:
            n = 0
            while not self.stop.is_set():
                body = json.dumps([
                    {"sku": f"MIX-{self.tag}-{n}-{i}", "name": "mixed", "price": "1.00",
                     "stock": 1, "category": self.stack.category} for i in range(MIX_BULK)
                ])  # fmt: skip
                started = time.perf_counter()
                response = client.post("/catalog/items/", content=body)
                if response.status_code == 201:
                    self.seconds.append(time.perf_counter() - started)
                n += 1

    def __enter__(self) -> "BulkLoop":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)


def _adjust_target(stack: BenchStack) -> str:
    response = httpx.post(f"{NGINX}/catalog/items/", headers=stack.auth, timeout=30, json={
        "sku": "MIX-LOCKED", "name": "contended", "price": "1.00", "stock": 1,
        "category": stack.category,
    })  # fmt: skip
    response.raise_for_status()
    return f"{NGINX}/catalog/items/{response.json()['uuid']}/adjust_stock/"


def mixed(stack: BenchStack, duration: float, adjust_url: str, tag: str) -> dict[str, Any]:
    """The list (wrk, 16 connections) while requests that wait run beside it: 4 connections of
    adjust_stock on one row (each waits for the row lock the others hold) and bulk POSTs of
    MIX_BULK items one after another."""
    adjust: dict[str, Any] = {}

    def contend() -> None:
        adjust.update(wrk(stack, adjust_url, 4, duration, 1, stack.auth, ["adjust"]))

    with BulkLoop(stack, tag) as bulk:
        thread = threading.Thread(target=contend)
        thread.start()
        listing = wrk(stack, f"{NGINX}{LIST}", CONNECTIONS, duration)
        thread.join()
    return {
        "list": listing,
        "adjust": adjust,
        "bulk_s": [round(value, 3) for value in bulk.seconds],
    }


def sizing(stack: BenchStack, reps: int, duration: float, quick: bool) -> dict[str, Any]:
    """uWSGI processes x threads on 2 cores, through nginx, 16 connections: the DRF list alone
    (reads), single item POSTs alone (writes, each publishing its event), and the list with
    requests that wait beside it (`mixed`). Each configuration is a fresh uWSGI (stack.sh's
    way), warmed before it is timed."""
    configs = [(2, 1), (4, 1)] if quick else [(2, 1), (3, 1), (4, 1), (4, 2), (8, 1)]
    names = [f"{p}x{t}" for p, t in configs]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    writes: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    mixes: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    adjust_url = _adjust_target(stack)
    try:
        for rep in range(reps):
            order = list(zip(configs, names, strict=True))
            for (processes, threads), name in order if rep % 2 == 0 else order[::-1]:
                stack.resize_uwsgi(processes, threads)
                wrk(stack, f"{NGINX}{LIST}", CONNECTIONS, min(2.0, duration))  # warm-up
                run = wrk(stack, f"{NGINX}{LIST}", CONNECTIONS, duration)
                runs[name].append(run)
                wrk(  # every process's first write (its publisher's thread and Redis connection)
                    stack, f"{NGINX}/catalog/items/", CONNECTIONS, min(2.0, duration),
                    headers=stack.auth, script_args=["post", f"WARM{rep}-{name}", stack.category],
                )  # fmt: skip
                post = wrk(
                    stack, f"{NGINX}/catalog/items/", CONNECTIONS, duration, headers=stack.auth,
                    script_args=["post", f"SIZE{rep}-{name}", stack.category],
                )  # fmt: skip
                writes[name].append(post)
                mix = mixed(stack, duration, adjust_url, f"{rep}{name}")
                mixes[name].append(mix)
                _forget_mixed_rows()
                log(f"  round {rep + 1}/{reps} uWSGI {name}: list {run['rps']:.0f} req/s, "
                    f"p99 {_p99(run):.0f} ms; POST {post['rps']:.0f} req/s, p99 {_p99(post):.0f}"
                    f" ms; mixed: list {mix['list']['rps']:.0f} req/s p99 "
                    f"{_p99(mix['list']):.0f} ms, adjust_stock {mix['adjust']['rps']:.0f}/s p99 "
                    f"{_p99(mix['adjust']):.0f} ms, {len(mix['bulk_s'])} bulk POSTs "
                    f"{statistics.median(mix['bulk_s'] or [0]):.2f} s")  # fmt: skip
    finally:
        stack.resize_uwsgi()  # back to uwsgi.ini's defaults
    summary = {name: variant_summary(value) for name, value in runs.items()}
    write_summary = {name: variant_summary(value) for name, value in writes.items()}
    mixed_summary = {
        name: {
            "list": variant_summary([mix["list"] for mix in value]),
            "adjust": variant_summary([mix["adjust"] for mix in value]),
            "bulk_s": spread([statistics.median(mix["bulk_s"] or [float("nan")]) for mix in value]),
            "bulk_count": sum(len(mix["bulk_s"]) for mix in value),
        }
        for name, value in mixes.items()
    }

    def line(name: str) -> str:
        r, w, m = summary[name], write_summary[name], mixed_summary[name]
        return (
            f"{name}: list {r['rps']['median']:.0f}/s p99 {r['p99_ms']['median']:.0f} ms, "
            f"POST {w['rps']['median']:.0f}/s; mixed: list {m['list']['rps']['median']:.0f}/s "
            f"p99 {m['list']['p99_ms']['median']:.0f} ms, adjust p99 "
            f"{m['adjust']['p99_ms']['median']:.0f} ms"
        )

    return {
        "name": "sizing",
        "title": "uWSGI sizing: processes x threads via nginx, 16 connections: DRF list, single "
        f"POSTs, and the list beside adjust_stock contention and {MIX_BULK}-item bulk POSTs",
        "target": "choose the default (uwsgi.ini)",
        "measured": "; ".join(line(name) for name in names),
        "pass": None,
        "best_list": max(summary, key=lambda name: summary[name]["rps"]["median"]),
        "best_mixed": max(
            mixed_summary, key=lambda name: mixed_summary[name]["list"]["rps"]["median"]
        ),
        "variants": summary,
        "writes": write_summary,
        "mixed": mixed_summary,
        "runs": runs,
        "write_runs": writes,
        "mixed_runs": mixes,
    }


def _p99(run: dict[str, Any]) -> float:
    return run["latency_us"]["percentiles"]["99"] / 1000


def _forget_mixed_rows() -> None:
    """The mixed load's bulk rows go, so every configuration writes into the same table."""
    from django.db import connection

    from catalog.models import Item

    Item.objects.filter(sku__startswith="MIX-").exclude(sku="MIX-LOCKED").delete()
    connection.close()


def rows(stack: BenchStack, reps: int, duration: float) -> dict[str, Any]:
    """The cost of one more row: list latency at page sizes 1, 50 and 200 on one kept-alive
    connection through nginx (no queueing), median latency of each. (uWSGI's own HTTP port
    closes the connection after every response, which wrk counts as an error.)"""
    sizes = [1, 50, 200]
    variants = {f"page_size={size}": f"{NGINX}/catalog/items/?page_size={size}" for size in sizes}
    runs = alternate(stack, variants, reps, duration, connections=1, threads=1)
    p50 = {
        size: [run["latency_us"]["percentiles"]["50"] for run in runs[f"page_size={size}"]]
        for size in sizes
    }
    per_row = spread([(b - a) / 49 for a, b in zip(p50[1], p50[50], strict=True)])
    errors = sum(run["errors"] for value in runs.values() for run in value)
    per_row_200 = spread([(b - a) / 199 for a, b in zip(p50[1], p50[200], strict=True)])
    return {
        "name": "rows",
        "title": "Per-row cost: list p50 latency at 1 vs 50 rows (1 connection, nginx -> uWSGI)",
        "target": "<= 50 us per serialized row",
        "measured": f"{per_row['median']:.1f} us/row ({per_row['min']:.1f}-{per_row['max']:.1f});"
        f" 1->200 rows: {per_row_200['median']:.1f} us/row",
        "pass": per_row["median"] <= 50 and errors == 0,
        "us_per_row_1_to_50": per_row,
        "us_per_row_1_to_200": per_row_200,
        "p50_us": {size: spread(values) for size, values in p50.items()},
        "variants": {name: variant_summary(value) for name, value in runs.items()},
        "runs": runs,
    }


def _questions() -> int:
    connection = mysql()
    try:
        cursor = connection.cursor()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
        return int(cursor.fetchone()[1])
    finally:
        connection.close()


def queries(stack: BenchStack, duration: float) -> dict[str, Any]:
    """Queries per list request by page size: Django's own capture in this process, then
    MariaDB's `Questions` counter while uWSGI serves the list under load (the counter is
    server-wide: an idle window before and after measures what others add meanwhile)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    sizes = [1, 10, 50, 200]
    client = Client(HTTP_HOST="127.0.0.1")
    captured: dict[int, dict[str, Any]] = {}
    for size in sizes:
        url = f"/catalog/items/?page_size={size}"
        assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as context:
            response = client.get(url)
        assert response.status_code == 200
        assert len(response.json()["results"]) == size
        captured[size] = {
            "queries": len(context.captured_queries),
            "sql": [query["sql"][:160] for query in context.captured_queries],
        }
    connection.close()

    def idle_rate() -> float:
        before, start = _questions(), time.monotonic()
        time.sleep(duration)
        return (_questions() - before - 1) / (time.monotonic() - start)

    noise = [idle_rate()]
    under_load: dict[int, dict[str, float]] = {}
    for size in sizes:
        before = _questions()
        run = wrk(stack, f"{NGINX}/catalog/items/?page_size={size}", 4, duration)
        delta = _questions() - before - 1
        under_load[size] = {"questions": delta, "requests": run["requests"], "s": run["duration_s"]}
    noise.append(idle_rate())
    rate = statistics.mean(noise)
    for entry in under_load.values():
        entry["raw_per_request"] = round(entry["questions"] / entry["requests"], 3)
        corrected = (entry["questions"] - rate * entry["s"]) / entry["requests"]
        entry["per_request"] = round(corrected, 3)
    counts = [captured[size]["queries"] for size in sizes]
    constant = len(set(counts)) == 1
    return {
        "name": "queries",
        "title": "Queries per list request at page size 1, 10, 50, 200",
        "target": "constant, <= 4",
        "measured": "Django: "
        + ", ".join(str(c) for c in counts)
        + "; MariaDB Questions/request: "
        + ", ".join(f"{under_load[size]['per_request']:.2f}" for size in sizes),
        "pass": constant and max(counts) <= 4,
        "django_capture": captured,
        "mariadb_questions": under_load,
        "mariadb_idle_questions_per_s": [round(value, 2) for value in noise],
    }


def describe_body() -> dict[str, Any]:
    body = (WORK / "items-50.json").read_bytes()
    return {"bytes": len(body), "items": len(json.loads(body)["results"])}
