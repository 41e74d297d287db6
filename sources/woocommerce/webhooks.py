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
- Deliveries are deduplicated on the order change they carry, ``order:<id>@<date_modified_gmt>``
  (``WooCommerceSource.change_key``, the same key the poller gives the same change), not on the
  Delivery-ID: two different orders sent in the same second share a Delivery-ID, and WooCommerce
  never retries, so a header that repeats across distinct orders would drop real orders. A genuine
  change of the order moves ``date_modified_gmt`` and is a new event; the ``order.created`` +
  ``order.updated`` pair WooCommerce fires at checkout is stored once. A body without
  ``date_modified_gmt``, or whose version is younger than two seconds (another version may follow in
  the same second; see ``adapter.py``), falls back to ``sha256:<hex digest of the raw body>``.
- ``order.deleted`` bodies are only ``{"id": N}``: a trashed order is not an invoicing event (a
  document already issued stays valid, and is annulled by a credit note, not by a deletion), so it
  is acknowledged and ignored.
- Unsigned deliveries other than the ping are never accepted. After a secret rotation the previous
  secret is still tried, for deliveries already queued in the store's Action Scheduler.
- When the connection has a store URL, the source header's host must be its host, ignoring a leading
  ``www.``: WordPress's home URL has it or not as the site was set up, whichever way the merchant typed
  the URL here.
"""
import re

from django.utils.translation import gettext_lazy as _

from ..webhooks import SignedWebhookReader

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
SOURCE_HEADER = "X-WC-Webhook-Source"
TOPIC_HEADER = "X-WC-Webhook-Topic"
PING_BODY = re.compile(rb"webhook_id=\d+")


class WooCommerceWebhookReader(SignedWebhookReader):
    vendor = "WooCommerce"
    signature_header = SIGNATURE_HEADER
    topic_header = TOPIC_HEADER
    host_header = SOURCE_HEADER
    order_topics = frozenset({"order.created", "order.updated", "order.restored"})
    ignored_topics = {
        "order.deleted": _("una orden enviada a la papelera no se factura ni se anula desde la pasarela."),
    }
    secret_help = _(
        "use el secreto del webhook de WooCommerce (WooCommerce > Ajustes > Avanzado > Webhooks), no el "
        "secreto de consumidor de la API REST."
    )

    def is_ping(self, headers: dict[str, str], body: bytes) -> bool:
        return not headers.get(SIGNATURE_HEADER.lower()) and PING_BODY.fullmatch(body.strip()) is not None

    @staticmethod
    def host_of(url: str) -> str:
        return SignedWebhookReader.host_of(url).removeprefix("www.")

    def host_matches(self, given: str, store_url: str) -> bool:
        return self.host_of(given) == self.host_of(store_url)
