"""The test sale (step 5 of the setup flow, "Probar la conexión").

A synthetic paid order goes through the real pipeline — parse, rules, emission on the gateway's
biller — marked as a test, and issued only with a certification biller. Each step's outcome is
reported so a support agent sees where a new setup breaks.
"""
import secrets
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError

from accounts.services import Actor, audit_log_record
from sources.base import SourceError
from sources.demo.adapter import demo_order_payload

from .emission import emission_run
from .models import DocumentKind, Gateway, OrderStatus
from .services import order_ingest

@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class TestSaleReport:
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


def gateway_test_sale(*, gateway: Gateway, actor: Actor) -> TestSaleReport:
    report = TestSaleReport()
    if not report.add(
        "Facturador en certificación",
        gateway.biller.is_certification,
        f"{gateway.biller.name}: {gateway.biller.get_environment_display()}"
        + ("" if gateway.biller.is_certification else " — las ventas de prueba solo se emiten en certificación."),
    ):
        return report
    raw = demo_order_payload(number=900_000 + secrets.randbelow(100_000), test=True)
    # A fresh external id every time: a test sale is never a re-delivery of an earlier one.
    raw["id"] = f"test-{secrets.token_hex(8)}"
    try:
        order = order_ingest(gateway=gateway, raw=raw, backfill=True, is_test=True)
    except (SourceError, ValidationError, DatabaseError) as exc:
        report.add("Orden de prueba recibida", False, str(exc))
        return report
    report.order_id = order.pk
    report.add("Orden de prueba recibida", True, f"Orden {order.number} por ${order.paid_total:.0f} CLP")
    reasons = "; ".join(r["message"] for r in order.decision.get("reasons", []))
    if not report.add("Reglas", order.status == OrderStatus.READY, f"{order.decision.get('action')}: {reasons}"):
        return report
    emission = order.emissions.get(kind=DocumentKind.INVOICE)
    document = emission_run(emission_id=emission.pk)
    emission.refresh_from_db()
    if document is None:
        document = getattr(emission, "document", None) if emission.status == "issued" else None
    if not report.add(
        "Emisión",
        document is not None,
        f"DTE {document.tipo_dte} folio {document.folio}, total ${document.mnt_total}" if document else emission.status_reason or emission.get_status_display(),
    ):
        return report
    report.document_id = document.pk
    report.add(
        "Cuadre",
        document.mnt_total == int(order.paid_total),
        f"Documento ${document.mnt_total} vs pagado ${order.paid_total:.0f}",
    )
    audit_log_record(account=gateway.account, actor=actor, action="gateway.test_sale", obj=gateway, data=report.as_dict())
    return report
