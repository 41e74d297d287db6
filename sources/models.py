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
        RECONNECT = "reconnect", _("Hay que reconectarla")
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
    next_poll_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveIntegerField(default=0)
    poll_error = models.TextField(blank=True)
    # While a worker refreshes the connection's tokens, others wait for it (see services.credentials_refresh).
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "platform"]),
            models.Index(fields=["status", "next_poll_at"], name="source_poll_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"


class ConnectAttempt(TenantModel):
    """One run of a store's connect flow (an OAuth authorization, WooCommerce's key handshake).

    ``state`` is the unguessable value sent to the store and checked on the way back; the attempt is
    bound to the account and to the browser session that started it, expires, and is used once.
    ``data`` holds what the flow carries between its steps (the shop, the connection's name, the
    connection being reconnected).
    """

    platform = models.CharField(max_length=20)
    state = models.CharField(max_length=64, unique=True)
    session_hash = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    connection = models.ForeignKey(SourceConnection, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
