"""Writes of the pipeline: gateways, inbound events, order ingestion, and the actions people take.

The emission itself (claim, attempt, biller call, result) is in ``gateways.emission``.
Every write runs in a transaction; Celery tasks are queued with ``transaction.on_commit`` so a task
never runs before the row it names exists, and a lost task is picked up by the sweeper.
"""
import logging
from dataclasses import asdict
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from accounts.services import Actor, audit_log_record
from billers.dte.errors import MappingRefused
from billers.dte.mapping import build_document
from billers.dte.sale_json import sale_to_dict
from billers.selectors import biller_emisor
from billers.models import BillerConnection
from rules.models import RuleSet
from rules.services import decide_credit_note_for, decide_order
from sources.base import OrderParseError
from sources.models import SourceConnection
from sources.orderdata import OrderData, RefundData
from sources.registry import source_adapter_for

from .models import (
    DocumentKind,
    Emission,
    EmissionAttempt,
    EmissionStatus,
    Gateway,
    InboundEvent,
    Order,
    OrderStatus,
)

logger = logging.getLogger(__name__)

# Order statuses in which the invoice may still be (re)decided when the store sends a new version.
OPEN_STATUSES = (OrderStatus.RECEIVED, OrderStatus.WAITING, OrderStatus.HELD, OrderStatus.SKIPPED)


def _publish(task, args: tuple, countdown: float | None = None) -> None:
    """Sends a task after commit. If the broker is down the row is already committed: log it and let
    the sweeper queue it again, rather than failing a request whose data is safe."""
    try:
        task.apply_async(args, countdown=countdown)
    except Exception as exc:  # kombu/redis raise many classes for "broker unreachable"
        logger.warning("broker unavailable, %s%r left for the sweeper: %s", task.name, args, exc)


def enqueue_after_commit(task, args: tuple, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: _publish(task, args, countdown))


def emission_enqueue(emission_id: int, countdown: float | None = None) -> None:
    from .tasks import order_emit_task

    enqueue_after_commit(order_emit_task, (emission_id,), countdown)


def inbound_event_enqueue(event_id: int) -> None:
    from .tasks import order_ingest_task

    enqueue_after_commit(order_ingest_task, (event_id,))


@transaction.atomic
def gateway_create(
    *,
    account: Account,
    name: str,
    source: SourceConnection,
    biller: BillerConnection,
    environment: str = Gateway.Environment.CERTIFICATION,
    ruleset: RuleSet | None = None,
    actor: Actor,
) -> Gateway:
    if source.account_id != account.id or biller.account_id != account.id:
        raise ValidationError("The store and the biller must belong to this account.")
    if environment == Gateway.Environment.CERTIFICATION and not biller.is_certification:
        raise ValidationError(
            "A certification gateway issues only through a certification biller connection; "
            f"'{biller.name}' is in production."
        )
    ruleset = ruleset or RuleSet.objects.create(account=account)
    gateway = Gateway.objects.create(
        account=account, name=name, source=source, biller=biller, ruleset=ruleset, environment=environment
    )
    audit_log_record(account=account, actor=actor, action="gateway.create", obj=gateway)
    return gateway


@transaction.atomic
def gateway_activate(*, gateway: Gateway, actor: Actor) -> Gateway:
    """From now on the gateway bills; orders created before this moment are never billed without a backfill."""
    # Whole seconds: stores stamp orders to the second, and an order placed in the same second counts.
    now = timezone.now().replace(microsecond=0)
    gateway.active = True
    gateway.activated_at = gateway.activated_at or now
    gateway.save(update_fields=["active", "activated_at"])
    if gateway.ruleset.start_at is None:
        gateway.ruleset.start_at = now
        gateway.ruleset.save(update_fields=["start_at", "updated_at"])
    audit_log_record(account=gateway.account, actor=actor, action="gateway.activate", obj=gateway)
    return gateway


@transaction.atomic
def gateway_deactivate(*, gateway: Gateway, actor: Actor) -> Gateway:
    gateway.active = False
    gateway.save(update_fields=["active"])
    audit_log_record(account=gateway.account, actor=actor, action="gateway.deactivate", obj=gateway)
    return gateway


def inbound_event_receive(*, gateway: Gateway, delivery_id: str, topic: str, payload: dict) -> tuple[InboundEvent, bool]:
    """Commits the raw delivery once per (gateway, delivery id) and queues its ingestion.

    Returns (event, created). A replayed delivery is acknowledged without a second ingestion.
    """
    with transaction.atomic():
        event, created = InboundEvent.objects.get_or_create(
            gateway=gateway,
            delivery_id=delivery_id,
            defaults={"account_id": gateway.account_id, "topic": topic, "payload": payload},
        )
        if created:
            inbound_event_enqueue(event.id)
    return event, created


def inbound_event_process(*, event_id: int) -> Order | None:
    event = InboundEvent.objects.select_related("gateway__source", "gateway__ruleset", "gateway__biller").get(pk=event_id)
    if event.processed_at is not None:
        return None
    try:
        order = order_ingest(gateway=event.gateway, raw=event.payload)
    except OrderParseError as exc:
        logger.warning("account=%s gateway=%s event=%s unreadable order: %s", event.account_id, event.gateway_id, event.id, exc)
        InboundEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), error=str(exc))
        return None
    InboundEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), error="")
    return order


def _emission_reference(order: Order, kind: str, sequence: int) -> str:
    return f"bms-{order.account_id}-{order.pk}-{'F' if kind == DocumentKind.INVOICE else 'NC'}{sequence}"


def _decision_json(decision) -> dict:
    return {
        "action": decision.action,
        "document_type": decision.document_type,
        "manual": decision.manual,
        "reasons": [asdict(reason) for reason in decision.reasons],
        "decided_at": timezone.now().isoformat(),
    }


def _order_fields(data: OrderData) -> dict:
    return {
        "number": data.number[:60],
        "payment_status": data.payment_status,
        "paid_total": data.paid_total,
        "currency": data.currency[:3],
        "buyer_name": data.buyer.name[:200],
        "buyer_email": data.buyer.email[:254],
        "raw": data.raw,
        "is_test": data.is_test,
        "source_created_at": data.created_at,
    }


def _lock_or_create_order(gateway: Gateway, data: OrderData) -> tuple[Order, bool]:
    """The order row, locked for this transaction; created if new. Safe under concurrent deliveries."""
    order = Order.objects.select_for_update().filter(gateway=gateway, external_id=data.external_id).first()
    if order is not None:
        return order, False
    try:
        with transaction.atomic():
            return (
                Order.objects.create(account_id=gateway.account_id, gateway=gateway, external_id=data.external_id, **_order_fields(data)),
                True,
            )
    except IntegrityError:
        # Another delivery of the same order created it first: wait for its lock and continue.
        return Order.objects.select_for_update().get(gateway=gateway, external_id=data.external_id), False


def order_ingest(*, gateway: Gateway, raw: dict, backfill: bool = False, is_test: bool = False) -> Order:
    """Idempotent upsert of the order and its decision; queues the emission when the rules say emit."""
    adapter = source_adapter_for(gateway.source)
    data = adapter.parse_order(raw)
    if is_test and not data.is_test:
        data = OrderData(**{**data.__dict__, "is_test": True})
    with transaction.atomic():
        order, created = _lock_or_create_order(gateway, data)
        backfill = backfill or order.backfill
        # An emission that may have reached the biller stays in charge (it is reconciled, or waits
        # for a person); a new version of the order never starts another beside it.
        if created or (order.status in OPEN_STATUSES and _unfinished_invoice_emission(order) is None):
            _order_decide(order=order, gateway=gateway, data=data, backfill=backfill)
        else:
            # Issued / in flight: never re-issued because it changed; keep the newest payload for refunds.
            Order.objects.filter(pk=order.pk).update(raw=data.raw, payment_status=data.payment_status, updated_at=timezone.now())
            order.raw = data.raw
        if order.status == OrderStatus.ISSUED:
            order_credit_notes_sync(order=order, data=data)
    return order


def _order_decide(*, order: Order, gateway: Gateway, data: OrderData, backfill: bool, by_person: bool = False) -> None:
    """Decides the order and queues its invoice. ``by_person``: someone asked to emit it now, so
    manual mode and an inactive gateway do not make it wait."""
    decision = decide_order(
        ruleset=gateway.ruleset, order=data, platform=gateway.source.platform, backfill=backfill,
        certification=gateway.biller.is_certification,
    )
    for field, value in _order_fields(data).items():
        setattr(order, field, value)
    order.backfill = backfill
    order.decision = _decision_json(decision)
    # The engine stops at the rule that decided: that last reason is the one the order page leads with.
    decisive = decision.reasons[-1].message if decision.reasons else ""
    waits = not (order.is_test or by_person)
    if decision.action == "emit" and not gateway.active and waits:
        order.status, order.status_reason = OrderStatus.WAITING, "La pasarela no está activa: la orden espera su activación."
    elif decision.action == "emit" and decision.manual and waits:
        order.status, order.status_reason = OrderStatus.WAITING, "Modo manual: la orden espera que alguien la emita."
    elif decision.action == "emit" and (refusal := _mapping_refusal(gateway, decision.sale)) is not None:
        order.status, order.status_reason = OrderStatus.HELD, refusal
    elif decision.action == "emit":
        order.status, order.status_reason = OrderStatus.READY, ""
    else:
        order.status = {"skip": OrderStatus.SKIPPED, "hold": OrderStatus.HELD, "wait": OrderStatus.WAITING}[decision.action]
        order.status_reason = decisive
    order.save()
    if order.status == OrderStatus.READY:
        _emission_create(order=order, kind=DocumentKind.INVOICE, sale=decision.sale)


def _mapping_refusal(gateway: Gateway, sale) -> str | None:
    """Builds the document once before queueing it, so an order whose totals cannot square with what
    the buyer paid is held with the mapping's reason instead of reaching the biller."""
    try:
        build_document(sale, emisor=biller_emisor(gateway.biller), folio=1, fecha=timezone.localdate())
    except MappingRefused as exc:
        return exc.message
    return None


def _emission_create(*, order: Order, kind: str, sale, refund_external_id: str = "") -> Emission | None:
    """Creates the emission for (order, kind, next sequence) unless an equivalent one exists; queues it."""
    existing = order.emissions.filter(kind=kind)
    if kind == DocumentKind.INVOICE:
        # A new invoice only when every earlier one was rejected or annulled by a credit note.
        if any(not _replaceable(e) for e in existing) and not _invoice_annulled(order):
            return None
    elif existing.filter(refund_external_id=refund_external_id).exists():
        return None
    sequence = (existing.order_by("-sequence").values_list("sequence", flat=True).first() or 0) + 1
    emission = Emission.objects.create(
        account_id=order.account_id,
        order=order,
        kind=kind,
        sequence=sequence,
        reference=_emission_reference(order, kind, sequence),
        sale=sale_to_dict(sale),
        refund_external_id=refund_external_id,
    )
    emission_enqueue(emission.id)
    return emission


def _invoice_annulled(order: Order) -> bool:
    invoice = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    if invoice is None:
        return False
    credited = sum(cn.mnt_total for cn in invoice.credit_notes.all())
    return credited >= invoice.mnt_total


def order_credit_notes_sync(*, order: Order, data: OrderData) -> list[Emission]:
    """One credit note per refund (or cancellation) of an issued order, never more than was invoiced.

    Called under the order's lock. A refund event seen again finds its emission and creates nothing.
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
    for refund in refunds:
        if remaining <= 0:
            break
        if order.emissions.filter(kind=DocumentKind.CREDIT_NOTE, refund_external_id=refund.external_id).exists():
            continue
        decision = decide_credit_note_for(
            ruleset=order.gateway.ruleset,
            order=data,
            refund=refund,
            invoice=invoice,
            remaining=remaining,
            platform=order.gateway.source.platform,
        )
        if decision.action != "emit":
            logger.warning("account=%s order=%s refund %s: %s", order.account_id, order.pk, refund.external_id, decision.reasons)
            continue
        emission = _emission_create(order=order, kind=DocumentKind.CREDIT_NOTE, sale=decision.sale, refund_external_id=refund.external_id)
        if emission is not None:
            remaining -= decision.sale.paid_total
            created.append(emission)
    return created


def order_emit_now(*, order: Order, actor: Actor) -> Order:
    """A person or an API call asks to emit a waiting / held / skipped / failed order now.

    An earlier emission that may have reached the biller (its outcome was unknown, or it failed on
    transient errors) is re-queued as it is, so the biller is asked about it before anything is
    re-sent; only a rejected one is replaced by a new emission built from the current rules and data.
    The returned order says what happened (ready, or held / skipped with the rules' reasons).
    """
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("gateway__ruleset", "gateway__source", "gateway__biller").get(pk=order.pk)
        if order.status in (OrderStatus.ISSUED, OrderStatus.ISSUING, OrderStatus.READY):
            raise ValidationError(f"Order {order.number} is already {order.get_status_display().lower()}.")
        unfinished = _unfinished_invoice_emission(order)
        if unfinished is not None:
            _emission_requeue(unfinished)
        else:
            data = source_adapter_for(order.gateway.source).parse_order(order.raw)
            _order_decide(order=order, gateway=order.gateway, data=data, backfill=True, by_person=True)
        audit_log_record(account=order.account, actor=actor, action="order.emit_now", obj=order, data={"status": order.status})
    order.refresh_from_db()
    return order


def _unfinished_invoice_emission(order: Order) -> Emission | None:
    """The latest invoice emission that is not issued and may not be replaced (it may have been issued)."""
    latest = order.emissions.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    if latest is None or latest.status == EmissionStatus.ISSUED or _replaceable(latest):
        return None
    return latest


def _replaceable(emission: Emission) -> bool:
    """A failed emission whose biller said no (or that never reached it) can give way to a new one."""
    if emission.status != EmissionStatus.FAILED:
        return False
    last = emission.attempts.order_by("-number").first()
    return last is None or last.outcome == EmissionAttempt.Outcome.REJECTED


def _emission_requeue(emission: Emission) -> None:
    emission.status, emission.status_reason, emission.next_attempt_at = EmissionStatus.PENDING, "", None
    emission.save(update_fields=["status", "status_reason", "next_attempt_at", "updated_at"])
    if emission.kind == DocumentKind.INVOICE:
        Order.objects.filter(pk=emission.order_id).update(status=OrderStatus.READY, status_reason="", updated_at=timezone.now())
    emission_enqueue(emission.id)


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
            raise ValidationError("Nothing to retry on this order.")
        _emission_requeue(emission)
        audit_log_record(account=order.account, actor=actor, action="order.retry", obj=order)
    order.refresh_from_db()
    return order


@transaction.atomic
def order_skip(*, order: Order, reason: str, actor: Actor) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status in (OrderStatus.ISSUED, OrderStatus.ISSUING):
        raise ValidationError("An issued or issuing order cannot be skipped; refund it to annul its document.")
    if not reason.strip():
        raise ValidationError("Say why the order is skipped.")
    order.emissions.filter(status__in=[EmissionStatus.PENDING, EmissionStatus.HELD]).update(
        status=EmissionStatus.FAILED, status_reason=f"Omitida: {reason}"
    )
    order.status, order.status_reason = OrderStatus.SKIPPED, f"Omitida a mano: {reason}"
    order.save(update_fields=["status", "status_reason", "updated_at"])
    audit_log_record(account=order.account, actor=actor, action="order.skip", obj=order, data={"reason": reason})
    return order


def orders_backfill(*, gateway: Gateway, start: datetime, end: datetime, actor: Actor) -> int:
    """Re-decides the gateway's stored orders created in [start, end) as a backfill (ignoring start date)."""
    count = 0
    ids = list(
        Order.objects.filter(
            gateway=gateway, status__in=OPEN_STATUSES, source_created_at__gte=start, source_created_at__lt=end
        ).values_list("pk", flat=True)
    )
    for order_id in ids:
        order = Order.objects.get(pk=order_id)
        order_ingest(gateway=gateway, raw=order.raw, backfill=True)
        count += 1
    audit_log_record(
        account=gateway.account, actor=actor, action="gateway.backfill", obj=gateway,
        data={"start": start.isoformat(), "end": end.isoformat(), "orders": count},
    )
    return count


def order_refunds_sync(*, order_id: int) -> list[Emission]:
    """Turns the refunds in the order's latest payload into credit notes (after its invoice is issued)."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("gateway__source", "gateway__ruleset").get(pk=order_id)
        if order.status != OrderStatus.ISSUED:
            return []
        data = source_adapter_for(order.gateway.source).parse_order(order.raw)
        return order_credit_notes_sync(order=order, data=data)
