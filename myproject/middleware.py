"""
Refuse oversized request bodies up front with a JSON 413.

DRF parses JSON straight from the request stream, so Django's own
`DATA_UPLOAD_MAX_MEMORY_SIZE` check never runs for API bodies. This applies the same limit
to every request, before a worker spends memory on it. nginx enforces the same number.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": f"Request body too large: at most {limit} bytes."}, status=413
            )
        return self.get_response(request)
