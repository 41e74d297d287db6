"""The only code that speaks HTTP to LibreDTE: ``https://libredte.cl`` or a self-hosted Community Edition.

Sources: ``LibreDTE/libredte-app-community`` @ f783d00 (``Module/Dte/Controller/Documentos.php``,
``DteEmitidos.php``, ``DteTmps.php``, ``Contribuyentes.php``, ``Module/Admin/Controller/DteFolios.php``,
``Model/DteTmp.php``, ``Model/DteEmitido.php``, ``Model/Contribuyente.php``), the official clients
``libredte-api-client-python`` / ``-php`` and the academy pages (``/academy/integration/guide/…``), as
summarised in ``reference/biller-libredte.md``.

- Every resource is ``<base_url>/api/<module>/<controller>/<action>/<args…>``. Authentication is HTTP
  Basic with user ``X`` and the 32-character user hash as password (the academy's documented order; the
  official clients send it reversed, which the server accepts only through an "obsolete" patch).
- ``_contribuyente_rut`` (RUT without DV) and ``_contribuyente_certificacion`` (1 certification, 0
  production) go on every call, as the official Python client sends them. The server decides the
  environment from the second (``Model_Contribuyente::enCertificacion``); the company comes from the
  document (emitir), the body (generar) or the path (everything else).
- LibreDTE answers errors with the HTTP status and a body that is a JSON *string* (the message, often
  with Markdown links and ``<br/>``). ``checked`` turns them into what the merchant must do, in Spanish:
  401 the hash, 403 the user's permissions (or a type not enabled), 404 a company not registered, 506 no
  certificate, 508 no folios or an expired CAF (both 5xx but permanent: they fail until someone acts in
  LibreDTE), 510 a burnt folio (held for a person: it must be voided at the SII), 400 LibreDTE's own
  reason. 409 (a folio already used; LibreDTE moves on to the next one), 429, other 5xx and timeouts are
  transient. 404s that mean "no such document" are answered as ``None``/``[]`` by the methods below.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import requests
from django.utils.translation import gettext as _
from lxml import etree

from ..base import BillerNeedsPerson, RejectedBillerError
from ..dte.display import document_name
from ..http import BillerHttpClient

DEFAULT_URL = "https://libredte.cl"
MESSAGE_CHARS = 1500
# LibreDTE's 404 texts when the company is unknown (emitir/generar/dte_tmps use the first, the other
# resources the second); any other 404 names a document that does not exist.
COMPANY_MISSING = ("no está registrado en la aplicación", "emisor no existe")
# 400 on emitir for a Referencia to a document of ours that cannot be referenced yet.
REFERENCE_NOT_SENT = "no está enviado al sii"
REFERENCE_NOT_FINAL = "no se conoce el estado final"
REFERENCE_REJECTED = "está rechazado por el sii"
_SII = "{http://www.sii.cl/SiiDte}"
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


def libredte_message(response: requests.Response) -> str:
    """LibreDTE's error text as a person reads it: the JSON string without Markdown links or HTML breaks."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, str):
        text = data
    elif isinstance(data, dict):
        text = str(data.get("message") or data.get("error") or data)
    else:
        text = response.text or ""
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", text)
    text = re.sub(r"<br\s*/?>|&nbsp;", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "…"


def company_missing(message: str) -> bool:
    lowered = message.lower()
    return any(text in lowered for text in COMPANY_MISSING)


def extract_dte(xml: bytes) -> bytes:
    """The signed ``<DTE>`` of the ``EnvioDTE``/``EnvioBOLETA`` LibreDTE stores (a bare DTE is kept as it is)."""
    root = etree.fromstring(xml, _XML_PARSER)
    if root.tag == _SII + "DTE":
        return xml
    dtes = root.findall(f"{_SII}SetDTE/{_SII}DTE")
    if len(dtes) != 1:
        raise ValueError(f"se esperaba un DTE dentro de {etree.QName(root).localname}, hay {len(dtes)}")
    return etree.tostring(dtes[0], encoding="ISO-8859-1", xml_declaration=True)


class LibreDTEClient(BillerHttpClient):
    vendor = "LibreDTE"

    def __init__(self, *, base_url: str, api_hash: str, emisor_rut: str, certificacion: bool):
        """``emisor_rut`` with its DV ("76192083-9"); LibreDTE's paths and parameters take it without."""
        self.api = self.checked_url(base_url or DEFAULT_URL, _("URL del servidor")) + "/api"
        self.auth = ("X", api_hash)
        self.rut = emisor_rut
        self.emisor = int(emisor_rut.replace(".", "").split("-")[0])
        self.context = {"_contribuyente_rut": self.emisor, "_contribuyente_certificacion": int(certificacion)}

    # --- errors ----------------------------------------------------------------------------------

    def checked(self, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status < 400 or status == 429:
            return super().checked(response)
        detail = libredte_message(response)
        values = {"rut": f"RUT {self.rut}", "detail": detail, "status": status}
        if status == 401:
            raise self.rejected_error(
                _("LibreDTE no aceptó el hash de usuario (%(detail)s). Copie el hash desde su perfil de usuario en LibreDTE "
                  "y guárdelo en la conexión.") % values, status=status, body=detail,
            )
        if status == 403:
            raise self.rejected_error(
                _("LibreDTE no permite esta operación al usuario del hash con la empresa %(rut)s: %(detail)s Pida al "
                  "administrador de la empresa en LibreDTE que autorice al usuario (o habilite el tipo de documento).") % values,
                status=status, body=detail,
            )
        if status == 404 and company_missing(detail):
            raise self.rejected_error(
                _("La empresa %(rut)s no está registrada en LibreDTE para el usuario del hash (%(detail)s). Regístrela en "
                  "LibreDTE o corrija el RUT emisor de la conexión.") % values, status=status, body=detail,
            )
        if status == 506:
            raise self.rejected_error(
                _("LibreDTE no tiene una firma electrónica (certificado digital) vigente para la empresa %(rut)s: súbala "
                  "en LibreDTE y reintente. Detalle de LibreDTE: %(detail)s") % values, status=status, body=detail,
            )
        if status == 508:
            raise self.rejected_error(
                _("LibreDTE no tiene folios disponibles (o el CAF venció): cargue folios en LibreDTE y reintente. "
                  "Detalle de LibreDTE: %(detail)s") % values, status=status, body=detail,
            )
        if status == 510:
            raise BillerNeedsPerson(
                _("LibreDTE no pudo generar el XML del documento y saltó un folio, que debe anularse en el SII; la orden "
                  "queda retenida para que una persona la revise. Detalle de LibreDTE: %(detail)s") % values,
                status=status, body=detail,
            )
        if status == 409:
            raise self.transient_error(
                _("LibreDTE encontró un folio ya usado y pasará al siguiente; se reintentará. Detalle: %(detail)s") % values,
                status=status, body=detail,
            )
        if status >= 500:
            raise self.transient_error(_("LibreDTE falló (HTTP %(status)s): %(detail)s") % values, status=status, body=detail)
        raise self.rejected_error(_("LibreDTE rechazó la solicitud (HTTP %(status)s): %(detail)s") % values, status=status, body=detail)

    # --- plumbing --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> requests.Response:
        return self.request(
            method, f"{self.api}/{path}", params={**self.context, **(params or {})}, json=json, auth=self.auth,
        )

    def _object(self, response: requests.Response, what: str, keys: tuple[str, ...] = ()) -> dict:
        data = self.json_body(response, what)
        if not isinstance(data, dict) or any(data.get(key) in (None, "") for key in keys):
            raise self.transient_error(_("LibreDTE respondió %(what)s sin los datos esperados (%(keys)s).") % {
                "what": what, "keys": ", ".join(keys) or _("un objeto")})
        return data

    def _list(self, response: requests.Response, what: str) -> list[dict]:
        data = self.json_body(response, what)
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise self.transient_error(_("LibreDTE respondió %(what)s con algo que no es una lista de documentos.") % {"what": what})
        return data

    def _found(self, call) -> Any:
        """``call()``'s answer, or None when LibreDTE says the document does not exist (404)."""
        try:
            return call()
        except RejectedBillerError as exc:
            if exc.status == 404 and not company_missing(exc.body):
                return None
            raise

    # --- issuing ---------------------------------------------------------------------------------

    def emitir(self, dte: dict) -> dict:
        """``POST /api/dte/documentos/emitir``: the temporary document ``{emisor, receptor, dte, codigo}``."""
        params = {"normalizar": 1, "formato": "json", "links": 0, "email": 0}
        try:
            response = self._call("POST", "dte/documentos/emitir", params=params, json=dte)
        except RejectedBillerError as exc:
            if exc.status == 400:
                raise self._refusal(exc) from exc
            raise
        return self._object(response, _("el documento temporal"), ("emisor", "receptor", "dte", "codigo"))

    def _refusal(self, exc: RejectedBillerError) -> Exception:
        """emitir's 400, said plainly when it is about a Referencia to a document LibreDTE will not let be
        referenced (e.g. a credit note for a boleta a Community Edition never sent to the SII)."""
        detail = exc.body.lower()
        if REFERENCE_NOT_SENT in detail:
            return self.rejected_error(
                _("LibreDTE no permite emitir este documento porque el documento que referencia (p. ej. la boleta que "
                  "anula la nota de crédito) no fue enviado al SII. En LibreDTE Edición Comunidad las boletas se envían "
                  "al SII solo a través de API Gateway: envíe el documento original al SII desde LibreDTE y reintente, o "
                  "emita la nota de crédito a mano. Detalle de LibreDTE: %(detail)s") % {"detail": exc.body},
                status=exc.status, body=exc.body,
            )
        if REFERENCE_NOT_FINAL in detail:
            return self.transient_error(
                _("LibreDTE espera que el SII termine de validar el documento referenciado antes de emitir este; se "
                  "reintentará. Detalle de LibreDTE: %(detail)s") % {"detail": exc.body}, status=exc.status, body=exc.body,
            )
        if REFERENCE_REJECTED in detail:
            return self.rejected_error(
                _("El documento referenciado fue rechazado por el SII, así que LibreDTE no permite referenciarlo: "
                  "revíselo en LibreDTE. Detalle de LibreDTE: %(detail)s") % {"detail": exc.body}, status=exc.status, body=exc.body,
            )
        return self.rejected_error(_("LibreDTE rechazó el documento: %(detail)s") % {"detail": exc.body}, status=exc.status, body=exc.body)

    def generar(self, tmp: dict, *, email: bool, retry: int | None, gzip: bool | None) -> dict | None:
        """``POST /api/dte/documentos/generar``: the issued document (the ``dte_emitido`` row), or None when
        the temporary document no longer exists (already generated, replaced or deleted)."""
        params: dict[str, int] = {"email": int(email), "links": 0}
        if retry is not None:
            params["retry"] = retry
        if gzip is not None:
            params["gzip"] = int(gzip)
        body = {key: tmp[key] for key in ("emisor", "receptor", "dte", "codigo")}
        try:
            response = self._call("POST", "dte/documentos/generar", params=params, json=body)
        except RejectedBillerError as exc:
            if exc.status == 404 and "temporal" in exc.body.lower():
                return None
            if exc.status == 508:
                name = document_name(int(tmp["dte"])).lower()
                raise self.rejected_error(
                    _("LibreDTE no tiene folios disponibles para %(name)s (%(tipo)s) o el CAF venció: cargue folios para "
                      "%(name)s (%(tipo)s) en LibreDTE y reintente. Detalle de LibreDTE: %(detail)s") % {
                        "name": name, "tipo": tmp["dte"], "detail": exc.body},
                    status=exc.status, body=exc.body,
                ) from exc
            raise
        return self._object(response, _("el documento emitido"), ("dte", "folio", "fecha", "total"))

    # --- temporary documents ---------------------------------------------------------------------

    def _tmp_path(self, action: str, receptor: int, dte: int, codigo: str) -> str:
        return f"dte/dte_tmps/{action}/{receptor}/{dte}/{codigo}/{self.emisor}"

    def tmp_info(self, receptor: int, dte: int, codigo: str) -> dict | None:
        return self._found(lambda: self._object(
            self._call("GET", self._tmp_path("info", receptor, dte, codigo)), _("el documento temporal"), ("codigo",)))

    def tmp_search(self, filters: dict) -> list[dict]:
        return self._list(self._call("POST", f"dte/dte_tmps/buscar/{self.emisor}", json=filters), _("la búsqueda de temporales"))

    def tmp_delete(self, receptor: int, dte: int, codigo: str) -> None:
        self._found(lambda: self._call("GET", self._tmp_path("eliminar", receptor, dte, codigo)))

    # --- issued documents ------------------------------------------------------------------------

    def _issued_path(self, action: str, dte: int, folio: int) -> str:
        return f"dte/dte_emitidos/{action}/{dte}/{folio}/{self.emisor}"

    def issued_info(self, dte: int, folio: int) -> dict | None:
        return self._found(lambda: self._object(
            self._call("GET", self._issued_path("info", dte, folio)), _("el documento emitido"), ("dte", "folio")))

    def issued_search(self, filters: dict) -> list[dict]:
        """``POST /api/dte/dte_emitidos/buscar/{emisor}``; LibreDTE answers 404 when nothing matches."""
        found = self._found(lambda: self._list(
            self._call("POST", f"dte/dte_emitidos/buscar/{self.emisor}", json=filters), _("la búsqueda de documentos")))
        return found or []

    def issued_pdf(self, dte: int, folio: int) -> bytes:
        response = self._call("GET", self._issued_path("pdf", dte, folio))
        if not response.content.startswith(b"%PDF"):
            raise self.transient_error(_("LibreDTE no entregó un PDF para el DTE %(tipo)s N° %(folio)s (HTTP %(status)s).") % {
                "tipo": dte, "folio": folio, "status": response.status_code})
        return response.content

    def issued_xml(self, dte: int, folio: int) -> bytes:
        """The signed DTE: LibreDTE answers the stored envelope, base64-encoded, as a JSON string."""
        response = self._call("GET", self._issued_path("xml", dte, folio))
        encoded = self.json_body(response, _("el XML"))
        try:
            return extract_dte(base64.b64decode(str(encoded), validate=True))
        except (binascii.Error, ValueError, etree.XMLSyntaxError) as exc:
            raise self.transient_error(_("LibreDTE entregó un XML ilegible para el DTE %(tipo)s N° %(folio)s: %(error)s") % {
                "tipo": dte, "folio": folio, "error": exc}) from exc

    def issued_status_update(self, dte: int, folio: int) -> dict:
        """``GET …/actualizar_estado``: LibreDTE asks the SII by track id and answers what it stored."""
        response = self._call("GET", self._issued_path("actualizar_estado", dte, folio), params={"usarWebservice": 1})
        return self._object(response, _("el estado en el SII"))

    # --- the connection test ---------------------------------------------------------------------

    def company_check(self) -> None:
        """Authenticates and confirms the company exists and the user may work with it (401/404/403 raise)."""
        self._list(self._call("POST", f"dte/dte_tmps/buscar/{self.emisor}", json={"limit": 1}), _("la búsqueda de temporales"))

    def company_config(self) -> dict:
        """``GET /api/dte/contribuyentes/config/{rut}``: the environment and the enabled document types
        (only the company's administrators may read it)."""
        return self._object(self._call("GET", f"dte/contribuyentes/config/{self.emisor}"), _("la configuración de la empresa"))

    def folios_info(self, dte: int) -> dict:
        """``GET /api/dte/admin/dte_folios/info/{dte}/{emisor}``: the folio maintainer (siguiente, disponibles)."""
        return self._object(self._call("GET", f"dte/admin/dte_folios/info/{dte}/{self.emisor}"), _("los folios"))
