"""Forms of the gateway pages and the setup wizard. They only collect and check what a person typed; every
change is made by the same services the API calls (``gateways.services``, ``accounts.services``,
``rules.services``)."""
from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from billers.models import BillerConnection
from billmysales.integrations.forms import style_widgets
from rules.forms import RuleSetForm
from sources.models import SourceConnection

from .models import Gateway


class StyledForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self)


class SetupAccountForm(StyledForm):
    """Step 1: the account (the tenant) with its company RUT, checked by ``accounts.services.account_update``."""

    name = forms.CharField(label=_("Nombre de la cuenta"), max_length=200,
                           help_text=_("El nombre de la empresa o tienda, como lo verá su equipo."))
    rut = forms.CharField(label=_("RUT de la empresa"), max_length=12,
                          help_text=_("Con guion y dígito verificador, p. ej. 76.192.083-9."))


class ConnectionChoiceForm(StyledForm):
    """Choose one of the account's existing connections (stores or billers)."""

    def __init__(self, *args, queryset, label, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"] = forms.ModelChoiceField(queryset=queryset, label=label, empty_label=None)
        style_widgets(self)


def source_choice_form(data=None, *, account: Account, gateway: Gateway | None = None, exclude=None,
                       initial=None) -> ConnectionChoiceForm:
    """The account's store connections no other gateway reads (a store feeding two gateways would have each of its
    orders billed twice); ``gateway``'s own stays in the list, ``exclude`` is left out."""
    queryset = SourceConnection.objects.filter(account=account).exclude(
        gateways__in=Gateway.objects.filter(account=account).exclude(pk=getattr(gateway, "pk", None))
    ).order_by("name")
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude.pk)
    return ConnectionChoiceForm(data, queryset=queryset, label=_("Origen de datos"), initial=initial)


def biller_choice_form(data=None, *, account: Account, initial=None) -> ConnectionChoiceForm:
    queryset = BillerConnection.objects.filter(account=account).order_by("name")
    return ConnectionChoiceForm(data, queryset=queryset, label=_("Facturador"), initial=initial)


class GatewayGeneralForm(StyledForm):
    """The "General" tab: name, environment and whether it is active ("Activa"). Activating without a passing
    test sale needs an owner's or admin's reason (``gateways.services.gateway_activate``)."""

    name = forms.CharField(label=_("Nombre de la pasarela"), max_length=120)
    environment = forms.ChoiceField(
        label=_("Ambiente"), choices=Gateway.Environment.choices,
        help_text=_("Una pasarela en certificación solo emite con un facturador en certificación; cambiarlo pide una nueva "
                    "venta de prueba."))
    active = forms.BooleanField(label=_("Activa"), required=False,
                                help_text=_("Activa: desde ahora cada orden que las reglas elijan se factura sola."))
    reason = forms.CharField(
        label=_("Motivo para activar sin venta de prueba"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Solo dueños y administradores, cuando la pasarela no tiene una venta de prueba correcta. Queda en la "
                    "auditoría."))

    @classmethod
    def for_gateway(cls, gateway: Gateway, data=None):
        return cls(data, initial={"name": gateway.name, "environment": gateway.environment, "active": gateway.active})


class ActivationForm(StyledForm):
    reason = GatewayGeneralForm.base_fields["reason"]


RULE_LABELS = {
    "default_document_type": (_("Tipo de documento"), _("El documento de cada venta. Boleta afecta (39) es lo habitual en una tienda.")),
    "factura_on_request": (_("Factura cuando el comprador la pide"), _("Con RUT, razón social, giro y dirección tomados del pedido.")),
    "factura_choice_values": (_("Respuestas del comprador que piden factura"),
                              _("Separadas por coma. Vacío: factura, factura electrónica.")),
    "price_basis": (_("Tipo de precio"), _("Como están los precios en la tienda; lo común es «solo ítems afectos con precio bruto».")),
    "mode": (_("Automático o manual"), _("Automático: se emite al llegar el pedido. Manual: espera que alguien lo apruebe.")),
    "paid_only": (_("Solo pedidos pagados"), _("Los pedidos sin pagar esperan el pago.")),
    "min_amount": (_("Monto mínimo a facturar (CLP)"), ""),
    "start_at": (_("Facturar pedidos creados desde"), _("Vacío: desde que se activa la pasarela.")),
    "exclude_tags": (_("No facturar pedidos con estas etiquetas"), _("Separadas por coma.")),
    "exclude_skus": (_("No facturar pedidos con estos SKU"), _("Separados por coma.")),
    "exclude_channels": (_("No facturar estos canales de venta"), _("Separados por coma.")),
    "shipping_as_line": (_("Facturar el despacho como una línea"), ""),
    "exclude_gift_cards": (_("No facturar tarjetas de regalo"), _("Se facturan cuando se usan, no cuando se venden.")),
    "tips_excluded": (_("No facturar propinas"), ""),
    "exempt_skus": (_("SKU exentos de IVA"), _("Separados por coma.")),
    "exempt_tags": (_("Etiquetas de productos exentos de IVA"), _("Separadas por coma.")),
    "email_buyer": (_("Enviar el documento al comprador por correo"), ""),
    "field_mapping": (_("Datos del comprador (mapeo de campos)"),
                      _('Expresiones JMESPath por campo, en JSON, p. ej. {"rut": "note_attributes[?name==\'rut\'].value | [0]"}; '
                        "vacío usa los valores de la tienda (abajo).")),
}
# How the rules form is laid out, in the seed's words: document type, conditions, mode, prices, the buyer.
RULE_GROUPS = (
    (_("Documento"), ("default_document_type", "factura_on_request", "factura_choice_values")),
    (_("Condiciones de emisión"), ("paid_only", "min_amount", "start_at", "exclude_tags", "exclude_skus", "exclude_channels")),
    (_("Formato de emisión"), ("mode", "email_buyer")),
    (_("Precios y montos"), ("price_basis", "shipping_as_line", "exclude_gift_cards", "tips_excluded", "exempt_skus", "exempt_tags")),
    (_("Asociación con el cliente final"), ("field_mapping",)),
)


class StyledRuleSetForm(RuleSetForm):
    """The rules form of ``rules.forms`` with Spanish labels, grouped, and the dashboard's widgets."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (label, help_text) in RULE_LABELS.items():
            self.fields[name].label, self.fields[name].help_text = label, help_text
        style_widgets(self)

    def groups(self) -> list[tuple[str, list]]:
        return [(title, [self[name] for name in names]) for title, names in RULE_GROUPS]
