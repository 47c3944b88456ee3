"""
What sockets hold: memory per idle socket (this commit against the baseline), per presence
member (in daphne and in Redis), and what a client that never reads costs daphne.
"""

import asyncio
import threading
import time
import uuid
from typing import Any

import redis

from bench import wsclient
from bench.stack import Bench, baseline_tree, log, rss_kib
from bench.ws import message, publish
from tests.live import ROOT
from tests.stack import metric, pid_file, raw_socket_that_never_reads

Rows = list[dict[str, Any]]


async def held(pid: int, port: int, path: str, count: int) -> dict[str, Any]:
    """Daphne's PSS per socket with `count` sockets open on `path`, 2 s after the last."""
    await wsclient.close_all(await wsclient.connect(port, path, count=20))  # warm-up
    await asyncio.sleep(1)
    before = rss_kib(pid)
    conns = await wsclient.connect(port, path, count=count)
    await asyncio.sleep(2)
    after, is_open = rss_kib(pid), sum(socket.open for socket in conns)
    await wsclient.close_all(conns)
    return {"sockets": count, "open": is_open, "kib_per_socket": round((after - before) / count, 1)}


def sockets(bench: Bench, quick: bool) -> Rows:
    """PSS of a fresh daphne per idle socket on /catalog/ws/, straight to it: this commit and
    the baseline commit, each a daphne of the bench's own, alternating."""
    count = 500 if quick else 2000
    roots = {"daphne": ROOT}
    if bench.baseline:
        roots[f"daphne {bench.baseline}"] = baseline_tree(bench.baseline)
    rows = []
    for r in range(1 if quick else 3):
        for name, root in roots.items():
            with bench.server("daphne", root) as (proc, port):
                result = asyncio.run(held(proc.pid, port, "/catalog/ws/", count))
            rows.append({"round": r, "variant": name, **result})
            log(f"  {rows[-1]}")
    return rows


def presence(bench: Bench, quick: bool) -> Rows:
    """Memory per presence member: N users, a socket each, in one group of the check channel
    (each join is told to every member: N^2 frames), against N sockets on /catalog/ws/ (no
    presence), each on a fresh daphne of the bench's own; daphne's PSS and the group's keys in
    Redis."""
    from identity.models import Token, User

    count = 200 if quick else 1000
    tag = uuid.uuid4().hex[:6]
    users = User.objects.bulk_create(
        User(name=f"member-{tag}-{n}", email=f"m{tag}{n}@example.com", password="!")
        for n in range(count)
    )
    tokens = [Token.objects.issue(user)[1] for user in users]
    store = redis.Redis(port=bench.stack.redis.port)
    rows = []
    for r in range(1 if quick else 2):
        for name in ("catalog sockets", "presence members"):
            with bench.server("daphne") as (proc, port):
                if name == "catalog sockets":
                    result = asyncio.run(held(proc.pid, port, "/catalog/ws/", count))
                else:
                    group = f"p-{tag}-{r}"
                    result = asyncio.run(members(proc.pid, port, group, tokens, store))
            rows.append({"round": r, "variant": name, **result})
            log(f"  {rows[-1]}")
    store.close()
    return rows


async def members(pid: int, port: int, group: str, tokens: list[str], store: redis.Redis) -> dict:
    """`held` for presence, a user per socket; the group's keys in Redis (MEMORY USAGE) are
    read while they are in."""
    from myproject.realtime.presence import _keys

    paths = [f"/identity/ws/check/{group}/?token={token}" for token in tokens]
    warm = paths[0].replace(group, f"warm-{group}")
    await wsclient.close_all(await wsclient.connect(port, warm, count=5))
    await asyncio.sleep(1)
    before = rss_kib(pid)
    conns: list[wsclient.Socket] = []
    for path in paths:
        conns += await wsclient.connect(port, path, count=1)
    await asyncio.sleep(3)
    after, in_redis = rss_kib(pid), sum(store.memory_usage(k, samples=0) or 0 for k in _keys(group))
    is_open = sum(socket.open for socket in conns)
    await wsclient.close_all(conns)
    n = len(paths)
    return {"sockets": n, "open": is_open, "kib_per_socket": round((after - before) / n, 1),
            "redis_bytes_per_member": round(in_redis / n)}  # fmt: skip


def slow(bench: Bench, quick: bool) -> Rows:
    """100 raw sockets that never read on daphne :8080, then 4,000 frames of 20 KB on the
    catalog: how many are closed with 4408 (past DJANGO_WS_MAX_BUFFER), and daphne's PSS before,
    at its peak and after."""
    port, count, frames = 8080, 100, 4000
    pid = pid_file(f"daphne-{port}")
    base = f"http://127.0.0.1:{port}"
    stalled = [raw_socket_that_never_reads(port, "/catalog/ws/") for _ in range(count)]
    before = peak = rss_kib(pid)
    done = threading.Event()
    text = message(20_000)
    publisher = threading.Thread(target=lambda: (publish("catalog", text, frames), done.set()))
    publisher.start()
    while not done.is_set():
        peak = max(peak, rss_kib(pid))
        time.sleep(0.2)
    sent = -1.0
    while (now := metric(base, "ws_frames_sent_total")) != sent:  # until daphne is done
        peak, sent = max(peak, rss_kib(pid)), now
        time.sleep(1)
    publisher.join()
    time.sleep(2)
    after = rss_kib(pid)
    closed = 0
    for raw in stalled:
        raw.settimeout(10)
        tail = b""
        try:
            while chunk := raw.recv(1 << 20):
                tail = (tail + chunk)[-16:]
                if tail.endswith(b"\x88\x02\x11\x38"):  # a close frame, 4408
                    closed += 1
                    break
        except OSError:
            pass
        raw.close()
    return [{"sockets": count, "frames": frames, "closed_4408": closed, "pss_before_mib":
             round(before / 1024, 1), "pss_peak_mib": round(peak / 1024, 1),
             "pss_after_mib": round(after / 1024, 1)}]  # fmt: skip
