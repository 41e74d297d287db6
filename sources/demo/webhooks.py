"""Webhooks of the Demo store, signed like Shopify's: base64 HMAC-SHA256 of the raw body."""
import base64
import hashlib
import hmac
import json

from ..base import WebhookDelivery, WebhookRejected

SIGNATURE_HEADER = "X-Demo-Hmac-Sha256"
DELIVERY_HEADER = "X-Demo-Delivery-Id"
TOPIC_HEADER = "X-Demo-Topic"


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def read_delivery(*, headers: dict, body: bytes, secret: str) -> WebhookDelivery:
    if secret:
        given = headers.get(SIGNATURE_HEADER, "")
        # Compared as bytes: compare_digest refuses a str with non-ASCII characters (a forged header).
        if not given or not hmac.compare_digest(given.encode("utf-8"), sign(body, secret).encode("ascii")):
            raise WebhookRejected("Invalid or missing webhook signature.", status=401)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(f"The body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or "id" not in payload:
        raise WebhookRejected("The body is not an order: it has no 'id'.")
    delivery_id = headers.get(DELIVERY_HEADER) or hashlib.sha256(body).hexdigest()
    return WebhookDelivery(delivery_id=delivery_id[:120], topic=headers.get(TOPIC_HEADER, "orders/updated"), payload=payload)
