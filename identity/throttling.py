"""
Failed logins per client address, one count for every way in: `POST /identity/token/` and
the admin's login form. Each try costs a full password hash (~0.2 s), so this stops password
guessing and floods of tries alike: at most the `login` rate (`DJANGO_THROTTLE_LOGIN`,
10/min) of failures per address, the address as DRF's throttles see it (`NUM_PROXIES`).

    TokenView: LoginThrottle among its throttles          -> 429 {"detail"} with Retry-After
    path("admin/login/", login_throttled(admin.site.login))   the admin form, the same

Only failures count (Django's `user_login_failed`, which `authenticate()` sends whoever asked,
counted by `count_failed_login`): below the limit the right password always works, and a
success never resets the count (or an attacker's own account would). Over the limit every
attempt from the address is refused, before any password is checked, until the window the
first failure opened has passed. Nothing is counted per name: that would let anyone lock a
victim out. The count is one atomic increment in the shared cache (Redis), so concurrent
tries across uWSGI processes cannot slip past it.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class LoginThrottle(SimpleRateThrottle):
    scope = "login"

    # Requests are DRF's (the token view) or Django's (the admin form, the signal): the
    # address comes from META, which both have.
    def get_cache_key(self, request: Request | HttpRequest, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request: Request | HttpRequest, view: Any) -> bool:
        """Whether the address is under the limit; the attempt itself is not counted."""
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        return (self.cache.get(self.key) or 0) < self.num_requests

    def wait(self) -> float:
        ttl = getattr(self.cache, "ttl", None)  # django-redis has it, the local memory cache not
        left = ttl(self.key) if ttl is not None else None
        return float(left) if left and left > 0 else float(self.duration)

    def record_failure(self, request: Request | HttpRequest) -> None:
        if self.rate is None:
            return
        key = self.get_cache_key(request, None)
        self.cache.add(key, 0, self.duration)  # the first failure opens the window
        try:
            self.cache.incr(key)
        except ValueError:  # the window ended in between
            self.cache.add(key, 1, self.duration)


def count_failed_login(
    sender: Any, request: Request | HttpRequest | None = None, **kwargs: Any
) -> None:
    """Receiver of `user_login_failed` (connected in `IdentityConfig.ready`)."""
    if request is not None:
        LoginThrottle().record_failure(request)


def login_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A login view (the admin's) whose POSTs are refused over the limit, as the API's are."""

    @functools.wraps(view)
    def throttled(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        throttle = LoginThrottle()
        if request.method == "POST" and not throttle.allow_request(request, None):
            wait = math.ceil(throttle.wait())
            return JsonResponse(
                {"detail": f"Too many failed logins; retry in {wait} seconds."},
                status=429,
                headers={"Retry-After": str(wait)},
            )
        return view(request, *args, **kwargs)

    return throttled
