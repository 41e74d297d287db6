"""Forms of the orders and documents pages: the lists' filters and the order page's actions. They only
read and check what a person typed (labels bound to inputs, errors in Spanish); every change goes
through the services the API calls."""
from django import forms
from django.utils.translation import gettext_lazy as _

from billers.dte.types import DOCUMENT_TYPES, NOTA_CREDITO, SALE_TYPES
from billmysales.integrations.forms import style_widgets
from rules.engine import CORRECTABLE_FIELDS

from ..models import OrderStatus, SiiStatus

# The receptor's texts a correction may change (``rules.engine.CORRECTABLE_FIELDS``), as the form labels them.
CORRECTION_LABELS = {
    "razon_social": _("Razón social"),
    "giro": _("Giro"),
    "address": _("Dirección"),
    "comuna": _("Comuna"),
    "city": _("Ciudad"),
}
DOCUMENT_TYPE_CHOICES = [("", _("Todos")), *((str(code), DOCUMENT_TYPES[code].name) for code in (*SALE_TYPES, NOTA_CREDITO))]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


class StyledForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self)


class ListFilterForm(StyledForm):
    """What the lists share: the gateway (of this account only) and a date range (days in Chile)."""

    gateway = forms.TypedChoiceField(label=_("Pasarela"), required=False, coerce=int, empty_value=None)
    desde = forms.DateField(label=_("Desde"), required=False, widget=DateInput())
    hasta = forms.DateField(label=_("Hasta"), required=False, widget=DateInput())

    def __init__(self, data, *, gateways):
        super().__init__(data)
        self.fields["gateway"].choices = [("", _("Todas")), *((str(g.pk), g.name) for g in gateways)]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("desde") and cleaned.get("hasta") and cleaned["desde"] > cleaned["hasta"]:
            self.add_error("hasta", _("La fecha final es anterior a la inicial."))
        return cleaned

    def filters(self) -> dict:
        """The valid filters as the selectors take them (after ``is_valid()``); a field with an error filters nothing."""
        data = self.cleaned_data
        return {"gateway_id": data.get("gateway"), "date_from": data.get("desde"), "date_to": data.get("hasta")}


class OrderFilterForm(ListFilterForm):
    q = forms.CharField(
        label=_("Buscar"), required=False, max_length=100,
        help_text=_("N° de orden, RUT, correo del comprador o folio."),
    )
    status = forms.ChoiceField(label=_("Estado"), required=False, choices=[("", _("Todos")), *OrderStatus.choices])
    tipo = forms.TypedChoiceField(label=_("Documento"), required=False, coerce=int, empty_value=None, choices=DOCUMENT_TYPE_CHOICES)

    field_order = ["q", "status", "gateway", "tipo", "desde", "hasta"]

    def filters(self) -> dict:
        data = self.cleaned_data
        return {**super().filters(), "status": data.get("status") or "", "document_type": data.get("tipo"), "q": data.get("q") or ""}


class DocumentFilterForm(ListFilterForm):
    tipo = forms.TypedChoiceField(label=_("Tipo"), required=False, coerce=int, empty_value=None, choices=DOCUMENT_TYPE_CHOICES)
    folio = forms.IntegerField(label=_("Folio"), required=False, min_value=1, max_value=10**18)
    sii = forms.ChoiceField(label=_("Estado en el SII"), required=False, choices=[("", _("Todos")), *SiiStatus.choices])

    field_order = ["folio", "tipo", "gateway", "sii", "desde", "hasta"]

    def filters(self) -> dict:
        data = self.cleaned_data
        return {**super().filters(), "tipo_dte": data.get("tipo"), "folio": data.get("folio"), "sii_status": data.get("sii") or ""}


class SkipForm(StyledForm):
    reason = forms.CharField(label=_("Motivo para no emitir"), max_length=500)


class CreditNoteForm(StyledForm):
    """A credit note by hand: the whole document, or some units of some lines (``qty_<line id>`` fields)."""

    reason = forms.CharField(label=_("Motivo de la nota de crédito"), max_length=300)
    scope = forms.ChoiceField(
        label=_("Qué se acredita"), widget=forms.RadioSelect,
        choices=[("all", _("El documento completo (lo anula)")), ("lines", _("Solo las unidades indicadas abajo"))], initial="all",
    )

    def __init__(self, data=None, *, lines=()):
        super().__init__(data, prefix="nc")
        self.line_fields = []
        for line in lines:
            name = f"qty_{line.line_id}"
            self.fields[name] = forms.DecimalField(
                label=_("Unidades de «%(name)s» (de %(quantity)s)") % {"name": line.name, "quantity": line.quantity},
                required=False, min_value=0, max_value=line.quantity, decimal_places=3,
            )
            self.fields[name].widget.attrs["class"] = "form-control"
            self.line_fields.append(self[name])

    def lines(self) -> list[dict] | None:
        """None for the whole document; else the lines with a quantity."""
        if self.cleaned_data["scope"] == "all":
            return None
        return [
            {"line_id": name.removeprefix("qty_"), "quantity": value}
            for name, value in self.cleaned_data.items()
            if name.startswith("qty_") and value
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == "lines" and not any(v for k, v in cleaned.items() if k.startswith("qty_")):
            raise forms.ValidationError(_("Indique cuántas unidades de al menos una línea se acreditan."))
        return cleaned


class TextCorrectionForm(StyledForm):
    """The receptor's texts of an issued factura, as they should read (CodRef 2)."""

    reason = forms.CharField(label=_("Motivo de la corrección"), max_length=300)

    def __init__(self, data=None, *, current=None):
        super().__init__(data, prefix="tc")
        for name, (_label, length) in CORRECTABLE_FIELDS.items():
            self.fields[name] = forms.CharField(label=CORRECTION_LABELS[name], max_length=length, required=False)
            self.fields[name].widget.attrs["class"] = "form-control"
            if current is not None:
                self.initial[name] = getattr(current, name, "")
        self.order_fields([*CORRECTABLE_FIELDS, "reason"])

    def corrections(self) -> dict[str, str]:
        """Only the fields that change."""
        return {
            name: self.cleaned_data[name]
            for name in CORRECTABLE_FIELDS
            if self.cleaned_data.get(name, "") != (self.initial.get(name) or "")
        }
