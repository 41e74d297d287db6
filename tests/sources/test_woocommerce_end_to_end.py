"""WooCommerce end to end over real HTTP: the in-process WooCommerceSimulator (core's wc-auth, REST auth and
paging, signed deliveries with failure counting) talks to this app on a live server.

wc-auth → connection with verified keys → the gateway's webhooks registered → a signed delivery, or a
dropped one that the poll finds → the Sandbox biller issues once → the private note written back in the
store. Then a store that drops 30 % of its deliveries and duplicates 20 %: every paid order is issued
exactly once. The pipeline is driven in-process with the same services the workers run."""
from urllib.parse import urlsplit

import pytest
import requests

from accounts.models import Role
from accounts.services import Actor
from gateways import polling, services
from gateways.models import Document, InboundEvent, Order, OrderStatus
from gateways.side_effects import document_side_effects_run
from simulators.woocommerce import WooCommerceSimulator
from sources.models import SourceConnection
from tests.billers.factories import BillerConnectionFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.simulators.control import control, sim_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def sim():
    with WooCommerceSimulator() as simulator:
        yield simulator


def connect(client, sim, name="Tienda Valpo") -> tuple[requests.Response, str]:
    """The merchant's browser: our start page → the store's approval (WooCommerce posts the keys to our
    callback meanwhile) → back to our return page. Returns the store's answer and our page."""
    start = client.post("/connect/woocommerce/", {"store_url": sim.url, "name": name})
    assert start.status_code == 302, start.content.decode()
    approval = requests.get(start["Location"], allow_redirects=False, timeout=90)
    assert approval.status_code == 302, approval.text
    back = urlsplit(approval.headers["Location"])
    page = client.get(f"{back.path}?{back.query}")
    return approval, page.content.decode()


@pytest.fixture
def wired(live_server, settings, sim, account, user, client, purge_broker):
    """A connected store whose gateway has its webhooks and passed its test sale, active."""
    settings.BMS_PUBLIC_URL = live_server.url
    client.force_login(user)
    _, page = connect(client, sim)
    assert "Tienda «Tienda Valpo» conectada" in page, page
    source = SourceConnection.objects.get(account=account, platform="woocommerce")
    actor = Actor(user=user, role=Role.OWNER)
    gateway = services.gateway_create(account=account, name="Valpo → Sandbox", source=source,
                                      biller=BillerConnectionFactory(account=account), actor=actor)
    assert "creado" in services.gateway_webhooks_ensure(gateway_id=gateway.pk)
    assert services.gateway_test_sale(gateway=gateway, actor=actor).ok
    gateway.refresh_from_db()
    services.gateway_activate(gateway=gateway, actor=actor)
    return gateway


def drain(gateway) -> list[Document]:
    """What the workers would do: ingest every pending event, run the emissions, then the side effects."""
    for event_id in InboundEvent.objects.filter(gateway=gateway, status=InboundEvent.Status.PENDING).values_list("pk", flat=True):
        services.inbound_event_process(event_id=event_id)
    documents = []
    for order in Order.objects.filter(gateway=gateway, is_test=False):
        documents += run_pending(order)
    for document in documents:
        document_side_effects_run(document_id=document.pk)
    return documents


def real_orders(gateway):
    return Order.objects.filter(gateway=gateway, is_test=False)


def test_connect_register_webhooks_deliver_issue_and_write_back(wired, sim):
    source = wired.source
    source.refresh_from_db()
    store = sim_state(sim)
    assert [entry["result"] for entry in store["auth"]] == ["granted"]
    assert source.status == SourceConnection.Status.ACTIVE and source.config == {"query_string_auth": False}
    hooks = store["webhooks"]
    assert sorted(h["topic"] for h in hooks) == ["order.created", "order.updated"]
    assert {(h["status"], h["delivery_url"], h["secret"]) for h in hooks} == {
        ("active", f"{services.gateway_webhook_url(wired)}", source.credentials["webhook_secret"])}
    # The creation pings were answered 200, so WooCommerce took the address.
    assert [d["status"] for d in store["deliveries"] if d["topic"] == "ping"] == [200, 200]

    created = control(sim, "/orders", count=1, document="boleta", status="processing")
    [order_json] = created["orders"]
    assert [d["status"] for d in created["deliveries"]] == [200]

    [document] = drain(wired)

    order = Order.objects.get(gateway=wired, external_id=str(order_json["id"]))
    assert order.status == OrderStatus.ISSUED and document.order == order
    assert InboundEvent.objects.get(gateway=wired, topic="order.created").payload["id"] == order_json["id"]
    [note] = sim_state(sim)["notes"][str(order_json["id"])]
    assert note["customer_note"] is False
    assert note["note"].startswith(f"Boleta electrónica N° {document.folio} por $")
    assert "billmysales:dte" in note["note"]


def test_a_dropped_webhook_is_found_by_the_poll_and_issued_once(wired, sim):
    control(sim, "/deliveries", drop_rate=1.0)
    [order_json] = control(sim, "/orders", count=1, document="boleta", status="processing")["orders"]
    assert not InboundEvent.objects.filter(gateway=wired, topic__startswith="order.").exists()

    result = polling.source_poll(source_id=wired.source_id)
    assert result["events"] == 1 and result["more"] is False
    assert len(drain(wired)) == 1
    # A second poll over the overlapping window finds the same change: nothing new.
    polling.source_poll(source_id=wired.source_id)

    order = real_orders(wired).get()
    assert (order.external_id, order.status) == (str(order_json["id"]), OrderStatus.ISSUED)
    assert Document.objects.filter(order=order).count() == 1
    assert len(sim_state(sim)["notes"][str(order_json["id"])]) == 1


def test_a_webhook_disabled_after_failed_deliveries_is_said_and_reactivated(wired, sim):
    source = wired.source
    right_secret = source.credentials["webhook_secret"]
    # Our end refuses the deliveries (say, a secret changed by hand): WooCommerce counts the failures.
    source.credentials = {**source.credentials, "webhook_secret": "not-the-one-registered"}
    source.save(update_fields=["credentials"])
    orders = control(sim, "/orders", count=7, document="boleta", status="processing")
    assert [d["status"] for d in orders["deliveries"]] == [401] * 7
    created_hook = next(h for h in sim_state(sim)["webhooks"] if h["topic"] == "order.created")
    assert created_hook["status"] == "disabled"
    source.credentials = {**source.credentials, "webhook_secret": right_secret}
    source.save(update_fields=["credentials"])

    polling.source_poll(source_id=wired.source_id)

    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ERROR
    assert f"desactivó el webhook order.created (n.º {created_hook['id']})" in source.status_message
    assert "se reactivó" in source.status_message
    assert next(h for h in sim_state(sim)["webhooks"] if h["topic"] == "order.created")["status"] == "active"
    # And the poll brought the seven orders the webhook never delivered.
    drain(wired)
    assert real_orders(wired).filter(status=OrderStatus.ISSUED).count() == 7


def test_a_lossy_duplicating_store_gets_every_paid_order_issued_exactly_once(wired, sim):
    control(sim, "/deliveries", drop_rate=0.3, duplicate_rate=0.2)
    created = control(sim, "/orders", count=40, document="boleta", status="processing")
    pending = control(sim, "/orders", count=5, document="boleta", status="pending")["orders"]
    # Some paid later (order.updated, with the same faults), some never paid.
    for order_json in pending[:3]:
        control(sim, f"/orders/{order_json['id']}/pay")
    deliveries = [d for d in sim_state(sim)["deliveries"] if d["topic"] != "ping"]
    assert any(d["dropped"] for d in deliveries) and any(d["duplicate"] for d in deliveries)

    paid = {str(o["id"]) for o in created["orders"]} | {str(o["id"]) for o in pending[:3]}
    drain(wired)
    by_webhooks = Document.objects.filter(order__gateway=wired, order__is_test=False).count()
    polling.source_poll(source_id=wired.source_id)
    drain(wired)

    # The webhooks alone left paid orders behind; the poll brought them.
    assert by_webhooks < len(paid) and InboundEvent.objects.filter(gateway=wired, topic="poll").exists()
    unpaid = {str(o["id"]) for o in pending[3:]}
    issued = set(Document.objects.filter(order__gateway=wired, order__is_test=False, kind="invoice")
                 .values_list("order__external_id", flat=True))
    assert issued == paid
    assert Document.objects.filter(order__gateway=wired, order__is_test=False, kind="invoice").count() == len(paid)
    assert set(real_orders(wired).filter(external_id__in=unpaid).values_list("status", flat=True)) <= {OrderStatus.WAITING}
    notes = sim_state(sim)["notes"]
    assert {order_id for order_id in notes if order_id in paid | unpaid} == paid
    assert all(len(notes[order_id]) == 1 for order_id in paid)


def test_a_host_that_drops_the_authorization_header_is_connected_with_the_keys_in_the_url(
        live_server, settings, sim, account, user, client):
    settings.BMS_PUBLIC_URL = live_server.url
    control(sim, "/settings", strip_authorization=True)
    client.force_login(user)

    _, page = connect(client, sim)

    assert "las claves van en la URL" in page
    source = SourceConnection.objects.get(account=account)
    assert source.config == {"query_string_auth": True} and source.status == SourceConnection.Status.ACTIVE
    from sources.registry import source_adapter_for

    assert source_adapter_for(source).test_connection().items[0].ok is True


def test_a_denied_authorization_stores_nothing(live_server, settings, sim, account, user, client):
    settings.BMS_PUBLIC_URL = live_server.url
    control(sim, "/settings", deny=True)
    client.force_login(user)

    _, page = connect(client, sim)

    assert "Se rechazó el acceso en WooCommerce; no se guardó nada." in page
    assert not SourceConnection.objects.filter(account=account).exists() and sim_state(sim)["keys"] == []
