"""Queueing the pipeline's work: tasks are named, not imported, so the pipeline never imports its tasks.

Every publish happens after the transaction that wrote the row commits (``on_commit``): a task never
runs before its row exists, and a row is never left without its task unless the broker is down — then
the publish is logged and skipped, and the sweeper (``gateways.sweeper``) queues the row later.
A request never fails because the broker is away: its data is already safe.
"""
import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

INGEST_TASK = "gateways.tasks.order_ingest_task"
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


def emission_enqueue(emission_id: int, countdown: float | None = None) -> None:
    enqueue_after_commit(EMIT_TASK, (emission_id,), countdown)


def refunds_enqueue(order_id: int) -> None:
    enqueue_after_commit(REFUNDS_TASK, (order_id,))


def side_effects_enqueue(document_id: int) -> None:
    enqueue_after_commit(SIDE_EFFECTS_TASK, (document_id,))
