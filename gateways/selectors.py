"""Reads of the pipeline. Functions that return rows take the account; the viewsets' scoped base
applies it to the base querysets defined here."""
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Account
from billers.dte.errors import MappingRefused
from billers.dte.mapping import build_document
from billers.dte.sale_json import sale_from_dict
from billers.dte.types import FACTURA_TYPES
from billers.registry import BillerNotRegistered, biller_adapter_for
from rules.engine_fields import RUT_LIKE, parse_rut
from rules.services import decide_order
from sources.base import OrderParseError
from sources.models import SourceConnection
from sources.registry import SourceNotRegistered, source_adapter_for

from .labels import NO_FOLIOS, failure_category
from .models import (
    BackfillJob,
    BulkJob,
    Document,
    DocumentKind,
    Emission,
    EmissionAttempt,
    EmissionStatus,
    Gateway,
    InboundEvent,
    Order,
    OrderStatus,
)


def order_detail_queryset() -> QuerySet[Order]:
    """Unscoped base for one order with everything its page shows (not the documents' XML and PDF bytes);
    callers filter by account."""
    return Order.objects.select_related("gateway__source", "gateway__biller", "gateway__ruleset").prefetch_related(
        Prefetch("emissions", queryset=Emission.objects.order_by("kind", "sequence").prefetch_related(
            Prefetch("attempts", queryset=EmissionAttempt.objects.order_by("number"))
        )),
        Prefetch("documents", queryset=Document.objects.defer("xml", "pdf").order_by("kind", "sequence").prefetch_related("side_effects")),
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
MASK = "••••••••"


def _secret_name(name) -> bool:
    return any(hint in str(name).lower() for hint in SECRET_KEY_HINTS)


def masked_payload(value):
    """A raw order as people may see it: values under keys that look like secrets are masked, and so are
    the values of name/value pairs whose name does (Shopify's ``note_attributes``, WooCommerce's
    ``meta_data``: ``{"key": "_api_token", "value": ...}``)."""
    if isinstance(value, dict):
        pair_name = value.get("name", value.get("key")) if "value" in value else None
        return {
            key: MASK if _secret_name(key) or (key == "value" and pair_name is not None and _secret_name(pair_name))
            else masked_payload(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked_payload(item) for item in value]
    return value


def document_filename(*, document: Document, extension: str) -> str:
    return f"DTE_T{document.tipo_dte}_F{document.folio}.{extension}"


SEARCH_CAP = 200


def order_search(queryset: QuerySet[Order], text: str, *, account: Account) -> QuerySet[Order]:
    """Orders matching what a person types: an order number (with or without #), an external id, a folio,
    a RUT or an email. Each branch is an indexed equality on the account's rows, never a scan: the
    number, external-id and folio branches gather their order ids first (three index lookups), so no
    OR across two tables makes the database read the account's orders one by one. Emails match as
    typed or in lower case (the index is on the stored text)."""
    text = text.strip()
    if not text:
        return queryset
    if "@" in text:
        return queryset.filter(account=account, buyer_email__in={text, text.lower()})
    rut = parse_rut(text) if RUT_LIKE.fullmatch(text) and not text.lstrip("#").isdigit() else None
    if rut is not None:
        return queryset.filter(account=account, buyer_rut=rut.canonical)
    number = text.lstrip("#")
    orders = Order.objects.filter(account=account)
    ids = set(orders.filter(number__in={text, f"#{number}", number}).values_list("pk", flat=True)[:SEARCH_CAP])
    gateways = Gateway.objects.filter(account=account).values("pk")
    ids.update(orders.filter(gateway__in=gateways, external_id=text).values_list("pk", flat=True)[:SEARCH_CAP])
    if number.isdigit() and len(number) <= 18:
        ids.update(Document.objects.filter(account=account, folio=int(number)).values_list("order_id", flat=True)[:SEARCH_CAP])
    return queryset.filter(pk__in=sorted(ids))


# --- Dashboard pages ------------------------------------------------------------------------------
# Every list is keyset-paginated on an indexed (account, …, -id) path, bounded, and never counts the
# account's orders: the first page of orders stays fast with millions of rows (see the README).

PAGE_SIZE = 50
# Counts shown to people stop here ("más de 999"): a count is a scan, and a scan must stay bounded.
COUNT_CAP = 1000
# Orders a worker is still taking through the pipeline: the list polls while one is shown.
IN_PROGRESS_STATUSES = (OrderStatus.RECEIVED, OrderStatus.READY, OrderStatus.ISSUING)
ORDER_ROW_FIELDS = (
    "id", "account_id", "gateway_id", "gateway__name", "external_id", "number", "status", "status_reason", "paid_total",
    "currency", "buyer_name", "buyer_rut", "is_test", "received_at",
)
DOCUMENT_ROW_FIELDS = (
    "id", "account_id", "order_id", "order__number", "order__external_id", "order__gateway_id", "order__gateway__name",
    "kind", "sequence", "tipo_dte", "folio", "fecha", "mnt_total", "totals", "certification", "sii_status",
    "sii_status_detail", "credited_document_id", "issued_at",
)


def capped_count(queryset: QuerySet, cap: int = COUNT_CAP) -> int:
    """``COUNT(*)`` over at most ``cap`` rows (a LIMIT subquery): enough to say "999+"."""
    return queryset[:cap].count()


def local_day_start(day: date) -> datetime:
    """Midnight of ``day`` in the account's time (Chile), as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


@dataclass(frozen=True)
class Page:
    """One keyset page: ``older`` / ``newer`` are the ids to pass as ``before`` / ``after`` (None: no such page)."""

    items: list
    older: int | None
    newer: int | None


def keyset_page(
    queryset: QuerySet, *, before: int | None = None, after: int | None = None, limit: int = PAGE_SIZE, by: str | None = None,
) -> Page:
    """Newest first, ``limit`` rows older than row ``before`` or newer than row ``after``: no OFFSET, no COUNT.

    Ordered by id, or — ``by``, a date or time column the list is filtered on — by that column and then
    id, so a range is read from its (account, column) index instead of walking every newer id down to
    it. The cursor stays a row id; its column value is looked up by primary key."""
    order = ("id",) if by is None else (by, "id")
    descending = tuple(f"-{name}" for name in order)
    cursor = after if after is not None else before
    if cursor is not None:
        value = None
        if by is not None:
            value = queryset.model.objects.filter(pk=cursor).values_list(by, flat=True).first()
        op = "gt" if after is not None else "lt"
        if value is None:
            queryset = queryset.filter(**{f"pk__{op}": cursor})
        else:
            queryset = queryset.filter(Q(**{f"{by}__{op}": value}) | Q(**{by: value, f"pk__{op}": cursor}))
    if after is not None:
        rows = list(queryset.order_by(*order)[: limit + 1])
        items = rows[:limit][::-1]
        return Page(items, older=items[-1].pk if items else None, newer=items[0].pk if len(rows) > limit else None)
    rows = list(queryset.order_by(*descending)[: limit + 1])
    items = rows[:limit]
    return Page(items, older=items[-1].pk if len(rows) > limit else None, newer=items[0].pk if before is not None and items else None)


def order_filtered(
    *, account: Account, status: str = "", gateway_id: int | None = None, date_from: date | None = None,
    date_to: date | None = None, document_type: int | None = None, q: str = "",
) -> QuerySet[Order]:
    """The account's orders under the list's filters (dates are days in Chile, both included).

    ``document_type``: orders with a document of that type (39, 33, 61…), as the API's filter: an EXISTS
    the database answers per order (a common type) or from the (account, tipo_dte) index (a rare one)."""
    queryset = Order.objects.filter(account=account)
    if status:
        queryset = queryset.filter(status=status)
    if gateway_id:
        queryset = queryset.filter(gateway_id=gateway_id)
    if date_from:
        queryset = queryset.filter(received_at__gte=local_day_start(date_from))
    if date_to:
        queryset = queryset.filter(received_at__lt=local_day_start(date_to + timedelta(days=1)))
    if document_type:
        queryset = queryset.filter(Exists(Document.objects.filter(account=account, order_id=OuterRef("pk"), tipo_dte=document_type)))
    if q:
        queryset = order_search(queryset, q, account=account)
    return queryset


def order_rows(queryset: QuerySet[Order]) -> QuerySet[Order]:
    """What a row of the orders list shows: the order's own columns (not its raw payload), its gateway's
    name and its documents' type and folio, in two queries for the whole page."""
    return queryset.select_related("gateway").only(*ORDER_ROW_FIELDS).prefetch_related(
        Prefetch(
            "documents",
            queryset=Document.objects.only("id", "order_id", "kind", "sequence", "tipo_dte", "folio").order_by("kind", "sequence"),
            to_attr="row_documents",
        )
    )


def orders_newer_exist(queryset: QuerySet[Order], *, than_id: int) -> bool:
    return queryset.filter(pk__gt=than_id).exists()


def unread_event_page(*, account: Account, before: int | None = None, limit: int = PAGE_SIZE) -> Page:
    """Unread deliveries, newest first, through the (gateway, status, -id) index of each of the account's gateways."""
    queryset = InboundEvent.objects.filter(
        account=account, gateway__in=Gateway.objects.filter(account=account).values("pk"), status__in=UNREAD_STATUSES
    ).select_related("gateway").defer("body_text")
    return keyset_page(queryset, before=before, limit=limit)


def unread_event_ids(*, account: Account, limit: int) -> list[int]:
    """The ids of the account's unread deliveries that can be read again (their body is JSON), newest first."""
    return list(
        InboundEvent.objects.filter(
            account=account, gateway__in=Gateway.objects.filter(account=account).values("pk"), status__in=UNREAD_STATUSES,
            payload__isnull=False,
        ).order_by("-id").values_list("pk", flat=True)[:limit]
    )


# --- Home -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GatewayIssue:
    """Something on a gateway a person must look at: ``code`` is reconnect, no_folios, failed, held or unread."""

    code: str
    count: int
    message: str = ""

    @property
    def capped(self) -> bool:
        """The count stopped at ``COUNT_CAP``: there may be more."""
        return self.count >= COUNT_CAP


@dataclass
class GatewayHealth:
    gateway: Gateway
    issues: list[GatewayIssue] = field(default_factory=list)

    @property
    def state(self) -> str:
        """active, inactive or needs_attention (an active or inactive gateway with issues)."""
        if self.issues:
            return "needs_attention"
        return "active" if self.gateway.active else "inactive"


def gateway_health_list(*, account: Account) -> list[GatewayHealth]:
    """Each gateway with what needs attention: a store to reconnect, a biller out of folios, failed or held
    orders, unread deliveries. A handful of bounded indexed queries per gateway."""
    health = []
    for gateway in gateway_list(account=account):
        issues = []
        source = gateway.source
        if source.status != SourceConnection.Status.ACTIVE:
            issues.append(GatewayIssue("reconnect", 0, source.status_message or str(source.get_status_display())))
        failed = Order.objects.filter(account=account, gateway=gateway, status=OrderStatus.FAILED)
        recent_reasons = list(failed.order_by("-id").values_list("status_reason", flat=True)[:50])
        folio_reason = next((reason for reason in recent_reasons if NO_FOLIOS.search(reason)), None)
        if folio_reason is not None:
            issues.append(GatewayIssue("no_folios", 0, folio_reason))
        if recent_reasons:
            issues.append(GatewayIssue("failed", capped_count(failed), recent_reasons[0]))
        held = capped_count(Order.objects.filter(account=account, gateway=gateway, status=OrderStatus.HELD))
        if held:
            issues.append(GatewayIssue("held", held))
        unread = capped_count(InboundEvent.objects.filter(gateway=gateway, status__in=UNREAD_STATUSES))
        if unread:
            issues.append(GatewayIssue("unread", unread))
        health.append(GatewayHealth(gateway, issues))
    return health


@dataclass(frozen=True)
class DailyDocuments:
    """Documents of the last days: per day (oldest first), the count per type and the amounts."""

    days: list[date]
    counts: dict[int, list[int]]
    invoiced: list[int]
    credited: list[int]


def documents_per_day(*, account: Account, days: int = 30) -> DailyDocuments:
    """Counts per document type and amounts per day (the document's date), from one aggregate over the
    (account, fecha) index: sale documents' totals as billed, credit notes' separately."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    calendar = [first + timedelta(days=n) for n in range(days)]
    position = {day: n for n, day in enumerate(calendar)}
    rows = (
        Document.objects.filter(account=account, fecha__gte=first, fecha__lte=today)
        .values("fecha", "tipo_dte", "kind")
        .annotate(n=Count("id"), amount=Sum("mnt_total"))
        .order_by()
    )
    counts: dict[int, list[int]] = {}
    invoiced, credited = [0] * days, [0] * days
    for row in rows:
        n = position[row["fecha"]]
        counts.setdefault(row["tipo_dte"], [0] * days)[n] += row["n"]
        (credited if row["kind"] == DocumentKind.CREDIT_NOTE else invoiced)[n] += row["amount"] or 0
    return DailyDocuments(calendar, dict(sorted(counts.items())), invoiced, credited)


def failures_by_reason(*, account: Account, days: int = 30, limit: int = 2000) -> list[tuple[str, int]]:
    """Why orders of the last days did not become documents: (``labels.FAILURE_LABELS`` key, count), most
    frequent first. Reads the newest ``limit`` failed or held orders (indexed by account and status)
    and the unread deliveries; an approximation beyond that, never a scan of the account."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        Order.objects.filter(account=account, status__in=(OrderStatus.FAILED, OrderStatus.HELD), updated_at__gte=since)
        .annotate(emission_held=Exists(Emission.objects.filter(order_id=OuterRef("pk"), status=EmissionStatus.HELD)))
        .order_by("-id")
        .values_list("status", "status_reason", "decision", "emission_held")[:limit]
    )
    tally = Counter(
        failure_category(status=status, status_reason=reason, decision=decision, emission_held=held)
        for status, reason, decision, held in rows
    )
    unread = capped_count(InboundEvent.objects.filter(
        account=account, gateway__in=Gateway.objects.filter(account=account).values("pk"), status__in=UNREAD_STATUSES,
        received_at__gte=since,
    ), cap=limit)
    if unread:
        tally["unread"] = unread
    return tally.most_common()


# --- Documents ------------------------------------------------------------------------------------

def document_filtered(
    *, account: Account, gateway_id: int | None = None, tipo_dte: int | None = None, date_from: date | None = None,
    date_to: date | None = None, folio: int | None = None, sii_status: str = "",
) -> QuerySet[Document]:
    """The account's documents under the documents page's filters (dates: the document's own date)."""
    queryset = Document.objects.filter(account=account)
    if gateway_id:
        queryset = queryset.filter(order__gateway_id=gateway_id)
    if tipo_dte:
        queryset = queryset.filter(tipo_dte=tipo_dte)
    if date_from:
        queryset = queryset.filter(fecha__gte=date_from)
    if date_to:
        queryset = queryset.filter(fecha__lte=date_to)
    if folio:
        queryset = queryset.filter(folio=folio)
    if sii_status:
        queryset = queryset.filter(sii_status=sii_status)
    return queryset


def document_rows(queryset: QuerySet[Document]) -> QuerySet[Document]:
    """A documents list row: never the XML or PDF bytes."""
    return queryset.select_related("order__gateway").only(*DOCUMENT_ROW_FIELDS)


def document_export_iter(queryset: QuerySet[Document], *, chunk: int = 2000):
    """Every document of ``queryset``, newest first, read in keyset chunks (no server-side cursor, no
    OFFSET), for a streamed export of any size."""
    before = None
    while True:
        batch = list(document_rows(queryset.filter(pk__lt=before) if before else queryset).order_by("-id")[:chunk])
        yield from batch
        if len(batch) < chunk:
            return
        before = batch[-1].pk


# --- Jobs -----------------------------------------------------------------------------------------

def job_list(*, account: Account, limit: int = 5) -> list:
    """The latest bulk actions and backfills (``is_backfill`` set on those), running ones first, for the progress bars."""
    bulk = list(BulkJob.objects.filter(account=account).defer("item_ids").order_by("-id")[:limit])
    backfills = list(BackfillJob.objects.filter(account=account).select_related("gateway").defer("cursor").order_by("-id")[:limit])
    for job in backfills:
        job.is_backfill = True
    jobs = sorted(bulk + backfills, key=lambda job: job.created_at, reverse=True)[:limit]
    return sorted(jobs, key=lambda job: job.status not in ("pending", "running"))


def jobs_running(jobs: list) -> bool:
    return any(job.status in ("pending", "running") for job in jobs)


# --- One order ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DocumentPreview:
    """The DTE as the core builds it for the order (``document``: ``billers.dte.document.Document``), or why
    it cannot be built (``refusal``). ``from_emission``: built from the sale of the invoice's emission (what
    was or will be sent), not from the rules asked again."""

    document: object | None
    refusal: str = ""
    from_emission: bool = False


def _sale_of(emission: Emission):
    """The emission's stored sale, or None when it cannot be read (an incomplete or older shape)."""
    try:
        return sale_from_dict(emission.sale)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def order_document_preview(*, order: Order) -> DocumentPreview | None:
    """The sale document the order is (or would be) billed with: lines, totals, receptor. From its
    invoice emission's sale when there is one, else from the rules asked again (read only) when they
    say emit; None when there is nothing to preview (held, skipped or waiting for the rules)."""
    emissions = [e for e in order.emissions.all() if e.kind == DocumentKind.INVOICE]
    invoices = [d for d in order.documents.all() if d.kind == DocumentKind.INVOICE]
    folio, fecha = (invoices[-1].folio, invoices[-1].fecha) if invoices else (0, timezone.localdate())
    try:
        if emissions:
            sale, from_emission = _sale_of(emissions[-1]), True
            if sale is None:
                return None
        elif order.decision.get("action") == "emit":
            source = source_adapter_for(order.gateway.source)
            decision = decide_order(
                ruleset=order.gateway.ruleset, order=source.parse_order(order.raw), field_defaults=source.default_field_mapping,
                backfill=True, certification=order.gateway.biller.is_certification,
            )
            if decision.sale is None:
                return None
            sale, from_emission = decision.sale, False
        else:
            return None
        emisor = biller_adapter_for(order.gateway.biller).emisor()
        return DocumentPreview(build_document(sale, emisor=emisor, folio=folio, fecha=fecha), from_emission=from_emission)
    except (MappingRefused, OrderParseError) as exc:
        return DocumentPreview(None, refusal=exc.message)
    except (BillerNotRegistered, SourceNotRegistered):
        return None


@dataclass(frozen=True)
class OrderActions:
    """Which of the order page's actions apply to the order as it is now (the services refuse the rest)."""

    emit: bool = False
    retry: bool = False
    skip: bool = False
    credit_note: bool = False
    text_correction: bool = False
    # Money of the invoice not yet credited (or on its way to be).
    uncredited: int = 0

    @property
    def any(self) -> bool:
        return self.emit or self.retry or self.skip or self.credit_note or self.text_correction


def order_actions(*, order: Order) -> OrderActions:
    """From the order's prefetched emissions and documents (``order_detail_queryset``): no extra query."""
    emissions = list(order.emissions.all())
    invoice = next((d for d in reversed(order.documents.all()) if d.kind == DocumentKind.INVOICE), None)
    issued = order.status == OrderStatus.ISSUED and invoice is not None
    credited = sum(
        e.sale.get("paid_total", 0) for e in emissions
        if e.kind == DocumentKind.CREDIT_NOTE and e.status != EmissionStatus.FAILED and e.sale.get("paid_total", 0) > 0
    )
    uncredited = max(0, invoice.mnt_total - credited) if issued else 0
    return OrderActions(
        emit=order.status not in (OrderStatus.ISSUED, OrderStatus.ISSUING, OrderStatus.READY),
        retry=any(e.status in (EmissionStatus.FAILED, EmissionStatus.HELD) for e in emissions)
        and order.status in (OrderStatus.FAILED, OrderStatus.HELD),
        skip=order.status not in (OrderStatus.ISSUED, OrderStatus.ISSUING, OrderStatus.SKIPPED),
        credit_note=uncredited > 0,
        text_correction=uncredited > 0 and invoice.tipo_dte in FACTURA_TYPES,
        uncredited=uncredited,
    )


def order_credit_lines(*, order: Order) -> list:
    """The order's lines as the store sent them (``OrderLine``: line_id, name, quantity…), for a credit note by lines."""
    try:
        return list(source_adapter_for(order.gateway.source).parse_order(order.raw).lines)
    except (OrderParseError, SourceNotRegistered):
        return []


def order_current_receptor(*, order: Order):
    """The receptor of the order's factura as its last text correction left it (or as it was issued), from
    the prefetched emissions; None without an issued invoice."""
    emissions = list(order.emissions.all())
    invoice = next((d for d in reversed(order.documents.all()) if d.kind == DocumentKind.INVOICE), None)
    if invoice is None:
        return None
    for emission in sorted(emissions, key=lambda e: e.sequence, reverse=True):
        if emission.kind != DocumentKind.CREDIT_NOTE or emission.status == EmissionStatus.FAILED:
            continue
        sale = _sale_of(emission)
        corrects_invoice = sale is not None and any(
            ref.folio == invoice.folio and ref.tipo_doc == invoice.tipo_dte for ref in sale.references
        )
        if corrects_invoice and sale.corrects_text:
            return sale.receptor
    invoice_emission = next((e for e in emissions if e.pk == invoice.emission_id), None)
    sale = _sale_of(invoice_emission) if invoice_emission is not None else None
    return sale.receptor if sale is not None else None
