"""Stored platform name → adapter class. Adapters are built from the connection row at call time."""
from .base import OrderSource
from .demo.adapter import DemoSource
from .shopify.adapter import ShopifySource
from .woocommerce.adapter import WooCommerceSource

SOURCE_ADAPTERS: dict[str, type[OrderSource]] = {
    "demo": DemoSource,
    "shopify": ShopifySource,
    "woocommerce": WooCommerceSource,
}


def source_adapter_for(connection) -> OrderSource:
    try:
        adapter_class = SOURCE_ADAPTERS[connection.platform]
    except KeyError:
        raise LookupError(f"No adapter for platform {connection.platform!r}") from None
    return adapter_class(connection)
