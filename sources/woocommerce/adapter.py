"""WooCommerce stores: orders arrive by signed ``order.*`` webhooks and are read by the WooCommerce parser.

An issued document is written back as a private order note through the REST API (``client.py``, the
only code that calls the store). WooCommerce never retries a failed delivery and disables the webhook
after five failures, so polling the REST API is needed for a complete picture; it comes later.

Credentials: ``webhook_secret`` (the secret of the WooCommerce webhook, not the REST consumer secret)
and, during a rotation, ``previous_webhook_secret``; ``consumer_key`` and ``consumer_secret`` (a REST
key with write access) for the write-back. ``store_url`` is the site's home URL, over HTTPS. Config:
``query_string_auth`` and ``rest_prefix`` (see ``client.py``).
"""
from ..base import StoreSource
from .client import WooCommerceClient
from .orders import parse_order
from .webhooks import read_delivery


class WooCommerceSource(StoreSource):
    platform = "woocommerce"
    order_parser = staticmethod(parse_order)
    delivery_reader = staticmethod(read_delivery)
    client_class = WooCommerceClient
