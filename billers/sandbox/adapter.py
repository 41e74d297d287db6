"""The built-in Sandbox biller: certification / offline issuing inside the product.

It does what a real biller does with our request: numbers the document from a per-account,
per-connection, per-type folio counter, stamps and signs the DTE with a test certificate and test
CAFs, and validates the XML against the SII schema (a schema error is a rejection). It keeps every
document it issued, with our reference, so an unknown outcome can be reconciled.

Like most real billers it does **not** de-duplicate on our reference: sending the same request twice
issues two documents. That keeps the pipeline honest — exactly-once is the pipeline's job — and makes
the Sandbox usable as the counting simulator in crash and failure tests.

The folio is taken in its own short transaction (one UPDATE of the counter row), and the document is
built, signed and validated after that, with no row locked: concurrent issues of one type never wait
on each other's signing. A document that fails after its folio was taken leaves that folio unused,
as a real biller's burnt folio (logged with the account).

Fault injection for tests and for trying the product out (``connection.config``):
``latency_ms`` (answer delay), ``fail_rate`` (share of calls answered with a transient error before
issuing), ``lost_answer_rate`` (share of calls that issue the document but answer with a transient
error, as when a timeout hides a success), and ``reject_all`` (a message to reject every document with).
"""
import logging
import random
import time

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.spec import DECIMAL, INT, Field

from ..base import (
    BillerAdapter,
    Capability,
    CheckItem,
    Checkpoint,
    ConnectionReport,
    IssuedDocument,
    IssueRequest,
    RejectedBillerError,
    TransientBillerError,
)
from ..dte.credentials import test_signer
from ..dte.errors import DteError, SchemaUnavailable
from ..dte.types import BOLETA_AFECTA, BOLETA_EXENTA, FACTURA_AFECTA, FACTURA_EXENTA, NOTA_CREDITO, NOTA_DEBITO
from ..dte.xml import build_dte_xml
from ..dte.xsd import validate_dte_xml
from ..models import FolioCounter, SandboxDocument

logger = logging.getLogger(__name__)


class SandboxAdapter(BillerAdapter):
    provider = "sandbox"
    label = _("Sandbox (incluido, certificación)")
    document_types = frozenset({FACTURA_AFECTA, FACTURA_EXENTA, BOLETA_AFECTA, BOLETA_EXENTA, NOTA_DEBITO, NOTA_CREDITO})
    capabilities = frozenset({Capability.LOOKUP_BY_REFERENCE, Capability.FETCH_XML, Capability.TEST_CONNECTION})
    config_spec = (
        Field("latency_ms", _("Demora simulada (ms)"), INT, required=False, minimum=0, maximum=60_000),
        Field("fail_rate", _("Proporción de fallas transitorias simuladas"), DECIMAL, required=False, minimum=0, maximum=1),
        Field("lost_answer_rate", _("Proporción de respuestas perdidas simuladas"), DECIMAL, required=False,
              minimum=0, maximum=1),
        Field("reject_all", _("Rechazar todo con este mensaje"), required=False),
    )

    def _fault(self, key: str) -> bool:
        rate = float(self.connection.config.get(key, 0) or 0)
        return rate > 0 and random.random() < rate

    def build_payload(self, request: IssueRequest, prepared: dict) -> dict:
        return prepared

    def send(self, payload: dict, request: IssueRequest, checkpoint: Checkpoint) -> IssuedDocument:
        config = self.connection.config
        if config.get("latency_ms"):
            time.sleep(int(config["latency_ms"]) / 1000)
        if self._fault("fail_rate"):
            raise TransientBillerError(gettext("Sandbox: 503 Service Unavailable simulado."), status=503)
        if config.get("reject_all"):
            raise RejectedBillerError(f"Sandbox: {config['reject_all']}", status=400)
        issued = self._issue(payload, request)
        if self._fault("lost_answer_rate"):
            raise TransientBillerError(gettext("Sandbox: tiempo de espera simulado después de emitir el documento."))
        return issued

    def _reserve_folio(self, tipo: int) -> int:
        """The next folio of this connection and type: one ``UPDATE … RETURNING`` (its own transaction, the
        counter row locked only for that statement); the counter is created on the type's first document."""
        table, quote = FolioCounter._meta.db_table, connection.ops.quote_name
        sql = (f"UPDATE {quote(table)} SET next_folio = next_folio + 1 WHERE connection_id = %s AND tipo_dte = %s "
               "RETURNING next_folio - 1")
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.connection.pk, tipo])
            row = cursor.fetchone()
        if row is not None:
            return row[0]
        try:
            with transaction.atomic():
                FolioCounter.objects.create(
                    account_id=self.connection.account_id, connection=self.connection, tipo_dte=tipo, next_folio=2
                )
            return 1
        except IntegrityError:  # another issue of the type's first document created it first
            with connection.cursor() as cursor:
                cursor.execute(sql, [self.connection.pk, tipo])
                return cursor.fetchone()[0]

    def _issue(self, prepared: dict, request: IssueRequest) -> IssuedDocument:
        tipo = int(prepared["dte"]["Encabezado"]["IdDoc"]["TipoDTE"])
        folio = self._reserve_folio(tipo)
        try:
            document = self.prepared_document(prepared, folio=folio, fecha=request.fecha)
            xml = build_dte_xml(document, signer=test_signer(self.connection.emisor_rut, self.connection.emisor_razon_social))
            try:
                errors = validate_dte_xml(xml)
            except SchemaUnavailable as exc:
                logger.warning("account=%s sandbox issued DTE %s without schema validation: %s", self.connection.account_id, tipo, exc)
                errors = []
            if errors:
                listing = "; ".join(gettext("línea %(line)s: %(message)s") % {"line": e.line, "message": e.message} for e in errors[:5])
                raise RejectedBillerError(gettext("El XML no cumple el esquema del SII: %(errors)s") % {"errors": listing}, status=422)
        except DteError as exc:
            logger.warning("account=%s sandbox folio %s of DTE %s burnt: %s", self.connection.account_id, folio, tipo, exc)
            raise RejectedBillerError(gettext("Documento inválido: %(error)s") % {"error": exc}, status=422) from exc
        except RejectedBillerError:
            logger.warning("account=%s sandbox folio %s of DTE %s burnt by a schema error", self.connection.account_id, folio, tipo)
            raise
        totals = document.encabezado.totales
        totals_json = {
            k: v for k, v in (("MntNeto", totals.mnt_neto), ("MntExe", totals.mnt_exe), ("IVA", totals.iva),
                              ("MntTotal", totals.mnt_total)) if v is not None
        }
        SandboxDocument.objects.create(
            account_id=self.connection.account_id, connection=self.connection, reference=request.reference,
            tipo_dte=tipo, folio=folio, fecha=request.fecha, totals=totals_json, xml=xml,
        )
        return IssuedDocument(
            tipo_dte=tipo, folio=folio, fecha=request.fecha, totals=totals_json,
            biller_document_id=f"sandbox-{tipo}-{folio}", xml=xml,
        )

    def find_by_reference(self, reference: str, checkpoint: Checkpoint) -> IssuedDocument | None:
        found = SandboxDocument.objects.filter(connection=self.connection, reference=reference).order_by("id").first()
        if found is None:
            return None
        return IssuedDocument(
            tipo_dte=found.tipo_dte, folio=found.folio, fecha=found.fecha, totals=found.totals,
            biller_document_id=f"sandbox-{found.tipo_dte}-{found.folio}", xml=bytes(found.xml),
        )

    def fetch_xml(self, *, tipo_dte: int, folio: int) -> bytes:
        found = SandboxDocument.objects.filter(connection=self.connection, tipo_dte=tipo_dte, folio=folio).first()
        if found is None:
            raise RejectedBillerError(gettext("Sandbox: no existe el DTE %(tipo)s N° %(folio)s.") % {"tipo": tipo_dte, "folio": folio},
                                      status=404)
        return bytes(found.xml)

    def test_connection(self) -> ConnectionReport:
        c = self.connection
        missing = [name for name, value in (("RUT", c.emisor_rut), (gettext("razón social"), c.emisor_razon_social),
                                            (gettext("giro"), c.emisor_giro)) if not value]
        return ConnectionReport((
            CheckItem("Sandbox", True, gettext("Facturador incluido: emite en certificación con certificado y folios de prueba.")),
            CheckItem(
                gettext("Datos del emisor"), not missing,
                gettext("Completos.") if not missing else gettext("Faltan: %(fields)s.") % {"fields": ", ".join(missing)},
            ),
            CheckItem(
                gettext("Actividad económica (facturas)"), bool(c.emisor_acteco),
                gettext("Informada.") if c.emisor_acteco else gettext("Sin acteco: las facturas (33, 34) y notas no se pueden emitir."),
            ),
        ))
