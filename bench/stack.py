"""
The split stack as the benches drive it: tests/stack.py's `started_stack` (a private MariaDB
and Redis, under the machine-wide lock) with every limit off, this process's Django on the
stack's own environment (var/run/stack.env), and readings from /proc per process group.
"""

import contextlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.live import BIN, ROOT, descendants, free_port, running
from tests.stack import DAPHNE_PORTS, NGINX, RUN, Stack, pid_file, stack_lock, started_stack

WORK = ROOT / "var" / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Benches measure the servers, not the limits.
LIMITS_OFF = {
    **{f"DJANGO_THROTTLE_{name}": "off" for name in ("ANON", "USER", "LOGIN")},
    **{f"DJANGO_WS_{name}_RATE": "off" for name in ("CHECK", "MESSAGE", "SUBSCRIBE", "SIGNAL")},
    "DJANGO_WS_MAX_SOCKETS_PER_USER": "100000",
    "DJANGO_LOG_LEVEL": "WARNING",
}


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll `condition` until true; raise after `timeout` seconds (every wait is bounded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def cpu_ns(pid: int) -> int:
    """Nanoseconds every thread of `pid` has run (schedstat: finer than /proc's 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def cpu_s(pids: list[int]) -> float:
    """CPU seconds of `pids` and every process below them, reaped children included."""
    total = 0.0
    for pid in {p for root in pids for p in (root, *descendants(root))}:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15]) / CLK_TCK
    return total


def rss_kib(pid: int) -> int:
    """Proportional set size (Pss): private pages and a fair share of the shared ones."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")


class Meter:
    """Cores used per process group over a block (CPU seconds / wall seconds): a saturated
    client or a neighbour shows in the rows instead of hiding in the numbers."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = {**groups, "client": [os.getpid()]}
        self.cores: dict[str, float] = {}

    def __enter__(self) -> "Meter":
        self.before = {name: cpu_s(pids) for name, pids in self.groups.items()}
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.started
        for name, pids in self.groups.items():
            self.cores[f"cores_{name}"] = round((cpu_s(pids) - self.before[name]) / wall, 3)


@dataclass
class Bench:
    """The running stack, its admin's token and a category for the benches' writes."""

    stack: Stack
    category: str = ""
    baseline: str | None = None  # a commit to compare daphne with (sockets, cost)

    @property
    def auth(self) -> dict[str, str]:
        return self.stack.auth

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    def manage(self, *args: str, cwd: Path = ROOT, **env: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args], cwd=cwd, capture_output=True, text=True,
            env={**self.env, **django_env(), "PYTHONPATH": str(cwd), **env}, timeout=900,
        )  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"manage.py {args[0]}: {result.stdout}{result.stderr}")
        return result.stdout

    def groups(self) -> dict[str, list[int]]:
        return {
            "nginx": [pid_file("nginx")],
            "uwsgi": [pid_file("uwsgi")],
            "daphne": [pid_file(f"daphne-{port}") for port in DAPHNE_PORTS],
            "redis": [self.stack.redis.proc.pid],
            "mariadb": [self.stack.mariadb.proc.pid],
        }

    def meter(self, **extra: list[int]) -> Meter:
        return Meter({**self.groups(), **extra})

    def item(self, sku: str, **fields: Any) -> dict[str, Any]:
        return {"sku": sku, "name": "bench", "price": "1.00", "stock": 1,
                "category": self.category, **fields}  # fmt: skip

    def server(self, kind: str, root: Path = ROOT, module: str = "myproject.wsgi",
               processes: int = 1, **env: str) -> Any:  # fmt: skip
        """A daphne or a uWSGI of the benches' own (one process unless told, threads enabled,
        apps loaded per worker, as uwsgi.ini has them; `module`: its WSGI module; HTTP without
        keep-alive unless it runs several processes), on a free port, on the stack's
        environment (`root`: another checkout's code, a baseline); yields (process, port)."""
        port = free_port()
        # Several processes: keep-alive, served by the workers themselves (--http11-socket);
        # the --http router's keep-alive held every page larger than one segment for 40 ms
        # (Nagle against delayed ACKs).
        http = "--http" if processes == 1 else "--http11-socket"
        command = {
            "daphne": [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                       "myproject.asgi:application"],
            "uwsgi": [str(BIN / "uwsgi"), http, f"127.0.0.1:{port}", "--module",
                      module, "--master", "--processes", str(processes), "--die-on-term",
                      "--need-app", "--disable-logging", "--enable-threads", "--lazy-apps",
                      "--single-interpreter"],
        }[kind]  # fmt: skip
        full = {**self.env, **django_env(), "PYTHONPATH": str(root), **env}
        log_file = WORK / f"{kind}-{port}.log"
        return _with_port(running(command, port, full, log_file, cwd=root), port)


@contextlib.contextmanager
def _with_port(server: Any, port: int) -> Iterator[tuple[subprocess.Popen, int]]:
    with server as proc:
        yield proc, port


def django_env() -> dict[str, str]:
    """What `scripts/stack.sh` started the stack with (its secret key included)."""
    found = {}
    for line in (RUN / "stack.env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = shlex.split(value)[0] if value else ""
    return found


def baseline_tree(commit: str) -> Path:
    """The code of `commit`, exported (not a worktree) into var/bench/<commit>."""
    path = WORK / commit
    if not path.exists():
        path.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True,
                                 check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


@contextlib.contextmanager
def bench_stack(baseline: str | None) -> Iterator[Bench]:
    """The stack, limits off, under the lock; this process's Django set up on its database."""
    WORK.mkdir(parents=True, exist_ok=True)
    log("waiting for the stack lock")
    with stack_lock(), started_stack(**LIMITS_OFF) as stack:
        os.environ.update({**django_env(), "DJANGO_SETTINGS_MODULE": "myproject.settings"})
        import django

        django.setup()
        bench = Bench(stack, baseline=baseline)
        response = httpx.post(f"{NGINX}/catalog/categories/", headers=stack.auth, timeout=30,
                              json={"name": "Bench", "slug": "bench"})  # fmt: skip
        response.raise_for_status()
        bench.category = response.json()["uuid"]
        yield bench
