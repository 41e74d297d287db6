"""A reconnected store gets its webhook subscriptions made again; a connection needing attention is
reported to integrators instead."""
import pytest

from gateways import dispatch
from gateways.models import WebhookDelivery
from gateways.services.webhook_endpoints import webhook_endpoint_create
from sources.models import SourceConnection
from sources.services import connection_status_set
from tests.gateways.factories import GatewayFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch.current_app, "send_task", lambda name, args, countdown=None: sent.append((name, args)))
    return sent


def test_reconnecting_a_source_subscribes_its_gateways_webhooks_again(account, published, django_capture_on_commit_callbacks):
    first = GatewayFactory(account=account)
    second = GatewayFactory(account=account, source=first.source)
    GatewayFactory(account=account)
    SourceConnection.objects.filter(pk=first.source_id).update(status=SourceConnection.Status.RECONNECT)
    first.source.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        connection_status_set(connection=first.source, status=SourceConnection.Status.ACTIVE)

    assert sorted(published) == sorted([("gateways.tasks.gateway_webhooks_task", (first.pk,)),
                                        ("gateways.tasks.gateway_webhooks_task", (second.pk,))])


def test_a_connection_that_stays_active_subscribes_nothing(account, published, django_capture_on_commit_callbacks):
    gateway = GatewayFactory(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        connection_status_set(connection=gateway.source, status=SourceConnection.Status.ACTIVE)
    assert published == []


def test_a_connection_needing_attention_is_an_event_not_a_subscription(account, actor, published, django_capture_on_commit_callbacks):
    gateway = GatewayFactory(account=account)
    webhook_endpoint_create(account=account, actor=actor, url="http://127.0.0.1:9/bms", events=["connection.needs_attention"])
    with django_capture_on_commit_callbacks(execute=True):
        connection_status_set(connection=gateway.source, status=SourceConnection.Status.RECONNECT, message="Token revocado")

    assert [name for name, _ in published] == ["gateways.tasks.webhook_delivery_task"]
    delivery = WebhookDelivery.objects.get(account=account)
    assert delivery.payload["data"]["status"] == "reconnect" and delivery.payload["data"]["message"] == "Token revocado"
