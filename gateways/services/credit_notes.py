"""Refunds and cancellations of an issued order become credit notes (61) referencing its invoice."""
import logging
from dataclasses import asdict

from django.db import transaction

from rules.engine import OriginalDocument
from rules.services import decide_credit_note_for
from sources.orderdata import OrderData, RefundData
from sources.registry import source_adapter_for

from ..models import DocumentKind, Emission, EmissionStatus, Order, OrderStatus
from .emissions import biller_check, emission_create

logger = logging.getLogger(__name__)


def order_credit_notes_sync(*, order: Order, data: OrderData) -> list[Emission]:
    """One credit note per refund (or cancellation) of an issued order, never more than was invoiced.

    Called under the order's lock. A refund event seen again finds its emission and creates nothing. A
    refund the rules hold or skip, or that the biller's check refuses, is recorded on the order's
    decision (``credit_notes``) with the reasons, so the order page says why no credit note was issued.
    """
    invoice = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    if invoice is None:
        return []
    created = []
    pending_total = sum(
        em.sale["paid_total"]
        for em in order.emissions.filter(kind=DocumentKind.CREDIT_NOTE).exclude(status=EmissionStatus.FAILED)
    )
    remaining = invoice.mnt_total - pending_total
    refunds = list(data.refunds)
    if data.cancelled and not refunds:
        refunds = [RefundData(external_id="cancel", created_at=None, amount=invoice.mnt_total, reason="Orden anulada")]
    source = source_adapter_for(order.gateway.source)
    notes = []
    for refund in refunds:
        if remaining <= 0:
            break
        if order.emissions.filter(kind=DocumentKind.CREDIT_NOTE, refund_external_id=refund.external_id).exists():
            continue
        decision = decide_credit_note_for(
            ruleset=order.gateway.ruleset,
            order=data,
            refund=refund,
            original=OriginalDocument(
                tipo_dte=invoice.tipo_dte, folio=invoice.folio, fecha=invoice.fecha.isoformat(), total=invoice.mnt_total
            ),
            certification=invoice.certification,
            remaining=remaining,
            field_defaults=source.default_field_mapping,
        )
        reasons = [asdict(reason) for reason in decision.reasons]
        if decision.action != "emit":
            logger.warning("account=%s order=%s refund %s not credited: %s", order.account_id, order.pk, refund.external_id, reasons)
            notes.append({"refund": refund.external_id, "action": decision.action, "reasons": reasons})
            continue
        prepared, refusal = biller_check(order.gateway, decision.sale)
        if refusal is not None:
            notes.append({"refund": refund.external_id, "action": "hold", "reasons": [{"code": "biller_check", "message": refusal}]})
            continue
        emission = emission_create(
            order=order, kind=DocumentKind.CREDIT_NOTE, sale=decision.sale, prepared=prepared, refund_external_id=refund.external_id
        )
        if emission is not None:
            remaining -= decision.sale.paid_total
            created.append(emission)
    if notes:
        decision_json = {**order.decision, "credit_notes": [*order.decision.get("credit_notes", []), *notes][-20:]}
        Order.objects.filter(pk=order.pk).update(decision=decision_json)
        order.decision = decision_json
    return created


def order_refunds_sync(*, order_id: int) -> list[Emission]:
    """Turns the refunds in the order's latest payload into credit notes (after its invoice is issued)."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("gateway__source", "gateway__ruleset", "gateway__biller")
            .get(pk=order_id)
        )
        if order.status != OrderStatus.ISSUED:
            return []
        data = source_adapter_for(order.gateway.source).parse_order(order.raw)
        return order_credit_notes_sync(order=order, data=data)
