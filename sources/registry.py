"""Stored platform name → adapter class: the registry owns the vocabulary of stores.

A platform can be stored on a connection only when an adapter is registered here (the model's
choices, the API and the forms all read this dict), and adding a store is a new package plus one line.
"""
from django.utils.translation import gettext

from billmysales.integrations.errors import RejectedError

from .base import SourceAdapter
from .demo.adapter import DemoSource
from .multivende.adapter import MultivendeSource
from .shopify.adapter import ShopifySource
from .woocommerce.adapter import WooCommerceSource

SOURCE_ADAPTERS: dict[str, type[SourceAdapter]] = {
    adapter.platform: adapter for adapter in (ShopifySource, WooCommerceSource, MultivendeSource, DemoSource)
}


class SourceNotRegistered(RejectedError, LookupError):
    """A connection names a platform with no adapter (a row written before the adapter was removed)."""


def platform_choices() -> list[tuple[str, str]]:
    return [(platform, str(adapter.label)) for platform, adapter in SOURCE_ADAPTERS.items()]


def source_adapter_class(platform: str) -> type[SourceAdapter]:
    try:
        return SOURCE_ADAPTERS[platform]
    except KeyError:
        raise SourceNotRegistered(
            gettext("El origen de datos de tipo %(platform)s no está disponible en esta versión: no se pueden leer sus órdenes.")
            % {"platform": repr(platform)}
        ) from None


def source_adapter_for(connection) -> SourceAdapter:
    return source_adapter_class(connection.platform)(connection)
