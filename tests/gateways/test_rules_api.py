from accounts.models import AuditLog
from tests.gateways.factories import GatewayFactory


def test_rules_are_read_with_platform_defaults(api_client, account):
    gateway = GatewayFactory(account=account)
    body = api_client.get(f"/api/v1/gateways/{gateway.pk}/rules/").json()
    assert body["default_document_type"] == 39
    assert body["mode"] == "auto"
    assert "rut" in body["effective_field_mapping"]


def test_rules_are_changed_and_audited(api_client, account):
    gateway = GatewayFactory(account=account)
    response = api_client.patch(
        f"/api/v1/gateways/{gateway.pk}/rules/",
        {"mode": "manual", "min_amount": 1000, "field_mapping": {"rut": "note_attributes[?name=='RUT'].value | [0]"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    gateway.ruleset.refresh_from_db()
    assert (gateway.ruleset.mode, gateway.ruleset.min_amount) == ("manual", 1000)
    assert response.json()["effective_field_mapping"]["rut"] == "note_attributes[?name=='RUT'].value | [0]"
    assert AuditLog.objects.filter(account=account, action="ruleset.update").exists()


def test_invalid_jmespath_is_refused_with_the_field_named(api_client, account):
    gateway = GatewayFactory(account=account)
    response = api_client.patch(f"/api/v1/gateways/{gateway.pk}/rules/", {"field_mapping": {"rut": "note_attributes[?"}}, format="json")
    assert response.status_code == 400
    assert "rut" in str(response.json())
    gateway.ruleset.refresh_from_db()
    assert gateway.ruleset.field_mapping == {}


def test_other_accounts_rules_are_404(api_client, account, other_account):
    gateway = GatewayFactory(account=other_account)
    assert api_client.get(f"/api/v1/gateways/{gateway.pk}/rules/").status_code == 404
    assert api_client.patch(f"/api/v1/gateways/{gateway.pk}/rules/", {"mode": "manual"}, format="json").status_code == 404


def test_rules_are_edited_in_the_dashboard(session_client, account):
    gateway = GatewayFactory(account=account)
    page = session_client.get(f"/gateways/{gateway.pk}/rules/")
    assert page.status_code == 200 and "note_attributes" in page.content.decode()
    response = session_client.post(
        f"/gateways/{gateway.pk}/rules/",
        {
            "default_document_type": 33, "price_basis": "gross", "mode": "manual", "min_amount": 500,
            "paid_only": "on", "shipping_as_line": "on", "exclude_tags": "mayorista, interno",
            "field_mapping": '{"giro": "note_attributes[?name==\'Giro\'].value | [0]"}',
        },
    )
    assert response.status_code == 302
    gateway.ruleset.refresh_from_db()
    assert gateway.ruleset.default_document_type == 33
    assert gateway.ruleset.exclude_tags == ["mayorista", "interno"]
    assert gateway.ruleset.field_mapping == {"giro": "note_attributes[?name=='Giro'].value | [0]"}


def test_dashboard_shows_invalid_mapping_errors(session_client, account):
    gateway = GatewayFactory(account=account)
    response = session_client.post(
        f"/gateways/{gateway.pk}/rules/",
        {"default_document_type": 39, "price_basis": "gross", "mode": "auto", "min_amount": 0, "field_mapping": '{"rut": "a[?"}'},
    )
    assert response.status_code == 200
    assert "JMESPath" in response.content.decode()
