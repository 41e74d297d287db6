"""Thin Celery tasks: ids in, one service call. Retries of biller errors are the emission's own
business (recorded per attempt, with backoff), and crashed ingests are the ingest service's, so these
tasks never auto-retry. They are published by name from ``gateways.dispatch``."""
import logging

from celery import shared_task

from billmysales.logging import log_context

from . import emission, outbox, polling, services, side_effects, sweeper
from .services import bulk_jobs

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def inbound_events_dispatch_task() -> int:
    """Queues the ingestion of the deliveries stored since the last round (see ``gateways.dispatch``)."""
    return services.inbound_events_dispatch()


@shared_task(acks_late=True)
def order_ingest_task(event_id: int) -> None:
    """Ingests the delivery and, in the same task, runs the invoice emission it created: one task, one
    message and one acknowledgement per order instead of two (the Celery and broker work per message
    was about a third of a worker's CPU). The emission is committed before it runs, so a worker that
    dies in between leaves it to the sweeper, as a lost emit message would. The biller's wait happens
    here, so the ingest queue is consumed by the threads pool (docker-compose.yml)."""
    _ingest_and_emit(event_id)


@shared_task(acks_late=True)
def orders_ingest_task(event_ids: list[int]) -> None:
    """``order_ingest_task`` for each delivery of a batch (``gateways.dispatch.inbound_events_enqueue``).
    One delivery's unexpected failure is logged and does not stop the others: its event or emission stays
    pending and the sweeper queues it again, as after a lost message."""
    for event_id in event_ids:
        try:
            _ingest_and_emit(event_id)
        except Exception:
            logger.exception("event=%s ingest of a batched delivery failed; left for the sweeper", event_id)


def _ingest_and_emit(event_id: int) -> None:
    # Its own log context: the ids one delivery binds never appear on the next one's lines.
    with log_context(event_id=event_id):
        created: list[int] = []
        services.inbound_event_process(event_id=event_id, emission_queue=created.append)
        for emission_id in created:
            with log_context(emission_id=emission_id):
                emission.emission_run(emission_id=emission_id)


@shared_task(acks_late=True)
def order_emit_task(emission_id: int) -> None:
    emission.emission_run(emission_id=emission_id)


@shared_task(acks_late=True)
def order_refunds_task(order_id: int) -> None:
    services.order_refunds_sync(order_id=order_id)


@shared_task(acks_late=True)
def document_side_effects_task(document_id: int) -> None:
    side_effects.document_side_effects_run(document_id=document_id)


@shared_task
def sweep_stuck_orders_task() -> dict:
    return sweeper.stuck_work_requeue()


@shared_task
def sources_poll_due_task() -> int:
    return polling.sources_poll_due()


@shared_task(acks_late=True)
def source_poll_task(source_id: int) -> dict:
    return polling.source_poll(source_id=source_id)


@shared_task(acks_late=True)
def backfill_job_task(job_id: int) -> None:
    polling.backfill_job_run(job_id=job_id)


@shared_task(acks_late=True)
def bulk_job_task(job_id: int) -> None:
    bulk_jobs.bulk_job_run(job_id=job_id)


@shared_task
def documents_sii_status_due_task() -> int:
    return services.documents_sii_status_due()


@shared_task(acks_late=True)
def document_sii_status_task(document_id: int) -> None:
    services.document_sii_status_refresh(document_id=document_id)


@shared_task(acks_late=True)
def gateway_webhooks_task(gateway_id: int) -> str:
    return services.gateway_webhooks_ensure(gateway_id=gateway_id)


@shared_task(acks_late=True)
def webhook_delivery_task(delivery_id: int) -> None:
    outbox.webhook_delivery_run(delivery_id=delivery_id)


@shared_task(acks_late=True)
def document_void_task(document_id: int) -> None:
    services.document_void_run(document_id=document_id)
