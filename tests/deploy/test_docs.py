"""
Every code block of README.md and docs/ is run or checked by a test, as printed (tests/docs.py
lists the markers that say which). This module owns the checks no other test does: the file
excerpts, and the WebSocket conversations of docs/websocket.md, replayed against the stack.

A conversation's lines: `> frame` is what the client sends (as text, exactly), `< frame` what it
must receive next, `METHOD /path {json}` a REST request made meanwhile as staff, `= status
{json}` what that request must answer (the keys printed, among others). A letter before `>` or
`<` names one of several sockets of the same user. What the server chooses (epochs, uuids,
times) is learnt from its first appearance and must then be the same everywhere the docs
print it; each topic's `seq` is printed at an offset from the real one, the same offset in
every frame of the topic.
"""

import contextlib
import json
import re
import shlex
import subprocess
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.docs import ROOT, Block, blocks, commands, marked
from tests.stack import NGINX, login

KINDS = {"terminal", "second terminal", "third terminal", "after the quick start", "honcho",
         "file", "ws", "shell", "bench", "figure"}  # fmt: skip
WEBSOCKET = ROOT / "docs" / "websocket.md"
WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
POSITION = re.compile(r"\b(?P<epoch>[A-Za-z0-9_-]{1,32}):(?P<seq>\d+)\b")
SOCKET_LINE = re.compile(r"^(?P<who>[a-z]?)(?P<direction>[<>]) (?P<body>.*)$")
REST_LINE = re.compile(r"^(?P<method>GET|POST|PUT|PATCH|DELETE) (?P<path>\S+)(?: (?P<body>.*))?$")
ANSWER_LINE = re.compile(r"^= (?P<status>\d{3})(?: (?P<body>.*))?$")
SIZED = re.compile(r"^\((?P<size>\d+) characters\)$")
# The user the conversations sign in as (the check channel needs one).
READER, READER_PASSWORD = "ann", "docs-Reader-secret-42"


def test_every_block_says_which_test_runs_it():
    unmarked = [f"{block} ({block.marker})" for block in blocks() if block.kind not in KINDS]
    assert unmarked == [], "blocks no test runs: " + ", ".join(unmarked)


@pytest.mark.parametrize("block", marked("file"), ids=str)
def test_file_excerpts_are_verbatim(block: Block):
    assert block.text in (ROOT / block.argument).read_text(), f"{block} is not in {block.argument}"


@pytest.mark.parametrize("block", marked("bench"), ids=str)
def test_the_bench_commands_are_ones_make_bench_takes(block: Block):
    """A full `make bench` takes half an hour alone on the machine: not part of the suite. Each
    line must still be one `make bench` runs as printed: its make recipe, and arguments that
    bench.run's own parser accepts (`--help` last: parsed, then nothing run)."""
    for line in commands(block):
        if line.startswith("make "):
            planned = subprocess.run([*shlex.split(line), "-n"], cwd=ROOT, capture_output=True,
                                     text=True, timeout=60)  # fmt: skip
            assert planned.returncode == 0, planned.stderr
            run = next(step for step in planned.stdout.splitlines() if "-m bench.run" in step)
            line = run.strip()
        words = shlex.split(line)
        assert words[:3] == [".venv/bin/python", "-m", "bench.run"], line
        checked = subprocess.run([str(ROOT / ".venv/bin/python"), *words[1:], "--help"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert checked.returncode == 0, f"{block}: {line}: {checked.stderr}"


# --- conversations ---------------------------------------------------------------------------


class Learnt:
    """What the server chose, by what the docs print in its place."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.offsets: dict[str, int] = {}  # topic -> real seq - printed seq
        self.topics: dict[str, str] = {}  # printed epoch -> topic

    def same(self, printed: Any, actual: Any, where: str) -> None:
        """`actual` is what the docs print as `printed` (learning what it must)."""
        if isinstance(printed, dict):
            assert isinstance(actual, dict), (where, printed, actual)
            assert sorted(printed) == sorted(actual), (where, printed, actual)
            if "seq" in printed and "topic" in actual:
                self.offset(actual["topic"], actual["seq"] - printed["seq"], where)
                if "epoch" in printed:
                    self.topics[printed["epoch"]] = actual["topic"]
            for key, value in printed.items():
                if key != "seq" or "topic" not in actual:
                    self.same(value, actual[key], f"{where}.{key}" if key != "epoch" else "epoch")
        elif isinstance(printed, list):
            assert isinstance(actual, list), (where, printed, actual)
            assert len(printed) == len(actual), (where, printed, actual)
            for n, (one, other) in enumerate(zip(printed, actual, strict=True)):
                self.same(one, other, f"{where}[{n}]")
        elif isinstance(printed, str) and TIME.fullmatch(printed):
            assert isinstance(actual, str), (where, actual)
            assert TIME.fullmatch(actual), (where, actual)
        elif isinstance(printed, str) and (UUID.fullmatch(printed) or where == "epoch"):
            learnt = self.values.setdefault(printed, actual)
            assert learnt == actual, f"{where}: {printed} stands for {learnt}, here {actual}"
        else:
            assert printed == actual, (where, printed, actual)

    def offset(self, topic: str, offset: int, where: str) -> None:
        learnt = self.offsets.setdefault(topic, offset)
        assert learnt == offset, f"{where}: seq off by {offset - learnt} from the printed one"

    def fill(self, text: str) -> str:
        """`text` with what the server chose in place of what the docs print."""

        def position(match: re.Match) -> str:
            topic = self.topics.get(match["epoch"])
            if topic is None:
                return match[0]
            return f"{self.values[match['epoch']]}:{int(match['seq']) + self.offsets[topic]}"

        text = POSITION.sub(position, text)
        return UUID.sub(lambda match: self.values.get(match[0], match[0]), text)


class Conversation:
    """One block of docs/websocket.md, replayed."""

    def __init__(self, block: Block, learnt: Learnt, token: str, staff: dict[str, str]) -> None:
        self.block, self.learnt, self.token, self.staff = block, learnt, token, staff
        self.sockets: dict[str, ClientConnection] = {}
        self.opened = contextlib.ExitStack()
        self.last: httpx.Response | None = None

    def socket(self, who: str) -> ClientConnection:
        if who not in self.sockets:
            route = self.learnt.fill(self.block.argument)
            joiner = "&" if "?" in route else "?"
            url = f"{WS}{route}{joiner}token={self.token}" if "/ws/check/" in route else WS + route
            self.sockets[who] = self.opened.enter_context(
                connect(url, origin=ORIGIN, open_timeout=10)
            )
        return self.sockets[who]

    def run(self) -> None:
        with self.opened:
            for number, line in enumerate(self.block.text.splitlines()):
                if line.strip():
                    self.step(line, f"{self.block.path.name}:{self.block.line + 1 + number}")
            for who, socket in self.sockets.items():  # nothing more was said
                try:
                    extra = socket.recv(timeout=0.3)
                except TimeoutError:
                    continue
                pytest.fail(f"{self.block}: socket {who or 'a'} also got {extra}")

    def step(self, line: str, where: str) -> None:
        if found := SOCKET_LINE.match(line):
            socket = self.socket(found["who"])
            if found["direction"] == ">":
                socket.send(self.payload(found["body"]))
            else:
                got = json.loads(socket.recv(timeout=10))
                self.learnt.same(json.loads(found["body"]), got, where)
        elif found := REST_LINE.match(line):
            body = json.loads(self.learnt.fill(found["body"])) if found["body"] else None
            self.last = httpx.request(found["method"], NGINX + self.learnt.fill(found["path"]),
                                      json=body, headers=self.staff, timeout=30)  # fmt: skip
        elif found := ANSWER_LINE.match(line):
            assert self.last is not None, f"{where}: an answer to no request"
            assert self.last.status_code == int(found["status"]), (where, self.last.text)
            if found["body"]:
                printed, actual = json.loads(found["body"]), self.last.json()
                self.learnt.same(printed, {key: actual.get(key) for key in printed}, where)
        else:
            pytest.fail(f"{where}: not a line of a conversation: {line}")

    def payload(self, body: str) -> str | bytes:
        if body == "(binary)":
            return b"\x00"
        if sized := SIZED.match(body):
            return "x" * int(sized["size"])
        return self.learnt.fill(body)


@pytest.fixture
def reader(stack) -> str:
    """The token of the user the conversations sign in as."""
    account = {"name": READER, "email": "ann@example.com", "password": READER_PASSWORD}
    httpx.post(f"{NGINX}/identity/users/", headers=stack.auth, json=account, timeout=30)
    return login(READER, READER_PASSWORD, "127.0.0.61")


def test_the_websocket_conversations_happen_as_printed(stack, reader):
    learnt = Learnt()
    conversations = marked("ws", WEBSOCKET)
    assert len(conversations) >= 4
    for block in conversations:
        Conversation(block, learnt, reader, stack.auth).run()


def test_the_shell_examples_reach_the_group_as_printed(stack, reader):
    """A `shell: GROUP` block ends with `# ... gets <frame>`: what a socket of GROUP hears."""
    blocks_ = marked("shell")
    assert blocks_
    for block in blocks_:
        group = block.argument
        expected = block.text.rstrip().rsplit(" gets ", 1)[1]
        with connect(f"{WS}/identity/ws/check/{group}/?token={reader}", origin=ORIGIN) as socket:
            assert json.loads(socket.recv(timeout=10))["type"] == "hello"
            stack.manage("shell", "-c", block.text)
            assert json.loads(socket.recv(timeout=10)) == json.loads(expected), block
