"""Shopify stores: orders arrive by signed ``orders/*`` webhooks and are read by the Shopify order parser.

An issued document is written back to the order as a metafield through the Admin API (``client.py``,
the only code that calls Shopify). Polling the Admin API for missed webhooks comes later.

Credentials: ``webhook_secret`` (the app's client secret, or the signing key of webhooks created in
the store admin) and, during a rotation, ``previous_webhook_secret``; ``access_token`` (Admin API,
with write access to orders) for the write-back. ``store_url`` should be the shop's
``https://<shop>.myshopify.com`` address, which is what deliveries name themselves by and where the
Admin API answers without a redirect. Config: ``api_version`` (see ``client.py``).
"""
from ..base import StoreSource
from .client import ShopifyClient
from .orders import parse_order
from .webhooks import read_delivery


class ShopifySource(StoreSource):
    platform = "shopify"
    order_parser = staticmethod(parse_order)
    delivery_reader = staticmethod(read_delivery)
    client_class = ShopifyClient
