"""The rules form of the dashboard. Lists are edited as comma-separated text, the field mapping as JSON."""
import json

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import RuleSet

LIST_FIELDS = ("exclude_tags", "exclude_skus", "exclude_channels", "exempt_skus", "exempt_tags", "factura_choice_values")


class RuleSetForm(forms.ModelForm):
    field_mapping = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_('JSON: {"rut": "note_attributes[?name==\'rut\'].value | [0]"}; vacío usa los valores por defecto.'),
    )

    class Meta:
        model = RuleSet
        fields = [
            "default_document_type", "factura_on_request", "price_basis", "mode", "paid_only", "min_amount",
            "shipping_as_line", "exclude_gift_cards", "tips_excluded", "email_buyer", "start_at",
            *LIST_FIELDS, "field_mapping",
        ]
        widgets = {name: forms.TextInput(attrs={"size": 60}) for name in LIST_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in LIST_FIELDS:
            self.fields[name] = forms.CharField(required=False, help_text=_("Separados por coma."))
            self.initial[name] = ", ".join(getattr(self.instance, name) or [])
        self.initial["field_mapping"] = json.dumps(self.instance.field_mapping or {}, ensure_ascii=False)

    def clean(self):
        cleaned = super().clean()
        for name in LIST_FIELDS:
            cleaned[name] = [item.strip() for item in (cleaned.get(name) or "").split(",") if item.strip()]
        try:
            cleaned["field_mapping"] = json.loads(cleaned.get("field_mapping") or "{}")
        except ValueError as exc:
            self.add_error("field_mapping", gettext("JSON inválido: %(error)s") % {"error": exc})
        return cleaned
