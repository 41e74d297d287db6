"""Every account-owned endpoint and page honours the cross-tenant contract."""
from datetime import timedelta

from django.utils import timezone

from accounts.models import Invitation, Membership, Role
from accounts.services import Actor, api_key_create
from gateways.models import BackfillJob, InboundEvent, WebhookDelivery, WebhookEndpoint
from tests.accounts.factories import UserFactory
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
    detail_actions = (("post", "activate/"), ("post", "deactivate/"), ("post", "test-sale/"), ("patch", ""),
                      ("delete", ""), ("get", "rules/"), ("patch", "rules/"), ("post", "backfill/"),
                      ("post", "subscribe-webhooks/"))

    def make_object(self, account):
        return GatewayFactory(account=account)


class TestOrderIsolation(CrossTenantContract):
    list_url = "/api/v1/orders/"
    detail_actions = (("post", "emit/"), ("post", "retry/"), ("post", "skip/"), ("post", "credit-note/"))

    def make_object(self, account):
        return OrderFactory(account=account)


class TestDocumentIsolation(CrossTenantContract):
    list_url = "/api/v1/documents/"
    detail_actions = (("get", "xml/"), ("get", "pdf/"))

    def make_object(self, account):
        return DocumentFactory(account=account)


class TestSourceIsolation(CrossTenantContract):
    list_url = "/api/v1/sources/"
    detail_actions = (("patch", ""), ("delete", ""), ("post", "test/"))

    def make_object(self, account):
        return SourceConnectionFactory(account=account)


class TestBillerIsolation(CrossTenantContract):
    list_url = "/api/v1/billers/"
    detail_actions = (("patch", ""), ("delete", ""), ("post", "test/"))

    def make_object(self, account):
        return BillerConnectionFactory(account=account)


class TestApiKeyIsolation(CrossTenantContract):
    list_url = "/api/v1/api-keys/"
    detail_actions = (("post", "revoke/"),)

    def make_object(self, account):
        return api_key_create(account=account, name="k", scope="read", actor=Actor())[0]


class TestBackfillIsolation(CrossTenantContract):
    list_url = "/api/v1/backfills/"

    def make_object(self, account):
        gateway = GatewayFactory(account=account)
        return BackfillJob.objects.create(account=account, gateway=gateway, start=timezone.now() - timedelta(days=1), end=timezone.now())


class TestUnreadDeliveryIsolation(CrossTenantContract):
    list_url = "/api/v1/unread-deliveries/"
    detail_actions = (("post", "reprocess/"),)

    def make_object(self, account):
        gateway = GatewayFactory(account=account)
        return InboundEvent.objects.create(account=account, gateway=gateway, delivery_id="d", payload={"id": 1},
                                           status=InboundEvent.Status.REJECTED, error="x")


class TestWebhookEndpointIsolation(CrossTenantContract):
    list_url = "/api/v1/webhook-endpoints/"
    detail_actions = (("patch", ""), ("delete", ""), ("post", "test/"), ("post", "rotate-secret/"))

    def make_object(self, account):
        return WebhookEndpoint.objects.create(account=account, url="https://hooks.example.cl/x", events=["document.issued"], secret="s")


class TestWebhookDeliveryIsolation(CrossTenantContract):
    list_url = "/api/v1/webhook-deliveries/"
    detail_actions = (("post", "resend/"),)

    def make_object(self, account):
        endpoint = TestWebhookEndpointIsolation().make_object(account)
        return WebhookDelivery.objects.create(account=account, endpoint=endpoint, event_type="document.issued", payload={})


class TestMemberIsolation(CrossTenantContract):
    list_url = "/api/v1/members/"
    detail_actions = (("patch", ""), ("delete", ""))

    def make_object(self, account):
        return Membership.objects.create(account=account, user=UserFactory(), role=Role.VIEWER)


class TestInvitationIsolation(CrossTenantContract):
    list_url = "/api/v1/invitations/"
    detail_actions = (("post", "revoke/"),)

    def make_object(self, account):
        return Invitation.objects.create(account=account, email="x@example.cl", token_hash=f"h{account.pk}",
                                         expires_at=timezone.now() + timedelta(days=1))


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
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found" and "source" in response.json()["error"]["fields"]


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


def test_a_gateway_cannot_be_moved_to_another_accounts_biller(api_client, account, other_account):
    gateway = GatewayFactory(account=account)
    foreign = BillerConnectionFactory(account=other_account)
    response = api_client.patch(f"/api/v1/gateways/{gateway.pk}/", {"biller": foreign.pk}, format="json")
    assert response.status_code == 404 and response.json()["error"]["fields"]["biller"]
    gateway.refresh_from_db()
    assert gateway.biller.account_id == account.pk


def test_deliveries_of_another_accounts_endpoint_are_not_listed(api_client, account, other_account):
    TestWebhookDeliveryIsolation().make_object(other_account)
    assert api_client.get("/api/v1/webhook-deliveries/").json()["results"] == []
