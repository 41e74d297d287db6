"""Per-client rate limits: per API key, per signed-in user, and per IP for calls without credentials.
A throttled call gets 429 with ``Retry-After`` and the ``throttled`` error code."""
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def get_rate(self):
        return None  # chosen per request in allow_request

    def allow_request(self, request, view):
        authenticated = bool(getattr(request, "user", None) and request.user.is_authenticated)
        self.scope = "client" if authenticated else "anon"
        self.rate = self.THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiKey):
            ident = f"key:{auth.prefix}"
        elif getattr(request, "user", None) and request.user.is_authenticated and request.user.pk:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
