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
"""
import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

from ..base import WebhookDelivery, WebhookIgnored, WebhookRejected

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
REFUND_TOPIC = "refunds/create"


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def read_delivery(*, headers, body: bytes, secrets: list[str], store_url: str) -> WebhookDelivery:
    """Verifies and reads one delivery, or raises ``WebhookRejected`` / ``WebhookIgnored``."""
    # Django's request.headers is case-insensitive, a plain dict is not: look names up lower-cased.
    headers = {name.lower(): value for name, value in headers.items()}
    if not secrets:
        raise WebhookRejected(
            "This store has no webhook secret configured, and unsigned Shopify deliveries are never accepted: "
            "add the app's client secret (or the webhook signing key shown in the Shopify admin) to the connection.",
            status=401,
        )
    given = headers.get(SIGNATURE_HEADER.lower(), "")
    if not given:
        raise WebhookRejected(f"Missing webhook signature: the {SIGNATURE_HEADER} header is absent.", status=401)
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, which a forged header may carry.
    if not any(hmac.compare_digest(given.encode(), sign(body, secret).encode()) for secret in secrets):
        raise WebhookRejected(
            f"Invalid webhook signature: {SIGNATURE_HEADER} does not match the raw body signed with this store's secret.",
            status=401,
        )
    expected_domain = (urlsplit(store_url).hostname or "") if store_url else ""
    shop_domain = headers.get(SHOP_DOMAIN_HEADER.lower(), "").strip().lower()
    if expected_domain and shop_domain != expected_domain:
        raise WebhookRejected(
            f"This delivery is from the shop {shop_domain or '(no ' + SHOP_DOMAIN_HEADER + ' header)'}, "
            f"but this connection is for {expected_domain}; set the store URL to the shop's myshopify.com address "
            "if that is the same store.",
            status=401,
        )
    topic = headers.get(TOPIC_HEADER.lower(), "")
    if topic == REFUND_TOPIC:
        raise WebhookIgnored(
            "refunds/create is not read: the orders/updated delivery for the same order carries the refund."
        )
    if topic not in ORDER_TOPICS:
        raise WebhookIgnored(f"Topic {topic or '(none)'!r} is not an order topic this gateway handles.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(f"The body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("id") in (None, ""):
        raise WebhookRejected("The body is not a Shopify order: it has no 'id'.")
    delivery_id = headers.get(WEBHOOK_ID_HEADER.lower()) or "sha256:" + hashlib.sha256(body).hexdigest()
    return WebhookDelivery(delivery_id=delivery_id[:120], topic=topic, payload=payload)
