"""Subscribing a gateway's webhook address at its store, for stores that can do it themselves."""
import logging

from django.urls import reverse
from django.utils.translation import gettext as _

from billmysales.integrations.errors import IntegrationError
from sources.base import WebhookRegistrar
from sources.models import SourceConnection
from sources.registry import SourceNotRegistered, source_adapter_for
from sources.services import connection_status_set

from ..dispatch import enqueue_after_commit
from ..models import Gateway

logger = logging.getLogger(__name__)

WEBHOOKS_TASK = "gateways.tasks.gateway_webhooks_task"


def gateway_webhook_url(gateway: Gateway) -> str:
    from django.conf import settings

    return settings.BMS_PUBLIC_URL.rstrip("/") + reverse("inbound-webhook", args=[gateway.webhook_token])


def gateway_webhooks_enqueue(gateway: Gateway) -> None:
    """Queues the subscription after the gateway's row commits (the call to the store happens outside it)."""
    enqueue_after_commit(WEBHOOKS_TASK, (gateway.pk,))


def source_webhooks_reensure(*, connection: SourceConnection) -> int:
    """Queues the subscription again for every gateway of ``connection``; returns how many."""
    gateways = list(Gateway.objects.filter(source=connection))
    for gateway in gateways:
        gateway_webhooks_enqueue(gateway)
    return len(gateways)


def gateway_webhooks_ensure(*, gateway_id: int) -> str:
    """Subscribes the gateway's address at its store when the store's adapter can; says what happened.
    A failure is shown on the connection ("needs attention") with the store's answer."""
    gateway = Gateway.objects.select_related("source").get(pk=gateway_id)
    try:
        adapter = source_adapter_for(gateway.source)
    except SourceNotRegistered as exc:
        return exc.message
    if not isinstance(adapter, WebhookRegistrar):
        return _("Este origen no permite suscribir webhooks desde aquí.")
    try:
        done = adapter.ensure_webhooks(callback_url=gateway_webhook_url(gateway))
    except IntegrationError as exc:
        connection_status_set(
            connection=gateway.source, status=SourceConnection.Status.ERROR,
            message=_("No se pudieron crear los webhooks en la tienda: %(error)s") % {"error": exc.message},
        )
        return exc.message
    logger.info("account=%s gateway=%s webhooks: %s", gateway.account_id, gateway.pk, done)
    return done
