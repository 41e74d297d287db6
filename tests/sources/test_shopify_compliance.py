"""Shopify's mandatory compliance webhooks (customers/data_request, customers/redact, shop/redact): signed
with the app's client secret or refused 401; each does what it says on the data we hold, and keeps the
issued tax documents the law says to keep."""
import json
from pathlib import Path

import pytest

from accounts.models import AuditLog
from gateways import services
from gateways.models import Document, InboundEvent, Order
from simulators.shopify import shopify_json, webhook_hmac
from sources.models import SourceConnection
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"
SHOP = "tienda-chile.myshopify.com"
SECRET = "shpss_app_client_secret_9d1e"
ORDER = json.loads((FIXTURES / "webhook_orders_paid_clp.json").read_text(encoding="utf-8"))
CUSTOMER = {"id": 7012345678901, "email": "ignacio.fernandez@gmail.com", "phone": "+56 9 6123 4567"}


@pytest.fixture(autouse=True)
def app_secret(settings):
    settings.BMS_SHOPIFY_CLIENT_SECRET = SECRET


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account, source__platform="shopify", source__store_url=f"https://{SHOP}",
                          source__credentials={"access_token": "shpua_1", "refresh_token": "shprt_1"})


@pytest.fixture
def issued(gateway):
    """The buyer's order as it arrived (a stored delivery), decided and issued."""
    event, _ = services.inbound_event_receive(gateway=gateway, delivery_id="order:5812340098113@2026-11-20T13:14:09Z",
                                              topic="orders/paid", payload=ORDER)
    order = services.inbound_event_process(event_id=event.pk)
    [document] = run_pending(order)
    return order, document


def send(client, topic: str, payload: dict, *, secret: str | None = SECRET):
    body = shopify_json(payload)
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": SHOP, "X-Shopify-API-Version": "2026-10",
               "X-Shopify-Webhook-Id": "f1b2c3d4"}
    if secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = webhook_hmac(body, secret)
    return client.post("/shopify/compliance/", body, content_type="application/json", headers=headers)


REDACT = {"shop_id": 70123456789, "shop_domain": SHOP, "customer": CUSTOMER, "orders_to_redact": [5812340098113]}


@pytest.mark.parametrize("secret", ["not-the-app-secret", None])
def test_an_unsigned_or_badly_signed_request_is_401_and_changes_nothing(client, issued, secret):
    response = send(client, "customers/redact", REDACT, secret=secret)

    assert response.status_code == 401
    order, _document = issued
    order.refresh_from_db()
    assert order.buyer_email == "ignacio.fernandez@gmail.com" and "billing_address" in order.raw


def test_without_the_app_secret_configured_nothing_is_accepted(client, issued, settings):
    settings.BMS_SHOPIFY_CLIENT_SECRET = ""
    assert send(client, "customers/redact", REDACT, secret="").status_code == 401


def test_data_request_records_what_we_hold_for_the_merchant(client, account, issued):
    order, document = issued
    payload = {"shop_id": 70123456789, "shop_domain": SHOP, "customer": CUSTOMER,
               "orders_requested": [5812340098113], "data_request": {"id": 9001}}

    response = send(client, "customers/data_request", payload)

    assert response.status_code == 200
    answer = response.json()
    assert (answer["orders"], answer["documents"]) == (1, 1) and "seis años" in answer["kept"]
    record = AuditLog.objects.get(account=account, action="shopify.customers_data_request")
    [reported] = record.data["orders"]
    assert (reported["order"], reported["buyer_email"]) == ("#1187", "ignacio.fernandez@gmail.com")
    assert reported["stored_order"]["billing_address"]["address1"] == "Av. Vicuña Mackenna 4860"
    assert reported["documents"] == [{"tipo_dte": 39, "folio": document.folio, "fecha": document.fecha.isoformat(),
                                      "receptor": document.emission.sale["receptor"]}]
    assert record.data["data_request"] == {"id": 9001}


def test_customer_redact_erases_the_buyer_and_keeps_the_tax_document(client, issued):
    order, document = issued
    xml_before = bytes(document.xml)

    response = send(client, "customers/redact", REDACT)

    assert response.status_code == 200
    assert (response.json()["orders"], response.json()["deliveries"]) == (1, 1)
    assert "documentos tributarios" in response.json()["kept"]
    order.refresh_from_db()
    assert (order.buyer_name, order.buyer_email) == ("", "")
    for key in ("email", "customer", "billing_address", "shipping_address", "note_attributes"):
        assert key not in order.raw
    assert order.raw["line_items"] and order.raw["total_price"] == "36960.00" and "customers/redact" in order.raw["redacted"]
    text = json.dumps(order.raw, ensure_ascii=False) + json.dumps(order.decision, ensure_ascii=False)
    assert "Ignacio" not in text and "Vicuña" not in text and "gmail" not in text
    event = InboundEvent.objects.get(gateway=order.gateway)
    assert "billing_address" not in event.payload and "Ignacio" not in json.dumps(event.payload, ensure_ascii=False)
    document.refresh_from_db()
    assert bytes(document.xml) == xml_before and Document.objects.filter(order=order).count() == 1


def test_customer_redact_finds_the_buyer_s_orders_by_e_mail_too(client, issued):
    order, _document = issued
    send(client, "customers/redact", {**REDACT, "orders_to_redact": []})
    order.refresh_from_db()
    assert order.buyer_email == ""


def test_customer_redact_leaves_other_shops_and_other_buyers_alone(client, account, issued):
    other_shop = GatewayFactory(account=account, source__platform="shopify", source__store_url="https://otra.myshopify.com")
    kept = services.order_ingest(gateway=other_shop, raw=ORDER)

    send(client, "customers/redact", {**REDACT, "customer": {"id": 1, "email": "otra.persona@example.cl"}, "orders_to_redact": []})

    order, _document = issued
    for untouched in (order, kept):
        untouched.refresh_from_db()
        assert untouched.buyer_email == "ignacio.fernandez@gmail.com"


def test_shop_redact_erases_every_order_and_the_tokens_and_disconnects(client, gateway, issued):
    order, document = issued
    second = services.order_ingest(gateway=gateway, raw={**ORDER, "id": 5812340098999, "name": "#1188"})

    response = send(client, "shop/redact", {"shop_id": 70123456789, "shop_domain": SHOP})

    assert response.status_code == 200 and response.json()["orders"] == 2
    assert set(Order.objects.filter(gateway=gateway).values_list("buyer_email", flat=True)) == {""}
    second.refresh_from_db()
    assert "billing_address" not in second.raw
    source = SourceConnection.objects.get(pk=gateway.source_id)
    assert source.credentials == {} and source.status == SourceConnection.Status.DISABLED
    assert "shop/redact" in source.status_message
    assert Document.objects.filter(pk=document.pk).exists()


@pytest.mark.parametrize("topic, body, status", [
    ("customers/redact", {"customer": CUSTOMER}, 400),
    ("orders/create", ORDER, 200),
])
def test_a_signed_request_we_cannot_act_on(client, issued, topic, body, status):
    response = send(client, topic, body)
    assert response.status_code == status


def test_the_previous_app_secret_is_accepted_during_a_rotation(client, issued, settings):
    settings.BMS_SHOPIFY_CLIENT_SECRET = "shpss_rotated_new_secret"
    settings.BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET = SECRET
    assert send(client, "customers/redact", REDACT).status_code == 200
