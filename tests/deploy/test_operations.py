"""
What an operator relies on, through nginx against the split stack: `/metrics` for the host's
scraper alone, metrics that move when the stack does what they count (uWSGI's processes summed,
each daphne its own), and one request id from nginx's access log to the application's log.
"""

import asyncio
import re
import uuid

import httpx
import pytest
import websockets

from tests.stack import (
    DAPHNE_PORTS,
    LOG,
    NGINX,
    from_address,
    metric,
    new_category,
    wait_for,
)
from tests.ws import greeted

pytestmark = pytest.mark.stack


def test_metrics_are_served_to_this_host_alone(stack):
    local = httpx.get(f"{NGINX}/metrics", timeout=10)
    assert local.status_code == 200
    assert "http_requests_total" in local.text
    with from_address("127.0.0.2") as client:
        remote = client.get(f"{NGINX}/metrics")
    assert remote.status_code == 403
    assert remote.json() == {"detail": "Forbidden."}


def test_metrics_move_when_the_stack_does_what_they_count(stack):
    before = metric(NGINX, "events_published_total", topic="catalog")
    new_category(stack, "metrics")
    # uWSGI's four processes are summed: whichever served the write, the count shows it.
    wait_for(lambda: metric(NGINX, "events_published_total", topic="catalog") > before, 10,
             "events_published_total did not move")  # fmt: skip
    daphnes = [f"http://127.0.0.1:{port}" for port in DAPHNE_PORTS]

    def sockets() -> float:
        return sum(metric(base, "ws_connections", route="/catalog/ws/") for base in daphnes)

    async def scenario() -> tuple[float, float]:
        open_before = sockets()
        async with websockets.connect(NGINX.replace("http", "ws") + "/catalog/ws/",
                                      origin="http://localhost") as socket:  # fmt: skip
            await greeted(socket)
            return open_before, await asyncio.to_thread(sockets)

    open_before, while_open = asyncio.run(scenario())
    assert while_open == open_before + 1


def test_one_request_id_from_nginx_to_the_application_log(stack):
    response = httpx.get(f"{NGINX}/identity/users/{uuid.uuid4()}/", headers=stack.auth,
                         timeout=10)  # fmt: skip
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.headers.get_list("x-request-id") == [request_id]  # once
    wait_for(lambda: request_id in (LOG / "uwsgi.log").read_text(errors="replace"), 10,
             "uWSGI's log does not show the request id")  # fmt: skip
    wait_for(lambda: f"rid={request_id}" in (LOG / "nginx-access.log").read_text(), 10,
             "nginx's access log does not show the request id")  # fmt: skip
