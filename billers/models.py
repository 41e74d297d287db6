from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedJSONField
from accounts.models import TenantModel


def provider_choices():
    # The registry owns the vocabulary; imported late because the Sandbox adapter uses these models.
    from .registry import provider_choices

    return provider_choices()


class Environment(models.TextChoices):
    CERTIFICATION = "certification", _("Certificación")
    PRODUCTION = "production", _("Producción")


class BillerConnection(TenantModel):
    """The merchant's account at an electronic-invoicing provider; several sources may share one."""

    name = models.CharField(max_length=120)
    provider = models.CharField(_("facturador"), max_length=20, choices=provider_choices)
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.CERTIFICATION)
    emisor_rut = models.CharField(_("RUT emisor"), max_length=12)
    emisor_razon_social = models.CharField(max_length=100)
    emisor_giro = models.CharField(max_length=80)
    emisor_acteco = models.PositiveIntegerField(null=True, blank=True)
    emisor_address = models.CharField(max_length=70, blank=True)
    emisor_comuna = models.CharField(max_length=20, blank=True)
    # The SII resolution that authorises the emisor to issue electronically, printed on every PDF
    # ("Res. Ex. SII N° 80 de 2014"; in certification the number is 0).
    sii_resolution_number = models.PositiveIntegerField(_("N° de resolución SII"), null=True, blank=True)
    sii_resolution_date = models.DateField(_("fecha de la resolución SII"), null=True, blank=True)
    credentials = EncryptedJSONField(blank=True, default=dict)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def is_certification(self) -> bool:
        return self.environment == Environment.CERTIFICATION

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()}, {self.get_environment_display()})"


class FolioCounter(TenantModel):
    """Next folio per biller connection and document type (the Sandbox biller's own numbering)."""

    connection = models.ForeignKey(BillerConnection, on_delete=models.CASCADE, related_name="folio_counters")
    tipo_dte = models.PositiveSmallIntegerField()
    next_folio = models.PositiveBigIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "tipo_dte"], name="unique_folio_counter")]


class SandboxDocument(TenantModel):
    """What the Sandbox biller issued, with our reference so an unknown outcome can be looked up.

    Not unique on the reference: like a real biller, the Sandbox issues again if asked again.
    """

    connection = models.ForeignKey(BillerConnection, on_delete=models.CASCADE, related_name="sandbox_documents")
    reference = models.CharField(max_length=100)
    tipo_dte = models.PositiveSmallIntegerField()
    folio = models.PositiveBigIntegerField()
    fecha = models.DateField()
    totals = models.JSONField(default=dict)
    xml = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "tipo_dte", "folio"], name="unique_sandbox_folio"),
        ]
        indexes = [models.Index(fields=["connection", "reference"], name="sandbox_reference")]
