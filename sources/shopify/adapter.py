"""Shopify stores: orders arrive by signed ``orders/*`` webhooks and are read by the Shopify order parser.

An issued document is written back to the order as a metafield through the Admin API (``client.py``,
the only code that calls Shopify). Polling the Admin API for missed webhooks comes later.

Credentials: ``webhook_secret`` (the app's client secret, or the signing key of webhooks created in
the store admin) and, during a rotation, ``previous_webhook_secret``; ``access_token`` (Admin API,
with write access to orders) for the write-back. ``store_url`` should be the shop's
``https://<shop>.myshopify.com`` address, which is what deliveries name themselves by and where the
Admin API answers without a redirect. Config: ``api_version`` (see ``client.py``).
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
from .client import ShopifyClient
from .orders import parse_order
from .webhooks import read_delivery


class ShopifySource(OrderSource, WebhookReceiver, DocumentWriteBack):
    platform = "shopify"

    def parse_order(self, raw: dict) -> OrderData:
        return parse_order(raw)

    def webhook_delivery(self, *, headers: dict, body: bytes) -> WebhookDelivery:
        return read_delivery(
            headers=headers, body=body, secrets=webhook_secrets(self.connection), store_url=self.connection.store_url
        )

    def push_document(self, document: IssuedDocumentInfo) -> str:
        return ShopifyClient.for_connection(self.connection).push_document(document)
