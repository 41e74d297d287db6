import secrets
import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedTextField
from accounts.models import TenantModel
from billers.models import BillerConnection
from rules.models import RuleSet
from sources.models import SourceConnection


def _webhook_token() -> str:
    return secrets.token_urlsafe(24)


class Gateway(TenantModel):
    """Joins one store to one biller under one rule set."""

    class Environment(models.TextChoices):
        CERTIFICATION = "certification", _("Certificación")
        PRODUCTION = "production", _("Producción")

    name = models.CharField(max_length=120)
    source = models.ForeignKey(SourceConnection, on_delete=models.PROTECT, related_name="gateways")
    biller = models.ForeignKey(BillerConnection, on_delete=models.PROTECT, related_name="gateways")
    ruleset = models.OneToOneField(RuleSet, on_delete=models.PROTECT, related_name="gateway")
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.CERTIFICATION)
    active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    # The last test sale that passed end to end (activation requires one, or an owner's reason).
    test_passed_at = models.DateTimeField(null=True, blank=True)
    # Secret part of the inbound webhook URL; the store's own signature is verified as well.
    webhook_token = models.CharField(max_length=64, unique=True, default=_webhook_token)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class InboundEvent(TenantModel):
    """A raw delivery from a store (webhook or poll), committed before we answer 2xx.

    An event whose order cannot be read is ``rejected`` with the reason (field and problem) and shown to
    the merchant as an unread order; one whose processing crashed ``BMS_INGEST_MAX_ATTEMPTS`` times is
    ``failed`` (parked) with the last error. Both can be reprocessed after a fix.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pendiente")
        PROCESSED = "processed", _("Procesado")
        REJECTED = "rejected", _("No leído")
        FAILED = "failed", _("Falló al procesar")

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="inbound_events")
    delivery_id = models.CharField(max_length=120)
    topic = models.CharField(max_length=60, blank=True)
    # The order object; None when the authentic body could not be read as one (kept in ``body_text``).
    payload = models.JSONField(null=True, blank=True)
    body_text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Last time it was queued: by a dispatch round after it arrived, or by the sweeper (not processed in time).
    requeued_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "delivery_id"], name="unique_inbound_delivery")]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_sweeper"),
            models.Index(fields=["gateway", "status", "-id"], name="inbound_unread"),
            # Deliveries stored but not queued yet (gateways.services.ingest.inbound_events_dispatch).
            models.Index(fields=["id"], name="inbound_undispatched", condition=models.Q(status="pending", requeued_at__isnull=True)),
        ]


class OrderStatus(models.TextChoices):
    RECEIVED = "received", _("Recibida")
    WAITING = "waiting", _("Esperando (p. ej. pago)")
    HELD = "held", _("Retenida para revisión")
    READY = "ready", _("Lista para emitir")
    ISSUING = "issuing", _("Emitiendo")
    ISSUED = "issued", _("Emitida")
    SKIPPED = "skipped", _("Omitida")
    FAILED = "failed", _("Fallida")


class Order(TenantModel):
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="orders")
    external_id = models.CharField(max_length=100)
    number = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.RECEIVED)
    status_reason = models.TextField(blank=True)
    payment_status = models.CharField(max_length=24, blank=True)
    paid_total = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    buyer_name = models.CharField(max_length=200, blank=True)
    buyer_email = models.CharField(max_length=254, blank=True)
    # The buyer's RUT as the rules read it (empty for a boleta to consumidor final): searchable.
    buyer_rut = models.CharField(max_length=12, blank=True)
    raw = models.JSONField(default=dict)
    decision = models.JSONField(default=dict, blank=True)
    is_test = models.BooleanField(default=False)
    backfill = models.BooleanField(default=False)
    source_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "external_id"], name="unique_order_per_gateway")]
        indexes = [
            models.Index(fields=["account", "-id"], name="order_account_keyset"),
            models.Index(fields=["account", "status", "-id"], name="order_account_status"),
            models.Index(fields=["account", "gateway", "-id"], name="order_account_gateway"),
            models.Index(fields=["account", "number"], name="order_account_number"),
            models.Index(fields=["account", "buyer_rut"], name="order_account_rut"),
            models.Index(fields=["account", "buyer_email"], name="order_account_email"),
            # Orders of a date range, read in (received_at, id) order (the dashboard's date filter).
            models.Index(fields=["account", "received_at"], name="order_account_received"),
            models.Index(fields=["status", "updated_at"], name="order_sweeper"),
            # The oldest paid order not issued yet, for /metrics: one lookup in an index of only those orders.
            models.Index(fields=["received_at"], name="order_unissued_age",
                         condition=models.Q(status__in=["received", "ready", "issuing"])),
        ]

    def __str__(self) -> str:
        return f"Order {self.number or self.external_id}"


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("Documento de venta")
    CREDIT_NOTE = "credit_note", _("Nota de crédito")


class EmissionStatus(models.TextChoices):
    PENDING = "pending", _("Pendiente")
    ISSUING = "issuing", _("Emitiendo")
    ISSUED = "issued", _("Emitido")
    FAILED = "failed", _("Fallido")
    HELD = "held", _("Retenido para revisión")


class Emission(TenantModel):
    """One document to issue for an order: the unit of exactly-once work.

    ``(order, kind, sequence)`` is unique, and so is ``reference``, the idempotency key sent to the
    biller and used to look the document up when an attempt's outcome is unknown.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="emissions")
    kind = models.CharField(max_length=12, choices=DocumentKind.choices)
    sequence = models.PositiveIntegerField(default=1)
    reference = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=8, choices=EmissionStatus.choices, default=EmissionStatus.PENDING)
    status_reason = models.TextField(blank=True)
    # The Sale (billers.dte.sale) as JSON, fixed when the emission is created.
    sale = models.JSONField()
    # What the biller adapter's ``check`` prepared from the sale (e.g. the DTE), sent at issue time.
    prepared = models.JSONField(default=dict, blank=True)
    # For credit notes: the store's refund id, so a repeated refund event creates nothing new.
    refund_external_id = models.CharField(max_length=100, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "kind", "sequence"], name="unique_emission_sequence"),
            models.UniqueConstraint(
                fields=["order", "refund_external_id"],
                condition=models.Q(kind="credit_note"),
                name="unique_credit_note_per_refund",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="emission_sweeper")]


class SiiStatus(models.TextChoices):
    UNKNOWN = "unknown", _("Sin información del SII")
    NOT_SENT = "not_sent", _("Emitido, aún no enviado al SII")
    SENT = "sent", _("Enviado al SII, en revisión")
    ACCEPTED = "accepted", _("Aceptado por el SII")
    ACCEPTED_WITH_OBJECTIONS = "objections", _("Aceptado con reparos")
    REJECTED = "rejected", _("Rechazado por el SII")


SII_FINAL_STATUSES = (SiiStatus.ACCEPTED, SiiStatus.ACCEPTED_WITH_OBJECTIONS, SiiStatus.REJECTED)


class VoidStatus(models.TextChoices):
    """A document no credit note can correct (a boleta de honorarios) is voided at its biller instead."""

    NONE = "", _("Vigente")
    PENDING = "pending", _("Anulación en curso")
    DONE = "done", _("Anulado")
    FAILED = "failed", _("Anulación fallida")


class Document(TenantModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="documents")
    emission = models.OneToOneField(Emission, on_delete=models.PROTECT, related_name="document")
    kind = models.CharField(max_length=12, choices=DocumentKind.choices)
    sequence = models.PositiveIntegerField(default=1)
    tipo_dte = models.PositiveSmallIntegerField()
    folio = models.PositiveBigIntegerField()
    fecha = models.DateField()
    mnt_total = models.BigIntegerField()
    totals = models.JSONField(default=dict)
    biller = models.ForeignKey(BillerConnection, on_delete=models.PROTECT, related_name="+")
    biller_document_id = models.CharField(max_length=120, blank=True)
    certification = models.BooleanField()
    xml = models.BinaryField(blank=True, default=b"")
    # The biller's PDF when it gives one (fetched once and kept, so nobody needs the biller's credentials
    # to see it); empty: rendered from the XML.
    pdf = models.BinaryField(blank=True, default=b"")
    pdf_url = models.URLField(max_length=500, blank=True)
    # The document at the SII as the biller reports it: empty track id = issued, not yet sent to the SII.
    sii_track_id = models.CharField(max_length=40, blank=True)
    sii_status = models.CharField(max_length=12, choices=SiiStatus.choices, default=SiiStatus.UNKNOWN)
    sii_status_detail = models.TextField(blank=True)
    sii_checked_at = models.DateTimeField(null=True, blank=True)
    credited_document = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes")
    issued_at = models.DateTimeField(auto_now_add=True)
    # Database defaults too: rows written by plain SQL (bulk loads, the benchmarks) need not name them.
    void_status = models.CharField(max_length=8, choices=VoidStatus.choices, default=VoidStatus.NONE, db_default="", blank=True)
    void_message = models.TextField(blank=True, default="", db_default="")
    void_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Pending: when the next try is due (a running try pushes it one lease ahead). Done: when it was voided.
    void_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "kind", "sequence"], name="unique_document_sequence")]
        indexes = [
            models.Index(fields=["account", "-id"], name="document_account_keyset"),
            models.Index(fields=["account", "folio"], name="document_account_folio"),
            # Documents of a date range (the documents page's filter) and the home page's per-day charts,
            # which read only these columns (an index-only scan on PostgreSQL).
            models.Index(fields=["account", "fecha"], include=["tipo_dte", "kind", "mnt_total"], name="document_account_fecha"),
            # Documents of one type, newest first (the documents page's filter), and the orders that have one
            # (the orders page's filter reads order_id from the index alone).
            models.Index(fields=["account", "tipo_dte", "-id"], include=["order_id"], name="document_account_type"),
            models.Index(fields=["sii_status", "sii_checked_at"], name="document_sii_pending"),
            models.Index(fields=["void_at"], name="document_void_due", condition=models.Q(void_status="pending")),
        ]

    def __str__(self) -> str:
        return f"DTE {self.tipo_dte} N° {self.folio}"


class EmissionAttempt(TenantModel):
    """Every biller call, recorded (committed) before the call is made."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("En curso")
        SUCCESS = "success", _("Emitido")
        TRANSIENT = "transient", _("Error transitorio")
        REJECTED = "rejected", _("Rechazado")
        RECONCILED = "reconciled", _("Conciliado con el facturador")
        UNKNOWN = "unknown", _("Resultado desconocido")
        MISMATCH = "mismatch", _("El facturador emitió otro documento")

    emission = models.ForeignKey(Emission, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    request_summary = models.JSONField(default=dict)
    # A multi-step biller's progress (e.g. LibreDTE's temporary document), carried to the next attempt.
    checkpoint = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    error_class = models.CharField(max_length=120, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["emission", "number"], name="unique_attempt_number")]


class SideEffect(TenantModel):
    """What happened after issue: write-back to the store, email to the buyer, outgoing webhook."""

    class Kind(models.TextChoices):
        STORE_WRITEBACK = "store_writeback", _("Escritura en la tienda")
        EMAIL = "email", _("Correo al comprador")
        WEBHOOK = "webhook", _("Webhook saliente")

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Pendiente")
        DONE = "done", _("Hecho")
        FAILED = "failed", _("Falló")
        NOT_APPLICABLE = "n/a", _("No aplica")

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="side_effects")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "kind"], name="unique_side_effect")]


class BackfillJob(TenantModel):
    """A gateway's orders of a date range, fetched from the store and decided as a backfill (the rules'
    start date does not apply), with its progress for the dashboard and the API."""

    class Status(models.TextChoices):
        PENDING = "pending", _("En cola")
        RUNNING = "running", _("En curso")
        DONE = "done", _("Terminado")
        FAILED = "failed", _("Falló")

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="backfill_jobs")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    pages = models.PositiveIntegerField(default=0)
    orders_seen = models.PositiveIntegerField(default=0)
    orders_ready = models.PositiveIntegerField(default=0)
    stored_redecided = models.PositiveIntegerField(default=0)
    cursor = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)


class BulkJob(TenantModel):
    """An action a person asked for on many orders (or unread deliveries) at once — emit now, retry, read
    again — run by a worker in chunks, with its progress for the dashboard.

    The items are fixed when the job is created (what the person saw and chose), at most
    ``BULK_JOB_MAX_ITEMS``; each one goes through the same service as the single action, so a job never
    does more than the person could do by hand. ``lease_until`` keeps a second delivery of the task from
    running the same chunk twice."""

    class Kind(models.TextChoices):
        EMIT = "emit", _("Emitir ahora")
        RETRY = "retry", _("Reintentar")
        REPROCESS = "reprocess", _("Volver a leer")

    class Status(models.TextChoices):
        PENDING = "pending", _("En cola")
        RUNNING = "running", _("En curso")
        DONE = "done", _("Terminado")
        FAILED = "failed", _("Falló")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # What was chosen, as the person would say it ("3 órdenes seleccionadas").
    description = models.CharField(max_length=300, blank=True)
    item_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The first items that did not go through, with why: [{"id", "label", "message"}].
    failures = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_role = models.CharField(max_length=16, blank=True)
    support_mode = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-id"], name="bulk_job_account_keyset")]

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.processed * 100 // self.total)


class WebhookEventType(models.TextChoices):
    DOCUMENT_ISSUED = "document.issued", _("Documento emitido")
    DOCUMENT_FAILED = "document.failed", _("Documento fallido")
    ORDER_HELD = "order.held", _("Orden retenida para revisión")
    ORDER_UNREADABLE = "order.unreadable", _("Pedido no leído")
    CREDIT_NOTE_ISSUED = "credit_note.issued", _("Nota de crédito emitida")
    CONNECTION_NEEDS_ATTENTION = "connection.needs_attention", _("Conexión requiere atención")
    TEST = "webhook.test", _("Evento de prueba")


class WebhookEndpoint(TenantModel):
    """Where an integrator receives the account's events, signed with the endpoint's secret."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    secret = EncryptedTextField()
    active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The first failed try since the last delivered one: a long run of failures disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(TenantModel):
    """One event for one endpoint: the outbox row, written in the transaction of the change it reports,
    delivered after commit, retried with backoff, every try recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pendiente")
        DELIVERED = "delivered", _("Entregado")
        FAILED = "failed", _("Fallido")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event_id"], name="unique_delivery_per_endpoint")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["account", "-id"], name="webhook_delivery_keyset"),
        ]


class WebhookAttempt(TenantModel):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
