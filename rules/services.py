"""Loads a tenant's ``RuleSet`` into the pure engine's ``RuleConfig`` and asks the engine."""
import dataclasses
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.services import Actor, audit_log_record
from sources.orderdata import OrderData, RefundData

from .engine import Decision, OriginalDocument, RuleConfig, decide_credit_note, decide_emission
from .models import RuleSet


def effective_field_mapping(*, ruleset: RuleSet, field_defaults: dict[str, str]) -> dict[str, str]:
    """The store's default buyer-field mapping overlaid with the merchant's own expressions (what the engine uses)."""
    return {**field_defaults, **(ruleset.field_mapping or {})}


def ruleset_config(*, ruleset: RuleSet, certification: bool) -> RuleConfig:
    defaults = RuleConfig()
    return RuleConfig(
        default_document_type=ruleset.default_document_type,
        factura_on_request=ruleset.factura_on_request,
        field_mapping=dict(ruleset.field_mapping or {}),
        factura_choice_values=tuple(ruleset.factura_choice_values or defaults.factura_choice_values),
        paid_only=ruleset.paid_only,
        min_amount=ruleset.min_amount,
        exclude_tags=tuple(ruleset.exclude_tags or ()),
        exclude_skus=tuple(ruleset.exclude_skus or ()),
        exclude_channels=tuple(ruleset.exclude_channels or ()),
        start_at=ruleset.start_at,
        price_basis=ruleset.price_basis,
        shipping_as_line=ruleset.shipping_as_line,
        exempt_skus=tuple(ruleset.exempt_skus or ()),
        exempt_tags=tuple(ruleset.exempt_tags or ()),
        exclude_gift_cards=ruleset.exclude_gift_cards,
        tips_excluded=ruleset.tips_excluded,
        mode=ruleset.mode,
        # Store test orders (and our test sales) are billed only through a certification biller.
        certification_only=certification,
    )


def decide_order(
    *, ruleset: RuleSet, order: OrderData, field_defaults: dict[str, str], backfill: bool, certification: bool
) -> Decision:
    rules = ruleset_config(ruleset=ruleset, certification=certification)
    return decide_emission(order, rules, field_defaults=field_defaults, backfill=backfill)


def decide_credit_note_for(
    *, ruleset: RuleSet, order: OrderData, refund: RefundData, original: OriginalDocument, certification: bool,
    remaining: int, field_defaults: dict[str, str],
) -> Decision:
    """The credit note for ``refund`` of ``original``; never for more than what is still uncredited."""
    if refund.amount > remaining:
        refund = dataclasses.replace(refund, amount=Decimal(remaining), lines=(), shipping_amount=Decimal(0))
    return decide_credit_note(
        order, refund, original=original, rules=ruleset_config(ruleset=ruleset, certification=certification),
        field_defaults=field_defaults,
    )


RULESET_FIELDS = (
    "default_document_type", "factura_on_request", "field_mapping", "factura_choice_values", "paid_only",
    "min_amount", "exclude_tags", "exclude_skus", "exclude_channels", "start_at", "price_basis",
    "shipping_as_line", "exempt_skus", "exempt_tags", "exclude_gift_cards", "tips_excluded", "mode", "email_buyer",
)


@transaction.atomic
def ruleset_update(*, ruleset: RuleSet, actor: Actor, **changes) -> RuleSet:
    unknown = set(changes) - set(RULESET_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown rule fields: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(ruleset, name, value)
    ruleset.full_clean()
    try:
        # The engine's own checks (JMESPath expressions compile, field names known) are the validation.
        ruleset_config(ruleset=ruleset, certification=False)
    except ValueError as exc:
        raise ValidationError({"field_mapping": [str(exc)]}) from exc
    ruleset.save()
    audit_log_record(account=ruleset.account, actor=actor, action="ruleset.update", obj=ruleset, data={"fields": sorted(changes)})
    return ruleset
