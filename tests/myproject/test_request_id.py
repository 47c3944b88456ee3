"""
A client's `X-Request-ID` is kept only when it is a request id: 32 hex digits (nginx's
`$request_id`) or a canonical UUID. django-guid's own check is `uuid.UUID()`, which takes
repeated `urn:uuid:` prefixes, braces and hyphens anywhere: thousands of characters a client
chose were echoed and written into every log line of the request. Tried through a real uWSGI and
a real daphne (which serves everything under `make run`), on a 404 (logged by django.request).
"""

import re
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.live import daphne, server_env, uwsgi

pytestmark = pytest.mark.django_db(transaction=True)

ID = uuid.UUID("0123abcd-4567-4def-89ab-cdef01234567")
FORGED = [
    "urn:uuid:" * 400 + str(ID),  # 3,636 characters (uWSGI's default buffer is 4 KiB)
    "{" + str(ID) + "}",
    "-" * 300 + ID.hex,
    f"{ID.hex[:16]}_{ID.hex[16:31]}",  # int(..., 16) takes underscores
    ID.hex + "0",
    str(ID)[:-1],
    "",
]
KEPT = [ID.hex, str(ID), str(ID).upper()]
SERVERS = {"uwsgi": uwsgi, "daphne": daphne}


@pytest.fixture(params=SERVERS)
def served(request, tmp_path) -> tuple[str, Callable[[], str]]:
    """A real server of the kind asked for: its base URL, and a reader of its log so far."""
    log = tmp_path / "server.log"
    with SERVERS[request.param](server_env(), log=log) as base:
        yield base, lambda: log.read_text(errors="replace")


def get(base: str, request_id: str) -> httpx.Response:
    """A request for a missing page (a 404, which django.request logs) with this id; a
    connection of its own (uWSGI's HTTP router closes each after its response)."""
    return httpx.get(f"{base}/identity/nowhere/", headers={"X-Request-ID": request_id}, timeout=10)


def test_a_forged_request_id_is_replaced_and_never_logged(served):
    base, logged = served
    answered = []
    for forged in FORGED:
        response = get(base, forged)
        assert response.status_code == 404
        answered.append(response.headers["X-Request-ID"])
    for forged, request_id in zip(FORGED, answered, strict=True):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), (forged[:80], request_id)
    time.sleep(0.5)  # the last lines reach the log
    text = logged()
    assert all(request_id in text for request_id in answered), text[-2000:]
    assert "urn:" not in text
    assert "{" + str(ID) not in text
    assert "-" * 20 not in text
    assert ID.hex[:16] + "_" not in text


def test_a_request_id_of_32_hex_digits_or_a_canonical_uuid_is_kept(served):
    base, logged = served
    for given in KEPT:
        assert get(base, given).headers["X-Request-ID"] == given
    time.sleep(0.5)
    assert all(given in logged() for given in KEPT)
