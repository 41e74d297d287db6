"""Reads of the pipeline. Functions that return rows take the account; the viewsets' scoped base
applies it to the base querysets defined here."""
from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Account
from rules.engine_fields import RUT_LIKE, parse_rut

from .models import Document, Emission, Gateway, InboundEvent, Order


def order_detail_queryset() -> QuerySet[Order]:
    """Unscoped base for one order with everything its page shows; callers filter by account."""
    return Order.objects.select_related("gateway").prefetch_related(
        Prefetch("emissions", queryset=Emission.objects.order_by("kind", "sequence").prefetch_related("attempts")),
        Prefetch("documents", queryset=Document.objects.order_by("kind", "sequence").prefetch_related("side_effects")),
    )


def order_list(
    *, account: Account, status: str | None = None, gateway_id: int | None = None, before_id: int | None = None, limit: int = 50
) -> list[Order]:
    """Newest first, keyset-paginated by id (``before_id``): no OFFSET, no COUNT."""
    qs = Order.objects.filter(account=account)
    if status:
        qs = qs.filter(status=status)
    if gateway_id:
        qs = qs.filter(gateway_id=gateway_id)
    if before_id:
        qs = qs.filter(pk__lt=before_id)
    return list(qs.order_by("-id")[:limit])


def gateway_list(*, account: Account) -> QuerySet[Gateway]:
    return Gateway.objects.filter(account=account).select_related("source", "biller").order_by("name")


UNREAD_STATUSES = (InboundEvent.Status.REJECTED, InboundEvent.Status.FAILED)


def unread_event_list(*, account: Account, gateway_id: int | None = None, limit: int = 50) -> list[InboundEvent]:
    """Deliveries whose order could not be read, or whose processing failed: newest first."""
    qs = InboundEvent.objects.filter(account=account, status__in=UNREAD_STATUSES)
    if gateway_id:
        qs = qs.filter(gateway_id=gateway_id)
    return list(qs.select_related("gateway").order_by("-id")[:limit])


def unread_event_get(*, account: Account, gateway: Gateway, event_id: str) -> InboundEvent | None:
    if not str(event_id).isdigit():
        return None
    return InboundEvent.objects.filter(account=account, gateway=gateway, pk=int(event_id)).first()


def unread_event_count(*, account: Account, gateway_id: int | None = None) -> int:
    qs = InboundEvent.objects.filter(account=account, status__in=UNREAD_STATUSES)
    if gateway_id:
        qs = qs.filter(gateway_id=gateway_id)
    return qs.count()


SECRET_KEY_HINTS = ("secret", "token", "password", "clave", "api_key", "apikey", "hash")


def masked_payload(value):
    """A raw order as people may see it: values under keys that look like secrets are masked."""
    if isinstance(value, dict):
        return {
            key: "••••••••" if any(hint in str(key).lower() for hint in SECRET_KEY_HINTS) else masked_payload(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked_payload(item) for item in value]
    return value


def document_filename(*, document: Document, extension: str) -> str:
    return f"DTE_T{document.tipo_dte}_F{document.folio}.{extension}"


def order_search(queryset: QuerySet[Order], text: str, *, account: Account) -> QuerySet[Order]:
    """Orders matching what a person types: an order number (with or without #), an external id, a folio,
    a RUT or an email. Each branch is an indexed equality on the account's rows, never a scan."""
    text = text.strip()
    if not text:
        return queryset
    if "@" in text:
        return queryset.filter(buyer_email__iexact=text)
    rut = parse_rut(text) if RUT_LIKE.fullmatch(text) and not text.lstrip("#").isdigit() else None
    if rut is not None:
        return queryset.filter(buyer_rut=rut.canonical)
    number = text.lstrip("#")
    matches = Q(number=text) | Q(number=f"#{number}") | Q(number=number) | Q(external_id=text)
    if number.isdigit() and len(number) <= 18:
        matches |= Q(pk__in=Document.objects.filter(account=account, folio=int(number)).values("order_id"))
    return queryset.filter(matches)
