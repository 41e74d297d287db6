"""Shopify order JSON → OrderData, on Shopify's own samples and on Chilean fixtures."""
import copy
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from sources.base import OrderParseError
from sources.orderdata import Buyer, PaymentStatus, RefundLine, ShippingLine
from sources.shopify.orders import parse_order
from tests.shared import SAMPLES_DIR, needs_samples

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def lines_of(order):
    return [(line.line_id, line.sku, line.quantity, line.unit_price, line.discount, line.taxable, line.is_gift_card) for line in order.lines]


@pytest.mark.shared
@needs_samples
def test_docs_example_with_refunds():
    order = parse_order(json.loads((SAMPLES_DIR / "shopify_order_docs_example_with_refunds.json").read_text()))

    assert (order.external_id, order.number, order.currency) == ("450789469", "#1001", "USD")
    assert order.payment_status == PaymentStatus.PENDING  # "authorized": not captured yet
    assert order.paid_total == Decimal("409.94")
    assert order.prices_include_tax is False
    assert order.channel == "web"
    assert order.cancelled is False and order.is_test is False
    assert lines_of(order) == [
        ("466157049", "IPOD2008GREEN", 1, Decimal("199.00"), Decimal("0.00"), True, False),
        ("518995019", "IPOD2008RED", 1, Decimal("199.00"), Decimal("0.00"), True, False),
        ("703073504", "IPOD2008BLACK", 1, Decimal("199.00"), Decimal("0.00"), True, False),
    ]
    # taxes_included false with line tax_lines: each line carries Shopify's own tax, shipping none.
    assert [line.tax for line in order.lines] == [Decimal("3.98")] * 3
    assert order.shipping == (ShippingLine(name="Free Shipping", price=Decimal("0.00"), discount=Decimal("0.00"), tax=Decimal("0")),)
    # The TENOFF code is not in total_discounts ("0.00"): nothing unallocated.
    assert (order.global_discount, order.global_discount_tax) == (Decimal("0"), None)
    assert order.buyer == Buyer(
        email="bob.norman@hostmail.com",
        name="Bob Norman",
        phone="555-625-1199",
        address="Chestnut Street 92",
        city="Louisville",
        comuna="Louisville",
        company="",
    )
    assert order.created_at == datetime(2008, 1, 10, 11, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert order.paid_at is None
    (refund,) = order.refunds
    assert refund.external_id == "509562969"
    # The money returned is the refund transaction, not the sum of the lines.
    assert refund.amount == Decimal("209.00")
    # taxes_included is false, so each refunded line's amount is subtotal + total_tax.
    assert refund.lines == (
        RefundLine(line_id="703073504", quantity=Decimal("1"), amount=Decimal("199.65")),
        RefundLine(line_id="466157049", quantity=Decimal("1"), amount=Decimal("199.64")),
    )
    assert refund.reason == "it broke during shipping"
    assert order.raw["id"] == 450789469  # envelope removed: raw is the order object itself


@pytest.mark.shared
@needs_samples
def test_python_api_fixture_old_schema_without_allocations():
    order = parse_order(json.loads((SAMPLES_DIR / "shopify_order_shopify_python_api_fixture.json").read_text()))

    assert (order.external_id, order.number, order.payment_status) == ("450789469", "#1001", PaymentStatus.PENDING)
    assert [line.discount for line in order.lines] == [Decimal("0"), Decimal("0"), Decimal("0")]
    assert order.shipping == (ShippingLine(name="Free Shipping", price=Decimal("0.00")),)
    # Tax only at the order level (no line tax_lines): line taxes unknown.
    assert [line.tax for line in order.lines] == [None, None, None]
    assert order.refunds == ()
    assert order.tips == Decimal("0")


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "order_paid_factura_note_attributes.json",
            {
                "external_id": "5734019874913",
                "number": "#1042",
                "payment_status": PaymentStatus.PAID,
                "paid_total": Decimal("79461.00"),
                "tips": Decimal("0.00"),
                "tags": ("B2B", "ferreteria"),
                "lines": [
                    ("14208874561633", "BOS-GSB-650", 1, Decimal("54990.00"), Decimal("5499.00"), True, False),
                    ("14208874594401", "BRO-HSS-19", 2, Decimal("12990.00"), Decimal("0.00"), True, False),
                ],
                "shipping": (ShippingLine("Despacho Starken a domicilio", Decimal("3990.00"), Decimal("0")),),
                "buyer": Buyer(
                    email="compras@comerciallosandes.cl",
                    name="Rodrigo Pérez",
                    phone="+56 2 2345 6789",
                    address="Av. Apoquindo 4501 Oficina 1203",
                    city="Las Condes",
                    comuna="Las Condes",
                    company="Comercial Los Andes SpA",
                ),
            },
        ),
        (
            "order_paid_boleta_gift_card_tip.json",
            {
                "external_id": "5734020104289",
                "number": "#1043",
                "payment_status": PaymentStatus.PAID,
                "paid_total": Decimal("56970.00"),
                "tips": Decimal("2000.00"),
                "tags": ("cyberday",),
                "lines": [
                    ("14208875020385", "CAF-COL-1K", 2, Decimal("15990.00"), Decimal("0.00"), True, False),
                    ("14208875053153", "", 1, Decimal("20000.00"), Decimal("0.00"), False, True),
                ],
                "shipping": (ShippingLine("Chilexpress Día Hábil Siguiente", Decimal("4990.00"), Decimal("2000.00")),),
                "buyer": Buyer(
                    email="valentina.munoz@gmail.com",
                    name="Valentina Muñoz",
                    phone="+56 9 6123 4567",
                    address="Errázuriz 1020 Depto 402",
                    city="Valparaíso",
                    comuna="Valparaíso",
                ),
            },
        ),
        (
            "order_partially_refunded.json",
            {
                "external_id": "5734020563041",
                "number": "#1044",
                "payment_status": PaymentStatus.PARTIALLY_REFUNDED,
                # The original charge, not current_total_price (20980): the refund becomes a credit note.
                "paid_total": Decimal("33970.00"),
                "tips": Decimal("0.00"),
                "tags": (),
                "lines": [
                    ("14208876134497", "POL-ORG-M", 2, Decimal("12990.00"), Decimal("0.00"), True, False),
                    ("14208876167265", "TAZ-CER-01", 1, Decimal("7990.00"), Decimal("0.00"), True, False),
                ],
                "shipping": (ShippingLine("Retiro en tienda Providencia", Decimal("0.00"), Decimal("0")),),
                "buyer": Buyer(
                    email="matias.gonzalez@outlook.cl",
                    name="Matías González",
                    address="Los Carrera 455",
                    city="Concepción",
                    comuna="Concepción",
                ),
            },
        ),
        (
            "order_hundred_percent_discount.json",
            {
                "external_id": "5734020858977",
                "number": "#1045",
                "payment_status": PaymentStatus.PAID,
                "paid_total": Decimal("0.00"),
                "tips": Decimal("0.00"),
                "tags": ("canje", "influencer"),
                "lines": [("14208877019233", "MIE-ULM-500", 1, Decimal("9990.00"), Decimal("9990.00"), True, False)],
                "shipping": (),
                "buyer": Buyer(
                    email="influencer.fernanda@gmail.com",
                    name="Fernanda Castro",
                    address="Av. Alemania 0671",
                    city="Temuco",
                    comuna="Temuco",
                ),
            },
        ),
    ],
)
def test_chilean_fixtures(name, expected):
    order = parse_order(fixture(name))

    assert order.external_id == expected["external_id"]
    assert order.number == expected["number"]
    assert order.currency == "CLP"
    assert order.payment_status == expected["payment_status"]
    assert order.paid_total == expected["paid_total"]
    assert order.tips == expected["tips"]
    assert order.tags == expected["tags"]
    assert lines_of(order) == expected["lines"]
    assert order.shipping == expected["shipping"]
    assert order.buyer == expected["buyer"]
    assert order.prices_include_tax is True
    assert order.global_discount == 0


def test_partial_refund_of_a_taxes_included_store():
    (refund,) = parse_order(fixture("order_partially_refunded.json")).refunds

    assert refund.external_id == "1012345678901"
    assert refund.amount == Decimal("12990.00")
    # taxes_included: the subtotal already includes IVA, so total_tax is not added again.
    assert refund.lines == (RefundLine(line_id="14208876134497", quantity=Decimal("1"), amount=Decimal("12990.0")),)
    assert refund.reason == "Talla equivocada"
    assert refund.created_at == datetime(2026, 11, 20, 12, 30, tzinfo=timezone(timedelta(hours=-3)))


def test_rest_envelope_and_webhook_body_parse_the_same():
    body = fixture("order_paid_factura_note_attributes.json")

    assert parse_order({"order": copy.deepcopy(body)}) == parse_order(body)


@pytest.mark.parametrize(
    "financial_status, cancelled_at, expected_status, expected_cancelled",
    [
        ("paid", None, PaymentStatus.PAID, False),
        ("partially_refunded", None, PaymentStatus.PARTIALLY_REFUNDED, False),
        ("refunded", "2026-11-19T10:00:00-03:00", PaymentStatus.REFUNDED, True),
        ("pending", None, PaymentStatus.PENDING, False),
        ("authorized", None, PaymentStatus.PENDING, False),
        ("voided", "2026-11-19T10:00:00-03:00", PaymentStatus.CANCELLED, True),
        ("something_new", None, PaymentStatus.UNKNOWN, False),
    ],
)
def test_financial_status_and_cancellation(financial_status, cancelled_at, expected_status, expected_cancelled):
    body = fixture("order_paid_boleta_gift_card_tip.json")
    body["financial_status"] = financial_status
    body["cancelled_at"] = cancelled_at

    order = parse_order(body)

    assert (order.payment_status, order.cancelled) == (expected_status, expected_cancelled)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda body: body.pop("id"), "id falta o no es un identificador válido"),
        (lambda body: [body.pop("total_price"), body.pop("current_total_price")], "no trae total_price"),
        (lambda body: body["line_items"][0].update(price="quince mil"), "line_items[0].price no es un número"),
        (lambda body: body["line_items"][0].update(price="NaN"), "line_items[0].price no es un número finito"),
        (lambda body: body["line_items"][1].update(quantity=None), "line_items[1].quantity falta o no es un número"),
        (lambda body: body.update(line_items={"id": 1}), "line_items debe ser una lista de objetos"),
        (lambda body: body.update(created_at="ayer"), "created_at no es una fecha ISO 8601"),
        (
            lambda body: body["shipping_lines"][0]["discount_allocations"].append({"amount": "gratis"}),
            "shipping_lines[0].discount_allocations[1].amount no es un número",
        ),
    ],
)
def test_malformed_orders_raise_a_clear_error(mutate, message):
    body = fixture("order_paid_boleta_gift_card_tip.json")
    mutate(body)

    with pytest.raises(OrderParseError) as excinfo:
        parse_order(body)

    assert message in str(excinfo.value)


def test_not_a_json_object():
    with pytest.raises(OrderParseError, match="debe ser un objeto JSON"):
        parse_order(["not", "an", "order"])


def test_store_that_adds_tax_carries_shopifys_own_line_taxes():
    order = parse_order(fixture("order_paid_net_prices_tax_lines.json"))

    assert order.prices_include_tax is False
    assert order.paid_total == Decimal("92279.00")
    # Each line's tax_lines as Shopify rounded them on that line (after the JEANS10 allocation).
    assert [(line.unit_price, line.discount, line.tax) for line in order.lines] == [
        (Decimal("8404.00"), Decimal("0"), Decimal("3194.00")),
        (Decimal("21003.00"), Decimal("2100.00"), Decimal("3592.00")),
        (Decimal("5036.00"), Decimal("0"), Decimal("2871.00")),
        (Decimal("10924.00"), Decimal("0"), Decimal("2076.00")),
        (Decimal("12450.00"), Decimal("0"), Decimal("2366.00")),
    ]
    assert order.shipping == (ShippingLine("Chilexpress Día Hábil Siguiente", Decimal("3350.00"), Decimal("0"), Decimal("637.00")),)
    # JEANS10 is fully allocated: nothing left for a global discount.
    assert (order.global_discount, order.global_discount_tax) == (Decimal("0"), None)


def test_taxes_included_store_keeps_line_taxes_unknown():
    order = parse_order(fixture("order_paid_factura_note_attributes.json"))

    # taxes_included: the tax_lines are inside the gross prices, not charged on top.
    assert [line.tax for line in order.lines] == [None, None]
    assert order.shipping[0].tax is None


def test_order_discount_no_allocation_reflects_becomes_the_global_discount():
    order = parse_order(fixture("order_paid_unallocated_order_discount.json"))

    # An "across / all" manual discount of 7 000 with no discount_allocations on the lines (old payload).
    assert order.global_discount == Decimal("7000.00")
    assert order.global_discount_tax is None  # taxes included: the discount is gross
    assert [line.discount for line in order.lines] == [Decimal("0.00")] * 3


def test_unallocated_discount_on_a_net_store_carries_the_tax_it_took_off():
    body = fixture("order_paid_net_prices_tax_lines.json")
    body.update(total_discounts="5100.00", total_tax="14166.00", subtotal_price="71193.00", total_price="88709.00")

    order = parse_order(body)

    # 5 100 − the 2 100 allocated to the jeans; Σ line and shipping taxes 14 736 − total_tax 14 166 = 570.
    assert (order.global_discount, order.global_discount_tax) == (Decimal("3000.00"), Decimal("570.00"))


def test_total_discounts_that_leave_out_shipping_discounts_leave_no_global_discount():
    body = fixture("order_paid_boleta_gift_card_tip.json")
    body["total_discounts"] = "0.00"  # the 2 000 shipping allocation is not counted there

    assert parse_order(body).global_discount == Decimal("0")
