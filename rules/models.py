from django.db import models

from accounts.models import TenantModel


class DocumentType(models.IntegerChoices):
    BOLETA_AFECTA = 39, "Boleta afecta (39)"
    BOLETA_EXENTA = 41, "Boleta exenta (41)"
    FACTURA_AFECTA = 33, "Factura afecta (33)"
    FACTURA_EXENTA = 34, "Factura exenta (34)"


class PriceBasis(models.TextChoices):
    GROSS = "gross", "Solo ítems afectos con precio bruto (IVA incluido)"
    NET = "net", "Precios netos (sin IVA)"


class Mode(models.TextChoices):
    AUTO = "auto", "Automático"
    MANUAL = "manual", "Manual"


class RuleSet(TenantModel):
    """A gateway's billing rules; evaluated by the pure engine in ``rules.engine``."""

    default_document_type = models.PositiveSmallIntegerField(choices=DocumentType.choices, default=DocumentType.BOLETA_AFECTA)
    factura_on_request = models.BooleanField(default=True)
    # Name → JMESPath expression over the raw order JSON; empty uses the platform's defaults.
    field_mapping = models.JSONField(default=dict, blank=True)
    factura_choice_values = models.JSONField(default=list, blank=True)
    paid_only = models.BooleanField(default=True)
    min_amount = models.PositiveIntegerField(default=0)
    exclude_tags = models.JSONField(default=list, blank=True)
    exclude_skus = models.JSONField(default=list, blank=True)
    exclude_channels = models.JSONField(default=list, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    price_basis = models.CharField(max_length=8, choices=PriceBasis.choices, default=PriceBasis.GROSS)
    shipping_as_line = models.BooleanField(default=True)
    exempt_skus = models.JSONField(default=list, blank=True)
    exempt_tags = models.JSONField(default=list, blank=True)
    exclude_gift_cards = models.BooleanField(default=True)
    tips_excluded = models.BooleanField(default=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.AUTO)
    email_buyer = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
