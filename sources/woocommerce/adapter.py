"""WooCommerce stores: orders arrive by signed ``order.*`` webhooks and are read by the WooCommerce parser.

An issued document is written back as a private order note through the REST API (``client.py``, the
only code that calls the store). WooCommerce never retries a failed delivery and disables the webhook
after five failures, so polling the REST API is needed for a complete picture; it comes later.

Credentials: ``webhook_secret`` (the secret of the WooCommerce webhook, not the REST consumer secret)
and, during a rotation, ``previous_webhook_secret``; ``consumer_key`` and ``consumer_secret`` (a REST
key with write access) for the write-back. ``store_url`` is the site's home URL, over HTTPS. Config:
``query_string_auth`` and ``rest_prefix`` (see ``client.py``).
"""
from ..base import (
    DocumentWriteBack,
    IssuedDocumentInfo,
    OrderSource,
    WebhookDelivery,
    WebhookReceiver,
    webhook_secrets,
)
from ..orderdata import OrderData
from .client import WooCommerceClient
from .orders import parse_order
from .webhooks import read_delivery


class WooCommerceSource(OrderSource, WebhookReceiver, DocumentWriteBack):
    platform = "woocommerce"

    def parse_order(self, raw: dict) -> OrderData:
        return parse_order(raw)

    def webhook_delivery(self, *, headers: dict, body: bytes) -> WebhookDelivery:
        return read_delivery(
            headers=headers, body=body, secrets=webhook_secrets(self.connection), store_url=self.connection.store_url
        )

    def push_document(self, document: IssuedDocumentInfo) -> str:
        return WooCommerceClient.for_connection(self.connection).push_document(document)
