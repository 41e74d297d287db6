"""Shopify stores: orders arrive by signed ``orders/*`` webhooks and are read by the Shopify order parser.

An issued document is written back to the order as a metafield through the Admin API (``client.py``,
the only code that calls Shopify).

Credentials: ``webhook_secret`` (the app's client secret, or the signing key of webhooks created in
the store admin) and, during a rotation, ``previous_webhook_secret``; ``access_token`` (Admin API,
with write access to orders) for the write-back. ``store_url`` should be the shop's
``https://<shop>.myshopify.com`` address, which is what deliveries name themselves by and where the
Admin API answers without a redirect. Config: ``api_version`` (see ``client.py``).
"""
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.spec import SECRET_TEXT, Field

from ..base import StoreSource
from .client import API_VERSION, ShopifyClient
from .fields import DEFAULT_FIELD_MAPPING
from .orders import parse_order
from .samples import sample_order
from .webhooks import ShopifyWebhookReader


class ShopifySource(StoreSource):
    platform = "shopify"
    label = "Shopify"
    credentials_spec = (
        Field("webhook_secret", _("Secreto de webhooks (client secret de la app)"), SECRET_TEXT),
        Field("previous_webhook_secret", _("Secreto anterior (durante una rotación)"), SECRET_TEXT, required=False),
        Field("access_token", _("Token de acceso de la Admin API"), SECRET_TEXT, required=False,
              help_text=_("Necesario para escribir el documento en la orden.")),
    )
    config_spec = (
        Field("api_version", _("Versión de la Admin API"), required=False, default=API_VERSION,
              help_text=_("AAAA-MM; por defecto %(v)s.") % {"v": API_VERSION}),
    )
    default_field_mapping = DEFAULT_FIELD_MAPPING
    order_parser = staticmethod(parse_order)
    webhook_reader = ShopifyWebhookReader()
    client_class = ShopifyClient

    @classmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        return sample_order(number=number, test=test)
