"""Many realistic orders through the whole pipeline (rules → cuadre → Sandbox → Document): each ends
issued for exactly what the buyer paid (tips are not sales), or held / skipped with a reason; never
an exception, never a silent mismatch."""
import random

import pytest

from gateways import services
from gateways.models import OrderStatus
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending

FACTURA_BUYER = [
    {"name": "documento", "value": "Factura"},
    {"name": "razon_social", "value": "Comercial Ñandú «Limitada» 🚀"},
    {"name": "giro", "value": "Venta de artículos de regalo y de decoración para el hogar"},
]


def random_order(n: int) -> tuple[dict, int]:
    rng = random.Random(n)
    payload = sample_order(number=30000 + n, rng=random.Random(n))
    paid = 0
    for line in payload["line_items"]:
        price = rng.choice([1, 7, 990, 1990, 4990, 12990, 15990, 33333])
        line["price"], line["quantity"] = f"{price}.00", rng.randint(1, 7)
        gross = price * line["quantity"]
        discount = rng.choice([0, 0, 1, gross * 10 // 100, gross * 15 // 100, gross])
        line["discount_allocations"] = [{"amount": f"{discount}.00"}] if discount else []
        paid += gross - discount
    shipping = rng.choice([0, 2490, 3990])
    shipping_discount = rng.choice([0, 0, shipping])
    payload["shipping_lines"] = [
        {"title": "Despacho", "price": f"{shipping}.00", "discounted_price": f"{shipping - shipping_discount}.00",
         "discount_allocations": [{"amount": f"{shipping_discount}.00"}] if shipping_discount else []}
    ] if shipping else []
    paid += shipping - shipping_discount
    tip = rng.choice([0, 0, 1000])
    payload["total_tip_received"] = f"{tip}.00"
    payload["total_price"] = payload["current_total_price"] = f"{paid + tip}.00"
    if rng.random() < 0.4:
        rut = rng.choice(["76.086.428-5", "77.123.456-1", "60.803.000-K"])
        payload["note_attributes"] = FACTURA_BUYER + [{"name": "rut", "value": rut}]
        payload["billing_address"]["address1"] = "Av. Libertador Bernardo O'Higgins 1234, oficina 56, torre B, piso 12"
    return payload, paid


@pytest.mark.parametrize("batch", range(4))
def test_random_orders_are_billed_exactly_or_stopped_with_a_reason(account, batch):
    gateway = GatewayFactory(account=account)
    for n in range(batch * 25, batch * 25 + 25):
        payload, billable = random_order(n)
        order = services.order_ingest(gateway=gateway, raw=payload)
        run_pending(order)
        order.refresh_from_db()
        if order.status == OrderStatus.ISSUED:
            document = order.documents.get()
            assert document.mnt_total == billable, (n, document.totals)
            assert document.totals["MntTotal"] == billable
        else:
            assert order.status in (OrderStatus.HELD, OrderStatus.SKIPPED), (n, order.status, order.status_reason)
            assert order.status_reason, n
            assert billable == 0 or "RUT" in order.status_reason, (n, order.status_reason)
