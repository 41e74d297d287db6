"""Connecting a WooCommerce store without pasting keys (wc-auth): the start page, WooCommerce's unsigned key
callback matched by the one-time user_id, the keys verified with one REST call before they are trusted and
stored encrypted, and the session-bound return page — for success, denial, unknown or replayed callbacks and
keys that do not work."""
import base64
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.db import connection as db
from django.test import Client
from django.utils import timezone
from responses import matchers

from accounts.models import Role
from sources.models import ConnectAttempt, SourceConnection
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.sources.factories import SourceConnectionFactory

PUBLIC = "https://app.billmysales.cl"
STORE = "https://tiendavalpo.cl"
ORDERS = f"{STORE}/wp-json/wc/v3/orders"
START, CALLBACK, RETURN = "/connect/woocommerce/", "/connect/woocommerce/callback/", "/connect/woocommerce/return/"
FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "woocommerce" / "fixtures"
# The docs' "Example of JSON posted with the API Keys" (user_id an int there; WooCommerce echoes what we sent).
DOCS_KEYS = (FIXTURES / "wc_auth_keys_callback.json").read_bytes()
KEYS = json.loads(DOCS_KEYS)
KEY, SECRET = KEYS["consumer_key"], KEYS["consumer_secret"]
ORDER = {"id": 20934, "number": "20934", "status": "processing", "date_modified_gmt": "2026-11-20T14:03:40"}


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.BMS_PUBLIC_URL = PUBLIC


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def woo():
    """WooCommerce's server: no session, no CSRF token (checks enforced, as in production)."""
    return Client(enforce_csrf_checks=True)


def start(session_client, **form) -> tuple[ConnectAttempt, dict]:
    response = session_client.post(START, {"store_url": "tiendavalpo.cl", "name": "Tienda Valpo", **form})
    assert response.status_code == 302, response.content.decode()
    location = urlsplit(response["Location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    return ConnectAttempt.objects.get(state=query["user_id"]), {"location": location, "query": query}


def keys_body(user_id: str, *, key=KEY, secret=SECRET, permissions="read_write") -> bytes:
    """What ``WC_Auth::post_consumer_data`` sends: the docs' example, ``user_id`` echoed as we sent it."""
    return json.dumps({**KEYS, "user_id": user_id, "consumer_key": key, "consumer_secret": secret,
                       "key_permissions": permissions}).encode()


def post_keys(woo, user_id: str, **kwargs):
    return woo.post(CALLBACK, keys_body(user_id, **kwargs), content_type="application/json;charset=UTF-8")


def store_answers_with_the_keys(store, *, status=200, json_body=None, query_string=False, error=None):
    query = {"per_page": "1"} | ({"consumer_key": KEY, "consumer_secret": SECRET} if query_string else {})
    answer = {"body": error} if error is not None else {"status": status, "json": [ORDER] if json_body is None else json_body}
    store.get(ORDERS, match=[matchers.query_param_matcher(query)], **answer)


def come_back(session_client, attempt, success="1"):
    return session_client.get(RETURN, {"success": success, "user_id": attempt.state})


# --- start ---------------------------------------------------------------------------------------


def test_start_sends_the_browser_to_the_stores_authorize_page(session_client, account, user):
    attempt, sent = start(session_client)

    location = sent["location"]
    assert (location.scheme, location.netloc, location.path) == ("https", "tiendavalpo.cl", "/wc-auth/v1/authorize")
    assert sent["query"] == {"app_name": "BillMySales", "scope": "read_write", "user_id": attempt.state,
                             "return_url": f"{PUBLIC}{RETURN}", "callback_url": f"{PUBLIC}{CALLBACK}"}
    assert len(attempt.state) >= 40 and attempt.used_at is None
    assert attempt.account == account and attempt.created_by == user and attempt.platform == "woocommerce"
    assert attempt.data == {"store_url": "https://tiendavalpo.cl", "name": "Tienda Valpo"}
    assert attempt.session_hash  # bound to this browser session


def test_the_start_page_is_a_form(session_client):
    response = session_client.get(START)
    assert response.status_code == 200 and b'name="store_url"' in response.content


def test_start_needs_a_role_that_may_write(account, client):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)

    response = client.post(START, {"store_url": STORE, "name": "Tienda Valpo"})

    assert response.status_code == 403 and "solo permite ver" in response.content.decode()
    assert not ConnectAttempt.objects.exists()


def test_start_needs_a_signed_in_user(client, db):
    response = client.post(START, {"store_url": STORE, "name": "Tienda Valpo"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("form, message", [
    ({"store_url": "http://tiendavalpo.cl"}, "debe ser https"),
    ({"store_url": "https://tiendavalpo.cl/?p=12"}, "sin parámetros"),
    ({"name": ""}, "Indique un nombre"),
])
def test_a_bad_start_says_why_and_starts_nothing(session_client, form, message):
    response = session_client.post(START, {"store_url": STORE, "name": "Tienda Valpo", **form})
    assert response.status_code == 400 and message in response.content.decode()
    assert not ConnectAttempt.objects.exists()


def test_the_callback_url_must_be_https(session_client, settings):
    # WooCommerce refuses a callback_url that is not https ("The callback_url needs to be over SSL").
    settings.BMS_PUBLIC_URL = "http://billmysales.example.cl"
    response = session_client.post(START, {"store_url": STORE, "name": "Tienda Valpo"})
    assert response.status_code == 400 and "BMS_PUBLIC_URL" in response.content.decode()


# --- the callback and the return page ---------------------------------------------------------------


def test_keys_verified_with_one_call_are_stored_encrypted_and_the_return_page_says_so(session_client, woo, store, account):
    attempt, _ = start(session_client)
    store_answers_with_the_keys(store)

    response = post_keys(woo, attempt.state)

    assert response.status_code == 200 and response.json() == {"received": True, "outcome": "verified"}
    [call] = store.calls
    assert call.request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert call.request.req_kwargs["timeout"] == (3.0, 10.0)
    connection = SourceConnection.objects.get(account=account, platform="woocommerce")
    assert (connection.name, connection.store_url, connection.status) == ("Tienda Valpo", STORE, SourceConnection.Status.ACTIVE)
    assert connection.credentials["consumer_key"] == KEY and connection.credentials["consumer_secret"] == SECRET
    assert connection.credentials["webhook_secret"].isalnum() and len(connection.credentials["webhook_secret"]) >= 32
    assert connection.config == {"query_string_auth": False}
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials::text FROM sources_sourceconnection WHERE id = %s", [connection.pk])
        stored = cursor.fetchone()[0]
    assert KEY not in stored and SECRET not in stored

    page = come_back(session_client, attempt)

    assert page.status_code == 200
    assert "Tienda «Tienda Valpo» conectada: las claves funcionan." in page.content.decode()
    assert 'id="woocommerce-connect-continue"' in page.content.decode()
    # Refreshing the page shows the same result.
    assert "conectada" in come_back(session_client, attempt).content.decode()


def test_a_denial_stores_nothing_and_ends_the_attempt(session_client, woo, store):
    attempt, _ = start(session_client)

    page = come_back(session_client, attempt, success="0")

    assert page.status_code == 200 and "Se rechazó el acceso en WooCommerce; no se guardó nada." in page.content.decode()
    assert not SourceConnection.objects.exists()
    # A callback arriving later with that value is refused (WooCommerce then deletes the key).
    assert post_keys(woo, attempt.state).status_code == 400
    assert not SourceConnection.objects.exists() and len(store.calls) == 0


@pytest.mark.parametrize("user_id", ["an-unknown-value", "", "12"])
def test_a_callback_with_an_unknown_user_id_is_refused_and_stores_nothing(session_client, woo, store, user_id):
    start(session_client)

    response = post_keys(woo, user_id)

    assert response.status_code == 400
    assert not SourceConnection.objects.exists() and len(store.calls) == 0


def test_the_docs_example_as_sent_names_no_attempt_of_ours(session_client, woo, store):
    start(session_client)

    response = woo.post(CALLBACK, DOCS_KEYS, content_type="application/json;charset=UTF-8")

    assert response.status_code == 400 and "state desconocido" in response.json()["error"]
    assert not SourceConnection.objects.exists() and len(store.calls) == 0


def test_a_replayed_callback_is_refused_and_the_keys_stay(session_client, woo, store):
    attempt, _ = start(session_client)
    store_answers_with_the_keys(store)
    assert post_keys(woo, attempt.state).status_code == 200

    replay = post_keys(woo, attempt.state, key="ck_" + "0" * 40, secret="cs_" + "0" * 40)

    assert replay.status_code == 400 and "ya se usó" in replay.json()["error"]
    connection = SourceConnection.objects.get()
    assert connection.credentials["consumer_key"] == KEY and len(store.calls) == 1


def test_an_expired_attempt_is_refused(session_client, woo, store):
    attempt, _ = start(session_client)
    ConnectAttempt.objects.filter(pk=attempt.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert post_keys(woo, attempt.state).status_code == 400
    assert not SourceConnection.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"user_id": "x"}',
                                  b'{"user_id": "x", "consumer_key": "ck_1", "consumer_secret": 5}'])
def test_a_malformed_callback_is_refused(woo, body, db):
    assert woo.post(CALLBACK, body, content_type="application/json").status_code == 400
    assert not SourceConnection.objects.exists()


def test_keys_that_do_not_work_are_not_stored_and_the_return_page_says_why(session_client, woo, store):
    attempt, _ = start(session_client)
    store_answers_with_the_keys(store, status=401, json_body={
        "code": "woocommerce_rest_authentication_error", "message": "Consumer secret is invalid.", "data": {"status": 401}})

    response = post_keys(woo, attempt.state)

    # 200 all the same: the merchant comes back to our page instead of WooCommerce's generic error.
    assert response.status_code == 200 and response.json()["outcome"] == "refused"
    assert not SourceConnection.objects.exists()
    page = come_back(session_client, attempt).content.decode()
    assert "no funcionan" in page and "Consumer secret is invalid." in page and "Revóquelas" in page
    assert KEY not in page and SECRET not in page


def test_keys_without_write_permission_are_refused(session_client, woo, store):
    attempt, _ = start(session_client)

    response = post_keys(woo, attempt.state, permissions="read")

    assert response.json()["outcome"] == "refused" and not SourceConnection.objects.exists() and len(store.calls) == 0
    assert "lectura/escritura" in come_back(session_client, attempt).content.decode()


def test_a_host_that_drops_the_authorization_header_gets_the_keys_in_the_query_string(session_client, woo, store):
    attempt, _ = start(session_client)
    store_answers_with_the_keys(store, status=401, json_body={
        "code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}})
    store_answers_with_the_keys(store, query_string=True)

    assert post_keys(woo, attempt.state).json()["outcome"] == "verified"

    connection = SourceConnection.objects.get()
    assert connection.config == {"query_string_auth": True} and connection.status == SourceConnection.Status.ACTIVE
    assert "elimina la cabecera Authorization" in come_back(session_client, attempt).content.decode()


def test_a_store_that_cannot_answer_in_time_gets_its_keys_checked_again_on_the_return_page(session_client, woo, store):
    attempt, _ = start(session_client)
    # A host with one PHP worker is busy waiting for our 200 and cannot answer the verification.
    store_answers_with_the_keys(store, error=requests.exceptions.ReadTimeout())

    assert post_keys(woo, attempt.state).json()["outcome"] == "unverified"
    connection = SourceConnection.objects.get()
    assert connection.status == SourceConnection.Status.ERROR and "aún sin verificar" in connection.status_message
    assert connection.credentials["consumer_key"] == KEY

    store_answers_with_the_keys(store)
    page = come_back(session_client, attempt).content.decode()

    assert "conectada: las claves funcionan" in page
    connection.refresh_from_db()
    assert connection.status == SourceConnection.Status.ACTIVE and connection.status_message == ""


def test_the_return_page_belongs_to_the_session_that_started(session_client, woo, store, user):
    attempt, _ = start(session_client)
    store_answers_with_the_keys(store)
    post_keys(woo, attempt.state)
    other_browser = Client()
    other_browser.force_login(user)

    page = other_browser.get(RETURN, {"success": "1", "user_id": attempt.state})

    assert page.status_code == 400 and "no corresponde a una conexión iniciada en esta sesión" in page.content.decode()
    assert "Tienda Valpo" not in page.content.decode()


def test_reconnecting_replaces_the_keys_of_the_same_connection(session_client, woo, store, account):
    old = SourceConnectionFactory(
        account=account, platform="woocommerce", name="Tienda Valpo", store_url=STORE, status=SourceConnection.Status.ERROR,
        status_message="La consulta de órdenes falla", credentials={"consumer_key": "ck_old", "consumer_secret": "cs_old",
                                                                    "webhook_secret": "keepme123"})
    response = session_client.post(START, {"connection": old.pk})
    attempt = ConnectAttempt.objects.get(connection=old)
    assert response.status_code == 302 and response["Location"].startswith(f"{STORE}/wc-auth/v1/authorize?")
    store_answers_with_the_keys(store)

    post_keys(woo, attempt.state)

    old.refresh_from_db()
    assert SourceConnection.objects.count() == 1
    assert old.credentials == {"consumer_key": KEY, "consumer_secret": SECRET, "webhook_secret": "keepme123"}
    assert old.status == SourceConnection.Status.ACTIVE and old.status_message == ""
    assert "conectada" in come_back(session_client, attempt).content.decode()


def test_reconnecting_a_connection_of_another_account_is_a_404(session_client, other_account):
    theirs = SourceConnectionFactory(account=other_account, platform="woocommerce", store_url=STORE)
    assert session_client.post(START, {"connection": theirs.pk}).status_code == 404
    assert not ConnectAttempt.objects.exists()


def test_a_callback_that_never_finished_is_not_shown_as_connected(session_client, account):
    old = SourceConnectionFactory(account=account, platform="woocommerce", store_url=STORE)
    session_client.post(START, {"connection": old.pk})
    attempt = ConnectAttempt.objects.get(connection=old)
    # The callback used the attempt and then failed before recording what came of the keys.
    ConnectAttempt.objects.filter(pk=attempt.pk).update(used_at=timezone.now())

    assert "La conexión no se completó" in come_back(session_client, attempt).content.decode()
