"""Writes of the pipeline, one module per job: ``gateways`` (lifecycle), ``ingest`` (deliveries → decided
orders), ``emissions`` (queueing exactly-once work), ``credit_notes`` (refunds), ``order_actions`` (what
people and integrators do to orders) and ``trial_sale`` (the setup flow's test). The emission itself
runs in ``gateways.emission``; the sweeper in ``gateways.sweeper``."""
from .credit_notes import order_credit_notes_sync, order_refunds_sync, order_text_correction
from .documents import (
    DocumentFileUnavailable,
    document_files_fetch,
    document_from_public_token,
    document_pdf_bytes,
    document_public_url,
    document_sii_status_refresh,
    document_xml_bytes,
    documents_sii_status_due,
)
from .gateways import gateway_activate, gateway_create, gateway_deactivate, gateway_delete, gateway_update
from .ingest import (
    OPEN_STATUSES,
    inbound_event_process,
    inbound_event_receive,
    inbound_event_reprocess,
    inbound_events_dispatch,
    order_decide,
    order_ingest,
)
from .manual_credit_notes import order_credit_note_request
from .order_actions import order_emit_now, order_retry, order_skip, orders_backfill, orders_bulk_emit
from .rules_preview import RulesPreview, rules_preview
from .setup import SetupStep, gateway_test_order_confirm, setup_next_step, setup_steps
from .trial_sale import TrialSaleReport, gateway_test_sale
from .voids import document_void_request, document_void_run
from .webhooks_setup import gateway_webhook_url, gateway_webhooks_ensure

__all__ = [
    "OPEN_STATUSES",
    "document_files_fetch",
    "document_from_public_token",
    "DocumentFileUnavailable",
    "document_pdf_bytes",
    "document_xml_bytes",
    "document_public_url",
    "document_sii_status_refresh",
    "documents_sii_status_due",
    "RulesPreview",
    "SetupStep",
    "TrialSaleReport",
    "gateway_activate",
    "gateway_create",
    "gateway_deactivate",
    "gateway_delete",
    "gateway_update",
    "gateway_test_order_confirm",
    "gateway_test_sale",
    "gateway_webhook_url",
    "gateway_webhooks_ensure",
    "inbound_event_process",
    "inbound_events_dispatch",
    "inbound_event_receive",
    "inbound_event_reprocess",
    "order_credit_note_request",
    "order_credit_notes_sync",
    "order_decide",
    "order_emit_now",
    "order_ingest",
    "order_refunds_sync",
    "order_retry",
    "order_skip",
    "document_void_request",
    "document_void_run",
    "order_text_correction",
    "orders_backfill",
    "orders_bulk_emit",
    "rules_preview",
    "setup_next_step",
    "setup_steps",
]
