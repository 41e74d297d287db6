"""The setup wizard in a real browser (Debian's Chromium driven by Playwright) over real HTTP against the
simulators: the account's RUT (refused, then right), the Shopify app installed through the simulator's
consent screen and back to the wizard, a LibreDTE biller tested against the LibreDTE simulator, the rules'
live preview, a test purchase in the simulated store watched live until its document is issued at LibreDTE,
the simulated test sale, and activation. Each step is photographed at
desktop width and at 390 px (a phone) into pytest's ``tmp_path``; at 390 px no page is wider than the screen."""
import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import expect

from gateways import services
from gateways.emission import emission_run
from gateways.models import Emission, EmissionStatus, Gateway, InboundEvent
from simulators.libredte import DEFAULT_HASH, LibreDTESimulator
from simulators.shopify import App, ShopifySimulator
from tests.browser import DESKTOP, chromium, photograph
from tests.gateways.resilience_helpers import free_port
from tests.simulators.control import control

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOP = "demo-cl.myshopify.com"


@pytest.fixture
def shopify(live_server, settings):
    app = App(client_id="bms-wizard-client", client_secret="bms-wizard-secret",
              app_url=f"{live_server.url}/connect/shopify/install/", redirect_urls=[f"{live_server.url}/connect/shopify/callback/"])
    with ShopifySimulator(app=app) as simulator:
        settings.BMS_SHOPIFY_CLIENT_ID, settings.BMS_SHOPIFY_CLIENT_SECRET = app.client_id, app.client_secret
        settings.BMS_SHOPIFY_SHOP_URL_TEMPLATE = f"{simulator.url}/shops/{{shop}}"
        settings.BMS_PUBLIC_URL = live_server.url
        yield simulator


@pytest.fixture
def libredte():
    with LibreDTESimulator(port=free_port()) as simulator:
        yield simulator


@pytest.fixture
def page(live_server, user, monkeypatch):

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    signed_in = Client()
    signed_in.force_login(user)
    with chromium() as browser:
        context = browser.new_context(viewport=DESKTOP, locale="es-CL")
        cookie = signed_in.cookies[django_settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page


def shop_control(simulator, path: str, **body) -> dict:
    return control(simulator, f"/shops/{SHOP}{path}", **body)


def work_off(gateway) -> None:
    """What the workers would do with the store's deliveries: read them and issue what is due."""
    for event_id in InboundEvent.objects.filter(gateway=gateway, status=InboundEvent.Status.PENDING).values_list("pk", flat=True):
        services.inbound_event_process(event_id=event_id)
    for emission_id in Emission.objects.filter(order__gateway=gateway, status=EmissionStatus.PENDING).values_list("pk", flat=True):
        emission_run(emission_id=emission_id)


@pytest.mark.timeout(240)
def test_the_wizard_from_a_new_account_to_an_active_gateway(live_server, page, account, shopify, libredte, tmp_path):
    account.rut = ""
    account.save()

    page.goto(f"{live_server.url}/gateways/")
    page.click("#gateway-new")

    # 1. The account: a RUT with a wrong check digit is refused on its field, then the right one is saved.
    page.wait_for_selector("#account-form")
    page.fill("#id_rut", "76.192.083-0")
    page.click("#account-save")
    assert "no es un RUT válido" in page.inner_text("#id_rut_error")
    photograph(page, tmp_path, "1-cuenta")
    page.fill("#id_rut", "76.192.083-9")
    page.click("#account-save")

    # 2. The data source: Shopify, installed through the simulator's consent screen, and back here.
    page.wait_for_selector("#source-type-form")
    page.select_option("#id_platform", "shopify")
    page.wait_for_selector("#connect-shopify-shop")
    page.fill("#connect-shopify-shop", "demo-cl")
    page.fill("#connect-shopify-name", "Tienda Shopify Chile")
    photograph(page, tmp_path, "2-origen-tipo")
    page.click("#connect-shopify")
    page.wait_for_selector("#setup-source-current")
    assert "Tienda Shopify Chile conectada" in page.inner_text("main") or "conectada como" in page.inner_text("main")
    report = page.wait_for_selector("#setup-source-current .bms-report")
    assert "Acceso a la tienda" in report.inner_text() and "responde con el token guardado" in report.inner_text()
    photograph(page, tmp_path, "2-origen")
    page.click("#setup-source-continue")

    # 3. The biller: LibreDTE in certification, the emisor up front, its answer in words.
    page.select_option("#id_provider", "libredte")
    page.wait_for_selector("#id_emisor_rut")
    page.fill("#id_name", "LibreDTE Empresa Demo")
    page.fill("#id_emisor_rut", "76.192.083-9")
    page.fill("#id_emisor_razon_social", "Empresa Demo SpA")
    page.fill("#id_emisor_giro", "Venta al por menor por internet")
    page.fill("#id_emisor_acteco", "479100")
    page.fill("#id_emisor_address", "Av. Libertador Bernardo O'Higgins 1449")
    page.fill("#id_emisor_comuna", "Santiago")
    page.fill("#id_credentials__api_hash", DEFAULT_HASH)
    page.click("#biller-form details summary")
    page.fill("#id_config__base_url", libredte.url)
    photograph(page, tmp_path, "3-facturador-datos")
    page.click("#biller-save")
    report = page.wait_for_selector(".bms-report")
    assert "El hash es válido y el usuario puede operar con la empresa RUT 76192083-9 en LibreDTE" in report.inner_text()
    photograph(page, tmp_path, "3-facturador")
    gateway = Gateway.objects.get(account=account)
    assert (gateway.source.platform, gateway.biller.provider, gateway.active) == ("shopify", "libredte", False)
    page.click("#setup-biller-continue")

    # 4. The rules, with the preview live as the form changes.
    verdict = page.wait_for_selector("#rules-preview-verdict")
    assert "Este pedido recibiría boleta electrónica (39)" in verdict.inner_text()
    page.fill("#id_min_amount", "90000000")
    expect(page.locator("#rules-preview-verdict")).to_contain_text("No se emitiría")
    page.fill("#id_min_amount", "0")
    expect(page.locator("#rules-preview-verdict")).to_contain_text("recibiría")
    photograph(page, tmp_path, "4-reglas")
    page.click("#rules-save")

    # 5. The test, both ways. (a) A test purchase in the store: the page waits for it live, then shows it arriving,
    # the rules' decision and the document issued at LibreDTE with its PDF.
    page.wait_for_selector("#setup-live")
    assert "Esperando una compra" in page.inner_text("#setup-live")
    photograph(page, tmp_path, "5-prueba-esperando")
    assert "suscritos" in services.gateway_webhooks_ensure(gateway_id=gateway.pk)
    [purchase] = shop_control(shopify, "/orders", count=1, document="boleta", order={"test": True})["orders"]
    work_off(gateway)
    expect(page.locator("#setup-live-order")).to_contain_text(f"Pedido N° {purchase['name']}", timeout=15_000)
    expect(page.locator("#setup-live-order")).to_contain_text("Emitida")
    expect(page.locator("#setup-live-pdf")).to_be_visible()
    assert "Dar la prueba por correcta" in page.inner_text("#setup-live-order")
    photograph(page, tmp_path, "5-prueba-tienda")
    # (b) A simulated order in the store's shape through the real pipeline and LibreDTE in certification.
    page.click("#setup-simulate")
    result = page.wait_for_selector("#setup-test-report")
    assert "Venta de prueba correcta." in result.inner_text(), result.inner_text()
    assert page.locator("#setup-test-report li strong").all_inner_texts() == [
        "Facturador en certificación", "Orden de prueba recibida", "Reglas", "Emisión", "Cuadre"]
    photograph(page, tmp_path, "5-prueba")
    page.click("#setup-test-continue")

    # 6. Activation, allowed by the passing test.
    page.wait_for_selector("#activate-form")
    assert "correcta" in page.inner_text("#setup-activate-test")
    photograph(page, tmp_path, "6-activar")
    page.click("#activate")
    page.wait_for_selector("#gateway-general-form")
    assert "activada" in page.inner_text("main")
    photograph(page, tmp_path, "7-pasarela")

    gateway.refresh_from_db()
    assert gateway.active and gateway.test_passed_at is not None
    # Two documents at LibreDTE: the store's test purchase and the simulated sale.
    assert sum(libredte.state()["issued"].values()) == 2
    for name in ("1-cuenta", "2-origen", "3-facturador", "4-reglas", "5-prueba", "6-activar"):
        assert (tmp_path / f"{name}-desktop.png").stat().st_size > 0 and (tmp_path / f"{name}-390.png").stat().st_size > 0


@pytest.mark.timeout(120)
def test_the_gateway_tabs_in_the_merchants_words(live_server, page, account, tmp_path):
    from tests.gateways.factories import GatewayFactory

    gateway = GatewayFactory(account=account, name="Tienda Demo Chile", active=False)
    page.goto(f"{live_server.url}/")
    page.click("nav >> text=Facturación")
    page.wait_for_selector("#gateway-table")
    assert "Pasarelas de facturación" in page.inner_text("h1")
    photograph(page, tmp_path, "lista")
    page.click("#gateway-table >> text=Editar")
    tabs = page.locator("#gateway-tabs a").all_inner_texts()
    assert tabs == ["General", "Origen de datos", "Facturador", "Reglas"]
    page.click("#tab-source")
    page.wait_for_selector("#source-form")
    photograph(page, tmp_path, "origen-de-datos")
    page.click("#tab-biller")
    page.wait_for_selector("#biller-form")
    photograph(page, tmp_path, "facturador")
    page.click("#tab-rules")
    page.wait_for_selector("#rules-preview-verdict")
    photograph(page, tmp_path, "reglas")
    page.click("#tab-general")
    # General: activating without a test asks for the owner's reason; the refusal is shown on the field.
    page.check("#id_active")
    page.click("#gateway-save")
    assert "Antes de activar" in page.inner_text("#id_active_error")
    page.check("#id_active")
    page.fill("#id_reason", "Probado a mano con el contador")
    page.click("#gateway-save")
    page.wait_for_selector("text=Cambios guardados.")
    photograph(page, tmp_path, "general")
    gateway.refresh_from_db()
    assert gateway.active is True
