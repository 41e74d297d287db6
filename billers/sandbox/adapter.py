"""The built-in Sandbox biller: certification / offline issuing inside the product.

It does what a real biller does with our request: numbers the document from a per-account,
per-connection, per-type folio counter, builds and stamps the DTE with a test certificate and test
CAFs, and validates the XML against the SII schema (a schema error is a rejection). It keeps every
document it issued, with our reference, so an unknown outcome can be reconciled.

Like most real billers it does **not** de-duplicate on our reference: sending the same request twice
issues two documents. That keeps the pipeline honest — exactly-once is the pipeline's job — and makes
the Sandbox usable as the counting simulator in crash and failure tests.

Fault injection for tests and for trying the product out (``connection.config``):
``latency_ms`` (answer delay), ``fail_rate`` (share of calls answered with a transient error before
issuing), ``lost_answer_rate`` (share of calls that issue the document but answer with a transient
error, as when a timeout hides a success), and ``reject_all`` (a message to reject every document with).
"""
import logging
import random
import time

from django.db import transaction

from ..base import DocumentIssuer, IssuedDocument, IssueRequest, RejectedBillerError, TransientBillerError
from ..dte.errors import DteError, MappingRefused, SchemaUnavailable
from ..dte.mapping import build_document
from ..dte.credentials import test_signer
from ..dte.xml import build_dte_xml
from ..dte.xsd import validate_dte_xml
from ..models import FolioCounter, SandboxDocument
from ..selectors import biller_emisor

logger = logging.getLogger(__name__)


class SandboxIssuer(DocumentIssuer):
    def _fault(self, key: str) -> bool:
        rate = float(self.connection.config.get(key, 0) or 0)
        return rate > 0 and random.random() < rate

    def issue(self, request: IssueRequest) -> IssuedDocument:
        config = self.connection.config
        if config.get("latency_ms"):
            time.sleep(int(config["latency_ms"]) / 1000)
        if self._fault("fail_rate"):
            raise TransientBillerError("Sandbox: simulated 503 Service Unavailable", status=503)
        if config.get("reject_all"):
            raise RejectedBillerError(f"Sandbox: {config['reject_all']}", status=400)
        issued = self._issue(request)
        if self._fault("lost_answer_rate"):
            raise TransientBillerError("Sandbox: simulated read timeout after the document was issued")
        return issued

    @transaction.atomic
    def _issue(self, request: IssueRequest) -> IssuedDocument:
        tipo = request.sale.tipo_dte
        counter, _ = FolioCounter.objects.select_for_update().get_or_create(
            connection=self.connection, tipo_dte=tipo, defaults={"account_id": self.connection.account_id}
        )
        folio = counter.next_folio
        try:
            document = build_document(request.sale, emisor=biller_emisor(self.connection), folio=folio, fecha=request.fecha)
            xml = build_dte_xml(document, signer=test_signer(self.connection.emisor_rut, self.connection.emisor_razon_social))
        except MappingRefused as exc:
            raise RejectedBillerError(f"Documento rechazado: {exc.message}", status=422) from exc
        except DteError as exc:
            raise RejectedBillerError(f"Documento inválido: {exc}", status=422) from exc
        try:
            errors = validate_dte_xml(xml)
        except SchemaUnavailable as exc:
            logger.warning("account=%s sandbox issued DTE %s without schema validation: %s", self.connection.account_id, tipo, exc)
            errors = []
        if errors:
            listing = "; ".join(f"línea {e.line}: {e.message}" for e in errors[:5])
            raise RejectedBillerError(f"El XML no cumple el esquema del SII: {listing}", status=422)
        totals = document.encabezado.totales
        totals_json = {k: v for k, v in (("MntNeto", totals.mnt_neto), ("MntExe", totals.mnt_exe), ("IVA", totals.iva), ("MntTotal", totals.mnt_total)) if v is not None}
        counter.next_folio = folio + 1
        counter.save(update_fields=["next_folio"])
        SandboxDocument.objects.create(
            account_id=self.connection.account_id, connection=self.connection, reference=request.reference,
            tipo_dte=tipo, folio=folio, fecha=request.fecha, totals=totals_json, xml=xml,
        )
        return IssuedDocument(
            tipo_dte=tipo, folio=folio, fecha=request.fecha, totals=totals_json,
            biller_document_id=f"sandbox-{tipo}-{folio}", xml=xml,
        )

    def find_by_reference(self, reference: str) -> IssuedDocument | None:
        found = SandboxDocument.objects.filter(connection=self.connection, reference=reference).order_by("id").first()
        if found is None:
            return None
        return IssuedDocument(
            tipo_dte=found.tipo_dte, folio=found.folio, fecha=found.fecha, totals=found.totals,
            biller_document_id=f"sandbox-{found.tipo_dte}-{found.folio}", xml=bytes(found.xml),
        )
