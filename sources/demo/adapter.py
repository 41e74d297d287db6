"""The built-in Demo store: realistic paid CLP orders on demand, in Shopify's order shape.

It lets a new account (and ``make demo``) see the whole pipeline without a real store. Its orders are
Shopify-shaped so they go through the same parser and field mapping as real Shopify orders. A Demo
connection always has a webhook secret (generated when none is given), so its deliveries are signed,
and it can only be wired to a biller in certification: nothing it sends is a real sale.
"""
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.spec import SECRET_TEXT, Field, random_secret

from ..base import SourceAdapter, WebhookReceiver, webhook_secrets
from ..orderdata import OrderData
from ..shopify.fields import DEFAULT_FIELD_MAPPING
from ..shopify.orders import parse_order
from ..shopify.samples import sample_order
from .webhooks import DemoWebhookReader


class DemoSource(SourceAdapter, WebhookReceiver):
    platform = "demo"
    label = _("Tienda Demo")
    credentials_spec = (
        Field("webhook_secret", _("Secreto de webhooks"), SECRET_TEXT, required=False, generated=random_secret),
    )
    store_url_required = False
    certification_only = True
    default_field_mapping = DEFAULT_FIELD_MAPPING
    webhook_reader = DemoWebhookReader()

    def parse_order(self, raw: dict) -> OrderData:
        return parse_order(raw)

    @classmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        return sample_order(number=number, test=test)

    def webhook_delivery(self, *, headers, body: bytes):
        return self.webhook_reader.read(headers=headers, body=body, secrets=webhook_secrets(self.connection), store_url="")
