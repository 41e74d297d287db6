"""WooCommerce stores: orders arrive by signed ``order.*`` webhooks and are read by the WooCommerce parser.

Only parsing and webhook reception for now; no call is made to the store. WooCommerce never retries a
failed delivery and disables the webhook after five failures, so polling the REST API is needed for a
complete picture; it comes later, with writing the document back to the order.

Credentials: ``webhook_secret`` (the secret of the WooCommerce webhook, not the REST consumer secret)
and, during a rotation, ``previous_webhook_secret``. ``store_url`` is the site's home URL.
"""
from ..base import OrderSource, WebhookDelivery, WebhookReceiver
from ..orderdata import OrderData
from .orders import parse_order
from .webhooks import read_delivery


class WooCommerceSource(OrderSource, WebhookReceiver):
    platform = "woocommerce"

    def parse_order(self, raw: dict) -> OrderData:
        return parse_order(raw)

    def webhook_delivery(self, *, headers: dict, body: bytes) -> WebhookDelivery:
        credentials = self.connection.credentials or {}
        secrets = [s for s in (credentials.get("webhook_secret"), credentials.get("previous_webhook_secret")) if s]
        return read_delivery(headers=headers, body=body, secrets=secrets, store_url=self.connection.store_url)
