"""The setup wizard through Django's test client: every step saved and resumed at the first unfinished one,
each failure on the field it concerns (invalid RUT, unreachable store, refused token), the test sale both
ways (a simulated order through the real pipeline, a real test purchase watched live), activation refused
before a passing test and allowed with an owner's reason; other accounts' objects are 404 and viewers
cannot change anything."""
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import responses
from django.test import Client
from django.utils import timezone

from accounts.models import AuditLog, Role
from billers.models import BillerConnection
from gateways.models import Gateway, Order
from rules.services import ruleset_update
from simulators.shopify import INVALID_TOKEN
from sources.models import SourceConnection
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.billers.factories import BillerConnectionFactory
from tests.gateways.factories import DocumentFactory, GatewayFactory, OrderFactory
from tests.sources.factories import SourceConnectionFactory

pytestmark = pytest.mark.django_db

SANDBOX_BILLER = {
    "provider": "sandbox", "name": "Sandbox de pruebas", "environment": "certification", "emisor_rut": "76.086.428-5",
    "emisor_razon_social": "Comercial Los Andes SpA", "emisor_giro": "Venta al por menor por internet",
    "emisor_acteco": "479100", "emisor_address": "Av. Providencia 1234", "emisor_comuna": "Providencia",
}


def html(response) -> str:
    return response.content.decode()


def field_error(response, field: str) -> str:
    """The text of a field's error element (``id_<field>_error``), '' when it has none."""
    page = html(response)
    marker = f'id="id_{field}_error">'
    if marker not in page:
        return ""
    return page.split(marker, 1)[1].split("</div>", 1)[0].replace("&#x27;", "'").replace("&quot;", '"')


def client_for(account, role) -> Client:
    member = MembershipFactory(account=account, user=UserFactory(), role=role)
    client = Client()
    client.force_login(member.user)
    return client


@pytest.fixture
def shopify_app(settings):
    settings.BMS_SHOPIFY_CLIENT_ID = "bms-client-id"
    settings.BMS_SHOPIFY_CLIENT_SECRET = "bms-client-secret"
    settings.BMS_SHOPIFY_SHOP_URL_TEMPLATE = "https://{shop}"


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


def in_setup(account, **kwargs) -> Gateway:
    """A gateway the wizard just created: inactive, default rules, never tested."""
    return GatewayFactory(account=account, active=False, **kwargs)


# --- step 1: the account -----------------------------------------------------------------------------


def test_a_new_account_starts_at_the_account_step(session_client, account):
    account.rut = ""
    account.save()
    assert session_client.get("/setup/")["Location"] == "/setup/account/"


def test_an_invalid_company_rut_is_refused_on_its_field(session_client, account):
    account.rut = ""
    account.save()
    response = session_client.post("/setup/account/", {"name": "Comercial Los Andes SpA", "rut": "76.192.083-0"})
    assert response.status_code == 200
    assert "no es un RUT válido" in field_error(response, "rut")
    account.refresh_from_db()
    assert account.rut == ""


def test_the_account_is_saved_with_its_canonical_rut_and_the_setup_continues(session_client, account):
    account.rut = ""
    account.save()
    response = session_client.post("/setup/account/", {"name": "Comercial Los Andes SpA", "rut": "76.192.083-9"})
    assert response.status_code == 302 and response["Location"] == "/setup/source/"
    account.refresh_from_db()
    assert (account.name, account.rut) == ("Comercial Los Andes SpA", "76192083-9")
    assert AuditLog.objects.filter(account=account, action="account.update").exists()


# --- step 2: the data source -------------------------------------------------------------------------


def test_the_source_step_offers_the_types_of_the_registry_and_each_ones_connect_button(session_client, account, shopify_app):
    page = html(session_client.get("/setup/source/"))
    for label in ("Shopify", "WooCommerce", "Multivende", "Tienda Demo"):
        assert label in page
    shopify = html(session_client.get("/setup/source/", {"platform": "shopify"}))
    assert 'action="/connect/shopify/start/"' in shopify and 'value="/setup/source/?connect=shopify"' in shopify
    assert 'name="credentials__access_token"' in shopify and 'type="password"' in shopify
    multivende = html(session_client.get("/setup/source/", {"platform": "multivende"}))
    assert "Conectar BillMySales con Multivende" in multivende and 'action="/connect/multivende/"' in multivende


def test_a_demo_store_is_saved_and_shown_with_its_connection_test(session_client, account):
    response = session_client.post("/setup/source/", {"action": "create", "platform": "demo", "name": "Tienda Demo Chile"})
    assert response.status_code == 302 and response["Location"] == "/setup/source/"
    source = SourceConnection.objects.get(account=account)
    assert (source.name, source.platform) == ("Tienda Demo Chile", "demo") and source.credentials["webhook_secret"]
    page = html(session_client.get("/setup/source/"))
    assert "Tienda Demo Chile" in page and f"/sources/{source.pk}/test/" in page and "Continuar: facturador" in page
    assert source.credentials["webhook_secret"] not in page
    assert session_client.get("/setup/")["Location"] == "/setup/biller/"


def test_an_unreachable_store_is_said_on_the_store_url_and_nothing_is_saved(session_client, account, store):
    store.get("https://tiendavalpo.cl/wp-json/wc/v3/orders", body=requests.ConnectionError("connection refused"))
    response = session_client.post("/setup/source/", {
        "action": "create", "platform": "woocommerce", "name": "Tienda Valpo", "store_url": "https://tiendavalpo.cl",
        "credentials__consumer_key": "ck_" + "a" * 40, "credentials__consumer_secret": "cs_" + "b" * 40,
    })
    assert response.status_code == 200
    assert "No se pudo conectar con la tienda en esta dirección" in field_error(response, "store_url")
    assert not SourceConnection.objects.exists()
    # The typed secrets are not sent back to the browser.
    assert "ck_" + "a" * 40 not in html(response)


def test_a_refused_token_is_said_on_the_token_field(session_client, account, store, shopify_app):
    store.post("https://tienda-chile.myshopify.com/admin/api/2026-10/graphql.json", status=401, json=INVALID_TOKEN)
    response = session_client.post("/setup/source/", {
        "action": "create", "platform": "shopify", "name": "Tienda Shopify Chile",
        "store_url": "https://tienda-chile.myshopify.com", "credentials__access_token": "shpat_wrong",
    })
    assert response.status_code == 200
    error = field_error(response, "credentials__access_token")
    assert "La tienda rechazó estas credenciales" in error and "Invalid API key or access token" in error
    assert not SourceConnection.objects.exists()


def test_the_keys_that_work_are_saved_encrypted(session_client, account, store):
    store.get("https://tiendavalpo.cl/wp-json/wc/v3/orders", json=[], headers={"X-WP-TotalPages": "0", "X-WP-Total": "0"})
    response = session_client.post("/setup/source/", {
        "action": "create", "platform": "woocommerce", "name": "Tienda Valpo", "store_url": "https://tiendavalpo.cl",
        "credentials__consumer_key": "ck_" + "a" * 40, "credentials__consumer_secret": "cs_" + "b" * 40,
    })
    assert response.status_code == 302, field_error(response, "store_url")
    source = SourceConnection.objects.get(account=account)
    assert source.credentials["consumer_key"] == "ck_" + "a" * 40 and source.credentials["webhook_secret"]


def test_back_from_a_connect_flow_the_new_connection_is_the_setup_source(session_client, account):
    older = SourceConnectionFactory(account=account, name="Otra tienda")
    session_client.post("/setup/source/", {"action": "choose", "connection": older.pk})
    connected = SourceConnectionFactory(account=account, platform="shopify", name="Tienda Shopify Chile",
                                        store_url="https://tienda-chile.myshopify.com", credentials={"access_token": "shpua_x"})

    response = session_client.get("/setup/source/", {"connect": "shopify"})

    assert response["Location"] == "/setup/source/"
    assert 'id="source-name">Tienda Shopify Chile<' in html(session_client.get("/setup/source/"))
    session_client.post("/setup/biller/", {"action": "choose", "connection": BillerConnectionFactory(account=account).pk})
    assert Gateway.objects.get(account=account).source == connected


def test_a_source_of_another_account_cannot_be_chosen(session_client, account, other_account):
    foreign = SourceConnectionFactory(account=other_account)
    response = session_client.post("/setup/source/", {"action": "choose", "connection": foreign.pk})
    assert response.status_code == 200 and field_error(response, "connection")
    assert session_client.get("/setup/")["Location"] == "/setup/source/"


# --- step 3: the biller ------------------------------------------------------------------------------


def test_the_biller_step_asks_the_emisor_up_front_and_refuses_an_invalid_rut(session_client, account):
    SourceConnectionFactory(account=account, name="Tienda Demo Chile")
    page = html(session_client.get("/setup/biller/", {"provider": "libredte"}))
    for label in ("RUT del emisor", "Razón social", "Giro", "Actividad económica", "Dirección", "Comuna", "Ambiente",
                  "Hash de usuario de LibreDTE"):
        assert label in page
    response = session_client.post("/setup/biller/", {**SANDBOX_BILLER, "action": "create", "emisor_rut": "76.086.428-4"})
    assert response.status_code == 200
    assert "no es un RUT válido" in field_error(response, "emisor_rut")
    assert not BillerConnection.objects.exists() and not Gateway.objects.exists()


def test_the_biller_is_saved_and_the_gateway_created_joining_the_source(session_client, account):
    source = SourceConnectionFactory(account=account, name="Tienda Demo Chile")
    response = session_client.post("/setup/biller/", {**SANDBOX_BILLER, "action": "create"})
    gateway = Gateway.objects.get(account=account)
    assert response.status_code == 302 and response["Location"] == f"/gateways/{gateway.pk}/setup/biller/"
    assert (gateway.name, gateway.source, gateway.biller.name) == ("Tienda Demo Chile", source, "Sandbox de pruebas")
    assert (gateway.environment, gateway.active, gateway.biller.emisor_rut) == ("certification", False, "76086428-5")
    page = html(session_client.get(response["Location"]))
    assert f"/billers/{gateway.biller.pk}/test/" in page and "Continuar: reglas" in page


def test_a_demo_store_cannot_be_joined_to_a_production_biller_and_nothing_is_kept(session_client, account):
    SourceConnectionFactory(account=account)
    response = session_client.post("/setup/biller/", {**SANDBOX_BILLER, "action": "create", "environment": "production"})
    assert response.status_code == 200
    assert "solo se puede conectar a un facturador en certificación" in field_error(response, "environment")
    assert not BillerConnection.objects.exists() and not Gateway.objects.exists()


def test_a_biller_the_account_has_can_be_shared(session_client, account):
    source = SourceConnectionFactory(account=account)
    shared = GatewayFactory(account=account).biller
    response = session_client.post("/setup/biller/", {"action": "choose", "connection": shared.pk})
    gateway = Gateway.objects.get(source=source)
    assert response.status_code == 302 and gateway.biller == shared


def test_the_biller_step_needs_a_source_first(session_client, account):
    assert session_client.get("/setup/biller/")["Location"] == "/setup/source/"


# --- resuming ----------------------------------------------------------------------------------------


def test_the_setup_resumes_at_the_first_unfinished_step(session_client, account, actor):
    source = SourceConnectionFactory(account=account)
    assert session_client.get("/setup/")["Location"] == "/setup/biller/"
    gateway = in_setup(account, source=source)
    resume = f"/gateways/{gateway.pk}/setup/"
    assert session_client.get(resume)["Location"] == f"/gateways/{gateway.pk}/setup/rules/"

    ruleset_update(ruleset=gateway.ruleset, actor=actor, mode="auto")
    assert session_client.get(resume)["Location"] == f"/gateways/{gateway.pk}/setup/test/"

    Gateway.objects.filter(pk=gateway.pk).update(test_passed_at=timezone.now())
    assert session_client.get(resume)["Location"] == f"/gateways/{gateway.pk}/setup/activate/"

    Gateway.objects.filter(pk=gateway.pk).update(active=True)
    assert session_client.get(resume)["Location"] == f"/gateways/{gateway.pk}/"


def test_the_gateway_list_says_which_step_a_gateway_in_setup_is_at(session_client, account):
    gateway = in_setup(account, name="Tienda en configuración")
    page = html(session_client.get("/gateways/"))
    assert "En configuración: paso 4, Reglas" in page and f"/gateways/{gateway.pk}/setup/" in page
    assert "Nueva pasarela" in page


# --- step 4: the rules -------------------------------------------------------------------------------


def test_the_rules_step_shows_the_preview_and_saving_goes_to_the_test(session_client, account):
    gateway = in_setup(account)
    page = html(session_client.get(f"/gateways/{gateway.pk}/setup/rules/"))
    assert "Este pedido recibiría boleta electrónica (39)" in page and f"/gateways/{gateway.pk}/rules/preview/" in page
    response = session_client.post(f"/gateways/{gateway.pk}/setup/rules/", {
        "default_document_type": 39, "price_basis": "gross", "mode": "auto", "min_amount": 0, "paid_only": "on",
        "shipping_as_line": "on", "factura_on_request": "on",
    })
    assert response["Location"] == f"/gateways/{gateway.pk}/setup/test/"
    gateway.ruleset.refresh_from_db()
    assert gateway.ruleset.updated_at > gateway.created_at


def test_invalid_rules_are_shown_on_their_field(session_client, account):
    gateway = in_setup(account)
    response = session_client.post(f"/gateways/{gateway.pk}/setup/rules/", {
        "default_document_type": 39, "price_basis": "gross", "mode": "auto", "min_amount": 0, "field_mapping": '{"rut": "a[?"}',
    })
    assert response.status_code == 200 and "JMESPath" in field_error(response, "field_mapping")


# --- step 5: the test --------------------------------------------------------------------------------


def test_the_simulated_test_sale_shows_each_step_in_order(session_client, account):
    gateway = in_setup(account)
    response = session_client.post(f"/gateways/{gateway.pk}/setup/test/", {"action": "simulate"}, HTTP_HX_REQUEST="true")
    page = html(response)
    steps = ["Facturador en certificación", "Orden de prueba recibida", "Reglas", "Emisión", "Cuadre"]
    positions = [page.index(f"<strong>{step}</strong>") for step in steps]
    assert positions == sorted(positions)
    assert "Venta de prueba correcta." in page and "Continuar: activar" in page and "Ver el PDF del documento" in page
    gateway.refresh_from_db()
    assert gateway.test_passed_at is not None


def test_without_htmx_the_simulated_sale_reports_on_the_step_page(session_client, account):
    gateway = in_setup(account)
    response = session_client.post(f"/gateways/{gateway.pk}/setup/test/", {"action": "simulate"})
    assert response["Location"] == f"/gateways/{gateway.pk}/setup/test/"
    assert "Venta de prueba correcta." in html(session_client.get(response["Location"]))


def test_the_live_panel_waits_for_the_purchase_then_shows_its_document_and_pdf(session_client, account):
    gateway = in_setup(account)
    since = int(timezone.now().timestamp()) - 1
    live = f"/gateways/{gateway.pk}/setup/test/live/?since={since}"
    earlier = OrderFactory(account=account, gateway=gateway, number="#900")
    Order.objects.filter(pk=earlier.pk).update(received_at=timezone.now() - timedelta(minutes=5))  # before the page opened

    waiting = session_client.get(live)
    assert waiting.status_code == 200 and "Esperando una compra" in html(waiting)

    order = OrderFactory(account=account, gateway=gateway, number="#1001", status="ready", paid_total=Decimal(12990), is_test=True)
    issuing = session_client.get(live)
    assert issuing.status_code == 200 and "Pedido N° #1001" in html(issuing) and "Emitiendo" in html(issuing)

    document = DocumentFactory(account=account, emission__order=order, folio=4321, mnt_total=12990)
    order.status = "issued"
    order.save()
    done = session_client.get(live)
    page = html(done)
    assert done.status_code == 286  # htmx stops polling
    assert "Boleta electrónica N° 4321 por $12.990" in page and f"/documents/{document.pk}/pdf/" in page
    assert "Dar la prueba por correcta" in page


def test_a_real_test_purchase_issued_in_certification_is_taken_as_the_passing_test(session_client, account):
    gateway = in_setup(account)
    order = OrderFactory(account=account, gateway=gateway, paid_total=Decimal(12990), is_test=True)
    DocumentFactory(account=account, emission__order=order, mnt_total=12990, certification=True)
    response = session_client.post(f"/gateways/{gateway.pk}/setup/test/", {"action": "confirm", "order": order.pk})
    assert response["Location"] == f"/gateways/{gateway.pk}/setup/activate/"
    gateway.refresh_from_db()
    assert gateway.test_passed_at is not None
    assert AuditLog.objects.filter(action="gateway.test_sale", object_id=str(gateway.pk), data__store_order=True).exists()


def test_a_purchase_without_a_document_is_not_a_passing_test(session_client, account):
    gateway = in_setup(account)
    order = OrderFactory(account=account, gateway=gateway, status="waiting")
    response = session_client.post(f"/gateways/{gateway.pk}/setup/test/", {"action": "confirm", "order": order.pk}, follow=True)
    assert "todavía no tiene documento emitido" in html(response)
    gateway.refresh_from_db()
    assert gateway.test_passed_at is None


# --- step 6: activation ------------------------------------------------------------------------------


def test_activation_is_refused_before_a_passing_test(session_client, account):
    gateway = in_setup(account)
    response = session_client.post(f"/gateways/{gateway.pk}/setup/activate/", {"reason": ""})
    assert response.status_code == 200 and "Antes de activar, haga una venta de prueba" in html(response)
    gateway.refresh_from_db()
    assert gateway.active is False


def test_an_owner_activates_without_a_test_by_giving_the_reason_which_is_audited(session_client, account):
    gateway = in_setup(account)
    response = session_client.post(f"/gateways/{gateway.pk}/setup/activate/", {"reason": "La tienda ya factura así en otro sistema"})
    assert response["Location"] == f"/gateways/{gateway.pk}/"
    gateway.refresh_from_db()
    assert gateway.active is True
    log = AuditLog.objects.get(action="gateway.activate", object_id=str(gateway.pk))
    assert log.data == {"reason": "La tienda ya factura así en otro sistema", "tested": False}


def test_a_support_agent_cannot_activate_without_a_test_even_with_a_reason(account):
    gateway = in_setup(account)
    client = client_for(account, Role.SUPPORT)
    page = html(client.get(f"/gateways/{gateway.pk}/setup/activate/"))
    assert "Motivo para activar sin venta de prueba" not in page
    response = client.post(f"/gateways/{gateway.pk}/setup/activate/", {"reason": "apuro"})
    assert "Antes de activar" in html(response)
    gateway.refresh_from_db()
    assert gateway.active is False


def test_after_a_passing_test_anyone_who_may_write_activates(account):
    gateway = in_setup(account, test_passed_at=timezone.now())
    response = client_for(account, Role.SUPPORT).post(f"/gateways/{gateway.pk}/setup/activate/", {})
    assert response["Location"] == f"/gateways/{gateway.pk}/"
    gateway.refresh_from_db()
    assert gateway.active and gateway.ruleset.start_at is not None


# --- tenancy and roles -------------------------------------------------------------------------------


GATEWAY_STEPS = ("setup/", "setup/source/", "setup/biller/", "setup/rules/", "setup/test/", "setup/test/live/", "setup/activate/")


@pytest.mark.parametrize("path", GATEWAY_STEPS)
def test_another_accounts_gateway_setup_is_404(session_client, account, other_account, path):
    gateway = in_setup(other_account)
    assert session_client.get(f"/gateways/{gateway.pk}/{path}").status_code == 404
    assert session_client.post(f"/gateways/{gateway.pk}/{path}", {"action": "simulate"}).status_code in (404, 405)
    assert session_client.get("/setup/account/", {"gateway": gateway.pk}).status_code == 404


def test_a_viewer_sees_the_steps_but_cannot_post(account):
    viewer = client_for(account, Role.VIEWER)
    source = SourceConnectionFactory(account=account)
    gateway = in_setup(account)
    assert viewer.get(f"/gateways/{gateway.pk}/setup/test/").status_code == 200
    assert 'id="setup-simulate"' not in html(viewer.get(f"/gateways/{gateway.pk}/setup/test/"))
    posts = [
        ("/setup/account/", {"name": "X", "rut": "76192083-9"}),
        ("/setup/source/", {"action": "create", "platform": "demo", "name": "Otra"}),
        ("/setup/biller/", {**SANDBOX_BILLER, "action": "create"}),
        (f"/gateways/{gateway.pk}/setup/rules/", {"default_document_type": 33, "price_basis": "gross", "mode": "manual",
                                                   "min_amount": 0}),
        (f"/gateways/{gateway.pk}/setup/test/", {"action": "simulate"}),
        (f"/gateways/{gateway.pk}/setup/activate/", {"reason": "porque sí"}),
    ]
    for path, data in posts:
        refused = viewer.post(path, data)
        assert refused.status_code == 403, path
        assert "Su rol en esta cuenta no permite esta acción" in refused.content.decode(), path
    gateway.refresh_from_db()
    account.refresh_from_db()
    assert (gateway.active, gateway.test_passed_at, gateway.ruleset.mode, account.rut) == (False, None, "auto", "76086428-5")
    assert set(SourceConnection.objects.filter(account=account)) == {source, gateway.source}
    assert BillerConnection.objects.filter(account=account).count() == 1
