"""Outgoing webhooks over real HTTP to a receiver that verifies signatures as the README shows: every event
once per event id, everything delivered after an outage, replays rejectable by their timestamp, endpoints
disabled after a long run of failures, SSRF refused."""
import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from gateways import outbox, services
from gateways.models import WebhookDelivery, WebhookEndpoint
from gateways.services.webhook_endpoints import webhook_endpoint_create
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending

TOLERANCE = 300


def verify(secret: str, headers: dict, body: bytes, now: float) -> bool:
    """The receiver's check, as in the README: HMAC of "<t>.<body>", constant-time, and a fresh timestamp."""
    fields = dict(part.split("=", 1) for part in headers["BillMySales-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(now - int(fields["t"])) <= TOLERANCE


class Receiver:
    """A tiny HTTP receiver: records what it accepts, answers 503 while ``down``."""

    def __init__(self):
        self.accepted, self.raw, self.down, self.secret = [], [], False, ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items()}
                receiver.raw.append((headers, body))
                ok = not receiver.down and verify(receiver.secret, headers, body, time.time())
                if ok:
                    receiver.accepted.append(headers["BillMySales-Event-Id"])
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bms"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def endpoint(account, actor, receiver):
    endpoint = webhook_endpoint_create(account=account, actor=actor, url=receiver.url,
                                       events=["document.issued", "credit_note.issued", "order.held"])
    receiver.secret = endpoint.secret
    return endpoint


def issue_one(account, number: int, capture):
    gateway = GatewayFactory(account=account)
    with capture(execute=True):
        order = services.order_ingest(gateway=gateway, raw=sample_order(number=number))
        run_pending(order)
    return order


def run_all() -> None:
    for delivery_id in WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).values_list("pk", flat=True):
        outbox.webhook_delivery_run(delivery_id=delivery_id)


def test_a_document_issued_reaches_the_receiver_signed_once(account, endpoint, receiver, django_capture_on_commit_callbacks):
    order = issue_one(account, 11, django_capture_on_commit_callbacks)
    [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert delivery.event_type == "document.issued"

    run_all()
    run_all()

    assert receiver.accepted == [str(delivery.event_id)]
    headers, body = receiver.raw[0]
    payload = json.loads(body)
    assert payload["type"] == "document.issued" and payload["data"]["order"] == order.pk
    assert payload["data"]["document"]["tipo_dte"] == 39 and payload["data"]["document"]["pdf_url"].endswith(".pdf")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookDelivery.Status.DELIVERED, 1, 200)


def test_a_receiver_down_for_ten_minutes_gets_everything_afterwards(account, endpoint, receiver,
                                                                    django_capture_on_commit_callbacks, settings):
    # The retry schedule still has tries left after ten minutes of failures.
    assert sum(settings.BMS_WEBHOOK_RETRY_DELAYS[:4]) > 600 and len(settings.BMS_WEBHOOK_RETRY_DELAYS) > 4
    receiver.down = True
    for number in range(3):
        issue_one(account, 20 + number, django_capture_on_commit_callbacks)
    clock = 0
    while clock < 600:
        run_all()
        due = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        step = min((d.next_attempt_at - timezone.now()).total_seconds() for d in due)
        clock += step
        due.update(next_attempt_at=timezone.now())  # the time it would have waited has passed
    assert receiver.accepted == [] and WebhookDelivery.objects.filter(status="pending").count() == 3
    receiver.down = False

    run_all()

    ids = {str(d.event_id) for d in WebhookDelivery.objects.all()}
    assert sorted(receiver.accepted) == sorted(ids) and len(ids) == 3
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0


def test_a_replayed_old_delivery_is_rejectable_by_its_timestamp(account, endpoint, receiver, django_capture_on_commit_callbacks):
    issue_one(account, 30, django_capture_on_commit_callbacks)
    run_all()
    headers, body = receiver.raw[0]
    assert verify(endpoint.secret, headers, body, time.time())
    assert not verify(endpoint.secret, headers, body, time.time() + 600)
    assert not verify(endpoint.secret, headers, body.replace(b"document.issued", b"document.failed"), time.time())


def test_a_resent_delivery_keeps_its_event_id(account, endpoint, receiver, django_capture_on_commit_callbacks, api_client):
    issue_one(account, 31, django_capture_on_commit_callbacks)
    run_all()
    delivery = WebhookDelivery.objects.get()
    assert api_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/resend/").status_code == 202
    run_all()
    assert receiver.accepted == [str(delivery.event_id)] * 2


def test_an_endpoint_failing_for_days_is_disabled_and_its_owners_told(account, endpoint, receiver,
                                                                      django_capture_on_commit_callbacks, settings):
    receiver.down = True
    issue_one(account, 40, django_capture_on_commit_callbacks)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=settings.BMS_WEBHOOK_DISABLE_AFTER_HOURS))
    with django_capture_on_commit_callbacks(execute=True):
        run_all()
    endpoint.refresh_from_db()
    assert endpoint.active is False and "intentos fallidos" in endpoint.disabled_reason
    assert mail.outbox and endpoint.url in mail.outbox[-1].subject


def test_the_test_event_and_the_delivery_log(api_client, endpoint, receiver):
    answer = api_client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/test/")
    assert answer.status_code == 202
    run_all()
    [row] = api_client.get("/api/v1/webhook-deliveries/", {"endpoint": endpoint.pk}).json()["results"]
    assert row["event_type"] == "webhook.test" and row["status"] == "delivered"
    assert row["attempt_log"][0]["status_code"] == 200


def test_the_secret_is_shown_once(api_client):
    created = api_client.post("/api/v1/webhook-endpoints/", {"url": "http://127.0.0.1:9/x", "events": ["order.held"]},
                              format="json")
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert "secret" not in api_client.get(f"/api/v1/webhook-endpoints/{created.json()['id']}/").json()


@pytest.mark.parametrize("url", ["http://hooks.example.cl/x", "https://10.0.0.5/x", "https://169.254.169.254/latest",
                                 "https://user:pass@hooks.example.cl/x", "ftp://x/y"])
def test_deliveries_never_go_to_private_addresses_or_plain_http(api_client, url, settings):
    settings.BMS_INSECURE_HOSTS = []
    response = api_client.post("/api/v1/webhook-endpoints/", {"url": url, "events": ["order.held"]}, format="json")
    assert response.status_code == 400, response.content
    assert "url" in response.json()["error"]["fields"]
