"""Store order → rules → DTE: the document totals exactly what the buyer paid, on real-world-shaped orders.

Stores that add IVA themselves (Shopify ``taxes_included: false``, WooCommerce net prices) round it per
line, so IVA on the net total misses what was charged by a few pesos; and Shopify order discounts that
no allocation reflects must become one ``DscRcgGlobal``. Each case goes through the store's parser, the
rules engine and the DTE mapping (whose cuadre refuses any other total), then the SII schema.
"""
import datetime
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from billers.dte import MappingRefused, build_document, build_dte_xml, credentials, validate_dte_xml
from billers.dte.sale import Emisor
from rules.engine import EMIT, RuleConfig, decide_emission
from sources.shopify.fields import DEFAULT_FIELD_MAPPING as SHOPIFY_FIELDS
from sources.shopify.orders import parse_order as parse_shopify
from sources.woocommerce.fields import DEFAULT_FIELD_MAPPING as WOOCOMMERCE_FIELDS
from sources.woocommerce.orders import parse_order as parse_woocommerce
from tests.shared import SHARED_DIR

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = SHARED_DIR / "sii" / "xsd"
EMISOR = Emisor(rut="76192083-9", razon_social="Tienda SpA", giro="Comercio", acteco=479100, address="Calle 1", comuna="Santiago")
FECHA = datetime.date(2026, 11, 23)
PLATFORMS = {"shopify": (parse_shopify, SHOPIFY_FIELDS), "woocommerce": (parse_woocommerce, WOOCOMMERCE_FIELDS)}
SHOPIFY_NET = "order_paid_net_prices_tax_lines.json"
SHOPIFY_UNALLOCATED = "order_paid_unallocated_order_discount.json"
WOO_NET = "order_processing_net_prices_tax.json"


def raw(platform: str, name: str) -> dict:
    return json.loads((ROOT / "sources" / platform / "fixtures" / name).read_text(encoding="utf-8"))


def shopify_factura(order: dict) -> dict:
    order["note_attributes"] = [
        {"name": "Tipo de documento", "value": "Factura"}, {"name": "RUT", "value": "76.086.428-5"},
        {"name": "Razón social", "value": "Comercial Los Andes SpA"}, {"name": "Giro", "value": "Venta de vestuario"},
    ]
    return order


def woocommerce_factura(order: dict) -> dict:
    order["meta_data"] = [m for m in order["meta_data"] if m["key"] != "_billing_documento"] + [
        {"id": 781210, "key": "_billing_documento", "value": "factura"},
        {"id": 781211, "key": "_billing_rut", "value": "76.354.771-K"},
        {"id": 781212, "key": "_billing_giro", "value": "Turismo aventura"},
    ]
    return order


def shopify_unallocated_net_discount(order: dict) -> dict:
    """The net-price order with a 3 000 order discount that no line allocation reflects (an old payload):
    Shopify's ``total_tax`` is the line taxes less the 570 of IVA that went with the discount."""
    order["total_discounts"] = "5100.00"
    order["discount_applications"].append(
        {"target_type": "line_item", "type": "manual", "value": "3000.0", "value_type": "fixed_amount",
         "allocation_method": "across", "target_selection": "all", "title": "Compensación por atraso"}
    )
    order["subtotal_price"] = "71193.00"
    order["total_tax"] = "14166.00"
    order["total_price"] = "88709.00"
    return order


def document_for(platform: str, order: dict, **rules):
    parse, fields = PLATFORMS[platform]
    data = parse(order)
    decision = decide_emission(data, RuleConfig(**rules), field_defaults=fields)
    assert decision.action == EMIT, decision.reasons
    return data, decision, build_document(decision.sale, emisor=EMISOR, folio=1, fecha=FECHA)


CASES = [
    # (id, platform, fixture, patch, document type, paid, global DscRcgGlobal value or None)
    ("shopify taxes_included false → boleta", "shopify", SHOPIFY_NET, None, 39, 92279, None),
    ("shopify taxes_included false → factura", "shopify", SHOPIFY_NET, shopify_factura, 33, 92279, None),
    ("shopify net, unallocated order discount → boleta", "shopify", SHOPIFY_NET, shopify_unallocated_net_discount, 39, 88709, 3570),
    ("shopify net, unallocated order discount → factura", "shopify", SHOPIFY_NET,
     lambda o: shopify_factura(shopify_unallocated_net_discount(o)), 33, 88709, 3570),
    ("shopify gross, unallocated order discount → boleta", "shopify", SHOPIFY_UNALLOCATED, None, 39, 74930, 7000),
    ("shopify gross, unallocated order discount → factura", "shopify", SHOPIFY_UNALLOCATED, shopify_factura, 33, 74930, 7000),
    ("woocommerce net prices with tax → boleta", "woocommerce", WOO_NET, None, 39, 124961, 3000),
    ("woocommerce net prices with tax → factura", "woocommerce", WOO_NET, woocommerce_factura, 33, 124961, 3000),
]


@pytest.mark.parametrize("platform, fixture, patch, tipo, paid, descuento", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_document_total_is_what_the_buyer_paid(platform, fixture, patch, tipo, paid, descuento):
    order = raw(platform, fixture)
    if patch:
        order = patch(order)

    data, decision, doc = document_for(platform, order)

    assert decision.document_type == tipo
    assert int(data.paid_total) == decision.sale.paid_total == paid
    assert doc.totales.mnt_total == paid
    assert doc.totales.mnt_neto + doc.totales.iva == paid
    assert [d.valor_dr for d in doc.dsc_rcg_global] == ([] if descuento is None else [descuento])
    if tipo == 33:
        assert doc.encabezado.id_doc.mnt_bruto == 1
    if SCHEMA_DIR.is_dir():
        assert validate_dte_xml(build_dte_xml(doc, signer=credentials.test_signer()), schema_dir=SCHEMA_DIR) == []


@pytest.mark.parametrize(
    "platform, fixture, patch, difference",
    [("shopify", SHOPIFY_NET, shopify_factura, -3), ("woocommerce", WOO_NET, woocommerce_factura, -3)],
)
def test_without_the_stores_line_taxes_the_factura_would_be_refused(platform, fixture, patch, difference):
    # What these orders did before: net prices with IVA on the net total miss the per-line rounding.
    order = patch(raw(platform, fixture))
    parse, fields = PLATFORMS[platform]
    data = parse(order)
    stripped = replace(
        data,
        lines=tuple(replace(line, tax=None) for line in data.lines),
        shipping=tuple(replace(s, tax=None) for s in data.shipping),
        global_discount_tax=None,
    )
    decision = decide_emission(stripped, RuleConfig(price_basis="net"), field_defaults=fields)

    with pytest.raises(MappingRefused) as refused:
        build_document(decision.sale, emisor=EMISOR, folio=1, fecha=FECHA)

    assert (refused.value.code, refused.value.details["difference"]) == ("total_mismatch", difference)


def test_woocommerce_net_order_lines_carry_the_stores_taxes_and_fees():
    _, decision, doc = document_for("woocommerce", raw("woocommerce", WOO_NET))

    sale = decision.sale
    assert sale.price_basis == "net"
    assert [(line.name, line.unit_price, line.discount, line.tax) for line in sale.lines] == [
        ("Parka impermeable Doite – Talla: M", Decimal(42013), 4205, 7184),
        ("Primera capa térmica merino", Decimal(16808), 3366, 5748),
        ("Botella térmica 1 L", Decimal(12605), 1276, 2153),
        ("Linterna frontal 300 lm", Decimal(8403), 2522, 4311),
        ("Envoltorio de regalo", Decimal(1261), 0, 240),
        ("Despacho", Decimal(4193), 0, 797),
    ]
    # The negative fee is the order discount, with the IVA WooCommerce took off with it.
    assert (sale.global_discount, sale.global_discount_tax) == (2521, 479)
    assert [d.monto_item for d in doc.detalle] == [44992, 35998, 13482, 26998, 1501, 4990]


def test_shopify_gross_order_discount_is_one_global_discount_not_a_hold():
    _, decision, doc = document_for("shopify", raw("shopify", SHOPIFY_UNALLOCATED))

    assert decision.sale.global_discount == 7000
    assert [line.discount for line in decision.sale.lines] == [0, 0, 0, 0]
    [descuento] = doc.dsc_rcg_global
    assert (descuento.tpo_mov, descuento.tpo_valor, descuento.valor_dr) == ("D", "$", 7000)
