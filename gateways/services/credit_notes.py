"""Credit notes (61) referencing an order's invoice: refunds and cancellations (money back), and text
corrections a person asks for on an issued factura (CodRef 2, zero amounts).

A text correction is a credit-note emission like any other (the biller's ``check``, the next credit-note
sequence, exactly-once issue, recorded as a ``Document`` crediting the invoice); its cuadre is "total 0"
and it never counts as money credited, so it takes nothing from what refunds may still credit. Each one
starts from the receptor as the last correction left it (or as the factura printed it), so a second
correction carries the first one's text and asking twice for the same change is "nothing to correct".
"""
import logging
import uuid
from dataclasses import asdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.services import Actor, audit_log_record
from billers.dte.display import format_clp
from billers.dte.sale import Receptor
from billers.dte.sale_json import sale_from_dict
from billers.dte.types import FACTURA_TYPES
from rules.engine import CORRECTABLE_FIELDS, EMIT, OriginalDocument, decide_text_correction
from rules.services import decide_credit_note_for, ruleset_config
from sources.orderdata import OrderData, RefundData
from sources.registry import source_adapter_for

from ..models import Document, DocumentKind, Emission, EmissionStatus, Order, OrderStatus
from .emissions import biller_check, emission_create, invoice_annulled
from .voids import document_void_request, voided_instead_of_credited

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
    if voided_instead_of_credited(invoice):
        _void_instead_of_credit_notes(order, invoice, data)
        return []
    created = []
    # Money credited or on its way; zero-amount notes (text corrections) credit nothing.
    pending_total = sum(
        em.sale["paid_total"]
        for em in order.emissions.filter(kind=DocumentKind.CREDIT_NOTE).exclude(status=EmissionStatus.FAILED)
        if em.sale["paid_total"] > 0
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
        _note_credit_notes(order, notes)
    return created


def _void_instead_of_credit_notes(order: Order, invoice: Document, data: OrderData) -> None:
    """A full refund or a cancellation voids the boleta de honorarios; a partial refund is left, with the
    reason, for a person (a BHE cannot be partly corrected)."""
    refunded = sum((refund.amount for refund in data.refunds), Decimal(0))
    if not data.cancelled and not data.refunds:
        return
    seen = {note.get("refund") for note in order.decision.get("credit_notes", [])}
    name = _("La boleta de honorarios N° %(folio)s") % {"folio": invoice.folio}
    if data.cancelled or refunded >= invoice.mnt_total:
        why = _("orden anulada") if data.cancelled else _("devolución total")
        if document_void_request(document=invoice, reason=why):
            note = {"refund": "void", "action": "void", "reasons": [{"code": "void_requested", "message": _(
                "%(name)s se anula en el facturador (%(why)s): no admite notas de crédito.") % {"name": name, "why": why}}]}
            _note_credit_notes(order, [note])
        return
    notes = [
        {"refund": refund.external_id, "action": "hold", "reasons": [{"code": "partial_refund_not_voidable", "message": _(
            "%(name)s no admite devoluciones parciales (%(amount)s): anúlela y emita una nueva por lo que quedó pagado, "
            "o registre la devolución fuera de BillMySales.") % {"name": name, "amount": format_clp(int(refund.amount))}}]}
        for refund in data.refunds if refund.external_id not in seen
    ]
    if notes:
        logger.warning("account=%s order=%s partial refund of a BHE left for a person", order.account_id, order.pk)
        _note_credit_notes(order, notes)


def _note_credit_notes(order: Order, notes: list[dict]) -> None:
    decision_json = {**order.decision, "credit_notes": [*order.decision.get("credit_notes", []), *notes][-20:]}
    Order.objects.filter(pk=order.pk).update(decision=decision_json)
    order.decision = decision_json


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


def order_text_correction(*, order: Order, corrections: dict, reason: str, actor: Actor) -> Emission:
    """Queues the credit note (61, CodRef 2, zero amounts) that corrects the receptor's text on the order's
    issued factura (33/34) and returns its emission.

    ``corrections`` maps receptor fields (``razon_social``, ``giro``, ``address``, ``comuna``, ``city``) to
    their right text; ``reason`` is why (audit log). Refused with a ``ValidationError`` in Spanish when the
    order has no issued factura, the factura was annulled, nothing would change, the RUT is to change
    (that needs the factura annulled and issued again), or the biller cannot issue the note.
    """
    if not reason.strip():
        raise ValidationError({"reason": [_("Indique el motivo de la corrección.")]})
    unknown = sorted(set(corrections) - set(CORRECTABLE_FIELDS) - {"rut"})
    if unknown:
        raise ValidationError({"corrections": [_("No se corrigen con una nota de crédito: %(fields)s. Se corrigen: %(known)s.") % {
            "fields": ", ".join(unknown), "known": ", ".join(CORRECTABLE_FIELDS)}]})
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("gateway__source", "gateway__ruleset", "gateway__biller")
            .get(pk=order.pk)
        )
        invoice = order.documents.filter(kind=DocumentKind.INVOICE).select_related("emission").order_by("-sequence").first()
        if order.status != OrderStatus.ISSUED or invoice is None or invoice.tipo_dte not in FACTURA_TYPES:
            raise ValidationError(_("La orden no tiene una factura emitida (33 o 34) cuyo texto corregir."), code="no_factura")
        if invoice_annulled(order):
            raise ValidationError(
                _("La factura N° %(folio)s está anulada por una nota de crédito: ya no se corrige.") % {"folio": invoice.folio},
                code="annulled",
            )
        source = source_adapter_for(order.gateway.source)
        decision = decide_text_correction(
            source.parse_order(order.raw),
            OriginalDocument(
                tipo_dte=invoice.tipo_dte, folio=invoice.folio, fecha=invoice.fecha.isoformat(), total=invoice.mnt_total,
                receptor=_current_receptor(order, invoice),
            ),
            corrections,
            ruleset_config(ruleset=order.gateway.ruleset, certification=invoice.certification),
            field_defaults=source.default_field_mapping,
        )
        if decision.action != EMIT:
            raise ValidationError(decision.reasons[-1].message, code=decision.reasons[-1].code)
        prepared, refusal = biller_check(order.gateway, decision.sale)
        if refusal is not None:
            raise ValidationError(_("El facturador no puede emitir la corrección: %(why)s") % {"why": refusal}, code="biller_check")
        emission = emission_create(
            order=order, kind=DocumentKind.CREDIT_NOTE, sale=decision.sale, prepared=prepared,
            refund_external_id=f"texto-{uuid.uuid4().hex[:12]}",
        )
        audit_log_record(
            account=order.account, actor=actor, action="order.text_correction", obj=order,
            data={"reason": reason.strip(), "factura": invoice.folio, "corrections": {k: str(v) for k, v in corrections.items()}},
        )
    return emission


def _current_receptor(order: Order, invoice: Document) -> Receptor:
    """The receptor as the last text correction of ``invoice`` that may be issued left it, else as it printed it."""
    corrections = order.emissions.filter(kind=DocumentKind.CREDIT_NOTE, sale__paid_total=0).exclude(status=EmissionStatus.FAILED)
    for emission in corrections.order_by("-sequence"):
        sale = sale_from_dict(emission.sale)
        if sale.corrects_text and any(ref.folio == invoice.folio and ref.tipo_doc == invoice.tipo_dte for ref in sale.references):
            return sale.receptor
    return sale_from_dict(invoice.emission.sale).receptor
