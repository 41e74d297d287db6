"""WooCommerce stores: orders arrive by signed ``order.*`` webhooks and are read by the WooCommerce parser.

An issued document is written back as a private order note through the REST API (``client.py``, the
only code that calls the store). WooCommerce never retries a failed delivery and disables the webhook
after five failures, so polling the REST API is needed for a complete picture.

Credentials: ``webhook_secret`` (the secret of the WooCommerce webhook, not the REST consumer secret)
and, during a rotation, ``previous_webhook_secret``; ``consumer_key`` and ``consumer_secret`` (a REST
key with write access) for the write-back. ``store_url`` is the site's home URL, over HTTPS. Config:
``query_string_auth`` and ``rest_prefix`` (see ``client.py``).
"""
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.spec import BOOL, SECRET_TEXT, Field

from ..base import StoreSource
from .client import WooCommerceClient
from .fields import DEFAULT_FIELD_MAPPING
from .orders import parse_order
from .samples import sample_order
from .webhooks import WooCommerceWebhookReader


class WooCommerceSource(StoreSource):
    platform = "woocommerce"
    label = "WooCommerce"
    credentials_spec = (
        Field("webhook_secret", _("Secreto del webhook de WooCommerce"), SECRET_TEXT),
        Field("previous_webhook_secret", _("Secreto anterior (durante una rotación)"), SECRET_TEXT, required=False),
        Field("consumer_key", _("Clave de consumidor (API REST)"), SECRET_TEXT, required=False,
              help_text=_("Necesaria para escribir el documento en la orden.")),
        Field("consumer_secret", _("Secreto de consumidor (API REST)"), SECRET_TEXT, required=False),
    )
    config_spec = (
        Field("query_string_auth", _("Enviar las claves en la URL"), BOOL, required=False, default=False,
              help_text=_("Solo si el servidor elimina la cabecera Authorization (\"Consumer key is missing\").")),
        Field("rest_prefix", _("Prefijo de la API REST"), required=False, default="wp-json"),
    )
    default_field_mapping = DEFAULT_FIELD_MAPPING
    order_parser = staticmethod(parse_order)
    webhook_reader = WooCommerceWebhookReader()
    client_class = WooCommerceClient

    @classmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        return sample_order(number=number, test=test)
