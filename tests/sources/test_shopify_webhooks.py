"""Shopify deliveries through the real webhook view: raw-body HMAC, rotation, shop check, topics, replays."""
import json
from pathlib import Path

import pytest

from gateways import services
from gateways.models import InboundEvent, OrderStatus
from sources.base import WebhookIgnored, WebhookRejected
from sources.models import SourceConnection
from sources.registry import SOURCE_ADAPTERS
from sources.shopify.adapter import ShopifySource
from sources.shopify.webhooks import ShopifyWebhookReader
from tests.gateways.factories import GatewayFactory
from tests.shared import SAMPLES_DIR, needs_samples
from tests.sources.contracts import StoreWebhookContract

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"
PYTHON_API_SAMPLE = SAMPLES_DIR / "shopify_order_shopify_python_api_fixture.json"

SECRET = "shpss_4f1c9a7e2b8d4c6a"
OLD_SECRET = "shpss_0a9b8c7d6e5f4a3b"
SHOP = "tienda-chile.myshopify.com"
PAID_BODY = (FIXTURES / "webhook_orders_paid_clp.json").read_bytes()
REFUND_BODY = (FIXTURES / "webhook_refunds_create_clp.json").read_bytes()
sign = ShopifyWebhookReader.sign
read_delivery = ShopifyWebhookReader().read


class TestShopifyWebhookContract(StoreWebhookContract):
    platform = "shopify"
    store_url = f"https://{SHOP}"
    order_topic = "orders/paid"
    other_host = "otra-tienda.myshopify.com"

    def order_body(self) -> bytes:
        return PAID_BODY

    def headers(self, body, *, secret, topic, host=None, delivery_id="b54557e4", signature=None):
        headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": host or SHOP, "X-Shopify-Webhook-Id": delivery_id,
                   "X-Shopify-API-Version": "2026-04"}
        if signature is None and secret is not None:
            signature = sign(body, secret)
        if signature is not None:
            headers["X-Shopify-Hmac-Sha256"] = signature
        return headers


@pytest.fixture
def gateway(account):
    return GatewayFactory(
        account=account,
        source__platform="shopify",
        source__credentials={"webhook_secret": SECRET},
        source__store_url=f"https://{SHOP}",
    )


def deliver(client, gateway, body: bytes, *, secret: str | None = SECRET, topic="orders/paid", webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", shop=SHOP, signature=None):
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop, "X-Shopify-Webhook-Id": webhook_id,
               "X-Shopify-API-Version": "2026-04"}
    if signature is None and secret is not None:
        signature = sign(body, secret)
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    return client.post(f"/hooks/{gateway.webhook_token}/", body, content_type="application/json", headers=headers)


def test_registry_maps_shopify_to_its_adapter():
    assert SOURCE_ADAPTERS["shopify"] is ShopifySource


def test_signed_paid_order_is_stored_once_under_its_change_key(gateway, client):
    response = deliver(client, gateway, PAID_BODY)

    assert response.status_code == 200, response.content
    assert response.json()["duplicate"] is False
    event = InboundEvent.objects.get(gateway=gateway)
    # The order's id and its updated_at (10:14:09-03:00) as a UTC instant: the key a poll of the same change gets.
    assert (event.delivery_id, event.topic) == ("order:5812340098113@2026-11-20T13:14:09Z:paid:0:", "orders/paid")
    assert event.payload["id"] == 5812340098113
    # Shopify escapes "/" in the body; the stored payload is the parsed value.
    assert event.payload["admin_graphql_api_id"] == "gid://shopify/Order/5812340098113"


def test_retry_with_the_same_webhook_id_is_a_duplicate(gateway, client):
    first = deliver(client, gateway, PAID_BODY)
    retry = deliver(client, gateway, PAID_BODY)

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json()["duplicate"] is True
    assert retry.json()["event"] == first.json()["event"]
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_wrong_signature_is_401_and_nothing_is_stored(gateway, client):
    response = deliver(client, gateway, PAID_BODY, secret="not-the-secret")

    assert response.status_code == 401
    assert "Firma de webhook inválida" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_missing_signature_is_401(gateway, client):
    response = deliver(client, gateway, PAID_BODY, secret=None)

    assert response.status_code == 401
    assert "no viene la cabecera X-Shopify-Hmac-Sha256" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_non_ascii_signature_header_is_a_401_not_a_crash():
    with pytest.raises(WebhookRejected) as rejected:
        read_delivery(headers={"X-Shopify-Hmac-Sha256": "fírma"}, body=PAID_BODY, secrets=[SECRET], store_url="")
    assert rejected.value.status == 401


def test_signature_with_the_previous_secret_is_accepted_during_rotation(account, client):
    gateway = GatewayFactory(
        account=account,
        source__platform="shopify",
        source__credentials={"webhook_secret": SECRET, "previous_webhook_secret": OLD_SECRET},
        source__store_url=f"https://{SHOP}",
    )

    assert deliver(client, gateway, PAID_BODY, secret=OLD_SECRET, webhook_id="old").status_code == 200
    assert deliver(client, gateway, PAID_BODY, secret=SECRET, webhook_id="new").status_code == 200
    # Two deliveries of the same change of the order: one event.
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_store_without_a_secret_rejects_even_signed_deliveries(account, client):
    gateway = GatewayFactory(account=account, source__platform="shopify", source__store_url=f"https://{SHOP}",
                             source__credentials={})

    response = deliver(client, gateway, PAID_BODY)

    assert response.status_code == 401
    assert "no tiene secreto de webhook" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_delivery_from_another_shop_is_rejected_naming_both_domains(gateway, client):
    # Same app, so the same client secret: the signature is valid, the shop is not this connection's.
    response = deliver(client, gateway, PAID_BODY, shop="otra-tienda.myshopify.com")

    assert response.status_code == 401
    error = response.json()["error"]
    assert "otra-tienda.myshopify.com" in error and SHOP in error
    assert not InboundEvent.objects.exists()


def test_connection_without_store_url_accepts_any_shop_domain(account, client):
    gateway = GatewayFactory(account=account, source__platform="shopify", source__credentials={"webhook_secret": SECRET})

    assert deliver(client, gateway, PAID_BODY, shop="otra-tienda.myshopify.com").status_code == 200


def test_reserialised_body_fails_the_raw_body_hmac(gateway, client):
    reserialised = json.dumps(json.loads(PAID_BODY), ensure_ascii=False, indent=1).encode()
    assert json.loads(reserialised) == json.loads(PAID_BODY)

    response = deliver(client, gateway, reserialised, signature=sign(PAID_BODY, SECRET))

    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("topic", ["products/update", "customers/create", ""])
def test_topic_we_do_not_handle_is_acknowledged_and_ignored(gateway, client, topic):
    response = deliver(client, gateway, PAID_BODY, topic=topic)

    assert response.status_code == 200
    assert "no es de órdenes" in response.json()["ignored"]
    assert not InboundEvent.objects.exists()


def test_refund_delivery_is_ignored_because_orders_updated_carries_the_refund(gateway, client):
    response = deliver(client, gateway, REFUND_BODY, topic="refunds/create")

    assert response.status_code == 200
    assert "orders/updated" in response.json()["ignored"]
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize(
    ("topic", "webhook_id"),
    [("orders/create", "w-1"), ("orders/updated", "w-2"), ("orders/cancelled", "w-3"), ("orders/fulfilled", "w-4"), ("orders/partially_fulfilled", "w-5")],
)
def test_every_order_topic_is_stored_with_its_topic(gateway, client, topic, webhook_id):
    assert deliver(client, gateway, PAID_BODY, topic=topic, webhook_id=webhook_id).status_code == 200
    assert InboundEvent.objects.get(gateway=gateway).topic == topic


def test_missing_webhook_id_falls_back_to_the_body_hash():
    headers = {"X-Shopify-Hmac-Sha256": sign(PAID_BODY, SECRET), "X-Shopify-Topic": "orders/paid"}

    delivery = read_delivery(headers=headers, body=PAID_BODY, secrets=[SECRET], store_url="")

    assert delivery.delivery_id.startswith("sha256:") and len(delivery.delivery_id) == 71


def test_refund_topic_is_ignored_only_after_the_signature_is_checked():
    with pytest.raises(WebhookRejected):
        read_delivery(headers={"X-Shopify-Topic": "refunds/create"}, body=REFUND_BODY, secrets=[SECRET], store_url="")
    with pytest.raises(WebhookIgnored):
        read_delivery(
            headers={"X-Shopify-Topic": "refunds/create", "X-Shopify-Hmac-Sha256": sign(REFUND_BODY, SECRET)},
            body=REFUND_BODY, secrets=[SECRET], store_url="",
        )


@pytest.mark.shared
@pytest.mark.skipif(not PYTHON_API_SAMPLE.is_file(), reason=f"Shopify sample not found at {PYTHON_API_SAMPLE} (set BMS_SHARED_DIR)")
def test_shopify_python_api_order_is_accepted_as_a_webhook_body(gateway, client):
    # The sample is a REST response ({"order": {...}}); a webhook body is the bare order inside it.
    body = json.dumps(json.loads(PYTHON_API_SAMPLE.read_text())["order"]).encode()

    response = deliver(client, gateway, body, topic="orders/create", webhook_id="python-api-sample")

    assert response.status_code == 200, response.content
    assert InboundEvent.objects.get(gateway=gateway).payload["id"] == 450789469


def test_accepted_paid_order_is_ingested_ready_to_emit(gateway, client):
    deliver(client, gateway, PAID_BODY)
    event = InboundEvent.objects.get(gateway=gateway)

    order = services.inbound_event_process(event_id=event.pk)

    # Paid, CLP, no RUT asked for (Boleta): the default rules emit a boleta, and the active gateway
    # with no billing start date makes it ready at once.
    assert (order.external_id, order.number) == ("5812340098113", "#1187")
    assert order.status == OrderStatus.READY, order.status_reason
    assert order.paid_total == 36960
    assert order.decision["document_type"] == 39
    assert order.emissions.count() == 1
    event.refresh_from_db()
    assert event.processed_at is not None and event.error == ""


def test_orders_edited_carries_the_edit_not_the_order_and_is_ignored(gateway, client):
    edit = json.dumps({"order_edit": {"id": 91000001, "order_id": 5812340098113, "line_items": {
        "additions": [], "removals": [{"id": 14501230044225, "delta": 1}]}}}).encode()

    response = deliver(client, gateway, edit, topic="orders/edited")

    assert response.status_code == 200 and "orders/updated" in response.json()["ignored"]
    assert not InboundEvent.objects.exists()


def test_create_and_paid_deliveries_of_the_same_version_are_one_event(gateway, client):
    assert deliver(client, gateway, PAID_BODY, topic="orders/create", webhook_id="w-create").json()["duplicate"] is False
    assert deliver(client, gateway, PAID_BODY, topic="orders/paid", webhook_id="w-paid").json()["duplicate"] is True
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_a_newer_version_of_the_order_is_a_new_event(gateway, client):
    newer = json.loads(PAID_BODY)
    newer["updated_at"] = "2026-11-20T10:20:00-03:00"
    deliver(client, gateway, PAID_BODY)
    deliver(client, gateway, json.dumps(newer).encode(), topic="orders/updated", webhook_id="w-2")
    assert sorted(InboundEvent.objects.values_list("delivery_id", flat=True)) == [
        "order:5812340098113@2026-11-20T13:14:09Z:paid:0:", "order:5812340098113@2026-11-20T13:20:00Z:paid:0:"]


def test_paid_in_the_same_second_it_was_created_is_a_new_version(gateway, client):
    """updated_at has whole seconds: pending → paid within one second must not be taken for a duplicate."""
    pending = json.loads(PAID_BODY)
    pending["financial_status"] = "pending"
    deliver(client, gateway, json.dumps(pending).encode(), topic="orders/create", webhook_id="w-create")
    deliver(client, gateway, PAID_BODY, webhook_id="w-paid")
    assert sorted(InboundEvent.objects.values_list("delivery_id", flat=True)) == [
        "order:5812340098113@2026-11-20T13:14:09Z:paid:0:", "order:5812340098113@2026-11-20T13:14:09Z:pending:0:"]


APP_SECRET = "shpss_app_client_secret_9d1e"
APP_CREDENTIALS = {"access_token": "shpua_1", "refresh_token": "shprt_1", "scope": "read_orders,write_orders"}
SHOP_BODY = json.dumps({"id": 70123456789, "name": "Tienda Chile", "domain": SHOP, "myshopify_domain": SHOP}).encode()


@pytest.fixture
def app_gateway(account, settings):
    settings.BMS_SHOPIFY_CLIENT_SECRET = APP_SECRET
    return GatewayFactory(account=account, source__platform="shopify", source__store_url=f"https://{SHOP}",
                          source__credentials=APP_CREDENTIALS)


def test_a_connection_made_by_installing_the_app_takes_deliveries_signed_with_the_app_secret(app_gateway, client):
    assert deliver(client, app_gateway, PAID_BODY, secret=APP_SECRET).status_code == 200
    assert InboundEvent.objects.filter(gateway=app_gateway).count() == 1


def test_the_app_secret_does_not_open_a_custom_app_connection(gateway, client, settings):
    settings.BMS_SHOPIFY_CLIENT_SECRET = APP_SECRET
    assert deliver(client, gateway, PAID_BODY, secret=APP_SECRET).status_code == 401


def test_app_uninstalled_disconnects_the_connection(app_gateway, client):
    response = deliver(client, app_gateway, SHOP_BODY, secret=APP_SECRET, topic="app/uninstalled")

    assert response.status_code == 200 and "desconectada" in response.json()["ignored"]
    source = SourceConnection.objects.get(pk=app_gateway.source_id)
    assert source.status == SourceConnection.Status.DISABLED and "desinstaló" in source.status_message
    assert not InboundEvent.objects.exists()
    # Polling skips it from now on.
    assert source.pk not in SourceConnection.objects.filter(status__in=[SourceConnection.Status.ACTIVE,
                                                                        SourceConnection.Status.ERROR]).values_list("pk", flat=True)


@pytest.mark.parametrize("secret, shop", [("not-the-secret", SHOP), (APP_SECRET, "otra-tienda.myshopify.com")])
def test_an_unverified_app_uninstalled_changes_nothing(app_gateway, client, secret, shop):
    assert deliver(client, app_gateway, SHOP_BODY, secret=secret, topic="app/uninstalled", shop=shop).status_code == 401
    assert SourceConnection.objects.get(pk=app_gateway.source_id).status == SourceConnection.Status.ACTIVE


def test_a_shop_that_reads_the_rut_from_the_checkout_field_takes_its_orders_from_the_poll(account, client):
    gateway = GatewayFactory(account=account, source__platform="shopify", source__store_url=f"https://{SHOP}",
                             source__credentials={"webhook_secret": SECRET}, source__config={"rut_from_checkout_field": True})

    response = deliver(client, gateway, PAID_BODY)

    assert response.status_code == 200 and "próxima consulta" in response.json()["ignored"]
    assert not InboundEvent.objects.exists()


@pytest.mark.shared
@needs_samples
@pytest.mark.parametrize("name", ["shopify_order_shopify_python_api_fixture.json", "shopify_order_docs_example_with_refunds.json"])
def test_shopify_s_own_samples_get_the_change_key_of_their_version(name):
    sample = json.loads((SAMPLES_DIR / name).read_text())
    # The REST envelope and the bare webhook body name the same version: id and updated_at as a UTC instant,
    # with the payment status and refunds that may change within that second.
    refunds = len(sample["order"].get("refunds") or [])
    assert ShopifySource.change_key(sample) == ShopifySource.change_key(sample["order"]) == (
        f"order:450789469@2008-01-10T16:00:00Z:authorized:{refunds}:")


@pytest.mark.parametrize("body", [{"id": 1}, {"id": 1, "updated_at": "ayer"}, {"id": 1, "updated_at": "2026-11-20T10:14:09"},
                                  {"id": True, "updated_at": "2026-11-20T10:14:09-03:00"}, {"updated_at": "2026-11-20T10:14:09-03:00"}])
def test_a_body_that_does_not_say_its_version_has_no_change_key(body):
    assert ShopifySource.change_key(body) is None


def test_the_previous_app_secret_is_accepted_during_a_rotation(app_gateway, client, settings):
    settings.BMS_SHOPIFY_CLIENT_SECRET = "shpss_rotated_new_secret"
    settings.BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET = APP_SECRET
    assert deliver(client, app_gateway, PAID_BODY, secret=APP_SECRET).status_code == 200
    assert deliver(client, app_gateway, PAID_BODY, secret="shpss_rotated_new_secret", webhook_id="w-new").status_code == 200
