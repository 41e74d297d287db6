"""The Demo store's deliveries: signed like any store's (a Demo connection always has a secret)."""
import json

from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader
from sources.shopify.samples import sample_order
from tests.sources.contracts import StoreWebhookContract


class TestDemoWebhookContract(StoreWebhookContract):
    platform = "demo"
    order_topic = "orders/paid"

    def order_body(self) -> bytes:
        return json.dumps(sample_order(number=4242)).encode()

    def headers(self, body, *, secret, topic, host=None, delivery_id="delivery-1", signature=None):
        headers = {TOPIC_HEADER: topic, DELIVERY_HEADER: delivery_id}
        if signature is None and secret is not None:
            signature = DemoWebhookReader.sign(body, secret)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return headers
