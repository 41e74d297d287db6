"""Why a call to a store failed, as far as sending it again is concerned (see
``billmysales.integrations.errors``); raised at the edge by the store clients."""
from billmysales.integrations.errors import RejectedError, TransientError

from .base import SourceError


class SourceTransientError(SourceError, TransientError):
    """The store could not answer now (timeout, connection error, 5xx, 429) or its answer could not be
    read: the same request may succeed later."""


class SourceRejectedError(SourceError, RejectedError):
    """The store refused the request (4xx, a redirect) or it cannot be made (missing credentials, a
    store URL we will not send them to): the connection needs fixing."""
