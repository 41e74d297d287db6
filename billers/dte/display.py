"""How documents and amounts are named to people: one place for the whole product."""
from __future__ import annotations

DOCUMENT_NAMES = {
    33: "Factura electrónica",
    34: "Factura no afecta o exenta electrónica",
    39: "Boleta electrónica",
    41: "Boleta exenta electrónica",
    46: "Factura de compra electrónica",
    52: "Guía de despacho electrónica",
    56: "Nota de débito electrónica",
    61: "Nota de crédito electrónica",
}


def document_name(tipo_dte: int) -> str:
    return DOCUMENT_NAMES.get(tipo_dte, f"Documento tributario electrónico {tipo_dte}")


def format_clp(amount: int) -> str:
    """Whole pesos the Chilean way: ``$36.960``."""
    return f"${amount:,}".replace(",", ".")
