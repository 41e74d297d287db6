"""Outgoing webhooks: the account's events, signed, delivered at least once, never lost.

Recording: ``webhook_event_record`` is called inside the transaction of the change it reports (a
document issued, an order held, …) and writes one ``WebhookDelivery`` per active endpoint subscribed to
the event, so an event exists if and only if its change committed. The delivery task is queued on
commit; the sweeper queues again whatever a lost broker message left pending.

Delivering: a delivery is claimed with a short lease (a conditional UPDATE), POSTed with no
transaction open, and its try recorded. A 2xx marks it delivered; anything else (an error status, a
timeout, a refused connection) schedules the next try after ``BMS_WEBHOOK_RETRY_DELAYS`` (about two
days in all), then marks it failed. An endpoint whose tries have all failed for
``BMS_WEBHOOK_DISABLE_AFTER_HOURS`` (a long run, not a burst: a receiver down for ten minutes gets everything
afterwards) is disabled and its owners are emailed; deliveries can be re-sent by hand.

Signing (what receivers verify, see the README): headers ``BillMySales-Event-Id`` (the same on every try
and re-send of one event: deduplicate on it), ``BillMySales-Event-Type``, ``BillMySales-Timestamp`` (Unix
seconds of this try) and ``BillMySales-Signature: t=<timestamp>,v1=<hex HMAC-SHA256 of
"<timestamp>.<raw body>" with the endpoint's secret>``. Receivers reject a timestamp older than a few
minutes, so a captured delivery cannot be replayed later.

Where deliveries may go (SSRF): https URLs whose host resolves only to public addresses; plain http and
private, loopback or link-local addresses only for hosts in ``BMS_INSECURE_HOSTS`` (the demo and the
tests), checked when the endpoint is saved and again before every try.
"""
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ADMIN_ROLES, Membership
from billmysales.integrations.http import USER_AGENT, insecure_hosts

from .dispatch import enqueue_after_commit
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEventType

logger = logging.getLogger(__name__)

DELIVERY_TASK = "gateways.tasks.webhook_delivery_task"
TIMEOUT = (5, 10)
LEASE = timedelta(seconds=60)
EXCERPT = 500


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_url_problem(url: str) -> str | None:
    """Why deliveries may not go to ``url`` (Spanish), or None."""
    parts = urlsplit(url or "")
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return _("debe ser una dirección https:// completa.")
    if parts.username or parts.password:
        return _("no puede llevar usuario ni contraseña.")
    if host in insecure_hosts():
        return None
    if parts.scheme != "https":
        return _("debe usar https://.")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)}
    except OSError:
        return _("el nombre %(host)s no se pudo resolver.") % {"host": host}
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return _("%(host)s apunta a una dirección privada o local (%(ip)s); solo se entregan a direcciones públicas.") % {
                "host": host, "ip": ip,
            }
    return None


def webhook_event_record(*, account_id: int, event_type: str, data: dict) -> list[WebhookDelivery]:
    """One delivery per subscribed active endpoint; call it inside the transaction of the change."""
    endpoints = [
        endpoint for endpoint in WebhookEndpoint.objects.filter(account_id=account_id, active=True)
        if event_type in (endpoint.events or [])
    ]
    if not endpoints:
        return []
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery(account_id=account_id, endpoint=endpoint, event_type=event_type, payload={})
        delivery.payload = _envelope(delivery, data)
        deliveries.append(delivery)
    WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        enqueue_after_commit(DELIVERY_TASK, (delivery.pk,))
    return deliveries


def _envelope(delivery: WebhookDelivery, data: dict) -> dict:
    return {
        "id": str(delivery.event_id), "type": delivery.event_type, "created": timezone.now().isoformat(),
        "account": delivery.account_id, "data": data,
    }


def webhook_test_event_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    with transaction.atomic():
        delivery = WebhookDelivery(account_id=endpoint.account_id, endpoint=endpoint, event_type=WebhookEventType.TEST, payload={})
        delivery.payload = _envelope(delivery, {"message": _("Evento de prueba de BillMySales.")})
        delivery.save()
        enqueue_after_commit(DELIVERY_TASK, (delivery.pk,))
    return delivery


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Sends a delivery again now (same event id), whatever its state."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=None, locked_until=None
        )
        enqueue_after_commit(DELIVERY_TASK, (delivery.pk,))
    delivery.refresh_from_db()
    return delivery


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    ).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now)).update(locked_until=now + LEASE)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def webhook_delivery_run(*, delivery_id: int) -> WebhookDelivery | None:
    """One try of one delivery, if it is due and nobody else is trying it."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    number = delivery.attempts + 1
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    started = time.monotonic()
    status_code, excerpt, error = None, "", ""
    if not endpoint.active:
        error = _("El endpoint está desactivado: %(reason)s") % {"reason": endpoint.disabled_reason or _("por el usuario")}
    elif problem := webhook_url_problem(endpoint.url):
        error = _("No se entrega a %(url)s: %(problem)s") % {"url": endpoint.url, "problem": problem}
    else:
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "BillMySales-Event-Id": str(delivery.event_id), "BillMySales-Event-Type": delivery.event_type,
            "BillMySales-Timestamp": str(timestamp),
            "BillMySales-Signature": f"t={timestamp},v1={webhook_signature(endpoint.secret, timestamp, body)}",
        }
        try:
            answer = requests.post(endpoint.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
            status_code, excerpt = answer.status_code, answer.text[:EXCERPT]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:EXCERPT]
    duration = int((time.monotonic() - started) * 1000)
    _record(delivery, number, status_code, excerpt, error, duration)
    return WebhookDelivery.objects.get(pk=delivery.pk)


@transaction.atomic
def _record(delivery: WebhookDelivery, number: int, status_code: int | None, excerpt: str, error: str, duration: int) -> None:
    now = timezone.now()
    WebhookAttempt.objects.create(
        account_id=delivery.account_id, delivery=delivery, number=number, duration_ms=duration,
        status_code=status_code, response_excerpt=excerpt, error=error,
    )
    delivered = status_code is not None and 200 <= status_code < 300
    fields = {"attempts": number, "last_status_code": status_code, "last_response": excerpt, "last_error": error, "locked_until": None}
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if delivered:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
        if endpoint.consecutive_failures:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0, failing_since=None)
    else:
        delays = settings.BMS_WEBHOOK_RETRY_DELAYS
        if number > len(delays):
            fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=now + timedelta(seconds=delays[number - 1]))
            enqueue_after_commit(DELIVERY_TASK, (delivery.pk,), countdown=delays[number - 1])
        failures = endpoint.consecutive_failures + 1
        failing_since = endpoint.failing_since or now
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=failures, failing_since=failing_since)
        long_run = now - failing_since >= timedelta(hours=settings.BMS_WEBHOOK_DISABLE_AFTER_HOURS)
        if endpoint.active and long_run:
            _disable(endpoint, failures, status_code, error)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)


def _disable(endpoint: WebhookEndpoint, failures: int, status_code: int | None, error: str) -> None:
    reason = _("Desactivado tras %(n)s intentos fallidos seguidos (último: %(last)s).") % {
        "n": failures, "last": f"HTTP {status_code}" if status_code else error[:200],
    }
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason=reason)
    owners = list(
        Membership.objects.filter(account_id=endpoint.account_id, role__in=ADMIN_ROLES).values_list("user__email", flat=True)
    )
    logger.warning("account=%s webhook endpoint %s disabled: %s", endpoint.account_id, endpoint.pk, reason)
    if owners:
        transaction.on_commit(lambda: send_mail(
            subject=_("Webhook desactivado: %(url)s") % {"url": endpoint.url},
            message=_("El endpoint %(url)s dejó de recibir eventos de BillMySales.\n\n%(reason)s\n\nRevise el receptor y "
                      "vuelva a activarlo en Configuración > Webhooks; las entregas pendientes pueden reenviarse.") % {
                "url": endpoint.url, "reason": reason},
            from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=owners, fail_silently=True,
        ))


def webhook_deliveries_requeue(*, stale_before) -> int:
    """For the sweeper: pending deliveries that are due and nobody is trying (a lost broker message)."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=stale_before)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=stale_before))
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in due:
        enqueue_after_commit(DELIVERY_TASK, (delivery_id,))
    return len(due)
