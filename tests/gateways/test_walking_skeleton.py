"""One demo order flows: webhook → committed event → ingest and emit on a real worker (Redis) → Document."""
import json
import time

import pytest

from billers.models import SandboxDocument
from gateways.models import Document, EmissionAttempt, Order, OrderStatus
from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def test_demo_order_is_issued_by_a_real_worker(account, celery_worker_process, purge_broker, client):
    gateway = GatewayFactory(account=account, source__credentials={"webhook_secret": "s3cret"})
    payload = sample_order(number=4242)
    body = json.dumps(payload).encode()

    response = client.post(
        f"/hooks/{gateway.webhook_token}/", body, content_type="application/json",
        headers={SIGNATURE_HEADER: DemoWebhookReader.sign(body, "s3cret"), DELIVERY_HEADER: "delivery-1",
                 TOPIC_HEADER: "orders/paid"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["duplicate"] is False

    worker = celery_worker_process(name="skeleton")
    document = wait_for(lambda: Document.objects.filter(order__gateway=gateway).first())

    order = Order.objects.get(gateway=gateway)
    assert order.status == OrderStatus.ISSUED, worker.log()
    assert document.tipo_dte == 39
    assert document.folio == 1
    assert document.certification is True
    assert document.mnt_total == int(payload["total_price"].split(".")[0])
    assert b"<TED" in bytes(document.xml)
    assert EmissionAttempt.objects.filter(emission__order=order, outcome="success").count() == 1
    assert SandboxDocument.objects.filter(connection=gateway.biller).count() == 1


def test_unknown_webhook_address_is_404(db, client):
    assert client.post("/hooks/nope/", b"{}", content_type="application/json").status_code == 404
