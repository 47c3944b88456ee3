"""
JSON errors everywhere, and a 503 rather than a 500 while the database is unreachable.

DRF already renders its own exceptions as JSON. This adds what it leaves to Django's HTML
pages: database outages (retryable: 503 with `Retry-After`), a write racing another write on
a unique key or deleting a row still referenced (400), unknown URLs (404) and genuine server
errors (500).
"""

import logging
import sys

from django.db import IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError
from django.http import HttpRequest, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from myproject import metrics

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = {"detail": "The database is unavailable; retry shortly."}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus the database errors that are not the client's fault."""
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        metrics.DB_UNAVAILABLE.inc()
        return Response(DATABASE_UNAVAILABLE, status=503, headers=_retry_after())
    if isinstance(exc, ProtectedError):
        return Response(
            {"detail": "Still in use; delete or move what refers to it first."}, status=400
        )
    if isinstance(exc, IntegrityError):
        # Validation runs first; this is a concurrent write that took the same unique value.
        logger.info("integrity error: %s", exc)
        return Response({"detail": "This conflicts with data written meanwhile."}, status=400)
    return drf_exception_handler(exc, context)


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """`handler400`: JSON (a disallowed Host header, a malformed request)."""
    return JsonResponse({"detail": "Bad request."}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """`handler403`: JSON (CSRF failures outside DRF, say)."""
    return JsonResponse({"detail": "Forbidden."}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """`CSRF_FAILURE_VIEW`: JSON, with Django's reason (which says what to fix)."""
    return JsonResponse({"detail": f"CSRF Failed: {reason}"}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """`handler404`: JSON, like the API."""
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """`handler500`: JSON; a database outage outside DRF views is still a 503."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        metrics.DB_UNAVAILABLE.inc()
        return JsonResponse(DATABASE_UNAVAILABLE, status=503, headers=_retry_after())
    return JsonResponse({"detail": "Server error."}, status=500)
