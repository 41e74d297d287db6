import hashlib

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditLog
from accounts.services import api_key_create, api_key_revoke
from tests.gateways.factories import GatewayFactory


def client_for(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def test_key_is_stored_hashed_and_shown_once(account, actor):
    api_key, raw = api_key_create(account=account, name="ERP", scope="read", actor=actor)
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert raw.startswith(f"bms_{stored.prefix}_")
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=api_key.pk).values().first())
    assert AuditLog.objects.filter(account=account, action="api_key.create", object_id=str(api_key.pk)).exists()


def test_created_key_is_returned_once_by_the_api(session_client, account):
    response = session_client.post("/api/v1/api-keys/", {"name": "ERP", "scope": "write"}, content_type="application/json")
    assert response.status_code == 201
    raw = response.json()["key"]
    listed = session_client.get("/api/v1/api-keys/").json()
    assert raw not in str(listed)
    assert client_for(raw).get("/api/v1/gateways/").status_code == 200


def test_read_scope_reads_but_cannot_write(account, actor):
    GatewayFactory(account=account)
    _, raw = api_key_create(account=account, name="BI", scope="read", actor=actor)
    client = client_for(raw)
    assert client.get("/api/v1/gateways/").status_code == 200
    response = client.post("/api/v1/sources/", {"name": "x", "platform": "demo"}, format="json")
    assert response.status_code == 403


def test_write_scope_can_write(account, actor):
    _, raw = api_key_create(account=account, name="ERP", scope="write", actor=actor)
    response = client_for(raw).post("/api/v1/sources/", {"name": "Tienda", "platform": "demo"}, format="json")
    assert response.status_code == 201, response.content


def test_revoked_key_is_refused(account, actor):
    api_key, raw = api_key_create(account=account, name="old", scope="write", actor=actor)
    api_key_revoke(api_key=api_key, actor=actor)
    response = client_for(raw).get("/api/v1/gateways/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed" and "revocada" in response.json()["error"]["message"]


@pytest.mark.parametrize("header", ["Bearer bms_deadbeef_nope", "Bearer bms_x", "Bearer bms_"])
def test_unknown_or_malformed_key_is_refused(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/gateways/").status_code == 401


def test_last_use_is_recorded(account, actor):
    api_key, raw = api_key_create(account=account, name="ERP", scope="read", actor=actor)
    assert api_key.last_used_at is None
    client_for(raw).get("/api/v1/orders/")
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_keys_cannot_manage_keys(account, actor):
    _, raw = api_key_create(account=account, name="ERP", scope="write", actor=actor)
    assert client_for(raw).post("/api/v1/api-keys/", {"name": "x"}, format="json").status_code == 403


def test_key_of_one_account_never_sees_another(account, other_account, actor):
    GatewayFactory(account=other_account)
    _, raw = api_key_create(account=account, name="ERP", scope="read", actor=actor)
    assert client_for(raw).get("/api/v1/gateways/").json()["results"] == []
