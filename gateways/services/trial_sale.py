"""The test sale (step 5 of the setup flow, "Probar la conexión").

A synthetic paid order in the store's own shape (the store adapter's ``sample_order``) goes through
the real pipeline — parse, rules, the biller's check, emission on the gateway's biller — marked as a
test, and issued only with a certification biller. Each step's outcome is reported, in Spanish, so a
support agent sees where a new setup breaks.
"""
import secrets
import time
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import Actor, audit_log_record
from billers.dte.display import document_name, format_clp
from sources.base import SourceError
from sources.registry import source_adapter_for

from ..emission import emission_run
from ..models import DocumentKind, EmissionStatus, Gateway, OrderStatus
from .ingest import order_ingest

# How long the test sale waits for a worker that claimed its emission first (a biller call's timeouts fit).
WORKER_WAIT_SECONDS = 30


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class TrialSaleReport:
    steps: list[Step] = field(default_factory=list)
    order_id: int | None = None
    document_id: int | None = None

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.steps.append(Step(name, ok, detail))
        return ok

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "order_id": self.order_id,
            "document_id": self.document_id,
            "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps],
        }


def gateway_test_sale(*, gateway: Gateway, actor: Actor) -> TrialSaleReport:
    report = TrialSaleReport()
    if not report.add(
        _("Facturador en certificación"),
        gateway.biller.is_certification,
        f"{gateway.biller.name}: {gateway.biller.get_environment_display()}"
        + ("" if gateway.biller.is_certification else _(" — las ventas de prueba solo se emiten en certificación.")),
    ):
        return report
    try:
        source = source_adapter_for(gateway.source)
        # A fresh order number every time: a test sale is never a re-delivery of an earlier one.
        raw = source.sample_order(number=9_000_000_000 + secrets.randbelow(999_999_999), test=True)
        order = order_ingest(gateway=gateway, raw=raw, backfill=True, is_test=True)
    except (SourceError, ValidationError, DatabaseError) as exc:
        report.add(_("Orden de prueba recibida"), False, str(exc))
        return report
    report.order_id = order.pk
    report.add(
        _("Orden de prueba recibida"), True,
        _("Orden %(number)s de %(platform)s por %(total)s")
        % {"number": order.number, "platform": gateway.source.get_platform_display(), "total": format_clp(int(order.paid_total))},
    )
    reasons = order.status_reason or "; ".join(r["message"] for r in order.decision.get("reasons", []))
    if not report.add(_("Reglas"), order.status == OrderStatus.READY, f"{order.get_status_display()}: {reasons}"):
        return report
    emission = order.emissions.get(kind=DocumentKind.INVOICE)
    document = emission_run(emission_id=emission.pk)
    emission.refresh_from_db()
    # Ingesting queued the emission for the workers too: one of them may have claimed it first. Its outcome
    # is the test's outcome, so wait for it instead of reporting "Emitiendo" as a failure.
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while document is None and emission.status == EmissionStatus.ISSUING and time.monotonic() < deadline:
        time.sleep(0.2)
        emission.refresh_from_db()
    if document is None:
        document = getattr(emission, "document", None) if emission.status == "issued" else None
    if not report.add(
        _("Emisión"),
        document is not None,
        _("%(name)s N° %(folio)s por %(total)s")
        % {"name": document_name(document.tipo_dte), "folio": document.folio, "total": format_clp(document.mnt_total)}
        if document else emission.status_reason or emission.get_status_display(),
    ):
        return report
    report.document_id = document.pk
    report.add(
        _("Cuadre"),
        document.mnt_total == int(order.paid_total),
        _("Documento %(document)s, pagado %(paid)s")
        % {"document": format_clp(document.mnt_total), "paid": format_clp(int(order.paid_total))},
    )
    if report.ok:
        Gateway.objects.filter(pk=gateway.pk).update(test_passed_at=timezone.now())
        gateway.test_passed_at = timezone.now()
    audit_log_record(account=gateway.account, actor=actor, action="gateway.test_sale", obj=gateway, data=report.as_dict())
    return report
