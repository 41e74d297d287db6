"""WooCommerce deliveries through the real webhook view: the ping, raw-body HMAC, change-key dedupe, topics."""
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateways import services
from gateways.models import InboundEvent, OrderStatus
from sources.registry import SOURCE_ADAPTERS
from sources.woocommerce.adapter import WooCommerceSource
from sources.woocommerce.webhooks import WooCommerceWebhookReader
from tests.gateways.factories import GatewayFactory
from tests.sources.contracts import StoreWebhookContract

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "woocommerce" / "fixtures"

SECRET = "wc9Kq2Lr7Tz4Vb1Nx8Md"
OLD_SECRET = "wc0Aa1Bb2Cc3Dd4Ee5Ff"
STORE = "https://tiendavalpo.cl"
UPDATED_BODY = (FIXTURES / "webhook_order_updated_processing_clp.json").read_bytes()
DELETED_BODY = (FIXTURES / "webhook_order_deleted.json").read_bytes()
# WooCommerce derives it from the webhook id and the current second, so it repeats across orders.
SAME_SECOND_DELIVERY_ID = "8b1c2a7f0e4d9c3b6a5f8e7d1c2b3a49"
sign = WooCommerceWebhookReader.sign


class TestWooCommerceWebhookContract(StoreWebhookContract):
    platform = "woocommerce"
    store_url = STORE
    order_topic = "order.updated"
    ignored_topic = "coupon.created"
    other_host = "https://otra-tienda.cl/"

    def order_body(self) -> bytes:
        return UPDATED_BODY

    def headers(self, body, *, secret, topic, host=None, delivery_id=SAME_SECOND_DELIVERY_ID, signature=None):
        resource, _, event = topic.partition(".")
        headers = {"X-WC-Webhook-Source": host or f"{STORE}/", "X-WC-Webhook-Topic": topic,
                   "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event, "X-WC-Webhook-ID": "14",
                   "X-WC-Webhook-Delivery-ID": delivery_id}
        if signature is None and secret is not None:
            signature = sign(body, secret)
        if signature is not None:
            headers["X-WC-Webhook-Signature"] = signature
        return headers


@pytest.fixture
def gateway(account):
    return GatewayFactory(
        account=account,
        source__platform="woocommerce",
        source__credentials={"webhook_secret": SECRET},
        source__store_url=STORE,
    )


def deliver(client, gateway, body: bytes, *, secret: str | None = SECRET, topic="order.updated", source=f"{STORE}/", signature=None):
    resource, _, event = topic.partition(".")
    headers = {
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "14",
        "X-WC-Webhook-Delivery-ID": SAME_SECOND_DELIVERY_ID,
    }
    if signature is None and secret is not None:
        signature = sign(body, secret)
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    return client.post(f"/hooks/{gateway.webhook_token}/", body, content_type="application/json", headers=headers)


def ping(client, gateway):
    # As deliver_ping() sends it: a form body, no signature, no X-WC-* headers.
    return client.post(
        f"/hooks/{gateway.webhook_token}/", b"webhook_id=14", content_type="application/x-www-form-urlencoded",
        headers={"User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"},
    )


def test_registry_maps_woocommerce_to_its_adapter():
    assert SOURCE_ADAPTERS["woocommerce"] is WooCommerceSource


def test_ping_gets_exactly_200_and_stores_nothing(gateway, client):
    response = ping(client, gateway)

    assert response.status_code == 200
    assert response.json() == {"received": True, "ignored": "WooCommerce: ping de creación del webhook."}
    assert not InboundEvent.objects.exists()


def test_ping_is_answered_before_the_secret_is_configured(account, client):
    gateway = GatewayFactory(account=account, source__platform="woocommerce", source__store_url=STORE, source__credentials={})

    assert ping(client, gateway).status_code == 200


def test_signed_order_update_is_stored_under_the_order_change_key(gateway, client):
    response = deliver(client, gateway, UPDATED_BODY)

    assert response.status_code == 200, response.content
    event = InboundEvent.objects.get(gateway=gateway)
    # The same key the poller gives this version of the order: one change, one event, however it arrives.
    assert event.delivery_id == "order:20934@2026-11-20T14:03:40"
    assert event.delivery_id == WooCommerceSource.change_key(json.loads(UPDATED_BODY))
    assert event.topic == "order.updated"
    assert event.payload["id"] == 20934


def test_a_later_version_of_the_same_order_is_a_new_event(gateway, client):
    later = json.loads(UPDATED_BODY)
    later.update(status="completed", date_modified="2026-11-20T12:30:02", date_modified_gmt="2026-11-20T15:30:02")
    later_body = json.dumps(later, separators=(",", ":")).replace("/", "\\/").encode()

    assert deliver(client, gateway, UPDATED_BODY).json()["duplicate"] is False
    assert deliver(client, gateway, later_body).json()["duplicate"] is False
    assert sorted(InboundEvent.objects.filter(gateway=gateway).values_list("delivery_id", flat=True)) == [
        "order:20934@2026-11-20T14:03:40", "order:20934@2026-11-20T15:30:02",
    ]


def test_the_same_version_with_a_different_body_is_one_event(gateway, client):
    # WooCommerce builds the body when it delivers: the created and updated deliveries of one checkout can
    # differ in bytes (key order, a meta row) while naming the same version of the order.
    reordered = json.dumps(dict(reversed(list(json.loads(UPDATED_BODY).items()))), separators=(",", ":")).encode()

    assert deliver(client, gateway, UPDATED_BODY, topic="order.created").json()["duplicate"] is False
    assert deliver(client, gateway, reordered).json()["duplicate"] is True
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_two_versions_within_the_same_fresh_second_are_two_events(gateway, client):
    # Created pending and paid within one second: same date_modified_gmt, and the paid one must not be lost.
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    pending = json.loads(UPDATED_BODY)
    pending.update(status="pending", date_paid=None, date_paid_gmt=None, date_modified_gmt=now)
    paid = dict(pending, status="processing", date_paid_gmt=now)
    bodies = [json.dumps(version, separators=(",", ":")).encode() for version in (pending, paid)]

    answers = [deliver(client, gateway, body, topic=topic).json()
               for body, topic in zip(bodies, ("order.created", "order.updated"), strict=True)]

    assert [answer["duplicate"] for answer in answers] == [False, False]
    assert sorted(InboundEvent.objects.filter(gateway=gateway).values_list("delivery_id", flat=True)) == sorted(
        "sha256:" + hashlib.sha256(body).hexdigest() for body in bodies)
    # The very same delivery twice is still one event.
    assert deliver(client, gateway, bodies[1]).json()["duplicate"] is True


def test_a_body_without_date_modified_gmt_falls_back_to_the_body_hash(gateway, client):
    bare = json.loads(UPDATED_BODY)
    del bare["date_modified_gmt"]
    bare_body = json.dumps(bare, separators=(",", ":")).encode()

    assert deliver(client, gateway, bare_body).status_code == 200
    assert InboundEvent.objects.get(gateway=gateway).delivery_id == "sha256:" + hashlib.sha256(bare_body).hexdigest()


def test_same_body_twice_is_one_event(gateway, client):
    first = deliver(client, gateway, UPDATED_BODY)
    # WooCommerce fires order.created and order.updated with the same body at checkout.
    second = deliver(client, gateway, UPDATED_BODY, topic="order.created")

    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_different_bodies_with_the_same_delivery_id_are_two_events(gateway, client):
    other = json.loads(UPDATED_BODY)
    other.update(id=20935, number="20935", order_key="wc_order_Zp40KsW1nQe7R")
    other_body = json.dumps(other, separators=(",", ":")).replace("/", "\\/").encode()

    assert deliver(client, gateway, UPDATED_BODY).json()["duplicate"] is False
    assert deliver(client, gateway, other_body).json()["duplicate"] is False
    assert sorted(e.payload["id"] for e in InboundEvent.objects.filter(gateway=gateway)) == [20934, 20935]


def test_order_restored_is_stored(gateway, client):
    assert deliver(client, gateway, UPDATED_BODY, topic="order.restored").status_code == 200
    assert InboundEvent.objects.get(gateway=gateway).topic == "order.restored"


def test_order_deleted_is_acknowledged_and_ignored(gateway, client):
    response = deliver(client, gateway, DELETED_BODY, topic="order.deleted")

    assert response.status_code == 200
    assert "order.deleted" in response.json()["ignored"]
    assert not InboundEvent.objects.exists()


def test_other_topics_are_acknowledged_and_ignored(gateway, client):
    response = deliver(client, gateway, b'{"id":77,"code":"CYBER10"}', topic="coupon.created")

    assert response.status_code == 200
    assert "no es de órdenes" in response.json()["ignored"]
    assert not InboundEvent.objects.exists()


def test_wrong_signature_is_401_and_nothing_is_stored(gateway, client):
    response = deliver(client, gateway, UPDATED_BODY, secret="consumer-secret-by-mistake")

    assert response.status_code == 401
    assert "no el secreto de consumidor de la API REST" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_unsigned_json_is_401_not_taken_for_a_ping(gateway, client):
    response = deliver(client, gateway, UPDATED_BODY, secret=None)

    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


def test_previous_secret_is_accepted_during_rotation(account, client):
    gateway = GatewayFactory(
        account=account, source__platform="woocommerce", source__store_url=STORE,
        source__credentials={"webhook_secret": SECRET, "previous_webhook_secret": OLD_SECRET},
    )

    assert deliver(client, gateway, UPDATED_BODY, secret=OLD_SECRET).status_code == 200


def test_store_without_a_secret_rejects_orders(account, client):
    gateway = GatewayFactory(account=account, source__platform="woocommerce", source__store_url=STORE, source__credentials={})

    response = deliver(client, gateway, UPDATED_BODY)

    assert response.status_code == 401
    assert "no tiene secreto de webhook" in response.json()["error"]


def test_reserialised_body_fails_the_raw_body_hmac(gateway, client):
    reserialised = json.dumps(json.loads(UPDATED_BODY), ensure_ascii=False).encode()

    response = deliver(client, gateway, reserialised, signature=sign(UPDATED_BODY, SECRET))

    assert response.status_code == 401


def test_delivery_from_another_store_is_rejected(gateway, client):
    response = deliver(client, gateway, UPDATED_BODY, source="https://otra-tienda.cl/")

    assert response.status_code == 401
    assert "otra-tienda.cl" in response.json()["error"] and "tiendavalpo.cl" in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_home_url_with_www_matches_a_store_url_without_it(gateway, client):
    assert deliver(client, gateway, UPDATED_BODY, source="https://www.tiendavalpo.cl/").status_code == 200


def test_accepted_order_update_is_ingested_ready_to_emit(gateway, client):
    deliver(client, gateway, UPDATED_BODY)

    order = services.inbound_event_process(event_id=InboundEvent.objects.get(gateway=gateway).pk)

    # processing + date_paid is paid; CLP with a boleta asked for: the default rules emit it.
    assert (order.external_id, order.number) == ("20934", "20934")
    assert order.status == OrderStatus.READY, order.status_reason
    assert order.paid_total == 31990
