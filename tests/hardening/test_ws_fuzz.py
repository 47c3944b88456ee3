"""
Property-based fuzzing of WebSocket frames through nginx -> daphne: random JSON shapes, deep
nesting, huge strings, arbitrary text, binary and empty frames. Every frame gets exactly one
answer, a valid one or an `error` frame; the socket stays open; the process survives; and
nothing is logged as an unhandled exception. Invalid UTF-8 closes the socket with 1007.
"""

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.stack import DAPHNE_PORTS, LOG, NGINX
from tests.ws import greeted_sync

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"
ANSWERS = {"message", "check.result", "error"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
frames = st.one_of(
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "check", "check.result", "", "x"])},
        optional={
            "message": json_values,
            "id": json_values,
            "resource": st.sampled_from(["user", "item", "category", "planet"]) | st.text(),
            "field": st.sampled_from(["email", "name", "sku", "price", "slug", "uuid"])
            | json_values,
            "value": json_values,
        },
    ).map(json.dumps),
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 200).map(lambda n: json.dumps({"message": "[" * n + "]" * n})),
    st.integers(60_000, 300_000).map(lambda n: json.dumps({"message": "x" * n})),
    st.text(),
    st.binary(),
    st.just(""),
    st.just(b""),
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def answer(socket: ClientConnection, frame: str | bytes) -> dict[str, Any]:
    socket.send(frame)
    reply = json.loads(socket.recv(timeout=10))
    assert reply["type"] in ANSWERS, reply
    if reply["type"] == "error":
        assert reply["code"]
        assert reply["detail"]
    return reply


def still_open(socket: ClientConnection) -> None:
    socket.send('{"type": "check"}')
    assert json.loads(socket.recv(timeout=10))["type"] == "error"


@pytest.fixture(scope="module", autouse=True)
def daphne_log_offsets(stack) -> dict[int, int]:
    """Where each daphne's log stood before these tests: only what they caused is inspected."""
    paths = {port: LOG / f"daphne-{port}.log" for port in DAPHNE_PORTS}
    return {port: path.stat().st_size if path.exists() else 0 for port, path in paths.items()}


def test_check_channel_answers_every_frame(stack):
    url = f"{WS}/identity/ws/check/fuzz/?token={stack.token}"
    with connect(url, origin=ORIGIN, max_size=None) as socket:
        greeted_sync(socket)

        @FUZZ
        @given(frame=frames)
        def one(frame: str | bytes) -> None:
            answer(socket, frame)

        one()
        still_open(socket)


def test_catalog_stream_answers_every_frame_with_an_error(stack):
    with connect(f"{WS}/catalog/ws/", origin=ORIGIN, max_size=None) as socket:
        greeted_sync(socket)

        @FUZZ
        @given(frame=frames)
        def one(frame: str | bytes) -> None:
            assert answer(socket, frame)["type"] == "error"

        one()
        still_open(socket)


def test_invalid_utf8_closes_with_1007_and_the_process_serves_on(stack):
    with connect(f"{WS}/catalog/ws/", origin=ORIGIN) as socket:
        greeted_sync(socket)
        socket.send(b'{"type": "\xc3\x28"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd.code == 1007
    with connect(f"{WS}/catalog/ws/", origin=ORIGIN) as socket:
        greeted_sync(socket)
        still_open(socket)


def test_nothing_was_logged_as_an_unhandled_exception(stack, daphne_log_offsets):
    for port in DAPHNE_PORTS:
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    log = ""
    for port, offset in daphne_log_offsets.items():
        with (LOG / f"daphne-{port}.log").open(errors="replace") as file:
            file.seek(offset)
            log += file.read()
    for marker in ("Traceback", "Exception inside application", "ERROR"):
        assert marker not in log, log[log.find(marker) - 2000 : log.find(marker) + 2000]
