"""Connecting a Shopify store by installing our public app: the start, the signed App URL, the callback's
checks (hmac, shop, timestamp, state), the code exchanged for an expiring offline token, reconnects; and
the token refreshed before it expires, once however many workers need it."""
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from django.contrib.messages import get_messages
from django.db import connection as db_connection
from django.http import QueryDict

from accounts.models import Role
from simulators.shopify import query_hmac as independent_hmac
from sources.errors import SourceRejectedError
from sources.models import ConnectAttempt, SourceConnection
from sources.shopify.client import ShopifyClient
from sources.shopify.oauth import normalize_shop, signed_message
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.sources.factories import SourceConnectionFactory

SHOP = "tienda-chile.myshopify.com"
CLIENT_ID = "bms-client-id"
SECRET = "bms-client-secret"
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
GRAPHQL_URL = f"https://{SHOP}/admin/api/2026-10/graphql.json"
TOKEN_ANSWER = {"access_token": "shpua_new_access", "scope": "read_orders,write_orders", "expires_in": 3600,
                "refresh_token": "shprt_new_refresh", "refresh_token_expires_in": 7776000}


@pytest.fixture(autouse=True)
def app_settings(settings):
    settings.BMS_SHOPIFY_CLIENT_ID = CLIENT_ID
    settings.BMS_SHOPIFY_CLIENT_SECRET = SECRET
    settings.BMS_PUBLIC_URL = "https://app.billmysales.cl"
    settings.BMS_SHOPIFY_SHOP_URL_TEMPLATE = "https://{shop}"


@pytest.fixture
def shopify():
    with responses.RequestsMock() as mock:
        yield mock


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def start(client, **params) -> str:
    """Starts the flow; returns the state sent to Shopify."""
    response = client.get("/connect/shopify/start/", {"shop": "tienda-chile", "name": "Mi tienda", **params})
    assert response.status_code == 302, messages_of(response)
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def signed(params: dict, secret: str = SECRET) -> dict:
    """Signed as Shopify signs its redirects (hex HMAC over the sorted query), by the simulator's own code."""
    return {**params, "hmac": independent_hmac(params, secret)}


def callback_params(state: str, **overrides) -> dict:
    params = {"code": "0907a61c0c8d55e99db179b68161bc00", "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGllbmRhLWNoaWxl",
              "shop": SHOP, "state": state, "timestamp": str(int(time.time()))}
    return signed({**params, **overrides})


def test_start_sends_the_merchant_to_shopify_s_authorize_page_with_our_state(session_client, account):
    response = session_client.get("/connect/shopify/start/", {"shop": "https://Tienda-Chile.myshopify.com/admin", "name": "Mi tienda"})

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", SHOP, "/admin/oauth/authorize")
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    attempt = ConnectAttempt.objects.get(account=account, platform="shopify")
    assert query == {"client_id": CLIENT_ID, "scope": "read_orders,write_orders", "state": attempt.state,
                     "redirect_uri": "https://app.billmysales.cl/connect/shopify/callback/"}
    assert attempt.data == {"shop": SHOP, "name": "Mi tienda", "next": ""}


@pytest.mark.parametrize("value, shop", [
    ("tienda-chile", SHOP), ("tienda-chile.myshopify.com", SHOP), ("https://tienda-chile.myshopify.com/admin/orders", SHOP),
    ("admin.shopify.com/store/tienda-chile", SHOP), ("https://tienda.cl", None), ("", None), ("tienda chile", None),
])
def test_the_shop_is_read_from_what_merchants_type(value, shop):
    assert normalize_shop(value) == shop


def test_start_needs_a_role_that_may_write(client, account):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)

    response = client.get("/connect/shopify/start/", {"shop": "tienda-chile"})

    assert response.status_code == 302 and not ConnectAttempt.objects.exists()
    assert "no permite conectar" in messages_of(response)[0]


def test_start_needs_a_signed_in_user(client, db):
    response = client.get("/connect/shopify/start/", {"shop": "tienda-chile"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_start_refuses_a_shop_that_is_not_shopify_s(session_client):
    response = session_client.get("/connect/shopify/start/", {"shop": "https://tienda.cl"})
    assert "myshopify.com" in messages_of(response)[0] and not ConnectAttempt.objects.exists()


def test_callback_exchanges_the_code_for_an_expiring_offline_token_and_creates_the_connection(session_client, account, shopify):
    state = start(session_client)
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)

    response = session_client.get("/connect/shopify/callback/", callback_params(state))

    assert response.status_code == 302 and response["Location"] == "/"
    assert messages_of(response) == ["Tienda Shopify tienda-chile.myshopify.com conectada como «Mi tienda»."]
    [call] = shopify.calls
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {"client_id": CLIENT_ID, "client_secret": SECRET,
                                             "code": "0907a61c0c8d55e99db179b68161bc00", "expiring": "1"}
    source = SourceConnection.objects.get(account=account, platform="shopify")
    assert (source.name, source.store_url, source.status) == ("Mi tienda", f"https://{SHOP}", SourceConnection.Status.ACTIVE)
    credentials = source.credentials
    assert (credentials["access_token"], credentials["refresh_token"], credentials["scope"]) == (
        "shpua_new_access", "shprt_new_refresh", "read_orders,write_orders")
    expires = datetime.fromisoformat(credentials["access_token_expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=59) < expires <= timedelta(hours=1)
    assert datetime.fromisoformat(credentials["refresh_token_expires_at"]) - datetime.now(UTC) > timedelta(days=89)
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT credentials::text FROM sources_sourceconnection WHERE id = %s", [source.pk])
        stored = cursor.fetchone()[0]
    assert "shpua_new_access" not in stored and "shprt_new_refresh" not in stored
    assert ConnectAttempt.objects.get().used_at is not None


def test_callback_goes_back_where_the_flow_started(session_client, shopify):
    state = start(session_client, next="/gateways/7/")
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)
    assert session_client.get("/connect/shopify/callback/", callback_params(state))["Location"] == "/gateways/7/"


def test_start_never_sends_the_merchant_to_another_site_afterwards(session_client, account):
    start(session_client, next="https://evil.example/")
    assert ConnectAttempt.objects.get(account=account).data["next"] == ""


@pytest.mark.parametrize("overrides, message", [
    ({"hmac": "0" * 64}, "firma (hmac)"),
    ({"timestamp": str(int(time.time()) - 600)}, "antigua"),
    ({"shop": "tienda-chile.example.com"}, "no es una tienda de Shopify"),
])
def test_callback_that_shopify_did_not_sign_now_is_refused_and_the_attempt_stays_usable(session_client, shopify, overrides, message):
    state = start(session_client)
    params = callback_params(state)
    if "hmac" in overrides:
        params.update(overrides)
    else:
        params = callback_params(state, **overrides)

    response = session_client.get("/connect/shopify/callback/", params)

    assert message in messages_of(response)[0]
    assert not SourceConnection.objects.exists() and len(shopify.calls) == 0
    assert ConnectAttempt.objects.get().used_at is None


def test_callback_signed_with_another_secret_is_refused(session_client, shopify):
    state = start(session_client)
    params = signed({"code": "c", "shop": SHOP, "state": state, "timestamp": str(int(time.time()))}, secret="another-app")
    assert "firma (hmac)" in messages_of(session_client.get("/connect/shopify/callback/", params))[0]
    assert not SourceConnection.objects.exists()


def test_callback_signed_with_the_previous_secret_during_a_rotation_is_accepted(session_client, shopify, settings):
    settings.BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET = SECRET
    settings.BMS_SHOPIFY_CLIENT_SECRET = "bms-client-secret-rotated"
    state = start(session_client)
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)
    session_client.get("/connect/shopify/callback/", callback_params(state))
    assert SourceConnection.objects.count() == 1
    assert json.loads(shopify.calls[0].request.body)["client_secret"] == "bms-client-secret-rotated"


def test_callback_with_a_state_we_never_issued_is_refused(session_client, shopify):
    start(session_client)
    response = session_client.get("/connect/shopify/callback/", callback_params("forged-state"))
    assert "state desconocido" in messages_of(response)[0]
    assert not SourceConnection.objects.exists() and len(shopify.calls) == 0


def test_callback_from_another_browser_session_is_refused(session_client, client, shopify, user):
    state = start(session_client)
    other = type(session_client)()
    other.force_login(user)
    response = other.get("/connect/shopify/callback/", callback_params(state))
    assert "otra sesión" in messages_of(response)[0] and not SourceConnection.objects.exists()


def test_a_replayed_callback_is_refused_and_the_code_exchanged_once(session_client, shopify):
    state = start(session_client)
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)
    params = callback_params(state)
    session_client.get("/connect/shopify/callback/", params)

    again = session_client.get("/connect/shopify/callback/", params)

    assert "ya se usó" in messages_of(again)[-1]
    assert len(shopify.calls) == 1 and SourceConnection.objects.count() == 1


def test_a_code_shopify_no_longer_accepts_leaves_no_connection(session_client, shopify):
    state = start(session_client)
    shopify.post(TOKEN_URL, status=400, json={"error": "invalid_request",
                                              "error_description": "The authorization code was not found or was already used"})

    response = session_client.get("/connect/shopify/callback/", callback_params(state))

    assert "already used" in messages_of(response)[0]
    assert not SourceConnection.objects.exists()
    assert "HTTP 400" in ConnectAttempt.objects.get().error


def test_a_callback_for_another_shop_than_the_one_started_is_refused(session_client, shopify):
    state = start(session_client)
    response = session_client.get("/connect/shopify/callback/", callback_params(state, shop="otra-tienda.myshopify.com"))
    assert "otra-tienda.myshopify.com" in messages_of(response)[0]
    assert not SourceConnection.objects.exists() and len(shopify.calls) == 0


def test_consent_declined_ends_the_attempt_and_saves_nothing(session_client, shopify):
    state = start(session_client)
    response = session_client.get("/connect/shopify/callback/", {"error": "access_denied", "state": state})
    assert "no autorizó" in messages_of(response)[0]
    assert not SourceConnection.objects.exists() and "access_denied" in ConnectAttempt.objects.get().error


def test_reconnecting_updates_the_same_connection_and_makes_it_active(session_client, account, shopify):
    source = SourceConnectionFactory(account=account, platform="shopify", store_url=f"https://{SHOP}", name="Tienda",
                                     status=SourceConnection.Status.RECONNECT, status_message="No se pudo renovar el acceso",
                                     credentials={"access_token": "shpua_old", "refresh_token": "shprt_old"})
    state = start(session_client, connection=source.pk)
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)

    session_client.get("/connect/shopify/callback/", callback_params(state))

    source.refresh_from_db()
    assert (source.status, source.status_message, source.name) == (SourceConnection.Status.ACTIVE, "", "Tienda")
    assert source.credentials["refresh_token"] == "shprt_new_refresh"
    assert SourceConnection.objects.filter(account=account).count() == 1


def test_reconnecting_a_connection_from_another_shop_is_refused(session_client, account, shopify):
    source = SourceConnectionFactory(account=account, platform="shopify", store_url="https://otra-tienda.myshopify.com",
                                     credentials={"access_token": "shpua_old"})
    state = start(session_client, connection=source.pk)

    response = session_client.get("/connect/shopify/callback/", callback_params(state))

    assert "otra-tienda.myshopify.com" in messages_of(response)[0] and len(shopify.calls) == 0
    source.refresh_from_db()
    assert source.credentials == {"access_token": "shpua_old"}


def test_reconnecting_a_connection_of_another_account_is_404(session_client, other_account):
    foreign = SourceConnectionFactory(account=other_account, platform="shopify", store_url=f"https://{SHOP}")
    assert session_client.get("/connect/shopify/start/", {"shop": SHOP, "connection": foreign.pk}).status_code == 404


def launch(**overrides) -> str:
    params = signed({"host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGllbmRhLWNoaWxl", "shop": SHOP,
                     "timestamp": str(int(time.time())), **overrides})
    return "/connect/shopify/install/?" + urlencode(params)


def test_the_app_url_sends_a_signed_out_merchant_to_log_in_and_back_to_start(client, db):
    response = client.get(launch())
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login/"
    assert parse_qs(location.query)["next"] == [f"/connect/shopify/start/?shop={SHOP}"]


def test_the_app_url_starts_the_flow_for_a_signed_in_merchant(session_client):
    response = session_client.get(launch())
    assert response["Location"] == f"/connect/shopify/start/?shop={SHOP}"


def test_the_app_url_of_a_shop_already_connected_goes_to_the_dashboard(session_client, account):
    SourceConnectionFactory(account=account, platform="shopify", store_url=f"https://{SHOP}")
    response = session_client.get(launch())
    assert response["Location"] == "/" and "ya está conectada" in messages_of(response)[0]


@pytest.mark.parametrize("tamper", ["hmac", "timestamp"])
def test_the_app_url_without_a_valid_signature_is_400(client, db, tamper):
    url = launch()
    if tamper == "hmac":
        url = url.replace("hmac=", "hmac=00")
    else:
        url = launch(timestamp=str(int(time.time()) - 3600))
    assert client.get(url).status_code == 400


def test_the_signed_text_is_the_query_as_shopify_app_js_writes_it():
    # URLSearchParams: spaces as %20, "~" encoded, "*" kept; sorted by name; hmac and signature left out.
    params = QueryDict(mutable=True)
    params.update({"state": "a b~c*d/é", "shop": SHOP, "hmac": "x", "signature": "y", "code": "1"})
    assert signed_message(params) == f"code=1&shop={SHOP}&state=a%20b%7Ec*d%2F%C3%A9"


# --- the token refreshed before it expires -------------------------------------------------------


def expiring_source(account, *, expires_in: timedelta, refresh_expires_in: timedelta = timedelta(days=60)) -> SourceConnection:
    now = datetime.now(UTC)
    return SourceConnectionFactory(account=account, platform="shopify", store_url=f"https://{SHOP}", credentials={
        "access_token": "shpua_old", "access_token_expires_at": (now + expires_in).isoformat(),
        "refresh_token": "shprt_old", "refresh_token_expires_at": (now + refresh_expires_in).isoformat(),
        "scope": "read_orders,write_orders"})


def test_a_token_far_from_expiring_is_used_as_it_is(account, shopify):
    source = expiring_source(account, expires_in=timedelta(minutes=40))
    assert ShopifyClient.for_connection(source).access_token == "shpua_old" and len(shopify.calls) == 0


def test_a_token_about_to_expire_is_refreshed_and_the_rotated_pair_saved(account, shopify):
    source = expiring_source(account, expires_in=timedelta(minutes=2))
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)

    client = ShopifyClient.for_connection(source)

    assert client.access_token == "shpua_new_access"
    assert json.loads(shopify.calls[0].request.body) == {"client_id": CLIENT_ID, "client_secret": SECRET,
                                                         "refresh_token": "shprt_old", "grant_type": "refresh_token"}
    source.refresh_from_db()
    assert (source.credentials["access_token"], source.credentials["refresh_token"]) == ("shpua_new_access", "shprt_new_refresh")
    assert source.refresh_lease_until is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_needing_a_fresh_token_at_once_refresh_once(account, shopify):
    source = expiring_source(account, expires_in=timedelta(seconds=-5))
    refreshes = []

    def token_endpoint(request):
        refreshes.append(json.loads(request.body)["refresh_token"])
        time.sleep(0.5)
        return 200, {}, json.dumps(TOKEN_ANSWER)

    shopify.add_callback(responses.POST, TOKEN_URL, callback=token_endpoint)
    tokens = []

    def worker():
        try:
            tokens.append(ShopifyClient.for_connection(SourceConnection.objects.get(pk=source.pk)).access_token)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert refreshes == ["shprt_old"]
    assert tokens == ["shpua_new_access"] * 3
    source.refresh_from_db()
    assert source.credentials["refresh_token"] == "shprt_new_refresh"


def test_an_expired_refresh_token_asks_the_merchant_to_reconnect_without_calling_shopify(account, shopify):
    source = expiring_source(account, expires_in=timedelta(seconds=-5), refresh_expires_in=timedelta(seconds=-1))

    with pytest.raises(SourceRejectedError, match="venció"):
        ShopifyClient.for_connection(source)

    source.refresh_from_db()
    assert source.status == SourceConnection.Status.RECONNECT and "Vuelva a conectar" in source.status_message
    assert len(shopify.calls) == 0 and source.refresh_lease_until is None


def test_a_refresh_token_shopify_refuses_asks_the_merchant_to_reconnect(account, shopify):
    source = expiring_source(account, expires_in=timedelta(seconds=-5))
    shopify.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "The refresh token is invalid or expired"})

    with pytest.raises(SourceRejectedError, match="HTTP 400"):
        ShopifyClient.for_connection(source)

    source.refresh_from_db()
    assert source.status == SourceConnection.Status.RECONNECT
    assert "invalid or expired" in source.status_message and "Vuelva a conectar" in source.status_message
    assert source.credentials["refresh_token"] == "shprt_old"


def test_a_token_refused_before_its_time_is_refreshed_once_and_the_call_sent_again(account, shopify):
    source = expiring_source(account, expires_in=timedelta(minutes=30))
    shopify.post(GRAPHQL_URL, status=401, json={"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
    shopify.post(TOKEN_URL, json=TOKEN_ANSWER)
    shopify.post(GRAPHQL_URL, json={"data": {"shop": {"name": "Tienda Chile", "myshopifyDomain": SHOP}}})

    assert ShopifyClient.for_connection(source).shop_info()["name"] == "Tienda Chile"

    assert [c.request.url for c in shopify.calls] == [GRAPHQL_URL, TOKEN_URL, GRAPHQL_URL]
    assert [c.request.headers.get("X-Shopify-Access-Token") for c in shopify.calls] == ["shpua_old", None, "shpua_new_access"]
