"""Creating and re-queueing emissions: the unit of exactly-once work (one document of an order).

The emission itself (claim, attempt, biller call, result) runs in ``gateways.emission``.
"""
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from billers.dte.errors import MappingRefused
from billers.dte.sale_json import sale_to_dict
from billers.registry import BillerNotRegistered, biller_adapter_for

from ..dispatch import emission_enqueue
from ..models import DocumentKind, Emission, EmissionAttempt, EmissionStatus, Gateway, Order, OrderStatus


def biller_check(gateway: Gateway, sale) -> tuple[dict | None, str | None]:
    """(prepared payload, None), or (None, why the gateway's biller cannot issue this sale): a total
    that cannot square with what the buyer paid, a type it does not issue, a biller not available."""
    try:
        return biller_adapter_for(gateway.biller).check(sale, fecha=timezone.localdate()), None
    except (MappingRefused, BillerNotRegistered) as exc:
        return None, exc.message


def emission_reference(order: Order, kind: str, sequence: int) -> str:
    return f"bms-{order.account_id}-{order.pk}-{'F' if kind == DocumentKind.INVOICE else 'NC'}{sequence}"


def emission_create(
    *, order: Order, kind: str, sale, prepared: dict, refund_external_id: str = "", order_is_new: bool = False,
    queue: Callable[[int], None] | None = None,
) -> Emission | None:
    """Creates the emission for (order, kind, next sequence) unless an equivalent one exists; queues it.
    Called under the order's row lock. ``order_is_new``: the order was inserted in this transaction, so it
    has no emission yet (nothing to look up). ``queue``: called with the emission's id once committed,
    instead of publishing its emit task (a lost call is left to the sweeper, as a lost message is)."""
    sequence = 1
    if not order_is_new:
        existing = order.emissions.filter(kind=kind)
        if kind == DocumentKind.INVOICE:
            # A new invoice only when every earlier one was rejected or annulled by a credit note.
            if any(not replaceable(e) for e in existing) and not invoice_annulled(order):
                return None
        elif existing.filter(refund_external_id=refund_external_id).exists():
            return None
        sequence = (existing.order_by("-sequence").values_list("sequence", flat=True).first() or 0) + 1
    emission = Emission.objects.create(
        account_id=order.account_id,
        order=order,
        kind=kind,
        sequence=sequence,
        reference=emission_reference(order, kind, sequence),
        sale=sale_to_dict(sale),
        prepared=prepared,
        refund_external_id=refund_external_id,
    )
    if queue is None:
        emission_enqueue(emission.id)
    else:
        transaction.on_commit(lambda: queue(emission.id))
    return emission


def invoice_annulled(order: Order) -> bool:
    invoice = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    if invoice is None:
        return False
    credited = sum(cn.mnt_total for cn in invoice.credit_notes.all())
    return credited >= invoice.mnt_total


def unfinished_invoice_emission(order: Order) -> Emission | None:
    """The latest invoice emission that is not issued and may not be replaced (it may have been issued)."""
    latest = order.emissions.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    if latest is None or latest.status == EmissionStatus.ISSUED or replaceable(latest):
        return None
    return latest


def replaceable(emission: Emission) -> bool:
    """A failed emission whose biller said no (or that never reached it) can give way to a new one.
    One whose biller issued something else (a mismatch) never does: that document exists."""
    if emission.status != EmissionStatus.FAILED:
        return False
    last = emission.attempts.order_by("-number").first()
    return last is None or last.outcome == EmissionAttempt.Outcome.REJECTED


def emission_requeue(emission: Emission) -> None:
    emission.status, emission.status_reason, emission.next_attempt_at = EmissionStatus.PENDING, "", None
    emission.save(update_fields=["status", "status_reason", "next_attempt_at", "updated_at"])
    if emission.kind == DocumentKind.INVOICE:
        Order.objects.filter(pk=emission.order_id).update(status=OrderStatus.READY, status_reason="", updated_at=timezone.now())
    emission_enqueue(emission.id)
