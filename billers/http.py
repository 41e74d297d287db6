"""The HTTP base of the biller clients: the shared vendor base with the billers' error classes.
Only ``billers/<provider>/client.py`` builds on this."""
from billmysales.integrations.http import VendorHttpClient

from .base import RejectedBillerError, TransientBillerError


class BillerHttpClient(VendorHttpClient):
    transient_error = TransientBillerError
    rejected_error = RejectedBillerError
    # Issuing can take a biller several seconds (signing, sending to the SII); still bounded.
    timeout = (5, 60)
