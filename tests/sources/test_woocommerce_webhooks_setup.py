"""Our webhooks at the store, made and repaired through the REST API (the merchant never pastes a URL or a
secret), and "Probar conexión": one order listed, our webhooks present and active, and what it cannot check."""
import json
from datetime import timedelta

import pytest
import responses
from django.utils import timezone as dj_timezone
from responses import matchers

from gateways import services
from sources.base import ConnectionTester, WebhookRegistrar
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from tests.gateways.factories import GatewayFactory
from tests.sources.factories import SourceConnectionFactory

PUBLIC = "https://app.billmysales.cl"
STORE = "https://tiendavalpo.cl"
ORDERS = f"{STORE}/wp-json/wc/v3/orders"
WEBHOOKS = f"{STORE}/wp-json/wc/v3/webhooks"
KEY, SECRET = "ck_" + "4f1c9a7e2b" * 4, "cs_" + "0a9b8c7d6e" * 4
WEBHOOK_SECRET = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
HOOK_URL = f"{PUBLIC}/hooks/tok-1/"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.BMS_PUBLIC_URL = PUBLIC


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def source(account):
    return SourceConnectionFactory(account=account, platform="woocommerce", store_url=STORE, config={},
                                   credentials={"consumer_key": KEY, "consumer_secret": SECRET,
                                                "webhook_secret": WEBHOOK_SECRET})


def webhook(hook_id: int, topic: str, status: str = "active", url: str = HOOK_URL, **extra) -> dict:
    resource, _, event = topic.partition(".")
    return {"id": hook_id, "name": f"BillMySales ({topic})", "status": status, "topic": topic, "resource": resource,
            "event": event, "hooks": [], "delivery_url": url, "date_created": "2026-11-19T10:00:00",
            "date_created_gmt": "2026-11-19T13:00:00", "date_modified": "2026-11-19T10:00:00",
            "date_modified_gmt": "2026-11-19T13:00:00", **extra}


def answer_webhooks(store, hooks):
    store.get(WEBHOOKS, json=hooks, match=[matchers.query_param_matcher({"per_page": "100", "page": "1"})],
              headers={"X-WP-Total": str(len(hooks)), "X-WP-TotalPages": "1"})


def expect_create(store, topic: str, hook_id: int, secret: str = WEBHOOK_SECRET, url: str = HOOK_URL):
    store.post(WEBHOOKS, status=201, json=webhook(hook_id, topic, url=url), match=[matchers.json_params_matcher(
        {"name": f"BillMySales ({topic})", "topic": topic, "delivery_url": url, "secret": secret, "status": "active"})])


def ensure(source, url=HOOK_URL) -> str:
    return source_adapter_for(source).ensure_webhooks(callback_url=url)


def test_woocommerce_registers_its_webhooks_and_tests_its_connection(source):
    adapter = source_adapter_for(source)
    assert isinstance(adapter, WebhookRegistrar) and isinstance(adapter, ConnectionTester)


def test_both_order_webhooks_are_created_with_our_secret(source, store):
    answer_webhooks(store, [])
    expect_create(store, "order.created", 11)
    expect_create(store, "order.updated", 12)

    done = ensure(source)

    assert done == "Webhooks de WooCommerce: order.created creado (n.º 11); order.updated creado (n.º 12)."
    assert [(c.request.method, c.request.url.split("?")[0]) for c in store.calls] == [
        ("GET", WEBHOOKS), ("POST", WEBHOOKS), ("POST", WEBHOOKS)]
    assert all(c.request.headers["Authorization"].startswith("Basic ") for c in store.calls)


def test_ensuring_again_finds_ours_and_writes_nothing(source, store):
    answer_webhooks(store, [webhook(11, "order.created", secret=WEBHOOK_SECRET),
                            webhook(12, "order.updated", secret=WEBHOOK_SECRET)])

    done = ensure(source)

    assert "order.created ya estaba activo (n.º 11)" in done and "order.updated ya estaba activo (n.º 12)" in done
    assert len(store.calls) == 1


def test_a_disabled_one_is_reactivated_and_a_secret_we_cannot_read_is_sent_again(source, store):
    # The docs mark the secret write-only: a webhook read back without it may hold another one.
    answer_webhooks(store, [webhook(11, "order.created"), webhook(12, "order.updated", "disabled")])
    for hook_id, topic in ((11, "order.created"), (12, "order.updated")):
        store.put(f"{WEBHOOKS}/{hook_id}", json=webhook(hook_id, topic),
                  match=[matchers.json_params_matcher({"status": "active", "secret": WEBHOOK_SECRET})])

    done = ensure(source)

    assert "order.created actualizado con nuestro secreto (n.º 11)" in done and "order.updated reactivado (n.º 12)" in done


def test_webhooks_of_another_gateway_or_app_are_left_alone(source, store):
    other_gateway = f"{PUBLIC}/hooks/tok-2/"
    answer_webhooks(store, [webhook(3, "order.created", url=other_gateway), webhook(4, "order.updated", url="https://erp.example.cl/wc")])
    expect_create(store, "order.created", 11)
    expect_create(store, "order.updated", 12)

    ensure(source)

    assert [c.request.method for c in store.calls] == ["GET", "POST", "POST"]


def test_a_connection_without_a_webhook_secret_gets_one_before_the_webhooks(account, store):
    source = SourceConnectionFactory(account=account, platform="woocommerce", store_url=STORE,
                                     credentials={"consumer_key": KEY, "consumer_secret": SECRET})
    answer_webhooks(store, [])
    store.post(WEBHOOKS, status=201, json=webhook(11, "order.created"))
    store.post(WEBHOOKS, status=201, json=webhook(12, "order.updated"))

    ensure(source)

    source.refresh_from_db()
    secret = source.credentials["webhook_secret"]
    assert secret.isalnum() and len(secret) >= 32
    assert {json.loads(c.request.body)["secret"] for c in store.calls[1:]} == {secret}


def test_creating_a_gateway_subscribes_its_address(account, source, store):
    gateway = GatewayFactory(account=account, source=source)
    url = f"{PUBLIC}/hooks/{gateway.webhook_token}/"
    answer_webhooks(store, [])
    expect_create(store, "order.created", 21, url=url)
    expect_create(store, "order.updated", 22, url=url)

    assert "creado" in services.gateway_webhooks_ensure(gateway_id=gateway.pk)


def test_a_store_that_refuses_the_webhooks_shows_it_on_the_connection(account, source, store):
    gateway = GatewayFactory(account=account, source=source)
    answer_webhooks(store, [])
    store.post(WEBHOOKS, status=401, json={"code": "woocommerce_rest_authentication_error",
                                           "message": "The API key provided does not have write permissions.",
                                           "data": {"status": 401}})

    services.gateway_webhooks_ensure(gateway_id=gateway.pk)

    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ERROR
    assert "No se pudieron crear los webhooks" in source.status_message and "write permissions" in source.status_message


# --- "Probar conexión" ---------------------------------------------------------------------------


def report_of(source) -> list[tuple]:
    return [(item.label, item.ok, item.detail) for item in source_adapter_for(source).test_connection().items]


@pytest.fixture
def gateway(account, source):
    return GatewayFactory(account=account, source=source)


def test_a_healthy_connection_lists_one_order_and_finds_both_webhooks_active(gateway, source, store):
    source.status, source.status_message = SourceConnection.Status.ERROR, "WooCommerce desactivó el webhook"
    source.save()
    store.get(ORDERS, json=[{"id": 20934, "number": "20934", "status": "processing"}],
              match=[matchers.query_param_matcher({"per_page": "1"})])
    answer_webhooks(store, [webhook(11, "order.created"), webhook(12, "order.updated")])

    report = source_adapter_for(source).test_connection()

    assert report.ok
    assert [(i.label, i.ok) for i in report.items] == [
        ("API REST de WooCommerce", True), ("Secreto de los webhooks", True), ("Webhook order.created", True),
        ("Webhook order.updated", True), ("Entregas", None)]
    assert "la última es la n.º 20934 (processing)" in report.items[0].detail
    assert "no se puede comprobar" in report.items[-1].detail.lower()
    source.refresh_from_db()
    # A passing test clears "needs attention".
    assert (source.status, source.status_message) == (SourceConnection.Status.ACTIVE, "")


def test_a_disabled_webhook_fails_the_test_is_reactivated_and_marks_the_connection(gateway, source, store):
    store.get(ORDERS, json=[], match=[matchers.query_param_matcher({"per_page": "1"})])
    answer_webhooks(store, [webhook(11, "order.created"), webhook(12, "order.updated", "disabled")])
    store.put(f"{WEBHOOKS}/12", json=webhook(12, "order.updated"))

    items = report_of(source)

    assert items[0][1:] == (True, "Las claves funcionan; la tienda aún no tiene órdenes.")
    assert items[-2][:2] == ("Webhooks desactivados", False) and "se reactivó" in items[-2][2]
    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ERROR and "order.updated (n.º 12)" in source.status_message


def test_missing_and_paused_webhooks_are_said(gateway, source, store):
    store.get(ORDERS, json=[], match=[matchers.query_param_matcher({"per_page": "1"})])
    answer_webhooks(store, [webhook(12, "order.updated", "paused")])

    items = {label: (ok, detail) for label, ok, detail in report_of(source)}

    assert items["Webhook order.created"][0] is False and "No existe en la tienda" in items["Webhook order.created"][1]
    assert items["Webhook order.updated"][0] is False and "En pausa" in items["Webhook order.updated"][1]


def test_before_any_gateway_the_webhooks_are_not_expected_yet(source, store):
    store.get(ORDERS, json=[], match=[matchers.query_param_matcher({"per_page": "1"})])
    answer_webhooks(store, [])

    items = {label: (ok, detail) for label, ok, detail in report_of(source)}

    assert items["Webhook order.created"] == (None, "Aún no hay una pasarela con esta tienda: se crea al crearla.")


def test_a_dropped_header_is_diagnosed_by_trying_the_query_string(source, store):
    store.get(ORDERS, status=401, json={"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
                                        "data": {"status": 401}}, match=[matchers.query_param_matcher({"per_page": "1"})])
    store.get(ORDERS, json=[], match=[matchers.query_param_matcher(
        {"per_page": "1", "consumer_key": KEY, "consumer_secret": SECRET})])

    items = report_of(source)

    assert items[0][1] is False and "con las claves en la URL sí" in items[0][2]
    assert items[1] == ("Webhooks", None, "No se revisaron: la API REST no respondió con estas claves.")


def test_without_keys_it_says_what_it_could_not_check(account, store):
    source = SourceConnectionFactory(account=account, platform="woocommerce", store_url=STORE,
                                     credentials={"webhook_secret": WEBHOOK_SECRET})

    items = report_of(source)

    assert items[0][1] is False and "no tiene consumer_key ni consumer_secret" in items[0][2]
    assert items[1][1] is None and len(store.calls) == 0


def test_the_api_answers_the_test_in_words(api_client, gateway, source, store):
    SourceConnection.objects.filter(pk=source.pk).update(created_at=dj_timezone.now() - timedelta(hours=1))
    store.get(ORDERS, status=503, body="<html>Service Unavailable</html>")

    body = api_client.post(f"/api/v1/sources/{source.pk}/test/").json()

    assert body["ok"] is False and "HTTP 503" in body["items"][0]["detail"]
