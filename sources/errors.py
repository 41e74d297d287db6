"""Why a call to a store failed, as far as sending it again is concerned.

Raised at the edge by the store clients (``sources/http.py``), so callers decide from the class alone;
the message names the store, the HTTP status and what the store said, and is shown to the merchant.
"""
from .base import SourceError


class SourceTransientError(SourceError):
    """The store could not answer now (timeout, connection error, 5xx, 429) or its answer could not be
    read: the same request may succeed later. ``retry_after`` is the store's Retry-After, as sent."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: str = ""):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SourceRejectedError(SourceError):
    """The store refused the request (4xx, a redirect) or it cannot be made (missing credentials, a
    store URL we will not send them to): sent again unchanged it fails again, the connection needs fixing."""

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body
