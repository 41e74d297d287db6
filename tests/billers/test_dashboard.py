"""The dashboard's pages of biller connections ("Facturación > Facturadores") and a gateway's "Facturador" tab:
the emisor asked up front with its RUT checked, the credentials from the biller's declared spec (secrets never
shown back, re-entered to change), "Probar conexión" with the biller's answer in words (LibreDTE over HTTP
against its simulator), deletes refused with the reason; other accounts' billers are 404 and viewers cannot
change anything."""
import pytest
import responses
from django.test import Client

from accounts.models import Role
from billers.models import BillerConnection
from simulators.libredte import DEFAULT_HASH, LibreDTESimulator
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.billers.factories import BillerConnectionFactory
from tests.billers.test_libredte import API, BASE, EMISOR, HASH, add_company_check, add_folios, fixture
from tests.gateways.factories import DocumentFactory, GatewayFactory
from tests.gateways.resilience_helpers import free_port

pytestmark = pytest.mark.django_db

LIBREDTE = {
    "name": "LibreDTE Empresa Demo", "environment": "certification", "emisor_rut": "76.192.083-9",
    "emisor_razon_social": "Empresa Demo SpA", "emisor_giro": "Venta al por menor por internet", "emisor_acteco": "479100",
    "emisor_address": "Av. Libertador Bernardo O'Higgins 1449", "emisor_comuna": "Santiago",
    "config__email_receptor": "", "config__referencia_en_dte": "on",
}


def html(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


@pytest.fixture(scope="module")
def libredte():
    with LibreDTESimulator(port=free_port()) as simulator:
        yield simulator


def libredte_biller(account, libredte, **kwargs) -> BillerConnection:
    return BillerConnectionFactory(account=account, name="LibreDTE", provider="libredte", emisor_rut="76192083-9",
                                   emisor_razon_social="Empresa Demo SpA", credentials={"api_hash": DEFAULT_HASH},
                                   config={"base_url": libredte.url}, **kwargs)


def test_a_libredte_biller_is_created_with_the_emisor_and_its_hash_kept_secret(session_client, account, libredte):
    page = html(session_client.get("/billers/new/", {"provider": "libredte"}))
    assert 'name="credentials__api_hash"' in page and 'type="password"' in page and "Hash de usuario de LibreDTE" in page
    response = session_client.post("/billers/new/", {**LIBREDTE, "provider": "libredte", "credentials__api_hash": DEFAULT_HASH,
                                                      "config__base_url": libredte.url})
    biller = BillerConnection.objects.get(account=account)
    assert response["Location"] == f"/billers/{biller.pk}/"
    assert (biller.emisor_rut, biller.emisor_acteco, biller.credentials["api_hash"]) == ("76192083-9", 479100, DEFAULT_HASH)
    page = html(session_client.get(response["Location"]))
    assert DEFAULT_HASH not in page and "guardado" in page and "76.192.083-9" in page


def test_an_invalid_emisor_rut_and_a_malformed_hash_are_said_on_their_fields(session_client, account):
    response = session_client.post("/billers/new/", {**LIBREDTE, "provider": "libredte", "emisor_rut": "76.192.083-1",
                                                      "credentials__api_hash": "corto"})
    page = html(response)
    assert response.status_code == 200 and not BillerConnection.objects.exists()
    assert 'id="id_emisor_rut_error">' in page and "no es un RUT válido" in page.split('id="id_emisor_rut_error">')[1][:200]
    assert 'id="id_credentials__api_hash_error">' in page and 'value="corto"' not in page


def test_the_emisor_is_asked_up_front(session_client, account):
    response = session_client.post("/billers/new/", {"provider": "sandbox", "name": "Sandbox", "environment": "certification",
                                                      "emisor_rut": "76086428-5"})
    page = html(response)
    for field in ("emisor_razon_social", "emisor_giro", "emisor_acteco", "emisor_address", "emisor_comuna"):
        assert f'id="id_{field}_error"' in page, field
    assert not BillerConnection.objects.exists()


def test_probar_conexion_gives_libredtes_answer_in_words(session_client, account, libredte):
    libredte.reset()
    biller = libredte_biller(account, libredte)
    fragment = html(session_client.post(f"/billers/{biller.pk}/test/", HTTP_HX_REQUEST="true"))
    assert "Hash de usuario y empresa" in fragment
    assert "El hash es válido y el usuario puede operar con la empresa RUT 76192083-9 en LibreDTE (certificación)." in fragment
    assert "Boleta electrónica (39)" in fragment


def test_probar_conexion_says_which_document_type_has_no_folios(session_client, account):
    # LibreDTE's folio maintainer (not in the simulator: answered at the transport, from LibreDTE's own payloads).
    biller = BillerConnectionFactory(account=account, provider="libredte", emisor_rut="76192083-9",
                                     credentials={"api_hash": HASH}, config={"base_url": BASE})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        add_company_check(mock)
        mock.add(responses.GET, f"{API}/contribuyentes/config/{EMISOR}", json=fixture("contribuyentes_config"))
        add_folios(mock, 39, json={**fixture("dte_folios_info_39"), "disponibles": 0, "siguiente": 1001})
        for tipo in (33, 34, 61):
            add_folios(mock, tipo, json=fixture("dte_folios_info_39"))
        fragment = html(session_client.post(f"/billers/{biller.pk}/test/", HTTP_HX_REQUEST="true"))
    assert "La conexión tiene problemas." in fragment
    assert ("<strong>Boleta electrónica (39)</strong>: Sin folios disponibles (siguiente: 1001): cargue folios para boleta "
            "electrónica (39) en LibreDTE.") in fragment


def test_editing_keeps_the_secret_unless_it_is_typed_again(session_client, account, libredte):
    biller = libredte_biller(account, libredte)
    data = {**LIBREDTE, "config__base_url": libredte.url, "emisor_giro": "Comercio electrónico"}
    assert session_client.post(f"/billers/{biller.pk}/", data)["Location"] == f"/billers/{biller.pk}/"
    biller.refresh_from_db()
    assert biller.emisor_giro == "Comercio electrónico" and biller.credentials["api_hash"] == DEFAULT_HASH
    session_client.post(f"/billers/{biller.pk}/", {**data, "credentials__api_hash": "b" * 32})
    biller.refresh_from_db()
    assert biller.credentials["api_hash"] == "b" * 32


def test_a_biller_in_use_or_with_documents_is_not_deleted(session_client, account):
    gateway = GatewayFactory(account=account, name="Pasarela principal")
    response = session_client.post(f"/billers/{gateway.biller.pk}/delete/", follow=True)
    assert "El facturador se usa en: Pasarela principal" in html(response)
    retired = BillerConnectionFactory(account=account, name="Facturador anterior")
    DocumentFactory(account=account, biller=retired)  # issued with it by a gateway that now uses another
    response = session_client.post(f"/billers/{retired.pk}/delete/", follow=True)
    assert "emitió documentos que deben conservarse" in html(response)
    assert BillerConnection.objects.filter(pk=retired.pk).exists()
    unused = BillerConnectionFactory(account=account)
    assert session_client.post(f"/billers/{unused.pk}/delete/")["Location"] == "/billers/"
    assert not BillerConnection.objects.filter(pk=unused.pk).exists()


@pytest.mark.parametrize("path", ["", "test/", "delete/"])
def test_another_accounts_biller_is_404(session_client, other_account, path):
    foreign = BillerConnectionFactory(account=other_account)
    assert session_client.get(f"/billers/{foreign.pk}/").status_code == 404
    assert session_client.post(f"/billers/{foreign.pk}/{path}", LIBREDTE).status_code == 404
    assert BillerConnection.objects.filter(pk=foreign.pk, name=foreign.name).exists()


def test_a_viewer_reads_but_cannot_change(account):
    biller = BillerConnectionFactory(account=account, name="Sandbox")
    viewer = Client()
    viewer.force_login(MembershipFactory(account=account, user=UserFactory(), role=Role.VIEWER).user)
    page = html(viewer.get(f"/billers/{biller.pk}/"))
    assert "Sandbox" in page and 'id="biller-save"' not in page
    for path in (f"/billers/{biller.pk}/", f"/billers/{biller.pk}/test/", f"/billers/{biller.pk}/delete/", "/billers/new/"):
        assert viewer.post(path, {**LIBREDTE, "provider": "sandbox"}).status_code == 403, path
    biller.refresh_from_db()
    assert biller.name == "Sandbox" and BillerConnection.objects.count() == 1


# --- the gateway's "Facturador" tab ------------------------------------------------------------------


def test_moving_the_biller_to_production_moves_the_gateway_with_it(session_client, account):
    gateway = GatewayFactory(account=account, source__platform="shopify", source__store_url="https://t.myshopify.com",
                             test_passed_at="2026-11-20T10:00:00Z")
    biller = gateway.biller
    data = {"action": "save", "name": biller.name, "environment": "production", "emisor_rut": biller.emisor_rut,
            "emisor_razon_social": biller.emisor_razon_social, "emisor_giro": biller.emisor_giro,
            "emisor_acteco": biller.emisor_acteco, "emisor_address": biller.emisor_address, "emisor_comuna": biller.emisor_comuna}
    response = session_client.post(f"/gateways/{gateway.pk}/biller/", data)
    assert response["Location"] == f"/gateways/{gateway.pk}/biller/"
    gateway.refresh_from_db()
    assert (gateway.biller.environment, gateway.environment, gateway.test_passed_at) == ("production", "production", None)


def test_a_demo_store_keeps_its_biller_in_certification(session_client, account):
    gateway = GatewayFactory(account=account)
    biller = gateway.biller
    data = {"action": "save", "name": biller.name, "environment": "production", "emisor_rut": biller.emisor_rut,
            "emisor_razon_social": biller.emisor_razon_social, "emisor_giro": biller.emisor_giro,
            "emisor_acteco": biller.emisor_acteco, "emisor_address": biller.emisor_address, "emisor_comuna": biller.emisor_comuna}
    response = session_client.post(f"/gateways/{gateway.pk}/biller/", data)
    assert response.status_code == 200 and "solo se puede conectar a un facturador en certificación" in html(response)
    biller.refresh_from_db()
    assert biller.environment == "certification"
