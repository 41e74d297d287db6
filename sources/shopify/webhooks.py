"""Shopify webhook deliveries: signature, shop and topic checks, then the order body.

What Shopify sends (``orders/*`` over HTTPS):

- ``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body, keyed with the app's client secret,
  or with the signing key shown in the store admin when the merchant created the webhook by hand.
  The HMAC is computed over the bytes as received: Shopify escapes ``/`` as ``\\/`` and ``&`` as
  ``\\u0026``, so any re-serialisation of the parsed body breaks it.
- ``X-Shopify-Webhook-Id``: the same on every retry of one delivery, so it is the idempotency key.
- ``X-Shopify-Shop-Domain``: the ``*.myshopify.com`` domain of the shop that sent it.
- ``X-Shopify-Topic``: e.g. ``orders/paid``.

Choices:

- Unsigned deliveries are never accepted: a connection without a secret rejects everything (401).
- After a secret rotation Shopify keeps signing with the old secret for up to an hour, so both the
  current and the previous secret are tried.
- An app's client secret is the same for every shop that installs the app, so a valid signature does
  not prove the delivery is for *this* connection: when the connection has a store URL, the shop
  domain header must be its host. The headers are not covered by the signature; the check keeps a
  second shop's genuine deliveries, sent to the wrong address, out of this tenant.
- ``refunds/create`` carries a refund, not an order, and reading the order behind it would need an
  API call. Shopify also sends ``orders/updated`` for the refunded order, with the refund in its
  ``refunds``; that delivery drives the credit note, so ``refunds/create`` is acknowledged and ignored.
- ``orders/edited`` carries the edit (``{"order_edit": {...}}``: lines added and removed), not the order;
  Shopify sends ``orders/updated`` with the edited order too, and the reconciliation poll reads it if that
  one is lost, so ``orders/edited`` is acknowledged and ignored as well.
- ``app/uninstalled`` (the shop's body) is read by ``ShopifyAppReader``: after the same signature and
  shop checks, the adapter marks the connection disconnected.
- Which secret: a connection made by installing our public app is signed with the app's client secret
  (``BMS_SHOPIFY_CLIENT_SECRET``); one made with a legacy custom app's token, with that app's secret
  (``webhook_secret``) or the signing key of webhooks created in the store admin.
"""
from django.utils.translation import gettext_lazy as _

from ..webhooks import SignedWebhookReader

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_DOMAIN_HEADER = "X-Shopify-Shop-Domain"

ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)


class ShopifyWebhookReader(SignedWebhookReader):
    vendor = "Shopify"
    signature_header = SIGNATURE_HEADER
    topic_header = TOPIC_HEADER
    delivery_id_header = WEBHOOK_ID_HEADER
    host_header = SHOP_DOMAIN_HEADER
    order_topics = ORDER_TOPICS
    ignored_topics = {
        "refunds/create": _("no se lee: la entrega orders/updated de la misma orden trae el reembolso."),
        "orders/edited": _("no se lee: la entrega orders/updated de la misma orden trae la orden editada."),
    }
    secret_help = _(
        "agregue a la conexión el secreto de cliente de la app (o la clave de firma de webhooks que muestra "
        "el admin de Shopify)."
    )


APP_UNINSTALLED = "app/uninstalled"


class ShopifyAppReader(ShopifyWebhookReader):
    """The app's own lifecycle deliveries (``app/uninstalled``), checked exactly like order deliveries."""

    order_topics = frozenset({APP_UNINSTALLED})
    ignored_topics = {}
