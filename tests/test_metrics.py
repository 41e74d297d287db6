"""/metrics: gauges read from PostgreSQL and Redis match what is there, stay on indexes with many orders, and
event counters add up across real worker processes (prometheus multiprocess mode)."""
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from billmysales.metrics import database_metrics
from gateways import services
from gateways.models import Emission, EmissionStatus, InboundEvent, Order
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory, OrderFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.gateways.resilience_helpers import WEBHOOK_SECRET, free_port, wait_for, webhook_post


def scrape(client, **headers) -> dict:
    """{(name, labels as a sorted tuple): value} from the page."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_label(samples: dict, name: str, label: str) -> dict:
    return {dict(labels)[label]: value for (sample, labels), value in samples.items() if sample == name}


def one(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account, source__credentials={"webhook_secret": WEBHOOK_SECRET})


def make_orders(gateway, status: str, count: int, age_seconds: float | None = None) -> list[Order]:
    orders = [OrderFactory(account=gateway.account, gateway=gateway, status=status) for _ in range(count)]
    if age_seconds is not None:
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(received_at=timezone.now() - timedelta(seconds=age_seconds))
    return orders


def make_events(gateway, status: str, count: int, age_seconds: float = 0) -> None:
    for _ in range(count):
        event = InboundEvent.objects.create(
            account=gateway.account, gateway=gateway, delivery_id=f"d-{status}-{InboundEvent.objects.count()}", payload={},
            status=status,
        )
        InboundEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(seconds=age_seconds))


# --- gauges -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_gauges_match_the_orders_and_deliveries_in_the_database(client, gateway, other_account):
    make_orders(gateway, "ready", 2, age_seconds=60)
    make_orders(gateway, "ready", 1, age_seconds=600)  # the oldest paid order not issued yet
    make_orders(gateway, "issuing", 1, age_seconds=30)
    make_orders(gateway, "held", 2, age_seconds=7200)  # waits for a person: not in the age
    make_orders(gateway, "failed", 1)
    make_orders(gateway, "waiting", 2)
    make_orders(gateway, "issued", 5, age_seconds=9000)
    make_orders(gateway, "skipped", 1)
    make_orders(GatewayFactory(account=other_account), "ready", 1, age_seconds=10)  # every account counts
    make_events(gateway, InboundEvent.Status.PENDING, 2, age_seconds=120)
    make_events(gateway, InboundEvent.Status.PROCESSED, 3, age_seconds=5000)
    make_events(gateway, InboundEvent.Status.REJECTED, 1, age_seconds=5000)

    samples = scrape(client)

    assert by_label(samples, "bms_orders", "status") == {
        "received": 0, "waiting": 2, "ready": 4, "issuing": 1, "held": 2, "failed": 1,
    }
    assert by_label(samples, "bms_inbound_events", "status") == {"pending": 2, "rejected": 1, "failed": 0}
    assert 600 <= one(samples, "bms_oldest_unissued_order_age_seconds") < 630
    assert 120 <= one(samples, "bms_oldest_pending_delivery_age_seconds") < 150
    assert one(samples, "bms_webhook_deliveries_pending") == 0
    assert by_label(samples, "bms_scrape_error", "source") == {"database": 0, "broker": 0}


@pytest.mark.django_db
def test_nothing_waiting_reads_as_zero_age(client, gateway):
    make_orders(gateway, "issued", 3, age_seconds=900)

    samples = scrape(client)

    assert one(samples, "bms_oldest_unissued_order_age_seconds") == 0
    assert one(samples, "bms_oldest_pending_delivery_age_seconds") == 0


@pytest.mark.django_db
def test_counts_stop_at_the_cap(client, gateway, settings):
    settings.BMS_METRICS_COUNT_CAP = 2
    make_orders(gateway, "held", 4)

    assert one(scrape(client), "bms_orders", status="held") == 2


@pytest.mark.django_db
def test_queue_lengths_are_read_from_redis(client, purge_broker):
    for _ in range(3):
        current_app.send_task("gateways.tasks.order_emit_task", args=(0,))
    current_app.send_task("gateways.tasks.order_ingest_task", args=(0,))

    samples = scrape(client)

    assert by_label(samples, "bms_celery_queue_length", "queue") == {"ingest": 1, "emit": 3, "poll": 0, "notify": 0}
    assert one(samples, "bms_celery_unacknowledged") == 0


@pytest.mark.django_db
def test_an_unreachable_broker_is_reported_and_the_rest_still_served(client, gateway, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    make_orders(gateway, "held", 1)

    samples = scrape(client)

    assert by_label(samples, "bms_scrape_error", "source") == {"database": 0, "broker": 1}
    assert one(samples, "bms_orders", status="held") == 1
    assert not by_label(samples, "bms_celery_queue_length", "queue")


# --- access -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_with_a_token_only_its_bearer_reads_the_page(client, settings):
    settings.BMS_METRICS_TOKEN = "s3cret-scraper-token"

    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer another-token")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scraper-token").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token", REMOTE_ADDR="203.0.113.9")
    assert ok.status_code == 200 and b"bms_orders" in ok.content


@pytest.mark.django_db
def test_without_a_token_only_direct_loopback_clients_read_the_page(client, settings):
    settings.BMS_METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5").status_code == 403
    # A proxy on the same host forwards the public's requests from 127.0.0.1: refused as well.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 403


# --- bounded queries ----------------------------------------------------------------------------------


def _clone_rows(model, template_pk: int, count: int, overrides: dict[str, str]) -> None:
    """INSERT ``count`` copies of one row, with SQL expressions (over ``g``, 1..count) for some columns."""
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    table = model._meta.db_table
    select = ", ".join(overrides.get(column, f't."{column}"') for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) '
            f"SELECT {select} FROM {table} t CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
            [count, template_pk],
        )


@pytest.mark.django_db
def test_scrape_queries_stay_on_indexes_with_many_orders(gateway):
    template = make_orders(gateway, "issued", 1)[0]
    # 120,000 orders: a few hundred wait in the pipeline or for a person, the rest are issued or skipped.
    _clone_rows(Order, template.pk, 120_000, {
        "external_id": "'bulk-' || g",
        "status": "CASE WHEN mod(g, 1000) = 0 THEN 'ready' WHEN mod(g, 997) = 0 THEN 'held' WHEN mod(g, 991) = 0 THEN 'issuing' "
                  "WHEN mod(g, 10) = 0 THEN 'skipped' ELSE 'issued' END",
        "received_at": "now() - make_interval(secs => g)",
    })
    make_events(gateway, InboundEvent.Status.PROCESSED, 1)
    _clone_rows(InboundEvent, InboundEvent.objects.get().pk, 60_000, {
        "delivery_id": "'bulk-' || g", "status": "CASE WHEN mod(g, 2000) = 0 THEN 'pending' ELSE 'processed' END",
    })
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
        cursor.execute(f"ANALYZE {InboundEvent._meta.db_table}")

    with CaptureQueriesContext(connection) as captured:
        started = time.monotonic()
        families = {family.name: family for family in database_metrics()}
        elapsed = time.monotonic() - started

    counted = {sample.labels["status"]: sample.value for sample in families["bms_orders"].samples}
    assert counted["ready"] == 120 and counted["received"] == 0
    plans = {}
    for query in captured.captured_queries:
        if query["sql"].startswith("SELECT"):
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + query["sql"])
                plans[query["sql"]] = "\n".join(row[0] for row in cursor.fetchall())
    assert len(plans) == 12  # one round trip per gauge value, each bounded
    seq_scans = {sql: plan for sql, plan in plans.items() if "Seq Scan on gateways_order" in plan or "Seq Scan on gateways_inboundevent" in plan}
    assert seq_scans == {}
    [oldest_plan] = [plan for sql, plan in plans.items() if "MIN(" in sql and "gateways_order" in sql]
    assert "order_unissued_age" in oldest_plan
    assert elapsed < 1.0, elapsed


# --- events, counted where they happen -----------------------------------------------------------------


def sample_value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db(transaction=True)
def test_an_issued_order_and_a_biller_error_are_counted_once_committed(gateway, purge_broker):
    before = {
        "stored": sample_value("bms_inbound_deliveries_total", result="stored"),
        "duplicate": sample_value("bms_inbound_deliveries_total", result="duplicate"),
        "success": sample_value("bms_emission_attempts_total", provider="sandbox", outcome="success", error_class=""),
        "transient": sample_value("bms_emission_attempts_total", provider="sandbox", outcome="transient",
                                  error_class="TransientBillerError"),
        "issued": sample_value("bms_documents_issued_total", kind="invoice", provider="sandbox"),
        "latency": sample_value("bms_emission_latency_seconds_count", kind="invoice"),
        "calls": sample_value("bms_biller_call_seconds_count", provider="sandbox"),
        "lag": sample_value("bms_ingest_lag_seconds_count"),
    }
    payload = sample_order(number=8101)
    event, _ = services.inbound_event_receive(gateway=gateway, delivery_id="m-1", topic="orders/paid", payload=payload)
    services.inbound_event_receive(gateway=gateway, delivery_id="m-1", topic="orders/paid", payload=payload)
    gateway.biller.config = {"fail_rate": 1}
    gateway.biller.save(update_fields=["config"])
    order = services.inbound_event_process(event_id=event.pk)
    assert run_pending(order) == []  # the biller answered 503
    gateway.biller.config = {}
    gateway.biller.save(update_fields=["config"])
    Emission.objects.filter(order=order).update(next_attempt_at=None)
    [document] = run_pending(order)

    assert sample_value("bms_inbound_deliveries_total", result="stored") - before["stored"] == 1
    assert sample_value("bms_inbound_deliveries_total", result="duplicate") - before["duplicate"] == 1
    assert sample_value("bms_ingest_lag_seconds_count") - before["lag"] == 1
    assert sample_value("bms_emission_attempts_total", provider="sandbox", outcome="success", error_class="") - before["success"] == 1
    assert sample_value("bms_emission_attempts_total", provider="sandbox", outcome="transient",
                        error_class="TransientBillerError") - before["transient"] == 1
    assert sample_value("bms_biller_call_seconds_count", provider="sandbox") - before["calls"] == 2
    assert sample_value("bms_documents_issued_total", kind="invoice", provider="sandbox") - before["issued"] == 1
    assert sample_value("bms_emission_latency_seconds_count", kind="invoice") - before["latency"] == 1
    assert document.emission.status == EmissionStatus.ISSUED


WORKER_ORDERS = 10


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_counts_from_several_worker_processes_add_up_and_survive_a_killed_worker(
    client, gateway, celery_worker_process, purge_broker, tmp_path, monkeypatch
):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    gateway.biller.config = {"latency_ms": 300}  # slow enough that the orders spread over the pool processes
    gateway.biller.save(update_fields=["config"])
    workers = [celery_worker_process(name=f"metrics{n}", concurrency=2, PROMETHEUS_MULTIPROC_DIR=metrics_dir) for n in (1, 2)]
    for number in range(WORKER_ORDERS):
        assert webhook_post(gateway, sample_order(number=8200 + number), f"mp-{number}") == 200

    wait_for(lambda: Order.objects.filter(gateway=gateway, status="issued").count() == WORKER_ORDERS, timeout=120,
             describe=lambda: list(Order.objects.filter(gateway=gateway).values_list("status", flat=True)))
    workers[0].kill()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))

    samples = scrape(client)

    assert one(samples, "bms_documents_issued_total", kind="invoice", provider="sandbox") == WORKER_ORDERS
    assert one(samples, "bms_emission_attempts_total", provider="sandbox", outcome="success", error_class="") == WORKER_ORDERS
    assert one(samples, "bms_emission_latency_seconds_count", kind="invoice") == WORKER_ORDERS
    assert one(samples, "bms_ingest_lag_seconds_count") == WORKER_ORDERS
    contributors = {
        path.name for path in Path(metrics_dir).glob("counter_*.db")
        if any(s.value for m in MultiProcessCollector.merge([str(path)]) if m.name == "bms_documents_issued" for s in m.samples)
    }
    assert len(contributors) >= 2, sorted(p.name for p in Path(metrics_dir).iterdir())
