"""Sale → boleta de honorarios electrónica (BHE): the body of BHExpress's ``POST /api/v1/bhe/emitir``.

Plain Python, no Django. ``prepare_bhe`` refuses (``MappingRefused``, a code and a Spanish message)
what cannot be issued as a BHE and returns the prepared payload the adapter stores on the emission.

The body is the official clients' shape (reference/biller-bhexpress.md §2.3): ``Encabezado.IdDoc``
(``FchEmis``, ``TipoRetencion``), ``Emisor.RUTEmisor``, ``Receptor`` (``RUTRecep``, ``RznSocRecep``,
``DirRecep``, ``CmnaRecep``) and ``Detalle`` lines with ``MontoItem``, or ``QtyItem`` × ``PrcItem`` with
``DescuentoMonto``. Amounts are **gross honorarios** (before the retention).

How a sale becomes BHE lines:

* A BHE carries no IVA, so every line is a gross amount whatever the store marked as taxable or exempt.
  A store that adds IVA on top of net prices (``price_basis`` "net" with taxable lines) charged the
  buyer an IVA a BHE cannot state: refused (``bhe_iva_charged``), never silently relabelled.
* Each line's amount is ``round_half_up(quantity × unit price) − its discount``. With a whole quantity
  and a whole price the line is sent as ``QtyItem``/``PrcItem``/``DescuentoMonto`` (BHExpress's own
  integer arithmetic gives the same amount, and the buyer sees quantity and price); a quantity of 1
  without discount, a fractional quantity or price, or a grossed-up line is sent as ``MontoItem`` only,
  so no rounding happens at BHExpress.
* The order-level discount has no place in a BHE: it is spread over the lines in proportion to their
  amounts (largest remainder, whole pesos), as ``DescuentoMonto`` or a smaller ``MontoItem``.
* Shipping arrives as a sale line ("Despacho") and stays one: the buyer paid it as part of the service.
* Lines worth $0 (a gift) are left out: they add nothing to the honorarios. Orders with more lines
  than ``max_lines`` keep the first ``max_lines − 1`` and group the rest into one line named
  "Otros N ítems: …" with their sum, so the total never changes and nothing is cut.
* Texts are made ISO-8859-1 and cut to the DTE limits (line names 80, receptor name 100, address 70,
  comuna 20), as the SII's other documents need; a line with no name takes its SKU or "Ítem N".

"The document total equals what the buyer paid", with retention:

* **The emisor withholds** (``TipoRetencion`` 2, the professional pays the retention to the SII): the
  buyer pays the gross. The lines add up to what was paid, and the BHE's gross is that amount.
* **The receptor withholds** (``TipoRetencion`` 1, the buyer pays the professional the líquido and the
  retention to the SII): what the buyer paid is the líquido. The gross is the one whose líquido is
  exactly the amount paid at the period's rate (``retention.bruto_for``), and the lines are grossed up
  in proportion (largest remainder) so they add up to it.

Either way the product's ``MntTotal`` for the document is what the buyer paid, and ``MntBruto``,
``MntRetencion`` and ``MntNeto`` (líquido) are the BHE's own figures.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from billers.dte.amounts import round_half_up
from billers.dte.display import document_name, format_clp
from billers.dte.errors import MappingRefused
from billers.dte.sale import CONSUMIDOR_FINAL_NAME, CONSUMIDOR_FINAL_RUT, Receptor, Sale, SaleLine
from billers.dte.sanitize import clean_rut, fit
from billers.dte.types import FACTURA_TYPES

from .retention import bruto_for, periodo, retention, retention_rate

# Who withholds the retention (``TipoRetencion``), as API Gateway's client names them (bhe.py).
RETENCION_RECEPTOR = 1
RETENCION_EMISOR = 2
# Connection setting → TipoRetencion; "by_document": the receptor when the sale is a factura (a
# business that asked for one, which must withhold), the emisor on boletas (final consumers cannot).
RETENTION_CHOICES = ("emisor", "receptor", "by_document")


def tipo_retencion(choice: str, tipo_dte: int) -> int:
    if choice == "receptor" or (choice == "by_document" and tipo_dte in FACTURA_TYPES):
        return RETENCION_RECEPTOR
    return RETENCION_EMISOR


def _refuse(code: str, message: str, **details) -> MappingRefused:
    return MappingRefused(code, message, details)


@dataclass(frozen=True)
class _Line:
    name: str
    amount: int
    # Set only when the line can be sent as QtyItem × PrcItem − DescuentoMonto with whole numbers.
    quantity: int | None = None
    unit_price: int | None = None
    discount: int = 0

    def as_json(self) -> dict:
        if self.quantity is None or (self.quantity == 1 and not self.discount):
            return {"NmbItem": self.name, "MontoItem": self.amount}
        line = {"NmbItem": self.name, "QtyItem": self.quantity, "PrcItem": self.unit_price}
        if self.discount:
            line["DescuentoMonto"] = self.discount
        return line

    def with_amount(self, amount: int, *, exact: bool) -> _Line:
        """The same line at ``amount``: as a larger discount when it stays exact, else as MontoItem only."""
        if exact and self.quantity is not None:
            return _Line(self.name, amount, self.quantity, self.unit_price, self.discount + self.amount - amount)
        return _Line(self.name, amount)


def allocate(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (whole pesos, largest remainder, ties to the first)."""
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _check_sale(sale: Sale, *, accepted_types: frozenset[int], label: str) -> None:
    if sale.tipo_dte not in accepted_types:
        accepted = ", ".join(str(t) for t in sorted(accepted_types))
        raise _refuse(
            "document_type_not_supported",
            f"{label} emite boletas de honorarios por ventas de tipo {accepted}; no emite "
            f"{document_name(sale.tipo_dte).lower()} ({sale.tipo_dte}). Una boleta de honorarios no se corrige con notas "
            "de crédito ni de débito: se anula.",
            tipo_dte=sale.tipo_dte,
        )
    if sale.currency != "CLP":
        raise _refuse("currency", f"La orden está en {sale.currency}; solo se emiten boletas de honorarios en CLP.", currency=sale.currency)
    for name, value in (("paid_total", sale.paid_total), ("global_discount", sale.global_discount)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _refuse("non_integer_amount", f"{name} debe ser un número entero de pesos; vino {value!r}.", field=name)
    if sale.paid_total <= 0:
        raise _refuse("non_positive_total", f"El total pagado es {format_clp(sale.paid_total)}; solo se emiten boletas por "
                      "un total positivo.", paid_total=sale.paid_total)
    if sale.global_discount < 0:
        raise _refuse("negative_amount", f"El descuento de la orden es negativo ({sale.global_discount}).")
    if not sale.lines:
        raise _refuse("no_lines", "La orden no tiene líneas.")
    if sale.price_basis == "net" and not all(line.exempt for line in sale.lines):
        raise _refuse(
            "bhe_iva_charged",
            "La tienda cobra IVA aparte de sus precios netos, y una boleta de honorarios no lleva IVA: configure precios "
            "finales (con todo incluido) en la tienda y en las reglas, o emita con un facturador de boletas y facturas.",
            price_basis=sale.price_basis,
        )


def _line(n: int, line: SaleLine) -> _Line:
    quantity, price, discount = line.quantity, line.unit_price, line.discount
    if not isinstance(discount, int) or isinstance(discount, bool):
        raise _refuse("non_integer_amount", f"El descuento de la línea {n} debe ser pesos enteros; vino {discount!r}.", line=n)
    if not isinstance(quantity, (Decimal, int)) or not isinstance(price, (Decimal, int)) or isinstance(quantity, bool):
        raise _refuse("non_decimal_amount", f"Cantidad y precio de la línea {n} deben ser Decimal o int, nunca float.", line=n)
    if not Decimal(quantity).is_finite() or not Decimal(price).is_finite():
        raise _refuse("invalid_amount", f"La línea {n} tiene una cantidad o un precio no finito.", line=n)
    if quantity <= 0:
        raise _refuse("invalid_quantity", f"La línea {n} ({line.name!r}) tiene cantidad {quantity}; debe ser positiva.", line=n)
    if price < 0 or discount < 0:
        raise _refuse("negative_amount", f"La línea {n} ({line.name!r}) tiene precio o descuento negativo.", line=n)
    gross = round_half_up(Decimal(quantity) * Decimal(price))
    if discount > gross:
        raise _refuse(
            "line_discount_exceeds_amount",
            f"Línea {n} ({line.name!r}): el descuento {format_clp(discount)} es mayor que el monto de la línea {format_clp(gross)}.",
            line=n, discount=discount, amount=gross,
        )
    name = next((text for text in (fit(line.name, 80), fit(line.sku, 80)) if text), f"Ítem {n}")
    whole = Decimal(quantity) == Decimal(quantity).to_integral_value() and Decimal(price) == Decimal(price).to_integral_value()
    if whole:
        return _Line(name, gross - discount, int(quantity), int(price), discount)
    return _Line(name, gross - discount)


def _receptor(receptor: Receptor) -> dict:
    rut = clean_rut(receptor.rut or CONSUMIDOR_FINAL_RUT)
    if rut is None:
        raise _refuse(
            "invalid_receptor_rut",
            f"El RUT del comprador {receptor.rut!r} no es válido (dígito verificador o formato); la orden queda retenida para revisión.",
            rut=receptor.rut,
        )
    name = fit(receptor.razon_social, 100) or (CONSUMIDOR_FINAL_NAME if rut == CONSUMIDOR_FINAL_RUT else None)
    if name is None:
        raise _refuse("incomplete_receptor", "Falta el nombre o razón social del comprador (receptor de la boleta de honorarios).",
                      missing=["razón social"])
    data = {"RUTRecep": rut, "RznSocRecep": name}
    for tag, value, limit in (("DirRecep", receptor.address, 70), ("CmnaRecep", receptor.comuna, 20)):
        if fit(value, limit):
            data[tag] = fit(value, limit)
    return data


def _grouped(lines: list[_Line], max_lines: int) -> list[_Line]:
    if len(lines) <= max_lines:
        return lines
    kept, rest = lines[: max_lines - 1], lines[max_lines - 1:]
    prefix = f"Otros {len(rest)} ítems" if kept else f"{len(rest)} ítems"
    text = f"{prefix}: {', '.join(line.name for line in rest)}"
    if len(text) > 80:
        text = text[:77].rstrip(", ") + "..."
    return [*kept, _Line(fit(text, 80), sum(line.amount for line in rest))]


def prepare_bhe(
    sale: Sale, *, fecha: datetime.date, emisor_rut: str, retention_by: str, accepted_types: frozenset[int], max_lines: int,
    label: str,
) -> dict:
    """The prepared BHE for ``sale`` dated ``fecha``, or ``MappingRefused``.

    Returns ``{"bhe": <body of /bhe/emitir, without our reference>, "paid_total", "tasa_retencion",
    "totals": {"MntBruto", "MntRetencion", "MntNeto", "MntTotal"}}`` (JSON only: it is stored).
    """
    _check_sale(sale, accepted_types=accepted_types, label=label)
    rate = retention_rate(fecha)
    if rate is None:
        raise _refuse("no_retention_rate", f"No hay tasa de retención de boletas de honorarios para {fecha:%m/%Y}.",
                      fecha=fecha.isoformat())
    rut_emisor = clean_rut(emisor_rut)
    if rut_emisor is None:
        raise _refuse("invalid_emisor", f"El RUT emisor de la conexión ({emisor_rut!r}) no es válido.", rut=emisor_rut)
    receptor = _receptor(sale.receptor)
    lines = [_line(n, line) for n, line in enumerate(sale.lines, start=1)]

    subtotal = sum(line.amount for line in lines)
    if sale.global_discount > subtotal:
        raise _refuse(
            "discount_exceeds_amount",
            f"El descuento de la orden {format_clp(sale.global_discount)} es mayor que la suma de sus líneas {format_clp(subtotal)}.",
            global_discount=sale.global_discount, subtotal=subtotal,
        )
    if sale.global_discount:
        shares = allocate(sale.global_discount, [line.amount for line in lines])
        lines = [line.with_amount(line.amount - share, exact=True) for line, share in zip(lines, shares, strict=True)]
    total = subtotal - sale.global_discount
    if total != sale.paid_total:
        difference = total - sale.paid_total
        raise _refuse(
            "total_mismatch",
            f"Las líneas de la orden suman {format_clp(total)} y el total pagado es {format_clp(sale.paid_total)}: difieren en "
            f"{format_clp(abs(difference))} ({'más' if difference > 0 else 'menos'} que lo pagado). No se emite una boleta de "
            "honorarios que no cuadre con el pago.",
            document_total=total, paid_total=sale.paid_total, difference=difference,
        )

    tipo = tipo_retencion(retention_by, sale.tipo_dte)
    bruto = sale.paid_total
    if tipo == RETENCION_RECEPTOR:
        # The buyer paid the líquido: the gross is the one whose líquido is what was paid.
        bruto = bruto_for(sale.paid_total, rate)
        targets = allocate(bruto, [line.amount for line in lines])
        lines = [line.with_amount(target, exact=False) for line, target in zip(lines, targets, strict=True)]
    lines = _grouped([line for line in lines if line.amount > 0], max_lines)
    retencion = retention(bruto, rate)
    liquido = bruto - retencion
    return {
        "bhe": {
            "Encabezado": {
                "IdDoc": {"FchEmis": fecha.isoformat(), "TipoRetencion": tipo},
                "Emisor": {"RUTEmisor": rut_emisor},
                "Receptor": receptor,
            },
            "Detalle": [line.as_json() for line in lines],
        },
        "paid_total": sale.paid_total,
        "periodo": periodo(fecha),
        "tasa_retencion": str(rate),
        "totals": {"MntBruto": bruto, "MntRetencion": retencion, "MntNeto": liquido, "MntTotal": sale.paid_total},
    }
