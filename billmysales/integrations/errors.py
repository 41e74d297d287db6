"""The two answers that matter when a vendor call fails: try again later, or do not.

Raised at the edge (the HTTP base, an adapter), so callers decide from the class alone. Messages are
Spanish, name the vendor and say what it answered; they never carry a credential or a URL with
query-string credentials, because they are shown to merchants and written to logs.
"""


class IntegrationError(Exception):
    def __init__(self, message: str, *, status: int | None = None, body: str = "", retry_after: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.retry_after = retry_after


class TransientError(IntegrationError):
    """The vendor could not answer now (timeout, connection error, 5xx, 429) or its answer could not
    be read: the same request may succeed later. ``retry_after`` is the vendor's Retry-After, as sent."""


class RejectedError(IntegrationError):
    """The vendor refused the request (4xx, a redirect) or it cannot be made (missing credentials, a
    URL we will not send them to): sent again unchanged it fails again; someone must fix something."""


class UnsupportedFeature(IntegrationError):
    """The vendor (or our adapter of it) cannot do this at all, e.g. look a document up by reference."""
