"""The only code that speaks HTTP to BHExpress: its API v1 for boletas de honorarios electrónicas.

There is no public API reference (developers.bhexpress.cl was not found); this follows the official
clients, ``BHExpress/bhexpress-api-client-php`` @ 3345282 (``src/ApiClient.php``, ``src/bhe/Bhe.php``,
``src/bhe/Receptores.php``, and the 2021 examples in its history) and ``…-python`` @ 305bfed
(``bhexpress/api_client/__init__.py``, ``bhe/boletas.py``):

- Base URL ``https://app.bhexpress.cl`` (the newer PHP client's default; the Python client's is
  ``https://bhexpress.cl``), paths under ``/api/v1``.
- Every request carries ``Authorization: Token <token>`` and ``X-Bhexpress-Emisor: <RUT with DV>``,
  JSON in and out.
- ``POST /bhe/emitir`` (the boleta), ``GET /bhe/boletas?…`` (paginated ``results``; filters ``page``,
  ``periodo`` AAAAMM, ``fecha_desde``, ``fecha_hasta``, ``receptor_codigo`` = the receptor's RUT without
  DV, from the 2021 example ``ejemplos/001-boletas_listado.php``), ``GET /bhe/boletas/{numero}``,
  ``GET /bhe/pdf/{numero}`` (the PDF bytes), ``POST /bhe/anular/{numero}`` ``{"causa": n}``,
  ``GET /bhe/receptores``.
- Any answer other than 200 is an error; its JSON may carry ``message`` (or ``exception``) and ``code``.

Failures are mapped by the shared HTTP base (timeouts, 429 and 5xx transient; other 4xx rejected);
the two that need the merchant's hand (401: the token; 403: the token cannot act for this emisor)
say so in words.
"""
from __future__ import annotations

from typing import Any

import requests
from django.utils.translation import gettext as _

from billmysales.integrations.http import body_excerpt

from ..base import RejectedBillerError, TransientBillerError
from ..http import BillerHttpClient

DEFAULT_URL = "https://app.bhexpress.cl"
API_PREFIX = "/api/v1"


class BHExpressClient(BillerHttpClient):
    vendor = "BHExpress"

    def __init__(self, *, base_url: str, token: str, emisor_rut: str):
        super().__init__()
        self.api_url = self.checked_url(base_url, _("URL de la API")) + API_PREFIX
        self.token = token
        self.emisor_rut = emisor_rut

    @classmethod
    def for_connection(cls, connection) -> BHExpressClient:
        """Built from the tenant's connection; refuses before any request when it cannot authenticate."""
        token = (connection.credentials or {}).get("api_token")
        if not token:
            raise RejectedBillerError(_("La conexión de BHEXPRESS no tiene el token de la API: guárdelo en la conexión."))
        if not connection.emisor_rut:
            raise RejectedBillerError(_("La conexión de BHEXPRESS no tiene el RUT del emisor (el profesional que emite)."))
        return cls(base_url=(connection.config or {}).get("base_url") or DEFAULT_URL, token=token, emisor_rut=connection.emisor_rut)

    def _headers(self) -> dict:
        return {"Authorization": f"Token {self.token}", "X-Bhexpress-Emisor": self.emisor_rut, "Accept": "application/json"}

    def _call(self, method: str, resource: str, **kwargs) -> requests.Response:
        return self.request(method, f"{self.api_url}{resource}", headers=self._headers(), **kwargs)

    def checked(self, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status == 401:
            detail = body_excerpt(response)
            raise RejectedBillerError(
                _("BHExpress no aceptó el token de la API (HTTP 401: %(detail)s). Copie otra vez el token desde su perfil en "
                  "BHExpress (Perfil de usuario → Token) y guárdelo en la conexión.") % {"detail": detail},
                status=status, body=detail,
            )
        if status == 403:
            detail = body_excerpt(response)
            raise RejectedBillerError(
                _("BHExpress no permite que este token opere con el emisor %(rut)s (HTTP 403: %(detail)s). Revise que el "
                  "RUT emisor de la conexión sea el del profesional en BHExpress y que el token sea de un usuario autorizado "
                  "para él.") % {"rut": self.emisor_rut, "detail": detail},
                status=status, body=detail,
            )
        return super().checked(response)

    # --- boletas ---------------------------------------------------------------------------------

    def emitir(self, boleta: dict) -> dict:
        return self._object(self._call("POST", "/bhe/emitir", json=boleta), _("la boleta emitida"))

    def boletas(self, filtros: dict[str, Any]) -> dict:
        """One page of the issued boletas: ``{"results": [...], "next": ...}``."""
        page = self._object(self._call("GET", "/bhe/boletas", params=filtros), _("el listado de boletas"))
        if not isinstance(page.get("results"), list):
            raise TransientBillerError(_("BHExpress respondió el listado de boletas sin la lista de resultados (results)."))
        return page

    def boleta(self, numero: int) -> dict:
        return self._object(self._call("GET", f"/bhe/boletas/{int(numero)}"), _("la boleta N° %(folio)s") % {"folio": numero})

    def pdf(self, numero: int) -> bytes:
        content = self._call("GET", f"/bhe/pdf/{int(numero)}").content
        if not content.startswith(b"%PDF"):
            raise TransientBillerError(
                _("BHExpress respondió el PDF de la boleta N° %(folio)s con algo que no es un PDF.") % {"folio": numero})
        return content

    def anular(self, numero: int, causa: int) -> dict:
        return self._object(self._call("POST", f"/bhe/anular/{int(numero)}", json={"causa": causa}), _("la anulación"))

    def receptores(self) -> dict:
        return self._object(self._call("GET", "/bhe/receptores"), _("el listado de receptores"))

    def _object(self, response: requests.Response, what: str) -> dict:
        data = self.json_body(response, what)
        if not isinstance(data, dict):
            raise TransientBillerError(_("BHExpress respondió %(what)s con un JSON que no es un objeto.") % {"what": what},
                                       status=response.status_code)
        return data
