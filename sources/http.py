"""The HTTP base of the store clients: the shared vendor base with the stores' error classes, and
reading what a write created. Only ``sources/<platform>/client.py`` builds on this."""
import requests
from django.utils.translation import gettext as _

from billmysales.integrations.http import VendorHttpClient, body_excerpt

from .errors import SourceRejectedError, SourceTransientError


def order_path_id(vendor: str, external_id: str) -> str:
    """The order id as it goes into a URL path: the stores number orders with integers, and anything
    else would change the path it is put into."""
    if not (external_id.isascii() and external_id.isdigit()):
        raise SourceRejectedError(
            _("La orden %(order)s no tiene un id numérico de %(vendor)s.") % {"order": repr(external_id), "vendor": vendor})
    return external_id


class StoreHttpClient(VendorHttpClient):
    transient_error = SourceTransientError
    rejected_error = SourceRejectedError

    def created_object(self, response: requests.Response, *, field: str | None = None) -> dict:
        """The object a 2xx write answered with (``body[field]`` when the store wraps it), with its ``id``.

        Anything else (an HTML page, a PHP warning before the JSON, JSON without the object) leaves the
        write unconfirmed: the 2xx says it was probably applied, the body cannot prove it. That raises
        ``SourceTransientError`` rather than passing as done, because a write recorded as done that never
        happened is lost silently, while a failure says to check the order before writing again."""
        try:
            body = response.json()
        except ValueError:
            body = None
        created = body.get(field) if field and isinstance(body, dict) else body
        if isinstance(created, dict) and created.get("id") is not None:
            return created
        raise SourceTransientError(
            _("%(vendor)s respondió HTTP %(status)s sin confirmar lo creado (respuesta: %(excerpt)s); pudo haberse escrito: "
              "revise la orden antes de reintentar.") % {
                "vendor": self.vendor, "status": response.status_code, "excerpt": body_excerpt(response) or _("vacía")},
            status=response.status_code,
        )
