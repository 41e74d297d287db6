"""Polling a WooCommerce store (the safety net under its webhooks): the exact REST request, pages through
X-WP-TotalPages, the fallbacks, every failure, and the look at our webhooks that says when one was disabled."""
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses
from django.utils import timezone as dj_timezone
from responses import matchers

from gateways import polling
from gateways.models import InboundEvent
from sources.base import OrderPoller
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from sources.woocommerce.adapter import WooCommerceSource
from sources.woocommerce.client import AuthorizationHeaderDropped
from sources.woocommerce.webhooks import WooCommerceWebhookReader
from tests.gateways.factories import GatewayFactory
from tests.shared import SAMPLES_DIR, needs_samples
from tests.sources.factories import SourceConnectionFactory

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "woocommerce" / "fixtures"
STORE = "https://tiendavalpo.cl"
PUBLIC = "https://app.billmysales.cl"
KEY, SECRET = "ck_" + "4f1c9a7e2b" * 4, "cs_" + "0a9b8c7d6e" * 4
WEBHOOK_SECRET = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
ORDERS = f"{STORE}/wp-json/wc/v3/orders"
WEBHOOKS = f"{STORE}/wp-json/wc/v3/webhooks"
SINCE = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
BASIC = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def page_query(page=1, orderby="modified", **extra) -> dict:
    return {"modified_after": "2026-11-20T14:00:00", "dates_are_gmt": "true", "per_page": "100", "page": str(page),
            "orderby": orderby, "order": "desc", **extra}


def webhook(hook_id: int, topic: str, status: str = "active", url: str = f"{PUBLIC}/hooks/tok-1/") -> dict:
    """The shape of the docs' webhook object (no secret: the docs mark it write-only)."""
    resource, _, event = topic.partition(".")
    return {"id": hook_id, "name": f"BillMySales ({topic})", "status": status, "topic": topic, "resource": resource,
            "event": event, "hooks": ["woocommerce_update_order"], "delivery_url": url,
            "date_created": "2026-11-19T10:00:00", "date_created_gmt": "2026-11-19T13:00:00",
            "date_modified": "2026-11-19T10:00:00", "date_modified_gmt": "2026-11-19T13:00:00"}


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


def answer_orders(store, orders, *, page=1, pages=1, total=None, orderby="modified", **extra):
    store.get(ORDERS, json=orders, match=[matchers.query_param_matcher(page_query(page, orderby, **extra))],
              headers={"X-WP-Total": str(total if total is not None else len(orders)), "X-WP-TotalPages": str(pages)})


def answer_webhooks(store, hooks):
    store.get(WEBHOOKS, json=hooks, match=[matchers.query_param_matcher({"per_page": "100", "page": "1"})],
              headers={"X-WP-Total": str(len(hooks)), "X-WP-TotalPages": "1"})


def poll(source, cursor=None, until=None):
    return source_adapter_for(source).poll(cursor=cursor or {}, since=SINCE, until=until)


def test_woocommerce_polls():
    assert issubclass(WooCommerceSource, OrderPoller)


def test_a_poll_asks_for_the_orders_modified_in_the_window_newest_change_first(source, store):
    orders = [fixture("webhook_order_updated_processing_clp.json"), fixture("order_completed_boleta_no_tax.json")]
    answer_orders(store, orders)
    answer_webhooks(store, [])

    batch = poll(source)

    request = store.calls[0].request
    assert request.headers["Authorization"] == BASIC
    assert "consumer_key" not in request.url and request.headers["User-Agent"].startswith("BillMySales/")
    assert request.req_kwargs["timeout"] == (5, 15)
    assert [o.change_key for o in batch.orders] == ["order:20934@2026-11-20T14:03:40", "order:20903@2026-11-20T13:44:09"]
    assert [o.raw for o in batch.orders] == orders
    assert (batch.cursor, batch.more) == ({}, False)
    assert batch.notes == {"requests": 2, "page": 1, "total_pages": 1, "total": 2}


def test_the_poll_key_is_the_webhook_key_of_the_same_change(source, store):
    raw = fixture("webhook_order_updated_processing_clp.json")
    answer_orders(store, [raw])
    answer_webhooks(store, [])
    body = (FIXTURES / "webhook_order_updated_processing_clp.json").read_bytes()
    headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Source": f"{STORE}/",
               "X-WC-Webhook-Signature": WooCommerceWebhookReader.sign(body, WEBHOOK_SECRET)}

    delivered = source_adapter_for(source).webhook_delivery(headers=headers, body=body)

    assert poll(source).orders[0].change_key == delivered.delivery_id == "order:20934@2026-11-20T14:03:40"


def test_an_order_without_date_modified_gmt_is_keyed_by_its_body(source, store):
    answer_orders(store, [fixture("order_refunded_partial_with_fee.json")])
    answer_webhooks(store, [])

    [polled] = poll(source).orders

    assert polled.change_key.startswith("sha256:") and len(polled.change_key) == 71


def test_a_version_modified_just_now_is_keyed_by_its_body_until_it_settles(source, store):
    fresh = dict(fixture("order_completed_boleta_no_tax.json"), date_modified_gmt=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    answer_orders(store, [fresh])
    answer_webhooks(store, [])

    [polled] = poll(source).orders

    # Another version may still come within the same second: the change key would take it for this one.
    assert polled.change_key.startswith("sha256:")
    later = dj_timezone.now() + timedelta(seconds=2)
    assert WooCommerceSource.settled_change_key(fresh, later) == f"order:20903@{fresh['date_modified_gmt']}"


def test_pages_are_followed_through_x_wp_totalpages_with_the_page_in_the_cursor(source, store):
    first, second, third = (fixture(name) for name in (
        "webhook_order_updated_processing_clp.json", "order_completed_boleta_no_tax.json", "order_processing_factura_meta.json"))
    answer_orders(store, [first], page=1, pages=3, total=201)
    answer_webhooks(store, [])
    answer_orders(store, [second], page=2, pages=3, total=201)
    answer_orders(store, [third], page=3, pages=3, total=201)

    one = poll(source)
    two = poll(source, cursor=one.cursor)
    three = poll(source, cursor=two.cursor)

    assert (one.cursor, one.more) == ({"page": 2, "orderby": "modified"}, True)
    assert (two.cursor, two.more) == ({"page": 3, "orderby": "modified"}, True)
    assert (three.cursor, three.more) == ({}, False)
    # Our webhooks are looked at once per walk, on its first page.
    assert [call.request.url.split("?")[0] for call in store.calls] == [ORDERS, WEBHOOKS, ORDERS, ORDERS]


def test_without_x_wp_totalpages_a_full_page_means_there_may_be_another(source, store):
    order = fixture("order_completed_boleta_no_tax.json")
    orders = [dict(order, id=order["id"] + n) for n in range(100)]
    store.get(ORDERS, json=orders, match=[matchers.query_param_matcher(page_query())])
    answer_webhooks(store, [])

    batch = poll(source)

    assert (batch.more, batch.cursor, batch.notes["total_pages"]) == (True, {"page": 2, "orderby": "modified"}, None)


def test_a_backfill_bounds_the_window_and_does_not_look_at_webhooks(source, store):
    until = SINCE + timedelta(days=2)
    answer_orders(store, [fixture("order_completed_boleta_no_tax.json")], modified_before="2026-11-22T14:00:00")

    batch = poll(source, until=until)

    assert len(batch.orders) == 1 and len(store.calls) == 1


def test_a_store_that_does_not_know_orderby_modified_is_paged_by_date(source, store):
    # The docs list orderby date, id, include, title and slug; older cores answer WordPress's 400.
    store.get(ORDERS, status=400, match=[matchers.query_param_matcher(page_query(1, "modified"))], json={
        "code": "rest_invalid_param", "message": "Invalid parameter(s): orderby",
        "data": {"status": 400, "params": {"orderby": "orderby is not one of date, id, include, title, and slug."}}})
    answer_orders(store, [fixture("order_completed_boleta_no_tax.json")], page=1, pages=2, orderby="date")
    answer_webhooks(store, [])
    answer_orders(store, [fixture("order_processing_factura_meta.json")], page=2, pages=2, orderby="date")

    one = poll(source)
    two = poll(source, cursor=one.cursor)

    assert one.cursor == {"page": 2, "orderby": "date"} and one.notes["requests"] == 3
    assert len(two.orders) == 1 and two.more is False


def test_query_string_auth_for_hosts_that_drop_the_authorization_header(source, store):
    source.config = {"query_string_auth": True}
    answer_orders(store, [], consumer_key=KEY, consumer_secret=SECRET)
    store.get(WEBHOOKS, json=[], match=[matchers.query_param_matcher(
        {"per_page": "100", "page": "1", "consumer_key": KEY, "consumer_secret": SECRET})])

    assert poll(source).orders == ()
    assert all("Authorization" not in call.request.headers for call in store.calls)


@pytest.mark.parametrize("answer", [
    {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}},
    {"code": "woocommerce_rest_authentication_error", "message": "Consumer key is missing.", "data": {"status": 401}},
])
def test_a_dropped_authorization_header_is_said_in_spanish_with_the_fix(source, store, answer):
    store.get(ORDERS, status=401, json=answer)

    with pytest.raises(AuthorizationHeaderDropped) as caught:
        poll(source)

    message = caught.value.message
    assert "HTTP 401" in message and answer["message"] in message
    assert "cabecera Authorization" in message and "Enviar las claves en la URL" in message
    assert KEY not in message and SECRET not in message


def test_a_wrong_secret_is_a_plain_rejection_without_the_header_hint(source, store):
    store.get(ORDERS, status=401, json={"code": "woocommerce_rest_authentication_error",
                                        "message": "Consumer secret is invalid.", "data": {"status": 401}},
              headers={"WWW-Authenticate": 'Basic realm="WooCommerce API."'})

    with pytest.raises(SourceRejectedError) as caught:
        poll(source)

    assert not isinstance(caught.value, AuthorizationHeaderDropped)
    assert "Consumer secret is invalid." in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(source, store, status):
    store.get(ORDERS, status=status, body="<html>There has been a critical error on this website.</html>")
    with pytest.raises(SourceTransientError, match=f"HTTP {status}"):
        poll(source)


def test_rate_limiting_by_the_host_is_transient_with_its_retry_after(source, store):
    store.get(ORDERS, status=429, body="Too Many Requests", headers={"Retry-After": "30"})
    with pytest.raises(SourceTransientError) as caught:
        poll(source)
    assert caught.value.retry_after == "30"


@pytest.mark.parametrize("error", [requests.exceptions.ReadTimeout(), requests.exceptions.ConnectionError()])
def test_timeouts_are_transient(source, store, error):
    store.get(ORDERS, body=error)
    with pytest.raises(SourceTransientError, match=type(error).__name__):
        poll(source)


@pytest.mark.parametrize("body, problem", [
    ("<html>Checking your browser before accessing</html>", "no es JSON legible"),
    ('{"orders": []}', "no es una lista de objetos"),
    ("[1, 2]", "no es una lista de objetos"),
])
def test_a_body_that_is_not_a_list_of_orders_is_transient(source, store, body, problem):
    store.get(ORDERS, body=body, content_type="application/json")
    with pytest.raises(SourceTransientError, match=problem):
        poll(source)


def test_a_connection_without_keys_is_refused_before_any_request(account, store):
    source = SourceConnectionFactory(account=account, platform="woocommerce", store_url=STORE,
                                     credentials={"webhook_secret": WEBHOOK_SECRET})
    with pytest.raises(SourceRejectedError, match="no tiene consumer_key ni consumer_secret"):
        poll(source)
    assert len(store.calls) == 0


@pytest.mark.shared
@needs_samples
def test_the_docs_list_sample_as_a_poll_page(source, store):
    orders = json.loads((SAMPLES_DIR / "woocommerce_orders_list_rest_docs_v3.json").read_text())
    answer_orders(store, orders)
    answer_webhooks(store, [])

    assert [o.change_key for o in poll(source).orders] == ["order:727@2017-03-22T19:28:08", "order:723@2017-03-21T19:54:51"]


# --- the look at our webhooks ------------------------------------------------------------------------


def test_a_disabled_webhook_of_ours_is_reactivated_and_said(source, store):
    answer_orders(store, [])
    answer_webhooks(store, [webhook(5, "order.created"), webhook(6, "order.updated", "disabled"),
                            webhook(9, "order.updated", "disabled", url="https://otra-app.example/hook")])
    store.put(f"{WEBHOOKS}/6", json=webhook(6, "order.updated"),
              match=[matchers.json_params_matcher({"status": "active", "secret": WEBHOOK_SECRET})])

    batch = poll(source)

    assert batch.notes["requests"] == 3
    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ERROR
    assert "desactivó el webhook order.updated (n.º 6)" in source.status_message
    assert "se reactivó" in source.status_message and "consulta periódica" in source.status_message
    # Somebody else's webhook is not ours to touch.
    assert not any(call.request.url.endswith("/webhooks/9") for call in store.calls)


def test_the_docs_shaped_webhook_list_with_one_of_ours_disabled(source, store):
    hooks = fixture("webhooks_list_one_of_ours_disabled.json")
    answer_orders(store, [])
    answer_webhooks(store, hooks)
    store.put(f"{WEBHOOKS}/143", json=dict(hooks[0], status="active"),
              match=[matchers.json_params_matcher({"status": "active", "secret": WEBHOOK_SECRET})])

    poll(source)

    source.refresh_from_db()
    assert "desactivó el webhook order.updated (n.º 143)" in source.status_message
    assert [call.request.method for call in store.calls] == ["GET", "GET", "PUT"]  # the ERP's webhook is not ours


def test_a_webhook_that_cannot_be_reactivated_is_said_too(source, store):
    answer_orders(store, [])
    answer_webhooks(store, [webhook(6, "order.updated", "disabled")])
    store.put(f"{WEBHOOKS}/6", status=403, json={"code": "woocommerce_rest_cannot_edit",
                                                 "message": "Sorry, you are not allowed to edit this resource.",
                                                 "data": {"status": 403}})

    poll(source)

    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ERROR
    assert "no se pudo reactivar" in source.status_message and "Ajustes > Avanzado > Webhooks" in source.status_message


def test_a_paused_webhook_is_left_as_the_merchant_set_it(source, store):
    answer_orders(store, [])
    answer_webhooks(store, [webhook(5, "order.created", "paused")])

    poll(source)

    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ACTIVE and len(store.calls) == 2


def test_webhooks_that_cannot_be_listed_do_not_stop_the_poll(source, store):
    answer_orders(store, [fixture("order_completed_boleta_no_tax.json")])
    store.get(WEBHOOKS, status=404, json={"code": "rest_no_route", "message": "No route was found matching the URL "
                                          "and request method.", "data": {"status": 404}})

    assert len(poll(source).orders) == 1


# --- through the generic polling job ------------------------------------------------------------------


@pytest.fixture
def gateway(account, source):
    gateway = GatewayFactory(account=account, source=source)
    SourceConnection.objects.filter(pk=source.pk).update(created_at=dj_timezone.now() - timedelta(hours=1))
    return gateway


def test_the_polling_job_makes_one_event_per_change_and_a_webhook_of_it_is_a_duplicate(gateway, store, client):
    raw = fixture("webhook_order_updated_processing_clp.json")
    store.get(ORDERS, json=[raw], headers={"X-WP-Total": "1", "X-WP-TotalPages": "1"})
    answer_webhooks(store, [webhook(5, "order.created"), webhook(6, "order.updated")])

    assert polling.source_poll(source_id=gateway.source_id) == {"pages": 1, "events": 1, "more": False}

    event = InboundEvent.objects.get(gateway=gateway)
    assert (event.topic, event.delivery_id) == ("poll", "order:20934@2026-11-20T14:03:40")
    body = (FIXTURES / "webhook_order_updated_processing_clp.json").read_bytes()
    response = client.post(f"/hooks/{gateway.webhook_token}/", body, content_type="application/json", headers={
        "X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Source": f"{STORE}/",
        "X-WC-Webhook-Signature": WooCommerceWebhookReader.sign(body, WEBHOOK_SECRET)})
    assert response.json()["duplicate"] is True and InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_the_polling_job_shows_the_dropped_header_on_the_connection(gateway, store):
    store.get(ORDERS, status=401, json={"code": "woocommerce_rest_cannot_view",
                                        "message": "Sorry, you cannot list resources.", "data": {"status": 401}})

    polling.source_poll(source_id=gateway.source_id)

    source = SourceConnection.objects.get(pk=gateway.source_id)
    assert source.status == SourceConnection.Status.ERROR and "Enviar las claves en la URL" in source.status_message
