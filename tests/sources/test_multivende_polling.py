"""Polling Multivende: paid (and undone) checkouts, in windows of at most 2 hours kept in the cursor, page by
page, the full checkout fetched when the light entry lacks it; through the generic poll job too."""
import copy
from datetime import UTC, datetime, timedelta

import pytest
import responses
from responses import matchers

from gateways.models import InboundEvent
from gateways.polling import source_poll
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from tests.gateways.factories import GatewayFactory
from tests.sources.test_multivende_client import (
    BASE,
    MERCHANT,
    credentials,
    fixture,
    multivende_app,  # noqa: F401  (autouse: our app's settings)
    multivende_connection,
)

LIGHT = f"{BASE}/api/m/{MERCHANT}/checkouts/light/p"
PAID = "7f3c2b1a-9d84-4e6f-a1b2-3c4d5e6f7a81"
PENDING = "2c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"
CANCELLED = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 19, hour, minute, tzinfo=UTC)


def window(start: datetime, end: datetime) -> dict:
    return {"_updated_at_from": start.strftime("%Y-%m-%d %H:%M:%S"), "_updated_at_to": end.strftime("%Y-%m-%d %H:%M:%S")}


def page(entries=(), *, current=1, total_pages=1) -> dict:
    return {"entries": list(entries), "pagination": {
        "total_items": len(entries), "total_pages": total_pages, "current_page": current,
        "next_page": current + 1 if current < total_pages else None, "previous_page": current - 1 if current > 1 else None,
        "limit": 50, "offset": (current - 1) * 50}}


def full_checkout(checkout_id: str, **changes) -> dict:
    body = copy.deepcopy(fixture("checkout_mercadolibre_boleta.json"))
    body.update(_id=checkout_id, **changes)
    return body


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def adapter(account):
    return source_adapter_for(multivende_connection(account))


def test_a_page_keeps_paid_and_cancelled_checkouts_and_reads_them_in_full(api, adapter):
    light = fixture("checkouts_light_page.json")
    api.get(f"{LIGHT}/1", json=light, match=[matchers.query_param_matcher(window(at(16), at(17)))])
    api.get(f"{BASE}/api/checkouts/{PAID}", json=full_checkout(PAID))
    api.get(f"{BASE}/api/checkouts/{CANCELLED}", json=full_checkout(CANCELLED, status="cancelled", updatedAt="2026-11-19T17:55:12.700Z"))

    batch = adapter.poll(cursor={}, since=at(16), until=at(17))

    assert [order.raw["_id"] for order in batch.orders] == [PAID, CANCELLED]  # the pending one waits for its payment
    assert [order.change_key for order in batch.orders] == [
        f"checkout:{PAID}@2026-11-19T17:30:40.118Z", f"checkout:{CANCELLED}@2026-11-19T17:55:12.700Z"]
    assert batch.orders[0].raw["CheckoutItems"]  # the full checkout, not the light entry
    assert (batch.cursor, batch.more) == ({}, False)
    assert batch.notes["requests"] == 3
    assert all(call.request.headers["Authorization"] == "Bearer at-1" for call in api.calls)
    assert [call.request.url.split("?")[0] for call in api.calls] == [
        f"{LIGHT}/1", f"{BASE}/api/checkouts/{PAID}", f"{BASE}/api/checkouts/{CANCELLED}"]


def test_a_range_over_two_hours_is_walked_in_windows_of_two_hours(api, adapter):
    api.get(f"{LIGHT}/1", json=page(), match=[matchers.query_param_matcher(window(at(9), at(11)))])
    api.get(f"{LIGHT}/1", json=page(), match=[matchers.query_param_matcher(window(at(11), at(13)))])
    api.get(f"{LIGHT}/1", json=page(), match=[matchers.query_param_matcher(window(at(13), at(13, 30)))])

    cursors = []
    batch = adapter.poll(cursor={}, since=at(9), until=at(13, 30))
    cursors.append(batch.cursor)
    while batch.more:
        batch = adapter.poll(cursor=batch.cursor, since=at(9), until=at(13, 30))
        cursors.append(batch.cursor)

    assert len(api.calls) == 3
    assert cursors == [
        {"from": at(11).isoformat(), "to": at(13, 30).isoformat(), "page": 1},
        {"from": at(13).isoformat(), "to": at(13, 30).isoformat(), "page": 1},
        {},
    ]


def test_every_page_of_a_window_is_read_before_the_next_window(api, adapter):
    first = [{**fixture("checkouts_light_page.json")["entries"][0]}]
    second = [{**first[0], "_id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a", "updatedAt": "2026-11-19T10:01:00.000Z"}]
    api.get(f"{LIGHT}/1", json=page(first, current=1, total_pages=2), match=[matchers.query_param_matcher(window(at(9), at(11)))])
    api.get(f"{LIGHT}/2", json=page(second, current=2, total_pages=2), match=[matchers.query_param_matcher(window(at(9), at(11)))])
    api.get(f"{BASE}/api/checkouts/{first[0]['_id']}", json=full_checkout(first[0]["_id"]))
    api.get(f"{BASE}/api/checkouts/{second[0]['_id']}", json=full_checkout(second[0]["_id"], updatedAt=second[0]["updatedAt"]))

    one = adapter.poll(cursor={}, since=at(9), until=at(12))
    two = adapter.poll(cursor=one.cursor, since=at(9), until=at(12))

    assert (one.cursor, one.more) == ({"from": at(9).isoformat(), "to": at(12).isoformat(), "page": 2}, True)
    assert (two.cursor, two.more) == ({"from": at(11).isoformat(), "to": at(12).isoformat(), "page": 1}, True)
    assert [order.raw["_id"] for order in one.orders + two.orders] == [first[0]["_id"], second[0]["_id"]]


def test_the_regular_poll_ends_now_and_never_asks_for_more_than_two_hours(api, adapter):
    api.get(f"{LIGHT}/1", json=page())
    since = datetime.now(UTC) - timedelta(hours=5)

    batch = adapter.poll(cursor={}, since=since, until=None)

    params = api.calls[0].request.params
    start = datetime.strptime(params["_updated_at_from"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    end = datetime.strptime(params["_updated_at_to"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert end - start == timedelta(hours=2)
    assert batch.more and datetime.fromisoformat(batch.cursor["to"]) > since + timedelta(hours=4, minutes=59)


def test_an_entry_that_already_carries_the_checkout_is_not_read_again(api, adapter):
    api.get(f"{LIGHT}/1", json=page([full_checkout(PAID)]))
    batch = adapter.poll(cursor={}, since=at(16), until=at(17))
    assert [order.raw["_id"] for order in batch.orders] == [PAID] and len(api.calls) == 1


def test_a_checkout_gone_or_of_another_merchant_is_left_out(api, adapter):
    light = fixture("checkouts_light_page.json")
    api.get(f"{LIGHT}/1", json=light)
    api.get(f"{BASE}/api/checkouts/{PAID}", status=404, json={"message": "Checkout no encontrado"})
    api.get(f"{BASE}/api/checkouts/{CANCELLED}", json=full_checkout(CANCELLED, MerchantId="ffffffff-0000-4000-8000-000000000000"))

    assert adapter.poll(cursor={}, since=at(16), until=at(17)).orders == ()


@pytest.mark.parametrize("answer, error", [
    ({"status": 400, "json": {"message": "El rango máximo permitido por consulta es de 2 horas"}}, SourceRejectedError),
    ({"status": 200, "json": {"pagination": {}}}, SourceTransientError),
    ({"status": 429, "json": {"message": "Too Many Requests"}}, SourceTransientError),
])
def test_a_list_that_fails_fails_the_poll(api, adapter, answer, error):
    api.get(f"{LIGHT}/1", **answer)
    with pytest.raises(error):
        adapter.poll(cursor={}, since=at(16), until=at(17))


def test_an_unreadable_cursor_is_refused(adapter):
    with pytest.raises(SourceRejectedError, match="Cursor"):
        adapter.poll(cursor={"from": "ayer", "to": None}, since=at(16), until=None)


def test_the_poll_job_stores_each_change_once_under_its_key(api, account):
    gateway = GatewayFactory(account=account, source=multivende_connection(account))
    now = datetime.now(UTC)
    SourceConnection.objects.filter(pk=gateway.source_id).update(last_polled_at=now - timedelta(hours=3))
    light = fixture("checkouts_light_page.json")
    api.get(f"{LIGHT}/1", json=light)  # every window answers the same page: one change, however often seen
    api.get(f"{BASE}/api/checkouts/{PAID}", json=full_checkout(PAID))
    api.get(f"{BASE}/api/checkouts/{CANCELLED}", json=full_checkout(CANCELLED, status="cancelled"))

    result = source_poll(source_id=gateway.source_id)

    assert result == {"pages": 2, "events": 2, "more": False}  # 3 h + the overlap = two windows
    assert sorted(InboundEvent.objects.filter(gateway=gateway).values_list("delivery_id", flat=True)) == sorted([
        f"checkout:{PAID}@2026-11-19T17:30:40.118Z", f"checkout:{CANCELLED}@2026-11-19T17:30:40.118Z"])
    source = SourceConnection.objects.get(pk=gateway.source_id)
    assert source.cursor == {} and source.last_polled_at > now and source.poll_failures == 0


def test_the_poll_job_skips_a_connection_that_must_be_reconnected(api, account):
    gateway = GatewayFactory(account=account, source=multivende_connection(account))
    SourceConnection.objects.filter(pk=gateway.source_id).update(status=SourceConnection.Status.RECONNECT)
    assert source_poll(source_id=gateway.source_id) == {"skipped": True}
    assert len(api.calls) == 0


def test_a_poll_whose_refresh_token_expired_says_reconnect(api, account):
    source = multivende_connection(account)
    source.credentials = credentials(access_token_expires_at="2026-11-19T00:00:00+00:00",
                                     refresh_token_expires_at="2026-11-19T01:00:00+00:00")
    source.save()
    gateway = GatewayFactory(account=account, source=source)

    result = source_poll(source_id=gateway.source_id)

    source.refresh_from_db()
    assert "venció" in result["error"] and len(api.calls) == 0
    assert source.status == SourceConnection.Status.RECONNECT and "Vuelva a conectar" in source.status_message
