"""Real server processes for tests that must go through uWSGI or daphne, not the test client."""

import contextlib
import os
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
def uwsgi(env: dict[str, str]) -> Iterator[str]:
    """One uWSGI worker over HTTP on a free port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "uwsgi"),
            "--http",
            f"127.0.0.1:{port}",
            "--module",
            "myproject.wsgi",
            "--master",
            "--processes",
            "1",
            "--threads",
            "1",
            "--die-on-term",
            "--need-app",
            "--disable-logging",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/healthz")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
