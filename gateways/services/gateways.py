"""Gateways: created joining one store to one biller under new rules, activated, deactivated."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ADMIN_ROLES, Account
from accounts.services import Actor, audit_log_record
from billers.models import BillerConnection
from rules.models import RuleSet
from sources.models import SourceConnection
from sources.registry import SourceNotRegistered, source_adapter_class

from ..models import Gateway
from .webhooks_setup import gateway_webhooks_enqueue


def _check_wiring(*, source: SourceConnection, biller: BillerConnection, environment: str) -> None:
    if environment == Gateway.Environment.CERTIFICATION and not biller.is_certification:
        raise ValidationError(_(
            "Una pasarela de certificación emite solo con un facturador en certificación; '%(name)s' está en producción."
        ) % {"name": biller.name})
    try:
        certification_only = source_adapter_class(source.platform).certification_only
    except SourceNotRegistered as exc:
        raise ValidationError(exc.message) from None
    if certification_only and not biller.is_certification:
        raise ValidationError(_(
            "%(source)s solo se puede conectar a un facturador en certificación: sus órdenes no son ventas reales."
        ) % {"source": source.get_platform_display()})


@transaction.atomic
def gateway_create(
    *,
    account: Account,
    name: str,
    source: SourceConnection,
    biller: BillerConnection,
    environment: str = Gateway.Environment.CERTIFICATION,
    ruleset: RuleSet | None = None,
    actor: Actor,
) -> Gateway:
    if source.account_id != account.id or biller.account_id != account.id:
        raise ValidationError(_("El origen de datos y el facturador deben ser de esta cuenta."))
    _check_wiring(source=source, biller=biller, environment=environment)
    ruleset = ruleset or RuleSet.objects.create(account=account)
    gateway = Gateway.objects.create(
        account=account, name=name, source=source, biller=biller, ruleset=ruleset, environment=environment
    )
    audit_log_record(account=account, actor=actor, action="gateway.create", obj=gateway)
    gateway_webhooks_enqueue(gateway)
    return gateway


@transaction.atomic
def gateway_activate(*, gateway: Gateway, actor: Actor, reason: str = "") -> Gateway:
    """From now on the gateway bills; orders created before this moment are never billed without a backfill.

    Allowed after a test sale that passed, or by an owner or admin who says why (audited): a gateway that
    never issued a document in certification should not start billing real sales unnoticed.
    """
    if gateway.test_passed_at is None:
        if not (actor.role in ADMIN_ROLES and reason.strip()):
            raise ValidationError(
                _("Antes de activar, haga una venta de prueba que termine bien; o, como dueño o administrador, "
                  "indique el motivo para activar sin ella."),
                code="test_sale_required",
            )
    # Whole seconds: stores stamp orders to the second, and an order placed in the same second counts.
    now = timezone.now().replace(microsecond=0)
    gateway.active = True
    gateway.activated_at = gateway.activated_at or now
    gateway.save(update_fields=["active", "activated_at"])
    if gateway.ruleset.start_at is None:
        gateway.ruleset.start_at = now
        gateway.ruleset.save(update_fields=["start_at", "updated_at"])
    audit_log_record(account=gateway.account, actor=actor, action="gateway.activate", obj=gateway,
                     data={"reason": reason.strip(), "tested": gateway.test_passed_at is not None})
    return gateway


@transaction.atomic
def gateway_deactivate(*, gateway: Gateway, actor: Actor) -> Gateway:
    gateway.active = False
    gateway.save(update_fields=["active"])
    audit_log_record(account=gateway.account, actor=actor, action="gateway.deactivate", obj=gateway)
    return gateway


@transaction.atomic
def gateway_update(*, gateway: Gateway, actor: Actor, **changes) -> Gateway:
    """Changes the name, the environment, the store or the biller; the wiring rules apply again."""
    allowed = {"name", "environment", "source", "biller"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(_("Campos que no se pueden cambiar: %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    for field in ("source", "biller"):
        if field in changes and changes[field].account_id != gateway.account_id:
            raise ValidationError(_("El origen de datos y el facturador deben ser de esta cuenta."))
    for field, value in changes.items():
        setattr(gateway, field, value)
    _check_wiring(source=gateway.source, biller=gateway.biller, environment=gateway.environment)
    if {"source", "biller", "environment"} & set(changes):
        # A different store or biller has not been tested yet.
        gateway.test_passed_at = None
    gateway.full_clean(exclude=["ruleset"])
    gateway.save()
    audit_log_record(account=gateway.account, actor=actor, action="gateway.update", obj=gateway, data={"fields": sorted(changes)})
    if "source" in changes:
        gateway_webhooks_enqueue(gateway)
    return gateway


@transaction.atomic
def gateway_delete(*, gateway: Gateway, actor: Actor) -> None:
    """Deletes a gateway that never issued a document; one that did is kept (its documents are tax
    records) and can be deactivated instead."""
    issued = gateway.orders.filter(documents__isnull=False).count()
    if issued:
        raise ValidationError(
            _("La pasarela tiene %(n)s orden(es) con documentos emitidos, que deben conservarse: desactívela en "
              "lugar de eliminarla.") % {"n": issued},
            code="in_use",
        )
    audit_log_record(account=gateway.account, actor=actor, action="gateway.delete", obj=gateway, data={"name": gateway.name})
    ruleset = gateway.ruleset
    gateway.delete()
    ruleset.delete()
