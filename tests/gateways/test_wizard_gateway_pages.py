"""A gateway's pages after the setup, in the merchants' words: "Facturación > Pasarelas de facturación" (the list
with "Nueva pasarela"), the tabs "General" (name, environment, "Activa"), "Origen de datos", "Facturador" and
"Reglas", each saved with "Guardar cambios"; deleting a gateway that issued documents is refused with the
reason; other accounts' gateways are 404 and viewers cannot change anything."""
import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditLog, Role
from gateways.models import Gateway
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.gateways.factories import DocumentFactory, GatewayFactory

pytestmark = pytest.mark.django_db
TABS = ("", "source/", "biller/", "rules/")


def html(response) -> str:
    return response.content.decode()


def general(gateway, **changes) -> dict:
    return {"action": "save", "name": gateway.name, "environment": gateway.environment, **changes}


def test_the_navigation_leads_to_the_gateways_with_a_new_gateway_button(session_client, account, other_account):
    GatewayFactory(account=account, name="Tienda Shopify Chile")
    GatewayFactory(account=other_account, name="Tienda ajena")
    home = html(session_client.get("/"))
    assert 'href="/gateways/">Facturación</a>' in home
    page = html(session_client.get("/gateways/"))
    assert "Pasarelas de facturación" in page and 'href="/setup/"' in page and "Nueva pasarela" in page
    assert "Tienda Shopify Chile" in page and "Tienda ajena" not in page and "Editar" in page


@pytest.mark.parametrize("tab, key, label", [("", "general", "General"), ("source/", "source", "Origen de datos"),
                                             ("biller/", "biller", "Facturador"), ("rules/", "rules", "Reglas")])
def test_each_tab_is_marked_and_saves_with_guardar_cambios(session_client, account, tab, key, label):
    gateway = GatewayFactory(account=account)
    page = html(session_client.get(f"/gateways/{gateway.pk}/{tab}"))
    assert f'aria-current="page" id="tab-{key}">{label}</a>' in page and page.count('aria-current="page"') == 1
    assert "Guardar cambios" in page


def test_general_renames_the_gateway(session_client, account):
    gateway = GatewayFactory(account=account, name="Tienda")
    response = session_client.post(f"/gateways/{gateway.pk}/", general(gateway, name="Tienda Shopify Chile", active="on"))
    assert response["Location"] == f"/gateways/{gateway.pk}/"
    gateway.refresh_from_db()
    assert gateway.name == "Tienda Shopify Chile" and gateway.active


def test_activa_before_a_passing_test_is_refused_on_the_field_and_nothing_is_saved(session_client, account):
    gateway = GatewayFactory(account=account, active=False, name="Tienda")
    response = session_client.post(f"/gateways/{gateway.pk}/", general(gateway, name="Nuevo nombre", active="on"))
    page = html(response)
    assert response.status_code == 200 and 'id="id_active_error"' in page and "Antes de activar" in page
    gateway.refresh_from_db()
    assert (gateway.active, gateway.name) == (False, "Tienda")


def test_an_owner_activates_from_general_giving_the_reason(session_client, account):
    gateway = GatewayFactory(account=account, active=False)
    session_client.post(f"/gateways/{gateway.pk}/", general(gateway, active="on", reason="Cliente migrado, probado fuera"))
    gateway.refresh_from_db()
    assert gateway.active
    assert AuditLog.objects.get(action="gateway.activate", object_id=str(gateway.pk)).data["reason"] == "Cliente migrado, probado fuera"


def test_unchecking_activa_deactivates(session_client, account):
    gateway = GatewayFactory(account=account, active=True, test_passed_at=timezone.now())
    session_client.post(f"/gateways/{gateway.pk}/", general(gateway))
    gateway.refresh_from_db()
    assert gateway.active is False and AuditLog.objects.filter(action="gateway.deactivate").exists()


def test_a_gateway_that_issued_documents_is_not_deleted_and_says_why(session_client, account):
    document = DocumentFactory(account=account)
    gateway = document.order.gateway
    response = session_client.post(f"/gateways/{gateway.pk}/delete/", follow=True)
    assert "documentos emitidos, que deben conservarse: desactívela" in html(response)
    assert Gateway.objects.filter(pk=gateway.pk).exists()

    unused = GatewayFactory(account=account, name="Pasarela de prueba")
    response = session_client.post(f"/gateways/{unused.pk}/delete/")
    assert response["Location"] == "/gateways/" and not Gateway.objects.filter(pk=unused.pk).exists()


def test_the_test_sale_still_runs_from_general(session_client, account):
    gateway = GatewayFactory(account=account, active=False)
    session_client.post(f"/gateways/{gateway.pk}/", {"action": "test_sale"})
    page = html(session_client.get(f"/gateways/{gateway.pk}/"))
    assert 'id="test-sale-report"' in page and "correcta" in page and "Ver la orden de prueba" in page
    gateway.refresh_from_db()
    assert gateway.test_passed_at is not None


@pytest.mark.parametrize("path", [*TABS, "rules/preview/", "delete/"])
def test_another_accounts_gateway_pages_are_404(session_client, other_account, path):
    gateway = GatewayFactory(account=other_account)
    assert session_client.get(f"/gateways/{gateway.pk}/{path}").status_code in (404, 405)
    assert session_client.post(f"/gateways/{gateway.pk}/{path}", general(gateway)).status_code in (404, 405)
    assert Gateway.objects.filter(pk=gateway.pk).exists()


def test_a_viewer_sees_the_tabs_without_write_buttons_and_cannot_post(account):
    gateway = GatewayFactory(account=account, active=False, name="Tienda")
    viewer = Client()
    viewer.force_login(MembershipFactory(account=account, user=UserFactory(), role=Role.VIEWER).user)
    for tab in TABS:
        page = html(viewer.get(f"/gateways/{gateway.pk}/{tab}"))
        assert "Guardar cambios" not in page and "Eliminar esta pasarela" not in page, tab
        assert viewer.post(f"/gateways/{gateway.pk}/{tab}", general(gateway, name="Cambiada", active="on")).status_code == 403
    assert viewer.post(f"/gateways/{gateway.pk}/delete/").status_code == 403
    assert 'href="/setup/"' not in html(viewer.get("/gateways/"))
    gateway.refresh_from_db()
    assert (gateway.name, gateway.active) == ("Tienda", False)
