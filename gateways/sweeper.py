"""The sweeper: re-queues whatever a lost broker message or a dead worker left behind.

Runs on beat. Each row it re-queues is stamped, so a backlog that is merely waiting in the broker is
sent again at most once per threshold, not on every sweep. Events already read, refused or parked
and emissions that are finished or held are never touched: nothing crash-loops through here.
"""
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .dispatch import emission_enqueue, inbound_event_enqueue
from .models import Emission, EmissionStatus, InboundEvent
from .outbox import webhook_deliveries_requeue
from .services.bulk_jobs import bulk_jobs_resume
from .services.voids import documents_void_requeue

BATCH = 1000


def stuck_work_requeue() -> dict:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BMS_STUCK_AFTER_SECONDS)
    lease = timedelta(seconds=settings.BMS_EMISSION_LEASE_SECONDS)
    with transaction.atomic():
        events = list(
            InboundEvent.objects.filter(status=InboundEvent.Status.PENDING, received_at__lt=stale)
            .filter(Q(requeued_at__isnull=True) | Q(requeued_at__lt=stale))
            .values_list("pk", flat=True)[:BATCH]
        )
        InboundEvent.objects.filter(pk__in=events).update(requeued_at=now)
        emissions = list(
            Emission.objects.filter(
                Q(status=EmissionStatus.PENDING, updated_at__lt=stale)
                & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=stale))
                | Q(status=EmissionStatus.ISSUING, updated_at__lt=now - lease)
            ).values_list("pk", flat=True)[:BATCH]
        )
        Emission.objects.filter(pk__in=emissions).update(updated_at=now)
        for event_id in events:
            inbound_event_enqueue(event_id)
        for emission_id in emissions:
            emission_enqueue(emission_id)
        deliveries = webhook_deliveries_requeue(stale_before=stale)
        bulk_jobs_resume(stale_before=stale)
        voids = documents_void_requeue(stale_before=stale)
    return {"events": len(events), "emissions": len(emissions), "webhooks": deliveries, "voids": voids}
