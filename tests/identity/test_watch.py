"""`manage.py watch` (identity/management/commands/watch.py) against a real daphne: it hears
what the group's sockets hear, connects as a browser would (Origin) and as the user it is told,
and deletes the token it made for that."""

import json
import subprocess
import time

import pytest

from identity.models import Token
from tests.factories import UserFactory
from tests.live import ROOT, daphne, server_env
from tests.stack import manage

pytestmark = pytest.mark.django_db(transaction=True)

PYTHON = str(ROOT / ".venv" / "bin" / "python")


def test_watch_prints_what_the_groups_sockets_hear_as_the_user_it_is_told():
    user = UserFactory(name="watcher")
    env = server_env()
    with daphne(env) as base:
        watching = subprocess.Popen(
            [PYTHON, "manage.py", "watch", "/identity/ws/check/ops/", "--as", "watcher",
             "--server", base, "--seconds", "6"],
            cwd=ROOT, env={**env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not Token.objects.filter(user=user).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # connected
        manage(env, "broadcast", "ops", '{"text": "hello"}')
        out, err = watching.communicate(timeout=20)
    frames = [json.loads(line) for line in out.splitlines()]
    assert frames[0]["type"] == "hello", err
    assert any(f["type"] == "message" and f["message"] == {"text": "hello"} for f in frames)
    assert not Token.objects.filter(user=user).exists()  # its token is gone with it


def test_watch_says_why_it_cannot_watch():
    UserFactory(name="watcher")
    with daphne(server_env()) as base:
        refused = subprocess.run(
            [PYTHON, "manage.py", "watch", "/identity/ws/check/ops/", "--server", base,
             "--seconds", "2"],  # no --as: the check channel wants a user
            cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert refused.returncode == 1
    assert "refused the handshake (403)" in refused.stderr
