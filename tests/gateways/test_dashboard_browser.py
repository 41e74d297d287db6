"""The dashboard in a real browser (Debian's Chromium driven by Playwright): log in, run the test sale
from the gateway page, open the test order and see its document and the rules' reasons."""
import shutil

import pytest

from tests.gateways.factories import GatewayFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser_page(tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(locale="es-CL")
        yield page
        browser.close()


@pytest.mark.timeout(120)
def test_support_flow_login_test_sale_and_order_page(live_server, browser_page, account, user, tmp_path):
    gateway = GatewayFactory(account=account, name="Tienda Shopify Chile")
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", "secret-pass-123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Tienda Shopify Chile")

    page.click("text=Tienda Shopify Chile")
    page.click("#test-sale")
    report = page.wait_for_selector("#test-sale-report")
    assert "correcta" in report.inner_text(), report.inner_text()
    page.screenshot(path=str(tmp_path / "test-sale.png"), full_page=True)

    page.click("text=Ver la orden de prueba")
    assert page.inner_text("#order-status") == "Emitida"
    assert page.inner_text("td.folio") == "1"
    assert "Pedido pagado." in page.inner_text("#reasons")
    page.screenshot(path=str(tmp_path / "order.png"), full_page=True)
    assert gateway.orders.get().documents.count() == 1
