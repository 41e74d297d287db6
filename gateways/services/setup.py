"""The setup flow (the seed's steps: account → data source → biller → rules → test → activate): where a
setup stands, and a real test sale in the store taken as the gateway's passing test.

Progress is read from what exists, so a setup resumes wherever it was left, on any device: the account
step is done when the account has its name and RUT; the data source and biller steps when the gateway
exists (it joins the two; before that the data source being set up is the wizard's); the rules step when
the rules were saved after the gateway was created; the test step when a test sale passed
(``Gateway.test_passed_at``); the last one when the gateway is active. An active gateway counts every
step before it as done (it may have been activated by an owner without a test).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Account
from accounts.services import Actor, audit_log_record
from billers.dte.display import format_clp
from sources.models import SourceConnection

from ..models import DocumentKind, Gateway, Order

STEPS = (
    ("account", gettext_lazy("Cuenta")),
    ("source", gettext_lazy("Origen de datos")),
    ("biller", gettext_lazy("Facturador")),
    ("rules", gettext_lazy("Reglas")),
    ("test", gettext_lazy("Prueba")),
    ("activate", gettext_lazy("Activar")),
)


@dataclass(frozen=True)
class SetupStep:
    key: str
    number: int
    title: str
    done: bool


def rules_confirmed(gateway: Gateway) -> bool:
    """The rules were saved (looked at and accepted) after the gateway was created with the defaults."""
    return gateway.ruleset.updated_at > gateway.created_at


def setup_steps(*, account: Account, source: SourceConnection | None = None, gateway: Gateway | None = None) -> list[SetupStep]:
    """Each step of the setup with whether it is done; ``source`` is the data source of a setup whose
    gateway does not exist yet."""
    active = gateway is not None and gateway.active
    done = {
        "account": bool(account.name.strip() and account.rut) or active,
        "source": gateway is not None or source is not None,
        "biller": gateway is not None,
        "rules": gateway is not None and (active or rules_confirmed(gateway)),
        "test": gateway is not None and (active or gateway.test_passed_at is not None),
        "activate": active,
    }
    return [SetupStep(key, number, str(title), done[key]) for number, (key, title) in enumerate(STEPS, start=1)]


def setup_next_step(steps: list[SetupStep]) -> SetupStep | None:
    """The first step not done (where the setup resumes), or None when the setup is complete."""
    return next((step for step in steps if not step.done), None)


@transaction.atomic
def gateway_test_order_confirm(*, gateway: Gateway, order: Order, actor: Actor) -> Gateway:
    """Takes a real test purchase in the store as the gateway's passing test ("Realizar una venta de prueba en
    la tienda … confirmar que se genere el documento"): the order reached this gateway, its document was issued
    in certification and its total equals what was paid. Refused otherwise, with the reason."""
    if order.gateway_id != gateway.pk:
        raise ValidationError(_("La orden no es de esta pasarela."))
    document = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first()
    if document is None:
        raise ValidationError(_("La orden %(number)s todavía no tiene documento emitido.") % {"number": order.number or order.external_id})
    if not document.certification:
        raise ValidationError(_("El documento se emitió en producción: una venta de prueba se comprueba en certificación."))
    if document.mnt_total != int(order.paid_total):
        raise ValidationError(_("El documento no cuadra con lo pagado (documento %(doc)s, pagado %(paid)s).") % {
            "doc": format_clp(document.mnt_total), "paid": format_clp(int(order.paid_total))})
    gateway.test_passed_at = timezone.now()
    gateway.save(update_fields=["test_passed_at"])
    audit_log_record(account=gateway.account, actor=actor, action="gateway.test_sale", obj=gateway,
                     data={"ok": True, "store_order": True, "order_id": order.pk, "document_id": document.pk})
    return gateway
