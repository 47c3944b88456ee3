"""
Channels' channel layer on the running stack, across its two daphne processes, through nginx:
the seed's consumer pattern (docs/consumers.md, sync and async) and `group_send` from a uWSGI
view and a management command; the check channel's signals and presence, and the members of a
daphne killed outright leaving within 30 seconds.
"""

import contextlib
import json
import os
import signal
import time
import uuid

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.stack import DAPHNE_PORTS, NGINX, new_account, pid_file

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"


def frames(socket: ClientConnection, wanted: int, timeout: float = 10) -> list[dict]:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < wanted:
        got.append(json.loads(socket.recv(timeout=max(0.05, deadline - time.monotonic()))))
    return got


def of_type(socket: ClientConnection, type_: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.05, deadline - time.monotonic())))
        if frame.get("type") == type_:
            return frame


def test_the_seeds_consumer_sync_and_async_across_both_daphnes(stack):
    """A chat room of the docs' consumers: sockets through nginx (spread over both daphne
    processes) and one straight to each, sync and async alike, all hear every message."""
    room = f"room-{uuid.uuid4().hex[:8]}"
    token = stack.token
    urls = [f"{WS}/examples/ws/{kind}/{room}/?token={token}" for kind in ("chat", "async-chat")] * 3
    urls += [f"ws://127.0.0.1:{port}/examples/ws/async-chat/{room}/?token={token}"
             for port in DAPHNE_PORTS]  # fmt: skip
    with contextlib.ExitStack() as opened:
        sockets = [opened.enter_context(connect(url, origin=ORIGIN)) for url in urls]
        time.sleep(0.5)  # every socket in the group
        sockets[0].send(json.dumps({"text": "from a sync socket"}))
        sockets[-1].send(json.dumps({"text": "from an async one"}))
        for socket in sockets:
            texts = sorted(frame["text"] for frame in frames(socket, 2))
            assert texts == ["from a sync socket", "from an async one"]
        # From outside any consumer: a uWSGI view, then a management command.
        response = httpx.post(f"{NGINX}/examples/announce/{room}/", json={"text": "from a view"},
                              headers=stack.auth, timeout=10)  # fmt: skip
        assert response.status_code == 202, response.text
        refused = httpx.post(f"{NGINX}/examples/announce/{room}/", json=[None, None],
                             headers=stack.auth, timeout=10)  # fmt: skip
        assert refused.status_code == 400, refused.text  # not an object: nothing announced
        stack.manage("announce", room, "from a command")
        for socket in sockets:
            got = frames(socket, 2)
            assert [(f["text"], f["sender"]) for f in got] == [
                ("from a view", None), ("from a command", None),
            ]  # fmt: skip


def test_signals_and_presence_span_both_daphne_processes(stack):
    ann = new_account(stack, "ann", address="127.0.0.51")
    bob = new_account(stack, "bob", address="127.0.0.51")
    group = f"sheet-{uuid.uuid4().hex[:8]}"
    url = "ws://127.0.0.1:{port}/identity/ws/check/" + group + "/?token={token}"
    with connect(url.format(port=DAPHNE_PORTS[0], token=ann.token), origin=ORIGIN) as on_one:
        assert json.loads(on_one.recv(timeout=10))["type"] == "hello"
        on_one.send(json.dumps({"type": "presence"}))  # answered once she is in the group
        assert [m["name"] for m in of_type(on_one, "presence")["members"]] == [ann.name]
        with connect(url.format(port=DAPHNE_PORTS[1], token=bob.token), origin=ORIGIN) as on_two:
            assert json.loads(on_two.recv(timeout=10))["type"] == "hello"
            joined = of_type(on_one, "presence.joined")  # bob came, on the other process
            assert joined["member"] == {"uuid": bob.uuid, "name": bob.name}
            on_two.send(json.dumps({"type": "presence"}))
            members = of_type(on_two, "presence")["members"]
            assert sorted(m["name"] for m in members) == sorted([ann.name, bob.name])
            on_one.send(json.dumps({"type": "signal", "event": "editing", "payload": {"row": 7}}))
            signal_ = of_type(on_two, "signal")
            assert signal_ == {"type": "signal", "event": "editing", "payload": {"row": 7},
                               "sender": ann.uuid}  # fmt: skip
            stack.manage("shell", "-c", (
                "from asgiref.sync import async_to_sync\n"
                "from channels.layers import get_channel_layer\n"
                f"async_to_sync(get_channel_layer().group_send)({group!r}, "
                "{'type': 'signal', 'event': 'notice', 'payload': 'hi'})\n"
            ))  # fmt: skip
            for socket in (on_one, on_two):
                notice = of_type(socket, "signal")
                assert (notice["event"], notice["sender"]) == ("notice", None)
        left = of_type(on_one, "presence.left")  # bob's only socket closed
        assert left["member"] == {"uuid": bob.uuid, "name": bob.name}


def test_the_members_of_a_killed_daphne_leave_within_30_seconds(stack):
    ann = new_account(stack, "ann", address="127.0.0.52")
    bob = new_account(stack, "bob", address="127.0.0.52")
    group = f"crash-{uuid.uuid4().hex[:8]}"
    url = "ws://127.0.0.1:{port}/identity/ws/check/" + group + "/?token={token}"
    with (
        connect(url.format(port=DAPHNE_PORTS[0], token=ann.token), origin=ORIGIN) as watcher,
        contextlib.ExitStack() as later,
    ):
        watcher.send(json.dumps({"type": "presence"}))  # answered once she is in the group
        of_type(watcher, "presence")
        later.callback(stack.script, "restart-daphne", str(DAPHNE_PORTS[1]))
        later.enter_context(
            connect(url.format(port=DAPHNE_PORTS[1], token=bob.token), origin=ORIGIN)
        )
        assert of_type(watcher, "presence.joined")["member"]["uuid"] == bob.uuid
        os.kill(pid_file(f"daphne-{DAPHNE_PORTS[1]}"), signal.SIGKILL)  # says nothing
        killed_at = time.monotonic()
        left = of_type(watcher, "presence.left", timeout=35)
        assert left["member"] == {"uuid": bob.uuid, "name": bob.name}
        assert time.monotonic() - killed_at < 30
