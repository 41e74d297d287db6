"""Bulk actions a person asks for from the dashboard — emit now or retry many orders, read many unread
deliveries again — run by a worker in chunks, with their progress on a ``BulkJob`` row (the progress
bars read it).

Each item goes through the same service as the single action (``order_emit_now``, ``order_retry``,
``inbound_event_reprocess``) with the person who asked as the actor, so the audit log names them and a
job never does more than they could do one by one. The items are fixed when the job is created, at
most ``BULK_JOB_MAX_ITEMS`` (the newest). A task run handles ``CHUNK`` items and queues the next run,
so no run nears Celery's time limit and other work interleaves. The row's lease keeps a second
delivery of the same task from running a chunk twice; a job whose worker died keeps its progress and
goes on from there when the sweeper queues it again (``bulk_jobs_resume``).
"""
import logging
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor, audit_log_record

from ..dispatch import enqueue_after_commit
from ..models import BulkJob, InboundEvent, Order, OrderStatus
from .ingest import inbound_event_reprocess
from .order_actions import order_emit_now, order_retry

logger = logging.getLogger(__name__)

BULK_JOB_TASK = "gateways.tasks.bulk_job_task"
BULK_JOB_MAX_ITEMS = 10_000
CHUNK = 50
LEASE = timedelta(minutes=5)
# How many failed items a job keeps with their reason (the counters count them all).
FAILURES_KEPT = 100
EMITTED = (OrderStatus.READY, OrderStatus.ISSUING, OrderStatus.ISSUED)


def bulk_job_create(*, account: Account, kind: str, item_ids: list[int], description: str, actor: Actor) -> BulkJob:
    """Records the job for ``item_ids`` (orders, or unread deliveries for ``reprocess``) and queues it."""
    if kind not in BulkJob.Kind.values:
        raise ValidationError(_("Acción masiva desconocida."))
    ids = list(dict.fromkeys(int(item) for item in item_ids))[:BULK_JOB_MAX_ITEMS]
    if not ids:
        raise ValidationError(_("No hay nada que procesar con esa selección."))
    with transaction.atomic():
        job = BulkJob.objects.create(
            account=account, kind=kind, item_ids=ids, total=len(ids), description=description[:300],
            created_by=actor.user, actor_role=actor.role or "", support_mode=actor.support_mode,
        )
        audit_log_record(account=account, actor=actor, action=f"bulk_job.{kind}", obj=job, data={"items": len(ids)})
        enqueue_after_commit(BULK_JOB_TASK, (job.pk,))
    return job


def _emit(job: BulkJob, item_id: int, actor: Actor) -> tuple[str, str]:
    order = Order.objects.filter(account_id=job.account_id, pk=item_id).first()
    if order is None:
        return str(item_id), _("no encontrada")
    label = order.number or order.external_id
    order = order_emit_now(order=order, actor=actor)
    if order.status in EMITTED:
        return label, ""
    return label, f"{order.get_status_display()}: {order.status_reason}"


def _retry(job: BulkJob, item_id: int, actor: Actor) -> tuple[str, str]:
    order = Order.objects.filter(account_id=job.account_id, pk=item_id).first()
    if order is None:
        return str(item_id), _("no encontrada")
    order_retry(order=order, actor=actor)
    return order.number or order.external_id, ""


def _reprocess(job: BulkJob, item_id: int, actor: Actor) -> tuple[str, str]:
    event = InboundEvent.objects.filter(account_id=job.account_id, pk=item_id).select_related("gateway__account").first()
    if event is None:
        return str(item_id), _("no encontrada")
    label = _("entrega %(id)s") % {"id": event.delivery_id}
    try:
        inbound_event_reprocess(event=event, actor=actor)
    except ValueError as exc:
        return label, str(exc)
    return label, ""


HANDLERS = {BulkJob.Kind.EMIT: _emit, BulkJob.Kind.RETRY: _retry, BulkJob.Kind.REPROCESS: _reprocess}


def bulk_job_run(*, job_id: int) -> BulkJob:
    """Runs the next chunk of the job (if no other run holds it) and queues the rest."""
    now = timezone.now()
    claimed = (
        BulkJob.objects.filter(pk=job_id, status__in=(BulkJob.Status.PENDING, BulkJob.Status.RUNNING))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(status=BulkJob.Status.RUNNING, lease_until=now + LEASE, updated_at=now)
    )
    job = BulkJob.objects.select_related("created_by").get(pk=job_id)
    if not claimed:
        return job
    actor = Actor(user=job.created_by, role=job.actor_role, support_mode=job.support_mode)
    handler = HANDLERS[job.kind]
    for item_id in job.item_ids[job.processed: job.processed + CHUNK]:
        try:
            label, problem = handler(job, item_id, actor)
        except ValidationError as exc:
            label, problem = str(item_id), " ".join(exc.messages)
        except Exception:  # one broken item must not stop the others; it is logged with the job
            logger.exception("account=%s bulk_job=%s item=%s crashed", job.account_id, job.pk, item_id)
            label, problem = str(item_id), _("Error inesperado al procesarla; quedó registrado.")
        job.processed += 1
        if problem:
            job.failed += 1
            if len(job.failures) < FAILURES_KEPT:
                job.failures.append({"id": item_id, "label": label, "message": problem[:500]})
        else:
            job.succeeded += 1
        job.save(update_fields=["processed", "succeeded", "failed", "failures", "updated_at"])
    finished = job.processed >= job.total
    job.status = BulkJob.Status.DONE if finished else BulkJob.Status.RUNNING
    job.finished_at = timezone.now() if finished else None
    job.lease_until = None
    job.save(update_fields=["status", "finished_at", "lease_until", "updated_at"])
    if not finished:
        enqueue_after_commit(BULK_JOB_TASK, (job.pk,))
    return job


def bulk_jobs_resume(*, stale_before) -> int:
    """For the sweeper: queues again the unfinished jobs nobody has advanced since ``stale_before`` (a lost
    message, a dead worker), stamped so a job waiting in the broker is sent again once per threshold."""
    ids = list(
        BulkJob.objects.filter(status__in=(BulkJob.Status.PENDING, BulkJob.Status.RUNNING), updated_at__lt=stale_before)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .values_list("pk", flat=True)[:100]
    )
    BulkJob.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    for job_id in ids:
        enqueue_after_commit(BULK_JOB_TASK, (job_id,))
    return len(ids)
