"""
The README's quick start, as a newcomer follows it: `make run` in one terminal, the commands
the README prints for a second terminal pasted as they are (twice), a third terminal watching
a group, and the writes reaching the embedded server's sockets within a second (no Redis:
through the SQLite history every process of the machine shares).
"""

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time

import httpx
import pytest
import websockets

from tests.docs import Block, commands, marked
from tests.live import stop_process
from tests.stack import ROOT, answers, make, wait_for

# `make run` serves on the stack's port 8000: before the session's stack starts.
pytestmark = [pytest.mark.stack, pytest.mark.before_stack]

WS = "ws://127.0.0.1:8000"
PASSWORD = "readme-Tester-secret-42"


def readme_block(kind: str) -> Block:
    found = marked(kind, ROOT / "README.md")
    assert len(found) == 1, f"the README has {len(found)} blocks marked {kind}"
    return found[0]


def shell(block: Block, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`block` pasted in a fresh shell in the checkout."""
    return subprocess.run(["bash", "-e", "-c", block.text], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip


async def collect(url: str, frames: list[tuple[float, dict]]) -> None:
    """Every frame of one socket, with when it came, until cancelled."""
    async with websockets.connect(url, origin="http://127.0.0.1") as socket:
        while True:
            frames.append((time.monotonic(), json.loads(await socket.recv())))


def test_the_quick_start_works_as_printed(tmp_path, free_stack_ports):
    """`make run` in one terminal; the second terminal's block pasted twice, a third terminal
    watching the group meanwhile; then the REST API's own examples in the second terminal."""
    first_terminal = commands(readme_block("terminal"))
    assert first_terminal == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # what CI runs
    second, third = readme_block("second terminal"), readme_block("third terminal")
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "REDIS_", "DATABASE_"))
    }  # fmt: skip
    # As in a checkout of its own: the database and the history in a temporary directory.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["DJANGO_WS_LOCAL_HISTORY"] = str(tmp_path / "realtime.db")
    make("stack-stop", env)  # port 8000 is the stack's
    assert not answers(8000)
    log = (tmp_path / "run.log").open("w")
    server = subprocess.Popen(
        shlex.split(first_terminal[0]), cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    watched = tmp_path / "watch.log"
    try:
        wait_for(lambda: answers(8000), 120, "make run did not serve on :8000")
        token = signed_in_token(env)
        ops: list[tuple[float, dict]] = []
        catalog: list[tuple[float, dict]] = []

        async def scenario() -> tuple[list[subprocess.CompletedProcess], float, float]:
            listening = [
                asyncio.create_task(collect(f"{WS}/identity/ws/check/ops/?token={token}", ops)),
                asyncio.create_task(collect(f"{WS}/catalog/ws/", catalog)),
            ]
            await asyncio.sleep(1)
            runs = [await asyncio.to_thread(shell, second, env)]
            with watched.open("w") as output:
                watch = subprocess.Popen(["bash", "-e", "-c", third.text], cwd=ROOT, env=env,
                                         stdout=output, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
            try:
                await asyncio.to_thread(wait_for, lambda: '"hello"' in watched.read_text(), 60,
                                        "the third terminal's watch did not connect")  # fmt: skip
                started = time.monotonic()
                runs.append(await asyncio.to_thread(shell, second, env))  # again, as printed
                done = time.monotonic()
                await asyncio.sleep(1.5)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(watch.pid, signal.SIGINT)  # Ctrl-C
                watch.wait(timeout=30)
            for task in listening:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            return runs, started, done

        runs, started, done = asyncio.run(scenario())
        # The REST API's examples, in the same second terminal.
        later = [(block, shell(block, env)) for block in marked("after the quick start")]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        stop_process(server)
        log.close()
    for result in runs:
        assert result.returncode == 0, result.stdout + result.stderr
        assert '"token"' in result.stdout
        assert "Sent to group ops" in result.stdout
    assert "(admin exists already)" in runs[1].stdout
    messages = [(at, f) for at, f in ops if f["type"] == "message"]
    assert [f["message"] for _, f in messages] == [{"text": "maintenance at 18:00"}] * 2
    imported = [(at, f) for at, f in catalog if f["type"].startswith("item.bulk_")]
    assert any(at > started for at, _ in imported), "the second import reached no socket"
    # Within a second of the command that wrote (the last of them ended at `done`).
    assert max(at for at, _ in messages + imported) < done + 1.0
    heard = [json.loads(line) for line in watched.read_text().splitlines() if line.startswith("{")]
    assert [frame["message"] for frame in heard if frame["type"] == "message"] == [
        {"text": "maintenance at 18:00"}
    ]
    assert later, "docs/rest-api.md lost its examples"
    for block, result in later:
        assert result.returncode == 0, (str(block), result.stdout + result.stderr)


def signed_in_token(env: dict[str, str]) -> str:
    """A user of the test's own, and a token for it, on the `make run` server."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "createsuperuser", "--noinput",
         "--name", "tester", "--email", "tester@example.com"],
        cwd=ROOT, env={**env, "DJANGO_DEBUG": "on", "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    response = httpx.post("http://127.0.0.1:8000/identity/token/", timeout=30,
                          json={"username": "tester", "password": PASSWORD})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_the_docs_stand_alone():
    """README.md and docs/: every relative link leads to a file of the repository, and none
    leads outside it."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        assert "../shared" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{page.name} links outside: {target}"
            assert resolved.exists(), f"{page.name} links to a missing {target}"
