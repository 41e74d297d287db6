"""The Shopify simulator over real HTTP: install, expiring tokens, GraphQL Admin API, throttling, webhooks."""
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests

from simulators.shopify import App, ShopifySimulator
from sources.shopify.orders import parse_order
from tests.simulators.control import control
from tests.simulators.receiver import Receiver

SHOP = "demo-cl.myshopify.com"
SECRET = "test-client-secret"
ORDERS_QUERY = """
query Orders($after: String, $since: String!) {
  orders(first: 2, after: $after, sortKey: UPDATED_AT, query: $since) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId name updatedAt displayFinancialStatus taxesIncluded
      totalPriceSet { shopMoney { amount currencyCode } }
      customAttributes { key value }
      localizedFields(first: 5) { nodes { key value } }
      lineItems(first: 20) { nodes { name quantity originalUnitPriceSet { shopMoney { amount } } } }
    }
  }
}"""


@pytest.fixture
def sim():
    with ShopifySimulator(app=App(client_id="test-client-id", client_secret=SECRET)) as simulator:
        yield simulator


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def gql(sim, token, query, variables=None, shop=SHOP):
    answer = requests.post(f"{sim.shop_url(shop)}/admin/api/2026-10/graphql.json", timeout=10,
                           json={"query": query, "variables": variables or {}},
                           headers={"X-Shopify-Access-Token": token})
    return answer


def legacy_token(sim, scope="read_orders,write_orders"):
    return control(sim, f"/shops/{SHOP}/legacy-token", scope=scope)["access_token"]


def valid_callback_hmac(query: dict, secret: str) -> bool:
    """Recomputed as shopify-app-js does: sorted params without hmac, URL-encoded, hex HMAC-SHA256."""
    message = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()) if k != "hmac")
    return hmac.compare_digest(hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest(), query["hmac"])


def install(sim, expiring=True):
    answer = requests.get(f"{sim.shop_url()}/admin/oauth/authorize", allow_redirects=False, timeout=10, params={
        "client_id": "test-client-id", "scope": "read_orders,write_orders",
        "redirect_uri": "https://app.example/callback", "state": "nonce-123"})
    assert answer.status_code == 302
    query = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    body = {"client_id": "test-client-id", "client_secret": SECRET, "code": query["code"]}
    if expiring:
        body["expiring"] = "1"
    return query, requests.post(f"{sim.shop_url()}/admin/oauth/access_token", json=body, timeout=10)


def test_install_redirects_with_a_verifiable_hmac_and_the_code_is_single_use(sim):
    query, exchanged = install(sim)
    assert sorted(query) == ["code", "hmac", "host", "shop", "state", "timestamp"]
    assert query["shop"] == SHOP and query["state"] == "nonce-123"
    assert base64.b64decode(query["host"] + "==").decode() == "admin.shopify.com/store/demo-cl"
    assert valid_callback_hmac(query, SECRET) and not valid_callback_hmac(query, "other-secret")
    token = exchanged.json()
    assert exchanged.status_code == 200
    assert token["scope"] == "read_orders,write_orders"
    assert token["expires_in"] == 3600 and token["refresh_token_expires_in"] == 90 * 86400
    replay = requests.post(f"{sim.shop_url()}/admin/oauth/access_token", timeout=10, data={
        "client_id": "test-client-id", "client_secret": SECRET, "code": query["code"]})
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_request")
    assert "already used" in replay.json()["error_description"]
    assert gql(sim, token["access_token"], "{ shop { myshopifyDomain } }").json()["data"] == {
        "shop": {"myshopifyDomain": SHOP}}


def test_consent_variants_denial_tampered_hmac_and_unlisted_redirect(sim):
    control(sim, "/app", redirect_urls=["https://app.example/callback"])
    params = {"client_id": "test-client-id", "scope": "read_orders", "redirect_uri": "https://evil.example/cb"}
    unlisted = requests.get(f"{sim.shop_url()}/admin/oauth/authorize", params=params, allow_redirects=False, timeout=10)
    assert unlisted.status_code == 400 and b"redirect_uri is not whitelisted" in unlisted.content
    control(sim, "/consent", tamper_hmac=True)
    query, _ = install(sim)
    assert not valid_callback_hmac(query, SECRET)
    control(sim, "/consent", deny=True, tamper_hmac=False)
    params["redirect_uri"] = "https://app.example/callback"
    denied = requests.get(f"{sim.shop_url()}/admin/oauth/authorize", params=params, allow_redirects=False, timeout=10)
    assert denied.status_code == 403 and "Location" not in denied.headers


def test_refresh_rotates_and_keeps_the_previous_token_until_the_replacement_is_used(sim):
    _, exchanged = install(sim)
    first = exchanged.json()

    def refresh(token):
        return requests.post(f"{sim.shop_url()}/admin/oauth/access_token", timeout=10, json={
            "client_id": "test-client-id", "client_secret": SECRET, "grant_type": "refresh_token",
            "refresh_token": token})

    lost = refresh(first["refresh_token"]).json()  # the app never saved this answer
    retried = refresh(first["refresh_token"])
    assert retried.status_code == 200 and retried.json()["refresh_token"] != lost["refresh_token"]
    second = retried.json()
    third = refresh(second["refresh_token"])
    assert third.status_code == 200
    assert refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(lost["refresh_token"]).status_code == 400
    control(sim, f"/shops/{SHOP}/expire-tokens", access=True)
    expired = gql(sim, third.json()["access_token"], "{ shop { name } }")
    assert expired.status_code == 401
    assert expired.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    control(sim, f"/shops/{SHOP}/expire-tokens", access=False, refresh=True)
    assert refresh(third.json()["refresh_token"]).status_code == 400


def test_orders_query_pages_by_cursor_and_matches_the_webhook_order(sim, receiver):
    token = legacy_token(sim)
    created = control(sim, f"/shops/{SHOP}/orders", count=5, document="factura", rut_field="both")["orders"]
    seen, after = [], None
    while True:
        data = gql(sim, token, ORDERS_QUERY, {"after": after, "since": "updated_at:>'2020-01-01T00:00:00Z'"}).json()
        page = data["data"]["orders"]
        seen += page["nodes"]
        assert data["extensions"]["cost"]["actualQueryCost"] <= data["extensions"]["cost"]["requestedQueryCost"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [n["legacyResourceId"] for n in seen] == [str(o["id"]) for o in created]
    rest, node = created[0], seen[0]
    assert node["id"] == f"gid://shopify/Order/{rest['id']}" and node["name"] == rest["name"]
    total = int(float(rest["total_price"]))
    assert node["totalPriceSet"]["shopMoney"] == {"amount": f"{total}.0", "currencyCode": "CLP"}
    rut = next(a["value"] for a in rest["note_attributes"] if a["name"] == "RUT")
    assert node["localizedFields"]["nodes"] == [{"key": "TAX_CREDENTIAL_CL", "value": rut}]
    parsed = parse_order(rest)
    assert parsed.paid_total == sum(line.unit_price * line.quantity - line.discount for line in parsed.lines) + sum(
        s.price for s in parsed.shipping)
    future = gql(sim, token, ORDERS_QUERY, {"since": "updated_at:>'2999-01-01'"}).json()
    assert future["data"]["orders"]["nodes"] == []


def test_graphql_errors_scopes_and_throttling_look_like_shopify(sim):
    token = legacy_token(sim, scope="read_products")
    denied = gql(sim, token, "{ orders(first: 1) { nodes { id } } }").json()
    assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    token = legacy_token(sim)
    unknown = gql(sim, token, "{ orders(first: 1) { nodes { rut } } }").json()
    assert unknown["errors"][0]["message"] == "Field 'rut' doesn't exist on type 'Order'"
    no_size = gql(sim, token, "{ orders { nodes { id } } }").json()
    assert no_size["errors"][0]["message"] == "you must provide one of first or last"
    too_big = gql(sim, token, "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }").json()
    assert too_big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    control(sim, f"/shops/{SHOP}/bucket", maximum_available=60, restore_rate=1, currently_available=60)
    query = "{ orders(first: 25) { nodes { id } } }"  # 2 + 25 × 1 = 27 points requested
    first = gql(sim, token, query).json()
    assert first["extensions"]["cost"]["requestedQueryCost"] == 27
    assert first["extensions"]["cost"]["actualQueryCost"] == 2  # no orders: the unused points come back
    control(sim, f"/shops/{SHOP}/bucket", currently_available=20)
    throttled = gql(sim, token, query)
    assert throttled.status_code == 200
    body = throttled.json()
    assert body["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 60.0


def test_metafields_set_writes_back_and_reports_user_errors(sim):
    token = legacy_token(sim)
    order = control(sim, f"/shops/{SHOP}/orders", count=1)["orders"][0]
    owner = f"gid://shopify/Order/{order['id']}"
    mutation = """mutation Set($metafields: [MetafieldsSetInput!]!) {
      metafieldsSet(metafields: $metafields) { metafields { key compareDigest } userErrors { field message code } } }"""
    entry = {"ownerId": owner, "namespace": "billmysales", "key": "dte_39_1234", "type": "json",
             "value": json.dumps({"folio": 1234, "tipo": 39})}
    written = gql(sim, token, mutation, {"metafields": [entry]}).json()["data"]["metafieldsSet"]
    assert written["userErrors"] == []
    read = gql(sim, token, f'{{ order(id: "{owner}") {{ metafield(namespace: "billmysales", key: "dte_39_1234") '
                           "{ jsonValue type } } }").json()
    assert read["data"]["order"]["metafield"] == {"jsonValue": {"folio": 1234, "tipo": 39}, "type": "json"}
    stale = gql(sim, token, mutation, {"metafields": [dict(entry, compareDigest="stale")]}).json()
    assert stale["data"]["metafieldsSet"]["userErrors"][0]["code"] == "STALE_OBJECT"
    too_many = gql(sim, token, mutation, {"metafields": [dict(entry, key=f"k{i:02}") for i in range(26)]}).json()
    assert too_many["data"]["metafieldsSet"]["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    rest = requests.post(f"{sim.shop_url()}/admin/api/2026-04/orders/{order['id']}/metafields.json", timeout=10,
                         headers={"X-Shopify-Access-Token": token},
                         json={"metafield": {"namespace": "billmysales", "key": "dte_39_1234", "type": "json",
                                             "value": "{}"}})
    assert rest.status_code == 422
    state = requests.get(f"{sim.url}/_sim/state", timeout=10).json()["state"]
    assert state["shops"][SHOP]["metafields"][str(order["id"])][0]["key"] == "dte_39_1234"
    read_only = legacy_token(sim, scope="read_orders")
    assert gql(sim, read_only, mutation, {"metafields": [entry]}).json()["errors"][0]["extensions"]["code"] == \
        "ACCESS_DENIED"


def test_subscribed_webhooks_are_signed_rest_shaped_deliveries(sim, receiver):
    token = legacy_token(sim)
    create = """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
      webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
        webhookSubscription { id topic uri } userErrors { field message } } }"""
    for topic in ("ORDERS_CREATE", "ORDERS_PAID", "ORDERS_UPDATED", "REFUNDS_CREATE", "APP_UNINSTALLED"):
        made = gql(sim, token, create, {"topic": topic, "uri": f"{receiver.url}/hooks/{topic.lower()}"}).json()
        assert made["data"]["webhookSubscriptionCreate"]["userErrors"] == []
    duplicate = gql(sim, token, create, {"topic": "ORDERS_PAID", "uri": f"{receiver.url}/hooks/orders_paid"}).json()
    assert duplicate["data"]["webhookSubscriptionCreate"]["userErrors"]
    listed = gql(sim, token, "{ webhookSubscriptions(first: 10) { nodes { topic endpoint { __typename "
                             "... on WebhookHttpEndpoint { callbackUrl } } } } }").json()
    assert len(listed["data"]["webhookSubscriptions"]["nodes"]) == 5
    order = control(sim, f"/shops/{SHOP}/orders", count=1, document="boleta")["orders"][0]
    created, paid = receiver.on("/hooks/orders_create"), receiver.on("/hooks/orders_paid")
    assert len(created) == len(paid) == 1
    delivery = created[0]
    assert delivery.headers["x-shopify-topic"] == "orders/create"
    assert delivery.headers["x-shopify-shop-domain"] == SHOP
    assert delivery.headers["x-shopify-api-version"] == "2026-10"
    assert delivery.headers["x-shopify-event-id"] != paid[0].headers["x-shopify-event-id"]
    expected = base64.b64encode(hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).digest()).decode()
    assert delivery.headers["x-shopify-hmac-sha256"] == expected
    assert b"gid:\\/\\/shopify\\/Order\\/" in delivery.body  # Shopify's escaping: HMAC the raw bytes
    assert json.loads(delivery.body)["id"] == order["id"]
    assert parse_order(json.loads(delivery.body)).external_id == str(order["id"])
    line = order["line_items"][0]
    control(sim, f"/shops/{SHOP}/orders/{order['id']}/refund", line_items=[{"line_item_id": line["id"],
                                                                           "quantity": 1}], note="Talla equivocada")
    refund_body = json.loads(receiver.on("/hooks/refunds_create")[0].body)
    assert refund_body["order_id"] == order["id"] and refund_body["transactions"][0]["kind"] == "refund"
    updated = json.loads(receiver.on("/hooks/orders_updated")[-1].body)
    assert updated["financial_status"] in ("partially_refunded", "refunded")
    assert parse_order(updated).refunds[0].reason == "Talla equivocada"
    control(sim, f"/shops/{SHOP}/uninstall")
    assert len(receiver.on("/hooks/app_uninstalled")) == 1
    assert gql(sim, token, "{ shop { name } }").status_code == 401


def test_delivery_faults_and_compliance_webhooks(sim, receiver):
    token = legacy_token(sim)
    gql(sim, token, 'mutation { webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: '
                    f'{{uri: "{receiver.url}/orders"}}) {{ userErrors {{ message }} }} }}')
    control(sim, "/deliveries", drop_rate=1)
    dropped = control(sim, f"/shops/{SHOP}/orders", count=2)["deliveries"]
    assert [d["dropped"] for d in dropped] == [True, True] and receiver.received == []
    control(sim, "/deliveries", drop_rate=0, duplicate_rate=1)
    receiver.status = 500
    sent = control(sim, f"/shops/{SHOP}/orders", count=1)["deliveries"]
    assert [(d["status"], d["duplicate"]) for d in sent] == [(500, False), (500, True)]
    assert receiver.received[0].headers["x-shopify-webhook-id"] == receiver.received[1].headers["x-shopify-webhook-id"]
    receiver.status = 200
    control(sim, "/app", compliance_url=f"{receiver.url}/compliance")
    answer = control(sim, f"/shops/{SHOP}/compliance", topic="customers/redact")
    delivery = receiver.on("/compliance")[0]
    assert delivery.headers["x-shopify-topic"] == "customers/redact"
    assert json.loads(delivery.body)["shop_domain"] == SHOP == answer["payload"]["shop_domain"]
    expected = base64.b64encode(hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).digest()).decode()
    assert delivery.headers["x-shopify-hmac-sha256"] == expected


def test_host_header_addresses_a_shop_and_unknown_shops_are_404(sim):
    control(sim, "/shops", shop="otra-tienda.myshopify.com")
    token = control(sim, "/shops/otra-tienda.myshopify.com/legacy-token")["access_token"]
    by_host = requests.post(f"{sim.url}/admin/api/2026-10/graphql.json", json={"query": "{ shop { myshopifyDomain } }"},
                            headers={"Host": "otra-tienda.myshopify.com", "X-Shopify-Access-Token": token}, timeout=10)
    assert by_host.json()["data"]["shop"]["myshopifyDomain"] == "otra-tienda.myshopify.com"
    assert gql(sim, token, "{ shop { name } }").status_code == 401  # a token is bound to its shop
    assert gql(sim, token, "{ shop { name } }", shop="nadie.myshopify.com").status_code == 404
