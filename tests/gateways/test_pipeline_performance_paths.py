"""The shortcuts the performance work took keep the pipeline's guarantees: one delivery row per delivery id
and one order per store order under concurrent INSERT … ON CONFLICT, the ingest task running the invoice
it created (and the sweeper taking it when that run never happens), the webhook's short gateway cache,
and persistent database connections replaced when PostgreSQL drops them (health checks)."""
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from celery import signals
from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from gateways import dispatch, services, tasks, webhooks
from gateways.models import Document, Emission, EmissionStatus, InboundEvent, Order, OrderStatus
from gateways.sweeper import stuck_work_requeue
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.gateways.resilience_helpers import WEBHOOK_SECRET, closing_db_connection, webhook_post

THREADS = 16


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account, source__credentials={"webhook_secret": WEBHOOK_SECRET})


@pytest.fixture
def published(monkeypatch):
    """The tasks published (on commit), by name, instead of reaching the broker; no wake-up key left over."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(dispatch.WAKE_KEY)
    sent = []
    monkeypatch.setattr(dispatch, "publish", lambda task_name, args, countdown=None: sent.append((task_name, args)))
    yield sent
    broker.delete(dispatch.WAKE_KEY)


def ingest_tasks(published) -> list[int]:
    """The deliveries queued for ingestion, one per message or in batches."""
    ids = []
    for name, args in published:
        if name == dispatch.INGEST_TASK:
            ids.append(args[0])
        elif name == dispatch.INGEST_BATCH_TASK:
            ids.extend(args[0])
    return ids


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_id_store_one_event_and_queue_it_once(gateway, published):
    start = threading.Barrier(THREADS)

    @closing_db_connection
    def receive(_):
        start.wait(timeout=30)
        event, created = services.inbound_event_receive(
            gateway=gateway, delivery_id="same-delivery", topic="orders/paid", payload=sample_order(number=9100),
        )
        return event.pk, created

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(receive, range(THREADS)))

    [event] = InboundEvent.objects.filter(gateway=gateway)
    assert {pk for pk, _ in results} == {event.pk}
    assert sum(created for _, created in results) == 1
    assert published == [(dispatch.DISPATCH_TASK, ())]
    assert event.status == InboundEvent.Status.PENDING and event.payload["name"] == "#9100"
    assert services.inbound_events_dispatch() == 1
    assert ingest_tasks(published) == [event.pk]


@pytest.mark.django_db(transaction=True)
def test_deliveries_wake_one_dispatch_and_each_is_queued_once_under_concurrent_dispatchers(gateway, published):
    deliveries, rounds = 300, []
    stop = threading.Event()

    @closing_db_connection
    def deliver(first: int):
        for number in range(first, deliveries, 3):
            services.inbound_event_receive(gateway=gateway, delivery_id=f"w-{number}", topic="orders/paid",
                                           payload=sample_order(number=9600 + number))

    @closing_db_connection
    def dispatcher():
        while not stop.is_set():
            rounds.append(services.inbound_events_dispatch())

    with ThreadPoolExecutor(max_workers=5) as pool:
        dispatchers = [pool.submit(dispatcher) for _ in range(2)]
        for future in [pool.submit(deliver, first) for first in range(3)]:
            future.result()
        stop.set()
        for future in dispatchers:
            future.result()
    # Whatever arrived after the dispatchers' last look set the key again: its dispatch round queues the rest.
    woken = [name for name, _ in published].count(dispatch.DISPATCH_TASK)
    assert woken >= 1
    services.inbound_events_dispatch()

    events = set(InboundEvent.objects.filter(gateway=gateway).values_list("pk", flat=True))
    assert len(events) == deliveries
    assert sorted(ingest_tasks(published)) == sorted(events)
    assert not InboundEvent.objects.filter(gateway=gateway, requeued_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_delivery_after_a_dispatch_round_wakes_another(gateway, published):
    services.inbound_event_receive(gateway=gateway, delivery_id="a", topic="orders/paid", payload=sample_order(number=9700))
    services.inbound_event_receive(gateway=gateway, delivery_id="b", topic="orders/paid", payload=sample_order(number=9701))
    assert published == [(dispatch.DISPATCH_TASK, ())]  # the second found the key set
    assert services.inbound_events_dispatch() == 2
    services.inbound_event_receive(gateway=gateway, delivery_id="c", topic="orders/paid", payload=sample_order(number=9702))
    assert [name for name, _ in published].count(dispatch.DISPATCH_TASK) == 2
    assert services.inbound_events_dispatch() == 1 and len(ingest_tasks(published)) == 3


@pytest.mark.django_db(transaction=True)
def test_without_a_redis_broker_each_delivery_publishes_its_own_ingest_task(gateway, published, settings):
    settings.CELERY_BROKER_URL = "memory://"
    event, _ = services.inbound_event_receive(gateway=gateway, delivery_id="m", topic="orders/paid", payload=sample_order(number=9800))
    assert published == [(dispatch.INGEST_TASK, (event.pk,))]


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_versions_of_one_order_create_one_order_and_one_emission(gateway, published):
    start = threading.Barrier(THREADS)

    @closing_db_connection
    def ingest(_):
        start.wait(timeout=30)
        return services.order_ingest(gateway=gateway, raw=sample_order(number=9200)).pk

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        order_ids = set(pool.map(ingest, range(THREADS)))

    [order] = Order.objects.filter(gateway=gateway)
    assert order_ids == {order.pk}
    assert order.status == OrderStatus.READY and order.decision["action"] == "emit"
    [emission] = Emission.objects.filter(order=order)
    assert published == [(dispatch.EMIT_TASK, (emission.pk,))]


@pytest.mark.django_db(transaction=True)
def test_ingest_task_issues_the_invoice_it_created_without_an_emit_message(gateway, published):
    event, _ = services.inbound_event_receive(gateway=gateway, delivery_id="d-1", topic="orders/paid", payload=sample_order(number=9300))

    tasks.order_ingest_task(event.pk)

    order = Order.objects.get(gateway=gateway)
    document = Document.objects.get(order=order)
    assert order.status == OrderStatus.ISSUED
    assert Emission.objects.get(order=order).status == EmissionStatus.ISSUED
    assert [name for name, _ in published] == [dispatch.DISPATCH_TASK, dispatch.SIDE_EFFECTS_TASK]
    assert published[-1][1] == (document.pk,)
    assert InboundEvent.objects.get(pk=event.pk).status == InboundEvent.Status.PROCESSED


@pytest.mark.django_db(transaction=True)
def test_a_backlog_larger_than_the_ingest_threads_is_queued_in_batches(gateway, published, settings):
    settings.BMS_INGEST_CONCURRENCY, settings.BMS_INGEST_BATCH_MAX = 2, 8
    events = [services.inbound_event_receive(gateway=gateway, delivery_id=f"b-{n}", topic="orders/paid",
                                             payload=sample_order(number=9900 + n))[0].pk for n in range(5)]
    assert services.inbound_events_dispatch() == 5
    messages = [(name, args) for name, args in published if name != dispatch.DISPATCH_TASK]
    # 5 deliveries for 2 threads: 2 messages (3 + 2), each a batch; nothing queued twice or left out.
    assert messages == [(dispatch.INGEST_BATCH_TASK, (events[:3],)), (dispatch.INGEST_BATCH_TASK, (events[3:],))]

    settings.BMS_INGEST_CONCURRENCY = 64
    more = [services.inbound_event_receive(gateway=gateway, delivery_id=f"c-{n}", topic="orders/paid",
                                           payload=sample_order(number=9950 + n))[0].pk for n in range(3)]
    assert services.inbound_events_dispatch() == 3
    # A backlog the threads absorb keeps one message per delivery, so none waits behind another.
    assert published[-3:] == [(dispatch.INGEST_TASK, (pk,)) for pk in more]


@pytest.mark.django_db(transaction=True)
def test_a_batch_ingests_every_delivery_even_when_one_fails(gateway, published, monkeypatch, caplog):
    events = [services.inbound_event_receive(gateway=gateway, delivery_id=f"f-{n}", topic="orders/paid",
                                             payload=sample_order(number=9980 + n))[0].pk for n in range(3)]
    failing = None
    real_run = tasks.emission.emission_run

    def run(*, emission_id):
        nonlocal failing
        if Emission.objects.get(pk=emission_id).order.number == "#9981":
            failing = emission_id
            raise RuntimeError("biller client bug")
        real_run(emission_id=emission_id)

    monkeypatch.setattr(tasks.emission, "emission_run", run)
    tasks.orders_ingest_task(events)

    statuses = dict(Order.objects.filter(gateway=gateway).values_list("number", "status"))
    assert statuses == {"#9980": OrderStatus.ISSUED, "#9981": OrderStatus.READY, "#9982": OrderStatus.ISSUED}
    assert Emission.objects.get(pk=failing).status == EmissionStatus.PENDING  # the sweeper's, as after a lost message
    assert set(InboundEvent.objects.filter(pk__in=events).values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    [failure] = [r for r in caplog.records if "left for the sweeper" in r.getMessage()]
    assert f"event={events[1]}" in failure.getMessage()


@pytest.mark.django_db(transaction=True)
def test_invoice_left_unrun_by_a_dying_ingest_task_is_queued_by_the_sweeper(gateway, published, monkeypatch, settings):
    class WorkerDied(BaseException):
        pass

    def die(**kwargs):
        raise WorkerDied

    monkeypatch.setattr(tasks.emission, "emission_run", die)
    event, _ = services.inbound_event_receive(gateway=gateway, delivery_id="d-2", topic="orders/paid", payload=sample_order(number=9400))
    with pytest.raises(WorkerDied):
        tasks.order_ingest_task(event.pk)
    [emission] = Emission.objects.filter(order__gateway=gateway)
    assert emission.status == EmissionStatus.PENDING
    assert dispatch.EMIT_TASK not in [name for name, _ in published]

    settings.BMS_STUCK_AFTER_SECONDS = 60
    Emission.objects.filter(pk=emission.pk).update(updated_at=timezone.now() - timedelta(seconds=61))
    assert stuck_work_requeue()["emissions"] == 1
    assert published[-1] == (dispatch.EMIT_TASK, (emission.pk,))


@pytest.mark.django_db(transaction=True)
def test_webhook_reads_its_gateway_once_per_cache_period(gateway, published, settings, monkeypatch, django_assert_num_queries):
    settings.BMS_WEBHOOK_GATEWAY_CACHE_SECONDS = 5
    webhooks._gateways.clear()
    clock = [1000.0]
    monkeypatch.setattr(webhooks.time, "monotonic", lambda: clock[0])
    reads = []
    real = webhooks.Gateway.objects.select_related

    def counting(*fields):
        reads.append(fields)
        return real(*fields)

    monkeypatch.setattr(webhooks.Gateway.objects, "select_related", counting)
    assert webhook_post(gateway, sample_order(number=9500), "c-1") == 200
    assert webhook_post(gateway, sample_order(number=9501), "c-2") == 200
    assert len(reads) == 1

    # A rotated secret applies once the cached entry expires.
    gateway.source.credentials = {"webhook_secret": "rotated-secret"}
    gateway.source.save()
    clock[0] += 5.1
    assert webhook_post(gateway, sample_order(number=9502), "c-3") == 401
    assert len(reads) == 2
    assert InboundEvent.objects.filter(gateway=gateway).count() == 2
    webhooks._gateways.clear()


@pytest.mark.django_db(transaction=True)
def test_a_persistent_connection_postgresql_dropped_is_replaced_before_the_next_query(settings):
    assert connection.settings_dict["CONN_MAX_AGE"] > 0 and connection.settings_dict["CONN_HEALTH_CHECKS"]

    def in_a_thread():
        # A thread has its own connection, as a gunicorn worker or a worker thread does.
        try:
            close_old_connections()  # a request or a task starts
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                before = cursor.fetchone()[0]
            close_old_connections()  # it ends: the connection is kept
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                assert cursor.fetchone()[0] == before
            close_old_connections()
            # PostgreSQL drops it (a restart or a failover looks the same to the client).
            with ThreadPoolExecutor(max_workers=1) as other:
                other.submit(closing_db_connection(lambda: _terminate(before))).result()
            close_old_connections()  # the next request or task starts
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                after = cursor.fetchone()[0]
            return before, after
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        before, after = pool.submit(in_a_thread).result()
    assert after != before


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True


def _receivers(signal) -> list:
    """The signal's live receivers (weakly held ones dereferenced, strongly held ones as they are)."""
    return [r() if isinstance(r, weakref.ReferenceType) else r for _, r in signal.receivers]


def test_celery_workers_keep_their_database_connections_between_tasks():
    """The Django fixup's close-before-and-after-every-task handlers are replaced by close_old_connections
    (which honours CONN_MAX_AGE and the health checks) once a worker starts."""
    from celery.fixups.django import DjangoWorkerFixup

    from billmysales import celery as celery_module

    fixup = DjangoWorkerFixup(celery_module.app)
    fixup.install()
    holder = next(f for f in celery_module.app._fixups if f is not None)
    saved = holder._worker_fixup
    holder._worker_fixup = fixup
    try:
        celery_module._persistent_database_connections()
        prerun, postrun = _receivers(signals.task_prerun), _receivers(signals.task_postrun)
        assert fixup.on_task_prerun not in prerun and fixup.on_task_postrun not in postrun
        assert celery_module._close_old_connections in prerun and celery_module._close_old_connections in postrun
    finally:
        holder._worker_fixup = saved
        signals.task_prerun.disconnect(celery_module._close_old_connections)
        signals.task_postrun.disconnect(celery_module._close_old_connections)
        for signal in (signals.beat_embedded_init, signals.worker_process_init):
            for method in (fixup.close_database, fixup.on_worker_process_init):
                signal.disconnect(method)
