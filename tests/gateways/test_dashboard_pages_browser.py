"""The everyday pages in a real browser (Debian's Chromium driven by Playwright) with a real Celery worker:
a paid order arrives while the orders page is open and turns "Emitida" without a reload, its PDF
downloads, a refund becomes a credit note on the order page, a failed order says why in Spanish and a
retry fixes it. Every page is photographed at desktop width and at 390 px (into pytest's tmp_path),
where it must not scroll sideways."""
import json

import pytest
import requests

from billers.models import BillerConnection
from gateways.models import Document, DocumentKind, Order, OrderStatus
from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader
from sources.shopify.samples import sample_order
from tests.browser import DESKTOP, chromium, photograph, wait_for
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import with_refund
from tests.sources.factories import DEMO_SECRET

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        yield browser


def deliver(live_server, gateway, payload: dict, delivery: str, topic: str = "orders/paid") -> None:
    body = json.dumps(payload).encode()
    response = requests.post(
        f"{live_server.url}/hooks/{gateway.webhook_token}/", data=body, timeout=10,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: DemoWebhookReader.sign(body, DEMO_SECRET),
                 DELIVERY_HEADER: delivery, TOPIC_HEADER: topic},
    )
    assert response.status_code == 200, response.text


@pytest.mark.timeout(240)
def test_orders_live_pdf_credit_note_and_retry_in_the_browser(
    live_server, browser, account, user, tmp_path, celery_worker_process, purge_broker
):
    gateway = GatewayFactory(account=account, name="Tienda Demo Chile")
    worker = celery_worker_process(name="dashboard")
    context = browser.new_context(accept_downloads=True, viewport=DESKTOP, locale="es-CL")
    page = context.new_page()
    csp_errors = []
    page.on("console", lambda message: csp_errors.append(message.text) if "Content Security Policy" in message.text else None)

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", "secret-pass-123")
    page.click("button[type=submit]")
    page.wait_for_selector("#gateway-cards")

    # A paid order arrives while the orders page is open: it appears and turns "Emitida" without a reload.
    page.goto(f"{live_server.url}/orders/")
    page.evaluate("window.bmsNotReloaded = true")
    payload = sample_order(number=5101)
    deliver(live_server, gateway, payload, "d-5101")
    page.wait_for_selector("#order-rows tr.order-row:has-text('#5101') .badge.st-issued", timeout=45_000)
    assert page.evaluate("window.bmsNotReloaded === true"), "the orders page was reloaded"
    order = Order.objects.get(gateway=gateway, number="#5101")
    assert order.status == OrderStatus.ISSUED, worker.log()
    assert page.inner_text(f"#order-{order.pk} .order-status").startswith("Emitida")
    photograph(page, tmp_path, "orders")

    # Its page: the reasons in Spanish, the document, and the PDF downloads.
    page.click(f"#order-{order.pk} a")
    assert page.inner_text("#order-status") == "Emitida"
    assert "Pedido pagado." in page.inner_text("#reasons")
    invoice = order.documents.get()
    assert page.inner_text("td.folio") == str(invoice.folio)
    with page.expect_download() as download:
        page.click(f"#document-{invoice.pk} a.document-pdf")
    assert download.value.suggested_filename == f"DTE_T39_F{invoice.folio}.pdf"
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"

    # The store refunds it: a credit note is issued and shown on the order page.
    deliver(live_server, gateway, with_refund(payload, refund_id=91, amount=invoice.mnt_total), "d-5101-refund", "orders/updated")
    note = wait_for(lambda: Document.objects.filter(order=order, kind=DocumentKind.CREDIT_NOTE).first())
    page.reload()
    row = page.inner_text(f"#document-{note.pk}")
    assert "Nota de crédito electrónica" in row and f"sobre Boleta electrónica N° {invoice.folio}" in row
    photograph(page, tmp_path, "order")

    # The biller refuses the next order: its reason is shown in Spanish, and a retry issues it.
    BillerConnection.objects.filter(pk=gateway.biller_id).update(config={"reject_all": "el receptor no está autorizado"})
    deliver(live_server, gateway, sample_order(number=5102), "d-5102")
    failed = wait_for(lambda: Order.objects.filter(gateway=gateway, number="#5102", status=OrderStatus.FAILED).first())
    page.goto(f"{live_server.url}/orders/?status=failed")
    assert "Rechazado por el facturador: Sandbox: el receptor no está autorizado" in page.inner_text(f"#order-{failed.pk}")
    page.click(f"#order-{failed.pk} a")
    assert page.inner_text("#order-status") == "Fallida"
    assert page.inner_text("#status-reason") == "Rechazado por el facturador: Sandbox: el receptor no está autorizado"
    photograph(page, tmp_path, "order-failed")
    BillerConnection.objects.filter(pk=gateway.biller_id).update(config={})
    page.click("#action-retry")
    page.wait_for_selector("#order-status.st-issued", timeout=45_000)
    assert page.inner_text("#order-status") == "Emitida"
    assert Order.objects.get(pk=failed.pk).status == OrderStatus.ISSUED

    # The other pages, photographed; and no page broke the Content-Security-Policy.
    page.goto(f"{live_server.url}/")
    assert page.locator("svg.bms-chart").count() == 2  # documents and amounts; the retried order left no failure to chart
    assert "Ninguna orden falló ni quedó retenida en este período." in page.inner_text("#failures")
    photograph(page, tmp_path, "home")
    page.goto(f"{live_server.url}/documents/")
    assert page.locator("#document-table tbody tr").count() == 3
    photograph(page, tmp_path, "documents")
    page.goto(f"{live_server.url}/orders/999999999/")
    photograph(page, tmp_path, "not-found")
    assert csp_errors == []
    assert len(list(tmp_path.glob("*.png"))) == 12
