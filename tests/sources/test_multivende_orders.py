"""Multivende checkout JSON → OrderData (both billing shapes), its field mapping, sample order and change key."""
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rules.engine_fields import read_fields
from sources.base import OrderParseError
from sources.multivende.adapter import MultivendeSource
from sources.multivende.fields import DEFAULT_FIELD_MAPPING
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


def test_2026_shape_checkout_without_billing_address():
    order = parse_order(fixture("checkout_paris_factura_2026.json"))

    assert order.number == "PA-4471902"  # CheckoutLink.externalCustomerOrderNumber when no externalOrderNumber
    assert lines_of(order) == [("Taladro percutor inalámbrico 18 V", "TAL-BOSCH-18V", 2, Decimal("29990"), Decimal("0"))]
    assert order.shipping == ()
    assert order.buyer == Buyer(
        email="compras@ferreteriaelroble.cl",
        name="Ferretería El Roble Limitada",
        phone="+56 2 2345 6789",
        address="Av. Vicuña Mackenna 4860 Bodega 3",  # Client.BillingAddresses[0]
        city="Macul",
        comuna="Macul",
        company="Ferretería El Roble Limitada",  # a company client's fullName
    )


def test_billing_address_wins_over_the_2026_client_addresses_when_both_are_sent():
    body = fixture("checkout_falabella_factura.json")
    body["Client"].update(type="company", taxId="76.086.428-5",
                          BillingAddresses=[{"address_1": "Otra 1", "address_2": None, "city": "Temuco"}])

    buyer = parse_order(body).buyer

    assert (buyer.address, buyer.city, buyer.comuna, buyer.company) == (
        "Av. Libertad 1405 Of. 1601", "Viña del Mar", "Viña del Mar", "Inversiones Costanera SpA")


def test_a_person_client_is_not_read_as_a_company():
    body = fixture("checkout_paris_factura_2026.json")
    body["Client"]["type"] = "person"

    assert parse_order(body).buyer.company == ""


def test_client_billing_addresses_of_the_wrong_shape_name_the_field():
    body = fixture("checkout_paris_factura_2026.json")
    body["Client"]["BillingAddresses"] = "Av. Vicuña Mackenna 4860"

    with pytest.raises(OrderParseError, match=r"Client\.BillingAddresses debe ser una lista de objetos"):
        parse_order(body)


@pytest.mark.parametrize("name, expected", [
    ("checkout_falabella_factura.json", {
        "rut": "76.086.428-5", "razon_social": "Inversiones Costanera SpA", "giro": "Actividades de consultoría informática",
        "address": "Av. Libertad 1405 Of. 1601", "comuna": "Viña del Mar", "email": "amorales@costanerainversiones.cl",
        "document_choice": "Factura"}),
    ("checkout_paris_factura_2026.json", {
        "rut": "77.123.456-9", "razon_social": "Ferretería El Roble Limitada", "giro": "",
        "address": "Av. Vicuña Mackenna 4860 Bodega 3", "comuna": "Macul", "email": "compras@ferreteriaelroble.cl",
        "document_choice": "Factura"}),
    ("checkout_mercadolibre_boleta.json", {
        "rut": "", "razon_social": "", "giro": "", "address": "", "comuna": "", "email": "jcontreras.8f21b@mail.mercadolibre.cl",
        "document_choice": ""}),
])
def test_default_field_mapping_reads_both_shapes(name, expected):
    assert read_fields(fixture(name), DEFAULT_FIELD_MAPPING) == expected


def test_sample_order_is_a_paid_clp_checkout_that_parses():
    raw = MultivendeSource.sample_order(number=9_000_000_123, test=True)
    order = parse_order(raw)

    assert order.payment_status == PaymentStatus.PAID and order.currency == "CLP"
    assert order.paid_total == sum(line.unit_price * line.quantity for line in order.lines) + order.shipping[0].price
    assert MultivendeSource.change_key(raw) == f"checkout:{raw['_id']}@{raw['updatedAt']}"
    assert MultivendeSource.sample_order(number=9_000_000_123)["_id"] == raw["_id"]
    assert MultivendeSource.sample_order(number=9_000_000_124)["_id"] != raw["_id"]


def test_change_key_needs_the_id_and_the_update_time():
    assert MultivendeSource.change_key({"_id": "a-1", "updatedAt": "2026-11-20T13:09:12.441Z"}) == "checkout:a-1@2026-11-20T13:09:12.441Z"
    assert MultivendeSource.change_key({"_id": "a-1"}) is None
    assert MultivendeSource.change_key({"updatedAt": "2026-11-20T13:09:12.441Z"}) is None
