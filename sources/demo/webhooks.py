"""Webhooks of the Demo store, signed like Shopify's: base64 HMAC-SHA256 of the raw body.

A Demo connection always has a secret (generated when it is created), so its deliveries are signed
like any real store's and an unsigned one is refused.
"""
from django.utils.translation import gettext_lazy as _

from ..webhooks import SignedWebhookReader

SIGNATURE_HEADER = "X-Demo-Hmac-Sha256"
DELIVERY_HEADER = "X-Demo-Delivery-Id"
TOPIC_HEADER = "X-Demo-Topic"


class DemoWebhookReader(SignedWebhookReader):
    vendor = _("la Tienda Demo")
    signature_header = SIGNATURE_HEADER
    topic_header = TOPIC_HEADER
    delivery_id_header = DELIVERY_HEADER
    order_topics = frozenset({"orders/create", "orders/paid", "orders/updated", "orders/cancelled"})
    secret_help = _("la conexión Demo crea su secreto al guardarse; edite la conexión para generar uno nuevo.")
