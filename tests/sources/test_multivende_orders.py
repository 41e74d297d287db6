"""Multivende checkout JSON → OrderData, on fixtures modelled on the integrators' field names."""
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sources.base import OrderParseError
from sources.multivende.orders import parse_order
from sources.orderdata import Buyer, PaymentStatus, ShippingLine

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "multivende" / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def lines_of(order):
    return [(line.name, line.sku, line.quantity, line.unit_price, line.discount) for line in order.lines]


def test_mercadolibre_checkout():
    order = parse_order(fixture("checkout_mercadolibre_boleta.json"))

    assert order.external_id == "7f3c2b1a-9d84-4e6f-a1b2-3c4d5e6f7a81"
    assert order.number == "2000009876543210"  # the marketplace's order number, from CheckoutLink
    assert order.currency == "CLP"  # no currency field: Multivende's Chilean marketplaces are CLP
    assert order.payment_status == PaymentStatus.PAID
    assert order.paid_total == Decimal("38470")
    assert order.prices_include_tax is True
    assert lines_of(order) == [
        ("Audífonos inalámbricos JBL Tune 520BT - Azul", "AUD-JBL-T520-AZ", 1, Decimal("29990"), Decimal("3000")),
        ("Cable USB-C 1 m trenzado", "CAB-USBC-1M", 2, Decimal("3995"), Decimal("0")),
    ]
    assert order.shipping == (ShippingLine("Mercado Envíos Flex", Decimal("3490")),)
    assert order.channel == "mercadolibre"
    assert order.created_at == datetime(2026, 11, 19, 17, 22, 5, tzinfo=UTC)  # soldAt
    assert order.paid_at == order.created_at
    assert order.buyer == Buyer(
        email="jcontreras.8f21b@mail.mercadolibre.cl", name="Josefa Contreras", phone="+56 9 3344 5566"
    )
    assert order.refunds == ()


def test_falabella_checkout_with_billing_data():
    order = parse_order(fixture("checkout_falabella_factura.json"))

    assert order.number == "3089451276"  # from the CheckoutLinks array variant
    assert lines_of(order) == [('Monitor LG 27" UltraGear 4K', "MON-LG-27UL", 2, Decimal("109990"), Decimal("0"))]
    assert order.shipping == (ShippingLine("Falabella Envíos", Decimal("0")),)
    assert order.buyer == Buyer(
        email="amorales@costanerainversiones.cl",
        name="Andrés Morales",
        phone="+56 32 268 1100",
        address="Av. Libertad 1405 Of. 1601",
        city="Viña del Mar",
        comuna="Viña del Mar",
        company="Inversiones Costanera SpA",
    )


@pytest.mark.parametrize(
    "payment_status, status, expected_status, expected_cancelled",
    [
        ("completed", "completed", PaymentStatus.PAID, False),
        ("pending", "pending", PaymentStatus.PENDING, False),
        ("cancelled", "canceled", PaymentStatus.CANCELLED, True),
        ("refunded", "completed", PaymentStatus.REFUNDED, False),
        ("rejected", "pending", PaymentStatus.FAILED, False),
        (None, "pending", PaymentStatus.UNKNOWN, False),
    ],
)
def test_payment_status(payment_status, status, expected_status, expected_cancelled):
    body = fixture("checkout_mercadolibre_boleta.json")
    body.update(paymentStatus=payment_status, status=status)

    order = parse_order(body)

    assert (order.payment_status, order.cancelled) == (expected_status, expected_cancelled)
    assert order.paid_at == (order.created_at if expected_status == PaymentStatus.PAID else None)


def test_number_falls_back_to_the_multivende_code():
    body = fixture("checkout_mercadolibre_boleta.json")
    del body["CheckoutLink"]

    assert parse_order(body).number == "MV-00184532"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda body: body.pop("_id"), "_id falta o no es un identificador válido"),
        (lambda body: body.pop("gross"), "no trae el total (gross)"),
        (lambda body: body.update(gross="treinta mil"), "gross no es un número"),
        (lambda body: body["CheckoutItems"][0].update(count=None), "CheckoutItems[0].count falta o no es un número"),
        (lambda body: body["CheckoutItems"][1].update(gross="3.995,00"), "CheckoutItems[1].gross no es un número"),
        (lambda body: body.update(CheckoutItems=[1, 2]), "CheckoutItems debe ser una lista de objetos"),
        (lambda body: body.update(soldAt="ayer"), "soldAt no es una fecha ISO 8601"),
    ],
)
def test_malformed_checkouts_raise_a_clear_error(mutate, message):
    body = fixture("checkout_mercadolibre_boleta.json")
    mutate(body)

    with pytest.raises(OrderParseError) as excinfo:
        parse_order(body)

    assert message in str(excinfo.value)
