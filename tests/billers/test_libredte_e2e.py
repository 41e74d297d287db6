"""LibreDTE end to end over real HTTP: the adapter against the in-process LibreDTE simulator (modelled on
LibreDTE's own code), and the whole pipeline on real Celery worker processes, PostgreSQL and Redis — a
signed store webhook becomes a document with LibreDTE's folio, PDF and XML; workers SIGKILLed between
emitir and generar, and after generar, leave exactly one document at LibreDTE per order; a LibreDTE
failing 30 % of its calls still issues every order once.

The simulator runs in the test process on one port for the module; the workers reach it over loopback.
What LibreDTE issued is read from the simulator itself (``sim.issued``), with the reference each
document carries in its ``extra``, and compared with the pipeline's ``Document`` rows.
"""
import datetime
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace
from typing import NamedTuple

import pytest
from lxml import etree

from billers.base import Checkpoint, IssueRequest, RejectedBillerError, TransientBillerError
from billers.dte.sale import Reference, Sale, SaleLine
from billers.dte.xml import verify_signatures
from billers.libredte.adapter import reference_of
from billers.registry import biller_adapter_for
from gateways import services
from gateways.models import Document, Emission, EmissionAttempt, EmissionStatus, OrderStatus, SiiStatus
from simulators import libredte as libredte_simulator
from simulators.libredte import DEFAULT_HASH, LibreDTESimulator
from sources.shopify.samples import sample_order
from tests.billers.contracts import boleta_sale, factura_sale
from tests.gateways.factories import GatewayFactory
from tests.gateways.resilience_helpers import (
    WEBHOOK_SECRET,
    all_invoices_settled,
    free_port,
    invoice_status_counts,
    sweep_until,
    wait_for,
    webhook_post,
)

pytestmark = pytest.mark.django_db(transaction=True)
EMISOR = 76192083
LEASE_SECONDS = 3
Outcome = EmissionAttempt.Outcome


@pytest.fixture(scope="module")
def simulator():
    with LibreDTESimulator(port=free_port()) as sim:
        yield sim


@pytest.fixture
def sim(simulator):
    simulator.reset()
    return simulator


@pytest.fixture
def gateway(account, sim):
    return GatewayFactory(
        account=account, name="Tienda → LibreDTE", source__credentials={"webhook_secret": WEBHOOK_SECRET},
        biller__name="LibreDTE", biller__provider="libredte", biller__emisor_rut="76192083-9",
        biller__emisor_razon_social="Empresa Demo SpA", biller__credentials={"api_hash": DEFAULT_HASH},
        biller__config={"base_url": sim.url},
    )


def issued_at_libredte(sim) -> dict[str, list]:
    """What LibreDTE issued, by the reference each document carries."""
    by_reference: dict[str, list] = {}
    with sim.lock:
        for doc in sim.issued.values():
            by_reference.setdefault(reference_of({"extra": doc.extra}), []).append(doc)
    return by_reference


def assert_each_order_issued_once(gateway, sim, expected: int) -> None:
    """Every order issued, one Document each, and exactly one LibreDTE document per reference with its folio."""
    at_libredte = issued_at_libredte(sim)
    assert {ref: len(docs) for ref, docs in at_libredte.items() if len(docs) != 1} == {}
    emissions = list(Emission.objects.filter(order__gateway=gateway).select_related("order", "document"))
    assert len(emissions) == expected and len(at_libredte) == expected
    for emission in emissions:
        assert (emission.status, emission.order.status) == (EmissionStatus.ISSUED, OrderStatus.ISSUED), emission.status_reason
        [doc] = at_libredte[emission.reference]
        assert (emission.document.tipo_dte, emission.document.folio, emission.document.mnt_total) == (doc.dte, doc.folio, doc.total)
    assert Document.objects.filter(order__gateway=gateway).count() == expected


# --- the adapter over real HTTP (no workers) -----------------------------------------------------------


@pytest.fixture
def adapter(gateway):
    return biller_adapter_for(gateway.biller)


def request_for(adapter, sale: Sale | None = None, reference: str = "bms-1-1-F1") -> IssueRequest:
    sale = sale or boleta_sale()
    fecha = datetime.date.today()
    return IssueRequest(sale=sale, reference=reference, fecha=fecha, prepared=adapter.check(sale, fecha=fecha))


@pytest.fixture
def frozen_second(monkeypatch):
    """LibreDTE's codigo is md5(md5(datos) . unix time): freeze the simulator's clock on one second."""
    second = float(int(time.time()))
    monkeypatch.setattr(libredte_simulator, "time", SimpleNamespace(time=lambda: second))


def test_identical_boletas_emitted_together_each_get_their_own_document(sim, adapter, settings, frozen_second):
    # Both temporary documents exist before either is generated, and the generar calls run together.
    settings.BMS_FAULT_PAUSES = {"between_steps": 0.3}
    references = [f"bms-1-{n}-F1" for n in range(1, 5)]
    with ThreadPoolExecutor(max_workers=len(references)) as pool:
        issued = dict(zip(references, pool.map(lambda ref: adapter.issue(request_for(adapter, reference=ref), Checkpoint()),
                                               references), strict=True))

    at_libredte = issued_at_libredte(sim)
    assert {ref: [doc.folio for doc in docs] for ref, docs in at_libredte.items()} == {
        ref: [document.folio] for ref, document in issued.items()}
    assert sim.tmps == {}


def test_without_our_code_a_shared_codigo_still_gives_each_its_document(sim, account, frozen_second):
    # Two identical boletas in the same second share LibreDTE's codigo: B's emitir replaces A's temporary
    # document, A's generar issues B's data (B's reference), B's generar finds the codigo gone.
    biller = GatewayFactory(account=account, biller__provider="libredte", biller__emisor_rut="76192083-9",
                            biller__credentials={"api_hash": DEFAULT_HASH},
                            biller__config={"base_url": sim.url, "referencia_en_dte": False}).biller
    adapter = biller_adapter_for(biller)
    first, second = Checkpoint(), Checkpoint()
    for reference, checkpoint in (("bms-1-1-F1", first), ("bms-1-2-F1", second)):
        sim.faults.add(route="generar", kind="status", status=503, times=1)
        with pytest.raises(TransientBillerError):
            adapter.issue(request_for(adapter, reference=reference), checkpoint)
    assert first.get("codigo") == second.get("codigo") and len(sim.tmps) == 1

    issued_first = adapter.issue(request_for(adapter, reference="bms-1-1-F1"), first)
    issued_second = adapter.issue(request_for(adapter, reference="bms-1-2-F1"), second)

    at_libredte = issued_at_libredte(sim)
    assert sorted(at_libredte) == ["bms-1-1-F1", "bms-1-2-F1"]
    assert [issued_first.folio] == [doc.folio for doc in at_libredte["bms-1-1-F1"]]
    assert [issued_second.folio] == [doc.folio for doc in at_libredte["bms-1-2-F1"]]
    assert sim.tmps == {}


def test_a_factura_is_sent_to_the_sii_and_followed_until_accepted(sim, adapter):
    issued = adapter.issue(request_for(adapter, factura_sale()), Checkpoint())
    assert (issued.tipo_dte, issued.sii_status) == (33, "sent") and issued.sii_track_id

    first = adapter.sii_status(tipo_dte=33, folio=issued.folio)
    second = adapter.sii_status(tipo_dte=33, folio=issued.folio)

    assert first[0] == "sent" and "REC - Envío Recibido" in first[1]
    assert second == ("accepted", f"EPR - Envío Procesado: DTE aceptado (track id {issued.sii_track_id})")
    xml = adapter.fetch_xml(tipo_dte=33, folio=issued.folio)
    assert etree.QName(etree.fromstring(xml)).localname == "DTE" and verify_signatures(xml) == []
    assert adapter.fetch_pdf(tipo_dte=33, folio=issued.folio).startswith(b"%PDF")


def test_a_boleta_the_community_edition_does_not_send_cannot_be_credited_and_says_why(sim, adapter):
    boleta = adapter.issue(request_for(adapter), Checkpoint())
    assert boleta.sii_status == "not_sent"
    assert adapter.sii_status(tipo_dte=39, folio=boleta.folio)[0] == "not_sent"
    note = Sale(
        tipo_dte=61, lines=(SaleLine(name="Polera algodón orgánico", quantity=Decimal(2), unit_price=Decimal(12990)),),
        paid_total=25980,
        references=(Reference(tipo_doc=39, folio=boleta.folio, fecha=boleta.fecha.isoformat(), cod_ref=3, razon="Devolución"),),
    )
    with pytest.raises(RejectedBillerError) as caught:
        adapter.issue(request_for(adapter, note, reference="bms-1-1-N1"), Checkpoint())
    assert "no fue enviado al SII" in caught.value.message and "API Gateway" in caught.value.message


def test_no_folios_left_says_which_to_load(sim, adapter):
    sim.add_company({**libredte_simulator.DEFAULT_COMPANY, "folios": {"33": 100, "39": {"desde": 1, "hasta": 5, "siguiente": 6}}})
    with pytest.raises(RejectedBillerError) as caught:
        adapter.issue(request_for(adapter), Checkpoint())
    assert "cargue folios para boleta electrónica (39) en LibreDTE" in caught.value.message


def test_connection_test_against_libredte(sim, adapter, account):
    report = adapter.test_connection()
    items = {item.label: item.ok for item in report.items}
    assert items["Hash de usuario y empresa"] is True and report.ok is True
    wrong = GatewayFactory(account=account, biller__provider="libredte", biller__emisor_rut="76086428-5",
                           biller__credentials={"api_hash": DEFAULT_HASH}, biller__config={"base_url": sim.url}).biller
    [item] = biller_adapter_for(wrong).test_connection().items
    assert item.ok is False and "no está registrada en LibreDTE" in item.detail


# --- the pipeline on real workers ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_store_order_becomes_a_libredte_document_with_its_pdf_and_xml(gateway, sim, celery_worker_process, purge_broker):
    payload = sample_order(number=8101)
    assert webhook_post(gateway, payload, "libredte-1") == 200
    worker = celery_worker_process(name="libredte")

    document = wait_for(
        lambda: Document.objects.filter(order__gateway=gateway).exclude(pdf=b"").exclude(xml=b"").first(),
        timeout=30, describe=worker.log,
    )

    [[issued]] = issued_at_libredte(sim).values()
    assert (document.tipo_dte, document.folio, document.mnt_total) == (39, issued.folio, issued.total)
    assert document.mnt_total == int(payload["total_price"].split(".")[0])
    assert (document.biller_document_id, document.sii_status, document.certification) == (f"T39F{issued.folio}", SiiStatus.NOT_SENT, True)
    assert reference_of({"extra": issued.extra}) == document.emission.reference
    assert bytes(document.pdf).startswith(b"%PDF")
    xml = bytes(document.xml)
    assert etree.fromstring(xml).findtext(".//{http://www.sii.cl/SiiDte}Folio") == str(issued.folio)
    assert verify_signatures(xml) == []
    assert sim.state()["temporales"] == 0
    assert list(EmissionAttempt.objects.filter(emission=document.emission).values_list("outcome", flat=True)) == ["success"]


CRASH_ORDERS = 3


class CrashPoint(NamedTuple):
    pause: str  # BMS_FAULT_PAUSES of the doomed worker
    reached: callable  # true once every order has stopped there
    temporales_at_crash: int
    issued_at_crash: int
    attempts: list  # the outcomes each emission's attempts end with


def _between_steps(gateway, sim) -> bool:
    saved = EmissionAttempt.objects.filter(emission__order__gateway=gateway, outcome=Outcome.PENDING, checkpoint__has_key="codigo")
    return len(sim.tmps) == CRASH_ORDERS and saved.exclude(checkpoint__codigo=None).count() == CRASH_ORDERS


def _after_generar(gateway, sim) -> bool:
    return len(sim.issued) == CRASH_ORDERS


CRASH_POINTS = {
    "between_emitir_and_generar": CrashPoint("between_steps=30", _between_steps, CRASH_ORDERS, 0, ["unknown", "success"]),
    "after_generar": CrashPoint("after_biller_answer=30", _after_generar, 0, CRASH_ORDERS, ["unknown", "reconciled"]),
}


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_worker_killed_mid_issue_leaves_exactly_one_document_at_libredte(
    gateway, sim, celery_worker_process, purge_broker, settings, point
):
    crash = CRASH_POINTS[point]
    doomed = celery_worker_process(name=f"doomed-{point}", concurrency=CRASH_ORDERS, BMS_EMISSION_LEASE_SECONDS=LEASE_SECONDS,
                                   BMS_FAULT_PAUSES=crash.pause)
    for number in range(CRASH_ORDERS):
        services.inbound_event_receive(gateway=gateway, delivery_id=f"crash-{point}-{number}", topic="orders/paid",
                                       payload=sample_order(number=8200 + number))
    wait_for(lambda: crash.reached(gateway, sim), timeout=30, describe=doomed.log)

    doomed.kill()
    assert (len(sim.tmps), len(sim.issued)) == (crash.temporales_at_crash, crash.issued_at_crash)
    assert not Document.objects.filter(order__gateway=gateway).exists()

    celery_worker_process(name=f"fresh-{point}", concurrency=2, BMS_EMISSION_LEASE_SECONDS=LEASE_SECONDS)
    settings.BMS_EMISSION_LEASE_SECONDS = LEASE_SECONDS
    settings.BMS_STUCK_AFTER_SECONDS = 1
    time.sleep(LEASE_SECONDS + 0.5)
    sweep_until(lambda: all_invoices_settled(gateway, CRASH_ORDERS), timeout=45, describe=lambda: invoice_status_counts(gateway))

    assert_each_order_issued_once(gateway, sim, CRASH_ORDERS)
    assert len(sim.tmps) == 0
    for emission in Emission.objects.filter(order__gateway=gateway):
        assert list(emission.attempts.order_by("number").values_list("outcome", flat=True)) == crash.attempts, emission.reference


FLAKY_ORDERS = 20


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_libredte_failing_30_percent_of_calls_still_issues_every_order_once(gateway, sim, celery_worker_process, purge_broker):
    # 20 % of all calls answer 503 before doing anything; 10 % of emitir and generar calls do their work
    # and lose the answer (a temporary document or an issued one the worker never hears about).
    sim.faults.add(route="*", kind="status", status=503, rate=0.2)
    sim.faults.add(route="emitir", kind="lost_answer", rate=0.1)
    sim.faults.add(route="generar", kind="lost_answer", rate=0.1)
    for name in ("flaky1", "flaky2"):
        celery_worker_process(name=name, concurrency=4, BMS_RETRY_DELAYS=",".join(["1"] * 16))
    for number in range(FLAKY_ORDERS):
        services.inbound_event_receive(gateway=gateway, delivery_id=f"flaky-{number}", topic="orders/paid",
                                       payload=sample_order(number=8300 + number))

    wait_for(lambda: all_invoices_settled(gateway, FLAKY_ORDERS), timeout=100, interval=0.5,
             describe=lambda: invoice_status_counts(gateway))

    assert_each_order_issued_once(gateway, sim, FLAKY_ORDERS)
    faults = Counter({key: n for key, n in sim.counters.items() if key.startswith("faults:")})
    assert sum(faults.values()) > 0, sim.counters
    outcomes = Counter(EmissionAttempt.objects.filter(emission__order__gateway=gateway).values_list("outcome", flat=True))
    assert outcomes[Outcome.TRANSIENT] > 0 and outcomes[Outcome.SUCCESS] + outcomes[Outcome.RECONCILED] == FLAKY_ORDERS, outcomes
