"""The billing rules engine: a store order (``OrderData``) → what to do with it (``Decision``).

Pure Python, no Django: the gateway pipeline loads the tenant's ``RuleSet`` row into a ``RuleConfig``
and calls ``decide_emission`` (first document of an order), ``decide_credit_note`` (a refund or
cancellation of an order that already has a document) or ``decide_text_correction`` (a person corrects
the receptor's text on an issued factura). Every rule it evaluates leaves a ``Reason``
(stable ``code`` + Spanish ``message``), so the order page can answer "why was / wasn't this billed?".

Order of evaluation: what makes the order never billable (store test order, cancelled, before the
start date, excluded channel/tag/SKU) is decided first, so such an order is skipped even while it is
still unpaid; then payment (``wait``), currency and amounts (``hold``), zero or small totals
(``skip``), document type and receptor (``hold`` when a factura cannot be made), and finally the
``Sale`` for the DTE mapping. The mapping checks that the document total equals ``sale.paid_total``
and refuses with its own reason when it does not, so this engine never forces the figures.

Choices where the spec leaves room (also in the README):

- Tags, channels and SKUs compare case-insensitively; an excluded SKU on any line skips the whole
  order (billing part of a paid order would never square with what was paid).
- ``exempt_tags`` match order tags and line tags; a line is also exempt when the store marks the
  product as not taxable.
- A buyer's explicit document choice wins: "boleta" is never upgraded to a factura because RUT and
  giro happen to be filled in. A factura asked for while ``factura_on_request`` is off is held, not
  turned into a boleta.
- ``paid_total`` of the sale is what was paid minus tips (``tips_excluded``), gift-card lines
  (``exclude_gift_cards``) and shipping when ``shipping_as_line`` is off (the merchant does not bill
  shipping, e.g. the courier does). Tips that are not excluded become an exempt "Propina" line.
- An order refunded in full before any document is skipped (no sale); a partially refunded one is
  billed in full and its refund becomes a credit note.
- Store test orders are billed only with ``certification_only`` rules, which the pipeline must send
  to the biller's certification environment.
- Prices follow the rule's ``price_basis``; when the store's own flag disagrees a warning reason is
  added (many Chilean WooCommerce stores declare net prices but do not compute IVA, so the rule, not
  the flag, is what the merchant controls).
- Except when the store added IVA itself and said how much on each line (``OrderLine.tax`` /
  ``ShippingLine.tax`` in whole pesos, which the parsers fill only when the store charged tax on top of
  net prices): then the sale is net and each line carries the store's own IVA, because such stores
  round IVA per line and the document must total what was charged (the DTE mapping bills each line at
  net + its tax, see ``billers.dte.mapping``). The order-level discount goes with the IVA the store
  took off with it (``OrderData.global_discount_tax``). Line taxes with decimals mean the store rounds
  IVA on the subtotal instead: they are not used, and the rule's basis applies with a reason saying so.
  A line taxed well away from 19 % is billed as charged, with a warning reason.
- A text correction (CodRef 2) changes only the receptor's razón social, giro, dirección, comuna or
  ciudad of an issued factura: one line without price naming what is corrected, ``RazonRef`` saying
  what changes ("DONDE DICE … DEBE DECIR …" when it fits the 90 characters, else the fields), and the
  old and new texts in the line's description. The RUT is never "corrected" this way (the factura must
  be annulled and issued again); identical texts (as the document would print them) are nothing to
  correct. It is asked for by a person, so it is emitted even in manual mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from billers.dte.amounts import IVA_RATE
from billers.dte.display import document_name, format_clp
from billers.dte.sale import (
    CONSUMIDOR_FINAL_NAME,
    CONSUMIDOR_FINAL_RUT,
    Receptor,
    Reference,
    Sale,
    SaleLine,
)
from billers.dte.sanitize import FIELD_LIMITS, fit
from billers.dte.types import (
    BOLETA_AFECTA,
    DOCUMENT_TYPES,
    EXEMPT_TYPES,
    FACTURA_FOR,
    FACTURA_TYPES,
    NOTA_CREDITO,
)
from sources.orderdata import OrderData, OrderLine, PaymentStatus, RefundData

from .engine_fields import (
    MAPPED_FIELDS,
    FieldMappingError,
    compile_expression,
    parse_rut,
    read_fields,
)

EMIT = "emit"
SKIP = "skip"
HOLD = "hold"
WAIT = "wait"

# Consumidor final and extranjero: placeholders, never a factura receptor.
GENERIC_RUTS = {CONSUMIDOR_FINAL_RUT, "55555555-5"}
SHIPPING_LINE_NAME = "Despacho"
TIP_LINE_NAME = "Propina"
PARTIAL_REFUND_LINE_NAME = "Devolución parcial"
PAID_STATUSES = {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED}
FACTURA_REQUIRED = (
    ("razon_social", "razón social"),
    ("giro", "giro"),
    ("address", "dirección"),
    ("comuna", "comuna"),
)


@dataclass(frozen=True)
class RuleConfig:
    """One gateway's billing rules. Amounts are integer CLP."""

    default_document_type: int = BOLETA_AFECTA
    factura_on_request: bool = True
    # Overrides of the store's default field mapping: field name → JMESPath over the raw order.
    field_mapping: dict[str, str] = field(default_factory=dict)
    factura_choice_values: tuple[str, ...] = ("factura", "factura electrónica", "factura electronica")
    paid_only: bool = True
    min_amount: int = 0
    exclude_tags: tuple[str, ...] = ()
    exclude_skus: tuple[str, ...] = ()
    exclude_channels: tuple[str, ...] = ()
    start_at: datetime | None = None
    price_basis: str = "gross"
    shipping_as_line: bool = True
    exempt_skus: tuple[str, ...] = ()
    exempt_tags: tuple[str, ...] = ()
    exclude_gift_cards: bool = True
    tips_excluded: bool = True
    mode: str = "auto"
    certification_only: bool = False

    def __post_init__(self):
        if self.default_document_type not in FACTURA_FOR:
            raise ValueError(f"default_document_type must be one of 33, 34, 39, 41, got {self.default_document_type!r}")
        if self.price_basis not in ("gross", "net"):
            raise ValueError(f"price_basis must be 'gross' or 'net', got {self.price_basis!r}")
        if self.mode not in ("auto", "manual"):
            raise ValueError(f"mode must be 'auto' or 'manual', got {self.mode!r}")
        if not isinstance(self.min_amount, int) or self.min_amount < 0:
            raise ValueError(f"min_amount must be a non-negative integer of CLP, got {self.min_amount!r}")
        unknown = set(self.field_mapping) - set(MAPPED_FIELDS)
        if unknown:
            raise ValueError(f"field_mapping has unknown fields {sorted(unknown)}; known: {list(MAPPED_FIELDS)}")
        for name, expression in self.field_mapping.items():
            try:
                compile_expression(expression)
            except Exception as exc:
                raise ValueError(f"field_mapping[{name!r}] is not a valid JMESPath expression: {exc}") from exc


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass
class Decision:
    """``emit`` carries the ``sale``; ``manual`` means a person must approve before it is sent."""

    action: str
    document_type: int | None = None
    sale: Sale | None = None
    reasons: list[Reason] = field(default_factory=list)
    manual: bool = False


class _Stopped(Exception):
    def __init__(self, action: str, document_type: int | None = None):
        super().__init__(action)
        self.action = action
        self.document_type = document_type


class _Trail:
    """The reasons collected while evaluating one order."""

    def __init__(self):
        self.reasons: list[Reason] = []

    def note(self, code: str, message: str) -> None:
        self.reasons.append(Reason(code, message))

    def stop(self, action: str, code: str, message: str, document_type: int | None = None):
        self.note(code, message)
        raise _Stopped(action, document_type)


@dataclass(frozen=True)
class OriginalDocument:
    """The issued document a credit note corrects."""

    tipo_dte: int
    folio: int
    fecha: str  # ISO date
    total: int
    # The receptor printed on it (text corrections start from it); None: read again from the order.
    receptor: Receptor | None = None


# What a text correction may change: receptor field → (label, the DTE element's length).
CORRECTABLE_FIELDS = {
    "razon_social": ("razón social", FIELD_LIMITS[("Receptor", "razon_social")]),
    "giro": ("giro", FIELD_LIMITS[("Receptor", "giro")]),
    "address": ("dirección", FIELD_LIMITS[("Receptor", "dir")]),
    "comuna": ("comuna", FIELD_LIMITS[("Receptor", "cmna")]),
    "city": ("ciudad", FIELD_LIMITS[("Receptor", "ciudad")]),
}
_REQUIRED_ON_FACTURA = {"razon_social", "giro", "address", "comuna"}
_RAZON_REF_LENGTH = FIELD_LIMITS[("Referencia", "razon_ref")]


def decide_emission(
    order: OrderData, rules: RuleConfig, *, field_defaults: dict[str, str], backfill: bool = False
) -> Decision:
    """Decides the first document of ``order``. ``field_defaults`` is the store's own buyer-field mapping
    (the rules' ``field_mapping`` overrides it); ``backfill`` lets orders older than ``start_at`` through."""
    trail = _Trail()
    try:
        document_type, sale = _evaluate_emission(order, rules, field_defaults, backfill, trail)
    except _Stopped as stopped:
        return Decision(action=stopped.action, document_type=stopped.document_type, reasons=trail.reasons)
    return _emit(document_type, sale, rules, trail)


def decide_credit_note(
    order: OrderData,
    refund: RefundData,
    *,
    original: OriginalDocument,
    rules: RuleConfig,
    field_defaults: dict[str, str],
) -> Decision:
    """Decides the credit note (61) for ``refund`` of an order billed as ``original``.

    A refund of the whole document total annuls it (CodRef 1, same lines); a smaller one corrects
    amounts (CodRef 3) with the refunded lines, or one "Devolución parcial" line when the store does
    not say which lines or their amounts do not add up to the money returned.
    """
    if original.tipo_dte not in FACTURA_FOR:
        raise ValueError(f"original.tipo_dte must be one of 33, 34, 39, 41, got {original.tipo_dte!r}")
    trail = _Trail()
    try:
        sale = _evaluate_credit_note(order, refund, original, rules, field_defaults, trail)
    except _Stopped as stopped:
        return Decision(action=stopped.action, document_type=stopped.document_type, reasons=trail.reasons)
    return _emit(NOTA_CREDITO, sale, rules, trail)


def decide_text_correction(
    order: OrderData,
    original: OriginalDocument,
    corrections: dict[str, str],
    rules: RuleConfig,
    *,
    field_defaults: dict[str, str],
) -> Decision:
    """The credit note (61, CodRef 2, zero amounts) that corrects the receptor's text on factura ``original``.

    ``corrections`` maps fields of ``CORRECTABLE_FIELDS`` (or ``rut``, which is held: a wrong RUT needs
    the factura annulled) to their right text. Skips when nothing would change on the document.
    """
    if original.tipo_dte not in FACTURA_TYPES:
        raise ValueError(f"original.tipo_dte must be a factura (33, 34), got {original.tipo_dte!r}")
    unknown = set(corrections) - set(CORRECTABLE_FIELDS) - {"rut"}
    if unknown:
        raise ValueError(f"corrections has unknown fields {sorted(unknown)}; known: {['rut', *CORRECTABLE_FIELDS]}")
    trail = _Trail()
    try:
        sale = _evaluate_text_correction(order, original, corrections, rules, field_defaults, trail)
    except _Stopped as stopped:
        return Decision(action=stopped.action, document_type=stopped.document_type, reasons=trail.reasons)
    return Decision(action=EMIT, document_type=NOTA_CREDITO, sale=sale, reasons=trail.reasons)


def _emit(document_type: int, sale: Sale, rules: RuleConfig, trail: _Trail) -> Decision:
    manual = rules.mode == "manual"
    if manual:
        trail.note("manual_mode", "Modo manual: el documento está listo y espera que una persona apruebe su emisión.")
    else:
        trail.note("auto_mode", f"Modo automático: se emite {document_name(document_type).lower()} ({document_type}).")
    return Decision(action=EMIT, document_type=document_type, sale=sale, reasons=trail.reasons, manual=manual)


def _evaluate_emission(
    order: OrderData, rules: RuleConfig, field_defaults: dict[str, str], backfill: bool, trail: _Trail
) -> tuple[int, Sale]:
    _check_test_order(order, rules, trail)
    _check_cancelled(order, trail)
    _check_start(order, rules, backfill, trail)
    _check_exclusions(order, rules, trail)
    _check_payment(order, rules, trail)
    _check_currency(order, trail)
    _check_whole_pesos(order, trail)
    store_tax = _store_tax(order)
    billable = _billable_total(order, rules, store_tax, trail)
    document_type, receptor = _choose_document(order, rules, field_defaults, trail)
    lines = _sale_lines(order, rules, document_type, store_tax, trail)
    max_lines = DOCUMENT_TYPES[document_type].max_lines
    if len(lines) > max_lines:
        trail.note(
            "many_lines",
            f"El pedido tiene {len(lines)} líneas (este documento admite {max_lines}): se pasan todas y el armado "
            "del documento las agrupa o rechaza el pedido con el motivo; nunca se cortan.",
        )
    _note_price_basis(order, rules, store_tax, trail)
    sale = Sale(
        tipo_dte=document_type,
        lines=lines,
        paid_total=billable,
        price_basis="net" if store_tax else rules.price_basis,
        receptor=receptor,
        global_discount=int(order.global_discount),
        global_discount_tax=_global_discount_tax(order, store_tax),
        external_ref=order.number or order.external_id,
    )
    return document_type, sale


def _check_test_order(order: OrderData, rules: RuleConfig, trail: _Trail) -> None:
    if order.is_test and not rules.certification_only:
        trail.stop(SKIP, "test_order", "Pedido de prueba de la tienda: solo se factura con reglas de certificación.")
    if rules.certification_only:
        trail.note(
            "certification",
            "Reglas solo de certificación: el documento se emite en el ambiente de certificación del SII, "
            "sin validez tributaria.",
        )


def _check_cancelled(order: OrderData, trail: _Trail) -> None:
    if not order.cancelled:
        return
    if order.payment_status in PAID_STATUSES:
        trail.stop(
            HOLD,
            "cancelled_paid",
            "Pedido anulado en la tienda pero figura pagado y aún no tiene documento: revisar (si se devolvió "
            "el dinero no corresponde emitir).",
        )
    trail.stop(
        SKIP,
        "cancelled",
        f"Pedido anulado en la tienda sin pago vigente (estado de pago: {order.payment_status}): no hay venta "
        "que facturar.",
    )


def _check_start(order: OrderData, rules: RuleConfig, backfill: bool, trail: _Trail) -> None:
    if rules.start_at is None:
        return
    start = _aware(rules.start_at)
    if order.created_at is None:
        trail.note(
            "start_unknown",
            f"El pedido no trae fecha de creación; no se puede comparar con el inicio de facturación "
            f"({start:%Y-%m-%d %H:%M} UTC) y se evalúa igual.",
        )
        return
    created = _aware(order.created_at)
    if created >= start:
        trail.note("start_at", f"Pedido creado después del inicio de facturación ({start:%Y-%m-%d %H:%M} UTC).")
        return
    if not backfill:
        trail.stop(
            SKIP,
            "before_start",
            f"Pedido creado el {created:%Y-%m-%d %H:%M} UTC, antes del inicio de facturación "
            f"({start:%Y-%m-%d %H:%M} UTC); para emitirlo usa la carga retroactiva (backfill).",
        )
    trail.note(
        "backfill",
        f"Pedido creado el {created:%Y-%m-%d %H:%M} UTC, antes del inicio de facturación, pero se emite por "
        "carga retroactiva (backfill).",
    )


def _check_exclusions(order: OrderData, rules: RuleConfig, trail: _Trail) -> None:
    if rules.exclude_channels:
        if _fold(order.channel) in _folded(rules.exclude_channels):
            trail.stop(SKIP, "excluded_channel", f"Canal de venta '{order.channel}' excluido por las reglas.")
        trail.note("channel", f"Canal de venta '{order.channel or 'sin canal'}' no está excluido.")
    if rules.exclude_tags:
        excluded = _folded(rules.exclude_tags)
        tags = list(order.tags) + [tag for line in order.lines for tag in line.tags]
        hits = sorted({tag for tag in tags if _fold(tag) in excluded})
        if hits:
            trail.stop(SKIP, "excluded_tag", f"Etiqueta excluida por las reglas: {', '.join(hits)}.")
        trail.note("tags", "Ninguna etiqueta del pedido está excluida.")
    if rules.exclude_skus:
        excluded = _folded(rules.exclude_skus)
        hits = sorted({line.sku for line in order.lines if line.sku and _fold(line.sku) in excluded})
        if hits:
            trail.stop(
                SKIP,
                "excluded_sku",
                f"El pedido contiene SKU excluido por las reglas ({', '.join(hits)}): no se factura el pedido.",
            )
        trail.note("skus", "Ningún SKU del pedido está excluido.")


def _check_payment(order: OrderData, rules: RuleConfig, trail: _Trail) -> None:
    status = order.payment_status
    if status == PaymentStatus.PAID:
        trail.note("paid", "Pedido pagado.")
    elif status == PaymentStatus.PARTIALLY_REFUNDED:
        trail.note(
            "partially_refunded",
            "Pedido pagado y reembolsado en parte: se factura la venta completa y la devolución irá en una nota "
            "de crédito.",
        )
    elif status == PaymentStatus.REFUNDED:
        trail.stop(SKIP, "refunded", "Pedido reembolsado por completo antes de emitir: no hay venta que facturar.")
    elif status in (PaymentStatus.CANCELLED, PaymentStatus.FAILED):
        trail.stop(SKIP, "payment_failed", f"Pago {status}: no hay venta que facturar.")
    elif rules.paid_only:
        trail.stop(WAIT, "not_paid", f"Pago aún no confirmado (estado: {status}): se espera el pago para emitir.")
    else:
        trail.note("not_paid_allowed", f"Pago no confirmado (estado: {status}); las reglas permiten emitir sin pago.")


def _check_currency(order: OrderData, trail: _Trail) -> None:
    if order.currency != "CLP":
        trail.stop(
            HOLD,
            "currency",
            f"Moneda {order.currency or 'no informada'}: solo se emiten documentos en pesos chilenos (CLP); los "
            "documentos de exportación no están soportados.",
        )
    trail.note("currency", "Moneda CLP.")


def _check_whole_pesos(order: OrderData, trail: _Trail) -> None:
    amounts = [("total pagado", order.paid_total), ("propina", order.tips), ("descuento global", order.global_discount)]
    for line in order.lines:
        amounts += [(f"precio de '{line.name}'", line.unit_price), (f"descuento de '{line.name}'", line.discount)]
    for shipping in order.shipping:
        amounts += [
            (f"despacho '{shipping.name}'", shipping.price),
            (f"descuento de despacho '{shipping.name}'", shipping.discount),
        ]
    fractional = [f"{label} = {amount}" for label, amount in amounts if amount != amount.to_integral_value()]
    if fractional:
        trail.stop(
            HOLD,
            "amount_not_integer",
            f"Montos con decimales en CLP ({'; '.join(fractional)}): el peso chileno no tiene decimales; revisar "
            "la configuración de moneda de la tienda.",
        )


def _store_tax(order: OrderData) -> bool:
    """The store added IVA itself and said, in whole pesos, how much on each line (see the module docstring)."""
    line_taxes = [line.tax for line in order.lines] + [shipping.tax for shipping in order.shipping]
    if all(tax is None for tax in line_taxes):
        return False
    given = [tax for tax in (*line_taxes, order.global_discount_tax) if tax is not None]
    return all(tax == tax.to_integral_value() for tax in given)


def _global_discount_tax(order: OrderData, store_tax: bool) -> int | None:
    return int(order.global_discount_tax) if store_tax and order.global_discount_tax is not None else None


def _billable_total(order: OrderData, rules: RuleConfig, store_tax: bool, trail: _Trail) -> int:
    paid = int(order.paid_total)
    if paid == 0:
        trail.stop(SKIP, "zero_total", "Total pagado $0 (por ejemplo, descuento del 100 %): no hay nada que facturar.")
    billable = paid
    gift_lines = [line for line in order.lines if line.is_gift_card]
    if gift_lines and rules.exclude_gift_cards:
        gift_total = sum(_line_amount(line, store_tax) for line in gift_lines)
        billable -= gift_total
        trail.note(
            "gift_cards_excluded",
            f"Gift cards fuera del documento ({format_clp(gift_total)}): venderlas no es una venta afecta; se factura "
            "cuando se usan.",
        )
    if order.tips and rules.tips_excluded:
        billable -= int(order.tips)
        trail.note("tip_excluded", f"Propina fuera del documento ({format_clp(int(order.tips))}): no es una venta.")
    if order.shipping and not rules.shipping_as_line:
        shipping_total = sum(
            int(s.price - s.discount + ((s.tax or 0) if store_tax else 0)) for s in order.shipping if s.price > s.discount
        )
        billable -= shipping_total
        trail.note(
            "shipping_not_billed",
            f"Despacho fuera del documento ({format_clp(shipping_total)}): las reglas indican que el comercio no lo factura.",
        )
    if billable < 0:
        trail.stop(
            HOLD,
            "negative_total",
            f"El total pagado ({format_clp(paid)}) es menor que lo excluido del documento: revisar el pedido.",
        )
    if billable == 0:
        if gift_lines and rules.exclude_gift_cards and all(line.is_gift_card for line in order.lines):
            trail.stop(SKIP, "gift_cards_only", "El pedido solo contiene gift cards: no hay venta afecta que facturar.")
        trail.stop(SKIP, "zero_total", "Después de las exclusiones no queda monto que facturar.")
    if billable < rules.min_amount:
        trail.stop(
            SKIP,
            "below_minimum",
            f"Monto a facturar {format_clp(billable)} bajo el mínimo configurado ({format_clp(rules.min_amount)}).",
        )
    trail.note("paid_total", f"Monto a facturar {format_clp(billable)} (total pagado {format_clp(paid)}).")
    return billable


def _choose_document(
    order: OrderData, rules: RuleConfig, field_defaults: dict[str, str], trail: _Trail
) -> tuple[int, Receptor]:
    fields = _buyer_fields(order, rules, field_defaults, trail)
    base = rules.default_document_type
    choice = fields["document_choice"]
    wants_factura = _fold(choice) in _folded(rules.factura_choice_values)
    if base in FACTURA_TYPES:
        trail.note("document_type", f"Las reglas emiten siempre {document_name(base).lower()} ({base}).")
        return base, _factura_receptor(order, fields, base, trail)
    if wants_factura:
        factura = FACTURA_FOR[base]
        if not rules.factura_on_request:
            trail.stop(
                HOLD,
                "factura_not_enabled",
                f"El comprador pidió factura ('{choice}') pero las reglas no emiten facturas a pedido: revisar; no "
                "se emite una boleta en su lugar.",
                factura,
            )
        trail.note("document_type", f"El comprador pidió factura ('{choice}'): {document_name(factura).lower()} ({factura}).")
        return factura, _factura_receptor(order, fields, factura, trail)
    if not choice and rules.factura_on_request and fields["rut"] and fields["razon_social"] and fields["giro"]:
        factura = FACTURA_FOR[base]
        trail.note(
            "document_type",
            f"El pedido trae RUT, razón social y giro: se emite {document_name(factura).lower()} ({factura}).",
        )
        return factura, _factura_receptor(order, fields, factura, trail)
    chosen = f" (el comprador eligió '{choice}')" if choice else ""
    trail.note("document_type", f"Se emite {document_name(base).lower()} ({base}){chosen}.")
    return base, _boleta_receptor(order, fields, trail)


def _buyer_fields(
    order: OrderData, rules: RuleConfig, field_defaults: dict[str, str], trail: _Trail
) -> dict[str, str]:
    mapping = {**field_defaults, **rules.field_mapping}
    try:
        return read_fields(order.raw, mapping)
    except FieldMappingError as exc:
        trail.stop(
            HOLD,
            "field_mapping",
            f"No se pudo leer un dato del comprador con la configuración de campos ({exc}): revisar el mapeo.",
        )


def _factura_receptor(order: OrderData, fields: dict[str, str], document_type: int, trail: _Trail) -> Receptor:
    problems = False
    missing = []
    rut = parse_rut(fields["rut"]) if fields["rut"] else None
    if not fields["rut"]:
        missing.append("RUT")
    elif rut is None:
        problems = True
        trail.note(
            "invalid_rut",
            f"RUT '{fields['rut']}' inválido (dígito verificador incorrecto): la factura queda retenida para "
            "revisión y no se reemplaza por una boleta.",
        )
    elif rut.canonical in GENERIC_RUTS:
        problems = True
        trail.note("invalid_rut", f"RUT genérico {rut.canonical}: no sirve para una factura; revisar.")
    missing += [label for name, label in FACTURA_REQUIRED if not fields[name]]
    if missing:
        problems = True
        trail.note("factura_missing_data", f"Faltan datos para la factura: {', '.join(missing)}.")
    if problems:
        raise _Stopped(HOLD, document_type)
    trail.note("receptor", f"Receptor de la factura: {fields['razon_social']}, RUT {rut.canonical}.")
    return Receptor(
        rut=rut.canonical,
        razon_social=fields["razon_social"],
        giro=fields["giro"],
        address=fields["address"],
        comuna=fields["comuna"],
        city=order.buyer.city or fields["comuna"],
        email=fields["email"] or order.buyer.email,
    )


def _boleta_receptor(order: OrderData, fields: dict[str, str], trail: _Trail) -> Receptor:
    email = fields["email"] or order.buyer.email
    rut = parse_rut(fields["rut"]) if fields["rut"] else None
    if rut is not None and rut.canonical not in GENERIC_RUTS:
        trail.note("receptor", f"Boleta con el RUT del comprador ({rut.canonical}).")
        return Receptor(
            rut=rut.canonical,
            razon_social=fields["razon_social"] or order.buyer.name or CONSUMIDOR_FINAL_NAME,
            address=fields["address"] or order.buyer.address,
            comuna=fields["comuna"] or order.buyer.comuna,
            city=order.buyer.city,
            email=email,
        )
    if fields["rut"] and rut is None:
        trail.note(
            "rut_ignored",
            f"RUT '{fields['rut']}' inválido; no se pidió factura, así que la boleta va a consumidor final "
            f"({CONSUMIDOR_FINAL_RUT}).",
        )
    else:
        trail.note("receptor", f"Boleta a consumidor final ({CONSUMIDOR_FINAL_RUT}, '{CONSUMIDOR_FINAL_NAME}').")
    return Receptor(email=email)


def _sale_lines(
    order: OrderData, rules: RuleConfig, document_type: int, store_tax: bool, trail: _Trail
) -> tuple[SaleLine, ...]:
    all_exempt = document_type in EXEMPT_TYPES
    lines = []
    exempt_notes = []
    for line in order.lines:
        if line.is_gift_card and rules.exclude_gift_cards:
            continue
        cause = None if all_exempt else _exemption(line, order, rules)
        if cause:
            exempt_notes.append(f"'{line.name}' ({cause})")
        lines.append(
            SaleLine(
                name=line.name,
                quantity=_plain(line.quantity),
                unit_price=_plain(line.unit_price),
                discount=int(line.discount),
                exempt=all_exempt or cause is not None,
                sku=line.sku,
                tax=_whole(line.tax) if store_tax else None,
            )
        )
    if all_exempt:
        trail.note("exempt_document", f"Documento exento ({document_type}): todas las líneas van exentas.")
    elif exempt_notes:
        trail.note("exempt_lines", f"Líneas exentas: {', '.join(exempt_notes)}.")
    if rules.shipping_as_line:
        lines += _shipping_lines(order, all_exempt, store_tax, trail)
    if order.tips and not rules.tips_excluded:
        lines.append(SaleLine(name=TIP_LINE_NAME, quantity=Decimal(1), unit_price=_plain(order.tips), exempt=True))
        trail.note("tip_line", f"Propina como línea exenta ({format_clp(int(order.tips))}): las reglas la incluyen.")
    return tuple(lines)


def _shipping_lines(order: OrderData, all_exempt: bool, store_tax: bool, trail: _Trail) -> list[SaleLine]:
    lines = []
    for shipping in order.shipping:
        label = shipping.name or "sin nombre"
        if shipping.price <= shipping.discount:
            trail.note("free_shipping", f"Despacho '{label}' gratis: no agrega línea.")
            continue
        lines.append(
            SaleLine(
                name=SHIPPING_LINE_NAME,
                quantity=Decimal(1),
                unit_price=_plain(shipping.price),
                discount=int(shipping.discount),
                exempt=all_exempt,
                description=shipping.name,
                tax=_whole(shipping.tax) if store_tax else None,
            )
        )
        discount = f" con descuento de {format_clp(int(shipping.discount))}" if shipping.discount else ""
        trail.note(
            "shipping", f"Despacho '{label}' como línea '{SHIPPING_LINE_NAME}': {format_clp(int(shipping.price))}{discount}."
        )
    return lines


def _exemption(line: OrderLine, order: OrderData, rules: RuleConfig) -> str | None:
    """Why ``line`` is exempt from IVA (IndExe), or ``None`` when it is taxable."""
    if line.sku and _fold(line.sku) in _folded(rules.exempt_skus):
        return f"SKU exento {line.sku}"
    exempt_tags = _folded(rules.exempt_tags)
    tag = next((t for t in list(line.tags) + list(order.tags) if _fold(t) in exempt_tags), None)
    if tag:
        return f"etiqueta exenta {tag}"
    if not line.taxable:
        return "producto sin impuesto en la tienda"
    return None


def _note_price_basis(order: OrderData, rules: RuleConfig, store_tax: bool, trail: _Trail) -> None:
    if store_tax:
        trail.note(
            "price_basis",
            "La tienda agrega el IVA a precios netos y lo redondea en cada línea: cada línea se cobra neta más el "
            "IVA que la tienda le cobró, para que el documento sume exactamente lo pagado.",
        )
        _note_store_tax_rate(order, trail)
        return
    if any(line.tax is not None for line in order.lines):
        trail.note(
            "store_tax_subtotal",
            "La tienda agrega el IVA pero no en pesos enteros por línea (lo redondea sobre el subtotal): se usan los "
            "precios según las reglas.",
        )
    gross = rules.price_basis == "gross"
    label = "brutos (IVA incluido)" if gross else "netos (sin IVA)"
    trail.note("price_basis", f"Precios tratados como {label}, según las reglas.")
    if order.prices_include_tax is not None and order.prices_include_tax != gross:
        store = "con" if order.prices_include_tax else "sin"
        trail.note(
            "price_basis_mismatch",
            f"Atención: la tienda declara precios {store} IVA y las reglas dicen {label}; si el total del documento "
            "no cuadra con lo pagado, el armado del documento lo rechazará con el detalle.",
        )


def _note_store_tax_rate(order: OrderData, trail: _Trail) -> None:
    odd = []
    for line in order.lines:
        if line.tax is None or not line.taxable or line.is_gift_card:
            continue
        net = line.quantity * line.unit_price - line.discount
        # Per-line rounding moves the tax half a peso at most (per unit, for stores that round each unit).
        if abs(line.tax - net * IVA_RATE / 100) > 1 + line.quantity / 2:
            odd.append(f"'{line.name}' ({format_clp(int(line.tax))} sobre {format_clp(int(net))} neto)")
    if odd:
        trail.note(
            "store_tax_rate",
            f"Atención: el IVA que cobró la tienda no es el 19 % del neto en {', '.join(odd)}; el documento cobra lo "
            "mismo que la tienda, pero conviene revisar sus impuestos.",
        )


def _evaluate_credit_note(
    order: OrderData,
    refund: RefundData,
    original: OriginalDocument,
    rules: RuleConfig,
    field_defaults: dict[str, str],
    trail: _Trail,
) -> Sale:
    named = f"{document_name(original.tipo_dte).lower()} N° {original.folio}"
    _check_currency(order, trail)
    if refund.amount != refund.amount.to_integral_value():
        trail.stop(HOLD, "amount_not_integer", f"Monto devuelto con decimales en CLP ({refund.amount}): revisar.")
    amount = int(refund.amount) - _refunded_gift_cards(order, refund, rules, trail)
    if amount <= 0:
        trail.stop(SKIP, "nothing_to_credit", "La devolución no tiene monto que acreditar.")
    if amount > original.total:
        trail.stop(
            HOLD,
            "refund_exceeds_document",
            f"La devolución ({format_clp(amount)}) supera el total de la {named} ({format_clp(original.total)}): revisar.",
        )
    receptor = _original_receptor(order, rules, field_defaults, original.tipo_dte, trail)
    if amount == original.total:
        reference = Reference(
            tipo_doc=original.tipo_dte, folio=original.folio, fecha=original.fecha, cod_ref=1, razon="Anula documento"
        )
        store_tax = _store_tax(order)
        lines = _sale_lines(order, rules, original.tipo_dte, store_tax, trail)
        global_discount = int(order.global_discount)
        global_discount_tax = _global_discount_tax(order, store_tax)
        price_basis = "net" if store_tax else rules.price_basis
        trail.note(
            "full_refund",
            f"Devolución total ({format_clp(amount)}): la nota de crédito anula la {named} (CodRef 1) con sus "
            "mismas líneas.",
        )
    else:
        reference = Reference(
            tipo_doc=original.tipo_dte, folio=original.folio, fecha=original.fecha, cod_ref=3, razon="Devolución parcial"
        )
        lines = _refund_lines(order, refund, rules, original.tipo_dte, amount, trail)
        global_discount, global_discount_tax = 0, None
        # Refund amounts are the money returned to the buyer, i.e. gross.
        price_basis = "gross"
        trail.note(
            "partial_refund",
            f"Devolución parcial ({format_clp(amount)} de {format_clp(original.total)}): la nota de crédito corrige "
            f"montos de la {named} (CodRef 3).",
        )
    return Sale(
        tipo_dte=NOTA_CREDITO,
        lines=lines,
        paid_total=amount,
        price_basis=price_basis,
        receptor=receptor,
        global_discount=global_discount,
        global_discount_tax=global_discount_tax,
        references=(reference,),
        external_ref=order.number or order.external_id,
    )


def _evaluate_text_correction(
    order: OrderData,
    original: OriginalDocument,
    corrections: dict[str, str],
    rules: RuleConfig,
    field_defaults: dict[str, str],
    trail: _Trail,
) -> Sale:
    named = f"{document_name(original.tipo_dte).lower()} N° {original.folio}"
    receptor = original.receptor or _original_receptor(order, rules, field_defaults, original.tipo_dte, trail)
    if "rut" in corrections:
        rut = parse_rut(str(corrections["rut"] or ""))
        if rut is None or rut.canonical != receptor.rut:
            trail.stop(
                HOLD,
                "rut_not_correctable",
                f"El RUT del receptor no se corrige con una nota de crédito de texto: anule la {named} con una nota de "
                "crédito (CodRef 1) y emita una nueva con el RUT correcto.",
                NOTA_CREDITO,
            )
    changes = []
    for name, (label, length) in CORRECTABLE_FIELDS.items():
        if name not in corrections:
            continue
        new = " ".join(str(corrections[name] or "").split())
        if not new and name in _REQUIRED_ON_FACTURA:
            trail.stop(HOLD, "factura_missing_data", f"La {label} de una factura no puede quedar vacía.", NOTA_CREDITO)
        # Compared and quoted as the document prints them: a difference past the element's length changes nothing.
        printed, corrected = fit(getattr(receptor, name), length) or "", fit(new, length) or ""
        if printed != corrected:
            changes.append((name, label, printed, corrected))
    if not changes:
        trail.stop(SKIP, "nothing_to_correct", f"Los datos indicados ya son los de la {named}: no hay nada que corregir.")
    what = _enumeration([label for _, label, _, _ in changes])
    description = " ".join(f"{label.capitalize()}: donde dice «{old}» debe decir «{new}»." for _, label, old, new in changes)
    razon = f"DONDE DICE {changes[0][2]} DEBE DECIR {changes[0][3]}" if len(changes) == 1 else ""
    if not razon or len(razon) > _RAZON_REF_LENGTH:
        razon = f"Corrige {what} del receptor"
    trail.note(
        "text_correction",
        f"Nota de crédito que corrige texto de la {named} (CodRef 2), con montos en cero. {description}",
    )
    return Sale(
        tipo_dte=NOTA_CREDITO,
        lines=(SaleLine(name=f"Corrige {what}", quantity=Decimal(1), unit_price=Decimal(0), description=description),),
        paid_total=0,
        price_basis="net",
        receptor=replace(receptor, **{name: new for name, _, _, new in changes}),
        references=(
            Reference(tipo_doc=original.tipo_dte, folio=original.folio, fecha=original.fecha, cod_ref=2, razon=razon),
        ),
        external_ref=order.number or order.external_id,
    )


def _enumeration(items: list[str]) -> str:
    """``["a", "b", "c"]`` → ``"a, b y c"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} y {items[-1]}"


def _refunded_gift_cards(order: OrderData, refund: RefundData, rules: RuleConfig, trail: _Trail) -> int:
    """Money returned for gift-card lines, which were never on the original document."""
    if not rules.exclude_gift_cards:
        return 0
    gift_ids = {line.line_id for line in order.lines if line.is_gift_card}
    total = sum(int(r.amount) for r in refund.lines if r.line_id in gift_ids)
    if total:
        trail.note("gift_card_refund", f"Devolución de gift cards ({format_clp(total)}) fuera de la nota de crédito.")
    return total


def _original_receptor(
    order: OrderData, rules: RuleConfig, field_defaults: dict[str, str], original_type: int, trail: _Trail
) -> Receptor:
    fields = _buyer_fields(order, rules, field_defaults, trail)
    if original_type in FACTURA_TYPES:
        return _factura_receptor(order, fields, NOTA_CREDITO, trail)
    return _boleta_receptor(order, fields, trail)


def _refund_lines(
    order: OrderData, refund: RefundData, rules: RuleConfig, original_type: int, amount: int, trail: _Trail
) -> tuple[SaleLine, ...]:
    all_exempt = original_type in EXEMPT_TYPES
    by_id = {line.line_id: line for line in order.lines}
    lines = []
    known = bool(refund.lines) or refund.shipping_amount > 0
    for refunded in refund.lines:
        line = by_id.get(refunded.line_id)
        if line is None or refunded.quantity <= 0 or refunded.amount % refunded.quantity:
            known = False
            break
        if line.is_gift_card and rules.exclude_gift_cards:
            continue
        lines.append(
            SaleLine(
                name=line.name,
                quantity=_plain(refunded.quantity),
                unit_price=_plain(refunded.amount / refunded.quantity),
                exempt=all_exempt or _exemption(line, order, rules) is not None,
                sku=line.sku,
            )
        )
    if refund.shipping_amount > 0:
        lines.append(
            SaleLine(
                name=SHIPPING_LINE_NAME,
                quantity=Decimal(1),
                unit_price=_plain(refund.shipping_amount),
                exempt=all_exempt,
            )
        )
    if known and sum(line.quantity * line.unit_price for line in lines) == amount:
        trail.note("refund_lines", f"Nota de crédito con las {len(lines)} línea(s) devueltas.")
        return tuple(lines)
    trail.note(
        "refund_amount_line",
        f"La tienda no detalla líneas que sumen lo devuelto: una línea '{PARTIAL_REFUND_LINE_NAME}' por "
        f"{format_clp(amount)}.",
    )
    return (
        SaleLine(name=PARTIAL_REFUND_LINE_NAME, quantity=Decimal(1), unit_price=Decimal(amount), exempt=all_exempt),
    )


def _line_amount(line: OrderLine, store_tax: bool) -> int:
    return int(line.quantity * line.unit_price - line.discount + ((line.tax or 0) if store_tax else 0))


def _whole(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount)


def _plain(value: Decimal) -> Decimal:
    """``19990.00`` → ``19990``: whole amounts without the store's decimal places."""
    integral = value.to_integral_value()
    return integral if value == integral else value.normalize()




def _fold(text: str) -> str:
    return text.strip().casefold()


def _folded(values) -> set[str]:
    return {_fold(value) for value in values}


def _aware(moment: datetime) -> datetime:
    # Stores that send local times without offset are read as UTC, so comparisons never fail.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
