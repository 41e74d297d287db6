"""What the DTE mapping takes in: a sale already decided by the rules engine.

Plain dataclasses, no Django. Money is integer CLP (``int``); quantities and unit prices may carry
decimals (the SII allows them), line amounts are whole pesos. ``price_basis`` says whether the unit
prices and discounts include IVA ("gross", the usual store setting) or not ("net").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

CONSUMIDOR_FINAL_RUT = "66666666-6"
CONSUMIDOR_FINAL_NAME = "Sin RUT"


@dataclass(frozen=True)
class SaleLine:
    name: str
    quantity: Decimal
    unit_price: Decimal
    # Total discount on the line (not per unit), same basis as unit_price.
    discount: int = 0
    exempt: bool = False
    sku: str = ""
    description: str = ""


@dataclass(frozen=True)
class Receptor:
    rut: str = CONSUMIDOR_FINAL_RUT
    razon_social: str = CONSUMIDOR_FINAL_NAME
    giro: str = ""
    address: str = ""
    comuna: str = ""
    city: str = ""
    email: str = ""


@dataclass(frozen=True)
class Emisor:
    rut: str
    razon_social: str
    giro: str
    acteco: int | None = None
    address: str = ""
    comuna: str = ""
    city: str = ""


@dataclass(frozen=True)
class Reference:
    """A reference to another document (credit notes: the invoice they correct)."""

    tipo_doc: int
    folio: int
    fecha: str  # ISO date of the referenced document
    cod_ref: int | None = None  # 1 annuls, 2 corrects text, 3 corrects amounts
    razon: str = ""


@dataclass(frozen=True)
class Sale:
    tipo_dte: int
    lines: tuple[SaleLine, ...]
    paid_total: int
    price_basis: str = "gross"  # "gross" | "net"
    receptor: Receptor = field(default_factory=Receptor)
    # Order-level discount not allocated to lines, same basis as prices.
    global_discount: int = 0
    references: tuple[Reference, ...] = ()
    currency: str = "CLP"
    external_ref: str = ""
