"""Polling Shopify's GraphQL Admin API (2026-10): the request sent, the page turned into webhook-shaped orders
with the webhook's change keys, throttling and failures, large orders, webhook subscriptions and the
connection test. Shopify's answers are fixtures in the shape of the GraphQL Admin reference."""
import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses

from rules.engine_fields import read_fields
from sources.base import OrderPoller, WebhookRegistrar
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from sources.shopify.adapter import WEBHOOK_TOPICS, ShopifySource
from sources.shopify.fields import DEFAULT_FIELD_MAPPING
from sources.shopify.graphql_orders import rest_order
from sources.shopify.orders import parse_order

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"
SHOP = "tienda-chile.myshopify.com"
URL = f"https://{SHOP}/admin/api/2026-10/graphql.json"
TOKEN = "shpat_poll"
SINCE = datetime(2026, 11, 29, 16, 0, 5, 500000, tzinfo=UTC)
PAGE = json.loads((FIXTURES / "graphql_orders_page.json").read_text(encoding="utf-8"))
WEBHOOK_BODIES = json.loads((FIXTURES / "webhook_orders_same_as_graphql_page.json").read_text(encoding="utf-8"))
COST = {"requestedQueryCost": 788, "actualQueryCost": 150,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1850, "restoreRate": 100.0}}


def connection(**overrides) -> SourceConnection:
    fields = {"platform": "shopify", "store_url": f"https://{SHOP}", "credentials": {"access_token": TOKEN}, "config": {}}
    return SourceConnection(**{**fields, **overrides})


def adapter(**overrides) -> ShopifySource:
    return source_adapter_for(connection(**overrides))


def page(nodes, *, more=False, cursor="Y3Vyc29yLTI=") -> dict:
    return {"data": {"orders": {"pageInfo": {"hasNextPage": more, "endCursor": cursor}, "nodes": nodes}},
            "extensions": {"cost": COST}}


def sent(call) -> dict:
    return json.loads(call.request.body)


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


def test_shopify_polls_and_subscribes_its_own_webhooks():
    assert isinstance(adapter(), OrderPoller) and isinstance(adapter(), WebhookRegistrar)


def test_the_first_page_asks_for_orders_changed_since_the_window_start_oldest_change_first(store):
    store.post(URL, json=PAGE)

    batch = adapter().poll(cursor={}, since=SINCE, until=None)

    [call] = store.calls
    assert call.request.headers["X-Shopify-Access-Token"] == TOKEN
    assert call.request.headers["Content-Type"] == "application/json"
    body = sent(call)
    assert "orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT)" in body["query"]
    assert "pageInfo { hasNextPage endCursor }" in body["query"]
    assert "localizedFields(first: 5)" in body["query"]
    assert body["variables"] == {"first": 3, "after": None, "query": "updated_at:>'2026-11-29T16:00:05Z'"}
    assert [o.change_key for o in batch.orders] == ["order:5812340000006@2026-11-29T16:30:33Z:partially_refunded:1:",
                                                    "order:5812340000033@2026-11-29T16:30:33Z:paid:0:"]
    assert batch.more is True
    assert batch.cursor == {"search": "updated_at:>'2026-11-29T16:00:05Z'", "after": PAGE["data"]["orders"]["pageInfo"]["endCursor"]}
    assert batch.notes["requests"] == 1 and batch.notes["cost"]["throttleStatus"]["currentlyAvailable"] == 1858


def test_the_next_page_continues_from_the_cursor_with_the_same_search(store):
    store.post(URL, json=page([], more=False))

    batch = adapter().poll(cursor={"search": "updated_at:>'2026-11-29T16:00:05Z'", "after": "Y3Vyc29yLTE="},
                           since=SINCE + timedelta(hours=1), until=None)

    assert sent(store.calls[0])["variables"] == {"first": 3, "after": "Y3Vyc29yLTE=", "query": "updated_at:>'2026-11-29T16:00:05Z'"}
    assert (batch.orders, batch.cursor, batch.more) == ((), {}, False)


def test_a_backfill_bounds_the_window(store):
    store.post(URL, json=page([]))
    adapter().poll(cursor={}, since=SINCE, until=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    assert sent(store.calls[0])["variables"]["query"] == "updated_at:>'2026-11-29T16:00:05Z' updated_at:<='2026-11-30T03:00:00Z'"


def test_a_polled_order_reads_exactly_as_its_webhook_does():
    for node, body in zip(PAGE["data"]["orders"]["nodes"], WEBHOOK_BODIES, strict=True):
        polled = rest_order(node)
        assert ShopifySource.change_key(polled) == ShopifySource.change_key(body)
        # Same lines, totals, taxes, discounts, shipping, refunds, buyer: only the raw bodies differ.
        assert replace(parse_order(polled), raw={}) == replace(parse_order(body), raw={})


def test_the_conversion_gives_the_rest_fields_the_parser_and_the_rules_read():
    refunded = rest_order(PAGE["data"]["orders"]["nodes"][0])

    assert (refunded["id"], refunded["name"], refunded["financial_status"], refunded["currency"]) == (
        5812340000006, "#1002", "partially_refunded", "CLP")
    assert (refunded["total_price"], refunded["total_tax"], refunded["taxes_included"]) == ("11475.00", "1832.00", True)
    assert refunded["note_attributes"] == [{"name": "Tipo de documento", "value": "Factura"}]
    line = refunded["line_items"][0]
    assert set(line) >= {"id", "price", "quantity", "taxable", "gift_card", "discount_allocations", "tax_lines", "product_id"}
    [refund] = refunded["refunds"]
    assert refund["transactions"][0]["kind"] == "refund" and refund["transactions"][0]["status"] == "success"
    assert [a["kind"] for a in refund["order_adjustments"]] == ["shipping_refund"]
    assert refunded["localized_fields"] == [{"key": "TAX_CREDENTIAL_CL", "value": "76.393.994-4", "country_code": "CL",
                                             "purpose": "tax", "title": "RUT"}]


def test_the_rut_from_the_checkout_field_comes_before_note_attributes():
    order = rest_order(PAGE["data"]["orders"]["nodes"][0])
    assert read_fields(order, DEFAULT_FIELD_MAPPING)["rut"] == "76.393.994-4"
    order["note_attributes"].append({"name": "RUT", "value": "77.129.271-2"})
    assert read_fields(order, DEFAULT_FIELD_MAPPING)["rut"] == "76.393.994-4"
    order["localized_fields"] = []
    assert read_fields(order, DEFAULT_FIELD_MAPPING)["rut"] == "77.129.271-2"


def test_a_webhook_body_without_localized_fields_falls_back_to_note_attributes():
    body = copy.deepcopy(WEBHOOK_BODIES[0])
    body["note_attributes"].append({"name": "RUT", "value": "76.393.994-4"})
    assert read_fields(body, DEFAULT_FIELD_MAPPING)["rut"] == "76.393.994-4"


THROTTLED = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
             "extensions": {"cost": {"requestedQueryCost": 788, "actualQueryCost": None,
                                     "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 188, "restoreRate": 100.0}}}}


def test_a_throttled_page_is_transient_with_shopify_s_wait_and_no_long_sleep(store, monkeypatch):
    slept = []
    monkeypatch.setattr("sources.shopify.client.time.sleep", slept.append)
    store.post(URL, json=THROTTLED)

    with pytest.raises(SourceTransientError, match="THROTTLED") as caught:
        adapter().poll(cursor={}, since=SINCE, until=None)

    # (788 asked − 188 available) / 100 a second = 6 s: longer than a worker may wait.
    assert caught.value.retry_after == "6" and slept == [] and len(store.calls) == 1


def test_http_429_is_transient_with_its_retry_after(store):
    store.post(URL, status=429, json={"errors": "Exceeded 2 calls per second for api client."}, headers={"Retry-After": "2.0"})
    with pytest.raises(SourceTransientError) as caught:
        adapter().poll(cursor={}, since=SINCE, until=None)
    assert (caught.value.status, caught.value.retry_after) == (429, "2.0")


@pytest.mark.parametrize("answer, error", [
    ({"status": 401, "json": {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}}, SourceRejectedError),
    ({"status": 200, "json": {"errors": [{"message": "Field 'x' doesn't exist on type 'Order'", "extensions": {"code": "undefinedField"}}]}},
     SourceRejectedError),
    ({"status": 503, "body": "<html>Service unavailable</html>"}, SourceTransientError),
    ({"status": 200, "body": "<html>Verify you are human</html>"}, SourceTransientError),
    ({"body": requests.exceptions.ReadTimeout()}, SourceTransientError),
])
def test_failures_of_a_page(store, answer, error):
    store.post(URL, **answer)
    with pytest.raises(error):
        adapter().poll(cursor={}, since=SINCE, until=None)


def _big(node: dict, *, lines_more: bool = False, refund_lines_more: bool = False) -> dict:
    node = copy.deepcopy(node)
    node["lineItems"]["pageInfo"] = {"hasNextPage": lines_more, "endCursor": "bGluZS0x"}
    for refund in node["refunds"]:
        refund["refundLineItems"]["pageInfo"]["hasNextPage"] = refund_lines_more
    return node


def test_an_order_with_more_lines_than_a_page_is_read_alone_and_its_lines_paged(store):
    small = PAGE["data"]["orders"]["nodes"][1]
    first_line, *other_lines = copy.deepcopy(small["lineItems"]["nodes"])
    assert other_lines, "the fixture's second order has several lines"
    truncated = _big(small, lines_more=True)
    truncated["lineItems"]["nodes"] = [first_line]
    alone = _big(small, lines_more=True)
    alone["lineItems"]["nodes"] = [first_line]
    rest = {"data": {"order": {"lineItems": {"pageInfo": {"hasNextPage": False, "endCursor": "bGluZS05"},
                                             "nodes": other_lines}}}}

    def answer(request):
        query = json.loads(request.body)["query"]
        if query.startswith("query BillMySalesOrders("):
            return 200, {}, json.dumps(page([truncated]))
        if query.startswith("query BillMySalesOrder("):
            return 200, {}, json.dumps({"data": {"order": alone}})
        return 200, {}, json.dumps(rest)

    store.add_callback(responses.POST, URL, callback=answer)

    batch = adapter().poll(cursor={}, since=SINCE, until=None)

    assert [sent(c)["query"].split("(")[0] for c in store.calls] == [
        "query BillMySalesOrders", "query BillMySalesOrder", "query BillMySalesOrderLines"]
    assert sent(store.calls[1])["variables"] == {"id": small["id"]}
    assert "lineItems(first: 40)" in sent(store.calls[1])["query"]
    assert sent(store.calls[2])["variables"] == {"id": small["id"], "after": "bGluZS0x"}
    [polled] = batch.orders
    assert len(polled.raw["line_items"]) == len(small["lineItems"]["nodes"])
    assert replace(parse_order(polled.raw), raw={}) == replace(parse_order(WEBHOOK_BODIES[1]), raw={})


def test_an_order_whose_refund_lines_do_not_fit_is_left_to_its_webhook(store):
    huge = _big(PAGE["data"]["orders"]["nodes"][0], refund_lines_more=True)
    store.post(URL, json=page([huge, PAGE["data"]["orders"]["nodes"][1]]))
    store.post(URL, json={"data": {"order": huge}})

    batch = adapter().poll(cursor={}, since=SINCE, until=None)

    assert [o.raw["id"] for o in batch.orders] == [5812340000033]
    assert batch.notes["too_large"] == ["#1002"]


def test_a_disconnected_store_is_not_polled(store):
    batch = adapter(status=SourceConnection.Status.DISABLED).poll(cursor={}, since=SINCE, until=None)
    assert batch.orders == () and batch.more is False and len(store.calls) == 0


CALLBACK = "https://app.billmysales.cl/hooks/gw-token-1/"


def subscriptions(*topics, uri=CALLBACK) -> dict:
    return {"data": {"webhookSubscriptions": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [
        {"id": f"gid://shopify/WebhookSubscription/{n}", "topic": topic, "uri": uri} for n, topic in enumerate(topics, 1)]}}}


def created(topic) -> dict:
    return {"data": {"webhookSubscriptionCreate": {"webhookSubscription": {
        "id": "gid://shopify/WebhookSubscription/99", "topic": topic, "uri": CALLBACK}, "userErrors": []}}}


def test_webhooks_are_listed_first_and_only_the_missing_topics_created(store):
    listed = subscriptions("ORDERS_CREATE", "ORDERS_PAID")
    listed["data"]["webhookSubscriptions"]["nodes"].append(
        {"id": "gid://shopify/WebhookSubscription/7", "topic": "ORDERS_UPDATED", "uri": "https://elsewhere.example/hook"})
    answers = iter([listed] + [created(t) for t in WEBHOOK_TOPICS[2:]])
    store.add_callback(responses.POST, URL, callback=lambda request: (200, {}, json.dumps(next(answers))))

    done = adapter().ensure_webhooks(callback_url=CALLBACK)

    bodies = [sent(c) for c in store.calls]
    assert "webhookSubscriptions(first: 100, after: $after)" in bodies[0]["query"]
    assert [(b["variables"]["topic"], b["variables"]["webhookSubscription"]) for b in bodies[1:]] == [
        (topic, {"uri": CALLBACK}) for topic in ("ORDERS_UPDATED", "ORDERS_EDITED", "ORDERS_CANCELLED", "REFUNDS_CREATE", "APP_UNINSTALLED")]
    assert "ORDERS_UPDATED, ORDERS_EDITED, ORDERS_CANCELLED, REFUNDS_CREATE, APP_UNINSTALLED suscritos; 2 ya existían" in done


def test_webhooks_already_there_are_not_created_again(store):
    store.post(URL, json=subscriptions(*WEBHOOK_TOPICS))
    assert "ya estaban suscritos" in adapter().ensure_webhooks(callback_url=CALLBACK)
    assert len(store.calls) == 1


def test_a_refused_subscription_is_a_rejection_with_shopify_s_words(store):
    store.post(URL, json=subscriptions(*WEBHOOK_TOPICS[1:]))
    store.post(URL, json={"data": {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": [
        {"field": ["webhookSubscription", "uri"], "message": "Address protocol http:// is not supported"}]}}})
    with pytest.raises(SourceRejectedError, match="ORDERS_CREATE: Address protocol http:// is not supported"):
        adapter().ensure_webhooks(callback_url=CALLBACK)


def test_connection_test_checks_token_scopes_webhooks_and_the_last_poll(store, settings):
    settings.BMS_PUBLIC_URL = "https://app.billmysales.cl"
    store.post(URL, json={"data": {"shop": {"name": "Tienda Chile", "myshopifyDomain": SHOP}}})
    store.post(URL, json=subscriptions(*WEBHOOK_TOPICS[:-1]))
    source = connection(credentials={"access_token": TOKEN, "scope": "write_orders"}, poll_error="Shopify falló (HTTP 503)")

    report = ShopifySource(source).test_connection()

    assert [(i.label, i.ok) for i in report.items] == [("Acceso a la tienda", True), ("Permisos", True), ("Webhooks", False),
                                                        ("Última consulta de órdenes", False)]
    assert "Tienda Chile" in report.items[0].detail and "read_orders" in report.items[1].detail
    assert "APP_UNINSTALLED" in report.items[2].detail and "HTTP 503" in report.items[3].detail
    assert sent(store.calls[0])["query"] == "query BillMySalesShop { shop { name myshopifyDomain } }"


def test_connection_test_with_a_refused_token_says_so(store):
    store.post(URL, status=401, json={"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
    report = ShopifySource(connection()).test_connection()
    assert report.ok is False and "HTTP 401" in report.items[0].detail


def test_connection_test_says_missing_scopes():
    source = ShopifySource(connection(credentials={"access_token": TOKEN, "scope": "read_orders"}))
    item = source._scopes_item()
    assert item.ok is False and "write_orders" in item.detail
