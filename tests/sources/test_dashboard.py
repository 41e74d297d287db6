"""The dashboard's pages of store connections ("Facturación > Orígenes de datos") and a gateway's "Origen de
datos" tab: created, edited with secrets never shown back (re-entered to change), tested in words, deleted
unless a gateway uses it; other accounts' connections are 404 and viewers cannot change anything. And the
WooCommerce connect flow going back to where it started (the wizard's step 2)."""
import pytest
import responses
from django.test import Client

from accounts.models import AuditLog, Role
from gateways.models import Gateway
from sources.models import ConnectAttempt, SourceConnection
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.gateways.factories import GatewayFactory
from tests.sources.factories import SourceConnectionFactory
from tests.sources.test_woocommerce_connect import ORDER, PUBLIC, RETURN, START, come_back, post_keys, store_answers_with_the_keys

pytestmark = pytest.mark.django_db

WOO = {"platform": "woocommerce", "store_url": "https://tiendavalpo.cl", "credentials": {
    "consumer_key": "ck_" + "1" * 40, "consumer_secret": "cs_" + "2" * 40, "webhook_secret": "whsec-guardado-123"}}


def html(response) -> str:
    return response.content.decode()


def viewer_client(account) -> Client:
    client = Client()
    client.force_login(MembershipFactory(account=account, user=UserFactory(), role=Role.VIEWER).user)
    return client


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


def test_the_list_shows_each_connection_its_status_and_the_gateways_using_it(session_client, account, other_account):
    gateway = GatewayFactory(account=account, name="Pasarela principal", source__name="Tienda Demo Chile")
    SourceConnectionFactory(account=account, name="Tienda caída", status=SourceConnection.Status.RECONNECT)
    SourceConnectionFactory(account=other_account, name="Tienda ajena")
    page = html(session_client.get("/sources/"))
    assert "Tienda Demo Chile" in page and "Pasarela principal" in page and f"/gateways/{gateway.pk}/" in page
    assert "Hay que reconectarla" in page and "Tienda ajena" not in page


def test_a_connection_is_created_from_its_page(session_client, account):
    assert "Tienda Demo" in html(session_client.get("/sources/new/"))
    response = session_client.post("/sources/new/", {"platform": "demo", "name": "Demo para pruebas"})
    source = SourceConnection.objects.get(account=account)
    assert response["Location"] == f"/sources/{source.pk}/"
    assert AuditLog.objects.filter(account=account, action="sourceconnection.create").exists()


def test_secrets_are_never_shown_back_and_an_empty_secret_keeps_the_stored_one(session_client, account, store):
    source = SourceConnectionFactory(account=account, name="Tienda Valpo", **WOO)
    page = html(session_client.get(f"/sources/{source.pk}/"))
    for secret in WOO["credentials"].values():
        assert secret not in page
    assert "guardado" in page and 'name="credentials__consumer_key"' in page

    response = session_client.post(f"/sources/{source.pk}/", {"name": "Tienda Valparaíso", "store_url": source.store_url,
                                                                "config__rest_prefix": "wp-json"})
    assert response["Location"] == f"/sources/{source.pk}/"
    source.refresh_from_db()
    assert source.name == "Tienda Valparaíso" and source.credentials == WOO["credentials"]

    store.get("https://tiendavalpo.cl/wp-json/wc/v3/orders", json=[ORDER], headers={"X-WP-TotalPages": "1", "X-WP-Total": "1"})
    session_client.post(f"/sources/{source.pk}/", {"name": "Tienda Valparaíso", "store_url": source.store_url,
                                                   "credentials__consumer_key": "ck_" + "9" * 40, "config__rest_prefix": "wp-json"})
    source.refresh_from_db()
    assert source.credentials["consumer_key"] == "ck_" + "9" * 40
    assert source.credentials["consumer_secret"] == WOO["credentials"]["consumer_secret"]


def test_a_new_store_address_is_tried_with_the_stored_keys(session_client, account, store):
    source = SourceConnectionFactory(account=account, **WOO)
    store.get("https://otra-tienda.cl/wp-json/wc/v3/orders", status=404, json={"code": "rest_no_route", "message": "No route"})
    response = session_client.post(f"/sources/{source.pk}/", {"name": source.name, "store_url": "https://otra-tienda.cl",
                                                               "config__rest_prefix": "wp-json"})
    assert response.status_code == 200 and "La tienda no aceptó la consulta en esta dirección" in html(response)
    source.refresh_from_db()
    assert source.store_url == "https://tiendavalpo.cl"


def test_an_address_that_is_not_typed_is_not_asked_nor_erased(session_client, account):
    source = SourceConnectionFactory(account=account, platform="multivende", name="MV", store_url="https://app.multivende.com",
                                     credentials={})
    page = html(session_client.get(f"/sources/{source.pk}/"))
    assert 'name="store_url"' not in page and "Conectar BillMySales con Multivende" in page
    session_client.post(f"/sources/{source.pk}/", {"name": "Multivende Tienda Chile"})
    source.refresh_from_db()
    assert (source.name, source.store_url) == ("Multivende Tienda Chile", "https://app.multivende.com")


def test_probar_conexion_answers_in_words(session_client, account):
    source = SourceConnectionFactory(account=account)
    fragment = html(session_client.post(f"/sources/{source.pk}/test/", HTTP_HX_REQUEST="true"))
    assert "Este origen no tiene una prueba de conexión." in fragment and "<html" not in fragment
    page = html(session_client.post(f"/sources/{source.pk}/test/"))
    assert "<html" in page and "Este origen no tiene una prueba de conexión." in page


def test_a_connection_in_use_is_not_deleted_and_the_reason_is_shown(session_client, account):
    gateway = GatewayFactory(account=account, name="Pasarela principal")
    response = session_client.post(f"/sources/{gateway.source.pk}/delete/", follow=True)
    assert "El origen de datos se usa en: Pasarela principal" in html(response)
    assert SourceConnection.objects.filter(pk=gateway.source.pk).exists()

    unused = SourceConnectionFactory(account=account)
    assert session_client.post(f"/sources/{unused.pk}/delete/")["Location"] == "/sources/"
    assert not SourceConnection.objects.filter(pk=unused.pk).exists()


@pytest.mark.parametrize("path", ["", "test/", "delete/"])
def test_another_accounts_connection_is_404(session_client, other_account, path):
    foreign = SourceConnectionFactory(account=other_account)
    assert session_client.get(f"/sources/{foreign.pk}/").status_code == 404
    assert session_client.post(f"/sources/{foreign.pk}/{path}", {"name": "x"}).status_code == 404
    assert SourceConnection.objects.filter(pk=foreign.pk, name=foreign.name).exists()


def test_a_viewer_reads_but_cannot_change(account):
    source = SourceConnectionFactory(account=account, name="Tienda Demo")
    viewer = viewer_client(account)
    page = html(viewer.get(f"/sources/{source.pk}/"))
    assert "Tienda Demo" in page and 'id="source-save"' not in page and "Nuevo origen de datos" not in html(viewer.get("/sources/"))
    for path, data in ((f"/sources/{source.pk}/", {"name": "Cambiada"}), (f"/sources/{source.pk}/test/", {}),
                       (f"/sources/{source.pk}/delete/", {}), ("/sources/new/", {"platform": "demo", "name": "Otra"})):
        assert viewer.post(path, data).status_code == 403, path
    source.refresh_from_db()
    assert source.name == "Tienda Demo" and SourceConnection.objects.count() == 1


# --- the gateway's "Origen de datos" tab -------------------------------------------------------------


def test_the_gateway_tab_shows_the_connection_and_saves_with_guardar_cambios(session_client, account):
    gateway = GatewayFactory(account=account, source__name="Tienda Demo")
    page = html(session_client.get(f"/gateways/{gateway.pk}/source/"))
    assert 'aria-current="page" id="tab-source">Origen de datos<' in page and "Guardar cambios" in page
    response = session_client.post(f"/gateways/{gateway.pk}/source/", {"action": "save", "name": "Tienda Demo Chile"})
    assert response["Location"] == f"/gateways/{gateway.pk}/source/"
    gateway.source.refresh_from_db()
    assert gateway.source.name == "Tienda Demo Chile"


def test_a_multivende_connection_shows_its_authorization_and_the_connect_button(session_client, account):
    gateway = GatewayFactory(account=account, source__platform="multivende", source__name="Multivende Tienda Chile",
                             source__credentials={}, source__config={"authorization": {
                                 "merchant_id": "m-1", "merchant_name": "Comercializadora Andina SpA", "scopes": ["read:checkouts"],
                                 "authorized_at": "2026-11-20T10:00:00+00:00"}})
    page = html(session_client.get(f"/gateways/{gateway.pk}/source/"))
    assert "Comercializadora Andina SpA" in page and "read:checkouts" in page
    assert "Conectar BillMySales con Multivende" in page and f'value="/gateways/{gateway.pk}/source/"' in page


def test_the_gateway_switches_only_to_a_connection_of_the_account_no_other_gateway_reads(session_client, account, other_account):
    gateway = GatewayFactory(account=account, test_passed_at="2026-11-20T10:00:00Z")
    other = SourceConnectionFactory(account=account, name="Segunda tienda")
    foreign = SourceConnectionFactory(account=other_account)
    feeding_another = GatewayFactory(account=account, source__name="Tienda de otra pasarela").source
    page = html(session_client.get(f"/gateways/{gateway.pk}/source/"))
    assert "Segunda tienda" in page and "Tienda de otra pasarela" not in page
    for refused in (foreign, feeding_another):  # another account's; one whose orders another gateway already bills
        response = session_client.post(f"/gateways/{gateway.pk}/source/", {"action": "switch", "connection": refused.pk})
        assert response.status_code == 200 and 'id="id_connection_error"' in html(response)
        assert Gateway.objects.get(pk=gateway.pk).source_id != refused.pk
    session_client.post(f"/gateways/{gateway.pk}/source/", {"action": "switch", "connection": other.pk})
    gateway.refresh_from_db()
    assert gateway.source == other and gateway.test_passed_at is None  # a new store needs a new test


# --- WooCommerce's connect flow going back to the wizard --------------------------------------------


def test_woocommerce_connect_goes_back_to_next_with_the_result(session_client, account, store):
    response = session_client.post(START, {"store_url": "tiendavalpo.cl", "name": "Tienda Valpo",
                                           "next": "/setup/source/?connect=woocommerce"})
    assert response.status_code == 302 and response["Location"].startswith("https://tiendavalpo.cl/wc-auth/v1/authorize")
    attempt = ConnectAttempt.objects.get(account=account)
    store_answers_with_the_keys(store)
    assert post_keys(Client(enforce_csrf_checks=True), attempt.state).status_code == 200

    back = come_back(session_client, attempt)

    assert back.status_code == 302 and back["Location"] == "/setup/source/?connect=woocommerce"
    wizard = session_client.get(back["Location"], follow=True)
    assert "Tienda «Tienda Valpo» conectada" in html(wizard) and 'id="source-name">Tienda Valpo<' in html(wizard)


def test_woocommerce_connect_never_goes_back_to_another_site(session_client, account, store, settings):
    settings.BMS_PUBLIC_URL = PUBLIC
    session_client.post(START, {"store_url": "tiendavalpo.cl", "name": "Tienda Valpo", "next": "https://evil.example/"})
    attempt = ConnectAttempt.objects.get(account=account)
    store_answers_with_the_keys(store)
    post_keys(Client(enforce_csrf_checks=True), attempt.state)
    back = session_client.get(RETURN, {"success": "1", "user_id": attempt.state})
    assert back.status_code == 200 and "evil.example" not in html(back)
