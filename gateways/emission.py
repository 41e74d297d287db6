"""Exactly-once emission of one document.

1. Claim: lock the emission row, check its state, record an ``EmissionAttempt`` and commit.
2. If an earlier attempt's outcome is unknown (its worker died, or the biller timed out), look the
   document up at the biller by our reference first; re-send only when the biller says it has none,
   and hold the emission for review when it cannot tell.
3. Call the biller with no transaction open.
4. Record the result under the lock: a ``Document`` (unique per order, kind and sequence), or a retry
   with backoff for transient errors, or a failure with the biller's message.

Whatever the adapter does, nothing stays "issuing" for ever: a biller whose adapter is not available
holds the emission with that reason; an unexpected error is recorded like a timeout (the call may
have reached the biller), retried with backoff after looking the document up, and fails once the
retries are spent; a document the biller issued differently from what we asked fails the emission
with both sets of figures and is never re-sent.
"""
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billers.base import (
    BillerMismatch,
    BillerNeedsPerson,
    Checkpoint,
    IssuedDocument,
    IssueRequest,
    RejectedBillerError,
    TransientBillerError,
    UnsupportedFeature,
)
from billers.dte.errors import MappingRefused
from billers.dte.sale_json import sale_from_dict
from billers.registry import BillerNotRegistered, biller_adapter_for
from billmysales import metrics
from billmysales.integrations.faults import fault_pause
from billmysales.logging import log_bind
from sources.orderdata import PaymentStatus

from . import events
from .dispatch import emission_enqueue, refunds_enqueue, side_effects_enqueue
from .models import (
    Document,
    DocumentKind,
    Emission,
    EmissionAttempt,
    EmissionStatus,
    Order,
    OrderStatus,
    SideEffect,
    SiiStatus,
)

logger = logging.getLogger(__name__)

ORDER_STATUS_FOR = {
    EmissionStatus.PENDING: OrderStatus.READY,
    EmissionStatus.ISSUING: OrderStatus.ISSUING,
    EmissionStatus.ISSUED: OrderStatus.ISSUED,
    EmissionStatus.FAILED: OrderStatus.FAILED,
    EmissionStatus.HELD: OrderStatus.HELD,
}
Outcome = EmissionAttempt.Outcome
# Payment states after which the store's payload may carry refunds or a cancellation to credit.
REFUND_STATUSES = (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED, PaymentStatus.CANCELLED)


@dataclass(frozen=True)
class Claim:
    emission: Emission
    attempt_id: int
    reconcile_first: bool
    checkpoint: dict

    @property
    def emission_id(self) -> int:
        return self.emission.pk


def _set_status(emission: Emission, status: str, reason: str = "", next_attempt_at=None, extra_fields=()) -> None:
    emission.status, emission.status_reason, emission.next_attempt_at = status, reason, next_attempt_at
    emission.save(update_fields=["status", "status_reason", "next_attempt_at", "updated_at", *extra_fields])
    if emission.kind == DocumentKind.INVOICE:
        Order.objects.filter(pk=emission.order_id).update(
            status=ORDER_STATUS_FOR[status], status_reason=reason, updated_at=timezone.now()
        )


def _lease() -> timedelta:
    return timedelta(seconds=settings.BMS_EMISSION_LEASE_SECONDS)


def _retry_delay(failures: int) -> float | None:
    """Seconds before the next try after ``failures`` transient failures, or None when out of tries."""
    delays = settings.BMS_RETRY_DELAYS
    if failures > len(delays):
        return None
    base = delays[failures - 1]
    return base * random.uniform(0.8, 1.2)


@transaction.atomic
def emission_claim(*, emission_id: int) -> Claim | None:
    # The order's raw payload and decision (several KB of JSON) are not needed to issue: not read.
    emission = (
        Emission.objects.select_for_update(of=("self",)).select_related("order__gateway__biller")
        .defer("order__raw", "order__decision").get(pk=emission_id)
    )
    now = timezone.now()
    if emission.status in (EmissionStatus.ISSUED, EmissionStatus.FAILED, EmissionStatus.HELD):
        return None
    # attempt_count is written with each attempt, in the same transaction: none yet, nothing to read.
    last = emission.attempts.order_by("-number").first() if emission.attempt_count else None
    reconcile_first = False
    if emission.status == EmissionStatus.ISSUING:
        if last is not None and last.outcome == Outcome.PENDING and now - last.started_at < _lease():
            return None  # another worker is calling the biller right now
        if last is not None and last.outcome == Outcome.PENDING:
            last.outcome = Outcome.UNKNOWN
            last.error_message = _("El proceso se detuvo durante este intento; el resultado es desconocido.")
            last.save(update_fields=["outcome", "error_message"])
        reconcile_first = True
    elif emission.next_attempt_at is not None and emission.next_attempt_at > now:
        return None  # a retry is scheduled for later
    elif last is not None and last.outcome in (Outcome.TRANSIENT, Outcome.UNKNOWN):
        # A timeout or 5xx may have issued the document anyway: ask before sending again.
        reconcile_first = True
    if emission.order.is_test and not emission.order.gateway.biller.is_certification:
        _set_status(emission, EmissionStatus.HELD, _("Las ventas de prueba solo se emiten con un facturador en certificación."))
        emission.order.refresh_from_db()
        events.order_held(emission.order)
        return None
    attempt = EmissionAttempt.objects.create(
        account_id=emission.account_id,
        emission=emission,
        number=(last.number if last else 0) + 1,
        request_summary={
            "reference": emission.reference,
            "tipo_dte": emission.sale["tipo_dte"],
            "paid_total": emission.sale["paid_total"],
            "lines": len(emission.sale["lines"]),
            "reconcile_first": reconcile_first,
        },
        # A multi-step biller continues from the last step an earlier attempt recorded.
        checkpoint=last.checkpoint if last else {},
    )
    emission.attempt_count = attempt.number
    _set_status(emission, EmissionStatus.ISSUING, extra_fields=("attempt_count",))
    return Claim(emission=emission, attempt_id=attempt.id, reconcile_first=reconcile_first, checkpoint=attempt.checkpoint)


def emission_run(*, emission_id: int) -> Document | None:
    """Runs one attempt of the emission if it is due. Safe to call any number of times, concurrently."""
    claim = emission_claim(emission_id=emission_id)
    if claim is None:
        return None
    fault_pause("after_claim")
    emission = claim.emission
    log_bind(account_id=emission.account_id, gateway_id=emission.order.gateway_id, order_id=emission.order_id)
    started = time.monotonic()
    checkpoint = Checkpoint(claim.checkpoint, saver=lambda data: _save_checkpoint(claim, data))
    try:
        adapter = biller_adapter_for(emission.order.gateway.biller)
        if claim.reconcile_first:
            found = adapter.find_by_reference(emission.reference, checkpoint)
            if found is not None:
                return _record_success(claim, found, started, Outcome.RECONCILED)
        request = IssueRequest(
            sale=sale_from_dict(emission.sale), reference=emission.reference, fecha=timezone.localdate(),
            prepared=emission.prepared,
        )
        issued = adapter.issue(request, checkpoint)
        fault_pause("after_biller_answer")
    except TransientBillerError as exc:
        _record_transient(claim, exc, started)
        return None
    except (RejectedBillerError, MappingRefused) as exc:
        _record_rejected(claim, exc, started)
        return None
    except BillerMismatch as exc:
        _record_failed(claim, exc, started, Outcome.MISMATCH, exc.message)
        return None
    except BillerNeedsPerson as exc:
        _record_held(claim, exc.message, started, exc)
        return None
    except BillerNotRegistered as exc:
        _record_held(claim, exc.message, started, exc)
        return None
    except UnsupportedFeature as exc:
        _record_held(
            claim, _("No se sabe si el documento se emitió: %(error)s Revise en el facturador y reintente u omita "
                     "la orden.") % {"error": exc.message}, started, exc,
        )
        return None
    except Exception as exc:  # an adapter bug or an unforeseen answer: the call may have reached the biller
        logger.exception("account=%s emission=%s unexpected error in the biller adapter", emission.account_id, emission.id)
        _record_transient(claim, TransientBillerError(_("Error inesperado: %(kind)s: %(error)s") % {
            "kind": type(exc).__name__, "error": exc}), started, Outcome.UNKNOWN)
        return None
    return _record_success(claim, issued, started, Outcome.SUCCESS)


def _save_checkpoint(claim: Claim, data: dict) -> None:
    # Outside any transaction (no transaction is open across the biller call), so it is committed now.
    EmissionAttempt.objects.filter(pk=claim.attempt_id).update(checkpoint=data)


def _finish_attempt(claim: Claim, outcome: str, started: float, error: Exception | None = None) -> None:
    EmissionAttempt.objects.filter(pk=claim.attempt_id).update(
        outcome=outcome,
        duration_ms=int((time.monotonic() - started) * 1000),
        error_class=type(error).__name__ if error else "",
        error_message=(getattr(error, "message", None) or str(error))[:2000] if error else "",
    )
    metrics.attempt_finished(claim.emission, outcome, error, time.monotonic() - started)


@transaction.atomic
def _record_success(claim: Claim, issued: IssuedDocument, started: float, outcome: str) -> Document:
    """One conditional UPDATE takes the emission's lock and marks it issued unless another worker (which
    presumed this attempt dead) recorded it first; the rows loaded at the claim are used as they are
    (their fields the document copies cannot change), and the order's payment status is read fresh by
    the UPDATE that marks it issued."""
    emission = claim.emission
    now = timezone.now()
    recorded = Emission.objects.filter(pk=emission.pk).exclude(status=EmissionStatus.ISSUED).update(
        status=EmissionStatus.ISSUED, status_reason="", next_attempt_at=None, updated_at=now,
    )
    _finish_attempt(claim, outcome, started)
    if not recorded:
        # Another worker recorded it after presuming this attempt dead: keep the one document.
        return Document.objects.get(emission_id=emission.pk)
    emission.status, emission.status_reason, emission.next_attempt_at, emission.updated_at = EmissionStatus.ISSUED, "", None, now
    order = emission.order
    credited = None
    if emission.kind == DocumentKind.CREDIT_NOTE:
        credited = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    biller = order.gateway.biller
    document = Document.objects.create(
        account_id=emission.account_id,
        order=order,
        emission=emission,
        kind=emission.kind,
        sequence=emission.sequence,
        tipo_dte=issued.tipo_dte,
        folio=issued.folio,
        fecha=issued.fecha,
        mnt_total=int(issued.totals.get("MntTotal", 0)),
        totals=issued.totals,
        biller=biller,
        biller_document_id=issued.biller_document_id,
        certification=biller.is_certification,
        xml=issued.xml,
        pdf=issued.pdf,
        pdf_url=issued.pdf_url,
        sii_track_id=issued.sii_track_id,
        sii_status=issued.sii_status or SiiStatus.UNKNOWN,
        credited_document=credited,
    )
    metrics.document_issued(document, emission)
    payment_status = order.payment_status
    if emission.kind == DocumentKind.INVOICE:
        payment_status = _order_mark_issued(order, now)
    events.document_issued(document)
    SideEffect.objects.bulk_create(
        [SideEffect(account_id=emission.account_id, document=document, kind=kind) for kind in SideEffect.Kind.values]
    )
    side_effects_enqueue(document.id)
    if emission.kind == DocumentKind.INVOICE and payment_status in REFUND_STATUSES:
        # Refunds that arrived while the invoice was in flight become credit notes now.
        refunds_enqueue(emission.order_id)
    logger.info(
        "account=%s order=%s issued DTE %s folio %s (%s)",
        emission.account_id, emission.order_id, document.tipo_dte, document.folio, outcome,
    )
    return document


def _order_mark_issued(order: Order, now) -> str:
    """Marks the order issued; returns its payment status as committed now (a refund may have arrived
    while the biller was called)."""
    table, quote = Order._meta.db_table, connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(table)} SET status = %s, status_reason = '', updated_at = %s WHERE id = %s RETURNING payment_status",
            [OrderStatus.ISSUED, connection.ops.adapt_datetimefield_value(now), order.pk],
        )
        order.payment_status = cursor.fetchone()[0]
    order.status, order.status_reason, order.updated_at = OrderStatus.ISSUED, "", now
    return order.payment_status


@transaction.atomic
def _record_transient(claim: Claim, exc: TransientBillerError, started: float, outcome: str = Outcome.TRANSIENT) -> None:
    emission = Emission.objects.select_for_update().get(pk=claim.emission_id)
    _finish_attempt(claim, outcome, started, exc)
    failures = emission.attempts.filter(outcome__in=[Outcome.TRANSIENT, Outcome.UNKNOWN]).count()
    delay = _retry_delay(failures)
    if delay is None:
        reason = _("El facturador no respondió tras %(n)s intentos: %(error)s") % {"n": failures, "error": exc.message}
        _set_status(emission, EmissionStatus.FAILED, reason)
        events.document_failed(emission, reason)
        logger.error("account=%s emission=%s failed after %s attempts: %s", emission.account_id, emission.id, failures, exc)
        return
    next_at = timezone.now() + timedelta(seconds=delay)
    _set_status(emission, EmissionStatus.PENDING, _("Reintento programado: %(error)s") % {"error": exc.message}, next_attempt_at=next_at)
    emission_enqueue(emission.id, countdown=delay)
    logger.warning("account=%s emission=%s transient error, retry in %.0fs: %s", emission.account_id, emission.id, delay, exc)


def _record_rejected(claim: Claim, exc: RejectedBillerError | MappingRefused, started: float) -> None:
    _record_failed(claim, exc, started, Outcome.REJECTED, _("Rechazado por el facturador: %(error)s") % {"error": exc.message})


@transaction.atomic
def _record_failed(claim: Claim, exc: Exception, started: float, outcome: str, reason: str) -> None:
    emission = Emission.objects.select_for_update(of=("self",)).select_related("order").get(pk=claim.emission_id)
    _finish_attempt(claim, outcome, started, exc)
    _set_status(emission, EmissionStatus.FAILED, reason)
    events.document_failed(emission, reason)
    logger.warning("account=%s emission=%s %s: %s", emission.account_id, emission.id, outcome, exc)


@transaction.atomic
def _record_held(claim: Claim, reason: str, started: float, exc: Exception) -> None:
    emission = Emission.objects.select_for_update(of=("self",)).select_related("order").get(pk=claim.emission_id)
    _finish_attempt(claim, Outcome.UNKNOWN, started, exc)
    _set_status(emission, EmissionStatus.HELD, reason)
    if emission.kind == DocumentKind.INVOICE:
        emission.order.refresh_from_db()
        events.order_held(emission.order)
    logger.warning("account=%s emission=%s held: %s", emission.account_id, emission.id, reason)
