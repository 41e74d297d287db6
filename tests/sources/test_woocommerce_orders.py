"""WooCommerce REST v3 order JSON → OrderData, on the REST docs samples and on Chilean fixtures."""
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sources.base import OrderParseError
from sources.orderdata import Buyer, PaymentStatus, RefundData, RefundLine, ShippingLine
from sources.woocommerce.orders import parse_order
from tests.shared import SAMPLES_DIR, needs_samples

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "woocommerce" / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def lines_of(order):
    return [(line.line_id, line.name, line.sku, line.quantity, line.unit_price, line.discount, line.taxable) for line in order.lines]


@pytest.mark.shared
@needs_samples
def test_docs_retrieve_order_727():
    order = parse_order(json.loads((SAMPLES_DIR / "woocommerce_order_rest_docs_v3_retrieve_727.json").read_text()))

    assert (order.external_id, order.number, order.currency) == ("727", "727", "USD")
    assert order.payment_status == PaymentStatus.PAID  # processing with date_paid
    assert order.paid_total == Decimal("29.35")
    assert order.prices_include_tax is False
    # Net store: amounts as stored, the HTML entity in the name decoded.
    assert lines_of(order) == [
        ("315", "Woo Single #1", "", 2, Decimal("3.00"), Decimal("0.00"), True),
        ("316", "Ship Your Idea – Color: Black, Size: M Test", "Bar3", 1, Decimal("12.00"), Decimal("0.00"), True),
    ]
    # The store adds tax (total_tax 1.35): each line carries its own, shipping its 0.00.
    assert [line.tax for line in order.lines] == [Decimal("0.45"), Decimal("0.90")]
    assert order.shipping == (ShippingLine("Flat Rate", Decimal("10.00"), tax=Decimal("0.00")),)
    assert order.channel == "rest-api"
    assert order.created_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert order.paid_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert order.buyer == Buyer(
        email="john.doe@example.com",
        name="John Doe",
        phone="(555) 555-5555",
        address="969 Market",
        city="San Francisco",
        comuna="San Francisco",
    )
    assert order.refunds == ()


@pytest.mark.shared
@needs_samples
def test_docs_list_with_refund_summaries():
    first, second = (parse_order(raw) for raw in json.loads((SAMPLES_DIR / "woocommerce_orders_list_rest_docs_v3.json").read_text()))

    assert (first.external_id, first.payment_status) == ("727", PaymentStatus.PAID)
    assert (second.external_id, second.payment_status) == ("723", PaymentStatus.PARTIALLY_REFUNDED)
    assert second.paid_total == Decimal("39.00")
    # The order's refund summaries carry negative totals; amounts are the money returned.
    assert second.refunds == (
        RefundData(external_id="726", created_at=None, amount=Decimal("10.00")),
        RefundData(external_id="724", created_at=None, amount=Decimal("9.00")),
    )


def test_gross_store_with_factura_meta():
    order = parse_order(fixture("order_processing_factura_meta.json"))

    assert (order.external_id, order.number, order.currency) == ("20871", "20871", "CLP")
    assert order.payment_status == PaymentStatus.PAID
    assert order.paid_total == Decimal("75963")
    assert order.prices_include_tax is True
    # prices_include_tax: the line tax is added back, so prices and the coupon are gross.
    assert lines_of(order) == [
        ("9921", "Zapatillas trekking Lippi Cumbre – Talla: 42", "LIP-CUM-42", 1, Decimal("59990"), Decimal("5999"), True),
        ("9922", "Calcetines merino pack 3", "CAL-MER-3", 2, Decimal("9990"), Decimal("1998"), True),
    ]
    assert order.shipping == (ShippingLine("Envío a domicilio Blue Express", Decimal("3990")),)
    assert order.buyer == Buyer(
        email="catalina.soto@distribuidoraaustral.cl",
        name="Catalina Soto",
        phone="+56 9 7345 1290",
        address="Av. Irarrázaval 2821 Local 4",
        city="Santiago",
        comuna="Ñuñoa",  # from the _billing_comuna meta of the Chilean checkout plugin
        company="Distribuidora Austral Ltda.",
    )
    assert order.channel == "checkout"
    assert order.raw["meta_data"][1] == {"id": 774102, "key": "_billing_rut", "value": "76.086.428-5"}


def test_store_without_iva_completed_by_bank_transfer():
    order = parse_order(fixture("order_completed_boleta_no_tax.json"))

    # completed without date_paid: the merchant closed the sale after the transfer arrived.
    assert order.payment_status == PaymentStatus.PAID
    assert order.paid_at is None
    # prices_include_tax false with no tax computed says nothing about the prices: the rules decide.
    assert order.prices_include_tax is None
    assert lines_of(order) == [("9988", "Sofá 3 cuerpos lino gris", "SOF-3C-LIN-GR", 1, Decimal("449990"), Decimal("0"), True)]
    assert order.shipping == (ShippingLine("Envío gratis", Decimal("0")),)
    assert order.buyer.comuna == "Puente Alto"


def test_fees_and_refund_summary():
    order = parse_order(fixture("order_refunded_partial_with_fee.json"))

    assert order.payment_status == PaymentStatus.PARTIALLY_REFUNDED
    # A positive fee is a charge (a line); a negative one is a discount (global).
    assert lines_of(order)[-1] == ("fee-10035", "Envoltorio de regalo", "", 1, Decimal("1000"), Decimal("0"), True)
    assert order.global_discount == Decimal("1000")
    assert order.refunds == (
        RefundData(external_id="20960", created_at=None, amount=Decimal("7990"), reason="Gorro llegó con falla"),
    )


def test_full_refund_object_from_the_refunds_endpoint():
    body = fixture("order_processing_factura_meta.json")
    body["refunds"] = [
        {
            "id": 20880,
            "date_created_gmt": "2026-11-21T14:00:00",
            "amount": "19980",
            "reason": "Producto devuelto",
            "line_items": [
                {
                    "id": 9950,
                    "quantity": -2,
                    "total": "-16790",
                    "total_tax": "-3190",
                    "meta_data": [{"id": 1, "key": "_refunded_item_id", "value": "9922"}],
                }
            ],
        }
    ]

    (refund,) = parse_order(body).refunds

    assert refund == RefundData(
        external_id="20880",
        created_at=datetime(2026, 11, 21, 14, 0, tzinfo=UTC),
        amount=Decimal("19980"),
        lines=(RefundLine(line_id="9922", quantity=Decimal("2"), amount=Decimal("19980")),),
        reason="Producto devuelto",
    )


@pytest.mark.parametrize(
    "status, date_paid, expected",
    [
        ("processing", "2026-11-18T19:21:03", PaymentStatus.PAID),
        ("processing", None, PaymentStatus.PENDING),  # cash on delivery not collected yet
        ("completed", None, PaymentStatus.PAID),
        ("on-hold", None, PaymentStatus.PENDING),
        ("pending", None, PaymentStatus.PENDING),
        ("cancelled", None, PaymentStatus.CANCELLED),
        ("refunded", "2026-11-18T19:21:03", PaymentStatus.REFUNDED),
        ("failed", None, PaymentStatus.FAILED),
        ("some-plugin-status", None, PaymentStatus.UNKNOWN),
    ],
)
def test_status_mapping(status, date_paid, expected):
    body = fixture("order_processing_factura_meta.json")
    body.update(status=status, date_paid=date_paid, date_paid_gmt=date_paid)

    order = parse_order(body)

    assert order.payment_status == expected
    assert order.cancelled is (status == "cancelled")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda body: body.pop("id"), "id falta o no es un identificador válido"),
        (lambda body: body.pop("total"), "no trae total"),
        (lambda body: body.update(total="75.963,00"), "total no es un número"),
        (lambda body: body["line_items"][0].update(subtotal="gratis"), "line_items[0].subtotal no es un número"),
        (lambda body: body["line_items"][1].update(quantity=0), "line_items[1].quantity debe ser positiva"),
        (lambda body: body.update(shipping_lines="flat_rate"), "shipping_lines debe ser una lista de objetos"),
        (lambda body: body.update(date_created_gmt="18/11/2026"), "date_created_gmt no es una fecha ISO 8601"),
    ],
)
def test_malformed_orders_raise_a_clear_error(mutate, message):
    body = fixture("order_processing_factura_meta.json")
    mutate(body)

    with pytest.raises(OrderParseError) as excinfo:
        parse_order(body)

    assert message in str(excinfo.value)


def test_net_store_that_charges_tax_carries_its_line_taxes():
    order = parse_order(fixture("order_processing_net_prices_tax.json"))

    assert order.prices_include_tax is False
    assert order.paid_total == Decimal("124961")
    # Net amounts as stored, each with WooCommerce's own total_tax (after the coupon), fees included.
    assert [(line.line_id, line.unit_price, line.discount, line.tax, line.taxable) for line in order.lines] == [
        ("9961", Decimal("42013"), Decimal("4205"), Decimal("7184"), True),
        ("9962", Decimal("16808"), Decimal("3366"), Decimal("5748"), True),
        ("9963", Decimal("12605"), Decimal("1276"), Decimal("2153"), True),
        ("9964", Decimal("8403"), Decimal("2522"), Decimal("4311"), True),
        ("fee-9971", Decimal("1261"), Decimal("0"), Decimal("240"), True),
    ]
    assert order.shipping == (ShippingLine("Envío a domicilio Starken", Decimal("4193"), tax=Decimal("797")),)
    # The negative fee is the order discount, with the tax it took off.
    assert (order.global_discount, order.global_discount_tax) == (Decimal("2521"), Decimal("479"))


def test_net_store_without_tax_leaves_line_taxes_unknown():
    order = parse_order(fixture("order_refunded_partial_with_fee.json"))

    # prices_include_tax false but total_tax 0: the usual Chilean store that does not compute IVA.
    assert [line.tax for line in order.lines] == [None, None, None]
    assert order.global_discount_tax is None
    assert order.prices_include_tax is None
