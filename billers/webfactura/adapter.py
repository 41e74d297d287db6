"""webFactura (beta): DTEs through webFactura's REST v3 (OAuth2 client credentials + ``sendDTEJson``).

webFactura publishes no API documentation and offers no public sandbox. Everything below comes from
one **unofficial** client (``nicolasjelincictimark/webfacturafastapi`` @ 5c563c5, see ``client.py`` and
reference/biller-webfactura.md) or is our assumption, and the merchant sees "webFactura (beta)" until
it is confirmed against a real account. Where we had to guess, the guess is a setting.

What we send. The DTE core builds and normalises the document (LibreDTE's normaliser: gross boleta
lines, ``MntBruto = 1`` facturas, exempt lines, the global discount), so the totals are ours: nothing
shows that webFactura recomputes them, and the one client sends them. The envelope is the client's
``{"DteSend": {"Dte": [<one DTE>]}}`` with the SII element names the core writes for the document's
family, except that the lines go under ``Detalles`` (plural) with ``NroLinDet``, and ``CdgItem`` is one
object (``{"TpoCodigo", "VlrCodigo"}``), as in the client's model. Assumptions:

- Values are sent as JSON strings, as the client's (pydantic ``str``) model has them, ``NroLinDet``
  excepted (an ``int`` there); setting ``amounts_as_text`` off sends JSON numbers.
- webFactura assigns the folio: ``IdDoc.Folio`` is left out; setting ``folio_zero`` sends ``"0"`` for
  an API that requires the field (the client's model makes it mandatory but shows no value).
- Boletas use the boleta names (``RznSocEmisor``, ``GiroEmisor``, ``IndServicio``), facturas and notes the
  DTE ones (``RznSoc``, ``GiroEmis``, one ``Acteco``, ``MntBruto``); ``TasaIVA`` only where the SII schema has
  it; the global discount and references travel as ``DscRcgGlobal`` and ``Referencia`` (the client shows
  neither). Document types: 33, 34, 39, 41, 56, 61 (the ``/pos/`` path may serve boletas only).
- The answer (not shown anywhere) is read as the legacy SOAP ``sendDte`` codes suggest: a list
  ``Documentos`` with, per document, ``EstadoDTE`` (0 accepted; 1 schema error, 2 data error, 3 duplicate
  folio: rejected with its ``Glosa``), ``Folio``, ``TipoDTE``, ``MntTotal`` (checked against ours) and links
  ``UrlPdf``/``UrlXml``; a single object with ``EstadoDTE`` is read the same way. Any other answer, an
  unknown state or an accepted document without a folio leaves the outcome unknown (transient).
- The links need no token: with ``download_files`` (default on) the XML and PDF are downloaded right
  after issue, so the document has its files; a failed download only leaves them missing (logged).
  Links are followed (and ``UrlPdf`` kept) only on the API's own host or its site (``*.webfactura.cl``
  for the default URLs): a worker never fetches whatever address an answer names.
- There is no known way to look a document up (no query endpoint, no reference field), so an unknown
  outcome is held for a person (``UnsupportedFeature``), never re-sent; ``test_connection`` can only prove
  the OAuth credentials.

Base URL: the connection's environment picks QA (``https://api-qa.webfactura.cl``) for certification and
production (``https://api.webfactura.cl``) otherwise; both are settings.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.http import url_problem
from billmysales.integrations.spec import BOOL, CHOICE, SECRET_TEXT, TEXT, URL, Field

from ..base import (
    BillerAdapter,
    Capability,
    CheckItem,
    Checkpoint,
    ConnectionReport,
    IssuedDocument,
    IssueRequest,
    RejectedBillerError,
    TransientBillerError,
)
from ..dte.document import document_from_libredte_json, document_to_libredte_json
from ..dte.types import BOLETA_AFECTA, BOLETA_EXENTA, FACTURA_AFECTA, FACTURA_EXENTA, NOTA_CREDITO, NOTA_DEBITO
from .client import PRODUCTION_URL, QA_URL, WebFacturaClient

logger = logging.getLogger(__name__)

# EstadoDTE of a refused document (the legacy SOAP sendDte's codes), as the merchant reads them.
REFUSALS = {1: _("error de esquema"), 2: _("error en los datos"), 3: _("folio duplicado")}
TOTALS = ("MntNeto", "MntExe", "IVA", "MntTotal")


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return int(number) if number.is_finite() and number == number.to_integral_value() else None


def _as_text(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _as_text(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v, key) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "NroLinDet":
        return str(value)
    return value


def same_site(url: str, base_url: str) -> bool:
    """Whether ``url`` is on the API's host, or under its site's domain (``files.webfactura.cl`` for
    ``api.webfactura.cl``); an IP address only matches itself."""
    host, base = (urlsplit(url).hostname or "").lower(), (urlsplit(base_url).hostname or "").lower()
    if not host or url_problem(url) is not None:
        return False
    if host == base:
        return True
    labels = base.split(".")
    return not base.replace(".", "").isdigit() and len(labels) >= 2 and host.endswith("." + ".".join(labels[-2:]))


def _detalle(line: dict) -> dict:
    codes = line.get("CdgItem")
    if isinstance(codes, list):
        line = {**line, "CdgItem": codes[0]} if codes else {k: v for k, v in line.items() if k != "CdgItem"}
    return line


class WebFacturaAdapter(BillerAdapter):
    provider = "webfactura"
    label = _("webFactura")
    beta = True
    document_types = frozenset({FACTURA_AFECTA, FACTURA_EXENTA, BOLETA_AFECTA, BOLETA_EXENTA, NOTA_DEBITO, NOTA_CREDITO})
    capabilities = frozenset({Capability.TEST_CONNECTION})
    credentials_spec = (
        Field("client_id", _("Client ID (OAuth2) de webFactura"), TEXT),
        Field("client_secret", _("Client secret (OAuth2) de webFactura"), SECRET_TEXT,
              help_text=_("Los entrega webFactura para usar su API.")),
    )
    config_spec = (
        Field("qa_url", _("URL de la API en certificación (QA)"), URL, required=False, default=QA_URL),
        Field("production_url", _("URL de la API en producción"), URL, required=False, default=PRODUCTION_URL),
        Field("token_method", _("Cómo se pide el token"), CHOICE, required=False, default="get", choices=(
            ("get", _("GET con los datos en la dirección (como el cliente conocido)")),
            ("post", _("POST con formulario (OAuth2 estándar)")),
        )),
        Field("amounts_as_text", _("Enviar montos y cantidades como texto"), BOOL, required=False, default=True),
        Field("folio_zero", _("Enviar Folio 0 para que webFactura asigne el folio"), BOOL, required=False, default=False),
        Field("download_files", _("Descargar el XML y el PDF al emitir"), BOOL, required=False, default=True),
    )

    def _setting(self, name: str) -> Any:
        value = (self.connection.config or {}).get(name)
        if value in (None, ""):
            return next(field.default for field in self.config_spec if field.name == name)
        return value

    def base_url(self) -> str:
        return self._setting("qa_url" if self.connection.is_certification else "production_url")

    def client(self) -> WebFacturaClient:
        credentials = self.connection.credentials or {}
        missing = [name for name in ("client_id", "client_secret") if not credentials.get(name)]
        if missing:
            raise RejectedBillerError(gettext("La conexión de webFactura no tiene %(fields)s: guárdelos en la conexión.") % {
                "fields": gettext(" ni ").join(missing)})
        return WebFacturaClient(
            base_url=self.base_url(), client_id=credentials["client_id"], client_secret=credentials["client_secret"],
            connection_id=self.connection.pk, token_method=self._setting("token_method"),
        )

    # --- issue -----------------------------------------------------------------------------------

    def build_payload(self, request: IssueRequest, prepared: dict) -> dict:
        document = document_from_libredte_json(prepared["dte"])
        enc = document.encabezado
        document = replace(document, encabezado=replace(enc, id_doc=replace(enc.id_doc, folio=None, fch_emis=request.fecha)))
        dte = document_to_libredte_json(document)
        if self._setting("folio_zero"):
            id_doc = dte["Encabezado"]["IdDoc"]
            dte["Encabezado"]["IdDoc"] = {"TipoDTE": id_doc.pop("TipoDTE"), "Folio": 0, **id_doc}
        emisor = dte["Encabezado"]["Emisor"]
        if isinstance(emisor.get("Acteco"), list):
            emisor["Acteco"] = emisor["Acteco"][0]  # one activity code, as the client's model has it
        lines = [_detalle(line) for line in dte.pop("Detalle")]
        dte = {"Encabezado": dte.pop("Encabezado"), "Detalles": lines, **dte}
        if self._setting("amounts_as_text"):
            dte = _as_text(dte)
        return {"DteSend": {"Dte": [dte]}}

    def send(self, payload: dict, request: IssueRequest, checkpoint: Checkpoint) -> IssuedDocument:
        client = self.client()
        answer = client.send_dte(payload)
        result = self._result(answer)
        estado, glosa = _int(result.get("EstadoDTE")), str(result.get("Glosa") or "").strip()
        if estado in REFUSALS:
            raise RejectedBillerError(gettext("webFactura rechazó el documento (%(refusal)s): %(detail)s") % {
                "refusal": REFUSALS[estado], "detail": glosa or gettext("sin detalle")}, body=glosa)
        if estado != 0:
            raise TransientBillerError(
                gettext("webFactura respondió un estado desconocido (%(state)s: %(detail)s); no se sabe si el documento se emitió.") % {
                    "state": repr(result.get("EstadoDTE")), "detail": glosa}
            )
        folio = _int(result.get("Folio"))
        if not folio or folio <= 0:
            raise TransientBillerError(gettext("webFactura aceptó el documento pero no respondió su folio; no se sabe cuál se emitió."))
        sent = payload["DteSend"]["Dte"][0]["Encabezado"]
        tipo = _int(result.get("TipoDTE")) or _int(sent["IdDoc"]["TipoDTE"])
        totals = {name: _int(sent["Totales"][name]) for name in TOTALS if name in sent["Totales"]}
        if _int(result.get("MntTotal")) is not None:
            totals["MntTotal"] = _int(result["MntTotal"])
        xml, pdf = self._files(client, result)
        pdf_url = str(result.get("UrlPdf") or "")
        return IssuedDocument(
            tipo_dte=tipo, folio=folio, fecha=request.fecha, totals=totals, biller_document_id=f"webfactura-{tipo}-{folio}",
            xml=xml, pdf=pdf, pdf_url=pdf_url if same_site(pdf_url, client.base_url) else "", raw=answer,
        )

    @staticmethod
    def _result(answer: dict) -> dict:
        documentos = answer.get("Documentos")
        if isinstance(documentos, list) and documentos and isinstance(documentos[0], dict):
            return documentos[0]
        if "EstadoDTE" in answer:
            return answer
        raise TransientBillerError(gettext("webFactura respondió sin el resultado del documento (Documentos); no se sabe si se emitió."))

    def _files(self, client: WebFacturaClient, result: dict) -> tuple[bytes, bytes]:
        """The XML and PDF the answer links to, as far as they can be had now."""
        if not self._setting("download_files"):
            return b"", b""
        files = []
        for key, looks_right in (("UrlXml", lambda c: c.lstrip().startswith(b"<")), ("UrlPdf", lambda c: c.startswith(b"%PDF"))):
            url = result.get(key)
            content = b""
            if isinstance(url, str) and url and not same_site(url, client.base_url):
                logger.warning("account=%s webfactura %s is on another site: not downloaded", self.connection.account_id, key)
            elif isinstance(url, str) and url:
                try:
                    content = client.download(url)
                except (TransientBillerError, RejectedBillerError) as exc:
                    logger.warning("account=%s webfactura %s not downloaded: %s", self.connection.account_id, key, exc)
                if content and not looks_right(content):
                    logger.warning("account=%s webfactura %s is not the expected file type", self.connection.account_id, key)
                    content = b""
            files.append(content)
        return files[0], files[1]

    # --- connection ------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionReport:
        environment = gettext("certificación (QA)") if self.connection.is_certification else gettext("producción")
        items = [CheckItem("webFactura (beta)", None, gettext("webFactura no publica la documentación de su API: la integración se "
                                                              "confirma con la venta de prueba."))]
        credentials = gettext("Credenciales OAuth")
        try:
            client = self.client()
            client.access_token()
            items.append(CheckItem(credentials, True, gettext(
                "webFactura entregó un token en %(host)s (%(environment)s); vence en %(minutes)s minutos.") % {
                "host": urlsplit(client.base_url).hostname, "environment": environment, "minutes": client.token_lifetime() // 60}))
        except RejectedBillerError as exc:
            items.append(CheckItem(credentials, False, exc.message))
        except TransientBillerError as exc:
            items.append(CheckItem(credentials, None, gettext("No se pudo comprobar ahora: %(error)s") % {"error": exc.message}))
        items.append(CheckItem(gettext("Emisor"), None, gettext("webFactura no ofrece un servicio para consultar el emisor: el RUT "
                                                                "%(rut)s se comprueba al emitir la venta de prueba.") % {
            "rut": self.connection.emisor_rut}))
        return ConnectionReport(tuple(items))
