"""Polling as the safety net, with a store whose API is a list in memory: windows, pages, cursors, the
same change from a webhook and a poll as one event, failures shown, backfill jobs with progress."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone as dj_timezone

from gateways import polling, services
from gateways.models import BackfillJob, InboundEvent, Order, OrderStatus
from sources.base import OrderPoller, PollBatch, PolledOrder, StoreSource
from sources.demo.adapter import DemoSource
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import SOURCE_ADAPTERS
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory

STORE: dict = {"orders": [], "calls": [], "fail": None}


class ListStore(DemoSource, OrderPoller):
    """The Demo store with a listing API: orders in ``STORE`` with their update times, two per page."""

    platform = "liststore"
    label = "List store"
    poll_interval_seconds = 60
    overlap_seconds = 300

    @classmethod
    def change_key(cls, raw: dict) -> str:
        return f"order:{raw['id']}@{raw['updated_at']}"

    def poll(self, *, cursor, since, until):
        STORE["calls"].append((dict(cursor), since, until))
        if STORE["fail"]:
            raise STORE["fail"]
        matching = [o for o in STORE["orders"] if datetime.fromisoformat(o["updated_at"]) > since
                    and (until is None or datetime.fromisoformat(o["updated_at"]) <= until)]
        offset = cursor.get("offset", 0)
        page = matching[offset:offset + 2]
        more = offset + 2 < len(matching)
        return PollBatch(
            orders=tuple(PolledOrder(raw=o, change_key=self.change_key(o)) for o in page),
            cursor={"offset": offset + 2} if more else {}, more=more,
        )


@pytest.fixture(autouse=True)
def list_store(monkeypatch):
    monkeypatch.setitem(SOURCE_ADAPTERS, "liststore", ListStore)
    STORE.update(orders=[], calls=[], fail=None)
    yield


def order(number: int, updated: datetime) -> dict:
    raw = sample_order(number=number)
    raw["updated_at"] = updated.isoformat()
    raw["created_at"] = raw["processed_at"] = updated.isoformat()
    return raw


@pytest.fixture
def gateway(account):
    gateway = GatewayFactory(account=account, source__platform="liststore")
    SourceConnection.objects.filter(pk=gateway.source_id).update(created_at=dj_timezone.now() - timedelta(hours=1))
    return gateway


def test_a_poll_reads_every_page_and_makes_one_event_per_change(gateway):
    now = dj_timezone.now()
    STORE["orders"] = [order(n, now - timedelta(minutes=n)) for n in range(1, 6)]

    result = polling.source_poll(source_id=gateway.source_id)

    assert result == {"pages": 3, "events": 5, "more": False}
    assert InboundEvent.objects.filter(gateway=gateway, topic="poll").count() == 5
    source = SourceConnection.objects.get(pk=gateway.source_id)
    assert source.cursor == {} and source.last_polled_at is not None and source.poll_failures == 0
    # The first window starts at the connection's creation minus the overlap.
    assert STORE["calls"][0][1] == source.created_at - timedelta(seconds=300)


def test_the_next_poll_starts_from_the_last_one_minus_the_overlap_and_repeats_nothing(gateway):
    now = dj_timezone.now()
    STORE["orders"] = [order(1, now - timedelta(minutes=2))]
    polling.source_poll(source_id=gateway.source_id)
    last = SourceConnection.objects.get(pk=gateway.source_id).last_polled_at

    polling.source_poll(source_id=gateway.source_id)

    assert STORE["calls"][-1][1] == last - timedelta(seconds=300)
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_a_webhook_and_a_poll_of_the_same_change_are_one_event(gateway):
    updated = dj_timezone.now() - timedelta(minutes=1)
    raw = order(7, updated)
    services.inbound_event_receive(gateway=gateway, delivery_id=ListStore.change_key(raw), topic="orders/paid", payload=raw)
    STORE["orders"] = [raw]

    assert polling.source_poll(source_id=gateway.source_id)["events"] == 0
    assert InboundEvent.objects.filter(gateway=gateway).count() == 1


def test_a_newer_version_of_the_same_order_is_a_new_event(gateway):
    first = dj_timezone.now() - timedelta(minutes=3)
    STORE["orders"] = [order(8, first)]
    polling.source_poll(source_id=gateway.source_id)
    STORE["orders"] = [order(8, first + timedelta(minutes=2))]
    assert polling.source_poll(source_id=gateway.source_id)["events"] == 1
    assert InboundEvent.objects.filter(gateway=gateway).count() == 2


def test_every_gateway_of_the_store_gets_the_polled_order(account, gateway):
    second = GatewayFactory(account=account, source=gateway.source)
    STORE["orders"] = [order(9, dj_timezone.now() - timedelta(minutes=1))]
    polling.source_poll(source_id=gateway.source_id)
    assert {e.gateway_id for e in InboundEvent.objects.all()} == {gateway.pk, second.pk}


def test_polled_orders_are_ingested_like_webhooks(gateway):
    STORE["orders"] = [order(10, dj_timezone.now() - timedelta(minutes=1))]
    polling.source_poll(source_id=gateway.source_id)
    order_row = services.inbound_event_process(event_id=InboundEvent.objects.get(gateway=gateway).pk)
    assert order_row.status == OrderStatus.READY


def test_a_poll_that_keeps_failing_marks_the_connection_as_needing_attention(gateway):
    STORE["fail"] = SourceTransientError("Tienda (x.cl) no respondió a tiempo (ReadTimeout).")
    for _ in range(polling.FAILURES_BEFORE_ATTENTION):
        polling.source_poll(source_id=gateway.source_id)
    source = SourceConnection.objects.get(pk=gateway.source_id)
    assert source.status == SourceConnection.Status.ERROR
    assert "no respondió a tiempo" in source.status_message and source.poll_failures == 3

    STORE["fail"] = None
    polling.source_poll(source_id=gateway.source_id)
    source.refresh_from_db()
    assert (source.status, source.poll_failures, source.poll_error) == (SourceConnection.Status.ACTIVE, 0, "")


def test_a_refused_poll_needs_attention_at_once(gateway):
    STORE["fail"] = SourceRejectedError("Tienda rechazó la solicitud (HTTP 401): Invalid API key")
    polling.source_poll(source_id=gateway.source_id)
    assert SourceConnection.objects.get(pk=gateway.source_id).status == SourceConnection.Status.ERROR


def test_due_connections_are_claimed_once(gateway, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert polling.sources_poll_due() == 1
        assert polling.sources_poll_due() == 0
    assert len(queued) == 1
    source = SourceConnection.objects.get(pk=gateway.source_id)
    assert source.next_poll_at > dj_timezone.now() + timedelta(seconds=50)


def test_stores_that_cannot_be_polled_are_never_claimed(account):
    GatewayFactory(account=account)  # the Demo store pushes only
    assert polling.sources_poll_due() == 0


def test_a_backfill_job_walks_the_range_with_progress(gateway, actor):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    STORE["orders"] = [order(n, start + timedelta(days=n)) for n in range(1, 6)] + [order(99, start + timedelta(days=40))]
    job = polling.backfill_job_create(gateway=gateway, start=start, end=start + timedelta(days=10), actor=actor)

    job = polling.backfill_job_run(job_id=job.pk)

    assert (job.status, job.pages, job.orders_seen, job.orders_ready) == (BackfillJob.Status.DONE, 3, 5, 5)
    assert STORE["calls"][0][1:] == (start, start + timedelta(days=10))
    # Orders older than the rules' start date are billed anyway: that is what a backfill is for.
    assert set(Order.objects.filter(gateway=gateway).values_list("status", flat=True)) == {OrderStatus.READY}


def test_a_backfill_the_store_refuses_fails_with_the_reason(gateway, actor):
    STORE["fail"] = SourceRejectedError("Tienda rechazó la solicitud (HTTP 403): read_all_orders")
    job = polling.backfill_job_create(gateway=gateway, start=datetime(2026, 1, 1, tzinfo=UTC),
                                      end=datetime(2026, 2, 1, tzinfo=UTC), actor=actor)
    job = polling.backfill_job_run(job_id=job.pk)
    assert job.status == BackfillJob.Status.FAILED and "read_all_orders" in job.error


def test_the_poller_capability_is_separate_from_the_webhook_one():
    assert issubclass(ListStore, OrderPoller) and not issubclass(StoreSource, OrderPoller)
