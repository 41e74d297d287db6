"""Every account-owned endpoint and page honours the cross-tenant contract."""
from accounts.services import Actor, api_key_create
from tests.accounts.tenancy import CrossTenantContract
from tests.gateways.factories import (
    BillerConnectionFactory,
    DocumentFactory,
    GatewayFactory,
    OrderFactory,
    SourceConnectionFactory,
)


class TestGatewayIsolation(CrossTenantContract):
    list_url = "/api/v1/gateways/"
    detail_actions = (("post", "activate/"), ("post", "deactivate/"), ("post", "test-sale/"))

    def make_object(self, account):
        return GatewayFactory(account=account)


class TestOrderIsolation(CrossTenantContract):
    list_url = "/api/v1/orders/"
    detail_actions = (("post", "emit/"), ("post", "retry/"), ("post", "skip/"))

    def make_object(self, account):
        return OrderFactory(account=account)


class TestDocumentIsolation(CrossTenantContract):
    list_url = "/api/v1/documents/"
    detail_actions = (("get", "xml/"), ("get", "pdf/"))

    def make_object(self, account):
        return DocumentFactory(account=account)


class TestSourceIsolation(CrossTenantContract):
    list_url = "/api/v1/sources/"
    detail_actions = (("patch", ""),)

    def make_object(self, account):
        return SourceConnectionFactory(account=account)


class TestBillerIsolation(CrossTenantContract):
    list_url = "/api/v1/billers/"
    detail_actions = (("patch", ""),)

    def make_object(self, account):
        return BillerConnectionFactory(account=account)


class TestApiKeyIsolation(CrossTenantContract):
    list_url = "/api/v1/api-keys/"
    detail_actions = (("post", "revoke/"),)

    def make_object(self, account):
        return api_key_create(account=account, name="k", scope="read", actor=Actor())[0]


def test_bulk_emit_reports_foreign_orders_as_not_found(api_client, account, other_account):
    foreign = OrderFactory(account=other_account, status="waiting")
    response = api_client.post("/api/v1/orders/bulk-emit/", {"ids": [foreign.pk]}, format="json")
    assert response.json()["results"] == {str(foreign.pk): "no encontrada"}


def test_gateway_cannot_be_built_from_another_accounts_connections(api_client, account, other_account):
    source = SourceConnectionFactory(account=other_account)
    biller = BillerConnectionFactory(account=account)
    response = api_client.post(
        "/api/v1/gateways/", {"name": "x", "source": source.pk, "biller": biller.pk}, format="json"
    )
    assert response.status_code == 400
    assert "no existe en esta cuenta" in str(response.json())


def test_dashboard_pages_of_another_account_are_404(session_client, account, other_account):
    document = DocumentFactory(account=other_account)
    for url in (
        f"/orders/{document.order.pk}/",
        f"/gateways/{document.order.gateway.pk}/",
        f"/documents/{document.pk}/xml/",
        f"/documents/{document.pk}/pdf/",
    ):
        assert session_client.get(url).status_code == 404, url
    own = DocumentFactory(account=account)
    assert session_client.get(f"/orders/{own.order.pk}/").status_code == 200


def test_switching_to_an_account_you_do_not_belong_to_is_404(session_client, other_account):
    assert session_client.post(f"/accounts/{other_account.pk}/switch/").status_code == 404
