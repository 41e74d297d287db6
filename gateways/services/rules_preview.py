"""What the rules being edited would do with a real order of this store: the setup wizard's step 4 and the
gateway's "Reglas" tab show it live, as the form changes ("este pedido recibiría boleta electrónica (39)
por $12.990, receptor 66.666.666-6", or why it would not).

The order is the latest one the store sent to any gateway of the account's that reads it (store test
orders and the test sales excluded: they are not what real sales look like), or, when there is none yet,
the store adapter's ``sample_order``. It goes through the same three steps the pipeline runs — the store's
parser, the rules engine with the rules as edited (an unsaved ``RuleSet``), and the gateway's biller's
``check``, which builds the document with the DTE core — and nothing is written: no order, no emission,
no call to the store or the biller.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from billers.registry import BillerNotRegistered, biller_adapter_for
from billmysales.integrations.errors import IntegrationError
from rules.models import RuleSet
from rules.services import decide_order
from sources.registry import SourceNotRegistered, source_adapter_class

from ..models import Gateway, Order
from .emissions import biller_check

# The sample order's number: the same sample every time, so the preview changes only when the rules do.
SAMPLE_NUMBER = 1001


@dataclass(frozen=True)
class RulesPreview:
    """``action`` is the engine's (emit / skip / hold / wait), or "error" when the order or the rules cannot
    be read. For "emit", ``tipo_dte`` and ``total`` are the document the biller would issue, unless
    ``problem`` says why it cannot (then the order would be held)."""

    sample: bool
    order_number: str = ""
    paid_total: int | None = None
    action: str = "error"
    tipo_dte: int | None = None
    total: int | None = None
    receptor_rut: str = ""
    receptor_name: str = ""
    manual: bool = False
    problem: str = ""
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def issues(self) -> bool:
        return self.action == "emit" and not self.problem


def _latest_order(gateway: Gateway) -> Order | None:
    return (Order.objects.filter(account_id=gateway.account_id, gateway__source_id=gateway.source_id, is_test=False)
            .order_by("-id").only("raw", "number").first())


def rules_preview(*, gateway: Gateway, ruleset: RuleSet) -> RulesPreview:
    """The preview of ``ruleset`` (saved or not) on ``gateway``'s latest real order, or its store's sample order."""
    try:
        adapter_class = source_adapter_class(gateway.source.platform)
    except SourceNotRegistered as exc:
        return RulesPreview(sample=False, problem=exc.message)
    latest = _latest_order(gateway)
    raw = latest.raw if latest is not None else adapter_class.sample_order(number=SAMPLE_NUMBER)
    try:
        data = adapter_class(gateway.source).parse_order(raw)
    except IntegrationError as exc:
        return RulesPreview(sample=latest is None, problem=_("La orden no se pudo leer: %(reason)s") % {"reason": exc.message})
    base = {"sample": latest is None, "order_number": data.number or data.external_id, "paid_total": int(data.paid_total)}
    try:
        decision = decide_order(ruleset=ruleset, order=data, field_defaults=adapter_class.default_field_mapping,
                                backfill=False, certification=gateway.biller.is_certification)
    except ValueError as exc:
        return RulesPreview(**base, problem=_("Las reglas no son válidas: %(reason)s") % {"reason": exc})
    reasons = tuple(reason.message for reason in decision.reasons)
    if decision.action != "emit":
        return RulesPreview(**base, action=decision.action, tipo_dte=decision.document_type, reasons=reasons,
                            problem=reasons[-1] if reasons else "")
    receptor = decision.sale.receptor
    emitted = {"action": "emit", "receptor_rut": receptor.rut, "receptor_name": receptor.razon_social,
               "manual": decision.manual, "reasons": reasons}
    prepared, refusal = biller_check(gateway, decision.sale)
    if refusal is not None:
        return RulesPreview(**base, **emitted, tipo_dte=decision.document_type, problem=refusal)
    try:
        tipo_dte, total = biller_adapter_for(gateway.biller).expected(prepared)
    except BillerNotRegistered as exc:
        return RulesPreview(**base, **emitted, tipo_dte=decision.document_type, problem=exc.message)
    return RulesPreview(**base, **emitted, tipo_dte=tipo_dte, total=total)
