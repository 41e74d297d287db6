"""Polling every store that can be polled: the safety net under webhooks, and backfills of a date range.

A beat task runs ``sources_poll_due`` every ``BMS_POLL_TICK_SECONDS``: each connection whose
``next_poll_at`` has come is claimed (its next poll moved forward in the same UPDATE, so two beats
never poll it twice) and polled in its own task. A poll asks the store for the orders changed since the
last successful poll minus the adapter's overlap, page by page; each page's orders become
``InboundEvent`` rows for every gateway of the store, under the order change's key, so a webhook and
a poll of the same change are one event, and the page's cursor is saved in the same transaction. A
poll that keeps failing marks the connection "needs attention" with the store's answer; a token that
cannot be refreshed marks it "reconnect needed" (``sources.services.credentials_refresh``).

A backfill job walks a date range with the same poller and re-decides the orders it finds as a
backfill (the rules' start date does not apply), with its progress on the job row.
"""
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from accounts.services import Actor, audit_log_record
from billmysales.integrations.errors import IntegrationError
from sources.base import OrderPoller, PollBatch
from sources.errors import SourceRejectedError
from sources.models import SourceConnection
from sources.registry import SourceNotRegistered, source_adapter_class, source_adapter_for
from sources.services import connection_status_set

from .dispatch import enqueue_after_commit
from .models import BackfillJob, Gateway, OrderStatus
from .services import inbound_event_receive, order_ingest, orders_backfill

logger = logging.getLogger(__name__)

POLL_TASK = "gateways.tasks.source_poll_task"
BACKFILL_TASK = "gateways.tasks.backfill_job_task"
# Pages one poll run reads before it lets other connections have the worker (it continues next tick).
MAX_PAGES_PER_RUN = 20
# Consecutive failed polls before the connection is shown as needing attention.
FAILURES_BEFORE_ATTENTION = 3


def poll_interval(adapter_class) -> int:
    return int(settings.BMS_POLL_INTERVALS.get(adapter_class.platform, adapter_class.poll_interval_seconds))


def pollable_platforms() -> list[str]:
    from sources.registry import SOURCE_ADAPTERS

    return [platform for platform, adapter in SOURCE_ADAPTERS.items() if issubclass(adapter, OrderPoller)]


def sources_poll_due() -> int:
    """Claims the connections due for a poll and queues one task each."""
    now = timezone.now()
    due = SourceConnection.objects.filter(
        platform__in=pollable_platforms(), status__in=[SourceConnection.Status.ACTIVE, SourceConnection.Status.ERROR],
        gateways__isnull=False,
    ).filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).distinct()
    claimed = 0
    for source_id, platform in due.values_list("pk", "platform")[:500]:
        interval = poll_interval(source_adapter_class(platform))
        with transaction.atomic():
            # Conditional: a concurrent beat that claimed it first leaves nothing to update here.
            if SourceConnection.objects.filter(pk=source_id).filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).update(
                next_poll_at=now + timedelta(seconds=interval)
            ):
                enqueue_after_commit(POLL_TASK, (source_id,))
                claimed += 1
    return claimed


def _window_since(source: SourceConnection, adapter) -> datetime:
    since = parse_datetime(source.cursor.get("since", "")) if source.cursor.get("since") else None
    if since is not None:
        return since
    base = source.last_polled_at or source.created_at
    return base - timedelta(seconds=adapter.overlap_seconds)


def _receive(gateways: list[Gateway], batch: PollBatch) -> int:
    created = 0
    for polled in batch.orders:
        for gateway in gateways:
            _, new = inbound_event_receive(gateway=gateway, delivery_id=polled.change_key[:120], topic="poll", payload=polled.raw)
            created += new
    return created


def source_poll(*, source_id: int) -> dict:
    """Polls one connection from where it left off; see the module docstring."""
    source = SourceConnection.objects.get(pk=source_id)
    try:
        adapter = source_adapter_for(source)
    except SourceNotRegistered as exc:
        connection_status_set(connection=source, status=SourceConnection.Status.ERROR, message=exc.message)
        return {"error": exc.message}
    gateways = list(Gateway.objects.filter(source=source))
    if not isinstance(adapter, OrderPoller) or not gateways or source.status == SourceConnection.Status.RECONNECT:
        return {"skipped": True}
    started = timezone.now()
    since = _window_since(source, adapter)
    vendor_cursor = dict(source.cursor.get("vendor") or {})
    pages = events = 0
    try:
        for _page in range(MAX_PAGES_PER_RUN):
            batch = adapter.poll(cursor=vendor_cursor, since=since, until=None)
            pages += 1
            vendor_cursor = batch.cursor
            with transaction.atomic():
                events += _receive(gateways, batch)
                cursor = {"since": since.isoformat(), "vendor": vendor_cursor} if batch.more else {}
                SourceConnection.objects.filter(pk=source.pk).update(cursor=cursor)
            if not batch.more:
                break
        else:
            # Not finished: continue from the saved cursor at the next tick, without waiting the interval.
            SourceConnection.objects.filter(pk=source.pk).update(next_poll_at=timezone.now())
            return {"pages": pages, "events": events, "more": True}
    except IntegrationError as exc:
        return _poll_failed(source, exc)
    SourceConnection.objects.filter(pk=source.pk).update(last_polled_at=started, poll_failures=0, poll_error="")
    if source.status == SourceConnection.Status.ERROR and source.poll_failures:
        connection_status_set(connection=source, status=SourceConnection.Status.ACTIVE)
    return {"pages": pages, "events": events, "more": False}


def _poll_failed(source: SourceConnection, exc: IntegrationError) -> dict:
    failures = source.poll_failures + 1
    message = exc.message
    SourceConnection.objects.filter(pk=source.pk).update(poll_failures=failures, poll_error=message[:2000])
    logger.warning("account=%s source=%s poll failed (%s in a row): %s", source.account_id, source.pk, failures, message)
    attention = isinstance(exc, SourceRejectedError) or failures >= FAILURES_BEFORE_ATTENTION
    if attention and source.status != SourceConnection.Status.RECONNECT:
        connection_status_set(
            connection=source, status=SourceConnection.Status.ERROR,
            message=_("La consulta de órdenes falla (%(n)s seguidas): %(error)s") % {"n": failures, "error": message},
        )
    return {"error": message, "failures": failures}


# --- backfill jobs ---------------------------------------------------------------------------------


@transaction.atomic
def backfill_job_create(*, gateway: Gateway, start: datetime, end: datetime, actor: Actor) -> BackfillJob:
    if end <= start:
        raise ValueError(_("El fin del rango debe ser posterior al inicio."))
    job = BackfillJob.objects.create(
        account_id=gateway.account_id, gateway=gateway, start=start, end=end, created_by=actor.user,
    )
    audit_log_record(account=gateway.account, actor=actor, action="gateway.backfill", obj=gateway,
                     data={"start": start.isoformat(), "end": end.isoformat(), "job": job.pk})
    enqueue_after_commit(BACKFILL_TASK, (job.pk,))
    return job


def backfill_job_run(*, job_id: int) -> BackfillJob:
    """Walks the job's range with the store's poller (when it has one), then re-decides the orders
    already stored in the range; progress is written after every page."""
    job = BackfillJob.objects.select_related("gateway__source").get(pk=job_id)
    if job.status in (BackfillJob.Status.DONE, BackfillJob.Status.FAILED):
        return job
    BackfillJob.objects.filter(pk=job.pk).update(status=BackfillJob.Status.RUNNING, updated_at=timezone.now())
    gateway = job.gateway
    try:
        adapter = source_adapter_for(gateway.source)
        if isinstance(adapter, OrderPoller):
            cursor = dict(job.cursor or {})
            while True:
                batch = adapter.poll(cursor=cursor, since=job.start, until=job.end)
                for polled in batch.orders:
                    order = order_ingest(gateway=gateway, raw=polled.raw, backfill=True)
                    job.orders_ready += order.status in (OrderStatus.READY, OrderStatus.ISSUED, OrderStatus.ISSUING)
                cursor = batch.cursor
                job.pages += 1
                job.orders_seen += len(batch.orders)
                BackfillJob.objects.filter(pk=job.pk).update(
                    pages=job.pages, orders_seen=job.orders_seen, orders_ready=job.orders_ready, cursor=cursor,
                    updated_at=timezone.now(),
                )
                if not batch.more:
                    break
        job.stored_redecided = orders_backfill(gateway=gateway, start=job.start, end=job.end, actor=Actor.system())
    except (IntegrationError, SourceNotRegistered) as exc:
        BackfillJob.objects.filter(pk=job.pk).update(
            status=BackfillJob.Status.FAILED, error=exc.message, finished_at=timezone.now(), updated_at=timezone.now()
        )
        logger.warning("account=%s gateway=%s backfill %s failed: %s", job.account_id, gateway.pk, job.pk, exc)
        job.refresh_from_db()
        return job
    BackfillJob.objects.filter(pk=job.pk).update(
        status=BackfillJob.Status.DONE, stored_redecided=job.stored_redecided, finished_at=timezone.now(), updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job
