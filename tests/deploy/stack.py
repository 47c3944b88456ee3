"""
Helpers for driving the split stack from outside: its processes, logs and services.

The stack runs against the suite's MariaDB (a private database, dropped afterwards) and a
private Redis on a free port, which a test may stop and start again.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import environ
import MySQLdb
import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "var" / "run"
LOG = ROOT / "var" / "log"
STACK_DB = "myproject_stack_test"
STACK_PORTS = (8088, 8000, 8001, 8080)
NGINX = "http://127.0.0.1:8088"
ADMIN_NAME = "stackadmin"
ADMIN_PASSWORD = "stack-Admin-secret-42"


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
