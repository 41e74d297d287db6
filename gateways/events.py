"""The events integrators receive (``gateways.outbox``), built from the pipeline's rows. Each function is
called inside the transaction of the change it reports."""
from billers.dte.display import document_name

from .models import Document, DocumentKind, Emission, InboundEvent, Order, WebhookEventType
from .outbox import webhook_event_record


def _order_data(order: Order) -> dict:
    return {
        "order": order.pk, "gateway": order.gateway_id, "external_id": order.external_id, "number": order.number,
        "status": order.status, "status_reason": order.status_reason, "paid_total": str(order.paid_total),
        "currency": order.currency, "is_test": order.is_test,
    }


def document_issued(document: Document) -> None:
    from .services.documents import document_public_url

    event = WebhookEventType.CREDIT_NOTE_ISSUED if document.kind == DocumentKind.CREDIT_NOTE else WebhookEventType.DOCUMENT_ISSUED
    webhook_event_record(account_id=document.account_id, event_type=event, data={
        **_order_data(document.order),
        "document": {
            "id": document.pk, "kind": document.kind, "tipo_dte": document.tipo_dte, "name": document_name(document.tipo_dte),
            "folio": document.folio, "fecha": document.fecha.isoformat(), "total": document.mnt_total,
            "certification": document.certification, "pdf_url": document_public_url(document=document),
            "credited_document": document.credited_document_id,
        },
    })


def document_failed(emission: Emission, reason: str) -> None:
    webhook_event_record(account_id=emission.account_id, event_type=WebhookEventType.DOCUMENT_FAILED, data={
        **_order_data(emission.order), "emission": {"kind": emission.kind, "reference": emission.reference, "reason": reason},
    })


def order_held(order: Order) -> None:
    webhook_event_record(account_id=order.account_id, event_type=WebhookEventType.ORDER_HELD, data=_order_data(order))


def order_unreadable(event: InboundEvent, reason: str) -> None:
    webhook_event_record(account_id=event.account_id, event_type=WebhookEventType.ORDER_UNREADABLE, data={
        "gateway": event.gateway_id, "delivery": event.pk, "delivery_id": event.delivery_id, "topic": event.topic,
        "status": event.status, "reason": reason,
    })


def connection_needs_attention(*, account_id: int, connection_id: int, platform: str, status: str, message: str) -> None:
    webhook_event_record(account_id=account_id, event_type=WebhookEventType.CONNECTION_NEEDS_ATTENTION, data={
        "connection": connection_id, "platform": platform, "status": status, "message": message,
    })
