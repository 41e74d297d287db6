"""Queueing the pipeline's work: tasks are named, not imported, so the pipeline never imports its tasks.

Every publish happens after the transaction that wrote the row commits (``on_commit``): a task never
runs before its row exists, and a row is never left without its task unless the broker is down — then
the publish is logged and skipped, and the sweeper (``gateways.sweeper``) queues the row later.
A request never fails because the broker is away: its data is already safe.
"""
import logging

from celery import current_app
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

INGEST_TASK = "gateways.tasks.order_ingest_task"
INGEST_BATCH_TASK = "gateways.tasks.orders_ingest_task"
DISPATCH_TASK = "gateways.tasks.inbound_events_dispatch_task"
EMIT_TASK = "gateways.tasks.order_emit_task"
REFUNDS_TASK = "gateways.tasks.order_refunds_task"
SIDE_EFFECTS_TASK = "gateways.tasks.document_side_effects_task"


def publish(task_name: str, args: tuple, countdown: float | None = None) -> None:
    try:
        current_app.send_task(task_name, args=args, countdown=countdown)
    except Exception as exc:  # kombu/redis raise many classes for "broker unreachable"
        logger.warning("broker unavailable, %s%r left for the sweeper: %s", task_name, args, exc)


def enqueue_after_commit(task_name: str, args: tuple, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: publish(task_name, args, countdown))


def inbound_event_enqueue(event_id: int, countdown: float | None = None) -> None:
    enqueue_after_commit(INGEST_TASK, (event_id,), countdown)


def inbound_events_enqueue(event_ids: list[int]) -> None:
    """Queues the ingestion of ``event_ids`` (a dispatch round's claim) in as few messages as keep every
    ingest thread busy: a backlog larger than the threads consuming it (``BMS_INGEST_CONCURRENCY``) goes
    in messages of up to ``BMS_INGEST_BATCH_MAX`` deliveries, each ingested one after another by one
    thread. Receiving, acknowledging and tracing a Celery message costs more CPU than ingesting and
    emitting the order (BENCHMARKS.md §3); a small backlog still gets one message per delivery."""
    size = max(1, min(settings.BMS_INGEST_BATCH_MAX, -(-len(event_ids) // max(1, settings.BMS_INGEST_CONCURRENCY))))
    for start in range(0, len(event_ids), size):
        chunk = event_ids[start:start + size]
        if len(chunk) == 1:
            enqueue_after_commit(INGEST_TASK, (chunk[0],))
        else:
            enqueue_after_commit(INGEST_BATCH_TASK, (chunk,))


def emission_enqueue(emission_id: int, countdown: float | None = None) -> None:
    enqueue_after_commit(EMIT_TASK, (emission_id,), countdown)


def refunds_enqueue(order_id: int) -> None:
    enqueue_after_commit(REFUNDS_TASK, (order_id,))


def side_effects_enqueue(document_id: int) -> None:
    enqueue_after_commit(SIDE_EFFECTS_TASK, (document_id,))


# --- ingestion wake-ups -----------------------------------------------------------------------------
# A webhook's delivery does not publish its own ingest task: it sets one Redis key, and only the delivery
# that sets it publishes a dispatch task, which queues the ingest task of every delivery not queued yet
# (``gateways.services.ingest.inbound_events_dispatch``). At a peak that is one SET per delivery on the web
# side instead of a Celery publish (~0.35 ms of CPU, a third of the webhook's work). The key expires by
# itself, so a lost dispatch message costs a few seconds, not the deliveries (and the sweeper is there).
WAKE_KEY = "bms:ingest:dispatch"
WAKE_SECONDS = 5
_wake_clients: dict[str, object] = {}


def _wake_client():
    """A Redis client on the broker's server, or None when the broker is not Redis (then each delivery
    publishes its own task)."""
    url = settings.CELERY_BROKER_URL or ""  # Celery's own ``conf.broker_url`` costs 5 µs a look-up
    if not url.startswith(("redis://", "rediss://")):
        return None
    client = _wake_clients.get(url)
    if client is None:
        import redis

        client = _wake_clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    return client


def inbound_event_wake(event_id: int) -> None:
    """After commit: makes sure a dispatch task will queue ``event_id``'s ingestion."""
    transaction.on_commit(lambda: _wake(event_id))


def _wake(event_id: int) -> None:
    client = _wake_client()
    if client is None:
        publish(INGEST_TASK, (event_id,))
        return
    try:
        woke = client.set(WAKE_KEY, 1, nx=True, ex=WAKE_SECONDS)
    except Exception as exc:  # redis raises many classes for "server unreachable"
        logger.warning("broker unavailable, %s%r left for the sweeper: %s", INGEST_TASK, (event_id,), exc)
        return
    if woke:
        publish(DISPATCH_TASK, ())


def inbound_events_wake_clear() -> None:
    """A dispatch task starts a round: a delivery committed after this sets the key and publishes another."""
    client = _wake_client()
    if client is not None:
        try:
            client.delete(WAKE_KEY)
        except Exception as exc:
            logger.warning("broker unavailable, wake-up key not cleared: %s", exc)
