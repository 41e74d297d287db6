"""In a real browser (Debian's Chromium driven by Playwright, 390 px wide): sign up, open the confirmation link
from the mailbox, create the first account, land on the dashboard and invite someone; repeated wrong passwords
end on the Spanish lockout page; the API docs render. No page breaks the Content-Security-Policy on the way."""
import re

import pytest
from django.core import mail

from accounts.models import Membership, Role
from tests.browser import chromium, csp_errors

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "Clave-Segura-2026"


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 390, "height": 844}, locale="es-CL")


@pytest.mark.timeout(180)
def test_sign_up_confirm_first_account_lockout_and_api_docs(live_server, browser_page, tmp_path):
    page = browser_page
    refused_by_csp = csp_errors(page)

    # Sign up.
    page.goto(f"{live_server.url}/login/")
    page.click("text=Cree uno")
    page.fill("#id_full_name", "Ana Pérez")
    page.fill("#id_email", "ana@tienda.cl")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#verification-sent")

    # The confirmation link from the mailbox.
    [message] = mail.outbox
    link = re.search(r"https?://\S+/auth/confirm-email/\S+/", message.body).group(0)
    page.goto(link)
    page.click("#email-confirm button[type=submit]")

    # Signed in, with no account yet: the first account.
    page.wait_for_selector("text=Cree su cuenta")
    page.fill("#id_name", "Tienda de Ana SpA")
    page.fill("#id_rut", "76.086.428-4")
    page.click("main button[type=submit]")
    assert "no es un RUT válido" in page.inner_text(".invalid-feedback")
    page.fill("#id_rut", "76.086.428-5")
    page.screenshot(path=str(tmp_path / "first-account.png"), full_page=True)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Cuenta Tienda de Ana SpA creada")
    assert page.url == f"{live_server.url}/"
    assert "Tienda de Ana SpA" in page.inner_text("header")
    membership = Membership.objects.select_related("account").get(user__email="ana@tienda.cl")
    assert membership.role == Role.OWNER and membership.account.rut == "76086428-5"
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # Configuración > Miembros from the navigation: invite someone; the page fits a 390 px phone.
    page.click("header nav >> text=Configuración")
    page.click("text=Miembros")
    page.fill("#id_email", "bea@tienda.cl")
    page.select_option("#id_role", Role.ADMIN)
    page.click("text=Enviar invitación")
    page.wait_for_selector("#invitations >> text=bea@tienda.cl")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(tmp_path / "members.png"), full_page=True)

    # Sign out, then five wrong passwords: the lockout page.
    page.click("header summary")
    page.click("header button:has-text('Salir')")
    page.wait_for_selector("input[name=username]")
    for _ in range(5):
        page.fill("input[name=username]", "ana@tienda.cl")
        page.fill("input[name=password]", "no-es-la-clave")
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        if page.query_selector("#lockout"):
            break
        page.goto(f"{live_server.url}/login/")
    lockout = page.inner_text("#lockout")
    assert "Ingreso bloqueado" in lockout and "5 intentos fallidos" in lockout and "15 minutos" in lockout
    page.screenshot(path=str(tmp_path / "lockout.png"), full_page=True)

    # The API docs (Swagger UI) render under the same policy.
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "BillMySales API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock")
    page.screenshot(path=str(tmp_path / "api-docs.png"))

    assert refused_by_csp == []
