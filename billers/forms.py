"""The dashboard's biller-connection form: the biller's type, the emisor (everything the documents print,
asked up front), the environment and the credentials and settings the biller's adapter declares
(``billmysales.integrations.forms``), saved through ``billers.services``."""
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from accounts.services import Actor
from billmysales.integrations.forms import SpecFieldsMixin, add_service_errors, style_widgets
from billmysales.integrations.spec import validate_connection_values

from .models import BillerConnection, Environment
from .registry import biller_adapter_class, provider_choices
from .services import biller_connection_create, biller_connection_update, canonical_rut

# The emisor as the SII knows it: printed on every document. Lengths are the model's (the DTE's limits).
EMISOR_FIELDS = ("emisor_rut", "emisor_razon_social", "emisor_giro", "emisor_acteco", "emisor_address", "emisor_comuna")
MODEL_FIELDS = ("name", "environment", *EMISOR_FIELDS, "sii_resolution_number", "sii_resolution_date")


class BillerTypeForm(forms.Form):
    """The first choice when linking a biller: which one (from the registry)."""

    provider = forms.ChoiceField(label=_("Facturador"), choices=lambda: [("", _("— Elija el facturador —")), *provider_choices()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self)


class BillerConnectionForm(SpecFieldsMixin, forms.Form):
    name = forms.CharField(label=_("Nombre del facturador"), max_length=120,
                           help_text=_("Cómo lo verá en BillMySales, p. ej. «LibreDTE Comercial Los Andes»."))
    environment = forms.ChoiceField(
        label=_("Ambiente"), choices=Environment.choices, initial=Environment.CERTIFICATION,
        help_text=_("Certificación: documentos de prueba, sin validez tributaria. Pruebe en certificación antes de pasar "
                    "a producción."),
    )
    emisor_rut = forms.CharField(label=_("RUT del emisor"), max_length=12,
                                 help_text=_("El RUT de la empresa que emite los documentos, con guion y dígito verificador."))
    emisor_razon_social = forms.CharField(label=_("Razón social"), max_length=100)
    emisor_giro = forms.CharField(label=_("Giro"), max_length=80)
    emisor_acteco = forms.IntegerField(label=_("Actividad económica (código SII)"), min_value=1, max_value=999999,
                                       help_text=_("El código de 6 dígitos del SII, p. ej. 479100 (venta al por menor por internet)."))
    emisor_address = forms.CharField(label=_("Dirección"), max_length=70)
    emisor_comuna = forms.CharField(label=_("Comuna"), max_length=20)
    sii_resolution_number = forms.IntegerField(
        label=_("N° de resolución SII"), required=False, min_value=0,
        help_text=_("La resolución que autoriza al emisor a facturar electrónicamente (en certificación, 0). Se imprime "
                    "en los documentos."))
    sii_resolution_date = forms.DateField(label=_("Fecha de la resolución SII"), required=False,
                                          widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, data=None, *, provider: str, instance: BillerConnection | None = None, prefix: str | None = None):
        super().__init__(data, prefix=prefix)
        self.provider = provider
        self.add_spec_fields(biller_adapter_class(provider), instance)
        if instance is not None:
            self.initial.update({name: getattr(instance, name) for name in MODEL_FIELDS})
        style_widgets(self)

    @property
    def label(self) -> str:
        return self.adapter.display_name()

    def clean(self):
        """The RUT's check digit and the adapter's spec checked here too, so every field's problem shows at once."""
        cleaned = super().clean()
        if cleaned.get("emisor_rut"):
            try:
                canonical_rut(cleaned["emisor_rut"])
            except ValidationError as exc:
                add_service_errors(self, exc)
        credentials, config = self.spec_values()
        try:
            validate_connection_values(self.adapter, credentials=credentials, config=config, existing=self.instance)
        except ValidationError as exc:
            add_service_errors(self, exc)
        return cleaned

    def save(self, *, account: Account, actor: Actor) -> BillerConnection | None:
        """Creates or updates the connection through the service; None (with the errors on the form) when refused."""
        credentials, config = self.spec_values()
        values = {name: self.cleaned_data.get(name) for name in MODEL_FIELDS}
        try:
            if self.instance is None:
                return biller_connection_create(account=account, actor=actor, provider=self.provider,
                                                credentials=credentials, config=config, **values)
            return biller_connection_update(connection=self.instance, actor=actor, credentials=credentials, config=config,
                                            **values)
        except ValidationError as exc:
            add_service_errors(self, exc)
            return None
