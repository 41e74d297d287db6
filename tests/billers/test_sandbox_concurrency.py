"""The Sandbox biller's folios under concurrency: four processes issue 1,000 documents of each of two
types at once against the real PostgreSQL, and every type's folios come out 1..1000 — no gap, no
duplicate — while every XML validates against the SII schema and every TED and signature verifies.

Plain processes (forked, each with its own database connection) call the adapter's ``issue`` exactly
as an emission worker does, started together behind a barrier, with the two types interleaved so both
counters are contended at once. The folio is the Sandbox's own short transaction on its counter row
(``SandboxAdapter._reserve_folio``); nothing in the test serialises the processes.
"""
import datetime
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest
from django.db import connections
from lxml import etree

from billers.base import Checkpoint, IssueRequest
from billers.dte import build_document, build_dte_xml, credentials, validate_dte_xml, verify_signatures
from billers.dte.sale import Emisor
from billers.models import BillerConnection, FolioCounter, SandboxDocument
from billers.registry import biller_adapter_for
from tests.billers.contracts import boleta_sale, factura_sale
from tests.billers.factories import BillerConnectionFactory
from tests.shared import SHARED_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (SHARED_DIR / "sii" / "xsd" / "EnvioBOLETA_v11.xsd").is_file(), reason="needs the shared SII schemas"),
]

PROCESSES = 4
PER_TYPE = 1000
SALES = {39: boleta_sale(), 33: factura_sale()}
FECHA = datetime.date(2026, 11, 25)
SCHEMA_DIR = SHARED_DIR / "sii" / "xsd"
NS = {"s": "http://www.sii.cl/SiiDte"}


def _issue(connection_id: int, jobs: list[tuple[int, str]], barrier) -> None:
    """One process: prepare once per type (as ``check`` does when an emission is created), wait for the
    others, then issue its share of documents one after another."""
    try:
        adapter = biller_adapter_for(BillerConnection.objects.get(pk=connection_id))
        prepared = {tipo: adapter.check(sale, fecha=FECHA) for tipo, sale in SALES.items()}
        barrier.wait(timeout=60)
        for tipo, reference in jobs:
            request = IssueRequest(sale=SALES[tipo], reference=reference, fecha=FECHA, prepared=prepared[tipo])
            adapter.issue(request, Checkpoint())
    finally:
        connections.close_all()


def _problems(item: tuple[int, int, bytes]) -> list[str]:
    """What is wrong with one issued XML: schema errors, signature or TED failures, a folio not its own."""
    tipo, folio, xml = item
    problems = [f"schema line {e.line}: {e.message}" for e in validate_dte_xml(xml, schema_dir=SCHEMA_DIR)]
    problems += verify_signatures(xml)
    root = etree.fromstring(xml)
    printed = (root.findtext("s:Documento/s:Encabezado/s:IdDoc/s:Folio", namespaces=NS),
               root.findtext("s:Documento/s:TED/s:DD/s:F", namespaces=NS),
               root.findtext("s:Documento/s:TED/s:DD/s:TD", namespaces=NS))
    if printed != (str(folio), str(folio), str(tipo)):
        problems.append(f"folio/TED say {printed}, the row says type {tipo} folio {folio}")
    return [f"DTE {tipo} N° {folio}: {p}" for p in problems]


def test_four_processes_issue_1000_documents_per_type_with_folios_1_to_1000(account):
    connection = BillerConnectionFactory(account=account)
    # Build the signing material once before forking (RSA key generation), as a long-lived worker has it.
    credentials.test_signer(connection.emisor_rut, connection.emisor_razon_social)
    # Process k takes jobs k, k+4, k+8, …: each alternates boletas and facturas.
    jobs = [(39 if (n // PROCESSES) % 2 else 33, f"bms-concurrency-{n}") for n in range(2 * PER_TYPE)]
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(PROCESSES)
    # Children open their own connections: none may inherit the parent's socket.
    connections.close_all()
    workers = [fork.Process(target=_issue, args=(connection.pk, jobs[n::PROCESSES], barrier)) for n in range(PROCESSES)]

    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    issuing = time.monotonic() - started

    assert [worker.exitcode for worker in workers] == [0] * PROCESSES
    rows = list(SandboxDocument.objects.filter(connection=connection).values_list("tipo_dte", "folio", "reference", "xml"))
    assert len(rows) == 2 * PER_TYPE
    assert Counter(reference for _, _, reference, _ in rows) == Counter(reference for _, reference in jobs)
    for tipo in SALES:
        folios = sorted(folio for t, folio, _, _ in rows if t == tipo)
        assert folios == list(range(1, PER_TYPE + 1)), f"DTE {tipo}: gaps or duplicates"
    counters = dict(FolioCounter.objects.filter(connection=connection).values_list("tipo_dte", "next_folio"))
    assert counters == {39: PER_TYPE + 1, 33: PER_TYPE + 1}
    # They really ran at once: every process's folios of a type spread across the others' (no process ran alone).
    process_of = {reference: n % PROCESSES for n, (_, reference) in enumerate(jobs)}
    for tipo in SALES:
        spans = [
            [folio for t, folio, reference, _ in rows if t == tipo and process_of[reference] == n] for n in range(PROCESSES)
        ]
        assert all(max(span) - min(span) + 1 > len(span) for span in spans), f"DTE {tipo}: a process took a block alone"

    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=2, mp_context=fork) as pool:
        problems = [p for found in pool.map(_problems, [(t, f, bytes(x)) for t, f, _, x in rows], chunksize=50) for p in found]
    checking = time.monotonic() - started
    assert problems == []
    print(f"\n{2 * PER_TYPE} documents issued by {PROCESSES} processes in {issuing:.1f}s "
          f"({2 * PER_TYPE / issuing:.0f}/s); XML, TED and signatures checked in {checking:.1f}s")


def test_a_tampered_document_is_caught_by_the_checks():
    # The checks above can fail: a changed amount breaks the digest, a changed folio the TED and the folio match.
    signer = credentials.test_signer()
    emisor = Emisor(rut="76192083-9", razon_social="BillMySales Sandbox", giro="Comercio", acteco=479100)
    xml = build_dte_xml(build_document(SALES[39], emisor=emisor, folio=5, fecha=FECHA), signer=signer)
    assert _problems((39, 5, xml)) == []
    assert any("digest" in p for p in _problems((39, 5, xml.replace(b"<MntTotal>36960<", b"<MntTotal>36961<"))))
    assert any("the row says type 39 folio 6" in p for p in _problems((39, 6, xml)))
