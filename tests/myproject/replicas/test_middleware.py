"""
The read-your-writes position a client carries between requests (myproject/replicas/
middleware.py): signed, in the `read_after` cookie or the `X-Read-After` header.
"""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from myproject.replicas.health import health
from myproject.replicas.middleware import (
    COOKIE,
    HEADER,
    ReplicaMiddleware,
    _client_position,
    _signer,
)
from myproject.replicas.router import _reads


@pytest.fixture(autouse=True)
def _no_checking_thread(monkeypatch):
    """The suite has no replicas to check (their health: test_health.py)."""
    monkeypatch.setattr(health, "start", lambda: None)


def test_a_signed_position_is_taken_from_the_header_or_the_cookie():
    signed = _signer().sign("0-1-5")
    factory = RequestFactory()
    assert _client_position(factory.get("/", headers={HEADER: signed})) == "0-1-5"
    request = factory.get("/")
    request.COOKIES[COOKIE] = signed
    assert _client_position(request) == "0-1-5"


def test_an_unsigned_or_malformed_position_is_ignored():
    factory = RequestFactory()
    assert _client_position(factory.get("/", headers={HEADER: "0-1-5"})) is None
    forged = _signer().sign("0-1-5").replace("0-1-5", "0-1-9")
    assert _client_position(factory.get("/", headers={HEADER: forged})) is None
    malformed = _signer().sign("0-1-5; DROP")
    assert _client_position(factory.get("/", headers={HEADER: malformed})) is None


def test_an_unsafe_request_reads_the_primary_and_carries_the_position_on():
    seen = []

    def view(request):
        seen.append((_reads.get().primary, _reads.get().after))
        return HttpResponse(status=201)

    signed = _signer().sign("0-1-5")
    response = ReplicaMiddleware(view)(RequestFactory().post("/", headers={HEADER: signed}))
    assert seen == [(True, "0-1-5")]
    assert _signer().unsign(response[HEADER]) == "0-1-5"
    assert response.cookies[COOKIE]["httponly"]
    assert _reads.get() is None


def test_a_safe_request_that_wrote_nothing_gets_no_position():
    response = ReplicaMiddleware(lambda request: HttpResponse())(RequestFactory().get("/"))
    assert HEADER not in response
