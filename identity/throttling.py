"""
Brute-force limits on logging in: per client address and per attacked name, so neither many
names from one address nor one name from many addresses gets far. Rate: `login` scope.
"""

import hashlib

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class LoginAddressThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": "login-address", "ident": self.get_ident(request)}


class LoginNameThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        name = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(name, str) or not name:
            return None
        digest = hashlib.sha256(name.strip().casefold().encode()).hexdigest()
        return self.cache_format % {"scope": "login-name", "ident": digest}
