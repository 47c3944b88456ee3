"""
The split stack as operators run it (`make stack`), for tests that drive it from outside, and
helpers for its processes, logs and services. Tests using the `stack` fixture are marked
`stack`; the fixture starts the stack once per session.

The stack runs against a private MariaDB server and a private Redis, each on a free port, which
a test may stop and start again without disturbing the rest of the suite.
"""

import base64
import contextlib
import fcntl
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.live import PrivateRedis, answers, free_port, listening, stop_process

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "var" / "run"
LOG = ROOT / "var" / "log"
STACK_DB = "myproject_stack_test"
DAPHNE_PORTS = (8080, 8081)
STACK_PORTS = (8088, 8000, 8001, *DAPHNE_PORTS)
NGINX = "http://127.0.0.1:8088"
ADMIN_NAME = "stackadmin"
ADMIN_PASSWORD = "stack-Admin-secret-42"
# Machine-wide: any checkout's test session that runs the stack takes it first.
STACK_LOCK = Path("/tmp/myproject-stack.lock")
ORIGIN = "http://localhost"


def metric(base: str, name: str, **labels: str) -> float:
    """A sample's value from `base`/metrics (0 when absent)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def raw_socket_that_never_reads(port: int, path: str) -> socket.socket:
    """A WebSocket handshake by hand, with a tiny receive buffer, and then not one read more:
    what daphne sends it piles up on daphne's side."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
    )
    raw.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return raw


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address (127.0.0.2, ...)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def login(name: str, password: str, address: str = "127.0.0.9") -> str:
    """A token for `name` through nginx, from an address of its own: the login throttle
    (10/min per address) is for attackers, not for the suite's many logins."""
    with from_address(address) as client:
        response = client.post(
            f"{NGINX}/identity/token/", json={"username": name, "password": password}
        )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def new_category(stack: "Stack", prefix: str) -> str:
    """A category of one's own on the stack (through nginx); its uuid."""
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    response = httpx.post(f"{NGINX}/catalog/categories/", headers=stack.auth, timeout=30,
                          json={"name": slug, "slug": slug})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["uuid"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def new_item(stack: "Stack", category: str) -> Callable[[httpx.Client], httpx.Response]:
    """A request that creates an item in `category` on the stack (through nginx)."""

    def send(client: httpx.Client) -> httpx.Response:
        sku = f"ITEM-{uuid.uuid4().hex[:12]}"
        return client.post(f"{NGINX}/catalog/items/", headers=stack.auth,
                           json={"sku": sku, "name": "item", "price": "1.00", "stock": 1,
                                 "category": category})  # fmt: skip

    return send


class PrivateMariaDB:
    """A throwaway MariaDB server (its own data directory and port), so that a test may stop
    and restart the stack's database without touching the one the rest of the suite uses."""

    def __init__(self) -> None:
        for tool in ("mariadb-install-db", "mariadbd"):
            if not (shutil.which(tool) or Path("/usr/sbin", tool).exists()):
                pytest.fail(f"{tool} is not installed (`make test` installs mariadb-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="myproject-mariadb-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        user = ["--user=" + getpass.getuser()]
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.dir / 'data'}", *user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.command = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", *user,
            f"--datadir={self.dir / 'data'}", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.dir / 'mysqld.sock'}", f"--pid-file={self.dir / 'mysqld.pid'}",
            f"--log-error={self.dir / 'error.log'}", "--skip-log-bin",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=128M", "--max-connections=500",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{STACK_DB}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not listening(self.proc, self.port, 30):
            pytest.fail(f"mariadbd did not start on port {self.port}: see {self.dir}/error.log")

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Stack:
    env: dict[str, str]
    redis: PrivateRedis
    mariadb: PrivateMariaDB
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

    def manage(self, *args: str, **env: str) -> str:
        """`manage.py ARGS` on the stack's database and Redis; its output."""
        return manage(self.env, *args, **env)

    def publish(self, topic: str, count: int, filler: int = 0) -> None:
        """`count` message frames `{"n": n, "x": <filler characters>}` on `topic`, published
        at once on the stack's own broker, in batches as a relay publishes them."""
        code = (
            "from myproject.realtime.broker import Outgoing, broker\n"
            "from myproject.realtime.publish import message\n"
            f"frames = [Outgoing({topic!r}, message({{'n': n, 'x': 'x' * {filler}}}, None))"
            f" for n in range({count})]\n"
            "for start in range(0, len(frames), 200):\n"
            "    broker().publish(frames[start:start + 200])\n"
        )
        self.manage("shell", "-c", code)

    def forget_throttles(self) -> None:
        """Clear every throttle's counts (failed logins included) in the stack's Redis: tests
        that trip them on purpose call this so that later tests do not inherit them."""
        client = redis.Redis(port=self.redis.port)
        for key in client.scan_iter(match="*throttle_*"):
            client.delete(key)
        client.close()


@dataclass
class Account:
    """A user of the running stack, signed in."""

    uuid: str
    name: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return auth(self.token)


ACCOUNT_PASSWORD = "account-User-secret-42"


def new_account(
    stack: Stack, prefix: str, *, address: str, staff: bool = False, superuser: bool = False
) -> Account:
    """A new user (staff, or a superuser, if asked), signed in from `address`: one address per
    test file keeps the login limits of one file out of the others'."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    if superuser:
        stack.manage("createsuperuser", "--noinput", "--name", name, "--email",
                     f"{name}@example.com", DJANGO_SUPERUSER_PASSWORD=ACCOUNT_PASSWORD)  # fmt: skip
        found = httpx.get(f"{NGINX}/identity/users/", params={"search": name},
                          headers=stack.auth, timeout=30).json()["results"]  # fmt: skip
        user_id = next(user["uuid"] for user in found if user["name"] == name)
    else:
        response = httpx.post(
            f"{NGINX}/identity/users/", headers=stack.auth, timeout=30,
            json={"name": name, "email": f"{name}@example.com", "password": ACCOUNT_PASSWORD,
                  "is_staff": staff},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        user_id = response.json()["uuid"]
    return Account(user_id, name, ACCOUNT_PASSWORD, login(name, ACCOUNT_PASSWORD, address))


def manage(env: dict[str, str], *args: str, **extra: str) -> str:
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=ROOT, env={**env, "DJANGO_SECRET_KEY": "stack-test-manage", **extra},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@dataclass
class Traffic:
    """Requests sent in a loop from threads until stopped; what came back, and how fast."""

    results: list[tuple[float, int, float, str]] = field(
        default_factory=list
    )  # at, status, s, body (its first 300 characters)
    stop: threading.Event = field(default_factory=threading.Event)

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> list[int]:
        return [status for at, status, _, _ in self.results if since <= at <= until]


@contextlib.contextmanager
def traffic(send: Callable[[httpx.Client], httpx.Response], threads: int = 2) -> Iterator[Traffic]:
    """`send` in a loop from `threads` threads, each with a client of its own, until the block
    ends (or `stop` is set)."""
    record = Traffic()

    def loop() -> None:
        with httpx.Client(timeout=30) as client:
            while not record.stop.is_set():
                started = time.monotonic()
                try:
                    response = send(client)
                    status, body = response.status_code, response.text[:300]
                except httpx.HTTPError as exc:
                    status, body = 0, repr(exc)
                record.results.append((started, status, time.monotonic() - started, body))
                time.sleep(0.1)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield record
    finally:
        record.stop.set()
        for worker in workers:
            worker.join(60)


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


def daphne_started() -> float:
    """When the most recently (re)started daphne of the stack was started (its pid file)."""
    return max((RUN / f"daphne-{port}.pid").stat().st_mtime for port in DAPHNE_PORTS)


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


@contextlib.contextmanager
def stack_lock() -> Iterator[None]:
    """The stack's fixed ports (8088, 8000, 8001, 8080, 8081), held through a machine-wide lock:
    two test sessions (a developer's and CI's, say, or a benchmark run) take turns rather than
    stopping each other's servers."""
    with STACK_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def stack_ports() -> Iterator[None]:
    """The stack's ports, for the rest of the session (`stack_lock`)."""
    with stack_lock():
        yield


@pytest.fixture(scope="session")
def stack(stack_ports: None) -> Iterator[Stack]:
    """The split stack, started once for the session by `make stack`, stopped at the end (or
    earlier, by `stop_stack`)."""
    with started_stack() as running:
        yield running


# How to stop the session's stack, while it runs.
_teardowns: list[contextlib.ExitStack] = []


def stop_stack() -> None:
    """Stop the session's stack now, if it runs: the stack on the replicated stores
    (tests/deploy/test_ha.py, run after every other stack test) needs its ports."""
    while _teardowns:
        _teardowns.pop().close()


@pytest.fixture
def free_stack_ports(stack_ports: None) -> None:
    """The stack's ports for a test that serves on them itself (`make run`, honcho): such tests
    run before the session's stack starts (marker `before_stack`); stopping it here would
    leave every later stack test without one."""
    if _teardowns:
        pytest.fail("the session's stack already runs: mark the test `before_stack`")


def stack_env() -> dict[str, str]:
    """The environment for `make stack`: it brings its own production settings and secret key
    (generated into var/)."""
    env = dict(os.environ)
    for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_HTTPS", "DJANGO_NUM_PROXIES"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def started_stack(**extra: str) -> Iterator[Stack]:
    """`make stack` on a private MariaDB and Redis, with a superuser signed in, until the block
    ends; `extra` on top of its environment (the benchmarks turn the limits off). The caller
    holds `stack_lock`."""
    redis, mariadb = PrivateRedis(), PrivateMariaDB()
    # DJANGO_EXAMPLES: the consumers of docs/consumers.md, which tests drive on the stack too.
    env = {**stack_env(), "DATABASE_URL": mariadb.url, "REDIS_URL": redis.url,
           "DJANGO_EXAMPLES": "on", **extra}  # fmt: skip
    # A stack left behind by an interrupted run would hold the ports.
    make("stack-stop", env)
    busy = [port for port in STACK_PORTS if answers(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use by something other than the stack")
    teardown = contextlib.ExitStack()
    _teardowns.append(teardown)
    with teardown:  # last in, first out: the stack, then its Redis and MariaDB
        teardown.callback(mariadb.remove)
        redis.start()
        teardown.callback(redis.stop)
        mariadb.start()
        teardown.callback(make, "stack-stop", env)
        make("stack", env)
        manage(env, "createsuperuser", "--noinput", "--name", ADMIN_NAME, "--email",
               f"{ADMIN_NAME}@example.com", DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD)  # fmt: skip
        response = httpx.post(
            f"{NGINX}/identity/token/",
            json={"username": ADMIN_NAME, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        yield Stack(env=env, redis=redis, mariadb=mariadb, token=response.json()["token"])
