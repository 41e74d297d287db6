"""The WooCommerce simulator over real HTTP: wc-auth, REST v3 auth and paging, notes, webhooks and deliveries."""
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from simulators.woocommerce import WooCommerceSimulator
from sources.woocommerce.orders import parse_order
from tests.simulators.control import control
from tests.simulators.receiver import Receiver


@pytest.fixture
def sim():
    with WooCommerceSimulator() as simulator:
        yield simulator


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def key(sim):
    made = control(sim, "/keys", permissions="read_write")
    return made["consumer_key"], made["consumer_secret"]


def api(sim, path):
    return f"{sim.url}/wp-json/wc/v3/{path}"


def authorize(sim, receiver, **params):
    query = {"app_name": "BillMySales", "scope": "read_write", "user_id": "acct-7f3a",
             "return_url": "https://app.example/return", "callback_url": f"{receiver.url}/wc-keys", **params}
    return requests.get(f"{sim.url}/wc-auth/v1/authorize", params=query, allow_redirects=False, timeout=10)


def test_wc_auth_posts_unsigned_keys_then_redirects_and_the_keys_work(sim, receiver):
    answer = authorize(sim, receiver)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert (location.netloc, location.path) == ("app.example", "/return")
    assert dict(parse_qsl(location.query)) == {"success": "1", "user_id": "acct-7f3a"}
    callback = receiver.on("/wc-keys")[0]
    assert callback.method == "POST" and callback.headers["content-type"].startswith("application/json")
    keys = json.loads(callback.body)
    assert set(keys) == {"key_id", "user_id", "consumer_key", "consumer_secret", "key_permissions"}
    assert keys["user_id"] == "acct-7f3a" and keys["key_permissions"] == "read_write"
    assert keys["consumer_key"].startswith("ck_") and keys["consumer_secret"].startswith("cs_")
    assert requests.get(api(sim, "orders"), auth=(keys["consumer_key"], keys["consumer_secret"]), timeout=10).ok


def test_wc_auth_deletes_the_key_unless_the_callback_answers_exactly_200(sim, receiver):
    receiver.statuses["/wc-keys"] = 201
    answer = authorize(sim, receiver)
    assert answer.status_code == 401 and b"unable to send the consumer data" in answer.content
    keys = json.loads(receiver.on("/wc-keys")[0].body)
    denied = requests.get(api(sim, "orders"), auth=(keys["consumer_key"], keys["consumer_secret"]), timeout=10)
    assert denied.status_code == 401
    assert authorize(sim, receiver, scope="admin").status_code == 401
    assert b"needs to be over SSL" in authorize(sim, receiver, callback_url="http://app.example/cb").content
    control(sim, "/settings", deny=True)
    refused = authorize(sim, receiver)
    assert dict(parse_qsl(urlsplit(refused.headers["Location"]).query))["success"] == "0"


def test_rest_auth_basic_query_string_and_a_host_that_strips_authorization(sim, key):
    assert requests.get(api(sim, "orders"), auth=key, timeout=10).status_code == 200
    wrong = requests.get(api(sim, "orders"), auth=(key[0], "cs_wrong"), timeout=10)
    assert wrong.status_code == 401 and wrong.json()["message"] == "Consumer secret is invalid."
    assert "WWW-Authenticate" in wrong.headers
    control(sim, "/settings", strip_authorization=True)
    stripped = requests.get(api(sim, "orders"), auth=key, timeout=10)
    assert stripped.status_code == 401
    assert stripped.json() == {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
                               "data": {"status": 401}}
    by_query = requests.get(api(sim, "orders"), params={"consumer_key": key[0], "consumer_secret": key[1]}, timeout=10)
    assert by_query.status_code == 200
    control(sim, "/settings", missing_key_answer="docs")
    assert requests.get(api(sim, "orders"), auth=key, timeout=10).json()["message"] == "Consumer key is missing."
    read_only = control(sim, "/keys", permissions="read")
    note = requests.post(api(sim, "orders/1/notes"), json={"note": "x"}, timeout=10,
                         params={"consumer_key": read_only["consumer_key"],
                                 "consumer_secret": read_only["consumer_secret"]})
    assert note.json()["message"] == "The API key provided does not have write permissions."


def test_orders_list_filters_pages_and_answers_like_wordpress(sim, key):
    control(sim, "/orders", count=3, created_at="2026-11-20T14:00:00+00:00", document="factura")
    control(sim, "/orders", count=4, created_at="2026-11-20T16:30:00+00:00")
    query = {"modified_after": "2026-11-20T15:00:00", "dates_are_gmt": "true", "orderby": "modified",
             "order": "asc", "per_page": 3}
    first = requests.get(api(sim, "orders"), params=query, auth=key, timeout=10)
    assert first.status_code == 200 and (first.headers["X-WP-Total"], first.headers["X-WP-TotalPages"]) == ("4", "2")
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    second = requests.get(api(sim, "orders"), params={**query, "page": 2}, auth=key, timeout=10)
    assert len(first.json()) == 3 and len(second.json()) == 1 and 'rel="prev"' in second.headers["Link"]
    assert requests.get(api(sim, "orders"), params={**query, "page": 9}, auth=key, timeout=10).json() == []
    too_many = requests.get(api(sim, "orders"), params={"per_page": 101}, auth=key, timeout=10)
    assert too_many.status_code == 400 and too_many.json()["code"] == "rest_invalid_param"
    assert too_many.json()["data"]["params"]["per_page"] == "per_page must be between 1 (inclusive) and 100 (inclusive)"
    local = requests.get(api(sim, "orders"), params={"modified_after": "2026-11-20T12:00:00"}, auth=key, timeout=10)
    assert local.headers["X-WP-Total"] == "4"  # site-local 12:00 is 15:00 UTC (Santiago, UTC-3 in November)
    missing = requests.get(api(sim, "orders/999"), auth=key, timeout=10)
    assert (missing.status_code, missing.json()["code"]) == (404, "woocommerce_rest_shop_order_invalid_id")


def test_order_json_is_a_realistic_chilean_wc_order(sim, key):
    made = control(sim, "/orders", count=1, document="factura")["orders"][0]
    raw = requests.get(api(sim, f"orders/{made['id']}"), auth=key, timeout=10)
    assert b"\\/wp-json\\/wc\\/v3\\/orders" in raw.content  # wp_json_encode escapes slashes
    order = raw.json()
    meta = {m["key"]: m["value"] for m in order["meta_data"]}
    assert meta["_billing_documento"] == "factura" and meta["_billing_rut"][-2] == "-"
    assert order["prices_include_tax"] is True and order["status"] == "processing" and order["date_paid_gmt"]
    parsed = parse_order(order)
    assert parsed.paid_total == int(order["total"])
    gross_lines = sum(line.unit_price * line.quantity - line.discount for line in parsed.lines)
    assert gross_lines + sum(s.price for s in parsed.shipping) == parsed.paid_total
    control(sim, "/settings", tax_mode="none", meta_style="blocks")
    plain = control(sim, "/orders", count=1)["orders"][0]
    assert plain["prices_include_tax"] is False and plain["total_tax"] == "0"
    assert any(m["key"] == "_wc_billing/cl/rut" for m in plain["meta_data"])


def test_private_notes_are_written_back_and_listed(sim, key):
    order = control(sim, "/orders", count=1)["orders"][0]
    created = requests.post(api(sim, f"orders/{order['id']}/notes"), auth=key, timeout=10,
                            json={"note": "Boleta electrónica 39 folio 1234", "customer_note": False})
    assert created.status_code == 201 and created.json()["customer_note"] is False
    listed = requests.get(api(sim, f"orders/{order['id']}/notes"), auth=key, timeout=10).json()
    assert [n["note"] for n in listed] == ["Boleta electrónica 39 folio 1234"]
    missing = requests.post(api(sim, f"orders/{order['id']}/notes"), json={}, auth=key, timeout=10)
    assert missing.json()["code"] == "rest_missing_callback_param"
    state = requests.get(f"{sim.url}/_sim/state", timeout=10).json()["state"]
    assert state["notes"][str(order["id"])][0]["note"] == "Boleta electrónica 39 folio 1234"


def test_webhooks_ping_sign_and_disable_after_consecutive_failures(sim, key, receiver):
    made = requests.post(api(sim, "webhooks"), auth=key, timeout=10, json={
        "name": "BillMySales", "topic": "order.updated", "delivery_url": f"{receiver.url}/wc", "secret": "s3cr3t"})
    assert made.status_code == 201 and made.json()["status"] == "active"
    ping = receiver.received[0]
    assert ping.body == f"webhook_id={made.json()['id']}".encode() and "x-wc-webhook-signature" not in ping.headers
    order = control(sim, "/orders", count=1)["orders"][0]
    control(sim, f"/orders/{order['id']}/complete")
    delivery = receiver.received[-1]
    assert delivery.headers["x-wc-webhook-topic"] == "order.updated"
    assert delivery.headers["x-wc-webhook-source"] == f"{sim.url}/"
    assert delivery.headers["x-wc-webhook-resource"] == "order" and delivery.headers["x-wc-webhook-event"] == "updated"
    expected = base64.b64encode(hmac.new(b"s3cr3t", delivery.body, hashlib.sha256).digest()).decode()
    assert delivery.headers["x-wc-webhook-signature"] == expected
    assert json.loads(delivery.body)["status"] == "completed"
    assert requests.post(api(sim, "webhooks"), auth=key, json={"topic": "order.paid", "delivery_url": receiver.url},
                         timeout=10).json()["code"] == "woocommerce_rest_webhook_invalid_topic"
    receiver.status = 500
    for _ in range(7):
        control(sim, f"/orders/{order['id']}/update", customer_note="x")
    hook = requests.get(api(sim, f"webhooks/{made.json()['id']}"), auth=key, timeout=10).json()
    assert hook["status"] == "disabled"
    sent = len(receiver.received)
    control(sim, f"/orders/{order['id']}/update", customer_note="y")
    assert len(receiver.received) == sent  # disabled webhooks deliver nothing, and nothing is retried
    receiver.status = 200
    enabled = requests.put(api(sim, f"webhooks/{hook['id']}"), json={"status": "active"}, auth=key, timeout=10)
    assert enabled.json()["status"] == "active"


def test_delivery_faults_drop_and_duplicate(sim, key, receiver):
    requests.post(api(sim, "webhooks"), auth=key, timeout=10,
                  json={"topic": "order.created", "delivery_url": f"{receiver.url}/c", "secret": "k"})
    control(sim, "/deliveries", drop_rate=1)
    assert [d["dropped"] for d in control(sim, "/orders", count=2)["deliveries"]] == [True, True]
    control(sim, "/deliveries", drop_rate=0, duplicate_rate=1)
    sent = control(sim, "/orders", count=1)["deliveries"]
    assert [d["duplicate"] for d in sent] == [False, True]
    bodies = [r.body for r in receiver.on("/c")][1:]  # after the creation ping
    assert len(bodies) == 2 and bodies[0] == bodies[1]
