"""What the DTE mapping takes in: a sale already decided by the rules engine.

Plain dataclasses, no Django. Money is integer CLP (``int``); quantities and unit prices may carry
decimals (the SII allows them), line amounts are whole pesos. ``price_basis`` says whether the unit
prices and discounts include IVA ("gross", the usual store setting) or not ("net").

A store that adds IVA itself, line by line (Shopify with ``taxes_included: false``, WooCommerce with
net prices), is a "net" sale whose taxable lines carry ``tax``: the IVA the store charged on that line
after its discount. The mapping then bills exactly net + that tax per line (see ``mapping``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .types import NOTE_TYPES

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
    # The IVA the store charged on this whole line (net basis only), or None when the store did not say.
    tax: int | None = None


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
    # With line taxes: the IVA the store took off with the order-level discount (None: 19 % of it).
    global_discount_tax: int | None = None

    @property
    def corrects_text(self) -> bool:
        """A note that only corrects text of the documents it references (CodRef 2): zero amounts."""
        return self.tipo_dte in NOTE_TYPES and bool(self.references) and all(ref.cod_ref == 2 for ref in self.references)

    @property
    def store_tax(self) -> bool:
        """The store added IVA itself and said how much on each line (``SaleLine.tax``)."""
        return any(line.tax is not None for line in self.lines)
