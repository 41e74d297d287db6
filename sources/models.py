from django.db import models

from accounts.fields import EncryptedJSONField
from accounts.models import TenantModel


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    MULTIVENDE = "multivende", "Multivende"
    DEMO = "demo", "Demo store"


class SourceConnection(TenantModel):
    """A merchant's store: where orders come from."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ERROR = "error", "Error"
        DISABLED = "disabled", "Disabled"

    name = models.CharField(max_length=120)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    store_url = models.URLField(blank=True)
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
