"""The one table of document types: codes, names people read, and what each kind of document is.

Everything else (the DTE core's families and line limits, the rules' choices, the PDF's reference
names, the dashboard) reads it from here. Plain Python: the DTE core imports no Django.
"""
from __future__ import annotations

from dataclasses import dataclass

FACTURA_AFECTA = 33
FACTURA_EXENTA = 34
BOLETA_AFECTA = 39
BOLETA_EXENTA = 41
FACTURA_COMPRA = 46
GUIA_DESPACHO = 52
NOTA_DEBITO = 56
NOTA_CREDITO = 61
# Not an SII DTE code: the SII does not number boletas de honorarios electrónicas (BHE) among the DTE
# types. The product's own code for the BHE a biller such as BHEXPRESS issues.
BOLETA_HONORARIOS = 900


@dataclass(frozen=True)
class DocumentType:
    code: int
    name: str  # as printed on the document: "Boleta electrónica"
    short_name: str  # as merchants choose it: "Boleta afecta"
    family: str  # "boleta" (EnvioBOLETA), "dte" (DTE_v10) or "bhe" (boleta de honorarios, not built by the DTE core)
    kind: str  # "boleta", "factura", "note", "honorarios" or "other"
    exempt: bool = False

    @property
    def max_lines(self) -> int:
        # DTE_v10 allows 60 Detalle elements; EnvioBOLETA_v11 allows 1000.
        return 1000 if self.family == "boleta" else 60


DOCUMENT_TYPES: dict[int, DocumentType] = {
    t.code: t
    for t in (
        DocumentType(FACTURA_AFECTA, "Factura electrónica", "Factura afecta", "dte", "factura"),
        DocumentType(FACTURA_EXENTA, "Factura no afecta o exenta electrónica", "Factura exenta", "dte", "factura", exempt=True),
        DocumentType(BOLETA_AFECTA, "Boleta electrónica", "Boleta afecta", "boleta", "boleta"),
        DocumentType(BOLETA_EXENTA, "Boleta exenta electrónica", "Boleta exenta", "boleta", "boleta", exempt=True),
        DocumentType(FACTURA_COMPRA, "Factura de compra electrónica", "Factura de compra", "dte", "other"),
        DocumentType(GUIA_DESPACHO, "Guía de despacho electrónica", "Guía de despacho", "dte", "other"),
        DocumentType(NOTA_DEBITO, "Nota de débito electrónica", "Nota de débito", "dte", "note"),
        DocumentType(NOTA_CREDITO, "Nota de crédito electrónica", "Nota de crédito", "dte", "note"),
        DocumentType(BOLETA_HONORARIOS, "Boleta de honorarios electrónica", "Boleta de honorarios", "bhe", "honorarios",
                     exempt=True),
    )
}
# What the DTE core builds and reads.
SUPPORTED_TYPES = frozenset(code for code, t in DOCUMENT_TYPES.items() if t.family in ("boleta", "dte"))
BOLETA_TYPES = frozenset(code for code, t in DOCUMENT_TYPES.items() if t.family == "boleta")
DTE_V10_TYPES = frozenset(code for code, t in DOCUMENT_TYPES.items() if t.family == "dte")
EXEMPT_TYPES = frozenset(code for code, t in DOCUMENT_TYPES.items() if t.exempt)
FACTURA_TYPES = frozenset(code for code, t in DOCUMENT_TYPES.items() if t.kind == "factura")
NOTE_TYPES = frozenset(code for code, t in DOCUMENT_TYPES.items() if t.kind == "note")
# What a sale can be billed as: the rules choose among these.
SALE_TYPES = (BOLETA_AFECTA, BOLETA_EXENTA, FACTURA_AFECTA, FACTURA_EXENTA)
# The factura that answers a buyer's request, for each sale type.
FACTURA_FOR = {
    BOLETA_AFECTA: FACTURA_AFECTA,
    BOLETA_EXENTA: FACTURA_EXENTA,
    FACTURA_AFECTA: FACTURA_AFECTA,
    FACTURA_EXENTA: FACTURA_EXENTA,
}
# Documents a Referencia may name that the product never issues: paper documents and others (SII codes).
REFERENCE_ONLY_NAMES = {
    "30": "Factura",
    "32": "Factura no afecta o exenta",
    "35": "Boleta",
    "38": "Boleta exenta",
    "60": "Nota de crédito",
    "801": "Orden de compra",
    "802": "Nota de pedido",
    "803": "Contrato",
    "HES": "Hoja de entrada de servicios",
    "SET": "Set de pruebas",
}


def is_boleta(tipo_dte: int) -> bool:
    return tipo_dte in BOLETA_TYPES


def document_name(tipo_dte: int) -> str:
    known = DOCUMENT_TYPES.get(tipo_dte)
    return known.name if known else f"Documento tributario electrónico {tipo_dte}"


def reference_name(tpo_doc_ref: str) -> str:
    """The name of a referenced document type as it appears in ``TpoDocRef`` (a code or e.g. "HES")."""
    if tpo_doc_ref.isdigit() and int(tpo_doc_ref) in DOCUMENT_TYPES:
        return DOCUMENT_TYPES[int(tpo_doc_ref)].name
    return REFERENCE_ONLY_NAMES.get(tpo_doc_ref, tpo_doc_ref)
