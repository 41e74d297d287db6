"""What people (dashboard) and integrators (API) do to orders: emit now, retry, skip, backfill."""
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor, audit_log_record
from sources.registry import source_adapter_for

from ..models import Emission, EmissionAttempt, EmissionStatus, Gateway, Order, OrderStatus
from .emissions import emission_requeue, unfinished_invoice_emission
from .ingest import OPEN_STATUSES, order_decide, order_ingest


def order_emit_now(*, order: Order, actor: Actor) -> Order:
    """A person or an API call asks to emit a waiting / held / skipped / failed order now.

    An earlier emission that may have reached the biller (its outcome was unknown, or it failed on
    transient errors) is re-queued as it is, so the biller is asked about it before anything is
    re-sent; only a rejected one is replaced by a new emission built from the current rules and data.
    The returned order says what happened (ready, or held / skipped with the rules' reasons).
    """
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("gateway__ruleset", "gateway__source", "gateway__biller")
            .get(pk=order.pk)
        )
        if order.status in (OrderStatus.ISSUED, OrderStatus.ISSUING, OrderStatus.READY):
            raise ValidationError(
                _("La orden %(number)s ya está %(status)s.") % {"number": order.number, "status": order.get_status_display().lower()}
            )
        unfinished = unfinished_invoice_emission(order)
        if unfinished is not None:
            _check_retryable(unfinished)
            emission_requeue(unfinished)
        else:
            source = source_adapter_for(order.gateway.source)
            data = source.parse_order(order.raw)
            order_decide(
                order=order, gateway=order.gateway, data=data, backfill=True, by_person=True,
                field_defaults=source.default_field_mapping,
            )
        audit_log_record(account=order.account, actor=actor, action="order.emit_now", obj=order, data={"status": order.status})
    order.refresh_from_db()
    return order


def orders_bulk_emit(*, account: Account, order_ids: list[int], actor: Actor) -> dict[str, str]:
    """Emit now, order by order; each answer is the order's new status or why it was not emitted."""
    results = {}
    for order in Order.objects.filter(account=account, pk__in=order_ids):
        try:
            results[str(order.pk)] = order_emit_now(order=order, actor=actor).status
        except ValidationError as exc:
            results[str(order.pk)] = " ".join(exc.messages)
    for missing in set(order_ids) - {int(k) for k in results}:
        results[str(missing)] = _("no encontrada")
    return results


def _check_retryable(emission: Emission) -> None:
    last = emission.attempts.order_by("-number").first()
    if last is not None and last.outcome == EmissionAttempt.Outcome.MISMATCH:
        raise ValidationError(_(
            "El facturador emitió un documento distinto del pedido para esta orden: anúlelo o acéptelo en el "
            "facturador; no se vuelve a emitir desde aquí."
        ))


def order_retry(*, order: Order, actor: Actor) -> Order:
    """Re-queues a failed or held order's pending work (same document: nothing is issued twice)."""
    with transaction.atomic():
        emission = (
            Emission.objects.select_for_update()
            .filter(order=order, status__in=[EmissionStatus.FAILED, EmissionStatus.HELD])
            .order_by("-id")
            .first()
        )
        if emission is None:
            raise ValidationError(_("No hay nada que reintentar en esta orden."))
        _check_retryable(emission)
        emission_requeue(emission)
        audit_log_record(account=order.account, actor=actor, action="order.retry", obj=order)
    order.refresh_from_db()
    return order


@transaction.atomic
def order_skip(*, order: Order, reason: str, actor: Actor) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status in (OrderStatus.ISSUED, OrderStatus.ISSUING):
        raise ValidationError(_("Una orden emitida o en emisión no se omite; reembólsela para anular su documento."))
    if not reason.strip():
        raise ValidationError(_("Indique por qué se omite la orden."))
    order.emissions.filter(status__in=[EmissionStatus.PENDING, EmissionStatus.HELD]).update(
        status=EmissionStatus.FAILED, status_reason=_("Omitida: %(reason)s") % {"reason": reason}
    )
    order.status, order.status_reason = OrderStatus.SKIPPED, _("Omitida a mano: %(reason)s") % {"reason": reason}
    order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_log_record(account=order.account, actor=actor, action="order.skip", obj=order, data={"reason": reason})
    return order


def orders_backfill(*, gateway: Gateway, start: datetime, end: datetime, actor: Actor) -> int:
    """Re-decides the gateway's stored orders created in [start, end) as a backfill (ignoring start date)."""
    count = 0
    orders = Order.objects.filter(
        gateway=gateway, status__in=OPEN_STATUSES, source_created_at__gte=start, source_created_at__lt=end
    ).only("pk", "raw")
    for order in orders.iterator(chunk_size=200):
        order_ingest(gateway=gateway, raw=order.raw, backfill=True)
        count += 1
    audit_log_record(
        account=gateway.account, actor=actor, action="gateway.backfill", obj=gateway,
        data={"start": start.isoformat(), "end": end.isoformat(), "orders": count},
    )
    return count
