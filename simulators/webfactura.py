"""webFactura simulator: OAuth2 client credentials and ``sendDTEJson``, kept small on purpose.

webFactura publishes no API documentation. What is known (reference/biller-webfactura.md, from an
unofficial client): a token from ``GET /oauth/v2/token?client_id&client_secret&grant_type=
client_credentials`` answering ``access_token``; ``POST /api/v3/pos/dte/sendDTEJson.json`` with
``Authorization: Bearer`` and ``{"DteSend": {"Dte": [{"Encabezado": {…, "Totales": {…}}, "Detalles":
[…]}]}}`` (note ``Detalles``; values may be strings) carrying totals computed by the caller.

Everything else is a guess, chosen to be plausible and to make an adapter handle the real cases:

* The ``/oauth/v2/token`` path is FOSOAuthServerBundle's, so the token endpoint and the bearer check
  answer like its oauth2-php library: ``{"access_token", "expires_in", "token_type": "bearer", "scope":
  null}``; errors ``400 {"error": "invalid_request"|"invalid_client"|"unsupported_grant_type",
  "error_description"}``; a missing token ``401 access_denied``, an unknown or expired one ``401
  invalid_grant`` ("The access token provided is invalid." / "…has expired."), with ``WWW-Authenticate``.
  The token endpoint also takes POST form fields, as that bundle does.
* ``sendDTEJson`` recomputes every document with the product's DTE core (LibreDTE's normaliser):
  declared ``Totales`` (``MntNeto``, ``MntExe``, ``IVA``, ``MntTotal``; absent counts as 0) and each line's
  ``MontoItem`` must match, or that document is refused. It assigns the next folio per (emisor, type)
  unless ``IdDoc.Folio`` is given (a used folio is refused), stamps and signs it (test CAF and certificate).
* The answer is HTTP 200 with one result per document, in order, using the codes of webFactura's legacy
  SOAP ``sendDte`` (``EstadoDTE`` 0 OK, 1 schema error, 2 data error, 3 duplicate folio)::

      {"EstadoEnvio": 0, "Documentos": [{"TipoDTE": 33, "Folio": 12, "RUTEmisor": "76192083-9",
        "EstadoDTE": 0, "Glosa": "DTE recibido", "MntTotal": 1190, "UrlPdf": ".../pdf/<id>.pdf",
        "UrlXml": ".../xml/<id>.xml"}]}

  ``EstadoEnvio`` is 0 when every document was accepted, else 1. A body that is not that shape is
  ``400 {"error": "invalid_request", "error_description": …}``. PDF and XML links need no token.

Control routes: ``POST /_sim/clients`` ``{"client_id", "client_secret", "emisores": [{"rut",
"razon_social"}]}``; ``POST /_sim/expire_tokens`` (``{"access_token": …}`` or every token) makes tokens
expire now. ``token_ttl`` (seconds, default 3600) sets ``expires_in``.
"""
from __future__ import annotations

import datetime
import secrets
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs

from billers.dte.document import Document, document_from_libredte_json
from billers.dte.errors import DteError
from billers.dte.normalize import normalize
from billers.dte.pdf import render_pdf
from billers.dte.xml import build_dte_xml

from .base import HttpError, Request, Response, Simulator, route
from .biller_helpers import signer_for, split_rut

DEFAULT_CLIENT_ID = "1_simuladorwebfactura"
DEFAULT_CLIENT_SECRET = "secreto-del-simulador-webfactura"
DEFAULT_EMISOR = {"rut": "76192083-9", "razon_social": "Empresa Demo SpA"}
TOTALS = (("MntNeto", "mnt_neto"), ("MntExe", "mnt_exe"), ("IVA", "iva"), ("MntTotal", "mnt_total"))


@dataclass
class Client:
    secret: str
    emisores: dict[str, str]  # RUT → razón social


@dataclass
class Stored:
    emisor: str
    tipo: int
    folio: int
    total: int
    xml: bytes


def _oauth_error(status: int, error: str, description: str) -> HttpError:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="Service", error="{error}", error_description="{description}"'
    return HttpError(status, {"error": error, "error_description": description}, headers)


def _int(value: Any) -> int:
    """A declared amount, which webFactura's JSON may send as a string; absent is 0."""
    if value in (None, ""):
        return 0
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} no es un monto entero") from None


class WebFacturaSimulator(Simulator):
    """webFactura's REST v3 (OAuth2 + sendDTEJson), in memory. See the module docstring."""

    name = "webfactura"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: bool = True, token_ttl: int = 3600):
        self.seed = seed
        self.token_ttl = token_ttl
        super().__init__(host, port)

    def reset_state(self) -> None:
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # access token → (client id, expiry)
        self.folios: Counter[tuple[str, int]] = Counter()  # last folio per (emisor, type)
        self.documents: dict[str, Stored] = {}  # public id → document
        self.used: set[tuple[str, int, int]] = set()
        if self.seed:
            emisores = {DEFAULT_EMISOR["rut"]: DEFAULT_EMISOR["razon_social"]}
            self.clients[DEFAULT_CLIENT_ID] = Client(DEFAULT_CLIENT_SECRET, emisores)

    def state(self) -> dict:
        issued = Counter(f"{d.emisor}:{d.tipo}" for d in self.documents.values())
        return {"clients": sorted(self.clients), "tokens": len(self.tokens), "issued": dict(issued)}

    def control(self, request: Request) -> Response | None:
        if request.method != "POST":
            return None
        body = request.json() or {}
        if request.path == "/_sim/clients":
            try:
                emisores = {f"{r[0]}-{r[1]}": e.get("razon_social") or f"Empresa {r[0]}"
                            for e in body.get("emisores", []) if (r := split_rut(e.get("rut", "")))}
                with self.lock:
                    self.clients[str(body["client_id"])] = Client(str(body["client_secret"]), emisores)
            except (AttributeError, KeyError, TypeError) as exc:
                return Response(400, {"error": f"{type(exc).__name__}: {exc}"})
            return Response(200, {"client_id": body["client_id"], "emisores": sorted(emisores)})
        if request.path == "/_sim/expire_tokens":
            with self.lock:
                chosen = [body["access_token"]] if body.get("access_token") else list(self.tokens)
                for token in chosen:
                    if token in self.tokens:
                        self.tokens[token] = (self.tokens[token][0], 0.0)
            return Response(200, {"expired": len(chosen)})
        return None

    # --- OAuth2 ----------------------------------------------------------------------------------

    @route("GET", r"/oauth/v2/token", name="token")
    def token(self, request: Request) -> Response:
        return self._grant({k: v[0] for k, v in request.query.items()})

    @route("POST", r"/oauth/v2/token", name="token")
    def token_post(self, request: Request) -> Response:
        fields = parse_qs(request.body.decode("utf-8", "replace")) if request.body else {}
        params = {k: v[0] for k, v in request.query.items()} | {k: v[0] for k, v in fields.items()}
        return self._grant(params)

    def _grant(self, params: dict[str, str]) -> Response:
        grant_type = params.get("grant_type")
        if not grant_type:
            raise _oauth_error(400, "invalid_request", "Invalid grant_type parameter or parameter missing")
        client = self.clients.get(params.get("client_id", ""))
        if client is None or not secrets.compare_digest(client.secret, params.get("client_secret", "")):
            raise _oauth_error(400, "invalid_client", "The client credentials are invalid")
        if grant_type != "client_credentials":
            raise _oauth_error(400, "unsupported_grant_type", "Invalid grant_type parameter or parameter missing")
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = (params["client_id"], time.time() + self.token_ttl)
        return Response(200, {"access_token": token, "expires_in": self.token_ttl, "token_type": "bearer",
                               "scope": None})

    def _client(self, request: Request) -> Client:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _oauth_error(401, "access_denied", "OAuth2 authentication required")
        with self.lock:
            found = self.tokens.get(token)
        if found is None:
            raise _oauth_error(401, "invalid_grant", "The access token provided is invalid.")
        if found[1] <= time.time():
            raise _oauth_error(401, "invalid_grant", "The access token provided has expired.")
        return self.clients[found[0]]

    # --- documents -------------------------------------------------------------------------------

    @route("POST", r"/api/v3/pos/dte/sendDTEJson\.json", name="send_dte")
    def send_dte(self, request: Request) -> Response:
        client = self._client(request)
        try:
            body = request.json()
        except HttpError:
            body = None
        send = body.get("DteSend") if isinstance(body, dict) else None
        dtes = send.get("Dte") if isinstance(send, dict) else None
        if not isinstance(dtes, list) or not dtes:
            raise HttpError(400, {"error": "invalid_request",
                                  "error_description": 'Se espera {"DteSend": {"Dte": [ ... ]}} con al menos un DTE.'})
        results = [self._process(client, dte) for dte in dtes]
        return Response(200, {"EstadoEnvio": 0 if all(r["EstadoDTE"] == 0 for r in results) else 1,
                              "Documentos": results})

    def _process(self, client: Client, dte: Any) -> dict:
        encabezado = dte.get("Encabezado") if isinstance(dte, dict) else None
        id_doc = (encabezado or {}).get("IdDoc") or {}
        rut = str(((encabezado or {}).get("Emisor") or {}).get("RUTEmisor", ""))
        tipo = str(id_doc.get("TipoDTE", "")).strip()
        result = {"TipoDTE": int(tipo) if tipo.isdigit() else None, "Folio": None, "RUTEmisor": rut}
        if not isinstance(encabezado, dict) or not isinstance(dte.get("Detalles"), list):
            return {**result, "EstadoDTE": 1, "Glosa": "Error de schema: se esperan Encabezado y Detalles."}
        if rut not in client.emisores:
            return {**result, "EstadoDTE": 2, "Glosa": f"Emisor {rut} no autorizado para este cliente."}
        try:
            declared = encabezado.get("Totales") or {}
            lines = [self._line(line) for line in dte["Detalles"]]
            data = {"Encabezado": {k: v for k, v in encabezado.items() if k != "Totales"}, "Detalle": lines}
            doc = normalize(document_from_libredte_json(data))
            problems = self._compare(doc, declared, dte["Detalles"])
        except (DteError, ValueError, TypeError, AttributeError) as exc:
            return {**result, "EstadoDTE": 1, "Glosa": f"Error de schema: {exc}"}
        if problems:
            return {**result, "EstadoDTE": 2, "Glosa": "Totales inconsistentes: " + "; ".join(problems)}
        return self._issue(client, rut, doc, result)

    @staticmethod
    def _line(line: Any) -> dict:
        """A ``Detalles`` item as LibreDTE JSON; with price and quantity the amount is recomputed from them."""
        if not isinstance(line, dict):
            raise ValueError("cada elemento de Detalles debe ser un objeto")
        converted = {k: v for k, v in line.items() if v not in (None, "")}
        if converted.get("QtyItem") is not None and converted.get("PrcItem") is not None:
            converted.pop("MontoItem", None)
        return converted

    @staticmethod
    def _compare(doc: Document, declared: dict, detalles: list) -> list[str]:
        problems = []
        for tag, attribute in TOTALS:
            computed = getattr(doc.totales, attribute) or 0
            if _int(declared.get(tag)) != computed:
                problems.append(f"{tag} declarado {_int(declared.get(tag))}, calculado {computed}")
        for n, (given, line) in enumerate(zip(detalles, doc.detalle, strict=False), start=1):
            if given.get("MontoItem") not in (None, "") and _int(given["MontoItem"]) != line.monto_item:
                problems.append(f"línea {n}: MontoItem declarado {given['MontoItem']}, calculado {line.monto_item}")
        return problems

    def _issue(self, client: Client, rut: str, doc: Document, result: dict) -> dict:
        tipo = doc.tipo_dte
        requested = doc.encabezado.id_doc.folio or 0
        with self.lock:
            if requested and (rut, tipo, requested) in self.used:
                return {**result, "Folio": requested, "EstadoDTE": 3, "Glosa": f"Folio {requested} duplicado."}
            folio = requested or self.folios[(rut, tipo)] + 1
            self.folios[(rut, tipo)] = max(self.folios[(rut, tipo)], folio)
            self.used.add((rut, tipo, folio))
        fecha = doc.encabezado.id_doc.fch_emis or datetime.date.today()
        id_doc = replace(doc.encabezado.id_doc, folio=folio, fch_emis=fecha)
        doc = replace(doc, encabezado=replace(doc.encabezado, id_doc=id_doc))
        try:
            xml = build_dte_xml(doc, signer=signer_for(rut, client.emisores[rut]))
        except DteError as exc:
            return {**result, "Folio": folio, "EstadoDTE": 1, "Glosa": f"Error de schema: {exc}"}
        public_id = secrets.token_hex(16)
        with self.lock:
            self.documents[public_id] = Stored(rut, tipo, folio, doc.totales.mnt_total, xml)
            self.counters["issued"] += 1
        return {**result, "TipoDTE": tipo, "Folio": folio, "EstadoDTE": 0, "Glosa": "DTE recibido",
                "MntTotal": doc.totales.mnt_total, "UrlPdf": f"{self.url}/pdf/{public_id}.pdf",
                "UrlXml": f"{self.url}/xml/{public_id}.xml"}

    def _stored(self, request: Request) -> Stored:
        with self.lock:
            found = self.documents.get(request.params["id"])
        if found is None:
            raise HttpError(404, {"error": "not_found", "error_description": "Documento no encontrado."})
        return found

    @route("GET", r"/pdf/(?P<id>[0-9a-f]+)\.pdf", name="pdf")
    def pdf(self, request: Request) -> Response:
        pdf = render_pdf(self._stored(request).xml, certification=True)
        return Response(200, pdf, content_type="application/pdf")

    @route("GET", r"/xml/(?P<id>[0-9a-f]+)\.xml", name="xml")
    def xml(self, request: Request) -> Response:
        return Response(200, self._stored(request).xml, content_type="application/xml")

