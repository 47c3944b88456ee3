"""
Logs hold one line per record and no secret, whatever a client sends. Tried through a real
uWSGI and a real daphne (which serves everything under `make run`), in both log formats:

- a `%0a` in a path (decoded by the server) wrote a line of the client's choosing: in the text
  format, a record with its timestamp; in the json format, a whole JSON record. Every logged
  path is escaped: Django's 404 warning, a refused WebSocket handshake, a path no route serves.
- the json format wrote django.request's `request` extra, whose repr carries the query string:
  `?token=`, `?ticket=`. No token, ticket, session key or password reaches a log.
"""

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync

from tests.live import daphne, server_env, uwsgi

pytestmark = pytest.mark.django_db(transaction=True)

FORGED = {
    "text": "2026-01-01 00:00:00,000 CRITICAL forged [-] forged by a client",
    "json": '{"time": "2026", "level": "CRITICAL", "logger": "forged", "message": "forged"}',
}
SECRETS = {
    "token": "TOKENSECRET0123456789abcdef",
    "ticket": "TICKETSECRET0123456789",
    "session": "sessionsecret0123456789abcdefghi",
    "password": "PasswordSecret-0123",
}
SERVERS = {"uwsgi": uwsgi, "daphne": daphne}
Served = tuple[str, str, Callable[[], str]]


def serve(server: str, fmt: str, log) -> Iterator[Served]:
    with SERVERS[server](server_env(DJANGO_LOG_FORMAT=fmt), log=log) as base:
        yield base, fmt, lambda: (time.sleep(0.5), log.read_text(errors="replace"))[1]


@pytest.fixture(params=[(server, fmt) for server in SERVERS for fmt in FORGED], ids="-".join)
def served(request, tmp_path) -> Iterator[Served]:
    """A real server in one log format: its base URL, the format, and its log so far."""
    yield from serve(*request.param, tmp_path / "server.log")


@pytest.fixture(params=list(FORGED))
def daphne_served(request, tmp_path) -> Iterator[Served]:
    yield from serve("daphne", request.param, tmp_path / "daphne.log")


def messages(log: str, fmt: str) -> list[str]:
    """The messages of the Python log records in `log` (text: every line)."""
    if fmt == "text":
        return log.splitlines()
    return [json.loads(line)["message"] for line in log.splitlines() if line.startswith("{")]


def assert_no_forged_line(log: str, fmt: str) -> None:
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith(FORGED[fmt][:24])], log[-3000:]
    if fmt == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert "forged" not in {record.get("logger") for record in records}


def handshake(url: str) -> int:
    """The HTTP status a WebSocket handshake gets (101: accepted)."""

    async def attempt() -> int:
        try:
            async with websockets.connect(url, origin="http://localhost") as socket:
                await socket.close()
                return 101
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    return async_to_sync(attempt)()


def test_a_line_break_in_a_path_writes_no_line_of_its_own(served):
    base, fmt, log = served
    forged = quote("\n" + FORGED[fmt] + "\r\n")
    assert httpx.get(f"{base}/identity/nowhere{forged}/", timeout=10).status_code == 404
    text = log()
    assert any("Not Found: /identity/nowhere\\n" in line for line in messages(text, fmt))
    assert_no_forged_line(text, fmt)


def test_a_line_break_in_a_websocket_path_writes_no_line_of_its_own(daphne_served):
    base, fmt, log = daphne_served
    ws = base.replace("http", "ws")
    forged = quote("\n" + FORGED[fmt])
    assert handshake(f"{ws}/identity/ws/check/room{forged}/") == 403  # no such group name
    assert handshake(f"{ws}/identity/ws/nowhere{forged}/") == 403  # no such route
    text = log()
    logged = messages(text, fmt)
    assert any("handshake refused on /identity/ws/check/room\\n" in line for line in logged)
    assert any("no route /identity/ws/nowhere\\n" in line for line in logged)
    assert_no_forged_line(text, fmt)


def test_no_token_ticket_session_key_or_password_reaches_a_log(served):
    base, _, log = served
    sent = {"params": {"token": SECRETS["token"], "ticket": SECRETS["ticket"]},
            "headers": {"Cookie": f"sessionid={SECRETS['session']}"}, "timeout": 10}  # fmt: skip
    # A connection per request: uWSGI's HTTP router closes each after its response.
    assert httpx.get(f"{base}/identity/nowhere/", **sent).status_code == 404
    assert httpx.get(f"{base}/identity/users/", **sent).status_code == 401
    login = {"username": "nobody", "password": SECRETS["password"]}
    assert httpx.post(f"{base}/identity/token/", json=login, **sent).status_code == 400
    text = log()
    assert "Not Found: /identity/nowhere/" in text
    assert not [name for name, secret in SECRETS.items() if secret in text], text[-3000:]


def test_no_token_or_ticket_of_a_refused_handshake_reaches_a_log(daphne_served):
    base, _, log = daphne_served
    ws = base.replace("http", "ws")
    assert handshake(f"{ws}/identity/ws/check/room/?token={SECRETS['token']}") == 403
    assert handshake(f"{ws}/identity/ws/check/room/?ticket={SECRETS['ticket']}") == 403
    text = log()
    assert "handshake refused on /identity/ws/check/room/" in text
    assert SECRETS["token"] not in text
    assert SECRETS["ticket"] not in text


def test_a_traceback_follows_its_record_indented_and_escaped():
    """An exception's message may quote what a client sent (a database error quotes the
    duplicate value): in the text format, no line of a traceback starts like a record."""
    from myproject.logs import Redact, TextFormatter

    try:
        raise ValueError(f"Duplicate entry 'x\n{FORGED['text']}'")
    except ValueError:
        record = logging.makeLogRecord({
            "name": "myproject", "levelname": "ERROR", "msg": "integrity error: %s",
            "args": ("x\x1b[31m\u2028y",), "exc_info": sys.exc_info(),
        })  # fmt: skip
    assert Redact().filter(record)
    lines = TextFormatter("%(levelname)s %(message)s").format(record).split("\n")
    assert lines[0] == "ERROR integrity error: x\\x1b[31m\\u2028y"
    assert lines[1] == "    Traceback (most recent call last):"
    assert all(line.startswith("    ") for line in lines[1:])
    assert lines[-2:] == ["    ValueError: Duplicate entry 'x", f"    {FORGED['text']}'"]
