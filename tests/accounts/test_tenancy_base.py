import pytest

from accounts.models import AuditLog, Role
from accounts.scoping import AccountScopedViewSet
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.gateways.factories import GatewayFactory


def test_scoped_viewsets_may_not_override_get_queryset():
    with pytest.raises(TypeError, match="scoped_queryset"):
        type("Leaky", (AccountScopedViewSet,), {"get_queryset": lambda self: None})


def test_staff_support_mode_opens_any_account_and_is_audited(client, other_account):
    staff = UserFactory(is_staff=True)
    GatewayFactory(account=other_account, name="Pasarela ajena")
    client.force_login(staff)
    response = client.post(f"/support/{other_account.pk}/open/", {"reason": "ticket 1234"})
    assert response.status_code == 302
    page = client.get("/")
    assert "Pasarela ajena" in page.content.decode()
    assert "Modo soporte" in page.content.decode()
    log = AuditLog.objects.get(account=other_account, action="support.open")
    assert log.actor == staff and log.support_mode and log.data == {"reason": "ticket 1234"}


def test_non_staff_cannot_open_support_mode(session_client, other_account):
    response = session_client.post(f"/support/{other_account.pk}/open/")
    assert response.status_code == 302 and "/admin/login" in response["Location"]
    assert not AuditLog.objects.filter(action="support.open").exists()


def test_a_user_switches_between_own_accounts(client, account, user):
    second = MembershipFactory(user=user, role=Role.VIEWER).account
    GatewayFactory(account=second, name="Segunda tienda")
    client.force_login(user)
    client.post(f"/accounts/{second.pk}/switch/")
    assert "Segunda tienda" in client.get("/").content.decode()


def test_viewer_role_cannot_write_through_the_api(client, account):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)
    assert client.get("/api/v1/gateways/").status_code == 200
    assert client.post("/api/v1/sources/", {"name": "x", "platform": "demo"}, content_type="application/json").status_code == 403


def test_login_page_is_served(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert "Ingresar" in response.content.decode()


def test_staff_without_accounts_find_one_to_support_and_members_cannot(client, session_client, account, other_account):
    assert session_client.get("/support/").status_code == 302  # to the admin login: not staff
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/")["Location"] == "/support/"
    page = client.get("/support/?q=Otra").content.decode()
    assert "Otra Tienda Ltda" in page and "Comercial Los Andes" not in page
    assert f"/support/{other_account.pk}/open/" in page
