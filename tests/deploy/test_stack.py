"""
The production shape through real processes: nginx :8088 in front of uWSGI :8000 and two
daphne processes (:8080, :8081), started by `make stack` and driven only from outside. The
tests run in file order; the last one stops the stack and checks that nothing is left behind.
"""

import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.live import alive, children
from tests.stack import (
    ADMIN_NAME,
    DAPHNE_PORTS,
    LOG,
    NGINX,
    ROOT,
    RUN,
    STACK_PORTS,
    answers,
    from_address,
    make,
    pid_file,
    wait_for,
)

pytestmark = pytest.mark.stack

UWSGI = "http://127.0.0.1:8000"
DAPHNES = [f"http://127.0.0.1:{port}" for port in DAPHNE_PORTS]
MiB = 1024 * 1024


def uwsgi_workers() -> list[int]:
    return children(pid_file("uwsgi"))


def log_text(name: str) -> str:
    path = LOG / name
    return path.read_text(errors="replace") if path.exists() else ""


def current_logs() -> dict[str, str]:
    """Every log file of the current run (the previous run's are *.log.1)."""
    return {path.name: path.read_text(errors="replace") for path in LOG.glob("*.log")}


def test_rest_through_nginx_reaches_uwsgi(stack):
    users = httpx.get(f"{NGINX}/identity/users/", headers=stack.auth, timeout=30)
    assert users.status_code == 200, users.text
    assert users.headers["server"] == "nginx"
    assert ADMIN_NAME in [user["name"] for user in users.json()["results"]]
    count = users.json()["count"]

    batch = [{"name": f"bulk-{i}", "email": f"bulk-{i}@example.com"} for i in range(3)]
    created = httpx.post(f"{NGINX}/identity/users/", json=batch, headers=stack.auth, timeout=30)
    assert created.status_code == 201, created.text
    assert [user["name"] for user in created.json()] == ["bulk-0", "bulk-1", "bulk-2"]
    after = httpx.get(f"{NGINX}/identity/users/", headers=stack.auth, timeout=30)
    assert after.json()["count"] == count + 3

    # uWSGI served it, and saw nginx's address for the client, not its own socket.
    wait_for(
        lambda: re.search(r'^127\.0\.0\.1 .*"POST /identity/users/ HTTP/1\.[01]" 201',
                          log_text("uwsgi.log"), re.M) is not None,
        5, "uWSGI's request log has no line for the bulk POST",
    )  # fmt: skip
    anonymous = httpx.get(f"{NGINX}/identity/users/", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "base", [NGINX, UWSGI, *DAPHNES], ids=["nginx", "uwsgi", *(f"daphne-{p}" for p in DAPHNE_PORTS)]
)
def test_probes_answer_on_every_port(stack, base):
    assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "channel_layer": "ok"}


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("admin/css/base.css", "text/css"),
        ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", "application/javascript"),
    ],
)
def test_static_files_are_served_by_nginx(stack, path, content_type):
    response = httpx.get(f"{NGINX}/static/{path}", timeout=10)
    assert response.status_code == 200
    assert response.headers["server"] == "nginx"
    assert response.headers["content-type"] == content_type
    assert response.content == (ROOT / "var" / "static" / path).read_bytes()
    # Served from the collected files by nginx itself: the application does not serve them.
    assert httpx.get(f"{UWSGI}/static/{path}", timeout=10).status_code == 404


def test_a_bulk_body_of_10_mb_goes_through(stack):
    comment = "x" * 10_600
    batch = [
        {"name": f"big-{i}", "email": f"big-{i}@example.com", "comment": comment}
        for i in range(1000)
    ]
    response = httpx.post(f"{NGINX}/identity/users/", json=batch, headers=stack.auth, timeout=60)
    assert int(response.request.headers["content-length"]) > 10 * MiB
    assert response.status_code == 201, response.text[:500]
    assert len(response.json()) == 1000
    found = httpx.get(
        f"{NGINX}/identity/users/", params={"search": "big-"}, headers=stack.auth, timeout=30
    )
    assert found.json()["count"] == 1000


def test_a_40_mb_body_is_refused_by_nginx_with_a_json_413(stack):
    body = b"[" + b" " * (40 * MiB) + b"]"
    response = httpx.post(
        f"{NGINX}/identity/users/",
        content=body,
        headers={**stack.auth, "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "33554432" in response.json()["detail"]


def test_no_query_string_reaches_any_log(stack):
    secret = f"secret-{uuid.uuid4().hex}"
    ws = httpx.get(f"{NGINX}/catalog/ws/", params={"token": secret}, timeout=10)
    assert ws.status_code < 500  # daphne answered it
    assert httpx.get(f"{NGINX}/healthz", params={"token": secret}, timeout=10).status_code == 200
    assert httpx.get(f"{UWSGI}/healthz", params={"token": secret}, timeout=10).status_code == 200
    for daphne in DAPHNES:
        assert (
            httpx.get(f"{daphne}/healthz", params={"token": secret}, timeout=10).status_code == 200
        )

    # The requests were logged (path only)...
    wait_for(
        lambda: '"GET /catalog/ws/ HTTP/1.1"' in log_text("nginx-access.log")
        and '"GET /healthz HTTP/1.1" 200' in log_text("uwsgi.log"),
        5, "the requests never reached the logs",
    )  # fmt: skip
    # ...and the token appears nowhere.
    for name, text in current_logs().items():
        assert secret not in text, f"the token leaked into var/log/{name}"
        assert "token=" not in text, f"a query string leaked into var/log/{name}"


def test_the_real_client_address_is_passed_on_and_cannot_be_forged(stack):
    # Login is throttled per client address (10/min). From 127.0.0.2, with a different forged
    # X-Forwarded-For each time, the 11th attempt is refused: Django counts the address nginx
    # saw (the entry nginx appends), not what the client claims.
    run = uuid.uuid4().hex[:8]
    statuses = []
    with from_address("127.0.0.2") as client:
        for i in range(11):
            response = client.post(
                f"{NGINX}/identity/token/",
                json={"username": f"nobody-{run}-{i}", "password": "wrong-password"},
                headers={"X-Forwarded-For": f"10.9.8.{i}"},
            )
            statuses.append(response.status_code)
    assert statuses == [400] * 10 + [429]
    with from_address("127.0.0.3") as client:
        other = client.post(
            f"{NGINX}/identity/token/",
            json={"username": f"nobody-{run}-x", "password": "wrong-password"},
        )
    assert other.status_code == 400
    access = log_text("nginx-access.log")
    assert re.search(r'^127\.0\.0\.2 .*"POST /identity/token/ HTTP/1\.1" 429', access, re.M)


def _held_connections(address: str, count: int) -> list[socket.socket]:
    """Connections to a WebSocket location that stay open: nginx waits for the promised body."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(
            ("127.0.0.1", 8088), timeout=10, source_address=(address, 0)
        )
        sock.sendall(b"POST /catalog/ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\n")
        held.append(sock)
    return held


def test_websocket_locations_cap_connections_per_address_except_127_0_0_1(stack):
    held = _held_connections("127.0.0.2", 100)
    try:
        time.sleep(0.5)
        with from_address("127.0.0.2") as client:
            refused = client.get(f"{NGINX}/catalog/ws/")
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/json"
            # The cap is per location group, not on the REST side.
            assert client.get(f"{NGINX}/healthz").status_code == 200
        with from_address("127.0.0.3") as client:
            assert client.get(f"{NGINX}/catalog/ws/").status_code != 429
    finally:
        for sock in held:
            sock.close()
    held = _held_connections("127.0.0.1", 120)
    try:
        time.sleep(0.5)
        assert httpx.get(f"{NGINX}/catalog/ws/", timeout=10).status_code != 429
    finally:
        for sock in held:
            sock.close()

    def released() -> bool:
        with from_address("127.0.0.2") as client:
            return client.get(f"{NGINX}/catalog/ws/").status_code != 429

    wait_for(released, 10, "the slots of closed connections were not released")


def test_readyz_follows_redis(stack):
    stack.redis.stop()
    try:
        for base in (NGINX, *DAPHNES):
            down = httpx.get(f"{base}/readyz", timeout=10)
            assert down.status_code == 503, down.text
            checks = down.json()["checks"]
            assert checks["database"] == "ok"
            assert checks["channel_layer"].startswith("error")
        assert httpx.get(f"{NGINX}/healthz", timeout=10).status_code == 200
    finally:
        stack.redis.start()
    wait_for(
        lambda: httpx.get(f"{NGINX}/readyz", timeout=10).status_code == 200,
        15, "/readyz did not recover once Redis was back",
    )  # fmt: skip


def test_uwsgi_chain_reload_loses_no_request(stack):
    before = uwsgi_workers()
    assert len(before) == 4
    stop = threading.Event()
    outcomes: list[tuple[float, str, int | str]] = []

    def hammer(path: str, headers: dict[str, str]) -> None:
        with httpx.Client(base_url=NGINX, headers=headers, timeout=30) as client:
            while not stop.is_set():
                try:
                    status: int | str = client.get(path).status_code
                except httpx.HTTPError as exc:
                    status = repr(exc)
                outcomes.append((time.monotonic(), path, status))
                time.sleep(0.005)

    threads = [
        threading.Thread(target=hammer, args=("/healthz", {})),
        threading.Thread(target=hammer, args=("/identity/users/?page_size=5", stack.auth)),
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        stack.script("reload-uwsgi")
        wait_for(
            lambda: not set(uwsgi_workers()) & set(before) and len(uwsgi_workers()) == 4
            and "chain reloading complete" in log_text("uwsgi.log"),
            60, "the chain reload did not replace every worker",
        )  # fmt: skip
        finished = time.monotonic()
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    failures = [outcome for outcome in outcomes if outcome[2] != 200]
    assert failures == []
    during = [outcome for outcome in outcomes if started <= outcome[0] <= finished]
    assert {path for _, path, _ in during} == {"/healthz", "/identity/users/?page_size=5"}
    assert len(during) > 20
    assert len(set(uwsgi_workers()) - set(before)) == 4


def test_a_killed_uwsgi_worker_is_respawned(stack):
    before = uwsgi_workers()
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: victim not in uwsgi_workers() and len(uwsgi_workers()) == 4,
        30, "the master did not respawn the killed worker",
    )  # fmt: skip
    assert re.search(
        rf"worker \d+ \(pid: {victim}\) died, killed by signal 9", log_text("uwsgi.log")
    )
    for _ in range(8):  # every worker, the new one included, answers
        assert (
            httpx.get(f"{NGINX}/identity/users/", headers=stack.auth, timeout=30).status_code == 200
        )


def websocket_handshake() -> int:
    """The status of a WebSocket handshake on /catalog/ws/ through nginx (101 when accepted)."""
    with socket.create_connection(("127.0.0.1", 8088), timeout=10) as conn:
        conn.sendall(
            b"GET /catalog/ws/ HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        return int(conn.recv(4096).split(b" ", 2)[1])


def test_with_one_daphne_down_the_other_takes_every_socket(stack):
    first, second = (pid_file(f"daphne-{port}") for port in DAPHNE_PORTS)
    os.kill(first, signal.SIGTERM)
    wait_for(lambda: not alive(first), 20, "daphne did not stop on SIGTERM")

    # nginx moves each handshake on to the live process: none fails.
    assert [websocket_handshake() for _ in range(10)] == [101] * 10
    assert alive(second)

    stack.script("restart-daphne", str(DAPHNE_PORTS[0]))
    assert pid_file(f"daphne-{DAPHNE_PORTS[0]}") != first
    assert pid_file(f"daphne-{DAPHNE_PORTS[1]}") == second  # the other was left alone
    assert httpx.get(f"{DAPHNES[0]}/readyz", timeout=10).status_code == 200


def test_daphne_restart(stack):
    before = [pid_file(f"daphne-{port}") for port in DAPHNE_PORTS]
    for pid in before:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not any(map(alive, before)), 20, "daphne did not stop on SIGTERM")

    # While no daphne is up, nginx answers the WebSocket routes with a JSON 503 to retry...
    secret = f"secret-{uuid.uuid4().hex}"
    down = httpx.get(f"{NGINX}/identity/ws/check/users/", params={"token": secret}, timeout=10)
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/json"
    assert down.headers["retry-after"]
    # ...and logs the failure without the token.
    for name, text in current_logs().items():
        assert secret not in text, f"the token leaked into var/log/{name}"
    # The REST side is unaffected.
    assert httpx.get(f"{NGINX}/identity/users/", headers=stack.auth, timeout=30).status_code == 200

    stack.script("restart-daphne")
    after = [pid_file(f"daphne-{port}") for port in DAPHNE_PORTS]
    assert set(after).isdisjoint(before)
    assert all(map(alive, after))
    for daphne in DAPHNES:
        assert httpx.get(f"{daphne}/readyz", timeout=10).status_code == 200
    # nginx never takes a daphne out of rotation (max_fails=0): the next handshake works.
    assert websocket_handshake() == 101


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


def test_the_nginx_site_for_a_real_host_is_valid(stack, tmp_path):
    # deploy/nginx-site.conf as Debian's nginx would include it, with this checkout for
    # /srv/myproject and a throwaway certificate; `nginx -t` parses and loads all of it.
    cert, key = _self_signed_certificate(tmp_path)
    site = (ROOT / "deploy" / "nginx-site.conf").read_text()
    site = (
        site.replace("/srv/myproject", str(ROOT))
        .replace("/etc/letsencrypt/live/api.example.com/fullchain.pem", str(cert))
        .replace("/etc/letsencrypt/live/api.example.com/privkey.pem", str(key))
        .replace("/var/log/nginx", str(tmp_path))
    )
    (tmp_path / "site.conf").write_text(site)
    temp_paths = " ".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "uwsgi", "fastcgi", "scgi")
    )
    (tmp_path / "main.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
        f"http {{ {temp_paths} include {tmp_path}/site.conf; }}\n"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "main.conf"),
         "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_the_systemd_units_are_valid(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail(
            "systemd-analyze is not installed (`make test` installs it: scripts/services.sh)"
        )
    units = []
    for name, target in [
        ("myproject-uwsgi.service", "myproject-uwsgi.service"),
        ("myproject-daphne@.service", "myproject-daphne@8080.service"),
    ]:
        text = (ROOT / "deploy" / name).read_text().replace("/srv/myproject", str(ROOT))
        (tmp_path / target).write_text(text)
        units.append(str(tmp_path / target))
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_stack_stop_leaves_no_process(stack):
    names = ["nginx", "uwsgi", *(f"daphne-{port}" for port in DAPHNE_PORTS)]
    masters = {name: pid_file(name) for name in names}
    pids = set(masters.values())
    for pid in masters.values():
        pids.update(children(pid))
    assert len(pids) >= 4 + 4 + 1  # masters, uWSGI's workers, nginx's worker(s)
    assert all(alive(pid) for pid in pids)

    make("stack-stop", stack.env)

    assert [pid for pid in pids if alive(pid)] == []
    patterns = [
        f"--ini {ROOT}/uwsgi.ini",
        f"-c {ROOT}/nginx.conf",
        *(f"/daphne -b 127.0.0.1 -p {port} " for port in DAPHNE_PORTS),
    ]
    for pattern in patterns:
        found = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
        assert found.stdout.split() == [], f"still running: {pattern}"
    assert [port for port in STACK_PORTS if answers(port)] == []
    assert not list(RUN.glob("*.pid"))
    make("stack", stack.env)  # back up for the rest of the session's stack tests
    assert httpx.get(f"{NGINX}/readyz", timeout=10).status_code == 200
