"""
HTTP benches. Load comes from wrk (C, epoll): a Python client would spend as much CPU as the
servers it measures on 2 cores. Each bench returns flat rows, one per round and variant.
"""

import contextlib
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.stack import WORK, Bench, log
from tests.live import BIN, ROOT, answers, free_port
from tests.stack import NGINX, new_account

LIST = "/catalog/items/?page_size=50"
LUA = Path(__file__).with_name("wrk.lua")
Rows = list[dict[str, Any]]


def wrk(bench: Bench, url: str, connections: int, seconds: int, token: str = "",
        extra: dict[str, list[int]] | None = None) -> dict:  # fmt: skip
    """One closed-loop wrk run: req/s, latency, errors, and cores per process group."""
    argv = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s",
            "--timeout", "10s", "-s", str(LUA), url]  # fmt: skip
    if token:
        argv += ["--", "token", token]
    with bench.meter(**(extra or {})) as meter:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out}")
    result = json.loads(line.removeprefix("WRKJSON "))
    return {
        "rps": round(result["requests"] / (result["us"] / 1e6), 1),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": result["errors"],
        **meter.cores,
    }


def rounds(bench: Bench, variants: dict[str, tuple[str, str]], n: int, seconds: int,
           connections: int = 16, extra: dict[str, list[int]] | None = None) -> Rows:  # fmt: skip
    """Every variant (url, token) once per round, A B A B: drift hits all of them alike."""
    for url, token in variants.values():
        wrk(bench, url, connections, 1, token, extra)  # warm-up
    rows = []
    for r in range(n):
        for name, (url, token) in variants.items():
            rows.append(
                {"round": r, "variant": name, **wrk(bench, url, connections, seconds, token, extra)}
            )
            log(f"  {rows[-1]}")
    return rows


def dataset(bench: Bench, items: int = 10_000) -> None:
    """The generated catalog (and 60 users) the read benches page through, if missing."""
    from catalog.models import Item
    from identity.models import User

    if Item.objects.count() < items:
        bench.manage("import_catalog", catalog_csv(items))
    if User.objects.count() < 60:
        User.objects.bulk_create(
            User(name=f"reader-{n}", email=f"reader-{n}@example.com", password="!")
            for n in range(60)
        )


def catalog_csv(items: int) -> str:
    path = WORK / f"catalog-{items}.csv"
    if not path.exists():
        subprocess.run([str(BIN / "python"), "scripts/make_sample_catalog.py", "--items",
                        str(items), "--out", str(path)], cwd=ROOT, check=True)  # fmt: skip
    return str(path)


def reads(bench: Bench, quick: bool) -> Rows:
    """Reads through nginx -> uWSGI: /healthz against 50-row list pages, 16 connections; the
    cost of a row (p50 at 1 vs 50 rows, one connection, each list and reader); queries per
    request."""
    dataset(bench)
    plain = new_account(bench.stack, "reader", address="127.0.0.90").token
    lists = {
        "items anonymous": ("/catalog/items/", ""),
        "items signed in": ("/catalog/items/", bench.stack.token),
        "users as staff": ("/identity/users/", bench.stack.token),
        "users as user": ("/identity/users/", plain),
    }
    variants = {"healthz": (f"{NGINX}/healthz", ""),
                **{name: (f"{NGINX}{path}?page_size=50", token)
                   for name, (path, token) in lists.items()}}  # fmt: skip
    rows = rounds(bench, variants, 1 if quick else 3, 2 if quick else 8)
    per_row = [row for r in range(1 if quick else 3)
               for row in row_cost(lists, r, 100 if quick else 500)]  # fmt: skip
    return rows + per_row + queries(bench, plain)


def row_cost(lists: dict[str, tuple[str, str]], round_: int, pairs: int) -> Rows:
    """What a row adds: pages of 1 and of 50 rows, alternating request by request on one
    keep-alive connection through nginx (drift hits both alike; two wrk runs one after the
    other differed by more than 49 rows cost), p50 of each."""
    rows = []
    for name, (path, token) in lists.items():
        headers = {"Authorization": f"Token {token}"} if token else {}
        times: dict[int, list[float]] = {1: [], 50: []}
        with httpx.Client(headers=headers, timeout=30) as client:
            for n in range(-20, pairs):  # the first 20 pairs: warm-up
                for size in (1, 50) if n % 2 else (50, 1):
                    started = time.perf_counter()
                    response = client.get(f"{NGINX}{path}?page_size={size}")
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text[:300]
                    if n >= 0:
                        times[size].append(elapsed)
        p50 = {size: statistics.median(values) for size, values in times.items()}
        rows.append({"round": round_, "variant": f"{name}, 1 vs 50 rows",
                     "p50_1_ms": round(p50[1], 3), "p50_50_ms": round(p50[50], 3),
                     "us_per_row": round((p50[50] - p50[1]) * 1000 / 49, 1)})  # fmt: skip
        log(f"  {rows[-1]}")
    return rows


def floor(bench: Bench, quick: bool) -> Rows:
    """Django's own floor (bench/floor.py): /healthz, the API's 50-row list, and the plainest
    Django views answering the same page with and without its exact count, side by side in a
    uWSGI of the bench's own sized as the stack's (4 processes; HTTP with keep-alive, no
    nginx), 16 connections."""
    dataset(bench)
    with bench.server("uwsgi", module="bench.floor", processes=4) as (proc, port):
        base = f"http://127.0.0.1:{port}"
        api, plain = (httpx.get(f"{base}{path}").json() for path in (LIST, "/floor/items/"))
        assert (plain["count"], plain["results"]) == (api["count"], api["results"]), "not alike"
        variants = {
            "healthz": (f"{base}/healthz", ""),
            "API list": (f"{base}{LIST}", ""),
            "Django, counted": (f"{base}/floor/items/", ""),
            "Django, uncounted": (f"{base}/floor/uncounted/", ""),
        }
        rows = rounds(bench, variants, 1 if quick else 3, 2 if quick else 8,
                      extra={"bench_uwsgi": [proc.pid]})  # fmt: skip
    for round_ in range(max(row["round"] for row in rows) + 1):
        these = [row for row in rows if row["round"] == round_]
        for row in these[1:]:
            row["of_healthz"] = round(row["rps"] / these[0]["rps"], 3)
    return rows


def queries(bench: Bench, plain: str) -> Rows:
    """Queries per list request, counted by Django in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    users = "/identity/users/?page_size=50"
    rows = []
    for name, url, token in [("items", LIST, ""), ("users as staff", users, bench.stack.token),
                             ("users as user", users, plain)]:  # fmt: skip
        client = Client(
            HTTP_HOST="localhost", headers={"Authorization": f"Token {token}"} if token else {}
        )
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        rows.append({"variant": f"queries: {name}", "queries": len(captured.captured_queries)})
    return rows


NGINX_TO_DAPHNE = """daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};
  fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};
  upstream daphne {{ server 127.0.0.1:{upstream}; keepalive 16; }}
  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://daphne;
    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host localhost;
    proxy_set_header X-Forwarded-For $remote_addr; }} }} }}
"""


@contextlib.contextmanager
def nginx_to(upstream: int) -> Iterator[tuple[int, int]]:
    """An nginx of the bench's own in front of one daphne (the stack's sends HTTP to uWSGI)."""
    port, where = free_port(), WORK / "nginx"
    where.mkdir(parents=True, exist_ok=True)
    conf = where / "nginx.conf"
    conf.write_text(NGINX_TO_DAPHNE.format(dir=where, upstream=upstream, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", str(where), "-c", str(conf)])
    try:
        deadline = time.monotonic() + 10
        while not answers(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def http(bench: Bench, quick: bool) -> Rows:
    """The list page through nginx -> uWSGI against nginx -> one daphne, 16 connections."""
    dataset(bench)
    with nginx_to(8080) as (port, pid):
        variants = {
            "uwsgi": (f"{NGINX}{LIST}", ""),
            "daphne": (f"http://127.0.0.1:{port}{LIST}", ""),
        }
        nginx = {"nginx": [*bench.groups()["nginx"], pid]}  # the stack's and the bench's
        rows = rounds(bench, variants, 1 if quick else 3, 2 if quick else 8, extra=nginx)
    for uwsgi, daphne in zip(rows[::2], rows[1::2], strict=True):
        daphne["uwsgi_over_daphne"] = round(uwsgi["rps"] / daphne["rps"], 2)
    return rows


def writes(bench: Bench, quick: bool) -> Rows:
    """What publishing costs a write: single item POSTs to uWSGI identical but for events (on,
    and DJANGO_REALTIME_EVENTS=off), alternating request by request; target <= +0.5 ms p50. Back to
    back, and with the client pausing 20 ms after each POST (the relay's work after a response
    then lands on no request: what is left is the request's own share). Two processes of the
    same code differ by up to 0.4 ms p50, and the order they are started in moves the figure:
    so each round runs on four processes of its own, started in the order on, off, off,
    on (off, on, on, off in the next round), the client going round all four; and the p50s of
    all rounds' POSTs pooled."""
    rows = []
    # One client for the run: httpx.post() builds a client (and its TLS context) per call,
    # ~40 ms of the client's own that drowned the figure. A connection per request: uWSGI's
    # HTTP socket closes each one after its response.
    client = httpx.Client(headers=bench.auth, timeout=30,
                          limits=httpx.Limits(max_keepalive_connections=0))  # fmt: skip
    env = {"on": {}, "off": {"DJANGO_REALTIME_EVENTS": "off"}}
    for pause in (0.0, 0.02):
        variant = "paused" if pause else "back to back"
        every: dict[str, list[float]] = {"on": [], "off": []}
        for r in range(2 if quick else 6):
            order = ["on", "off", "off", "on"] if r % 2 else ["off", "on", "on", "off"]
            with contextlib.ExitStack() as stack:
                servers = [(state, stack.enter_context(bench.server("uwsgi", **env[state]))[1])
                           for state in order]  # fmt: skip
                times: dict[str, list[float]] = {"on": [], "off": []}
                for n in range(-10, 50 if quick else 100):  # n < 0: warm-up
                    for state, port in servers[n % 4 :] + servers[: n % 4]:
                        started = time.perf_counter()
                        response = client.post(
                            f"http://127.0.0.1:{port}/catalog/items/",
                            json=bench.item(f"W{r}{port}{n}-{time.time_ns()}"),
                        )
                        if n >= 0:
                            times[state].append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 201, response.text[:300]
                        time.sleep(pause)
            rows.append({"round": r, "variant": variant, **_added(times)})
            log(f"  {rows[-1]}")
            for state, values in times.items():
                every[state] += values
        rows.append({"round": "all", "variant": f"{variant}, rounds pooled", **_added(every)})
        log(f"  {rows[-1]}")
    client.close()
    return rows


def _added(times: dict[str, list[float]]) -> dict[str, float]:
    p50 = {state: statistics.median(values) for state, values in times.items()}
    return {"p50_on_ms": round(p50["on"], 2), "p50_off_ms": round(p50["off"], 2),
            "added_ms": round(p50["on"] - p50["off"], 2)}  # fmt: skip


def bulk(bench: Bench, quick: bool) -> Rows:
    """One POST of 10,000 items through nginx."""
    rows = []
    for r in range(1 if quick else 3):
        body = [bench.item(f"BULK{r}-{time.time_ns()}-{n}") for n in range(10_000)]
        with bench.meter() as meter:
            started = time.perf_counter()
            response = httpx.post(f"{NGINX}/catalog/items/", json=body, headers=bench.auth,
                                  timeout=300)  # fmt: skip
            seconds = time.perf_counter() - started
        assert response.status_code == 201, response.text[:300]
        rows.append({"round": r, "s": round(seconds, 2), "us_per_item": round(seconds * 100, 1),
                     **meter.cores})  # fmt: skip
    return rows


def importing(bench: Bench, quick: bool) -> Rows:
    """`manage.py import_catalog` of a generated 10k-row CSV into an empty catalog (wall time
    of the command, Django's start-up included)."""
    from catalog.models import Category, Item

    rows = []
    for r in range(1 if quick else 3):
        Item.objects.all().delete()
        Category.objects.exclude(slug="bench").delete()
        with bench.meter() as meter:
            started = time.perf_counter()
            bench.manage("import_catalog", catalog_csv(10_000))
            rows.append({"round": r, "s": round(time.perf_counter() - started, 2), **meter.cores})
    return rows
