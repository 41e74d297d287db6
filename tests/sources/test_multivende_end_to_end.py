"""Multivende end to end over real HTTP against the in-process MultivendeSimulator (OAuth with rotating tokens,
the 2-hour window, 5 requests per second, documents with PDF upload, webhook hints).

Connect from the dashboard → the poll finds the paid checkouts of the last hours, window by window → the
Sandbox biller issues each once → the simulator shows each document created on its checkout with its PDF.
Then: an access token Multivende expired early is renewed once; a lapsed refresh token asks to reconnect
and reconnecting resumes; a webhook hint sent by the simulator to a live server is re-read and stored.
The pipeline runs in-process with the same services the workers run."""
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.messages import get_messages

from billers.models import SandboxDocument
from gateways import polling, services
from gateways.models import Document, InboundEvent, Order, SideEffect
from gateways.side_effects import document_side_effects_run
from simulators.multivende import MultivendeSimulator
from sources.models import SourceConnection
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.simulators.control import control, sim_state

PUBLIC = "http://testserver"
CALLBACK = f"{PUBLIC}/connect/multivende/callback/"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sim(settings):
    with MultivendeSimulator(redirect_uris=[CALLBACK]) as simulator:
        settings.BMS_PUBLIC_URL = PUBLIC
        settings.BMS_MULTIVENDE_BASE_URL = simulator.url
        settings.BMS_MULTIVENDE_CLIENT_ID = "1234"
        settings.BMS_MULTIVENDE_CLIENT_SECRET = "sim-multivende-secret"
        settings.BMS_MULTIVENDE_SCOPES = ["read:checkouts", "write:checkouts"]
        yield simulator


def connect(client, sim, **form) -> list[str]:
    """The merchant's browser: our button → Multivende's consent → back to our callback; the messages shown."""
    start = client.post("/connect/multivende/", {"name": "Multivende Andina", **form})
    assert start.status_code == 302, start.content.decode()
    consent = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["Location"])
    page = client.get(f"{back.path}?{back.query}")
    return [str(message) for message in get_messages(page.wsgi_request)]


def checkouts(sim, *, hours_ago: float, count: int = 1, **extra) -> list[dict]:
    updated = datetime.now(UTC) - timedelta(hours=hours_ago)
    return control(sim, "/checkouts", count=count, updated_at=updated.isoformat(), **extra)["checkouts"]


def drain(gateway) -> list[Document]:
    """What the workers would do: ingest every pending event, run the emissions, then the side effects."""
    for event_id in InboundEvent.objects.filter(gateway=gateway, status=InboundEvent.Status.PENDING).values_list("pk", flat=True):
        services.inbound_event_process(event_id=event_id)
    documents = []
    for order in Order.objects.filter(gateway=gateway):
        documents += run_pending(order)
    for document in documents:
        document_side_effects_run(document_id=document.pk)
    return documents


def poll(gateway) -> list[dict]:
    results = [polling.source_poll(source_id=gateway.source_id)]
    while results[-1].get("more"):
        results.append(polling.source_poll(source_id=gateway.source_id))
    return results


@pytest.fixture
def wired(db, sim, account, session_client):
    """A connected Multivende account whose gateway (Sandbox biller) last polled six hours ago."""
    assert connect(session_client, sim)[0].startswith("Multivende conectado: cuenta Comercializadora Andina SpA")
    source = SourceConnection.objects.get(account=account, platform="multivende")
    emitter = sim_state(sim)["merchants"][0]["emitter"]
    source.config = {**source.config, "provider": "billmysales", "emitter_id": emitter}
    source.save(update_fields=["config"])
    SourceConnection.objects.filter(pk=source.pk).update(last_polled_at=datetime.now(UTC) - timedelta(hours=6))
    return GatewayFactory(account=account, source=source)


def test_connect_poll_issue_once_and_upload_the_documents(wired, sim):
    paid = checkouts(sim, hours_ago=5.5, count=2, document="boleta") + checkouts(sim, hours_ago=3, document="factura") \
        + checkouts(sim, hours_ago=0.3, document="boleta")
    [pending] = checkouts(sim, hours_ago=1, document="boleta", payment_status="pending")

    poll(wired)
    documents = drain(wired)

    # Six hours and the overlap, in windows Multivende accepts (it refuses any over 2 hours with a 400).
    assert sim.counters["requests:checkouts_light"] == 4
    assert sim.counters["rate_limited"] == 0
    assert {document.order.external_id for document in documents} == {c["_id"] for c in paid}
    assert sorted(document.tipo_dte for document in documents) == [33, 39, 39, 39]
    assert not Order.objects.filter(gateway=wired, external_id=pending["_id"]).exists()  # comes back once paid
    uploaded = {d["CheckoutId"]: d for d in sim_state(sim)["documents"]}
    assert set(uploaded) == {c["_id"] for c in paid}
    for document in documents:
        record = uploaded[document.order.external_id]
        assert (record["id"], record["status"], record["type"]) == (str(document.folio), "uploaded", "electronic_billing_electronic_bill")
        assert record["ClientId"] == document.order.raw["Client"]["_id"]
        [stored] = record["ElectronicBillingDocumentFiles"]
        assert stored["name"] == f"{document.folio}.pdf" and 0 < stored["size"] <= 1024 * 1024
        effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
        assert effect.outcome == SideEffect.Outcome.DONE and "con su PDF" in effect.message

    # Polling the same hours again finds the same changes: nothing new is issued or uploaded.
    SourceConnection.objects.filter(pk=wired.source_id).update(last_polled_at=datetime.now(UTC) - timedelta(hours=6))
    poll(wired)
    assert drain(wired) == []
    assert SandboxDocument.objects.filter(connection=wired.biller).count() == 4
    assert len(sim_state(sim)["documents"]) == 4

    # The pending one, paid now, is issued by the next poll.
    control(sim, f"/checkouts/{pending['_id']}/pay")
    poll(wired)
    [late] = drain(wired)
    assert late.order.external_id == pending["_id"] and len(sim_state(sim)["documents"]) == 5


def test_an_access_token_expired_early_is_renewed_once_and_the_poll_goes_on(wired, sim):
    checkouts(sim, hours_ago=1, document="boleta")
    before = SourceConnection.objects.get(pk=wired.source_id).credentials
    control(sim, "/expire-tokens", access=True)

    poll(wired)

    source = SourceConnection.objects.get(pk=wired.source_id)
    assert source.status == SourceConnection.Status.ACTIVE and source.poll_failures == 0
    assert source.credentials["refresh_token"] != before["refresh_token"]
    refresh_tokens = sim_state(sim)["refresh_tokens"]
    assert [r["used"] for r in refresh_tokens] == [True, False]  # one renewal, the rotated token kept
    assert len(drain(wired)) == 1


def test_a_lapsed_refresh_token_asks_to_reconnect_and_reconnecting_resumes(wired, sim, session_client):
    [checkout] = checkouts(sim, hours_ago=1, document="boleta")
    control(sim, "/expire-tokens", access=True, refresh=True)

    poll(wired)

    source = SourceConnection.objects.get(pk=wired.source_id)
    assert source.status == SourceConnection.Status.RECONNECT
    assert "Refresh token expired" in source.status_message and "Vuelva a conectar" in source.status_message
    assert polling.source_poll(source_id=source.pk) == {"skipped": True}

    assert connect(session_client, sim, name="", connection=source.pk)[0].startswith("Multivende conectado")
    source.refresh_from_db()
    assert source.status == SourceConnection.Status.ACTIVE
    poll(wired)
    [document] = drain(wired)
    assert document.order.external_id == checkout["_id"]


@pytest.mark.django_db(transaction=True)
def test_a_webhook_hint_is_read_again_from_multivende_and_stored(sim, live_server, account, client, user, settings):
    client.force_login(user)
    assert connect(client, sim)[0].startswith("Multivende conectado")
    gateway = GatewayFactory(account=account, source=SourceConnection.objects.get(account=account, platform="multivende"))
    control(sim, "/settings", callback_url=f"{live_server.url}/hooks/{gateway.webhook_token}/")

    answer = control(sim, "/checkouts", count=1, document="boleta")

    [checkout] = answer["checkouts"]
    assert [delivery["status"] for delivery in answer["deliveries"]] == [200]
    event = InboundEvent.objects.get(gateway=gateway)
    assert event.delivery_id == f"checkout:{checkout['_id']}@{checkout['updatedAt']}"
    assert event.payload["gross"] == checkout["gross"] and event.payload["Client"] == checkout["Client"]
    assert sim_state(sim)["deliveries"][0]["CheckoutId"] == checkout["_id"]
