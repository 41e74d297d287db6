"""The pipeline's front door: stores POST orders here. Verify, commit the raw event, answer fast.

Answers: 404 for an unknown address; 400 when the gateway's store does not push (or its adapter is not
available); 401 for a missing or wrong signature; 413 for a body over ``BMS_MAX_BODY_BYTES``; 200 for a
delivery stored (also when its authentic body cannot be read: it is kept as an unread order with the
reason, for the merchant) or deliberately ignored (pings, topics we do not act on); 503 when the event
could not be committed, so the store delivers again.
"""
import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sources.base import WebhookIgnored, WebhookReceiver, WebhookRejected
from sources.registry import SourceNotRegistered, source_adapter_for

from .models import Gateway
from .services import inbound_event_receive

logger = logging.getLogger(__name__)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


# token → (monotonic expiry, gateway with its source): read once per BMS_WEBHOOK_GATEWAY_CACHE_SECONDS per process.
_gateways: dict[str, tuple[float, Gateway]] = {}
GATEWAY_CACHE_ENTRIES = 4096


def webhook_gateway(token: str) -> Gateway | None:
    """The gateway of a webhook address with its store connection (credentials decrypted), kept a few
    seconds per process: a peak delivers many orders to one address, and each would read and decrypt them."""
    now = time.monotonic()
    cached = _gateways.get(token)
    if cached is not None and cached[0] > now:
        return cached[1]
    gateway = Gateway.objects.select_related("source").filter(webhook_token=token).first()
    ttl = settings.BMS_WEBHOOK_GATEWAY_CACHE_SECONDS
    if gateway is not None and ttl > 0:
        if len(_gateways) >= GATEWAY_CACHE_ENTRIES:
            _gateways.clear()
        _gateways[token] = (now + ttl, gateway)
    return gateway


@csrf_exempt
@require_POST
def inbound_webhook(request, token: str):
    # A store is no reader: what it is answered, and the reasons stored for the merchant, are in the product's language.
    with translation.override(settings.LANGUAGE_CODE):
        return _receive(request, token)


def _receive(request, token: str):
    gateway = webhook_gateway(token)
    if gateway is None:
        return _error(_("Dirección de webhook desconocida."), 404)
    try:
        adapter = source_adapter_for(gateway.source)
    except SourceNotRegistered as exc:
        logger.warning("account=%s gateway=%s webhook for an unavailable source: %s", gateway.account_id, gateway.pk, exc)
        return _error(exc.message, 400)
    if not isinstance(adapter, WebhookReceiver):
        return _error(_("%(platform)s no envía webhooks a esta dirección.") % {"platform": gateway.source.get_platform_display()}, 400)
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.BMS_MAX_BODY_BYTES:
        return _error(_("El cuerpo supera el máximo de %(max)s bytes.") % {"max": settings.BMS_MAX_BODY_BYTES}, 413)
    try:
        delivery = adapter.webhook_delivery(headers=request.headers, body=request.body)
    except WebhookRejected as exc:
        logger.warning("account=%s gateway=%s webhook rejected: %s", gateway.account_id, gateway.pk, exc)
        return _error(exc.message, exc.status)
    except WebhookIgnored as exc:
        logger.info("account=%s gateway=%s webhook ignored: %s", gateway.account_id, gateway.pk, exc)
        return JsonResponse({"received": True, "ignored": exc.message})
    try:
        event, created = inbound_event_receive(
            gateway=gateway, delivery_id=delivery.delivery_id, topic=delivery.topic, payload=delivery.payload,
            problem=delivery.problem, body_text=delivery.body_text,
        )
    except DatabaseError:
        logger.exception("account=%s gateway=%s could not store webhook", gateway.account_id, gateway.pk)
        # Not acknowledged: the store will deliver again.
        return _error(_("No se pudo guardar la entrega por ahora; reintente."), 503)
    answer = {"received": True, "duplicate": not created, "event": event.pk}
    if delivery.problem:
        answer["unreadable"] = delivery.problem
    return JsonResponse(answer)
