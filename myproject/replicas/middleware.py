"""Each request's reads, and the signed read-your-writes GTID a client that wrote carries to
its next request (the `read_after` cookie, or the `X-Read-After` header sent back)."""

from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from myproject.replicas.gtid import POSITION, committed_position, merge
from myproject.replicas.health import health
from myproject.replicas.router import Reads, reading

COOKIE = "read_after"
HEADER = "X-Read-After"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# How long a read-your-writes GTID is kept: far longer than any lag a replica may have and still
# be used (REPLICA_MAX_LAG), so after that any replica in use has the write.
READ_AFTER_TTL = 60


class ReplicaMiddleware:
    """Sets each request's reads up (an unsafe method reads the primary; a client's
    `read_after` GTID is waited for) and hands a client that wrote the GTID of its write."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Check the replicas from the start: until the first check a process reads the primary.
        health.start()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        safe = request.method in SAFE_METHODS
        with reading(Reads(primary=not safe, after=_client_position(request))) as reads:
            response = self.get_response(request)
            if reads.failed and safe and response.status_code >= 500:
                # The replica failed under this read (and is skipped now): serve it again from
                # the primary rather than answer with the error.
                reads.primary = True
                reads.failed = False
                response = self.get_response(request)
            if reads.wrote or (not safe and response.status_code < 400):
                _hand_position(request, response)
        return response


def _signer() -> signing.Signer:
    return signing.get_cookie_signer(salt=COOKIE + "myproject.replicas")


def _client_position(request: HttpRequest) -> str | None:
    for value in (request.headers.get(HEADER), request.COOKIES.get(COOKIE)):
        if not value:
            continue
        try:
            position = _signer().unsign(value, max_age=READ_AFTER_TTL)
        except signing.BadSignature:
            continue
        if POSITION.match(position):
            return position
    return None


def _hand_position(request: HttpRequest, response: HttpResponse) -> None:
    position = merge(_client_position(request), committed_position())
    if position is None:
        return
    value = _signer().sign(position)
    response[HEADER] = value
    response.set_cookie(
        COOKIE,
        value,
        max_age=READ_AFTER_TTL,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
