"""From a store's delivery to a decided order: the raw event committed, the order upserted, the rules
asked, the biller's check run, and the invoice's emission queued.

Nothing accepted is invisible and nothing crash-loops: an order the store's parser cannot read marks
its event ``rejected`` with the reason (field and problem, in Spanish), logged with the account and
gateway; an event whose processing crashes is retried a few times and then parked (``failed``) with
its last error. Both are listed for the merchant and can be reprocessed after a fix.
"""
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, replace

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import Actor, audit_log_record
from billers.dte.sale import CONSUMIDOR_FINAL_RUT
from billmysales import metrics
from billmysales.logging import log_bind
from rules.services import decide_order
from sources.base import OrderParseError
from sources.orderdata import OrderData
from sources.registry import SourceNotRegistered, source_adapter_for

from .. import events
from ..dispatch import inbound_event_enqueue, inbound_event_wake, inbound_events_enqueue, inbound_events_wake_clear
from ..models import DocumentKind, Gateway, InboundEvent, Order, OrderStatus
from .credit_notes import order_credit_notes_sync
from .emissions import biller_check, emission_create, unfinished_invoice_emission

logger = logging.getLogger(__name__)

# Order statuses in which the invoice may still be (re)decided when the store sends a new version.
OPEN_STATUSES = (OrderStatus.RECEIVED, OrderStatus.WAITING, OrderStatus.HELD, OrderStatus.SKIPPED)
# Seconds before an event whose processing crashed is tried again (then it is parked).
CRASH_RETRY_DELAYS = (10, 60, 300)


def inbound_event_receive(
    *, gateway: Gateway, delivery_id: str, topic: str, payload: dict | None, problem: str = "", body_text: str = ""
) -> tuple[InboundEvent, bool]:
    """Commits the raw delivery once per (gateway, delivery id) and queues its ingestion.

    A delivery whose authentic body cannot be read (``problem``) is stored rejected with the reason and
    its text, so the merchant sees it. Returns (event, created); a replay creates nothing.

    One ``INSERT … ON CONFLICT DO NOTHING`` decides: concurrent deliveries of one id insert one row and
    the others read it (no savepoint, no SELECT before the INSERT). A readable delivery writes nothing
    else, so outside a caller's transaction that statement commits on its own (autocommit: no BEGIN and
    COMMIT round trips) and a dispatch round is woken to queue its ingestion (``gateways.dispatch``); an
    unreadable one commits with the outbox rows that report it.
    """
    now = timezone.now()
    log_bind(account_id=gateway.account_id, gateway_id=gateway.pk)
    values = {
        "account_id": gateway.account_id, "gateway_id": gateway.pk, "delivery_id": delivery_id, "topic": topic,
        "payload": payload, "body_text": body_text,
        "status": InboundEvent.Status.REJECTED if problem else InboundEvent.Status.PENDING,
        "attempts": 0, "received_at": now, "processed_at": now if problem else None, "requeued_at": None, "error": problem,
    }
    with transaction.atomic() if problem else nullcontext():
        pk = _insert_unless_exists(InboundEvent, values, unique=("gateway_id", "delivery_id"))
        metrics.delivery_received(created=pk is not None, unreadable=bool(problem))
        if pk is None:
            # A store's retry: the stored row, without reading its (large) body back.
            return InboundEvent.objects.defer("payload", "body_text").get(gateway_id=gateway.pk, delivery_id=delivery_id), False
        event = InboundEvent(pk=pk, **values)
        if problem:
            logger.warning("account=%s gateway=%s event=%s unreadable delivery: %s", gateway.account_id, gateway.pk, event.pk, problem)
            events.order_unreadable(event, problem)
        else:
            inbound_event_wake(event.id)
    return event, True


# Deliveries one dispatch round queues (one UPDATE claims them, then one publish each after commit).
DISPATCH_BATCH = 500


def inbound_events_dispatch() -> int:
    """Queues the ingest task of every pending delivery not queued yet (``requeued_at`` empty), oldest
    first, in batches; returns how many. Each batch is claimed with ``FOR UPDATE SKIP LOCKED`` and stamped
    ``requeued_at``, so concurrent dispatchers never queue one delivery twice, and the sweeper queues it
    again only if it is still pending long after. The wake-up key is cleared *before* each look, so a
    delivery committed after the look sets it again and wakes another dispatcher: none is left behind."""
    queued = 0
    table, quote = InboundEvent._meta.db_table, connection.ops.quote_name
    sql = (
        f"UPDATE {quote(table)} SET requeued_at = %s WHERE id IN (SELECT id FROM {quote(table)} WHERE status = %s "
        "AND requeued_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
    )
    while True:
        inbound_events_wake_clear()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [connection.ops.adapt_datetimefield_value(timezone.now()), InboundEvent.Status.PENDING,
                                     DISPATCH_BATCH])
                ids = sorted(row[0] for row in cursor.fetchall())
            inbound_events_enqueue(ids)
        queued += len(ids)
        if len(ids) < DISPATCH_BATCH:
            return queued


def _insert_unless_exists(model, values: dict, *, unique: tuple[str, ...]) -> int | None:
    """INSERT the row unless one with the same ``unique`` columns exists; its new id, or None."""
    conn = connections[DEFAULT_DB_ALIAS]
    key = (model, tuple(values), unique)
    statement = _INSERT_STATEMENTS.get(key)
    if statement is None:
        # Built once per process: at a webhook peak, assembling it cost more than running it.
        meta, quote = model._meta, conn.ops.quote_name
        fields = tuple(meta.get_field(name) for name in values)
        sql = "INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({unique}) DO NOTHING RETURNING {pk}".format(
            table=quote(meta.db_table), columns=", ".join(quote(f.column) for f in fields),
            placeholders=", ".join(["%s"] * len(fields)), unique=", ".join(quote(meta.get_field(name).column) for name in unique),
            pk=quote(meta.pk.column),
        )
        statement = _INSERT_STATEMENTS[key] = (sql, fields)
    sql, fields = statement
    with conn.cursor() as cursor:
        cursor.execute(sql, [field.get_db_prep_save(value, conn) for field, value in zip(fields, values.values(), strict=True)])
        row = cursor.fetchone()
    return row[0] if row else None


_INSERT_STATEMENTS: dict[tuple, tuple[str, tuple]] = {}


def inbound_event_process(*, event_id: int, emission_queue: Callable[[int], None] | None = None) -> Order | None:
    """Reads the event's order and decides it. ``emission_queue``: called with the id of the invoice
    emission this creates, once committed, instead of publishing its emit task (the ingest task runs it
    right after; see ``gateways.tasks``)."""
    event = InboundEvent.objects.select_related("gateway__source", "gateway__ruleset", "gateway__biller").get(pk=event_id)
    log_bind(account_id=event.account_id, gateway_id=event.gateway_id)
    if event.status != InboundEvent.Status.PENDING:
        return None
    metrics.ingest_started(event)
    try:
        # The order and the event's "processed" mark commit together: one transaction.
        with transaction.atomic():
            order = _order_ingest(gateway=event.gateway, raw=event.payload, emission_queue=emission_queue)
            InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.PROCESSED, error="", processed_at=timezone.now())
    except (OrderParseError, SourceNotRegistered) as exc:
        logger.warning("account=%s gateway=%s event=%s unreadable order: %s", event.account_id, event.gateway_id, event.id, exc)
        _event_finish(event, InboundEvent.Status.REJECTED, exc.message)
        return None
    except Exception as exc:  # a bug or a database refusal: retried a few times, then parked, never looped
        _event_crashed(event, exc)
        return None
    return order


def _event_finish(event: InboundEvent, status: str, error: str) -> None:
    with transaction.atomic():
        InboundEvent.objects.filter(pk=event.pk).update(status=status, error=error, processed_at=timezone.now())
        if status != InboundEvent.Status.PROCESSED:
            event.status = status
            events.order_unreadable(event, error)


def _event_crashed(event: InboundEvent, exc: Exception) -> None:
    attempts = event.attempts + 1
    error = _("Error al procesar la entrega (intento %(n)s): %(kind)s: %(detail)s") % {
        "n": attempts, "kind": type(exc).__name__, "detail": str(exc)[:500],
    }
    limit = settings.BMS_INGEST_MAX_ATTEMPTS
    with transaction.atomic():
        if attempts >= limit:
            InboundEvent.objects.filter(pk=event.pk).update(
                status=InboundEvent.Status.FAILED, attempts=attempts, error=error, processed_at=timezone.now()
            )
            event.status = InboundEvent.Status.FAILED
            events.order_unreadable(event, error)
        else:
            InboundEvent.objects.filter(pk=event.pk).update(attempts=attempts, error=error, requeued_at=timezone.now())
            inbound_event_enqueue(event.pk, countdown=CRASH_RETRY_DELAYS[min(attempts, len(CRASH_RETRY_DELAYS)) - 1])
    log = logger.error if attempts >= limit else logger.warning
    log("account=%s gateway=%s event=%s ingest crashed (%s/%s)%s: %r", event.account_id, event.gateway_id, event.pk,
        attempts, limit, ", parked" if attempts >= limit else "", exc, exc_info=attempts >= limit)


@transaction.atomic
def inbound_event_reprocess(*, event: InboundEvent, actor: Actor) -> InboundEvent:
    """After a fix (a field mapping, a connection), an unread or failed event is read again."""
    if event.status not in (InboundEvent.Status.REJECTED, InboundEvent.Status.FAILED):
        raise ValueError(_("Solo se reprocesan entregas no leídas o que fallaron."))
    if event.payload is None:
        raise ValueError(_("El cuerpo de esta entrega no es JSON legible: no hay orden que leer de nuevo."))
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.PENDING, attempts=0, error="", processed_at=None
    )
    inbound_event_enqueue(event.pk)
    audit_log_record(account=event.gateway.account, actor=actor, action="inbound_event.reprocess", obj=event)
    event.refresh_from_db()
    return event


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
        "currency": data.currency,
        "buyer_name": data.buyer.name[:200],
        "buyer_email": data.buyer.email[:254],
        "raw": data.raw,
        "is_test": data.is_test,
        "source_created_at": data.created_at,
    }


def _order_insert_unless_exists(order: Order) -> bool:
    """INSERTs the new, decided order in one statement, unless another delivery of it committed first
    (then nothing is written and False is returned: the caller locks that row and goes on with it)."""
    values = {f.attname: f.pre_save(order, True) for f in Order._meta.concrete_fields if not f.primary_key}
    pk = _insert_unless_exists(Order, values, unique=("gateway_id", "external_id"))
    if pk is None:
        return False
    order.pk = pk
    order._state.adding = False
    return True


def order_ingest(*, gateway: Gateway, raw: dict, backfill: bool = False, is_test: bool = False) -> Order:
    """Idempotent upsert of the order and its decision; queues the emission when the rules say emit."""
    with transaction.atomic():
        return _order_ingest(gateway=gateway, raw=raw, backfill=backfill, is_test=is_test)


def _order_ingest(
    *, gateway: Gateway, raw: dict, backfill: bool = False, is_test: bool = False, emission_queue: Callable[[int], None] | None = None
) -> Order:
    """``order_ingest`` inside the caller's transaction.

    A new order is decided first and INSERTed with its decision (INSERT … ON CONFLICT DO NOTHING): one
    statement, no savepoint, no UPDATE after it. A known order is locked (SELECT … FOR UPDATE) before
    anything is decided, so concurrent deliveries of one order are applied one after the other."""
    source = source_adapter_for(gateway.source)
    data = source.parse_order(raw)
    if is_test and not data.is_test:
        data = replace(data, is_test=True)
    order = Order.objects.select_for_update().filter(gateway=gateway, external_id=data.external_id).first()
    if order is None:
        order = Order(account_id=gateway.account_id, gateway=gateway, external_id=data.external_id)
        decision, prepared = _decide(order=order, gateway=gateway, data=data, backfill=backfill,
                                     field_defaults=source.default_field_mapping)
        if _order_insert_unless_exists(order):
            log_bind(account_id=gateway.account_id, gateway_id=gateway.pk, order_id=order.pk)
            _after_decision(order, decision, prepared, new=True, emission_queue=emission_queue)
            return order
        # Another delivery of the same order created it first: wait for its lock and continue with it.
        order = Order.objects.select_for_update().get(gateway=gateway, external_id=data.external_id)
    log_bind(account_id=gateway.account_id, gateway_id=gateway.pk, order_id=order.pk)
    backfill = backfill or order.backfill
    # An emission that may have reached the biller stays in charge (it is reconciled, or waits
    # for a person); a new version of the order never starts another beside it.
    if order.status in OPEN_STATUSES and unfinished_invoice_emission(order) is None:
        order_decide(order=order, gateway=gateway, data=data, backfill=backfill, field_defaults=source.default_field_mapping,
                     emission_queue=emission_queue)
    else:
        # Issued / in flight: never re-issued because it changed; keep the newest payload for refunds.
        Order.objects.filter(pk=order.pk).update(raw=data.raw, payment_status=data.payment_status, updated_at=timezone.now())
        order.raw = data.raw
    if order.status == OrderStatus.ISSUED:
        order_credit_notes_sync(order=order, data=data)
    return order


# What deciding an order writes on it (``order_decide`` saves these and nothing else).
DECIDED_FIELDS = (
    "number", "payment_status", "paid_total", "currency", "buyer_name",
    "buyer_email", "raw", "is_test", "source_created_at", "backfill", "decision", "buyer_rut", "status", "status_reason",
    "updated_at",
)


def order_decide(
    *, order: Order, gateway: Gateway, data: OrderData, backfill: bool, field_defaults: dict[str, str], by_person: bool = False,
    emission_queue: Callable[[int], None] | None = None,
) -> None:
    """Decides the (locked, existing) order and queues its invoice. ``by_person``: someone asked to emit it
    now, so manual mode and an inactive gateway do not make it wait."""
    decision, prepared = _decide(order=order, gateway=gateway, data=data, backfill=backfill, field_defaults=field_defaults,
                                 by_person=by_person)
    order.save(update_fields=DECIDED_FIELDS)
    _after_decision(order, decision, prepared, new=False, emission_queue=emission_queue)


def _decide(
    *, order: Order, gateway: Gateway, data: OrderData, backfill: bool, field_defaults: dict[str, str], by_person: bool = False
):
    """Sets the order's fields, decision and status in memory; returns (decision, what the biller's check prepared)."""
    decision = decide_order(
        ruleset=gateway.ruleset, order=data, field_defaults=field_defaults, backfill=backfill,
        certification=gateway.biller.is_certification,
    )
    for field, value in _order_fields(data).items():
        setattr(order, field, value)
    order.backfill = backfill
    order.decision = _decision_json(decision)
    receptor = decision.sale.receptor if decision.sale is not None else None
    order.buyer_rut = receptor.rut if receptor is not None and receptor.rut != CONSUMIDOR_FINAL_RUT else ""
    # The engine stops at the rule that decided: that last reason is the one the order page leads with.
    decisive = decision.reasons[-1].message if decision.reasons else ""
    waits = not (order.is_test or by_person)
    prepared = None
    if decision.action == "emit" and not gateway.active and waits:
        order.status, order.status_reason = OrderStatus.WAITING, _("La pasarela no está activa: la orden espera su activación.")
    elif decision.action == "emit" and decision.manual and waits:
        order.status, order.status_reason = OrderStatus.WAITING, _("Modo manual: la orden espera que alguien la emita.")
    elif decision.action == "emit":
        prepared, refusal = biller_check(gateway, decision.sale)
        order.status, order.status_reason = (OrderStatus.READY, "") if refusal is None else (OrderStatus.HELD, refusal)
    else:
        order.status = {"skip": OrderStatus.SKIPPED, "hold": OrderStatus.HELD, "wait": OrderStatus.WAITING}[decision.action]
        order.status_reason = decisive
    return decision, prepared


def _after_decision(order: Order, decision, prepared: dict | None, *, new: bool, emission_queue=None) -> None:
    if order.status == OrderStatus.READY:
        emission_create(order=order, kind=DocumentKind.INVOICE, sale=decision.sale, prepared=prepared, order_is_new=new,
                        queue=emission_queue)
    elif order.status == OrderStatus.HELD:
        events.order_held(order)
