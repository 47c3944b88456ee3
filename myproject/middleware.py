"""
Two middlewares that keep every answer JSON and cheap to refuse:

- `BodySizeLimitMiddleware`: oversized request bodies are refused up front with a JSON 413.
  DRF parses JSON straight from the request stream, so Django's own
  `DATA_UPLOAD_MAX_MEMORY_SIZE` check never runs for API bodies; this applies the same limit to
  every request, before a worker spends memory on it. nginx enforces the same number.
- `JsonErrorMiddleware`: Django's own 404 and 405 responses (the HTML debug page of an unknown
  URL under `make run`, the empty 405 of a view that takes GET alone) become the API's JSON.
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


class JsonErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code not in (404, 405) or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        if response.status_code == 404:
            return JsonResponse({"detail": "Not found."}, status=404)
        answer = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        if response.has_header("Allow"):
            answer["Allow"] = response["Allow"]
        return answer
