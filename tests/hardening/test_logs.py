"""
What a client can make the stack's logs say, through nginx and on uWSGI's own HTTP port (8000):
a `%0a` in a path wrote a line of its choosing into uWSGI's request log (which wrote the decoded
PATH_INFO) and daphne's log (a refused handshake's path); no line may start with what a client
chose, and no query string (`?token=`, `?ticket=`) may reach any log.
"""

import uuid
from urllib.parse import quote

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync

from tests.stack import DAPHNE_PORTS, LOG, NGINX, wait_for

pytestmark = pytest.mark.stack

UWSGI = "http://127.0.0.1:8000"
SECRET = "logged-secret-0123456789"
LOGS = ["uwsgi.log", *(f"daphne-{port}.log" for port in DAPHNE_PORTS), "nginx-access.log"]


async def refused(url: str) -> int:
    try:
        async with websockets.connect(url, origin="http://localhost") as socket:
            await socket.close()
            return 101
    except websockets.InvalidStatus as refusal:
        return refusal.response.status_code


def read(name: str) -> str:
    return (LOG / name).read_text(errors="replace")


def test_a_line_break_in_a_path_writes_no_line_of_its_own_in_any_log(stack):
    marker = uuid.uuid4().hex
    forged = f"127.0.0.1 [01/Jan/1999:00:00:00 +0000] 'GET /{marker} HTTP/1.1' 200 0 0ms"
    line_break = quote("\n" + forged)
    query = {"token": SECRET, "ticket": SECRET}
    for base in (NGINX, UWSGI):
        response = httpx.get(f"{base}/identity/nowhere{line_break}/", params=query, timeout=10)
        assert response.status_code == 404
    url = f"{NGINX.replace('http', 'ws')}/identity/ws/check/room{line_break}/?token={SECRET}"
    assert async_to_sync(refused)(url) == 403
    # uWSGI's request log has both requests, daphne's log the handshake, each path escaped.
    escaped = "\\n" + forged
    request = f'"GET /identity/nowhere{escaped}/ HTTP/1.1"'
    wait_for(lambda: read("uwsgi.log").count(request) == 2, 10,
             "uWSGI's request log does not show both requests, escaped")  # fmt: skip
    wait_for(lambda: any(f"room{escaped}/" in read(name) for name in LOGS[1:3]), 10,
             "daphne did not log the refused handshake's path, escaped")  # fmt: skip
    for name in LOGS:
        text = read(name)
        assert not [line for line in text.splitlines() if line.startswith(forged[:30])], name
        assert SECRET not in text, f"a query string reached {name}"
