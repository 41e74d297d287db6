"""Issue 10's "Done when", walked as a merchant walks it, in one browser session (Debian's Chromium driven by
Playwright) against the store and biller simulators, with a real Celery worker process:

sign up → the confirmation link from the mailbox → the first account → the setup wizard for the Shopify store
(the app installed through the Shopify simulator's consent, LibreDTE tested against its simulator, the rules'
live preview, the simulated test sale, activation) → the same merchant also sells on marketplaces through
Multivende, so a second gateway: "Nueva pasarela", "Conectar BillMySales con Multivende" against the Multivende
simulator, the LibreDTE biller it already has, rules, test sale, activation, and the gateway's webhook address
pasted in Multivende → a paid Shopify order, delivered signed by the simulator, appears on the open orders page
and turns "Emitida" without a reload, and so does a paid Multivende sale → its PDF downloads → once the SII has
accepted the boleta, the store's refund becomes a credit note shown on the order page → with LibreDTE out of
boleta folios an order fails saying why in Spanish, and after loading folios "Reintentar" issues it.

LibreDTE is simulated as a server that sends boletas to the SII (libredte.cl, or a Community Edition with API
Gateway): LibreDTE refuses a credit note for a boleta never sent to the SII, or whose SII verdict is not known
yet (tests/billers/test_libredte_e2e.py shows that refusal). The SII's verdict is read by the beat's periodic
task; here the test runs that tick once (``documents_sii_status_due``) and the worker asks LibreDTE.

Each main page is photographed at 1280 px and at 390 px into ``var/screenshots/<test name>/`` (ignored by
git); at 390 px no page may scroll sideways, and no page may break the Content-Security-Policy."""
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.core import mail
from playwright.sync_api import expect

from gateways import services
from gateways.models import Document, DocumentKind, Gateway, Order, OrderStatus, SiiStatus
from simulators.libredte import DEFAULT_HASH, LibreDTESimulator
from simulators.multivende import MultivendeSimulator
from simulators.shopify import App, ShopifySimulator
from tests.browser import SCREENSHOTS, chromium, csp_errors, photograph, wait_for
from tests.gateways.resilience_helpers import free_port
from tests.simulators.control import control, sim_state

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOP = "demo-cl.myshopify.com"
EMISOR = "76.192.083-9"  # the LibreDTE simulator's company, which is also the merchant's
PASSWORD = "Clave-Segura-2026"
MULTIVENDE_CLIENT = {"BMS_MULTIVENDE_CLIENT_ID": "1234", "BMS_MULTIVENDE_CLIENT_SECRET": "sim-multivende-secret"}


@pytest.fixture
def shopify(live_server):
    app = App(client_id="bms-journey-client", client_secret="bms-journey-secret",
              app_url=f"{live_server.url}/connect/shopify/install/", redirect_urls=[f"{live_server.url}/connect/shopify/callback/"])
    with ShopifySimulator(app=app) as simulator:
        yield simulator


@pytest.fixture
def multivende(live_server):
    with MultivendeSimulator(redirect_uris=[f"{live_server.url}/connect/multivende/callback/"]) as simulator:
        yield simulator


@pytest.fixture
def libredte():
    # A LibreDTE that sends boletas to the SII; the SII decides on the first status read.
    with LibreDTESimulator(port=free_port(), boleta_track_id=True, reads_until_final=0) as simulator:
        yield simulator


@pytest.fixture
def our_settings(live_server, settings, shopify, multivende) -> dict[str, str]:
    """The app's settings for the simulators, in this process (the web) and for the worker's environment."""
    values = {
        "BMS_PUBLIC_URL": live_server.url,
        "BMS_SHOPIFY_CLIENT_ID": shopify.app.client_id, "BMS_SHOPIFY_CLIENT_SECRET": shopify.app.client_secret,
        "BMS_SHOPIFY_SHOP_URL_TEMPLATE": f"{shopify.url}/shops/{{shop}}",
        "BMS_MULTIVENDE_BASE_URL": multivende.url, **MULTIVENDE_CLIENT,
    }
    for name, value in values.items():
        setattr(settings, name, value)
    return values


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        yield browser


@pytest.fixture
def screenshots(request):
    folder = SCREENSHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def delivered(answer: dict) -> None:
    statuses = [delivery["status"] for delivery in answer["deliveries"]]
    assert statuses and set(statuses) == {200}, answer["deliveries"]


@pytest.mark.timeout(300)
def test_a_merchant_signs_up_sets_up_two_stores_and_bills_live_orders(
    live_server, browser, our_settings, shopify, multivende, libredte, celery_worker_process, purge_broker, screenshots
):
    # The worker starts while the merchant signs up; what the web queues meanwhile waits in the broker.
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(celery_worker_process, name="journey", **our_settings)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900}, locale="es-CL")
        page = context.new_page()
        page.set_default_timeout(20_000)
        refused_by_csp = csp_errors(page)

        # 1. Sign up, confirm by the e-mailed link, create the first account.
        page.goto(f"{live_server.url}/login/")
        page.click("text=Cree uno")
        page.fill("#id_full_name", "Ana Pérez")
        page.fill("#id_email", "ana@tienda.cl")
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        photograph(page, screenshots, "01-registro")
        page.click("main button[type=submit]")
        expect(page.locator("#verification-sent")).to_be_visible()
        [message] = mail.outbox
        link = re.search(r"https?://\S+/auth/confirm-email/\S+/", message.body).group(0)
        page.goto(link)
        page.click("#email-confirm button[type=submit]")
        expect(page.locator("main")).to_contain_text("Cree su cuenta")
        page.fill("#id_name", "Tienda de Ana SpA")
        page.fill("#id_rut", EMISOR)
        photograph(page, screenshots, "02-primera-cuenta")
        page.click("main button[type=submit]")
        expect(page.locator("body")).to_contain_text("Cuenta Tienda de Ana SpA creada")
        assert page.url == f"{live_server.url}/"
        photograph(page, screenshots, "03-inicio-vacio")

        # 2. The wizard for the Shopify store. It starts at step 2: step 1 (the account's name and RUT) was done
        # when the account was created; the merchant looks at it from the stepper and comes back.
        page.click("header nav >> text=Facturación")
        expect(page.locator("h1")).to_contain_text("Pasarelas de facturación")
        photograph(page, screenshots, "04-pasarelas-vacio")
        page.click("#gateway-new")
        expect(page.locator("main h2")).to_contain_text("Paso 2: el origen de datos")
        page.click("text=1 Cuenta (hecho)")
        expect(page.locator("#id_rut")).to_have_value("76.192.083-9")
        photograph(page, screenshots, "05-asistente-1-cuenta")
        page.click("#account-save")
        expect(page.locator("main")).to_contain_text("Cuenta guardada.")

        # Step 2: the data source, the app installed through Shopify's consent screen, and back here.
        page.select_option("#id_platform", "shopify")
        page.fill("#connect-shopify-shop", "demo-cl")
        page.fill("#connect-shopify-name", "Tienda Shopify Chile")
        photograph(page, screenshots, "06-asistente-2-origen-tipo")
        page.click("#connect-shopify")
        report = page.locator("#setup-source-current .bms-report")
        expect(report).to_contain_text("Acceso a la tienda")
        expect(report).to_contain_text("responde con el token guardado")
        expect(page.locator("#setup-source-current")).to_contain_text("Tienda Shopify Chile")
        photograph(page, screenshots, "07-asistente-2-origen")
        page.click("#setup-source-continue")

        # Step 3: LibreDTE in certification, tested against its simulator.
        page.select_option("#id_provider", "libredte")
        page.fill("#id_name", "LibreDTE Empresa Demo")
        page.fill("#id_emisor_rut", EMISOR)
        page.fill("#id_emisor_razon_social", "Empresa Demo SpA")
        page.fill("#id_emisor_giro", "Venta al por menor por internet")
        page.fill("#id_emisor_acteco", "479100")
        page.fill("#id_emisor_address", "Av. Libertador Bernardo O'Higgins 1449")
        page.fill("#id_emisor_comuna", "Santiago")
        page.fill("#id_credentials__api_hash", DEFAULT_HASH)
        page.click("#biller-form details summary")
        page.fill("#id_config__base_url", libredte.url)
        photograph(page, screenshots, "08-asistente-3-facturador-datos")
        page.click("#biller-save")
        expect(page.locator(".bms-report")).to_contain_text(
            "El hash es válido y el usuario puede operar con la empresa RUT 76192083-9 en LibreDTE")
        expect(page.locator("main")).to_contain_text("Pasarela «Tienda Shopify Chile» creada")
        photograph(page, screenshots, "09-asistente-3-facturador")
        page.click("#setup-biller-continue")

        # Step 4: the rules, the preview live as the form changes.
        expect(page.locator("#rules-preview-verdict")).to_contain_text("Este pedido recibiría boleta electrónica (39)")
        page.fill("#id_min_amount", "90000000")
        expect(page.locator("#rules-preview-verdict")).to_contain_text("No se emitiría")
        page.fill("#id_min_amount", "0")
        expect(page.locator("#rules-preview-verdict")).to_contain_text("recibiría")
        photograph(page, screenshots, "10-asistente-4-reglas")
        page.click("#rules-save")

        # Step 5: the simulated test sale, through the real pipeline and LibreDTE in certification.
        expect(page.locator("#setup-live")).to_contain_text("Esperando una compra")
        page.click("#setup-simulate")
        expect(page.locator("#setup-test-report")).to_contain_text("Venta de prueba correcta.")
        assert page.locator("#setup-test-report li strong").all_inner_texts() == [
            "Facturador en certificación", "Orden de prueba recibida", "Reglas", "Emisión", "Cuadre"]
        photograph(page, screenshots, "11-asistente-5-prueba")
        page.click("#setup-test-continue")

        # Step 6: activation, allowed by the passing test.
        expect(page.locator("#setup-activate-test")).to_contain_text("correcta")
        photograph(page, screenshots, "12-asistente-6-activar")
        page.click("#activate")
        expect(page.locator("main")).to_contain_text("Pasarela «Tienda Shopify Chile» activada")
        photograph(page, screenshots, "13-pasarela-shopify")
        store = Gateway.objects.get(name="Tienda Shopify Chile")
        assert (store.source.platform, store.biller.provider, store.active) == ("shopify", "libredte", True)

        # 3. The marketplaces, through Multivende: a second gateway sharing the LibreDTE biller.
        page.click("header nav >> text=Facturación")
        page.click("#gateway-new")
        page.select_option("#id_platform", "multivende")
        page.fill("#connect-multivende-name", "Marketplaces Multivende")
        photograph(page, screenshots, "14-asistente-2-origen-multivende-tipo")
        page.click("text=Conectar BillMySales con Multivende")
        expect(page.locator("main")).to_contain_text(
            "Multivende conectado: cuenta Comercializadora Andina SpA, origen «Marketplaces Multivende».")
        expect(page.locator("#setup-source-current")).to_contain_text("Marketplaces Multivende")
        expect(page.locator("#setup-source-current")).to_contain_text("Cuenta autorizada")
        expect(page.locator("#setup-source-current dd.bms-mono", has_text="checkouts")).to_have_text("read:checkouts, write:checkouts")
        expect(page.locator("#setup-source-current .bms-report")).to_contain_text("Lectura de ventas")
        photograph(page, screenshots, "15-asistente-2-origen-multivende")
        page.click("#setup-source-continue")
        expect(page.locator("#id_connection option:checked")).to_have_text("LibreDTE Empresa Demo (LibreDTE (beta), Certificación)")
        photograph(page, screenshots, "16-asistente-3-facturador-existente")
        page.click("text=Usar este y continuar")
        expect(page.locator("main")).to_contain_text("Pasarela «Marketplaces Multivende» creada")
        page.click("#setup-biller-continue")
        expect(page.locator("#rules-preview-verdict")).to_contain_text("recibiría")
        page.click("#rules-save")
        page.click("#setup-simulate")
        expect(page.locator("#setup-test-report")).to_contain_text("Venta de prueba correcta.")
        page.click("#setup-test-continue")
        page.click("#activate")
        expect(page.locator("main")).to_contain_text("Pasarela «Marketplaces Multivende» activada")
        # Multivende has no API to subscribe webhooks: the merchant pastes the gateway's address in its app.
        hooks_url = page.locator("dt:has-text('Dirección de webhooks') + dd").inner_text().strip()
        assert hooks_url.startswith(f"{live_server.url}/hooks/"), hooks_url
        control(multivende, "/settings", callback_url=hooks_url)
        marketplaces = Gateway.objects.get(name="Marketplaces Multivende")
        assert (marketplaces.source.platform, marketplaces.biller_id, marketplaces.active) == ("multivende", store.biller_id, True)

        worker = starting.result()

    # 4. Paid orders arrive while the orders page is open: they appear and turn "Emitida" without a reload.
    page.click("header nav >> text=Órdenes")
    expect(page.locator("h1")).to_contain_text("Órdenes")
    page.evaluate("window.bmsNotReloaded = true")
    # The worker subscribed the store's webhooks when the gateway was created.
    wait_for(lambda: sim_state(shopify)["shops"][SHOP]["subscriptions"], describe=worker.log)
    answer = control(shopify, f"/shops/{SHOP}/orders", count=1, document="boleta")
    delivered(answer)
    [paid] = answer["orders"]
    row = page.locator("#order-rows tr.order-row", has_text=paid["name"])
    expect(row.locator(".badge.st-issued")).to_have_text("Emitida", timeout=45_000)
    # A marketplace sale made now (the simulator's default is 8 minutes ago: before activation, so not billed).
    answer = control(multivende, "/checkouts", count=1, document="boleta", sold_at=datetime.now(UTC).isoformat())
    delivered(answer)
    [checkout] = answer["checkouts"]
    sale = wait_for(lambda: Order.objects.filter(gateway=marketplaces, external_id=checkout["_id"]).first(), describe=worker.log)
    expect(page.locator(f"#order-{sale.pk} .badge.st-issued")).to_have_text("Emitida", timeout=45_000)
    assert page.evaluate("window.bmsNotReloaded === true"), "the orders page was reloaded"
    expect(page.locator(f"#order-{sale.pk}")).to_contain_text("Marketplaces Multivende")
    expect(row).to_contain_text("Tienda Shopify Chile")
    expect(row.locator(".order-documents")).to_contain_text("Boleta electrónica N°")
    photograph(page, screenshots, "17-ordenes")

    # 5. The order's page: its document, and the PDF downloads.
    row.locator("a").first.click()
    expect(page.locator("#order-status")).to_have_text("Emitida")
    expect(page.locator("#reasons")).to_contain_text("Pedido pagado.")
    order = Order.objects.get(gateway=store, external_id=str(paid["id"]))
    boleta = order.documents.get()
    document_row = page.locator(f"#document-{boleta.pk}")
    expect(document_row).to_contain_text("Boleta electrónica")
    expect(document_row.locator("td.folio")).to_have_text(str(boleta.folio))
    expect(document_row.locator(".sii-status")).to_contain_text("Enviado al SII, en revisión")
    with page.expect_download() as download:
        page.click(f"#document-{boleta.pk} a.document-pdf")
    assert download.value.suggested_filename == f"DTE_T39_F{boleta.folio}.pdf"
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    # 6. The SII accepts the boleta (the beat's periodic status check, run once here; the worker asks LibreDTE).
    services.documents_sii_status_due()
    wait_for(lambda: Document.objects.filter(pk=boleta.pk, sii_status=SiiStatus.ACCEPTED).exists(), describe=worker.log)
    page.reload()
    expect(page.locator(f"#document-{boleta.pk} .sii-status")).to_contain_text("Aceptado por el SII")

    # 7. The store refunds the whole order: a credit note, shown on the order page.
    lines = [{"line_item_id": line["id"], "quantity": line["quantity"]} for line in paid["line_items"]]
    delivered(control(shopify, f"/shops/{SHOP}/orders/{paid['id']}/refund", line_items=lines, shipping=True, note="Devolución"))
    note = wait_for(lambda: Document.objects.filter(order=order, kind=DocumentKind.CREDIT_NOTE).first(), describe=worker.log)
    page.reload()
    credit = page.locator(f"#document-{note.pk}")
    expect(credit).to_contain_text("Nota de crédito electrónica")
    expect(credit).to_contain_text(f"sobre Boleta electrónica N° {boleta.folio}")
    assert note.mnt_total == boleta.mnt_total
    photograph(page, screenshots, "18-orden")

    # 8. LibreDTE runs out of boleta folios: the next order fails, saying why in Spanish.
    folios = sim_state(libredte)["folios"]["76192083:39:1"]
    control(libredte, "/folios", rut=EMISOR, dte=39, certificacion=1, hasta=folios["siguiente"] - 1)
    answer = control(shopify, f"/shops/{SHOP}/orders", count=1, document="boleta")
    delivered(answer)
    [unlucky] = answer["orders"]
    failed = wait_for(lambda: Order.objects.filter(gateway=store, external_id=str(unlucky["id"]), status=OrderStatus.FAILED).first(),
                      describe=worker.log)
    page.click("header nav >> text=Órdenes")
    page.select_option("#id_status", "failed")
    page.click("#order-filters button[type=submit]")
    failed_row = page.locator(f"#order-{failed.pk}")
    expect(failed_row).to_contain_text("LibreDTE no tiene folios disponibles para boleta electrónica (39)")
    page.click(f"#order-{failed.pk} a")
    expect(page.locator("#order-status")).to_have_text("Fallida")
    reason = page.locator("#status-reason")
    expect(reason).to_contain_text("LibreDTE no tiene folios disponibles para boleta electrónica (39) o el CAF venció")
    expect(reason).to_contain_text("cargue folios para boleta electrónica (39) en LibreDTE y reintente")
    photograph(page, screenshots, "19-orden-fallida")
    # The merchant loads folios in LibreDTE and retries.
    control(libredte, "/folios", rut=EMISOR, dte=39, certificacion=1, hasta=folios["siguiente"] + 1000)
    page.click("#action-retry")
    expect(page.locator("#order-status")).to_have_text("Emitida", timeout=45_000)
    failed.refresh_from_db()
    assert failed.status == OrderStatus.ISSUED

    # 9. The other main pages.
    page.click("header nav >> text=Documentos")
    rows = page.evaluate("[...document.querySelectorAll('#document-table tbody tr')]"
                         ".map(row => [...row.cells].map(cell => cell.innerText.trim()))")
    retried = failed.documents.get()
    # Newest first: the retried boleta, the credit note, the marketplace sale, the store's sale, then the two test sales.
    assert [(row[1], row[2], row[4], row[5]) for row in rows[:4]] == [
        ("Boleta electrónica", str(retried.folio), failed.number, "Tienda Shopify Chile"),
        ("Nota de crédito electrónica", str(note.folio), order.number, "Tienda Shopify Chile"),
        ("Boleta electrónica", str(sale.documents.get().folio), sale.number, "Marketplaces Multivende"),
        ("Boleta electrónica", str(boleta.folio), order.number, "Tienda Shopify Chile"),
    ], rows
    assert [(row[5], row[6]) for row in rows[4:]] == [("Marketplaces Multivende", "certificación"), ("Tienda Shopify Chile", "certificación")]
    photograph(page, screenshots, "20-documentos")
    page.click("header nav >> text=Inicio")
    expect(page.locator("#failures")).to_contain_text("Ninguna orden falló ni quedó retenida en este período.")
    photograph(page, screenshots, "21-inicio")
    page.click("header nav >> text=Facturación")
    expect(page.locator("#gateway-table")).to_contain_text("Marketplaces Multivende")
    photograph(page, screenshots, "22-pasarelas")
    page.click("header nav >> text=Configuración")
    expect(page.locator("h1")).to_contain_text("Configuración Tienda de Ana SpA")
    expect(page.locator("#id_rut")).to_have_value("76.192.083-9")
    photograph(page, screenshots, "23-configuracion")

    assert refused_by_csp == []
    assert len(list(screenshots.glob("*.png"))) == 2 * 23
