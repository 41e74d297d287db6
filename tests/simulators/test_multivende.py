"""The Multivende simulator over real HTTP: OAuth, rotating tokens, light checkouts, documents, rate limit, hints."""
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from simulators.multivende import MultivendeSimulator
from sources.multivende.orders import parse_order
from tests.simulators.control import control
from tests.simulators.receiver import Receiver

REDIRECT = "https://app.example/multivende/callback"


@pytest.fixture
def sim():
    with MultivendeSimulator(redirect_uris=[REDIRECT], rps=1000) as simulator:
        yield simulator


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def authorize(sim, **extra):
    params = {"response_type": "code", "client_id": "1234", "redirect_uri": REDIRECT, "scope": "read:checkouts",
              **extra}
    answer = requests.get(f"{sim.url}/apps/authorize", params=params, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))


def exchange(sim, **grant):
    return requests.post(f"{sim.url}/oauth/access-token", timeout=10,
                         json={"client_id": 1234, "client_secret": "sim-multivende-secret", **grant})


@pytest.fixture
def token(sim):
    code = authorize(sim)["code"]
    return exchange(sim, grant_type="authorization_code", code=code).json()


def get(sim, token, path, **params):
    return requests.get(f"{sim.url}{path}", params=params, headers={"Authorization": f"Bearer {token['token']}"},
                        timeout=10)


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_authorization_code_and_rotating_refresh_tokens(sim):
    query = authorize(sim, state="csrf-1")
    assert query["code"].startswith("ac-") and query["state"] == "csrf-1"
    issued = exchange(sim, grant_type="authorization_code", code=query["code"])
    body = issued.json()
    assert set(body) >= {"_id", "status", "OauthClientId", "MerchantId", "CreatedById", "UpdatedById", "OwnerId",
                         "scopes", "expiresAt", "refreshToken", "refreshTokenExpiresAt", "token"}
    assert body["MerchantId"] == sim.merchant_id and body["refreshToken"].startswith("rt-")
    lifetime = datetime.fromisoformat(body["refreshTokenExpiresAt"]) - datetime.fromisoformat(body["expiresAt"])
    assert lifetime == timedelta(hours=42)
    assert exchange(sim, grant_type="authorization_code", code=query["code"]).status_code == 400
    renewed = exchange(sim, grant_type="refresh_token", refresh_token=body["refreshToken"])
    assert renewed.status_code == 200 and renewed.json()["refreshToken"] != body["refreshToken"]
    assert exchange(sim, grant_type="refresh_token", refresh_token=body["refreshToken"]).status_code == 401
    control(sim, "/expire-tokens", access=True)
    assert get(sim, renewed.json(), "/api/d/info").status_code == 403
    control(sim, "/expire-tokens", access=False, refresh=True)
    expired = exchange(sim, grant_type="refresh_token", refresh_token=renewed.json()["refreshToken"])
    assert (expired.status_code, expired.json()["message"]) == (401, "Refresh token expired")
    control(sim, "/settings", echo_state=False)
    assert "state" not in authorize(sim, state="csrf-2")
    control(sim, "/consent", deny=True)
    assert authorize(sim)["error"] == "access_denied"


def test_light_checkouts_window_pagination_and_full_checkout(sim, token):
    now = datetime.now(UTC).replace(microsecond=0)
    control(sim, "/checkouts", count=4, updated_at=(now - timedelta(minutes=30)).isoformat(), document="factura")
    control(sim, "/checkouts", count=3, updated_at=(now - timedelta(hours=5)).isoformat(), document="boleta")
    control(sim, "/settings", page_size=3)
    path = f"/api/m/{sim.merchant_id}/checkouts/light/p/1"
    window = {"_updated_at_from": utc(now - timedelta(hours=1)), "_updated_at_to": utc(now)}
    first = get(sim, token, path, **window).json()
    assert first["pagination"]["total_items"] == 4 and first["pagination"]["next_page"] == 2
    second = get(sim, token, path.replace("/p/1", "/p/2"), **window).json()
    entries = first["entries"] + second["entries"]
    assert len(entries) == 4 and second["pagination"]["next_page"] is None
    assert set(entries[0]) == {"_id", "status", "verifyStatus", "paymentStatus", "soldAt", "createdAt", "updatedAt",
                               "BillingAddressId", "DeliveryTypeId", "MerchantId"}
    too_wide = get(sim, token, path, _updated_at_from=utc(now - timedelta(hours=3)), _updated_at_to=utc(now))
    assert too_wide.status_code == 400 and "2 horas" in too_wide.json()["message"]
    checkout = get(sim, token, f"/api/checkouts/{entries[0]['_id']}").json()
    order = parse_order(checkout)
    assert order.buyer.company == checkout["BillingAddress"]["businessName"]
    assert checkout["CheckoutBillingClients"][0]["documentType"] == "Factura"
    items = sum(i["totalWithDiscount"] for i in checkout["CheckoutItems"])
    assert order.paid_total == items + checkout["DeliveryOrderInCheckouts"][0]["DeliveryOrder"]["cost"]
    other = control(sim, "/merchants", name="Otra SpA")
    assert get(sim, token, f"/api/m/{other['_id']}/checkouts/light/p/1").status_code == 403


def test_billing_document_upload_and_read_back(sim, token):
    checkout = control(sim, "/checkouts", count=1)["checkouts"][0]
    created = requests.post(f"{sim.url}/api/checkouts/{checkout['_id']}/electronic-billing-documents", timeout=10,
                            headers={"Authorization": f"bearer {token['token']}"},
                            json={"ClientId": checkout["Client"]["_id"], "id": "1234", "emissionDate": "2026-11-29",
                                  "type": "electronic_billing_electronic_bill", "provider": "billmysales",
                                  "ElectronicBillingDocumentEmitterId": "e5a1c2d3-0000-4000-8000-000000000001"})
    assert created.status_code == 200 and created.json()["status"] == "created"
    upload_url = f"{sim.url}/api/electronic-billing-documents/{created.json()['_id']}/upload"
    headers = {"Authorization": f"Bearer {token['token']}"}
    too_big = requests.post(upload_url, files={"file": ("1234.pdf", b"%PDF-1.4" + b"0" * (1024 * 1024))},
                            headers=headers, timeout=10)
    assert too_big.status_code == 400
    not_pdf = requests.post(upload_url, files={"file": ("1234.pdf", b"<html>")}, headers=headers, timeout=10)
    assert not_pdf.status_code == 400
    uploaded = requests.post(upload_url, files={"file": ("1234.pdf", b"%PDF-1.4 boleta")}, headers=headers, timeout=10)
    assert uploaded.status_code == 200 and uploaded.json()["synchronizationStatus"] == "pending"
    control(sim, "/sync-documents")
    listed = get(sim, token, f"/api/checkouts/{checkout['_id']}/electronic-billing-documents/p/1").json()
    files = listed["entries"][0]["ElectronicBillingDocumentFiles"]
    assert [f["synchronizationStatus"] for f in files] == ["synchronized"] and files[0]["url"].endswith(".pdf")
    missing = requests.post(f"{sim.url}/api/checkouts/{checkout['_id']}/electronic-billing-documents", json={},
                            headers=headers, timeout=10)
    assert missing.status_code == 400


def test_rate_limit_answers_403_or_429(sim, token):
    control(sim, "/settings", rps=5)
    codes = [get(sim, token, "/api/d/info").status_code for _ in range(8)]
    assert codes[:5] == [200] * 5 and 403 in codes[5:]
    control(sim, "/settings", rate_limit_answer="429")
    answers = [get(sim, token, "/api/d/info") for _ in range(8)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and limited[0].headers["Retry-After"] == "1"


def test_webhook_hints_carry_only_the_checkout_id(sim, receiver):
    control(sim, "/settings", callback_url=f"{receiver.url}/mv")
    checkout = control(sim, "/checkouts", count=1, payment_status="pending")["checkouts"][0]
    control(sim, f"/checkouts/{checkout['_id']}/pay")
    bodies = [json.loads(r.body) for r in receiver.on("/mv")]
    assert bodies == [{"CheckoutId": checkout["_id"], "OauthClient": {"client_id": 1234}}] * 2
    assert "x-signature" not in receiver.received[0].headers
