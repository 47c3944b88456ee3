"""
The split stack as operators run it (`make stack`), for tests that drive it from outside, and
helpers for its processes, logs and services. Tests using the `stack` fixture are marked
`stack`; the fixture starts the stack once per session.

The stack runs against the suite's MariaDB (a private database, dropped afterwards) and a
private Redis on a free port, which a test may stop and start again.
"""

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import environ
import httpx
import MySQLdb
import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "var" / "run"
LOG = ROOT / "var" / "log"
STACK_DB = "myproject_stack_test"
STACK_PORTS = (8088, 8000, 8001, 8080)
NGINX = "http://127.0.0.1:8088"
ADMIN_NAME = "stackadmin"
ADMIN_PASSWORD = "stack-Admin-secret-42"
# Machine-wide: any checkout's test session that runs the stack takes it first.
STACK_LOCK = Path("/tmp/myproject-stack.lock")


def mysql_config() -> dict:
    """Connection settings of the suite's MariaDB (`make test` sets DATABASE_URL)."""
    config = environ.Env.db_url_config(os.environ.get("DATABASE_URL", ""))
    if config.get("ENGINE") != "django.db.backends.mysql":
        pytest.fail("the stack tests need DATABASE_URL=mysql://... (run them with `make test`)")
    return config


def drop_database(config: dict) -> None:
    connection = MySQLdb.connect(
        host=config["HOST"] or "127.0.0.1",
        port=int(config["PORT"] or 3306),
        user=config["USER"] or "root",
        password=config["PASSWORD"] or "",
    )
    try:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{STACK_DB}`")
    finally:
        connection.close()


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateRedis:
    """A throwaway redis-server on a fixed port, stoppable and restartable on that port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            pytest.fail("redis-server is not installed (`make test` installs it)")
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class Stack:
    env: dict[str, str]
    redis: PrivateRedis
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def script(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        """Run scripts/stack.sh with the stack's environment; fail with its output."""
        result = subprocess.run(
            [str(ROOT / "scripts" / "stack.sh"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result


def make(target: str, env: dict[str, str], timeout: float = 150) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"make {target} failed:\n{result.stdout}\n{result.stderr}"


def pid_file(name: str) -> int:
    return int((RUN / f"{name}.pid").read_text().strip())


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


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The split stack, started once for the session by `make stack`, stopped at the end.
    Holds a machine-wide lock meanwhile: its ports are fixed, so two test sessions (a
    developer's and CI's, say) take turns rather than stopping each other's stack."""
    with STACK_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _run_stack()


def _run_stack() -> Iterator[Stack]:
    config = mysql_config()
    redis = PrivateRedis()
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{config['USER'] or 'root'}:{config['PASSWORD'] or ''}"
        f"@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 3306}/{STACK_DB}",
        "REDIS_URL": redis.url,
    }
    # The stack brings its own production settings and secret key (generated into var/).
    for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_HTTPS", "DJANGO_NUM_PROXIES"):
        env.pop(name, None)
    # A stack left behind by an interrupted run would hold the ports.
    make("stack-stop", env)
    busy = [port for port in STACK_PORTS if answers(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use by something other than the stack")
    drop_database(config)
    redis.start()
    try:
        make("stack", env)
        manage_env = {**env, "DJANGO_SECRET_KEY": "stack-test-manage"}
        manage_env["DJANGO_SUPERUSER_PASSWORD"] = ADMIN_PASSWORD
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "createsuperuser",
             "--noinput", "--name", ADMIN_NAME, "--email", f"{ADMIN_NAME}@example.com"],
            cwd=ROOT, env=manage_env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        response = httpx.post(
            f"{NGINX}/identity/token/",
            json={"username": ADMIN_NAME, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        yield Stack(env=env, redis=redis, token=response.json()["token"])
    finally:
        try:
            make("stack-stop", env)
        finally:
            redis.stop()
            drop_database(config)
