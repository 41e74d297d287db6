"""WooCommerce webhook deliveries: the creation ping, signature, store and topic checks, then the order.

What WooCommerce sends (core ``WC_Webhook::deliver``):

- ``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the raw body (``wp_json_encode`` output, which
  escapes ``/`` and non-ASCII characters), keyed with the webhook's secret.
- ``X-WC-Webhook-Source``: the store's ``home_url('/')``.
- ``X-WC-Webhook-Topic``: ``order.created``, ``order.updated``, ``order.deleted``, ``order.restored``.
- ``X-WC-Webhook-Delivery-ID``: a hash of the webhook id and the *current second*.
- On creation or save, a ping: the form body ``webhook_id=N`` with no signature. WooCommerce marks
  the webhook as failing unless the answer is exactly 200.

Choices:

- The ping is answered 200 and stored nowhere, even before a secret is configured: it carries no order,
  and the merchant usually creates the webhook before pasting its secret here.
- Deliveries are deduplicated on ``sha256:<hex digest of the raw body>`` (71 characters), not on the
  Delivery-ID: two different orders sent in the same second share a Delivery-ID, and WooCommerce
  never retries, so a header that repeats across distinct orders would drop real orders. The body
  holds ``date_modified``, so a genuine change of the order is a new body and a new event; the
  ``order.created`` + ``order.updated`` pair WooCommerce fires with the same body at checkout is
  stored once.
- ``order.deleted`` bodies are only ``{"id": N}``: a trashed order is not an invoicing event (a
  document already issued stays valid, and is annulled by a credit note, not by a deletion), so it
  is acknowledged and ignored.
- Unsigned deliveries other than the ping are never accepted. After a secret rotation the previous
  secret is still tried, for deliveries already queued in the store's Action Scheduler.
- When the connection has a store URL, the source header's host must be its host, ignoring a leading
  ``www.``: WordPress's home URL has it or not as the site was set up, whichever way the merchant typed
  the URL here.
"""
import base64
import hashlib
import hmac
import json
import re
from urllib.parse import urlsplit

from ..base import WebhookDelivery, WebhookIgnored, WebhookRejected

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
SOURCE_HEADER = "X-WC-Webhook-Source"
TOPIC_HEADER = "X-WC-Webhook-Topic"

ORDER_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
DELETED_TOPIC = "order.deleted"
PING_BODY = re.compile(rb"webhook_id=\d+")


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _host(url: str) -> str:
    host = urlsplit(url.strip()).hostname or ""
    return host.removeprefix("www.")


def read_delivery(*, headers, body: bytes, secrets: list[str], store_url: str) -> WebhookDelivery:
    """Verifies and reads one delivery, or raises ``WebhookRejected`` / ``WebhookIgnored``."""
    # Django's request.headers is case-insensitive, a plain dict is not: look names up lower-cased.
    headers = {name.lower(): value for name, value in headers.items()}
    given = headers.get(SIGNATURE_HEADER.lower(), "")
    if not given and PING_BODY.fullmatch(body.strip()):
        raise WebhookIgnored("ping")
    if not secrets:
        raise WebhookRejected(
            "This store has no webhook secret configured, and unsigned WooCommerce deliveries are never accepted: "
            "add the secret of the WooCommerce webhook (WooCommerce > Settings > Advanced > Webhooks) to the connection.",
            status=401,
        )
    if not given:
        raise WebhookRejected(f"Missing webhook signature: the {SIGNATURE_HEADER} header is absent.", status=401)
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, which a forged header may carry.
    if not any(hmac.compare_digest(given.encode(), sign(body, secret).encode()) for secret in secrets):
        raise WebhookRejected(
            f"Invalid webhook signature: {SIGNATURE_HEADER} does not match the raw body signed with this webhook's "
            "secret (it is the webhook's secret, not the REST API consumer secret).",
            status=401,
        )
    if store_url:
        source = headers.get(SOURCE_HEADER.lower(), "")
        if _host(source) != _host(store_url):
            raise WebhookRejected(
                f"This delivery is from the store {source or '(no ' + SOURCE_HEADER + ' header)'}, "
                f"but this connection is for {store_url}.",
                status=401,
            )
    topic = headers.get(TOPIC_HEADER.lower(), "")
    if topic == DELETED_TOPIC:
        raise WebhookIgnored("order.deleted: a trashed order is not invoiced or annulled by the gateway.")
    if topic not in ORDER_TOPICS:
        raise WebhookIgnored(f"Topic {topic or '(none)'!r} is not an order topic this gateway handles.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(f"The body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("id") in (None, ""):
        raise WebhookRejected("The body is not a WooCommerce order: it has no 'id'.")
    return WebhookDelivery(delivery_id="sha256:" + hashlib.sha256(body).hexdigest(), topic=topic, payload=payload)
