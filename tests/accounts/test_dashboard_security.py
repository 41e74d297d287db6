"""Content-Security-Policy on every page, and pages that need no exception to it: no inline script, no
style attribute or <style> block in what the dashboard renders. The API docs keep the policy (Swagger's
start-up script is a file; its one <style> is allowed by hash). HSTS in production."""
import base64
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail

from accounts.models import Role
from accounts.services import api_key_create, invitation_create
from gateways.services.webhook_endpoints import webhook_endpoint_create
from tests.accounts.factories import UserFactory
from tests.gateways.factories import GatewayFactory, OrderFactory

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.I)


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def assert_no_inline_code(url: str, html: str) -> None:
    assert not STYLE_ATTRIBUTE.search(html), (url, STYLE_ATTRIBUTE.search(html))
    assert "<style" not in html.lower(), url
    for attributes, body in SCRIPT.findall(html):
        assert "src=" in attributes and not body.strip(), (url, attributes, body[:80])
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), url  # no onclick= and friends


@pytest.mark.django_db
def test_the_policy_forbids_inline_scripts_and_styles(client):
    policy = directives(client.get("/login/"))
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_public_pages_render_without_inline_code(client, account, actor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(account=account, email="x@ejemplo.cl", role=Role.VIEWER, actor=actor,
                          accept_url="http://testserver/invitaciones/{token}/")
    invitation = re.search(r"/invitaciones/[\w-]+/", mail.outbox[-1].body).group(0)
    for url in ("/login/", "/auth/signup/", "/auth/password/reset/", "/auth/confirm-email/", invitation, "/invitaciones/otra/"):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert "Content-Security-Policy" in response
        assert_no_inline_code(url, response.content.decode())


@pytest.mark.django_db
def test_dashboard_pages_render_without_inline_code(session_client, account, actor):
    gateway = GatewayFactory(account=account)
    order = OrderFactory(account=account, gateway=gateway)
    endpoint = webhook_endpoint_create(account=account, actor=actor, url="http://127.0.0.1:9/x", events=["order.held"])
    api_key_create(account=account, name="ERP", scope="read", actor=actor)
    urls = ["/", "/orders/", f"/orders/{order.pk}/", f"/gateways/{gateway.pk}/", "/cuentas/nueva/",
            "/configuracion/cuenta/", "/configuracion/miembros/", "/configuracion/claves-api/", "/configuracion/auditoria/",
            "/configuracion/webhooks/", f"/configuracion/webhooks/{endpoint.pk}/", "/auth/password/change/"]
    for url in urls:
        response = session_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert_no_inline_code(url, response.content.decode())
    # Pages answering a POST: a new key shown once, a form with errors.
    for url, data in (("/configuracion/claves-api/", {"name": "otra", "scope": "write"}),
                      ("/configuracion/cuenta/", {"name": "", "rut": "1-1"})):
        assert_no_inline_code(url, session_client.post(url, data).content.decode())


@pytest.mark.django_db
def test_support_and_lockout_pages_render_without_inline_code(client, account, user, settings):
    client.force_login(UserFactory(is_staff=True))
    assert_no_inline_code("/support/", client.get("/support/").content.decode())
    assert_no_inline_code("support refused", client.post(f"/support/{account.pk}/open/", {"reason": ""}).content.decode())
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locked = client.post("/login/", {"username": user.email, "password": "mala"})
    assert locked.status_code == 429
    assert_no_inline_code("lockout", locked.content.decode())


@pytest.mark.django_db
def test_swagger_docs_load_their_script_from_a_file_and_their_one_style_by_hash(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = SCRIPT.findall(html)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = directives(response)
    assert policy["style-src"] == ["'self'", f"'sha256-{digest}'"] and policy["script-src"] == ["'self'"]
    init = client.get("/api/docs/?script=")
    assert init.status_code == 200 and "SwaggerUIBundle" in init.content.decode()


@pytest.mark.django_db
def test_redoc_alone_may_inject_styles(client):
    policy = directives(client.get("/api/redoc/"))
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"] and policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives(client.get("/login/"))["style-src"]


def production_settings(**overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="billmysales.settings.production", BMS_VAR_DIR="/tmp/bms-settings-test",
               SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEYS="dGVzdC1rZXktb25lLW5vdC1mb3ItcHJvZHVjdGlvbjE=",
               DATABASE_URL="postgres://bms:bms@127.0.0.1:5432/bms", REDIS_URL="redis://127.0.0.1:6379/0", **overrides)
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_production_hsts_is_a_year_without_subdomains_or_preload_unless_asked():
    assert production_settings().stdout.split() == ["31536000", "False", "False"]
    assert production_settings(SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_HSTS_PRELOAD="true").stdout.split() == [
        "31536000", "True", "True"]
    refused = production_settings(SECURE_HSTS_PRELOAD="true")
    assert refused.returncode != 0 and "SECURE_HSTS_PRELOAD needs SECURE_HSTS_INCLUDE_SUBDOMAINS" in refused.stderr

