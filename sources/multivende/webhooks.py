"""Multivende's webhooks are hints: ``{"CheckoutId": "...", "OauthClient": {"client_id": ...}}``, unsigned.

No signature, payload format or retry policy is documented ([help-ventas], [help-api]); the 2026 notes
and integrators' code show deliveries that only name the checkout, and integrators re-read it with the
API. So nothing in the body is trusted beyond the checkout's id, which must look like one of
Multivende's ids: the adapter fetches that checkout with the merchant's own token, and the order
stored is what Multivende answered, never what was posted.
"""
import json

from django.utils.translation import gettext as _

from ..base import WebhookRejected
from .client import PATH_ID

MAX_HINT_BYTES = 10_000


def hinted_checkout_id(body: bytes) -> str:
    """The ``CheckoutId`` a hint names, or ``WebhookRejected`` (400) saying why the body is not a hint."""
    if len(body) > MAX_HINT_BYTES:
        raise WebhookRejected(_("El aviso de Multivende supera %(max)s bytes: solo debe nombrar la venta (CheckoutId).") % {
            "max": MAX_HINT_BYTES})
    try:
        hint = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookRejected(_("El aviso de Multivende no es JSON válido.")) from None
    checkout_id = hint.get("CheckoutId") if isinstance(hint, dict) else None
    if not isinstance(checkout_id, str) or not PATH_ID.fullmatch(checkout_id):
        raise WebhookRejected(_("El aviso de Multivende no nombra una venta (CheckoutId)."))
    return checkout_id
