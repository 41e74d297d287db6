"""Prometheus metrics at ``/metrics``.

Two kinds, chosen by what they measure:

* **Events** (counters and histograms) are counted where they happen, in whichever process that is —
  web workers store deliveries, Celery pool processes ingest and issue. They use prometheus-client's
  multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set (docker compose sets it, on a volume shared by
  web and worker) every process writes its values to small memory-mapped files there and ``/metrics``
  sums them, so a worker that is killed or recycled keeps what it counted. Files are named by host and
  pid, so containers sharing the volume never collide. Without the variable (the demo, the tests) each
  process counts for itself. Deriving these from the database instead would mean counting attempt rows
  at every scrape, a scan that grows with the history. Increments are made when the transaction that
  recorded the event commits, so a rolled-back attempt is not counted.
* **State** (gauges) is read at scrape time from PostgreSQL and Redis: orders per working status,
  deliveries and outgoing webhooks not done yet, the age of the oldest paid order not issued yet, the
  Celery queues' lengths. Every query is bounded whatever the table size: counts stop at
  ``BMS_METRICS_COUNT_CAP`` (a value equal to the cap means "at least"), the ages are one index lookup
  (``order_unissued_age``, a partial index on the few unissued orders, was added for this), and each
  query runs under a short ``statement_timeout``. Issued and skipped orders are not counted (they grow
  for ever); their rate is ``bms_documents_issued_total``. A source that cannot be read is reported in
  ``bms_scrape_error{source=...}`` and the rest of the page is still served.

Access: with ``BMS_METRICS_TOKEN`` set, scrapers send ``Authorization: Bearer <token>``; without it the
page answers only loopback clients that came through no proxy (no ``X-Forwarded-For``/``Forwarded``).
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)


def _process_identifier() -> str:
    # Host and pid: containers sharing the directory reuse the same pids.
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)

# Orders that wait for the pipeline (or for a person: held, failed), counted at scrape time.
WORKING_STATUSES = ("received", "waiting", "ready", "issuing", "held", "failed")
# Paid orders accepted for emission and not issued yet: the partial index ``order_unissued_age`` covers them.
UNISSUED_STATUSES = ("received", "ready", "issuing")
# kombu's Redis transport keeps each priority level in its own list: "emit", "emit\x06\x163", ...
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)

INBOUND_DELIVERIES = Counter(
    "bms_inbound_deliveries", "Store deliveries received: stored (new), duplicate (already had it), unreadable (kept, shown).",
    ["result"],
)
INGEST_LAG = Histogram(
    "bms_ingest_lag_seconds", "From a delivery committed to its first ingestion (time in the ingest queue).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
EMISSION_LATENCY = Histogram(
    "bms_emission_latency_seconds",
    "From the paid order accepted for emission to its document issued, retries and backoff included.",
    ["kind"], buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
BILLER_CALL = Histogram(
    "bms_biller_call_seconds", "Duration of one emission attempt at the biller (a lookup by reference included).",
    ["provider"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
EMISSION_ATTEMPTS = Counter(
    "bms_emission_attempts",
    "Emission attempts by outcome (success, reconciled, transient, rejected, mismatch, unknown) and error class.",
    ["provider", "outcome", "error_class"],
)
DOCUMENTS_ISSUED = Counter("bms_documents_issued", "Documents issued.", ["kind", "provider"])


# --- events, counted when the transaction that recorded them commits -----------------------------


def delivery_received(*, created: bool, unreadable: bool = False) -> None:
    result = "duplicate" if not created else "unreadable" if unreadable else "stored"
    transaction.on_commit(INBOUND_DELIVERIES.labels(result).inc)


def ingest_started(event) -> None:
    """The first time an event is ingested: how long it waited in the queue."""
    if event.attempts == 0 and event.received_at is not None:
        INGEST_LAG.observe(max(0.0, (timezone.now() - event.received_at).total_seconds()))


def attempt_finished(emission, outcome: str, error: BaseException | None, seconds: float) -> None:
    provider = emission.order.gateway.biller.provider
    error_class = type(error).__name__ if error is not None else ""

    def count():
        EMISSION_ATTEMPTS.labels(provider, outcome, error_class).inc()
        BILLER_CALL.labels(provider).observe(seconds)

    transaction.on_commit(count)


def document_issued(document, emission) -> None:
    latency = max(0.0, (document.issued_at - emission.created_at).total_seconds())
    provider = document.biller.provider

    def count():
        DOCUMENTS_ISSUED.labels(document.kind, provider).inc()
        EMISSION_LATENCY.labels(document.kind).observe(latency)

    transaction.on_commit(count)


# --- state, read at scrape time -------------------------------------------------------------------


def _capped_count(queryset, cap: int) -> int:
    # COUNT(*) over a LIMITed subquery: at most ``cap`` index entries are read.
    return queryset[:cap].count()


def _age_seconds(oldest, now) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def database_metrics() -> list[GaugeMetricFamily]:
    from gateways.models import InboundEvent, Order, WebhookDelivery

    cap = settings.BMS_METRICS_COUNT_CAP
    now = timezone.now()
    orders = GaugeMetricFamily(
        "bms_orders", f"Orders per working status (issued and skipped are not counted); counts stop at {cap}.", labels=["status"]
    )
    deliveries = GaugeMetricFamily(
        "bms_inbound_events", f"Store deliveries not processed (pending) or not readable (rejected, failed); counts stop at {cap}.",
        labels=["status"],
    )
    # The timeout is set for this transaction only, so only when this is the outermost one (the view's).
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and own_transaction:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [int(settings.BMS_METRICS_QUERY_TIMEOUT * 1000)])
        for status in WORKING_STATUSES:
            orders.add_metric([status], _capped_count(Order.objects.filter(status=status).values("pk"), cap))
        for status in (InboundEvent.Status.PENDING, InboundEvent.Status.REJECTED, InboundEvent.Status.FAILED):
            deliveries.add_metric([status], _capped_count(InboundEvent.objects.filter(status=status).values("pk"), cap))
        webhooks = _capped_count(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).values("pk"), cap)
        oldest_order = Order.objects.filter(status__in=UNISSUED_STATUSES).aggregate(oldest=Min("received_at"))["oldest"]
        oldest_event = InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).aggregate(oldest=Min("received_at"))["oldest"]
    return [
        orders,
        deliveries,
        GaugeMetricFamily("bms_webhook_deliveries_pending", f"Outgoing webhook deliveries not delivered yet; stops at {cap}.",
                          value=webhooks),
        GaugeMetricFamily("bms_oldest_unissued_order_age_seconds",
                          "Age of the oldest paid order accepted for emission and not issued yet (0: none).",
                          value=_age_seconds(oldest_order, now)),
        GaugeMetricFamily("bms_oldest_pending_delivery_age_seconds",
                          "Age of the oldest store delivery not ingested yet (0: none).", value=_age_seconds(oldest_event, now)),
    ]


def _queue_names() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def broker_metrics() -> list[GaugeMetricFamily]:
    """Celery queue lengths from Redis (the only broker whose queues can be read this cheaply)."""
    import redis

    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return []
    timeout = settings.BMS_METRICS_QUERY_TIMEOUT
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        names = _queue_names()
        for name in names:
            for step in PRIORITY_STEPS:
                pipe.llen(name if step == 0 else f"{name}{PRIORITY_SEPARATOR}{step}")
        pipe.hlen("unacked")
        answers = pipe.execute()
    finally:
        client.close()
    queues = GaugeMetricFamily("bms_celery_queue_length", "Messages waiting in each Celery queue (Redis list lengths).",
                               labels=["queue"])
    steps = len(PRIORITY_STEPS)
    for index, name in enumerate(names):
        queues.add_metric([name], sum(answers[index * steps:(index + 1) * steps]))
    unacked = GaugeMetricFamily("bms_celery_unacknowledged",
                                "Messages delivered to a worker and not acknowledged yet (running, or waiting for their countdown).",
                                value=answers[-1])
    return [queues, unacked]


class PipelineCollector:
    """Gauges read at scrape time; a source that fails is reported, never fatal to the page."""

    sources = {"database": database_metrics, "broker": broker_metrics}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        errors = GaugeMetricFamily("bms_scrape_error", "1 when this source could not be read for this scrape.", labels=["source"])
        durations = GaugeMetricFamily("bms_scrape_duration_seconds", "Time spent reading each source.", labels=["source"])
        for name, read in self.sources.items():
            started = time.monotonic()
            try:
                families = read()
                failed = 0
            except Exception as exc:
                logger.warning("metrics: %s could not be read: %s: %s", name, type(exc).__name__, exc)
                families, failed = [], 1
            durations.add_metric([name], time.monotonic() - started)
            errors.add_metric([name], failed)
            yield from families
        yield errors
        yield durations


class _DefaultRegistryCollector:
    """This process's own metrics, when there is no multiprocess directory to read."""

    def collect(self):
        return REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_DefaultRegistryCollector())
    registry.register(PipelineCollector())
    return registry


# --- the view -------------------------------------------------------------------------------------

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _is_direct_loopback(request) -> bool:
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request) -> HttpResponse:
    token = settings.BMS_METRICS_TOKEN
    if token:
        scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = JsonResponse({"error": _("Se requiere el token de métricas (Authorization: Bearer ...).")}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _is_direct_loopback(request):
        return JsonResponse(
            {"error": _("Sin BMS_METRICS_TOKEN las métricas solo se entregan a clientes locales (127.0.0.1).")}, status=403
        )
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
