"""The dashboard's store-connection form: name, store URL and the credentials and settings the store's
adapter declares (``billmysales.integrations.forms``), saved through ``sources.services``.

Credentials typed by hand are tried before anything is saved: one read of the store's orders with them
(the adapter's own poll over the last minute, which writes nothing). A store that cannot be reached puts
the message on the store URL; a store that refuses the key or token puts it on that credential. Stores
that cannot be read that way (the Demo store) and connections made with a connect button are not tried
here; "Probar conexión" checks them.
"""
from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Account
from accounts.services import Actor
from billmysales.integrations.errors import IntegrationError, RejectedError
from billmysales.integrations.forms import CREDENTIALS, SpecFieldsMixin, add_service_errors, spec_field_name, style_widgets
from billmysales.integrations.http import url_problem
from billmysales.integrations.spec import validate_connection_values

from .base import OrderPoller
from .models import SourceConnection
from .registry import platform_choices, source_adapter_class
from .services import source_connection_create, source_connection_update

# HTTP answers that mean "these credentials are not accepted" (anything else points at the address).
REFUSED_CREDENTIALS = (401, 403)


class SourceTypeForm(forms.Form):
    """The first choice when connecting a store: which kind it is (from the registry)."""

    platform = forms.ChoiceField(label=gettext_lazy("Tipo de origen de datos"),
                                 choices=lambda: [("", gettext_lazy("— Elija el tipo —")), *platform_choices()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_widgets(self)


class SourceConnectionForm(SpecFieldsMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Nombre del origen de datos"), max_length=120,
                           help_text=gettext_lazy("Cómo lo verá en BillMySales, p. ej. «Tienda Shopify Chile»."))
    store_url = forms.CharField(label=gettext_lazy("URL de la tienda"), required=False, max_length=200, widget=forms.URLInput,
                                help_text=gettext_lazy("La dirección de la tienda o de su API, con https://."))

    def __init__(self, data=None, *, platform: str, instance: SourceConnection | None = None, prefix: str | None = None):
        super().__init__(data, prefix=prefix)
        self.platform = platform
        self.add_spec_fields(source_adapter_class(platform), instance)
        if not self.adapter.store_url_required:
            # The Demo store has no address and Multivende's is its API's, set by the connect flow: not typed.
            del self.fields["store_url"]
        if instance is not None:
            self.initial.update(name=instance.name, store_url=instance.store_url)
        style_widgets(self)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        credentials, config = self.spec_values()
        try:
            credentials, config = validate_connection_values(self.adapter, credentials=credentials, config=config,
                                                             existing=self.instance)
        except ValidationError as exc:
            add_service_errors(self, exc)
            return cleaned
        store_url = self.address()
        if self._should_try(store_url) and not url_problem(store_url):
            probe = SourceConnection(account_id=getattr(self.instance, "account_id", None), platform=self.platform,
                                     store_url=store_url, credentials=credentials, config=config)
            for field, message in store_access_problems(probe, secret_field=self._refused_field()).items():
                self.add_error(field if field in self.fields else None, message)
        return cleaned

    def address(self) -> str:
        """The address as typed, or the stored one for stores whose address is not typed."""
        if "store_url" in self.fields:
            return self.cleaned_data.get("store_url", "")
        return self.instance.store_url if self.instance is not None else ""

    def _should_try(self, store_url: str) -> bool:
        if not issubclass(self.adapter, OrderPoller):
            return False
        if self.typed_secrets():
            return True
        return self.instance is not None and bool(self.instance.credentials) and store_url != self.instance.store_url

    def _refused_field(self) -> str:
        """The input a refused credential is reported on: the first secret typed, else the first secret asked for."""
        typed = self.typed_secrets()
        secrets = [field.name for field in self.adapter.credentials_spec if field.secret]
        name = typed[0] if typed else (secrets[0] if secrets else "")
        return spec_field_name(CREDENTIALS, name) if name else "store_url"

    def save(self, *, account: Account, actor: Actor) -> SourceConnection | None:
        """Creates or updates the connection through the service; None (with the errors on the form) when refused."""
        credentials, config = self.spec_values()
        values = {"name": self.cleaned_data["name"], "credentials": credentials, "config": config}
        if "store_url" in self.fields:
            values["store_url"] = self.cleaned_data.get("store_url", "")
        try:
            if self.instance is None:
                return source_connection_create(account=account, actor=actor, platform=self.platform, **values)
            return source_connection_update(connection=self.instance, actor=actor, **values)
        except ValidationError as exc:
            add_service_errors(self, exc)
            return None


def store_access_problems(probe: SourceConnection, *, secret_field: str) -> dict[str, str]:
    """{form field: message} when one read of the store's orders with ``probe``'s values fails; {} when it works.

    The read is the adapter's poll over the last minute (nothing is stored). No answer, or a server error,
    is reported on the store URL; a refusal of the credentials (401, 403) on ``secret_field``; any other
    refusal (a 404 from a wrong address, a redirect) on the store URL again.
    """
    adapter = source_adapter_class(probe.platform)(probe)
    now = timezone.now()
    try:
        adapter.poll(cursor={}, since=now - timedelta(minutes=1), until=now)
    except RejectedError as exc:
        if exc.status in REFUSED_CREDENTIALS:
            return {secret_field: _("La tienda rechazó estas credenciales: %(detail)s") % {"detail": exc.message}}
        return {"store_url": _("La tienda no aceptó la consulta en esta dirección: %(detail)s") % {"detail": exc.message}}
    except IntegrationError as exc:
        return {"store_url": _("No se pudo conectar con la tienda en esta dirección: %(detail)s") % {"detail": exc.message}}
    return {}
