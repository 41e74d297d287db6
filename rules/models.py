from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from accounts.models import TenantModel
from billers.dte.types import BOLETA_AFECTA, DOCUMENT_TYPES, SALE_TYPES

# The DTE core (plain Python) holds the sale types' short names in Spanish; named here so that makemessages
# finds them (tests/test_i18n.py checks that every one has its translation).
SALE_TYPE_NAMES = (gettext_noop("Boleta afecta"), gettext_noop("Boleta exenta"), gettext_noop("Factura afecta"),
                   gettext_noop("Factura exenta"))
DOCUMENT_TYPE_CHOICES = [(code, format_lazy("{} ({})", _(DOCUMENT_TYPES[code].short_name), code)) for code in SALE_TYPES]


class PriceBasis(models.TextChoices):
    GROSS = "gross", _("Solo ítems afectos con precio bruto (IVA incluido)")
    NET = "net", _("Precios netos (sin IVA)")


class Mode(models.TextChoices):
    AUTO = "auto", _("Automático")
    MANUAL = "manual", _("Manual")


def validate_text_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Debe ser una lista de textos."))


def validate_text_mapping(value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError(_("Debe ser un objeto de campo → expresión (textos)."))


class RuleSet(TenantModel):
    """A gateway's billing rules; evaluated by the pure engine in ``rules.engine``."""

    default_document_type = models.PositiveSmallIntegerField(choices=DOCUMENT_TYPE_CHOICES, default=BOLETA_AFECTA)
    factura_on_request = models.BooleanField(default=True)
    # Name → JMESPath expression over the raw order JSON; empty uses the platform's defaults.
    field_mapping = models.JSONField(default=dict, blank=True, validators=[validate_text_mapping])
    factura_choice_values = models.JSONField(default=list, blank=True, validators=[validate_text_list])
    paid_only = models.BooleanField(default=True)
    min_amount = models.PositiveIntegerField(default=0)
    exclude_tags = models.JSONField(default=list, blank=True, validators=[validate_text_list])
    exclude_skus = models.JSONField(default=list, blank=True, validators=[validate_text_list])
    exclude_channels = models.JSONField(default=list, blank=True, validators=[validate_text_list])
    start_at = models.DateTimeField(null=True, blank=True)
    price_basis = models.CharField(max_length=8, choices=PriceBasis.choices, default=PriceBasis.GROSS)
    shipping_as_line = models.BooleanField(default=True)
    exempt_skus = models.JSONField(default=list, blank=True, validators=[validate_text_list])
    exempt_tags = models.JSONField(default=list, blank=True, validators=[validate_text_list])
    exclude_gift_cards = models.BooleanField(default=True)
    tips_excluded = models.BooleanField(default=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.AUTO)
    email_buyer = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
