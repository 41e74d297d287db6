"""Rules engine decisions on realistic orders from each platform (table-style, no database)."""
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billers.dte.sale import Receptor, Reference
from rules.engine import (
    EMIT,
    HOLD,
    SKIP,
    WAIT,
    OriginalDocument,
    RuleConfig,
    decide_credit_note,
    decide_emission,
    decide_text_correction,
)
from sources.multivende.fields import DEFAULT_FIELD_MAPPING as MULTIVENDE_FIELDS
from sources.multivende.orders import parse_order as parse_multivende
from sources.orderdata import RefundData
from sources.shopify.fields import DEFAULT_FIELD_MAPPING as SHOPIFY_FIELDS
from sources.shopify.orders import parse_order as parse_shopify
from sources.woocommerce.fields import DEFAULT_FIELD_MAPPING as WOOCOMMERCE_FIELDS
from sources.woocommerce.orders import parse_order as parse_woocommerce
from tests.shared import SAMPLES_DIR, needs_samples

ROOT = Path(__file__).resolve().parents[2]
PARSERS = {"shopify": parse_shopify, "woocommerce": parse_woocommerce, "multivende": parse_multivende}
# Each store's own default buyer-field mapping, as its adapter hands it to the engine.
FIELDS = {"shopify": SHOPIFY_FIELDS, "woocommerce": WOOCOMMERCE_FIELDS, "multivende": MULTIVENDE_FIELDS}

SHOPIFY_FACTURA = "order_paid_factura_note_attributes.json"
SHOPIFY_GIFT_TIP = "order_paid_boleta_gift_card_tip.json"
SHOPIFY_REFUNDED = "order_partially_refunded.json"
SHOPIFY_FREE = "order_hundred_percent_discount.json"
WOO_FACTURA = "order_processing_factura_meta.json"
WOO_BOLETA = "order_completed_boleta_no_tax.json"
WOO_FEES = "order_refunded_partial_with_fee.json"
MV_BOLETA = "checkout_mercadolibre_boleta.json"
MV_FACTURA = "checkout_falabella_factura.json"

TALADRO = ("Taladro percutor Bosch GSB 650W", 1, 54990, 5499, False)
BROCAS = ("Set brocas acero rápido 19 piezas", 2, 12990, 0, False)
DESPACHO_STARKEN = ("Despacho", 1, 3990, 0, False)
CAFE = ("Café de grano Colombia Huila 1 kg", 2, 15990, 0, False)
DESPACHO_CHILEXPRESS = ("Despacho", 1, 4990, 2000, False)
AUDIFONOS = ("Audífonos inalámbricos JBL Tune 520BT - Azul", 1, 29990, 3000, False)
CABLES = ("Cable USB-C 1 m trenzado", 2, 3995, 0, False)
DESPACHO_ML = ("Despacho", 1, 3490, 0, False)
SOFA = ("Sofá 3 cuerpos lino gris", 1, 449990, 0, False)
EMITTED_FACTURA = ["paid", "currency", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"]
FACTURA_HOLD = ["paid", "currency", "paid_total", "document_type"]


def load(platform: str, name: str, patch: Callable[[dict], object] | None = None):
    raw = json.loads((ROOT / "sources" / platform / "fixtures" / name).read_text(encoding="utf-8"))
    if patch:
        patch(raw)
    return PARSERS[platform](raw)


def line_tuples(sale):
    return [(line.name, line.quantity, line.unit_price, line.discount, line.exempt) for line in sale.lines]


def set_note(name: str, value: str | None):
    """Sets (or, with ``None``, removes) a Shopify note attribute."""

    def patch(raw):
        notes = [note for note in raw["note_attributes"] if note["name"] != name]
        if value is not None:
            notes.append({"name": name, "value": value})
        raw["note_attributes"] = notes

    return patch


def set_meta(key: str, value: str | None):
    """Sets (or, with ``None``, removes) a WooCommerce meta_data entry."""

    def patch(raw):
        meta = [m for m in raw["meta_data"] if m["key"] != key]
        if value is not None:
            meta.append({"id": 999, "key": key, "value": value})
        raw["meta_data"] = meta

    return patch


def chain(*patches):
    def patch(raw):
        for each in patches:
            each(raw)

    return patch


def only_gift_card(raw):
    raw["line_items"] = [item for item in raw["line_items"] if item["gift_card"]]
    raw.update(shipping_lines=[], total_tip_received="0.00", total_price="20000.00")


@dataclass
class Case:
    id: str
    platform: str
    fixture: str
    action: str
    reasons: list[str]
    document_type: int | None = None
    rules: dict = field(default_factory=dict)
    patch: Callable[[dict], object] | None = None
    backfill: bool = False
    lines: list[tuple] | None = None
    paid_total: int | None = None
    receptor_rut: str | None = None
    messages: tuple[str, ...] = ()
    manual: bool = False
    global_discount: int = 0


CASES = [
    Case(
        "shopify RUT in note attributes → factura 33",
        "shopify", SHOPIFY_FACTURA, EMIT, EMITTED_FACTURA, 33,
        lines=[TALADRO, BROCAS, DESPACHO_STARKEN], paid_total=79461, receptor_rut="76086428-5",
        messages=("El comprador pidió factura ('Factura')", "Comercial Los Andes SpA, RUT 76086428-5"),
    ),
    Case(
        "shopify company data without a choice → factura 33 (factura_on_request)",
        "shopify", SHOPIFY_FACTURA, EMIT, EMITTED_FACTURA, 33, patch=set_note("Tipo de documento", None),
        lines=[TALADRO, BROCAS, DESPACHO_STARKEN], paid_total=79461, receptor_rut="76086428-5",
        messages=("El pedido trae RUT, razón social y giro",),
    ),
    Case(
        "shopify RUT typed in the company field (fallback) → factura 33",
        "shopify", SHOPIFY_FACTURA, EMIT, EMITTED_FACTURA, 33,
        patch=chain(set_note("RUT", None), lambda raw: raw["billing_address"].update(company="76.086.428-5")),
        lines=[TALADRO, BROCAS, DESPACHO_STARKEN], paid_total=79461, receptor_rut="76086428-5",
        messages=("Receptor de la factura: Comercial Los Andes SpA",),
    ),
    Case(
        "shopify buyer chose boleta although company data is present → boleta 39 with RUT",
        "shopify", SHOPIFY_FACTURA, EMIT, EMITTED_FACTURA, 39, patch=set_note("Tipo de documento", "Boleta"),
        lines=[TALADRO, BROCAS, DESPACHO_STARKEN], paid_total=79461, receptor_rut="76086428-5",
        messages=("(el comprador eligió 'Boleta')", "Boleta con el RUT del comprador (76086428-5)"),
    ),
    Case(
        "shopify factura requested with invalid RUT → hold, never a boleta",
        "shopify", SHOPIFY_FACTURA, HOLD, FACTURA_HOLD + ["invalid_rut"], 33, patch=set_note("RUT", "76.086.428-4"),
        messages=("RUT '76.086.428-4' inválido", "no se reemplaza por una boleta"),
    ),
    Case(
        "woocommerce factura requested with invalid RUT → hold",
        "woocommerce", WOO_FACTURA, HOLD, FACTURA_HOLD + ["invalid_rut"], 33, patch=set_meta("_billing_rut", "76.086.428-4"),
        messages=("RUT '76.086.428-4' inválido",),
    ),
    Case(
        "woocommerce factura without giro and comuna → hold listing what is missing",
        "woocommerce", WOO_FACTURA, HOLD, FACTURA_HOLD + ["factura_missing_data"], 33,
        patch=chain(set_meta("_billing_giro", None), set_meta("_billing_comuna", None), lambda raw: raw["billing"].update(city="")),
        messages=("Faltan datos para la factura: giro, comuna.",),
    ),
    Case(
        "woocommerce factura requested but rules do not issue facturas on request → hold",
        "woocommerce", WOO_FACTURA, HOLD, ["paid", "currency", "paid_total", "factura_not_enabled"], 33,
        rules={"factura_on_request": False},
        messages=("El comprador pidió factura ('factura') pero las reglas no emiten facturas a pedido",),
    ),
    Case(
        "woocommerce rules always factura, consumer without tax data → hold",
        "woocommerce", WOO_BOLETA, HOLD, FACTURA_HOLD + ["factura_missing_data"], 33,
        rules={"default_document_type": 33},
        messages=("Las reglas emiten siempre factura electrónica (33)", "Faltan datos para la factura: RUT, razón social, giro."),
    ),
    Case(
        "shopify order in USD → hold",
        "shopify", SHOPIFY_GIFT_TIP, HOLD, ["paid", "currency"], patch=lambda raw: raw.update(currency="USD"),
        messages=("Moneda USD: solo se emiten documentos en pesos chilenos (CLP)",),
    ),
    Case(
        "shopify 100 % discount, zero total → skip",
        "shopify", SHOPIFY_FREE, SKIP, ["paid", "currency", "zero_total"], messages=("Total pagado $0",),
    ),
    Case(
        "woocommerce free shipping → no Despacho line",
        "woocommerce", WOO_BOLETA, EMIT,
        ["paid", "currency", "paid_total", "document_type", "receptor", "free_shipping", "price_basis", "auto_mode"],
        39, lines=[SOFA], paid_total=449990, receptor_rut="66666666-6",
        messages=("Despacho 'Envío gratis' gratis: no agrega línea.",),
    ),
    Case(
        "shopify gift card and tip excluded, discounted shipping → Despacho line",
        "shopify", SHOPIFY_GIFT_TIP, EMIT,
        ["paid", "currency", "gift_cards_excluded", "tip_excluded", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"],
        39, lines=[CAFE, DESPACHO_CHILEXPRESS], paid_total=34970, receptor_rut="66666666-6",
        messages=("Gift cards fuera del documento ($20.000)", "Propina fuera del documento ($2.000)", "Monto a facturar $34.970 (total pagado $56.970)"),
    ),
    Case(
        "shopify tip kept by the rules → exempt Propina line",
        "shopify", SHOPIFY_GIFT_TIP, EMIT,
        ["paid", "currency", "gift_cards_excluded", "paid_total", "document_type", "receptor", "shipping", "tip_line", "price_basis", "auto_mode"],
        39, rules={"tips_excluded": False},
        lines=[CAFE, DESPACHO_CHILEXPRESS, ("Propina", 1, 2000, 0, True)], paid_total=36970,
    ),
    Case(
        "shopify order of gift cards only → skip",
        "shopify", SHOPIFY_GIFT_TIP, SKIP, ["paid", "currency", "gift_cards_excluded", "gift_cards_only"], patch=only_gift_card,
    ),
    Case(
        "woocommerce on-hold bank transfer → wait",
        "woocommerce", WOO_BOLETA, WAIT, ["not_paid"], patch=lambda raw: raw.update(status="on-hold"),
        messages=("Pago aún no confirmado (estado: pending)",),
    ),
    Case(
        "shopify pending payment → wait", "shopify", SHOPIFY_FACTURA, WAIT, ["not_paid"],
        patch=lambda raw: raw.update(financial_status="pending"),
    ),
    Case(
        "multivende pending payment → wait", "multivende", MV_BOLETA, WAIT, ["not_paid"],
        patch=lambda raw: raw.update(paymentStatus="pending"),
    ),
    Case(
        "woocommerce pending but rules do not require payment → emit",
        "woocommerce", WOO_BOLETA, EMIT,
        ["not_paid_allowed", "currency", "paid_total", "document_type", "receptor", "free_shipping", "price_basis", "auto_mode"],
        39, rules={"paid_only": False}, patch=lambda raw: raw.update(status="on-hold"), lines=[SOFA], paid_total=449990,
    ),
    Case(
        "shopify excluded tag (case-insensitive) → skip", "shopify", SHOPIFY_GIFT_TIP, SKIP, ["excluded_tag"],
        rules={"exclude_tags": ("CyberDay",)}, messages=("Etiqueta excluida por las reglas: cyberday.",),
    ),
    Case(
        "shopify excluded channel → skip", "shopify", SHOPIFY_REFUNDED, SKIP, ["excluded_channel"],
        rules={"exclude_channels": ("POS",)}, messages=("Canal de venta 'pos' excluido",),
    ),
    Case(
        "shopify excluded SKU → skip the whole order", "shopify", SHOPIFY_FACTURA, SKIP, ["excluded_sku"],
        rules={"exclude_skus": ("bos-gsb-650",)}, messages=("BOS-GSB-650",),
    ),
    Case(
        "shopify exclusion rules that do not match leave their reasons",
        "shopify", SHOPIFY_FACTURA, EMIT, ["channel", "tags", "skus"] + EMITTED_FACTURA, 33,
        rules={"exclude_channels": ("pos",), "exclude_tags": ("canje",), "exclude_skus": ("GIFT-01",)},
        lines=[TALADRO, BROCAS, DESPACHO_STARKEN], paid_total=79461,
    ),
    Case(
        "multivende sale before the start date → skip", "multivende", MV_BOLETA, SKIP, ["before_start"],
        rules={"start_at": datetime(2026, 11, 20, tzinfo=UTC)},
        messages=("Pedido creado el 2026-11-19 17:22 UTC, antes del inicio de facturación (2026-11-20 00:00 UTC)",),
    ),
    Case(
        "multivende sale before the start date with backfill → emit",
        "multivende", MV_BOLETA, EMIT,
        ["backfill", "paid", "currency", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"],
        39, rules={"start_at": datetime(2026, 11, 20, tzinfo=UTC)}, backfill=True,
        lines=[AUDIFONOS, CABLES, DESPACHO_ML], paid_total=38470, receptor_rut="66666666-6",
    ),
    Case(
        "multivende sale after the start date → emit",
        "multivende", MV_BOLETA, EMIT,
        ["start_at", "paid", "currency", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"],
        39, rules={"start_at": datetime(2026, 11, 1, tzinfo=UTC)}, lines=[AUDIFONOS, CABLES, DESPACHO_ML], paid_total=38470,
    ),
    Case(
        "multivende factura in manual mode → emit, waiting for a person",
        "multivende", MV_FACTURA, EMIT,
        ["paid", "currency", "paid_total", "document_type", "receptor", "free_shipping", "price_basis", "manual_mode"],
        33, rules={"mode": "manual"}, lines=[('Monitor LG 27" UltraGear 4K', 2, 109990, 0, False)], paid_total=219980,
        receptor_rut="76086428-5", manual=True,
    ),
    Case(
        "shopify exempt SKU → exempt line in a factura",
        "shopify", SHOPIFY_FACTURA, EMIT,
        ["paid", "currency", "paid_total", "document_type", "receptor", "exempt_lines", "shipping", "price_basis", "auto_mode"],
        33, rules={"exempt_skus": ("BRO-HSS-19",)},
        lines=[TALADRO, BROCAS[:4] + (True,), DESPACHO_STARKEN], paid_total=79461,
        messages=("Líneas exentas: 'Set brocas acero rápido 19 piezas' (SKU exento BRO-HSS-19).",),
    ),
    Case(
        "woocommerce boleta exenta 41 → every line exempt",
        "woocommerce", WOO_BOLETA, EMIT,
        ["paid", "currency", "paid_total", "document_type", "receptor", "exempt_document", "free_shipping", "price_basis", "auto_mode"],
        41, rules={"default_document_type": 41}, lines=[SOFA[:4] + (True,)], paid_total=449990,
    ),
    Case(
        "multivende order below the minimum → skip", "multivende", MV_BOLETA, SKIP,
        ["paid", "currency", "below_minimum"], rules={"min_amount": 50000},
        messages=("Monto a facturar $38.470 bajo el mínimo configurado ($50.000).",),
    ),
    Case(
        "shopify CLP price with decimals → hold", "shopify", SHOPIFY_GIFT_TIP, HOLD, ["paid", "currency", "amount_not_integer"],
        patch=lambda raw: raw["line_items"][0].update(price="15990.50"),
        messages=("precio de 'Café de grano Colombia Huila 1 kg' = 15990.50",),
    ),
    Case(
        "woocommerce cancelled before payment → skip", "woocommerce", WOO_BOLETA, SKIP, ["cancelled"],
        patch=lambda raw: raw.update(status="cancelled"),
    ),
    Case(
        "shopify cancelled while still paid → hold", "shopify", SHOPIFY_GIFT_TIP, HOLD, ["cancelled_paid"],
        patch=lambda raw: raw.update(cancelled_at="2026-11-19T08:00:00-03:00"),
    ),
    Case(
        "shopify refunded in full before any document → skip", "shopify", SHOPIFY_GIFT_TIP, SKIP, ["refunded"],
        patch=lambda raw: raw.update(financial_status="refunded"),
    ),
    Case(
        "shopify store test order → skip", "shopify", SHOPIFY_GIFT_TIP, SKIP, ["test_order"],
        patch=lambda raw: raw.update(test=True),
    ),
    Case(
        "shopify store test order with certification rules → emit",
        "shopify", SHOPIFY_GIFT_TIP, EMIT,
        ["certification", "paid", "currency", "gift_cards_excluded", "tip_excluded", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"],
        39, rules={"certification_only": True}, patch=lambda raw: raw.update(test=True),
        lines=[CAFE, DESPACHO_CHILEXPRESS], paid_total=34970,
    ),
    Case(
        "woocommerce fees: charge as a line, discount fee as global discount, boleta with buyer RUT",
        "woocommerce", WOO_FEES, EMIT,
        ["partially_refunded", "currency", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"],
        39,
        lines=[
            ("Parka impermeable Doite", 1, 39990, 0, False),
            ("Gorro polar", 1, 7990, 0, False),
            ("Envoltorio de regalo", 1, 1000, 0, False),
            ("Despacho", 1, 4990, 0, False),
        ],
        paid_total=52970, receptor_rut="16543210-K", global_discount=1000,
    ),
    Case(
        "multivende shipping not billed by the merchant → no Despacho, total without shipping",
        "multivende", MV_BOLETA, EMIT,
        ["paid", "currency", "shipping_not_billed", "paid_total", "document_type", "receptor", "price_basis", "auto_mode"],
        39, rules={"shipping_as_line": False}, lines=[AUDIFONOS, CABLES], paid_total=34980,
    ),
    Case(
        "shopify custom field mapping for the RUT → boleta with the buyer's RUT",
        "shopify", SHOPIFY_GIFT_TIP, EMIT,
        ["paid", "currency", "gift_cards_excluded", "tip_excluded", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode"],
        39, rules={"field_mapping": {"rut": "note_attributes[?name=='rut_cliente'].value | [0]"}},
        patch=set_note("rut_cliente", "12.345.678-5"), lines=[CAFE, DESPACHO_CHILEXPRESS], paid_total=34970, receptor_rut="12345678-5",
    ),
    Case(
        "shopify invalid RUT on a boleta → consumidor final, with the reason",
        "shopify", SHOPIFY_GIFT_TIP, EMIT,
        ["paid", "currency", "gift_cards_excluded", "tip_excluded", "paid_total", "document_type", "rut_ignored", "shipping", "price_basis", "auto_mode"],
        39, patch=set_note("RUT", "12.345.678-9"), lines=[CAFE, DESPACHO_CHILEXPRESS], paid_total=34970, receptor_rut="66666666-6",
        messages=("RUT '12.345.678-9' inválido; no se pidió factura",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide_emission(case: Case):
    order = load(case.platform, case.fixture, case.patch)

    decision = decide_emission(order, RuleConfig(**case.rules), field_defaults=FIELDS[case.platform], backfill=case.backfill)

    assert decision.action == case.action
    assert [reason.code for reason in decision.reasons] == case.reasons
    assert all(reason.message for reason in decision.reasons)
    messages = " ".join(reason.message for reason in decision.reasons)
    for fragment in case.messages:
        assert fragment in messages
    assert decision.document_type == case.document_type
    assert decision.manual is case.manual
    if case.action != EMIT:
        assert decision.sale is None
        return
    sale = decision.sale
    assert sale.tipo_dte == case.document_type
    assert line_tuples(sale) == case.lines
    assert sale.paid_total == case.paid_total
    assert sale.global_discount == case.global_discount
    assert sale.price_basis == "gross"
    assert sale.currency == "CLP"
    assert sale.external_ref == order.number
    assert sale.references == ()
    if case.receptor_rut:
        assert sale.receptor.rut == case.receptor_rut
    # Whole pesos: the store's ".00" is gone, so the DTE mapping gets integer amounts.
    assert all(line.unit_price == line.unit_price.to_integral_value() for line in sale.lines)
    assert all(isinstance(line.discount, int) for line in sale.lines)


def test_factura_receptor_is_complete():
    decision = decide_emission(load("woocommerce", WOO_FACTURA), RuleConfig(), field_defaults=FIELDS["woocommerce"])

    receptor = decision.sale.receptor
    assert (receptor.rut, receptor.razon_social, receptor.giro) == (
        "76086428-5",
        "Distribuidora Austral Ltda.",
        "Venta al por menor de calzado y prendas de vestir",
    )
    assert (receptor.address, receptor.comuna, receptor.city) == ("Av. Irarrázaval 2821 Local 4", "Ñuñoa", "Santiago")
    assert receptor.email == "catalina.soto@distribuidoraaustral.cl"


def test_boleta_without_rut_goes_to_consumidor_final_with_the_buyers_email():
    decision = decide_emission(load("multivende", MV_BOLETA), RuleConfig(), field_defaults=FIELDS["multivende"])

    receptor = decision.sale.receptor
    assert (receptor.rut, receptor.razon_social, receptor.giro) == ("66666666-6", "Sin RUT", "")
    assert receptor.email == "jcontreras.8f21b@mail.mercadolibre.cl"


@pytest.mark.parametrize("document_type, noted", [(33, True), (39, False)])
def test_more_than_60_lines_are_all_kept(document_type, noted):
    def sixty_one_lines(raw):
        cafe = raw["line_items"][0]
        raw["line_items"] = [dict(cafe, id=cafe["id"] + n, quantity=1) for n in range(61)]
        raw.update(shipping_lines=[], total_tip_received="0.00", total_price=f"{61 * 15990}.00")
        if document_type == 33:
            raw["note_attributes"] = [{"name": "RUT", "value": "76.086.428-5"}, {"name": "Razón social", "value": "X SpA"},
                                      {"name": "Giro", "value": "Comercio"}, {"name": "Dirección", "value": "Calle 1"},
                                      {"name": "Comuna", "value": "Santiago"}]

    order = load("shopify", SHOPIFY_GIFT_TIP, sixty_one_lines)

    decision = decide_emission(order, RuleConfig(), field_defaults=FIELDS["shopify"])

    assert (decision.action, decision.document_type) == (EMIT, document_type)
    assert len(decision.sale.lines) == 61
    assert set(line_tuples(decision.sale)) == {("Café de grano Colombia Huila 1 kg", 1, 15990, 0, False)}
    assert decision.sale.paid_total == 61 * 15990
    # A factura holds 60 lines, a boleta 1000: only the factura is told its lines will not fit.
    many = [reason for reason in decision.reasons if reason.code == "many_lines"]
    assert bool(many) == noted
    if noted:
        assert "61 líneas" in many[0].message and "nunca se cortan" in many[0].message


def test_field_mapping_that_fails_on_the_order_holds_it():
    rules = RuleConfig(field_mapping={"address": "join(', ', [billing_address.address1, `42`])"})

    decision = decide_emission(load("shopify", SHOPIFY_FACTURA), rules, field_defaults=FIELDS["shopify"])

    assert decision.action == HOLD
    assert decision.reasons[-1].code == "field_mapping"
    assert "address" in decision.reasons[-1].message


@dataclass
class CreditCase:
    id: str
    platform: str
    fixture: str
    refund: Callable[[object], RefundData]
    original_type: int
    original_total: int
    action: str
    reasons: list[str]
    lines: list[tuple] | None = None
    cod_ref: int | None = None
    razon: str = ""
    receptor_rut: str | None = None
    price_basis: str = "gross"
    global_discount: int = 0


CREDIT_CASES = [
    CreditCase(
        "shopify partial refund with its line → CodRef 3 with the refunded line",
        "shopify", SHOPIFY_REFUNDED, lambda order: order.refunds[0], 39, 33970, EMIT,
        ["currency", "receptor", "refund_lines", "partial_refund", "auto_mode"],
        lines=[("Polera algodón orgánico talla M", 1, 12990, 0, False)], cod_ref=3, razon="Devolución parcial",
        receptor_rut="66666666-6",
    ),
    CreditCase(
        "shopify full refund → CodRef 1 annulling with the same lines",
        "shopify", SHOPIFY_REFUNDED, lambda order: RefundData("r-full", None, Decimal("33970.00")), 39, 33970, EMIT,
        ["currency", "receptor", "free_shipping", "full_refund", "auto_mode"],
        lines=[("Polera algodón orgánico talla M", 2, 12990, 0, False), ("Tazón cerámica artesanal Pomaire", 1, 7990, 0, False)],
        cod_ref=1, razon="Anula documento", receptor_rut="66666666-6",
    ),
    CreditCase(
        "shopify refund smaller than its lines (restocking fee) → one 'Devolución parcial' line",
        "shopify", SHOPIFY_REFUNDED,
        lambda order: RefundData("r-fee", None, Decimal("12000"), lines=order.refunds[0].lines), 39, 33970, EMIT,
        ["currency", "receptor", "refund_amount_line", "partial_refund", "auto_mode"],
        lines=[("Devolución parcial", 1, 12000, 0, False)], cod_ref=3, razon="Devolución parcial",
    ),
    CreditCase(
        "woocommerce refund summary without lines → one 'Devolución parcial' line, same receptor RUT",
        "woocommerce", WOO_FEES, lambda order: order.refunds[0], 39, 52970, EMIT,
        ["currency", "receptor", "refund_amount_line", "partial_refund", "auto_mode"],
        lines=[("Devolución parcial", 1, 7990, 0, False)], cod_ref=3, razon="Devolución parcial", receptor_rut="16543210-K",
    ),
    CreditCase(
        "shopify factura cancelled in full → CodRef 1 to the same company",
        "shopify", SHOPIFY_FACTURA, lambda order: RefundData("r-1", None, Decimal("79461")), 33, 79461, EMIT,
        ["currency", "receptor", "shipping", "full_refund", "auto_mode"],
        lines=[TALADRO, BROCAS, DESPACHO_STARKEN], cod_ref=1, razon="Anula documento", receptor_rut="76086428-5",
    ),
    CreditCase(
        "boleta exenta partially refunded → exempt credit line",
        "woocommerce", WOO_FEES, lambda order: order.refunds[0], 41, 52970, EMIT,
        ["currency", "receptor", "refund_amount_line", "partial_refund", "auto_mode"],
        lines=[("Devolución parcial", 1, 7990, 0, True)], cod_ref=3, razon="Devolución parcial",
    ),
    CreditCase(
        "refund larger than the document → hold",
        "shopify", SHOPIFY_REFUNDED, lambda order: RefundData("r-big", None, Decimal("40000")), 39, 33970, HOLD,
        ["currency", "refund_exceeds_document"],
    ),
    CreditCase(
        "refund with decimals in CLP → hold",
        "shopify", SHOPIFY_REFUNDED, lambda order: RefundData("r-dec", None, Decimal("12990.50")), 39, 33970, HOLD,
        ["currency", "amount_not_integer"],
    ),
]


@pytest.mark.parametrize("case", CREDIT_CASES, ids=[case.id for case in CREDIT_CASES])
def test_decide_credit_note(case: CreditCase):
    order = load(case.platform, case.fixture)

    decision = decide_credit_note(
        order,
        case.refund(order),
        original=OriginalDocument(tipo_dte=case.original_type, folio=10452, fecha="2026-11-19", total=case.original_total),
        rules=RuleConfig(),
        field_defaults=FIELDS[case.platform],
    )

    assert decision.action == case.action
    assert [reason.code for reason in decision.reasons] == case.reasons
    if case.action != EMIT:
        assert decision.sale is None
        return
    sale = decision.sale
    assert (decision.document_type, sale.tipo_dte) == (61, 61)
    assert line_tuples(sale) == case.lines
    assert sale.paid_total == sum(line.quantity * line.unit_price - line.discount for line in sale.lines) - sale.global_discount
    assert sale.references == (
        Reference(tipo_doc=case.original_type, folio=10452, fecha="2026-11-19", cod_ref=case.cod_ref, razon=case.razon),
    )
    assert sale.price_basis == case.price_basis
    assert sale.external_ref == order.number
    if case.receptor_rut:
        assert sale.receptor.rut == case.receptor_rut


def test_credit_note_for_a_factura_whose_buyer_data_is_now_invalid_is_held():
    order = load("shopify", SHOPIFY_FACTURA, set_note("RUT", "76.086.428-4"))

    decision = decide_credit_note(
        order,
        RefundData("r-1", None, Decimal("79461")),
        original=OriginalDocument(tipo_dte=33, folio=881, fecha="2026-11-18", total=79461),
        rules=RuleConfig(),
        field_defaults=SHOPIFY_FIELDS,
    )

    assert (decision.action, decision.document_type, decision.sale) == (HOLD, 61, None)
    assert [reason.code for reason in decision.reasons] == ["currency", "invalid_rut"]


def test_credit_note_rejects_an_unknown_original_type():
    order = load("shopify", SHOPIFY_REFUNDED)

    with pytest.raises(ValueError, match="original.tipo_dte"):
        decide_credit_note(
            order, order.refunds[0], original=OriginalDocument(tipo_dte=52, folio=1, fecha="2026-11-19", total=33970),
            rules=RuleConfig(), field_defaults=SHOPIFY_FIELDS,
        )


@pytest.mark.shared
@needs_samples
@pytest.mark.parametrize(
    "platform, sample, action, last_reason",
    [
        ("shopify", "shopify_order_docs_example_with_refunds.json", WAIT, "not_paid"),
        ("shopify", "shopify_order_shopify_python_api_fixture.json", WAIT, "not_paid"),
        ("woocommerce", "woocommerce_order_rest_docs_v3_retrieve_727.json", HOLD, "currency"),
    ],
)
def test_shared_samples(platform, sample, action, last_reason):
    order = PARSERS[platform](json.loads((SAMPLES_DIR / sample).read_text()))

    decision = decide_emission(order, RuleConfig(), field_defaults=FIELDS[platform])

    assert (decision.action, decision.reasons[-1].code, decision.sale) == (action, last_reason, None)


@pytest.mark.shared
@needs_samples
def test_shared_sample_refund_in_usd_is_held():
    order = parse_shopify(json.loads((SAMPLES_DIR / "shopify_order_docs_example_with_refunds.json").read_text()))

    decision = decide_credit_note(
        order, order.refunds[0], original=OriginalDocument(tipo_dte=39, folio=1, fecha="2008-01-10", total=410),
        rules=RuleConfig(), field_defaults=SHOPIFY_FIELDS,
    )

    assert decision.action == HOLD
    assert [reason.code for reason in decision.reasons] == ["currency"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"default_document_type": 61}, "default_document_type"),
        ({"price_basis": "bruto"}, "price_basis"),
        ({"mode": "semi"}, "mode"),
        ({"min_amount": -1}, "min_amount"),
        ({"min_amount": Decimal("1000")}, "min_amount"),
        ({"field_mapping": {"telefono": "billing_address.phone"}}, "unknown fields"),
        ({"field_mapping": {"rut": "note_attributes[?name=='rut'"}}, "not a valid JMESPath"),
    ],
)
def test_rule_config_rejects_invalid_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RuleConfig(**kwargs)


SHOPIFY_NET = "order_paid_net_prices_tax_lines.json"
NET_LINE_TAXES = [3194, 3592, 2871, 2076, 2366, 637]


def test_store_that_adds_tax_gives_a_net_sale_with_its_own_line_taxes():
    order = load("shopify", SHOPIFY_NET)

    decision = decide_emission(order, RuleConfig(), field_defaults=SHOPIFY_FIELDS)

    assert (decision.action, decision.document_type) == (EMIT, 39)
    assert [reason.code for reason in decision.reasons] == [
        "paid", "currency", "paid_total", "document_type", "receptor", "shipping", "price_basis", "auto_mode",
    ]
    basis = next(reason.message for reason in decision.reasons if reason.code == "price_basis")
    assert "IVA que la tienda le cobró" in basis
    sale = decision.sale
    assert (sale.price_basis, sale.paid_total, sale.global_discount, sale.global_discount_tax) == ("net", 92279, 0, None)
    assert [line.tax for line in sale.lines] == NET_LINE_TAXES
    assert line_tuples(sale)[1] == ("Jeans corte recto azul 32", 1, 21003, 2100, False)


def test_store_tax_and_shipping_the_merchant_does_not_bill():
    decision = decide_emission(load("shopify", SHOPIFY_NET), RuleConfig(shipping_as_line=False), field_defaults=SHOPIFY_FIELDS)

    # The shipping leaves the document with the IVA the store charged on it: 3 350 + 637.
    assert decision.sale.paid_total == 92279 - 3987
    assert [line.tax for line in decision.sale.lines] == NET_LINE_TAXES[:-1]


def test_line_taxes_with_decimals_mean_the_store_rounds_on_the_subtotal():
    def fractional_taxes(raw):
        raw["line_items"][0]["tax_lines"][0]["price"] = "3193.52"

    decision = decide_emission(load("shopify", SHOPIFY_NET, fractional_taxes), RuleConfig(price_basis="net"), field_defaults=SHOPIFY_FIELDS)

    assert [reason.code for reason in decision.reasons][-3:] == ["store_tax_subtotal", "price_basis", "auto_mode"]
    assert decision.sale.price_basis == "net"
    assert all(line.tax is None for line in decision.sale.lines)


def test_a_line_taxed_far_from_19_percent_is_billed_as_charged_with_a_warning():
    def ten_percent(raw):
        raw["line_items"][3]["tax_lines"][0].update(price="1092.00", rate=0.1)

    decision = decide_emission(load("shopify", SHOPIFY_NET, ten_percent), RuleConfig(), field_defaults=SHOPIFY_FIELDS)

    assert decision.action == EMIT
    warning = next(reason.message for reason in decision.reasons if reason.code == "store_tax_rate")
    assert "'Gorro de lana alpaca' ($1.092 sobre $10.924 neto)" in warning
    assert decision.sale.lines[3].tax == 1092


def test_full_refund_of_a_store_tax_order_annuls_with_the_same_taxed_lines():
    order = load("shopify", SHOPIFY_NET)

    decision = decide_credit_note(
        order, RefundData("r-all", None, Decimal("92279")),
        original=OriginalDocument(tipo_dte=39, folio=77, fecha="2026-11-21", total=92279), rules=RuleConfig(),
        field_defaults=SHOPIFY_FIELDS,
    )

    sale = decision.sale
    assert (decision.action, sale.price_basis, sale.paid_total) == (EMIT, "net", 92279)
    assert [line.tax for line in sale.lines] == NET_LINE_TAXES
    assert sale.references[0].cod_ref == 1


FACTURA_RECEPTOR = Receptor(
    rut="76086428-5", razon_social="Comercial Los Andes SpA", giro="Venta al por mayor de artículos de ferretería",
    address="Av. Apoquindo 4501 Oficina 1203", comuna="Las Condes", city="Las Condes", email="compras@comerciallosandes.cl",
)
ISSUED_FACTURA = OriginalDocument(tipo_dte=33, folio=881, fecha="2026-11-18", total=79461, receptor=FACTURA_RECEPTOR)


def correct(corrections, original=ISSUED_FACTURA, rules=None):
    return decide_text_correction(
        load("shopify", SHOPIFY_FACTURA), original, corrections, rules or RuleConfig(), field_defaults=SHOPIFY_FIELDS
    )


def test_text_correction_of_one_field_says_where_it_says_what():
    decision = correct({"giro": "Ferretería y materiales de construcción"})

    assert (decision.action, decision.document_type, decision.manual) == (EMIT, 61, False)
    assert [reason.code for reason in decision.reasons] == ["text_correction"]
    sale = decision.sale
    assert (sale.tipo_dte, sale.paid_total, sale.global_discount) == (61, 0, 0)
    [line] = sale.lines
    assert (line.name, line.quantity, line.unit_price) == ("Corrige giro", 1, 0)
    # Quoted as the documents print them: the factura holds 40 characters of giro.
    assert line.description == (
        "Giro: donde dice «Venta al por mayor de artículos de ferre» debe decir «Ferretería y materiales de construcción»."
    )
    # "DONDE DICE … DEBE DECIR …" would pass the 90 characters of RazonRef: the field is named instead.
    assert sale.references == (Reference(33, 881, "2026-11-18", cod_ref=2, razon="Corrige giro del receptor"),)
    assert sale.receptor == replace(FACTURA_RECEPTOR, giro="Ferretería y materiales de construcción")


def test_text_correction_of_a_short_field_carries_it_in_razon_ref():
    decision = correct({"comuna": "Vitacura"})

    assert decision.sale.references[0].razon == "DONDE DICE Las Condes DEBE DECIR Vitacura"
    assert decision.sale.lines[0].name == "Corrige comuna"
    assert decision.sale.receptor.comuna == "Vitacura"


def test_text_correction_of_several_fields_names_them_all():
    decision = correct({"razon_social": "Comercial Los Andes Limitada", "address": "Av. Apoquindo 4501 Of. 1203", "comuna": "Las Condes"})

    sale = decision.sale
    assert sale.lines[0].name == "Corrige razón social y dirección"
    assert sale.references[0].razon == "Corrige razón social y dirección del receptor"
    assert "Razón social: donde dice «Comercial Los Andes SpA» debe decir «Comercial Los Andes Limitada»." in sale.lines[0].description
    assert (sale.receptor.razon_social, sale.receptor.address, sale.receptor.rut) == (
        "Comercial Los Andes Limitada", "Av. Apoquindo 4501 Of. 1203", "76086428-5",
    )


def test_text_correction_in_manual_mode_is_still_emitted_a_person_asked_for_it():
    decision = correct({"comuna": "Vitacura"}, rules=RuleConfig(mode="manual"))
    assert (decision.action, decision.manual) == (EMIT, False)


def test_text_correction_reads_the_receptor_from_the_order_when_not_given():
    decision = correct({"giro": "Ferretería"}, original=replace(ISSUED_FACTURA, receptor=None))

    assert [reason.code for reason in decision.reasons] == ["receptor", "text_correction"]
    assert decision.sale.references[0].razon == "DONDE DICE Venta al por mayor de artículos de ferre DEBE DECIR Ferretería"


@pytest.mark.parametrize(
    "corrections, action, code",
    [
        ({"giro": "  Venta al por mayor de artículos  de ferretería "}, SKIP, "nothing_to_correct"),
        # The document holds 40 characters of giro: a change past them would print the same text.
        ({"giro": "Venta al por mayor de artículos de ferretería y afines"}, SKIP, "nothing_to_correct"),
        ({}, SKIP, "nothing_to_correct"),
        ({"rut": "76.086.428-5", "comuna": "Las Condes"}, SKIP, "nothing_to_correct"),
        ({"rut": "77.123.456-0"}, HOLD, "rut_not_correctable"),
        ({"rut": "no es un rut"}, HOLD, "rut_not_correctable"),
        ({"razon_social": "  "}, HOLD, "factura_missing_data"),
    ],
)
def test_text_correction_refusals(corrections, action, code):
    decision = correct(corrections)

    assert (decision.action, decision.sale) == (action, None)
    assert decision.reasons[-1].code == code and decision.reasons[-1].message


def test_text_correction_only_for_facturas_and_known_fields():
    with pytest.raises(ValueError, match="factura"):
        correct({"giro": "x"}, original=replace(ISSUED_FACTURA, tipo_dte=39))
    with pytest.raises(ValueError, match="unknown fields"):
        correct({"telefono": "+56 9"})


def test_a_store_flag_that_contradicts_the_rules_price_basis_is_noted():
    def net_flag_without_tax(raw):
        raw["taxes_included"] = False
        raw["total_tax"] = "0.00"
        for line in raw["line_items"] + raw.get("shipping_lines", []):
            line["tax_lines"] = []

    order = load("shopify", SHOPIFY_GIFT_TIP, net_flag_without_tax)
    decision = decide_emission(order, RuleConfig(), field_defaults=FIELDS["shopify"])

    assert "price_basis_mismatch" in [reason.code for reason in decision.reasons]
    assert "la tienda declara precios sin IVA" in " ".join(reason.message for reason in decision.reasons)
