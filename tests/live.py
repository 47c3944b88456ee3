"""Real server processes for tests that must go through uWSGI or daphne, not the test client."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def listening(proc: subprocess.Popen, port: int, timeout: float) -> bool:
    """Wait until `proc` accepts connections on `port`; False if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    """Running and not a zombie (PID 1 may be slow to reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def stop_process(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM a process this session started; SIGKILL it if it outlives `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class PrivateRedis:
    """A throwaway redis-server on a free port, stoppable and restartable on that port: nobody
    else's keys, nobody else's load (the stack tests and `make bench` both use it)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed (`make test` installs it)")
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # maxclients: make bench holds thousands of sockets, each daphne a connection pool.
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--maxclients", "20000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not listening(self.proc, self.port, 10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def test_database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test database)."""
    s = connection.settings_dict
    return f"mysql://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT'] or 3306}/{s['NAME']}"


def server_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SECRET_KEY": "live-test",
        "DJANGO_HTTPS": "off",
        "DJANGO_THROTTLE_ANON": "off",
        "DJANGO_THROTTLE_USER": "off",
        "DJANGO_WS_MESSAGE_RATE": "off",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@contextlib.contextmanager
def running(
    command: list[str], port: int, env: dict[str, str], log: Path | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen]:
    """Run a server process until the block ends; yields it once /healthz answers on `port`
    (the benchmarks read its CPU and memory by pid)."""
    output = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=output)
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        yield proc
    finally:
        stop_process(proc)
        if log:
            output.close()


@contextlib.contextmanager
def serve(
    command: list[str], port: int, env: dict[str, str], log: Path | None = None
) -> Iterator[str]:
    """Run a server process until the block ends; yields its base URL once it answers."""
    with running(command, port, env, log):
        yield f"http://127.0.0.1:{port}"


def uwsgi(env: dict[str, str], log: Path | None = None) -> contextlib.AbstractContextManager[str]:
    """One uWSGI worker over HTTP on a free port (its output in `log`, if given)."""
    port = free_port()
    command = [
        str(BIN / "uwsgi"), "--http", f"127.0.0.1:{port}", "--module", "myproject.wsgi",
        "--master", "--processes", "1", "--threads", "1", "--die-on-term", "--need-app",
        "--disable-logging",
    ]  # fmt: skip
    return serve(command, port, env, log)


def daphne(
    env: dict[str, str], app: str = "myproject.asgi:application", log: Path | None = None
) -> contextlib.AbstractContextManager[str]:
    """One daphne process on a free port (its output in `log`, if given)."""
    port = free_port()
    return serve([str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app], port, env, log)
