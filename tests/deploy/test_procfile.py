"""`honcho start` runs the Procfile as a PaaS would: release, then web (uWSGI) and ws (daphne)."""

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.docs import marked
from tests.live import alive, descendants
from tests.stack import ROOT, STACK_PORTS, answers, make, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.before_stack]


def test_honcho_start_runs_the_procfile(tmp_path, free_stack_ports):
    (block,) = marked("honcho")  # docs/operations.md, as printed
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_"))},
        # Self-contained: SQLite and the in-memory channel layer; runtime files out of var/.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MYPROJECT_RUN_DIR": str(tmp_path / "run"),
        "PYTHONUNBUFFERED": "1",
    }
    make("stack-stop", env)  # the ports are the stack's
    assert [port for port in STACK_PORTS if answers(port)] == []

    log = (tmp_path / "honcho.log").open("w")
    honcho = subprocess.Popen(
        ["bash", "-c", block.text],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes: list[int] = []
    try:

        def ready() -> bool:
            try:
                return all(
                    httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                    for port in (8000, 8080)
                )
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, "web and ws did not come up under honcho")
        # The release ran: the migrations made the tables the ready checks just used.
        assert (tmp_path / "db.sqlite3").stat().st_size > 0
        users = httpx.get("http://127.0.0.1:8000/identity/users/", timeout=10)
        assert users.status_code == 401  # the API, not a database error
        time.sleep(1)
        assert honcho.poll() is None, "honcho stopped: one of the processes exited"
        processes = descendants(honcho.pid)
        assert len(processes) >= 3 + 4  # release, web, ws, and uWSGI's workers
    finally:
        os.killpg(honcho.pid, signal.SIGINT)  # Ctrl-C, to the terminal's foreground group
        try:
            honcho.wait(timeout=30)
        except subprocess.TimeoutExpired:
            honcho.kill()
            honcho.wait()
        log.close()
    output = (tmp_path / "honcho.log").read_text()
    assert "release.1 started" in output, output
    assert "web.1 started" in output, output
    assert "ws.1 started" in output, output
    wait_for(lambda: not any(alive(pid) for pid in processes), 10, "processes outlived honcho")
    assert [port for port in (8000, 8001, 8080) if answers(port)] == []
