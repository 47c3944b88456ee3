"""
What an operator reads (myproject/metrics.py, request ids, logs): the metrics move when the
service does what they count, every response and log line carries its request id, JSON logs are
JSON, and a refused handshake says why in the log.
"""

import json
import re
import time
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import CategoryFactory, token_for
from tests.live import ROOT, server_env, uwsgi
from tests.ws import connect, open_socket

CONTRACT = [
    "http_requests_total", "http_request_duration_seconds", "ws_connections",
    "ws_frames_sent_total", "ws_frames_received_total", "ws_errors_total",
    "events_published_total", "events_publish_failures_total", "ws_resumes_total",
]  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(client, name: str, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    key = (name, tuple(sorted(labels.items())))
    return samples(response.content.decode()).get(key, 0.0)


@pytest.mark.django_db
def test_metrics_are_served_in_prometheus_text_with_the_contracts_names(anon):
    anon.get("/catalog/items/")
    response = anon.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    for name in CONTRACT:
        assert name.removesuffix("_total") in names, name
    assert value(anon, "http_requests_total", method="GET", route="/catalog/items/",
                 status="200") >= 1  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_write_counts_a_published_event(anon, staff_client):
    before = value(anon, "events_published_total", topic="catalog")
    category = CategoryFactory()
    response = staff_client.patch(f"/catalog/categories/{category.uuid}/", {"name": "Counted"})
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    while value(anon, "events_published_total", topic="catalog") < before + 1:
        assert time.monotonic() < deadline, "the publish was not counted"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
async def test_a_socket_counts_in_ws_connections_while_open(anon):
    def connections() -> float:
        return value(anon, "ws_connections", route="/catalog/ws/")

    before = await sync_to_async(connections)()
    socket = await open_socket("/catalog/ws/")
    assert await sync_to_async(connections)() == before + 1
    await socket.send_to(text_data="not json")
    await socket.receive_from()
    assert await sync_to_async(value)(anon, "ws_errors_total", code="invalid_json") >= 1
    await socket.disconnect()
    assert await sync_to_async(connections)() == before


@pytest.mark.django_db(transaction=True)
async def test_a_refused_handshake_says_why_in_the_log(caplog, user):
    caplog.set_level("INFO")
    _, accepted, _ = await connect("/identity/ws/check/room/", "not-a-token")
    assert not accepted
    assert "handshake refused" in caplog.text
    assert "no_credential" in caplog.text
    token = await sync_to_async(token_for)(user)
    for group, reason in (("sys.control", "invalid_group"), ("a" * 81, "invalid_group")):
        _, accepted, _ = await connect(f"/identity/ws/check/{group}/", token)
        assert not accepted
        assert reason in caplog.text
    _, accepted, _ = await connect("/catalog/ws/", headers=[(b"origin", b"http://evil.example")])
    assert not accepted
    assert "origin 'evil.example' not allowed" in caplog.text
    assert "not-a-token" not in caplog.text


@pytest.mark.django_db
def test_every_response_carries_a_request_id(anon):
    fresh = anon.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["X-Request-ID"])
    given = uuid.uuid4().hex
    assert anon.get("/healthz", HTTP_X_REQUEST_ID=given)["X-Request-ID"] == given
    forged = anon.get("/healthz", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"]
    assert forged != "<script>"


@pytest.mark.django_db
def test_csrf_failures_answer_json(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/identity/token/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("CSRF Failed")


@pytest.mark.django_db(transaction=True)
def test_json_logs_carry_the_request_id(tmp_path, user):
    log = tmp_path / "uwsgi.log"
    token = token_for(user)
    with uwsgi(server_env(DJANGO_LOG_FORMAT="json"), log=log) as base:
        response = httpx.get(f"{base}/identity/users/not-a-uuid/",
                             headers={"Authorization": f"Token {token}"})  # fmt: skip
        assert response.status_code == 404
        request_id = response.headers["X-Request-ID"]
        time.sleep(0.5)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("request_id") == request_id]
    assert logged, log.read_text()[-2000:]
    assert {"time", "level", "logger", "message"} <= set(logged[0])


def test_the_dashboard_reads_only_metrics_the_code_exports():
    """deploy/monitoring/grafana-dashboard.json: every expression names metrics that exist."""
    from myproject import metrics

    root = ROOT / "deploy" / "monitoring"
    exported = {
        name
        for collector in vars(metrics).values()
        if hasattr(collector, "_name")
        for name in (collector._name, f"{collector._name}_total", f"{collector._name}_bucket")
    }
    dashboard = json.loads((root / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert expressions
    for expression in expressions:
        for name in re.findall(r"\b([a-z_]+(?:_total|_seconds_bucket|_connections|_queue))\b",
                               expression):  # fmt: skip
            assert name in exported, f"{name} in {expression!r} is not a metric of the code"
    scrape = (root / "prometheus.yml").read_text()
    assert "127.0.0.1:8000" in scrape
    assert all(f"127.0.0.1:{port}" in scrape for port in (8080, 8081))


@pytest.mark.django_db(transaction=True)
def test_a_request_warning_is_logged_once(tmp_path):
    """Django's own console handler (in debug) printed every django.request line a second time
    beside the root's."""
    log = tmp_path / "uwsgi.log"
    with uwsgi(server_env(DJANGO_DEBUG="on"), log=log) as base:
        marker = uuid.uuid4().hex
        assert httpx.get(f"{base}/nowhere-{marker}/").status_code == 404
        time.sleep(0.5)
    lines = [line for line in log.read_text().splitlines() if f"nowhere-{marker}" in line]
    assert len(lines) == 1, lines
