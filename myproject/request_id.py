"""
A client's `X-Request-ID` is kept only when it is a request id: 32 hex digits (nginx's
`$request_id`) or a canonical UUID (8-4-4-4-12). django-guid's own check (`VALIDATE_GUID`) is
`uuid.UUID()`, which takes repeated `urn:uuid:` prefixes, braces, hyphens anywhere and
underscores: thousands of characters of the client's choosing were echoed in the response and
written into every log line of the request. Anything else is taken off the request here, before
django-guid reads it, which then makes a new id. First in `MIDDLEWARE`; sync and async alike, so
that it costs no thread hop under daphne.
"""

import re
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

HEADER = "HTTP_X_REQUEST_ID"
REQUEST_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _drop_forged(request: HttpRequest) -> None:
    given = request.META.get(HEADER)
    if given is not None and not REQUEST_ID.fullmatch(given):
        del request.META[HEADER]


@sync_and_async_middleware
def request_id_middleware(get_response: Callable) -> Callable:
    """Drop an `X-Request-ID` that is no request id (django-guid then makes one)."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> Awaitable[HttpResponse]:
            _drop_forged(request)
            return await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            _drop_forged(request)
            return get_response(request)

    return middleware
