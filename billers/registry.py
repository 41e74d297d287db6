"""Stored provider name → adapter class: the registry owns the vocabulary of billers.

A provider can be stored on a connection only when an adapter is registered here (the model's
choices, the API and the forms read this dict), and adding a biller is a new package plus one line.
"""
from django.utils.translation import gettext

from billmysales.integrations.errors import RejectedError

from .base import BillerAdapter
from .bhexpress.adapter import BHExpressAdapter
from .libredte.adapter import LibreDTEAdapter
from .sandbox.adapter import SandboxAdapter
from .webfactura.adapter import WebFacturaAdapter

BILLER_ADAPTERS: dict[str, type[BillerAdapter]] = {
    adapter.provider: adapter for adapter in (SandboxAdapter, BHExpressAdapter, LibreDTEAdapter, WebFacturaAdapter)
}


class BillerNotRegistered(RejectedError, LookupError):
    """A connection names a provider with no adapter (a row written before the adapter was removed)."""


def provider_choices() -> list[tuple[str, str]]:
    return [(provider, adapter.display_name()) for provider, adapter in BILLER_ADAPTERS.items()]


def biller_adapter_class(provider: str) -> type[BillerAdapter]:
    try:
        return BILLER_ADAPTERS[provider]
    except KeyError:
        raise BillerNotRegistered(
            gettext("El facturador de tipo %(provider)s no está disponible en esta versión: no se puede emitir con él.")
            % {"provider": repr(provider)}
        ) from None


def biller_adapter_for(connection) -> BillerAdapter:
    return biller_adapter_class(connection.provider)(connection)
