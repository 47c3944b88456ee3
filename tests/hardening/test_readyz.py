"""
`/readyz` tells its details (which check failed, the exception text with host names and
ports) to 127.0.0.1 and ::1 alone, judged by the real client address: the address nginx saw,
however the client fills X-Forwarded-For or X-Real-IP. Anyone else gets the status alone.
"""

import httpx
import pytest

from tests.stack import DAPHNE_PORTS, NGINX, from_address, wait_for

pytestmark = pytest.mark.stack

OUTSIDE = "127.0.0.60"
FORGED = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}
# nginx, and uWSGI's and daphne's own ports, which bind loopback: reachable from 127.0.0.60.
BASES = [NGINX, "http://127.0.0.1:8000", *(f"http://127.0.0.1:{port}" for port in DAPHNE_PORTS)]


def ready_everywhere() -> bool:
    return all(httpx.get(f"{base}/readyz", timeout=10).status_code == 200 for base in BASES)


def test_others_get_the_status_alone(stack):
    # An earlier test may have restarted Redis a moment ago: the channel layer of a daphne
    # reconnects within seconds, and until then says so (503), which is not what is tested here.
    wait_for(ready_everywhere, 20, "the stack did not become ready")
    with from_address(OUTSIDE) as client:
        answer = client.get(f"{NGINX}/readyz", headers=FORGED)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        for base in BASES[1:]:
            assert client.get(f"{base}/readyz").json() == {"status": "ok"}, base
    local = httpx.get(f"{NGINX}/readyz", timeout=10).json()
    assert local["checks"] == {"database": "ok", "channel_layer": "ok"}


def test_a_failing_check_is_explained_to_loopback_only(stack):
    stack.redis.stop()
    try:
        with from_address(OUTSIDE) as client:
            for base in BASES:
                headers = FORGED if base == NGINX else {}
                down = client.get(f"{base}/readyz", headers=headers)
                assert down.status_code == 503, base
                assert down.json() == {"status": "unavailable"}, base
                assert str(stack.redis.port) not in down.text
        local = httpx.get(f"{NGINX}/readyz", timeout=10)
        assert local.status_code == 503
        assert local.json()["checks"]["channel_layer"].startswith("error")
    finally:
        stack.redis.start()
        wait_for(lambda: httpx.get(f"{NGINX}/readyz", timeout=10).status_code == 200, 15,
                 "/readyz did not recover once Redis was back")  # fmt: skip
        # A daphne with no socket open through the outage keeps a broken pub/sub connection,
        # and its next handshake can fail (HTTP 500, in channels' new_channel): restart them,
        # so that the WebSocket tests after this one start from a clean stack.
        stack.script("restart-daphne")
