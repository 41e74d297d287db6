"""Stored provider name → adapter class."""
from .base import DocumentIssuer
from .sandbox.adapter import SandboxIssuer

BILLER_ADAPTERS: dict[str, type[DocumentIssuer]] = {
    "sandbox": SandboxIssuer,
}


def biller_adapter_for(connection) -> DocumentIssuer:
    try:
        adapter_class = BILLER_ADAPTERS[connection.provider]
    except KeyError:
        raise LookupError(f"No adapter for biller {connection.provider!r}") from None
    return adapter_class(connection)
