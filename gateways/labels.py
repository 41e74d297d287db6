"""The words people read for the pipeline's codes: the rules' decisions, the stores' payment states and
why orders did not become documents. The engine and the store parsers speak in stable codes ("emit",
"paid", "invalid_rut"); the dashboard shows these labels instead, never the codes."""
import re

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

DECISION_LABELS = {
    "emit": _("Emitir"),
    "skip": _("No emitir (omitida)"),
    "hold": _("Retener para revisión"),
    "wait": _("Esperar"),
}

PAYMENT_LABELS = {
    "paid": _("Pagado"),
    "pending": _("Pago pendiente"),
    "partially_refunded": _("Reembolsado en parte"),
    "refunded": _("Reembolsado"),
    "cancelled": pgettext_lazy("estado del pago", "Anulado"),
    "failed": _("Pago fallido"),
    "unknown": _("Sin información de pago"),
}

# Why an order did not become a document, grouped for the home page's chart and the orders' filters.
FAILURE_LABELS = {
    "no_folios": _("Sin folios en el facturador"),
    "biller_rejected": _("Rechazada por el facturador"),
    "biller_check": _("El facturador no la acepta (revisar montos o tipo)"),
    "uncertain": _("Resultado incierto en el facturador"),
    "unread": _("Pedido no leído"),
    "invalid_rut": _("RUT inválido para factura"),
    "factura_missing_data": _("Faltan datos para la factura"),
    "factura_not_enabled": _("Factura pedida sin estar habilitada"),
    "currency": _("Moneda distinta de CLP"),
    "field_mapping": _("Dato del comprador ilegible"),
    "amount_not_integer": _("Montos con decimales"),
    "negative_total": _("Total negativo"),
    "rules_hold": _("Retenida por las reglas"),
}

# A biller's "out of folios / CAF expired" answer, in the words the adapters use (Spanish, or English when
# the emission ran in an English request, such as a test sale).
NO_FOLIOS = re.compile(r"folios (disponibles|cargados|available|loaded)|caf (venci|expired)", re.IGNORECASE)


def decision_label(action: str | None) -> str:
    return DECISION_LABELS.get(action or "", _("Sin decisión aún"))


def payment_label(status: str | None) -> str:
    return PAYMENT_LABELS.get(status or "", PAYMENT_LABELS["unknown"])


def failure_category(*, status: str, status_reason: str, decision: dict, emission_held: bool = False) -> str:
    """The ``FAILURE_LABELS`` key for an order that is failed or held (``emission_held``: its document's
    emission waits for a person, e.g. an attempt whose outcome at the biller is unknown)."""
    if NO_FOLIOS.search(status_reason or ""):
        return "no_folios"
    if status == "failed":
        return "biller_rejected"
    if emission_held:
        return "uncertain"
    decision = decision or {}
    if decision.get("action") == "emit":
        return "biller_check"
    reasons = decision.get("reasons") or []
    code = reasons[-1].get("code", "") if reasons else ""
    return code if code in FAILURE_LABELS else "rules_hold"
