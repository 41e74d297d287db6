from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedJSONField
from accounts.models import TenantModel


def platform_choices():
    # The registry owns the vocabulary; imported late because adapters are plain classes built on models' rows.
    from .registry import platform_choices

    return platform_choices()


class SourceConnection(TenantModel):
    """A merchant's store: where orders come from."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Activa")
        ERROR = "error", _("Requiere atención")
        DISABLED = "disabled", _("Desconectada")

    name = models.CharField(_("nombre"), max_length=120)
    platform = models.CharField(_("tipo"), max_length=20, choices=platform_choices)
    store_url = models.URLField(_("URL de la tienda"), blank=True)
    # Tokens, API keys and webhook secrets: encrypted, write-only in the API, masked in the dashboard.
    credentials = EncryptedJSONField(blank=True, default=dict)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    status_message = models.CharField(max_length=300, blank=True)
    # Polling position (e.g. last updated_at seen), kept per source.
    cursor = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["account", "platform"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"
