"""Configuración > Webhooks: endpoints created with the secret shown once, changed, renewed and deleted; a test
event and a re-sent delivery reach a real receiver, and the page shows its status code and answer. Viewers
read only; another account's endpoint or delivery is a 404 on every action."""
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.models import Role
from accounts.services import Actor
from gateways import outbox
from gateways.models import WebhookDelivery, WebhookEndpoint
from gateways.services.webhook_endpoints import webhook_endpoint_create
from tests.accounts.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """An integrator's endpoint on loopback: answers with the queued (status, body) pairs, then 200 "ok"."""

    def __init__(self):
        self.answers, self.received = [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver.received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                status, body = receiver.answers.pop(0) if receiver.answers else (200, b"ok")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bms"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def endpoint(account, actor, receiver):
    return webhook_endpoint_create(account=account, actor=actor, url=receiver.url, events=["document.issued"])


@pytest.fixture
def other_endpoint(other_account):
    owner = other_account.memberships.get().user
    endpoint = webhook_endpoint_create(account=other_account, actor=Actor(user=owner, role=Role.OWNER),
                                       url="http://127.0.0.1:9/ajeno", events=["order.held"])
    outbox.webhook_test_event_send(endpoint=endpoint)
    return endpoint


@pytest.fixture
def viewer_client(client, account):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)
    return client


def run_pending() -> None:
    for delivery_id in WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).values_list("pk", flat=True):
        outbox.webhook_delivery_run(delivery_id=delivery_id)


def test_creating_an_endpoint_shows_its_secret_once(session_client, account, receiver):
    answer = session_client.post("/configuracion/webhooks/", {
        "url": receiver.url, "description": "ERP", "events": ["document.issued", "order.held"], "active": "on",
    })
    assert answer.status_code == 200
    endpoint = WebhookEndpoint.objects.get(account=account)
    secret = re.search(r'id="new-webhook-secret-value"[^>]*value="(whsec_\w+)"', answer.content.decode()).group(1)
    assert secret == endpoint.secret and endpoint.events == ["document.issued", "order.held"] and endpoint.active

    listing = session_client.get("/configuracion/webhooks/").content.decode()
    assert receiver.url in listing and secret not in listing and "Documento emitido, Orden retenida para revisión" in listing
    assert secret not in session_client.get(f"/configuracion/webhooks/{endpoint.pk}/").content.decode()


def test_a_private_address_and_no_events_are_refused_on_their_fields(session_client, settings):
    settings.BMS_INSECURE_HOSTS = []
    answer = session_client.post("/configuracion/webhooks/", {"url": "https://10.0.0.5/hooks"})
    assert answer.status_code == 400
    form = answer.context["form"]
    assert form.errors["events"] == ["Elija al menos un evento."]
    answer = session_client.post("/configuracion/webhooks/", {"url": "https://10.0.0.5/hooks", "events": ["order.held"]})
    assert answer.status_code == 400
    assert "dirección privada o local" in answer.context["form"].errors["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_send_a_test_event_and_see_the_status_code_and_answer(session_client, endpoint, receiver):
    receiver.answers.append((500, b"fallo interno del ERP"))
    assert session_client.post(f"/configuracion/webhooks/{endpoint.pk}/probar/").status_code == 302
    run_pending()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event_type == "webhook.test" and delivery.last_status_code == 500
    page = session_client.get(f"/configuracion/webhooks/{endpoint.pk}/").content.decode()
    assert "Evento de prueba" in page and "HTTP 500" in page and "fallo interno del ERP" in page and "Pendiente" in page

    # Re-send now (the receiver is fixed): same event id, delivered, the page says so.
    assert session_client.post(f"/configuracion/webhooks/entregas/{delivery.pk}/reenviar/").status_code == 302
    run_pending()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 2
    assert receiver.received[0][0]["BillMySales-Event-Id"] == receiver.received[1][0]["BillMySales-Event-Id"]
    page = session_client.get(f"/configuracion/webhooks/{endpoint.pk}/").content.decode()
    assert "HTTP 200" in page and "Entregado" in page


def test_change_renew_the_secret_and_delete(session_client, endpoint, account):
    answer = session_client.post(f"/configuracion/webhooks/{endpoint.pk}/", {"url": endpoint.url, "events": ["order.held"]})
    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["order.held"] and not endpoint.active

    old_secret = endpoint.secret
    answer = session_client.post(f"/configuracion/webhooks/{endpoint.pk}/secreto/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret
    assert re.search(r'value="(whsec_\w+)"', answer.content.decode()).group(1) == endpoint.secret

    assert session_client.post(f"/configuracion/webhooks/{endpoint.pk}/eliminar/")["Location"] == "/configuracion/webhooks/"
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    actions = list(account.audit_logs.values_list("action", flat=True))
    assert {"webhook_endpoint.update", "webhook_endpoint.rotate_secret", "webhook_endpoint.delete"} <= set(actions)


def test_a_viewer_reads_without_buttons_and_every_post_is_refused(viewer_client, endpoint):
    outbox.webhook_test_event_send(endpoint=endpoint)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    page = viewer_client.get(f"/configuracion/webhooks/{endpoint.pk}/").content.decode()
    assert endpoint.url in page and "Evento de prueba" in page
    assert "Reenviar" not in page and "Enviar evento de prueba" not in page and "Eliminar webhook" not in page
    assert "Agregar webhook" not in viewer_client.get("/configuracion/webhooks/").content.decode()
    posts = [
        ("/configuracion/webhooks/", {"url": "http://127.0.0.1:9/x", "events": ["order.held"]}),
        (f"/configuracion/webhooks/{endpoint.pk}/", {"url": endpoint.url, "events": ["order.held"]}),
        (f"/configuracion/webhooks/{endpoint.pk}/probar/", {}),
        (f"/configuracion/webhooks/{endpoint.pk}/secreto/", {}),
        (f"/configuracion/webhooks/{endpoint.pk}/eliminar/", {}),
        (f"/configuracion/webhooks/entregas/{delivery.pk}/reenviar/", {}),
    ]
    secret = endpoint.secret
    for url, data in posts:
        assert viewer_client.post(url, data).status_code == 403, url
    endpoint.refresh_from_db()
    assert endpoint.secret == secret and endpoint.events == ["document.issued"]
    assert WebhookEndpoint.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_another_accounts_endpoint_and_delivery_are_404(session_client, endpoint, other_endpoint):
    other_delivery = WebhookDelivery.objects.get(endpoint=other_endpoint)
    assert session_client.get(f"/configuracion/webhooks/{other_endpoint.pk}/").status_code == 404
    for url in (f"/configuracion/webhooks/{other_endpoint.pk}/", f"/configuracion/webhooks/{other_endpoint.pk}/probar/",
                f"/configuracion/webhooks/{other_endpoint.pk}/secreto/", f"/configuracion/webhooks/{other_endpoint.pk}/eliminar/",
                f"/configuracion/webhooks/entregas/{other_delivery.pk}/reenviar/"):
        assert session_client.post(url, {"url": "http://127.0.0.1:9/x", "events": ["order.held"]}).status_code == 404, url
    other_endpoint.refresh_from_db()
    assert other_endpoint.url == "http://127.0.0.1:9/ajeno" and WebhookDelivery.objects.filter(endpoint=other_endpoint).count() == 1
    listing = session_client.get("/configuracion/webhooks/").content.decode()
    assert endpoint.url in listing and "ajeno" not in listing
