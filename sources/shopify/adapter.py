"""Shopify stores: orders arrive by signed ``orders/*`` webhooks and are read by the Shopify order parser.

Only parsing and webhook reception for now; no call is made to Shopify. Polling the Admin API (for
missed webhooks) and writing the document back to the order come later.

Credentials: ``webhook_secret`` (the app's client secret, or the signing key of webhooks created in
the store admin) and, during a rotation, ``previous_webhook_secret``. ``store_url`` should be the
shop's ``https://<shop>.myshopify.com`` address, which is what deliveries name themselves by.
"""
from ..base import OrderSource, WebhookDelivery, WebhookReceiver
from ..orderdata import OrderData
from .orders import parse_order
from .webhooks import read_delivery


class ShopifySource(OrderSource, WebhookReceiver):
    platform = "shopify"

    def parse_order(self, raw: dict) -> OrderData:
        return parse_order(raw)

    def webhook_delivery(self, *, headers: dict, body: bytes) -> WebhookDelivery:
        credentials = self.connection.credentials or {}
        secrets = [s for s in (credentials.get("webhook_secret"), credentials.get("previous_webhook_secret")) if s]
        return read_delivery(headers=headers, body=body, secrets=secrets, store_url=self.connection.store_url)
