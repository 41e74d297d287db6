"""Credit notes a person asks for, on an issued order: the whole document or some of its lines.

The request becomes a refund of the order (``RefundData``, money returned, gross) and goes through the
same path as a store's refund (``order_credit_notes_sync``): the rules decide the note, the biller checks
it, it is never for more than is still uncredited, and it is issued exactly once like any emission.
"""
import uuid
from dataclasses import replace
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.services import Actor, audit_log_record
from billers.dte.amounts import IVA_RATE, round_half_up
from sources.orderdata import OrderData, RefundData, RefundLine
from sources.registry import source_adapter_for

from ..models import DocumentKind, Emission, Order, OrderStatus
from .credit_notes import order_credit_notes_sync

GROSS = 1 + IVA_RATE / 100


def _line_refund(data: OrderData, line_id: str, quantity: Decimal, net_prices: bool) -> RefundLine:
    line = next((line for line in data.lines if line.line_id == line_id), None)
    if line is None:
        raise ValidationError({"lines": [_("La orden no tiene la línea %(line)s.") % {"line": line_id}]})
    if quantity <= 0 or quantity > line.quantity:
        raise ValidationError({"lines": [_("La línea %(line)s tiene %(max)s unidades; no se pueden acreditar %(q)s.") % {
            "line": line_id, "max": line.quantity, "q": quantity}]})
    amount = line.unit_price * quantity - line.discount * quantity / line.quantity
    if line.tax is not None:
        # The store added the tax itself and said how much: the buyer paid that, not 19 % of the net.
        amount += line.tax * quantity / line.quantity
    elif net_prices and line.taxable:
        amount *= GROSS
    return RefundLine(line_id=line_id, quantity=quantity, amount=Decimal(round_half_up(amount)))


def order_credit_note_request(*, order: Order, reason: str, actor: Actor, lines: list[dict] | None = None) -> Emission:
    """Queues a credit note for the whole issued invoice (``lines`` None) or for ``lines``
    (``[{"line_id": ..., "quantity": ...}]``); the rules' reasons explain a refusal."""
    if not reason.strip():
        raise ValidationError({"reason": [_("Indique el motivo de la nota de crédito.")]})
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("gateway__source", "gateway__ruleset", "gateway__biller").get(
            pk=order.pk
        )
        invoice = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
        if order.status != OrderStatus.ISSUED or invoice is None:
            raise ValidationError(_("La orden no tiene un documento emitido que acreditar."), code="not_issued")
        data = source_adapter_for(order.gateway.source).parse_order(order.raw)
        net_prices = order.gateway.ruleset.price_basis == "net"
        refund_lines = tuple(
            _line_refund(data, str(item["line_id"]), Decimal(str(item["quantity"])), net_prices) for item in lines or ()
        )
        amount = sum((line.amount for line in refund_lines), Decimal(0)) if refund_lines else Decimal(invoice.mnt_total)
        refund = RefundData(external_id=f"manual-{uuid.uuid4().hex[:12]}", created_at=None, amount=amount,
                            lines=refund_lines, reason=reason.strip())
        created = order_credit_notes_sync(order=order, data=replace(data, refunds=(refund,), cancelled=False))
        if not created:
            notes = [note for note in order.decision.get("credit_notes", []) if note.get("refund") == refund.external_id]
            why = "; ".join(r["message"] for r in notes[-1]["reasons"]) if notes else _("ya no queda monto por acreditar.")
            raise ValidationError(_("No se emite la nota de crédito: %(why)s") % {"why": why}, code="credit_note_refused")
        audit_log_record(account=order.account, actor=actor, action="order.credit_note", obj=order,
                         data={"reason": reason, "amount": str(amount),
                               "lines": [{"line_id": str(i["line_id"]), "quantity": str(i["quantity"])} for i in lines or ()] or "all"})
    return created[0]
