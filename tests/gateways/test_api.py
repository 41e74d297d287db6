"""The REST API as integrators use it: the error body, keys and roles, Idempotency-Key (also under
concurrent replays), throttling, gateway lifecycle, manual credit notes, CSV export, unread deliveries."""
import csv
import io
import threading

import pytest
from django.core import mail
from django.db import connection as db_connection
from rest_framework.test import APIClient

from accounts.models import Membership, Role
from accounts.services import Actor, api_key_create, api_key_revoke
from billmysales.api.throttling import ClientRateThrottle
from gateways import services
from gateways.models import DocumentKind, Gateway, InboundEvent, OrderStatus
from sources.models import SourceConnection
from sources.shopify.samples import sample_order
from tests.accounts.factories import AccountFactory, UserFactory
from tests.gateways.factories import BillerConnectionFactory, GatewayFactory
from tests.gateways.pipeline_helpers import run_pending


def key_client(account, scope: str) -> tuple[APIClient, object]:
    api_key, raw = api_key_create(account=account, name=f"{scope} key", scope=scope, actor=Actor())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, api_key


def error(response) -> dict:
    return response.json()["error"]


def test_errors_have_one_body_with_code_message_and_fields(write_key_client):
    missing = write_key_client.get("/api/v1/orders/999999/")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found" and error(missing)["fields"] == {}
    bad_rut = write_key_client.post("/api/v1/billers/", {
        "name": "LibreDTE", "provider": "sandbox", "emisor_rut": "76.086.428-4", "emisor_razon_social": "X", "emisor_giro": "Y",
    }, format="json")
    assert bad_rut.status_code == 400
    assert error(bad_rut)["code"] == "invalid_rut" and "emisor_rut" in error(bad_rut)["fields"]
    not_allowed = write_key_client.put("/api/v1/orders/", {}, format="json")
    assert not_allowed.status_code == 405 and error(not_allowed)["code"] == "method_not_allowed"


def test_messages_are_spanish_by_default_and_english_on_request(api_client):
    assert "no" in error(api_client.get("/api/v1/orders/999999/"))["message"].lower()
    english = api_client.get("/api/v1/orders/999999/", HTTP_ACCEPT_LANGUAGE="en")
    assert error(english)["message"] == "Not found."


def test_a_read_only_key_cannot_write_and_cannot_list_keys(account):
    client, _key = key_client(account, "read")
    assert client.get("/api/v1/gateways/").status_code == 200
    refused = client.post("/api/v1/sources/", {"name": "x", "platform": "demo"}, format="json")
    assert refused.status_code == 403 and error(refused)["code"] == "permission_denied"
    assert client.get("/api/v1/api-keys/").status_code == 403
    assert not SourceConnection.objects.exists()


def test_a_viewer_cannot_list_api_keys(account):
    viewer = UserFactory()
    Membership.objects.create(user=viewer, account=account, role=Role.VIEWER)
    client = APIClient()
    client.force_login(viewer)
    assert client.get("/api/v1/api-keys/").status_code == 403


def test_a_revoked_key_gets_401_at_once(account):
    client, api_key = key_client(account, "write")
    assert client.get("/api/v1/gateways/").status_code == 200
    api_key_revoke(api_key=api_key, actor=Actor())
    response = client.get("/api/v1/gateways/")
    assert response.status_code == 401 and error(response)["code"] == "authentication_failed"


def test_a_throttled_client_gets_429_with_retry_after(account, monkeypatch):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "3/min", "anon": "2/min"})
    client, _key = key_client(account, "read")
    statuses = [client.get("/api/v1/gateways/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = client.get("/api/v1/gateways/")
    assert error(throttled)["code"] == "throttled" and int(throttled["Retry-After"]) > 0
    anonymous = [APIClient().get("/api/v1/gateways/").status_code for _ in range(3)]
    assert anonymous == [401, 401, 429]
    cache.clear()


def test_an_idempotency_key_replays_the_first_response_and_creates_nothing_new(write_key_client):
    body = {"name": "Tienda", "platform": "demo"}
    first = write_key_client.post("/api/v1/sources/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = write_key_client.post("/api/v1/sources/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert SourceConnection.objects.count() == 1
    other = write_key_client.post("/api/v1/sources/", {**body, "name": "Otra"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422 and error(other)["code"] == "idempotency_key_reused"
    assert SourceConnection.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_replays_create_one_object():
    account = AccountFactory()
    _key, raw = api_key_create(account=account, name="k", scope="write", actor=Actor())
    answers = []

    def post():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
            answers.append(client.post("/api/v1/sources/", {"name": "Tienda", "platform": "demo"}, format="json",
                                       HTTP_IDEMPOTENCY_KEY="same-key"))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert SourceConnection.objects.filter(account=account).count() == 1
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1


def test_activation_needs_a_passing_test_sale_or_an_owner_s_reason(api_client, account):
    gateway = GatewayFactory(account=account, active=False)
    refused = api_client.post(f"/api/v1/gateways/{gateway.pk}/activate/", {}, format="json")
    assert refused.status_code == 409 and error(refused)["code"] == "test_sale_required"
    assert api_client.post(f"/api/v1/gateways/{gateway.pk}/test-sale/").json()["ok"] is True
    assert api_client.post(f"/api/v1/gateways/{gateway.pk}/activate/", {}, format="json").json()["active"] is True


def test_an_owner_may_activate_without_a_test_giving_the_reason(api_client, account):
    gateway = GatewayFactory(account=account, active=False)
    answer = api_client.post(f"/api/v1/gateways/{gateway.pk}/activate/", {"reason": "probado en otra cuenta"}, format="json")
    assert answer.status_code == 200 and answer.json()["active"] is True
    assert account.audit_logs.filter(action="gateway.activate", data__reason="probado en otra cuenta").exists()


def test_a_key_cannot_activate_without_a_test_even_with_a_reason(account):
    client, _key = key_client(account, "write")
    gateway = GatewayFactory(account=account, active=False)
    assert client.post(f"/api/v1/gateways/{gateway.pk}/activate/", {"reason": "x"}, format="json").status_code == 409


def test_in_use_connections_and_gateways_with_documents_are_not_deleted(api_client, account):
    gateway = GatewayFactory(account=account)
    run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=1)))
    for url in (f"/api/v1/sources/{gateway.source_id}/", f"/api/v1/billers/{gateway.biller_id}/", f"/api/v1/gateways/{gateway.pk}/"):
        response = api_client.delete(url)
        assert response.status_code == 409 and error(response)["code"] == "in_use", url
    empty = GatewayFactory(account=account)
    assert api_client.delete(f"/api/v1/gateways/{empty.pk}/").status_code == 204
    assert not Gateway.objects.filter(pk=empty.pk).exists()


def test_gateway_update_keeps_the_wiring_rules(api_client, account):
    gateway = GatewayFactory(account=account)
    production = BillerConnectionFactory(account=account, environment="production")
    refused = api_client.patch(f"/api/v1/gateways/{gateway.pk}/", {"biller": production.pk}, format="json")
    assert refused.status_code == 400 and "certificación" in error(refused)["message"]
    renamed = api_client.patch(f"/api/v1/gateways/{gateway.pk}/", {"name": "Nueva"}, format="json")
    assert renamed.json()["name"] == "Nueva"


def test_a_credit_note_by_hand_for_the_whole_document_or_some_lines(api_client, account):
    gateway = GatewayFactory(account=account)
    order = services.order_ingest(gateway=gateway, raw=sample_order(number=4))
    [invoice] = run_pending(order)
    line = order.raw["line_items"][0]
    partial = api_client.post(f"/api/v1/orders/{order.pk}/credit-note/", {
        "reason": "Devolución de un producto", "lines": [{"line_id": str(line["id"]), "quantity": 1}],
    }, format="json")
    assert partial.status_code == 202, partial.content
    [note] = run_pending(order)
    assert (note.kind, note.tipo_dte, note.mnt_total) == (DocumentKind.CREDIT_NOTE, 61, int(float(line["price"])))
    rest = api_client.post(f"/api/v1/orders/{order.pk}/credit-note/", {"reason": "Anulación"}, format="json")
    assert rest.status_code == 202
    [second] = run_pending(order)
    assert note.mnt_total + second.mnt_total == invoice.mnt_total
    nothing_left = api_client.post(f"/api/v1/orders/{order.pk}/credit-note/", {"reason": "otra vez"}, format="json")
    assert nothing_left.status_code == 422 and error(nothing_left)["code"] == "credit_note_refused"


def test_emit_now_on_an_order_that_cannot_be_billed_says_why(api_client, account):
    gateway = GatewayFactory(account=account)
    order = services.order_ingest(gateway=gateway, raw={**sample_order(number=5), "currency": "USD"})
    assert order.status == OrderStatus.HELD
    response = api_client.post(f"/api/v1/orders/{order.pk}/emit/")
    assert response.status_code == 422 and error(response)["code"] == "currency_not_supported"


def test_orders_are_found_by_number_folio_and_email(api_client, account):
    gateway = GatewayFactory(account=account)
    order = services.order_ingest(gateway=gateway, raw=sample_order(number=1234))
    [document] = run_pending(order)
    for q in ("#1234", "1234", str(document.folio), order.buyer_email):
        ids = [row["id"] for row in api_client.get("/api/v1/orders/", {"q": q}).json()["results"]]
        assert ids == [order.pk], q


def test_documents_export_as_csv(api_client, account):
    gateway = GatewayFactory(account=account)
    run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=7)))
    response = api_client.get("/api/v1/documents/export/", {"tipo_dte": 39})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "fecha", "tipo_dte", "documento", "folio"]
    assert rows[1][2:4] == ["39", "Boleta electrónica"] and len(rows) == 2


def test_unread_deliveries_are_listed_and_reprocessed(api_client, account):
    gateway = GatewayFactory(account=account)
    event = InboundEvent.objects.create(account=account, gateway=gateway, delivery_id="x", payload=sample_order(number=8),
                                        status=InboundEvent.Status.REJECTED, error="billing_address debe ser un objeto")
    listed = api_client.get("/api/v1/unread-deliveries/").json()["results"]
    assert [row["error"] for row in listed] == ["billing_address debe ser un objeto"]
    assert api_client.post(f"/api/v1/unread-deliveries/{event.pk}/reprocess/").status_code == 202
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PENDING


def test_members_are_invited_by_email_and_the_last_owner_stays(api_client, account, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invited = api_client.post("/api/v1/members/", {"email": "ana@example.cl", "role": "admin"}, format="json")
    assert invited.status_code == 201 and invited.json()["pending"] is True
    assert mail.outbox and "/invitaciones/" in mail.outbox[-1].body
    me = Membership.objects.get(user=user, account=account)
    refused = api_client.delete(f"/api/v1/members/{me.pk}/")
    assert refused.status_code == 409 and error(refused)["code"] == "last_owner"


def test_the_account_endpoint_shows_and_changes_the_current_account(api_client, account):
    assert api_client.get("/api/v1/account/").json()["name"] == account.name
    bad = api_client.patch("/api/v1/account/", {"rut": "12.345.678-0"}, format="json")
    assert bad.status_code == 400 and error(bad)["code"] == "invalid_rut"
    assert api_client.patch("/api/v1/account/", {"rut": "76.086.428-5"}, format="json").json()["rut"] == "76086428-5"


def test_vendor_types_list_their_declared_fields(api_client):
    sources = {row["type"]: row for row in api_client.get("/api/v1/source-types/").json()}
    assert {f["name"] for f in sources["woocommerce"]["credentials"]} >= {"webhook_secret", "consumer_key"}
    billers = {row["type"]: row for row in api_client.get("/api/v1/biller-types/").json()}
    assert "sandbox" in billers


def test_the_docs_are_served_without_a_cdn(client, settings):
    docs = client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower() and "/static/drf_spectacular_sidecar/" in docs
    assert client.get("/api/redoc/").status_code == 200
