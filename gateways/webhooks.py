"""The pipeline's front door: stores POST orders here. Verify, commit the raw event, answer fast."""
import logging

from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sources.base import WebhookIgnored, WebhookReceiver, WebhookRejected
from sources.registry import source_adapter_for

from .models import Gateway
from .services import inbound_event_receive

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def inbound_webhook(request, token: str):
    gateway = Gateway.objects.select_related("source").filter(webhook_token=token).first()
    if gateway is None:
        return JsonResponse({"error": "Unknown webhook address."}, status=404)
    adapter = source_adapter_for(gateway.source)
    if not isinstance(adapter, WebhookReceiver):
        return JsonResponse({"error": f"{gateway.source.get_platform_display()} does not push webhooks."}, status=400)
    try:
        delivery = adapter.webhook_delivery(headers=request.headers, body=request.body)
    except WebhookRejected as exc:
        logger.warning("account=%s gateway=%s webhook rejected: %s", gateway.account_id, gateway.pk, exc)
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except WebhookIgnored as exc:
        logger.info("account=%s gateway=%s webhook ignored: %s", gateway.account_id, gateway.pk, exc)
        return JsonResponse({"received": True, "ignored": str(exc)})
    try:
        event, created = inbound_event_receive(
            gateway=gateway, delivery_id=delivery.delivery_id, topic=delivery.topic, payload=delivery.payload
        )
    except DatabaseError:
        logger.exception("account=%s gateway=%s could not store webhook", gateway.account_id, gateway.pk)
        # Not acknowledged: the store will deliver again.
        return JsonResponse({"error": "Temporarily unable to accept the delivery."}, status=503)
    return JsonResponse({"received": True, "duplicate": not created, "event": event.pk})
