"""LibreDTE simulator: the ``/api/dte/...`` subset of a LibreDTE server that a biller adapter calls.

Modelled on the server's own code, not only its docs: ``LibreDTE/libredte-app-community`` @ f783d00
(``Controller/Documentos.php``, ``DteEmitidos.php``, ``DteTmps.php``, ``Model/DteTmp.php``,
``DteEmitido.php``, ``Contribuyente.php``), which runs on sowerphp-framework's *legacy* API component
(``Controller_Component_Api``, the ``dev-legacy`` branch the app's composer.json requires). Documents
are normalised, stamped and signed with the product's DTE core (``billers.dte``), so totals are
LibreDTE's to the peso and the XML is a real signed DTE (test certificate and CAFs).

What the real server does, and so this simulator (an adapter must expect all of it):

* **Auth** (legacy API component): ``Authorization: Basic base64(X:<hash>)`` and the obsolete
  ``base64(<hash>:X)`` (swapped when the password is ``X`` and the user part is 32 characters);
  ``Bearer <hash>``; a bare base64 ``user:pass`` with no scheme. Only without an Authorization header:
  ``?api_hash=<hash>`` or ``?api_key=<base64 X:hash>``. Failures are 401 with ``"Cabecera Authorization
  no fue recibida."``, ``"Cabecera Authorization es incorrecta."`` (no ``:``) or ``"Usuario o contraseña
  inválida."``. A body that is not JSON is refused *before* auth: 400 ``"Los datos enviados a la API no
  son válidos (no es un JSON válido)."``. Content-Type is not checked (PHP reads the raw body), except
  ``multipart/form-data``, whose raw body PHP does not expose.
* **Errors are JSON strings**, never objects. Codes as the controllers use them: 400, 401, 403, 404,
  405/406 (unknown method / missing path arguments), 409, 500, 506, 507, 508, 510.
* **Environment**: ``?_contribuyente_certificacion=`` (PHP truthiness: ``"0"`` and ``""`` are
  production, anything else certification), else the company's own setting. ``?_contribuyente_rut=``
  is sent by the official clients but read by nothing in the community server: the emisor comes from
  ``RUTEmisor`` (emitir), the body (generar) or the path. Issued documents and folios are per
  environment; **temporary documents are not** (``dte_tmp`` has no certificacion column).
* **emitir**: ``getTipoDTE`` silently turns 33↔34 and 39↔41 by the lines' ``IndExe``; ``FchEmis``
  older than 90 days is 400; boletas move ``TermPagoGlosa``/``Acteco``/``CdgVendedor``/``Sucursal`` to
  ``extra``; a ``Referencia`` to a local document that is rejected, not sent to the SII (every boleta
  without a track id!) or without a final SII state is 400. ``codigo = md5(md5(datos) . unix_time)``:
  **the same normalised document emitted twice in the same second gets the same codigo** and the second
  overwrites the first (``exact_codigo=False`` makes codigos unique instead).
* **generar** (``{emisor, receptor, dte, codigo}``): no certificate 506, no CAF/folio 508 (an expired
  CAF burns the folio), XML that cannot be built or fails the SII schema 510 (folio burnt; the temporary
  document stays), folio already issued 409 (folio burnt). The schema check uses the DTE core's schemas
  (``../shared/sii/xsd``, else cl-sii's, which lack the boleta schema: boletas then go unchecked);
  ``validate_schema=False`` skips it. Nothing stops two concurrent generar of one temporary document from issuing two documents.
  The answer is the ``dte_emitido`` row: note ``receptor`` is a *string* there (``substr(RUT, 0, -2)``)
  and an int everywhere else; ``xml`` is false unless ``getXML=1``. ``track_id`` is null for boletas
  (community servers send boletas to the SII only through API Gateway; ``boleta_track_id=True`` to
  simulate that) and for any document with ``retry=0``.
* **dte_emitidos/buscar** answers 404 ``"No se encontraron documentos emitidos que coincidan con la
  búsqueda."`` when nothing matches (``dte_tmps/buscar`` answers ``[]``). Filters: ``folio``, ``fecha``,
  ``total`` (exact), ``usuario``, ``dte`` (value, list, or ``"!33"``), ``receptor`` (RUT without DV, or
  with DV, or else a razón social fragment; ``"!…"`` only works with a DV), ``razon_social``,
  ``periodo`` (AAAAMM), ``fecha_desde``/``fecha_hasta``, ``total_desde``/``total_hasta``,
  ``sucursal_sii``, ``receptor_evento``, ``cedido``, ``vendedor``, ``estado_sii``
  (``sin_track_id|null|no_final|rechazados``), ``xml`` ({node path under the document: fragment},
  matched only inside an ``EnvioDTE``: **never matches boletas**, stored as ``EnvioBOLETA``), ``limit``,
  ``offset``. A body that is not a JSON object/array is a 500 (PHP TypeError).
* **estado**: facturas and notes answer the SII's ``QueryEstDte`` header as an object (``ESTADO``,
  ``GLOSA_ESTADO``, ``ERR_CODE``, ``GLOSA_ERR``, ``NUM_ATENCION``), e.g. ``DOK``; boletas answer what
  ``actualizar_estado`` answers, and ``avanzado=1`` on a boleta is 400. **actualizar_estado** answers
  ``{track_id, revision_estado, revision_detalle}`` (``"EPR - Envío Procesado"`` / ``"DTE aceptado"``,
  ``"RCH - DTE Rechazado"`` …); without a track id (every boleta by default) both are 500 ``"DTE no
  tiene Track ID, primero debe enviarlo al SII."``.

Simulated SII: a document sent to the SII answers "not final" revision states (``REC``, ``SOK``, …) for
its first ``reads_until_final`` status reads (``estado`` and ``actualizar_estado`` both count), then
``EPR``/``DOK``; ``POST /_sim/sii_status`` fixes any state (e.g. a rejection with a detail).

Assumptions where the source depends on things the simulator does not have:

* Users exist only as 32-character hashes (no passwords, no 2FA); a hash may work for several companies.
* The PHP library's normaliser is replaced by the product's port of it; a document that port refuses
  is answered 400 with its reason (the PHP library is laxer and would fail later, at generar).
* Numbers are JSON integers (PHP may print some as floats); booleans read from the database (``info``:
  ``certificacion``, ``anulado``) are JSON booleans, those set in PHP (``generar``) are 0/1.
* The stored XML is an ``EnvioDTE``/``EnvioBOLETA`` holding the signed DTE, as LibreDTE keeps it; its
  envelope signature is made on request (deterministic: same bytes every time).
* ``getTipoDTE``, ``estado avanzado`` (``RECIBIDO``/``ESTADO``/``GLOSA``/``NUMATENCION``), the
  boleta status when ``boleta_track_id=True``, the temporary PDF (a plain page) and ``enviar_email``
  (answers the list of addresses) are approximations; e-mail is not sent, only recorded in the state.

Control routes (besides the base's): ``POST /_sim/companies`` (JSON: ``rut``, ``razon_social``, ``giro``,
``acteco``, ``direccion``, ``comuna``, ``email``, ``hash``/``hashes``, ``folios`` e.g. ``{"39": 1000,
"33": {"desde": 1, "hasta": 100, "siguiente": 1}}``, ``certificado``, ``tipos``, ``certificacion``,
``emision_mas_90_dias``), ``POST /_sim/folios`` (``rut``, ``dte``, optional ``certificacion``,
``desde``, ``hasta``, ``siguiente``, ``vencido``), ``POST /_sim/sii_status`` (``emisor``, ``dte``,
``folio``, optional ``certificacion``, ``estado`` e.g. ``RCH``, ``detalle``, ``estado_dte`` e.g. ``DNK``).
"""
from __future__ import annotations

import base64
import binascii
import calendar
import copy
import datetime
import hashlib
import itertools
import json
import random
import re
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field, is_dataclass, replace
from decimal import Decimal
from typing import Any

from lxml import etree

from billers.dte.c14n import canonical
from billers.dte.credentials import DteSigner
from billers.dte.document import (
    Document,
    document_from_libredte_json,
    document_to_libredte_json,
    family,
    present_fields,
)
from billers.dte.errors import DteError, SchemaUnavailable
from billers.dte.normalize import normalize
from billers.dte.pdf import render_pdf, ted_barcode_bytes
from billers.dte.xml import C14N, DS_NS, RSA_SHA1, SHA1, SII_NS, build_dte_xml
from billers.dte.xsd import validate_dte_xml

from .base import HttpError, Request, Response, Simulator, route
from .biller_helpers import rut_dv, signer_for, simple_pdf, split_rut

DEFAULT_HASH = "simuladorlibredte000000000000001"
NOT_REGISTERED = "Contribuyente no está registrado en la aplicación."
BOLETAS = frozenset({39, 41})
GENERIC_RECEPTORS = frozenset({55555555, 66666666})
# LibreDTE's dte_tipo rows (Model/Sql/datos.ods): name, compra, venta, cedible, operacion; all are
# electronic, category T, and sent to the SII.
DTE_TIPOS = {
    33: ("Factura electrónica", True, True, True, "S"),
    34: ("Factura no afecta o exenta electrónica", True, True, True, "S"),
    39: ("Boleta electrónica", False, True, False, "S"),
    41: ("Boleta exenta electrónica", False, True, False, "S"),
    46: ("Factura de compra electrónica", True, True, False, "R"),
    52: ("Guía de despacho electrónica", False, False, False, None),
    56: ("Nota de débito electrónica", True, True, False, "S"),
    61: ("Nota de crédito electrónica", True, True, False, "R"),
}
# revision_estado as LibreDTE stores it ("CODE - glosa"), from the SII's QueryEstUp states.
REVISION = {
    "REC": "REC - Envío Recibido", "SOK": "SOK - Schema Validado", "FOK": "FOK - Firma de Envío Validada",
    "PRD": "PRD - Envío en Proceso", "CRT": "CRT - Carátula OK", "EPR": "EPR - Envío Procesado",
    "RLV": "RLV - DTE Aceptado con Reparos Leves", "RPR": "RPR - Aceptado con Reparos",
    "RCH": "RCH - DTE Rechazado", "RSC": "RSC - Rechazado por Error en Schema",
    "RFR": "RFR - Rechazado por Error en Firma", "RCT": "RCT - Rechazado por Error en Carátula",
    "RPT": "RPT - Repetido Rechazado",
}
PENDING = ("REC", "SOK", "FOK", "PRD", "CRT")
# Model_DteEmitidos::$revision_estados
REVISION_FINAL = frozenset({"EPR", "RLV", "RPR"})
REVISION_REJECTED = frozenset({"RSC", "RCH", "RPT", "RFR", "VOF", "RCT"})
REVISION_NOT_FINAL = frozenset({
    "001", "002", "003", "004", "005", "007", "106", "107", "-11", "-8", "REC", "SOK", "FOK", "PRD", "CRT",
})
# The SII's QueryEstDte answers: ESTADO → (ERR_CODE, GLOSA_ESTADO).
QUERY_EST_DTE = {
    "DOK": ("0", "Documento Recibido por el SII. Datos Coinciden con los Registrados."),
    "DNK": ("1", "Documento Recibido por el SII pero Datos NO Coinciden con los registrados."),
    "FAU": ("3", "Documento No Recibido por el SII."),
    "FNA": ("4", "Documento No Autorizado."),
    "FAN": ("5", "Documento Anulado."),
    "EMP": ("6", "Empresa no autorizada a Emitir Documentos Tributarios Electrónicos"),
    "TMD": ("10", "Existe Nota de Debito que Modifica Texto Documento."),
    "TMC": ("11", "Existe Nota de Crédito que Modifica Textos Documento."),
    "MMD": ("12", "Existe Nota de Debito que Modifica Montos Documento."),
    "MMC": ("13", "Existe Nota de Crédito que Modifica Montos Documento."),
    "AND": ("14", "Existe Nota de Debito que Anula Documento"),
    "ANC": ("15", "Existe Nota de Crédito que Anula Documento"),
}
SII_FORMATO = "https://www.sii.cl/factura_electronica/factura_mercado/formato_dte_201911.pdf"
SII_ANULACION = {0: "https://www4.sii.cl/anulacionMsvDteInternet/", 1: "https://www4c.sii.cl/anulacionMsvDteInternet/"}
# (controller, resource) → (PHP class, {method: path parameters}) for the 405/406 answers.
API_RESOURCES = {
    ("documentos", "emitir"): ("Documentos", {"POST": ()}),
    ("documentos", "generar"): ("Documentos", {"POST": ()}),
    ("dte_emitidos", "info"): ("DteEmitidos", {"GET": ("dte", "folio", "emisor")}),
    ("dte_emitidos", "pdf"): ("DteEmitidos", {"GET": ("dte", "folio", "emisor"), "POST": ("dte", "folio", "emisor")}),
    ("dte_emitidos", "xml"): ("DteEmitidos", {"GET": ("dte", "folio", "emisor")}),
    ("dte_emitidos", "estado"): ("DteEmitidos", {"GET": ("dte", "folio", "emisor")}),
    ("dte_emitidos", "actualizar_estado"): ("DteEmitidos", {"GET": ("dte", "folio", "emisor")}),
    ("dte_emitidos", "enviar_email"): ("DteEmitidos", {"POST": ("dte", "folio", "emisor")}),
    ("dte_emitidos", "buscar"): ("DteEmitidos", {"POST": ("emisor",)}),
    ("dte_emitidos", "consultar"): ("DteEmitidos", {"POST": ()}),
    ("dte_tmps", "info"): ("DteTmps", {"GET": ("receptor", "dte", "codigo", "emisor")}),
    ("dte_tmps", "xml"): ("DteTmps", {"GET": ("receptor", "dte", "codigo", "emisor")}),
    ("dte_tmps", "pdf"): ("DteTmps", {"GET": ("receptor", "dte", "codigo", "emisor"),
                                      "POST": ("receptor", "dte", "codigo", "emisor")}),
    ("dte_tmps", "eliminar"): ("DteTmps", {"GET": ("receptor", "dte", "codigo", "emisor")}),
    ("dte_tmps", "buscar"): ("DteTmps", {"POST": ("emisor",)}),
}
_S = f"{{{SII_NS}}}"
_D = f"{{{DS_NS}}}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
_SEG = r"[^/]+"
_EMITIDO = rf"/(?P<dte>{_SEG})/(?P<folio>{_SEG})/(?P<emisor>{_SEG})(?:/.*)?"
_TMP = rf"/(?P<receptor>{_SEG})/(?P<dte>{_SEG})/(?P<codigo>{_SEG})/(?P<emisor>{_SEG})(?:/.*)?"

DEFAULT_COMPANY = {
    "rut": "76192083-9",
    "razon_social": "Empresa Demo SpA",
    "giro": "Venta al por menor por internet",
    "acteco": 479100,
    "direccion": "Av. Libertador Bernardo O'Higgins 1449",
    "comuna": "Santiago",
    "email": "facturacion@empresademo.cl",
    "hashes": [DEFAULT_HASH],
    "certificado": True,
    "certificacion": 1,
    "folios": {tipo: 1_000_000 for tipo in (33, 34, 39, 41, 56, 61)},
}


@dataclass
class User:
    id: int
    usuario: str
    hash: str

    def public(self) -> dict:
        return {"id": self.id, "nombre": f"Usuario {self.usuario}", "usuario": self.usuario,
                "email": f"{self.usuario}@simulador.libredte"}


@dataclass
class Company:
    rut: int
    dv: str
    razon_social: str
    giro: str
    acteco: int
    direccion: str
    comuna: str
    email: str | None
    users: list[int]
    certificado: bool
    tipos: set[int]
    certificacion: int
    emision_mas_90_dias: bool = False
    resolucion_fecha: str = "2014-08-22"
    resolucion_numero: int = 80
    firma_run: str = "12345678-5"

    @property
    def rut_dv(self) -> str:
        return f"{self.rut}-{self.dv}"

    def signer(self) -> DteSigner:
        return signer_for(self.rut_dv, self.razon_social)

    def contribuyente(self) -> dict:
        return {"rut": self.rut, "dv": self.dv, "razon_social": self.razon_social, "giro": self.giro,
                "telefono": None, "email": self.email, "direccion": self.direccion, "comuna": self.comuna}


@dataclass
class Folios:
    """A company's folio counter for one type and environment, over one CAF range."""

    desde: int
    hasta: int
    siguiente: int
    vencido: bool = False

    @property
    def disponibles(self) -> int:
        return max(0, self.hasta - max(self.siguiente, self.desde) + 1)


@dataclass
class TmpDoc:
    emisor: int
    receptor: int
    dte: int
    codigo: str
    fecha: str
    total: int
    datos: dict
    usuario: int
    extra: dict | None


@dataclass
class Issued:
    emisor: int
    dte: int
    folio: int
    certificacion: int
    tasa: int
    fecha: str
    receptor: int
    rzn_soc_recep: str | None
    exento: int | None
    neto: int | None
    iva: int
    total: int
    usuario: int
    creado: str
    extra: dict | None
    xml_z: bytes = field(repr=False)  # the signed <DTE>, zlib-compressed
    track_id: int | None = None
    revision_estado: str | None = None
    revision_detalle: str | None = None
    sii_reads: int = 0
    sii_forced: tuple[str, str | None] | None = None
    estado_dte_forced: str | None = None

    @property
    def dte_xml(self) -> bytes:
        return zlib.decompress(self.xml_z)

    @property
    def estado(self) -> str | None:
        """getEstado(): F (final), R (rejected), N (not final) or None, from revision_estado's code."""
        code = (self.revision_estado or "").split(" ")[0]
        if code in REVISION_FINAL:
            return "F"
        if code in REVISION_REJECTED:
            return "R"
        if code in REVISION_NOT_FINAL:
            return "N"
        return None


def _php_int(value: Any) -> int:
    """PHP's ``(int)`` cast: the leading integer of a string, 0 when there is none."""
    if isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, float):
        return int(value)
    match = re.match(r"\s*[+-]?\d+", str(value))
    return int(match.group()) if match else 0


def _php_empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == "0" or value == 0 or value == [] or value == {}


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return bool(re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", str(value)))


def _flag(request: Request, name: str, default: bool = False) -> bool:
    """A query flag as LibreDTE reads it (``getQuery``): PHP truthiness of the string."""
    raw = request.arg(name)
    return default if raw is None else raw not in ("", "0")


def _rut_number(value: Any) -> int:
    """``new Model_Contribuyente($rut)``: ``"76.192.083-9"`` and ``76192083`` are both 76192083."""
    if isinstance(value, str) and not _is_numeric(value) and "-" in value[1:]:
        value = value.replace(".", "").split("-")[0]
    return _php_int(value)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _merge(default: dict, data: dict) -> dict:
    """``Utility_Array::mergeRecursiveDistinct``: ``data`` wins, nested objects merge."""
    merged = dict(default)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _as_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    return [] if _php_empty(value) else [value]


def _tipo_dte(tipo: int, detalle: Any) -> int:
    """``Controller_Documentos::getTipoDTE``: 33↔34 and 39↔41 follow the lines' ``IndExe``."""
    if tipo not in (33, 34, 39, 41):
        return tipo
    netos = exentos = 0
    for line in _as_list(detalle):
        ind_exe = line.get("IndExe") if isinstance(line, dict) else None
        if _php_empty(ind_exe):
            netos += 1
        elif _php_int(ind_exe) == 1:
            exentos += 1
    afecto, exento = (33, 34) if tipo in (33, 34) else (39, 41)
    if tipo == afecto and not netos and exentos:
        return exento
    if tipo == exento and not exentos and netos:
        return afecto
    return tipo


def _days_since(value: Any) -> float | None:
    try:
        day = datetime.date.fromisoformat(str(value))
    except ValueError:
        return None
    seconds = (datetime.datetime.now() - datetime.datetime.combine(day, datetime.time())).total_seconds()
    return float(int(seconds / 86400 + (0.5 if seconds >= 0 else -0.5)))


def _b64decode(text: str) -> bytes:
    """PHP's lenient ``base64_decode``: characters outside the alphabet are ignored."""
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return b""


def _xml_text(value: Any) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _append(parent: etree._Element, tag: str, value: Any, kind: str) -> None:
    if isinstance(value, tuple):
        for item in value:
            _append(parent, tag, item, kind)
        return
    child = etree.SubElement(parent, _S + tag)
    if is_dataclass(value):
        for sub_tag, sub_value in present_fields(value, kind):
            _append(child, sub_tag, sub_value, kind)
    else:
        child.text = _xml_text(value)


def _to_dict(element: etree._Element) -> Any:
    """An element as LibreDTE's ``XML::toArray`` gives it: texts, objects, lists for repeated tags."""
    if len(element) == 0:
        return element.text or ""
    result: dict = {}
    repeated: set[str] = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue
        tag, value = etree.QName(child).localname, _to_dict(child)
        if tag in repeated:
            result[tag].append(value)
        elif tag in result:
            result[tag] = [result[tag], value]
            repeated.add(tag)
        else:
            result[tag] = value
    return result


def _documento(dte_xml: bytes) -> etree._Element:
    return etree.fromstring(dte_xml, _PARSER).find(_S + "Documento")


def _tipo(dte: int) -> dict:
    name, compra, venta, cedible, operacion = DTE_TIPOS.get(dte, (f"Documento {dte}", False, False, False, None))
    return {"codigo": dte, "tipo": name, "electronico": True, "compra": compra, "venta": venta,
            "categoria": "T", "enviar": True, "cedible": cedible, "operacion": operacion}


def _tipo_nombre(dte: int) -> str:
    return _tipo(dte)["tipo"].lower()


def _rzn_soc_recep(doc: TmpDoc | Issued) -> str | None:
    """The receptor's name inside the document (what LibreDTE shows for 55555555 and 66666666)."""
    if isinstance(doc, TmpDoc):
        return doc.datos["Encabezado"]["Receptor"].get("RznSocRecep")
    return doc.rzn_soc_recep


class LibreDTESimulator(Simulator):
    """LibreDTE's API (Community Edition server), in memory. See the module docstring."""

    name = "libredte"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: bool = True,
                 boleta_track_id: bool = False, factura_track_id: bool = True, reads_until_final: int = 1,
                 exact_codigo: bool = True, validate_schema: bool = True):
        self.seed = seed
        self.validate_schema = validate_schema
        self.boleta_track_id = boleta_track_id
        self.factura_track_id = factura_track_id
        self.reads_until_final = reads_until_final
        self.exact_codigo = exact_codigo
        super().__init__(host, port)

    # --- state -----------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.users: dict[str, User] = {}
        self.companies: dict[int, Company] = {}
        self.folios: dict[tuple[int, int, int], Folios] = {}
        self.contribuyentes: dict[int, dict] = {}  # receptors remembered by emitir (guardarReceptor)
        self.tmps: dict[tuple[int, int, int, str], TmpDoc] = {}
        self.issued: dict[tuple[int, int, int, int], Issued] = {}
        self.emails: list[dict] = []
        self._track_ids = itertools.count(random.randint(3_000_000_000, 3_900_000_000))
        if self.seed:
            self.add_company(DEFAULT_COMPANY)

    def state(self) -> dict:
        issued = Counter(f"{d.emisor}:{d.dte}:{d.certificacion}" for d in self.issued.values())
        return {
            "companies": sorted(self.companies),
            "issued": dict(issued),
            "temporales": len(self.tmps),
            "folios": {f"{r}:{t}:{c}": {"siguiente": f.siguiente, "hasta": f.hasta, "disponibles": f.disponibles}
                       for (r, t, c), f in self.folios.items()},
            "emails": len(self.emails),
        }

    def add_company(self, spec: dict) -> Company:
        """Registers (or replaces) a company, its users and its folios; raises ValueError on bad input."""
        parsed = split_rut(spec.get("rut", ""))
        if parsed is None:
            raise ValueError("rut: se espera un RUT con dígito verificador válido, p. ej. 76192083-9")
        hashes = spec.get("hashes") or ([spec["hash"]] if spec.get("hash") else [])
        if any(not isinstance(h, str) or len(h) != 32 for h in hashes):
            raise ValueError("hash: cada hash de usuario tiene 32 caracteres")
        folios = {int(tipo): value for tipo, value in (spec.get("folios") or {}).items()}
        with self.lock:
            users = [self._user_for_hash(h).id for h in hashes]
            company = Company(
                rut=parsed[0], dv=parsed[1], razon_social=spec.get("razon_social") or f"Empresa {parsed[0]}",
                giro=spec.get("giro") or "Comercio", acteco=int(spec.get("acteco") or 479100),
                direccion=spec.get("direccion") or "Sin dirección", comuna=spec.get("comuna") or "Santiago",
                email=spec.get("email"), users=users,
                certificado=bool(spec.get("certificado", spec.get("certificate", True))),
                tipos={int(t) for t in (spec.get("tipos") or folios or DTE_TIPOS)},
                certificacion=int(bool(spec.get("certificacion", 1))),
                emision_mas_90_dias=bool(spec.get("emision_mas_90_dias", False)),
            )
            self.companies[company.rut] = company
            for tipo, value in folios.items():
                for env in (0, 1):
                    self.folios[(company.rut, tipo, env)] = self._folios(value)
        return company

    def _user_for_hash(self, hash_: str) -> User:
        user = self.users.get(hash_)
        if user is None:
            user_id = len(self.users) + 1
            user = self.users[hash_] = User(id=user_id, usuario=f"usuario{user_id}", hash=hash_)
        return user

    @staticmethod
    def _folios(value: Any) -> Folios:
        if isinstance(value, dict):
            desde = int(value.get("desde", 1))
            return Folios(desde=desde, hasta=int(value["hasta"]), siguiente=int(value.get("siguiente", desde)),
                          vencido=bool(value.get("vencido", False)))
        return Folios(desde=1, hasta=int(value), siguiente=1)

    # --- control ---------------------------------------------------------------------------------

    def control(self, request: Request) -> Response | None:
        if request.method != "POST":
            return None
        body = request.json()
        if not isinstance(body, dict):
            return Response(400, {"error": "expected a JSON object"})
        try:
            if request.path == "/_sim/companies":
                company = self.add_company(body)
                return Response(200, {"rut": company.rut, "dv": company.dv, "tipos": sorted(company.tipos),
                                      "usuarios": company.users})
            if request.path == "/_sim/folios":
                return Response(200, self._control_folios(body))
            if request.path == "/_sim/sii_status":
                return Response(200, self._control_sii_status(body))
        except (KeyError, TypeError, ValueError) as exc:
            return Response(400, {"error": f"{type(exc).__name__}: {exc}"})
        return None

    def _control_folios(self, body: dict) -> dict:
        rut, dte = _rut_number(body["rut"]), int(body["dte"])
        envs = (int(bool(body["certificacion"])),) if "certificacion" in body else (0, 1)
        with self.lock:
            if rut not in self.companies:
                raise ValueError(f"company {rut} is not registered")
            result = {}
            for env in envs:
                current = self.folios.get((rut, dte, env)) or Folios(desde=1, hasta=0, siguiente=1)
                updated = replace(current, **{k: (bool(body[k]) if k == "vencido" else int(body[k]))
                                              for k in ("desde", "hasta", "siguiente", "vencido") if k in body})
                self.folios[(rut, dte, env)] = updated
                result[str(env)] = {"desde": updated.desde, "hasta": updated.hasta, "siguiente": updated.siguiente,
                                    "disponibles": updated.disponibles, "vencido": updated.vencido}
        return {"rut": rut, "dte": dte, "folios": result}

    def _control_sii_status(self, body: dict) -> dict:
        rut, dte, folio = _rut_number(body["emisor"]), int(body["dte"]), int(body["folio"])
        estado, estado_dte = body.get("estado"), body.get("estado_dte")
        if estado is not None and estado not in REVISION:
            raise ValueError(f"estado must be one of {sorted(REVISION)}")
        if estado_dte is not None and estado_dte not in QUERY_EST_DTE:
            raise ValueError(f"estado_dte must be one of {sorted(QUERY_EST_DTE)}")
        with self.lock:
            company = self.companies[rut]
            cert = int(bool(body.get("certificacion", company.certificacion)))
            doc = self.issued[(rut, dte, folio, cert)]
            if estado is not None:
                detalle = body.get("detalle", "DTE aceptado" if estado == "EPR" else None)
                doc.sii_forced = (estado, detalle)
            if estado_dte is not None:
                doc.estado_dte_forced = estado_dte
            return {"emisor": rut, "dte": dte, "folio": folio, "certificacion": cert,
                    "estado": doc.sii_forced, "estado_dte": doc.estado_dte_forced}

    # --- request helpers -------------------------------------------------------------------------

    @staticmethod
    def _data(request: Request) -> Any:
        """The body as the API component parses it (before auth): JSON, or None when empty."""
        if request.header("content-type").lower().startswith("multipart/form-data") or not request.body:
            return None
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            data = None
        if data is None:
            raise HttpError(400, "Los datos enviados a la API no son válidos (no es un JSON válido).")
        return data

    def _user(self, request: Request) -> User:
        """``Controller_Component_Api::getAuthUser`` (sowerphp legacy), for users identified by hash."""
        auth = request.headers.get("authorization")
        if auth is None:
            if request.arg("api_hash"):
                auth = base64.b64encode(f"X:{request.arg('api_hash')}".encode()).decode()
            elif request.arg("api_key"):
                auth = request.arg("api_key")
        if auth is None:
            raise HttpError(401, "Cabecera Authorization no fue recibida.")
        if " " not in auth[1:]:
            user_pass = auth
        else:
            scheme, user_pass = (auth.split(" ") + [""])[:2]
            if scheme == "Bearer":
                user_pass = base64.b64encode(f"X:{user_pass}".encode()).decode()
        parts = _b64decode(user_pass).decode("utf-8", "replace").split(":")
        if len(parts) < 2:
            raise HttpError(401, "Cabecera Authorization es incorrecta.")
        user, password = parts[0], parts[1]
        if password == "X" and len(user) == 32:
            user, password = password, user
        ident = password if user == "X" else user
        with self.lock:
            found = self.users.get(ident) if len(ident) >= 32 else next(
                (u for u in self.users.values() if u.usuario == ident), None)
        if found is None or password != found.hash:  # no passwords here: only the hash authenticates
            raise HttpError(401, "Usuario o contraseña inválida.")
        return found

    def _certificacion(self, company: Company, request: Request) -> int:
        raw = request.arg("_contribuyente_certificacion")
        return company.certificacion if raw is None else int(raw not in ("", "0"))

    def _emisor(self, value: Any, user: User, *, registered_message: str | None = None) -> Company:
        """The company of a path/body emisor, with LibreDTE's 404 and 403 answers."""
        rut = _rut_number(value)
        company = self.companies.get(rut)
        if company is None:
            if registered_message is None and rut in self.contribuyentes:
                raise HttpError(403, "No está autorizado a operar con la empresa solicitada.")
            raise HttpError(404, registered_message or "Emisor no existe.")
        if user.id not in company.users:
            raise HttpError(403, "No está autorizado a operar con la empresa solicitada.")
        return company

    def _issued(self, company: Company, dte: Any, folio: Any, cert: int) -> Issued:
        doc = self.issued.get((company.rut, _php_int(dte), _php_int(folio), cert))
        if doc is None:
            raise HttpError(404, f"No existe el documento solicitado T{dte}F{folio}.")
        return doc

    def _link(self, path: str) -> str:
        return f"{self.url}{path}"

    # --- emitir ----------------------------------------------------------------------------------

    @route("POST", r"/api/dte/documentos/emitir", name="emitir")
    def emitir(self, request: Request) -> Response:
        data = self._data(request)
        user = self._user(request)
        formato = request.arg("formato", "json")
        normalizar = _flag(request, "normalizar", True)
        if formato != "json":
            if isinstance(data, str):
                data = {"datos": data}
            if not isinstance(_dig(data, "datos"), str) or not data["datos"]:
                raise HttpError(400, "Debe enviar los datos codificados en base64 en un string JSON.")
            raise HttpError(400, f"Formato {formato} no soportado por este servidor (simulador: solo json).")
        if not isinstance(data, (dict, list)):
            raise HttpError(400, f"Debe enviar el DTE en formato: {formato}.")
        data = data if isinstance(data, dict) else {}
        rut_emisor = _dig(data, "Encabezado", "Emisor", "RUTEmisor")
        if rut_emisor is None:
            raise HttpError(404, "Debe especificar RUTEmisor en el objeto JSON.")
        with self.lock:
            company = self._emisor(rut_emisor, user, registered_message=NOT_REGISTERED)
            receptor = self._save_receptor(_dig(data, "Encabezado", "Receptor"))
        dte = _merge(self._defaults(company), data) if normalizar else copy.deepcopy(data)
        if not company.emision_mas_90_dias:
            days = _days_since(_dig(dte, "Encabezado", "IdDoc", "FchEmis"))
            if days is None or days > 90:
                raise HttpError(400, "Su configuración no permite emitir con una fecha más antigua que 90 días. Si "
                                     "desea emitir con más de 90 días, debe activar la opción en su configuración.")
        if _php_empty(dte.get("Detalle")):
            raise HttpError(400, "Debe enviar el detalle del documento")
        id_doc = dte["Encabezado"].setdefault("IdDoc", {})
        tipo = id_doc["TipoDTE"] = _tipo_dte(_php_int(id_doc.get("TipoDTE", 0)), dte["Detalle"])
        if tipo not in company.tipos:
            raise HttpError(403, f"No está habilitado en LibreDTE el tipo de documento {_tipo(tipo)['tipo']} "
                                 f"(código DTE #{tipo}).")
        if normalizar and receptor not in GENERIC_RECEPTORS:
            self._fill_receptor(dte["Encabezado"].setdefault("Receptor", {}), receptor)
        extra = self._extra(dte, tipo)
        cert = self._certificacion(company, request)
        self._check_referencias(company, cert, dte.get("Referencia"))
        try:
            doc = document_from_libredte_json(dte)
            doc = normalize(doc) if normalizar else doc
        except DteError as exc:
            raise HttpError(400, f"No fue posible normalizar el DTE: {exc}") from None
        datos = document_to_libredte_json(doc)
        datos_json = json.dumps(datos, ensure_ascii=False, separators=(",", ":"))
        salt = str(int(time.time())) if self.exact_codigo else uuid.uuid4().hex
        codigo = hashlib.md5((hashlib.md5(datos_json.encode()).hexdigest() + salt).encode()).hexdigest()
        fch_emis = doc.encabezado.id_doc.fch_emis
        tmp = TmpDoc(emisor=company.rut, receptor=receptor, dte=doc.tipo_dte, codigo=codigo,
                     fecha=fch_emis.isoformat() if fch_emis else "", total=doc.totales.mnt_total or 0,
                     datos=datos, usuario=user.id, extra=extra)
        with self.lock:
            self.tmps[(tmp.emisor, tmp.receptor, tmp.dte, tmp.codigo)] = tmp
        if _flag(request, "email"):
            self._record_email("dte_tmp", tmp.dte, tmp.codigo, self._emails_of(receptor))
        answer = {"emisor": tmp.emisor, "receptor": tmp.receptor, "dte": tmp.dte, "codigo": tmp.codigo}
        if _flag(request, "links"):
            answer["links"] = self._tmp_links(tmp)
        return Response(200, answer)

    def _defaults(self, company: Company) -> dict:
        today = datetime.date.today().isoformat()
        return {"Encabezado": {
            "IdDoc": {"TipoDTE": 33, "Folio": 0, "FchEmis": today},
            "Emisor": {
                "RUTEmisor": company.rut_dv, "RznSoc": company.razon_social, "GiroEmis": company.giro,
                "Telefono": False, "CorreoEmisor": company.email or False, "Acteco": company.acteco,
                "CdgSIISucur": False, "DirOrigen": company.direccion, "CmnaOrigen": company.comuna,
            },
        }}

    def _save_receptor(self, datos: Any) -> int:
        """``guardarReceptor``: remembers the receptor's data (507 when its RUT is missing or has no DV)."""
        rut_recep = _dig(datos, "RUTRecep")
        if _php_empty(rut_recep):
            raise HttpError(507, "No fue posible guardar los datos del receptor: No se ha indicado el RUT del "
                                 "receptor.")
        parts = str(rut_recep).replace(".", "").split("-")
        if len(parts) < 2:
            raise HttpError(507, "No fue posible guardar los datos del receptor: RUT del receptor inválido.")
        rut = _php_int(parts[0])
        if rut in self.companies:
            return rut  # registered companies are not modified
        record = self.contribuyentes.setdefault(rut, {})
        record["dv"] = parts[1]
        for key, tag, limit in (("razon_social", "RznSocRecep", 100), ("giro", "GiroRecep", 80),
                                ("direccion", "DirRecep", 70)):
            if not _php_empty(datos.get(tag)):
                record[key] = str(datos[tag]).strip()[:limit]
        contacto = datos.get("Contacto")
        if not _php_empty(contacto):
            key, limit = ("email", 80) if "@" in str(contacto)[1:] else ("telefono", 20)
            record[key] = str(contacto).strip()[:limit]
        correo = datos.get("CorreoRecep")
        if not _php_empty(correo) and "@" in str(correo)[1:]:
            record["email"] = str(correo).strip()[:80]
        if not _php_empty(datos.get("CmnaRecep")):
            record["comuna"] = str(datos["CmnaRecep"])
        return rut

    def _contribuyente(self, rut: int) -> dict:
        company = self.companies.get(rut)
        if company is not None:
            return company.contribuyente()
        record = self.contribuyentes.get(rut, {})
        return {"rut": rut, "dv": record.get("dv", rut_dv(rut)), "razon_social": record.get("razon_social"),
                "giro": record.get("giro"), "telefono": record.get("telefono"), "email": record.get("email"),
                "direccion": record.get("direccion"), "comuna": record.get("comuna")}

    def _fill_receptor(self, receptor: dict, rut: int) -> None:
        with self.lock:
            known = self._contribuyente(rut)
        for tag, key in (("RznSocRecep", "razon_social"), ("GiroRecep", "giro"), ("Contacto", "telefono"),
                         ("CorreoRecep", "email"), ("DirRecep", "direccion"), ("CmnaRecep", "comuna")):
            if _php_empty(receptor.get(tag)) and known.get(key):
                receptor[tag] = known[key]

    @staticmethod
    def _extra(dte: dict, tipo: int) -> dict | None:
        """Data kept beside the DTE: fields boletas cannot carry, and ``LibreDTE.extra``."""
        extra: dict = {}
        if tipo in BOLETAS:
            for part, tag in (("IdDoc", "TermPagoGlosa"), ("Emisor", "Acteco"), ("Emisor", "CdgVendedor"),
                              ("Emisor", "Sucursal")):
                node = dte["Encabezado"].get(part)
                if isinstance(node, dict) and not _php_empty(node.get(tag)):
                    extra.setdefault("dte", {}).setdefault("Encabezado", {}).setdefault(part, {})[tag] = node[tag]
                    node[tag] = False
        libredte = dte.pop("LibreDTE", None)
        if isinstance(libredte, dict) and isinstance(libredte.get("extra"), dict):
            extra = _merge(extra, libredte["extra"])
        return extra or None

    def _check_referencias(self, company: Company, cert: int, referencias: Any) -> None:
        for ref in _as_list(referencias):
            if not isinstance(ref, dict):
                continue
            tpo, folio = ref.get("TpoDocRef"), ref.get("FolioRef")
            if _php_empty(tpo) or _php_empty(folio) or not (_is_numeric(tpo) and _is_numeric(folio)):
                continue
            if float(tpo) >= 200:
                continue
            with self.lock:
                original = self.issued.get((company.rut, int(float(tpo)), int(float(folio)), cert))
            if original is None:
                continue
            name = f"Documento T{original.dte}F{original.folio}"
            if original.estado == "R":
                raise HttpError(400, f"{name} está rechazado por el SII. Un documento rechazado no es válido y por eso "
                                     "no debe ser referenciado.")
            if not original.track_id:
                raise HttpError(400, f"{name} no está enviado al SII. Un documento no enviado aun no ha sido validado "
                                     "por el SII y por eso no debe ser referenciado.")
            if not original.revision_estado or original.estado == "N":
                raise HttpError(400, f"{name} fue enviado al SII, pero no se conoce el estado final de validación. "
                                     "Un documento sin estado final podría no ser válido y por eso no debe ser "
                                     "referenciado.")

    # --- generar ---------------------------------------------------------------------------------

    @route("POST", r"/api/dte/documentos/generar", name="generar")
    def generar(self, request: Request) -> Response:
        data = self._data(request)
        user = self._user(request)
        if not isinstance(data, (dict, list)):
            raise HttpError(400, 'Los datos que se envían del documento temporal deben ser un objeto JSON válido y '
                                 'adicionalmente se debe incluir la cabecera "Content-Type: application/json" en la '
                                 'solicitud HTTP.')
        data = data if isinstance(data, dict) else {}
        for col in ("emisor", "receptor", "dte", "codigo"):
            if data.get(col) is None:
                raise HttpError(404, f"Debe especificar: {col}")
        with self.lock:
            company = self._emisor(data["emisor"], user, registered_message=NOT_REGISTERED)
            if _php_int(data["dte"]) not in company.tipos:
                raise HttpError(403, f"No está autorizado a emitir el tipo de documento {data['dte']}.")
            key = (company.rut, _php_int(data["receptor"]), _php_int(data["dte"]), str(data["codigo"]))
            tmp = self.tmps.get(key)
            if tmp is None:
                raise HttpError(404, "No existe el DTE temporal solicitado.")
            if not company.certificado:
                raise HttpError(506, "No existe una firma electrónica asociada a la empresa que se pueda utilizar "
                                     "para generar el DTE. Antes de intentar generar nuevamente el DTE, debe [subir "
                                     "una firma electrónica vigente]"
                                     f"({self._link('/dte/admin/firma_electronicas/agregar')}).")
            cert = self._certificacion(company, request)
            folio, caf = self._take_folio(company, tmp.dte, cert)
        now = datetime.datetime.now().replace(microsecond=0)
        try:  # outside the lock: building and signing is the slow part
            doc = document_from_libredte_json(tmp.datos)
            doc = replace(doc, encabezado=replace(doc.encabezado, id_doc=replace(doc.encabezado.id_doc, folio=folio)))
            dte_xml = build_dte_xml(doc, signer=company.signer(), timestamp=now)
        except DteError as exc:
            raise HttpError(510, self._burnt_message(tmp.dte, folio, caf, cert, str(exc))) from None
        schema_errors = self._schema_errors(dte_xml)
        if schema_errors:
            raise HttpError(510, self._burnt_message(tmp.dte, folio, caf, cert, schema_errors))
        issued = self._issued_row(company, tmp, doc, folio, cert, user, now, dte_xml)
        send = request.arg("retry") != "0"
        if send and (self.boleta_track_id if tmp.dte in BOLETAS else self.factura_track_id):
            issued.track_id = next(self._track_ids)
            if tmp.dte in BOLETAS:
                issued.revision_estado, issued.revision_detalle = "REC", now.strftime("%Y-%m-%d %H:%M:%S")
        with self.lock:
            key_issued = (company.rut, tmp.dte, folio, cert)
            if key_issued in self.issued:
                raise HttpError(409, f"No fue posible generar el documento puesto que ya existía una "
                                     f"{_tipo_nombre(tmp.dte)} de folio {folio} emitida en LibreDTE. Antes de intentar "
                                     f"generar nuevamente el documento [actualice el folio siguiente a utilizar]"
                                     f"({self._link(f'/dte/admin/dte_folios/modificar/{tmp.dte}')}) por uno que sea "
                                     "válido.")
            self.issued[key_issued] = issued
            self.tmps.pop(key, None)
            self.counters["issued"] += 1
            self.counters[f"issued:{company.rut}:{tmp.dte}:{cert}"] += 1
        if _flag(request, "email"):
            self._record_email("dte_emitido", issued.dte, issued.folio, self._emails_of(issued.receptor))
        answer = {
            "emisor": issued.emisor, "dte": issued.dte, "folio": issued.folio, "certificacion": issued.certificacion,
            "tasa": issued.tasa, "fecha": issued.fecha, "sucursal_sii": None,
            "receptor": doc.encabezado.receptor.rut[:-2],  # substr($RUTDoc, 0, -2): a string, in this answer only
            "exento": issued.exento, "neto": issued.neto, "iva": issued.iva, "total": issued.total,
            "usuario": issued.usuario, "xml": False, "track_id": issued.track_id,
            "revision_estado": issued.revision_estado, "revision_detalle": issued.revision_detalle,
            "anulado": 0, "iva_fuera_plazo": 0, "cesion_xml": None, "cesion_track_id": None, "receptor_evento": None,
            "fecha_hora_creacion": issued.creado, "mipyme": None,
            "extra": json.dumps(issued.extra, ensure_ascii=False) if issued.extra else None,
        }
        if _flag(request, "links"):
            answer["links"] = self._issued_links(issued)
        if _flag(request, "getXML"):
            answer["xml"] = base64.b64encode(self._envelope(issued)).decode("ascii")
        return Response(200, answer)

    def _take_folio(self, company: Company, dte: int, cert: int) -> tuple[int, Folios]:
        """``Model_Contribuyente::getFolio``: the next folio (508 when there is none), under ``self.lock``."""
        caf = self.folios.get((company.rut, dte, cert))
        if caf is None or not caf.disponibles or not caf.desde <= caf.siguiente <= caf.hasta:
            raise HttpError(508, f"No se encontró el archivo XML del CAF para {_tipo_nombre(dte)} que contiene el "
                                 "siguiente folio que se debería usar para generar el DTE. Antes de intentar generar "
                                 "nuevamente el DTE, debe [cargar el XML de un CAF con folios, o bien verificar que el "
                                 "folio siguiente sea el correcto]"
                                 f"({self._link('/dte/admin/dte_folios#faq_solicitar_folios')}).")
        folio = caf.siguiente
        caf.siguiente += 1
        if caf.vencido:
            raise HttpError(508, f"El folio para {_tipo_nombre(dte)} número {folio} no puede ser usado porque "
                                 "pertenece a un rango de folios que está vencido. Antes de intentar generar "
                                 f"nuevamente el DTE, debe [anular los folios vencidos]({SII_ANULACION[cert]}), "
                                 "[cargar folios nuevos]"
                                 f"({self._link('/dte/admin/dte_folios/subir_caf')}) y [modificar el siguiente folio]"
                                 f"({self._link(f'/dte/admin/dte_folios/modificar/{dte}')}) para que coincida con el "
                                 "primer folio del nuevo rango cargado. Adicionalmente LibreDTE se ha saltado "
                                 f"automáticamente el folio vencido número {folio} (aún así debe ser anulado).")
        return folio, caf

    def _schema_errors(self, dte_xml: bytes) -> str | None:
        """``EnvioDte::schemaValidate``, with the schemas at hand (none for boletas without ../shared)."""
        if not self.validate_schema:
            return None
        try:
            errors = validate_dte_xml(dte_xml)
        except SchemaUnavailable:
            return None
        if not errors:
            return None
        return ("Error en la estructura del XML EnvioDte, podrá encontrar la estructura correcta en la [documentación "
                f"oficial del SII]({SII_FORMATO}).<br/>&nbsp;&nbsp;&nbsp;&nbsp;- "
                + "<br/>&nbsp;&nbsp;&nbsp;&nbsp;- ".join(str(e) for e in errors[:5]))

    @staticmethod
    def _burnt_message(dte: int, folio: int, caf: Folios, cert: int, error: str) -> str:
        return (f"Ocurrió un error al generar el XML del EnvioDTE del documento. Del rango de folios del {caf.desde} "
                f"al {caf.hasta} de {_tipo_nombre(dte)}, el folio {folio} fue saltado, por lo que quedará sin usar y "
                f"debe ser [anulado en el SII]({SII_ANULACION[cert]}). Debe revisar el error y corregir la situación "
                "que lo ocasionó antes de intentar emitir nuevamente el documento (o podría tener más folios "
                f"saltados).<br/><br/>- {error}")

    @staticmethod
    def _issued_row(company: Company, tmp: TmpDoc, doc: Document, folio: int, cert: int, user: User,
                    now: datetime.datetime, dte_xml: bytes) -> Issued:
        totals = doc.totales
        return Issued(
            emisor=company.rut, dte=tmp.dte, folio=folio, certificacion=cert, tasa=int(totals.tasa_iva or 0),
            fecha=tmp.fecha, receptor=tmp.receptor, rzn_soc_recep=doc.encabezado.receptor.razon_social,
            exento=totals.mnt_exe or None, neto=totals.mnt_neto or None, iva=totals.iva or 0,
            total=totals.mnt_total or 0, usuario=user.id, creado=now.strftime("%Y-%m-%d %H:%M:%S"),
            extra=tmp.extra, xml_z=zlib.compress(dte_xml, 1),
        )

    # --- the stored XML --------------------------------------------------------------------------

    def _envelope(self, doc: Issued) -> bytes:
        """The ``EnvioDTE``/``EnvioBOLETA`` LibreDTE stores: Carátula, the signed DTE, the set's signature."""
        company = self.companies[doc.emisor]
        signer = company.signer()
        dte = etree.fromstring(doc.dte_xml, _PARSER)
        root = etree.Element(_S + ("EnvioBOLETA" if doc.dte in BOLETAS else "EnvioDTE"), nsmap={None: SII_NS},
                             version="1.0")
        set_dte = etree.SubElement(root, _S + "SetDTE", ID="LibreDTE_SetDoc")
        caratula = etree.SubElement(set_dte, _S + "Caratula", version="1.0")
        for tag, text in (
            ("RutEmisor", company.rut_dv), ("RutEnvia", company.firma_run),
            ("RutReceptor", dte.findtext(f"{_S}Documento/{_S}Encabezado/{_S}Receptor/{_S}RUTRecep")),
            ("FchResol", company.resolucion_fecha),
            ("NroResol", "0" if doc.certificacion else str(company.resolucion_numero)),
            ("TmstFirmaEnv", doc.creado.replace(" ", "T")),
        ):
            etree.SubElement(caratula, _S + tag).text = text
        subtotal = etree.SubElement(caratula, _S + "SubTotDTE")
        etree.SubElement(subtotal, _S + "TpoDTE").text = str(doc.dte)
        etree.SubElement(subtotal, _S + "NroDTE").text = "1"
        set_dte.append(dte)
        signature = etree.SubElement(root, _D + "Signature", nsmap={None: DS_NS})
        signed_info = etree.SubElement(signature, _D + "SignedInfo")
        etree.SubElement(signed_info, _D + "CanonicalizationMethod", Algorithm=C14N)
        etree.SubElement(signed_info, _D + "SignatureMethod", Algorithm=RSA_SHA1)
        reference = etree.SubElement(signed_info, _D + "Reference", URI="#LibreDTE_SetDoc")
        etree.SubElement(etree.SubElement(reference, _D + "Transforms"), _D + "Transform", Algorithm=C14N)
        etree.SubElement(reference, _D + "DigestMethod", Algorithm=SHA1)
        etree.SubElement(reference, _D + "DigestValue").text = base64.b64encode(
            hashlib.sha1(canonical(set_dte)).digest()).decode("ascii")
        signature_value = etree.SubElement(signature, _D + "SignatureValue")
        key_info = etree.SubElement(signature, _D + "KeyInfo")
        rsa_key = etree.SubElement(etree.SubElement(key_info, _D + "KeyValue"), _D + "RSAKeyValue")
        etree.SubElement(rsa_key, _D + "Modulus").text = signer.modulus_b64
        etree.SubElement(rsa_key, _D + "Exponent").text = signer.exponent_b64
        x509_data = etree.SubElement(key_info, _D + "X509Data")
        etree.SubElement(x509_data, _D + "X509Certificate").text = signer.certificate_b64
        signature_value.text = signer.sign(canonical(signed_info))
        return etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)

    @staticmethod
    def _preview(tmp: TmpDoc, company: Company) -> bytes:
        """``DteTmp::getEnvioDte()`` with no CAF and no signature: folio 0, no TED, unsigned."""
        doc = document_from_libredte_json(tmp.datos)
        kind = family(doc.tipo_dte)
        root = etree.Element(_S + ("EnvioBOLETA" if tmp.dte in BOLETAS else "EnvioDTE"), nsmap={None: SII_NS},
                             version="1.0")
        set_dte = etree.SubElement(root, _S + "SetDTE", ID="LibreDTE_SetDoc")
        caratula = etree.SubElement(set_dte, _S + "Caratula", version="1.0")
        for tag, text in (("RutEmisor", company.rut_dv), ("RutReceptor", doc.encabezado.receptor.rut),
                          ("FchResol", company.resolucion_fecha), ("NroResol", "0")):
            etree.SubElement(caratula, _S + tag).text = text
        documento = etree.SubElement(etree.SubElement(set_dte, _S + "DTE", version="1.0"), _S + "Documento",
                                     ID=f"LibreDTE_T{tmp.dte}F0")
        for tag, value in present_fields(doc, kind):
            _append(documento, tag, value, kind)
        etree.indent(root, space=" ")
        return etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)

    def _pdf(self, doc: Issued) -> bytes:
        company = self.companies[doc.emisor]
        return render_pdf(doc.dte_xml, certification=bool(doc.certificacion),
                          resolution_number=0 if doc.certificacion else company.resolucion_numero,
                          resolution_year=int(company.resolucion_fecha[:4]))

    # --- SII status ------------------------------------------------------------------------------

    def _sii_revision(self, doc: Issued) -> tuple[str, str | None]:
        if doc.sii_forced is not None:
            return doc.sii_forced
        if doc.sii_reads <= self.reads_until_final:
            return PENDING[min(doc.sii_reads, len(PENDING)) - 1], None
        return "EPR", "DTE aceptado"

    def _actualizar_estado(self, doc: Issued) -> dict:
        """``DteEmitido::actualizarEstado`` (web service), under ``self.lock``."""
        if not doc.track_id:
            raise HttpError(500, "DTE no tiene Track ID, primero debe enviarlo al SII.")
        doc.sii_reads += 1
        code, doc.revision_detalle = self._sii_revision(doc)
        doc.revision_estado = REVISION[code]
        return {"track_id": doc.track_id, "revision_estado": doc.revision_estado,
                "revision_detalle": doc.revision_detalle}

    def _query_est_dte(self, doc: Issued, avanzado: bool) -> dict:
        """The SII's ``QueryEstDte`` answer for a factura or note, under ``self.lock``."""
        if doc.track_id:
            doc.sii_reads += 1
        code = doc.estado_dte_forced
        if code is None:
            code = "DOK" if doc.track_id and self._sii_revision(doc)[0] in REVISION_FINAL else "FAU"
        err_code, glosa = QUERY_EST_DTE[code]
        atencion = f"{random.randint(100000, 999999)} ( {datetime.datetime.now():%Y/%m/%d %H:%M:%S})"
        if avanzado:
            return {"RECIBIDO": "NO" if code[0] == "F" else "SI", "ESTADO": code, "GLOSA": glosa,
                    "NUMATENCION": atencion}
        return {"ESTADO": code, "GLOSA_ESTADO": glosa, "ERR_CODE": err_code, "GLOSA_ERR": glosa,
                "NUM_ATENCION": atencion}

    # --- dte_emitidos ----------------------------------------------------------------------------

    def _issued_links(self, doc: Issued) -> dict:
        return {
            "ver": self._link(f"/dte/dte_emitidos/ver/{doc.dte}/{doc.folio}"),
            "pdf": self._link(f"/dte/dte_emitidos/pdf/{doc.dte}/{doc.folio}/1/{doc.emisor}/{doc.fecha}/{doc.total}"),
            "xml": self._link(f"/dte/dte_emitidos/xml/{doc.dte}/{doc.folio}/{doc.emisor}/{doc.fecha}/{doc.total}"),
            "whatsapp": False,
        }

    @staticmethod
    def _row(doc: Issued) -> dict:
        """The ``dte_emitido`` row as the model loads it from the database."""
        return {
            "emisor": doc.emisor, "dte": doc.dte, "folio": doc.folio, "certificacion": bool(doc.certificacion),
            "tasa": doc.tasa, "fecha": doc.fecha, "sucursal_sii": None, "receptor": doc.receptor,
            "exento": doc.exento, "neto": doc.neto, "iva": doc.iva, "total": doc.total, "usuario": doc.usuario,
            "xml": False, "track_id": doc.track_id, "revision_estado": doc.revision_estado,
            "revision_detalle": doc.revision_detalle, "anulado": False, "iva_fuera_plazo": False,
            "cesion_xml": False, "cesion_track_id": None, "receptor_evento": None,
            "fecha_hora_creacion": doc.creado, "mipyme": None, "extra": doc.extra,
        }

    @route("GET", rf"/api/dte/dte_emitidos/info{_EMITIDO}", name="dte_emitidos_info")
    def dte_emitidos_info(self, request: Request) -> Response:
        self._data(request)
        user = self._user(request)
        p = request.params
        with self.lock:
            company = self._emisor(p["emisor"], user)
            doc = self._issued(company, p["dte"], p["folio"], self._certificacion(company, request))
            answer = self._row(doc)
            receptor = self._contribuyente(doc.receptor)
        documento = _documento(doc.dte_xml)
        if _flag(request, "getDetalle"):
            answer["detalle"] = _as_list(_to_dict(documento).get("Detalle"))
        if _flag(request, "getDatosDte"):
            answer["datos_dte"] = {k: v for k, v in _to_dict(documento).items() if k != "TED"}
        if _flag(request, "getTed"):
            answer["ted"] = base64.b64encode(ted_barcode_bytes(doc.dte_xml)).decode("ascii")
        if _flag(request, "getResolucion"):
            answer["resolucion"] = {"fecha": company.resolucion_fecha,
                                    "numero": 0 if doc.certificacion else company.resolucion_numero}
        if _flag(request, "getEmailEnviados"):
            answer["email_enviados"] = []
        if _flag(request, "getLinks"):
            answer["links"] = self._issued_links(doc)
        if _flag(request, "getReceptor"):
            answer["receptor"] = receptor
        if _flag(request, "getSucursal"):
            answer["sucursal_sii"] = {"codigo": 0, "sucursal": "Casa matriz", "direccion": company.direccion,
                                      "comuna": company.comuna}
        if _flag(request, "getUsuario"):
            answer["usuario"] = next(u.public() for u in self.users.values() if u.id == doc.usuario)
        answer.update(tipo=_tipo(doc.dte), estado=doc.estado, has_xml=True)
        if _flag(request, "getXML"):
            answer["xml"] = base64.b64encode(self._envelope(doc)).decode("ascii")
        return Response(200, answer)

    @route("GET", rf"/api/dte/dte_emitidos/pdf{_EMITIDO}", name="dte_emitidos_pdf")
    def dte_emitidos_pdf(self, request: Request) -> Response:
        return self._send_pdf(request)

    @route("POST", rf"/api/dte/dte_emitidos/pdf{_EMITIDO}", name="dte_emitidos_pdf_post")
    def dte_emitidos_pdf_post(self, request: Request) -> Response:
        return self._send_pdf(request)

    def _send_pdf(self, request: Request) -> Response:
        data = self._data(request)
        user = self._user(request)
        p = request.params
        with self.lock:
            company = self._emisor(p["emisor"], user)
            doc = self._issued(company, p["dte"], p["folio"], self._certificacion(company, request))
        pdf = self._pdf(doc)
        as_base64 = _flag(request, "base64") or (isinstance(data, dict) and not _php_empty(data.get("base64")))
        if as_base64:
            return Response(200, base64.b64encode(pdf).decode("ascii"))
        filename = f"LibreDTE_{doc.emisor}_T{doc.dte}F{doc.folio}.pdf"
        return Response(200, pdf, {"Content-Disposition": f'attachement; filename="{filename}"'}, "application/pdf")

    @route("GET", rf"/api/dte/dte_emitidos/xml{_EMITIDO}", name="dte_emitidos_xml")
    def dte_emitidos_xml(self, request: Request) -> Response:
        self._data(request)
        user = self._user(request)
        p = request.params
        with self.lock:
            company = self._emisor(p["emisor"], user)
            doc = self._issued(company, p["dte"], p["folio"], self._certificacion(company, request))
        return Response(200, base64.b64encode(self._envelope(doc)).decode("ascii"))

    @route("GET", rf"/api/dte/dte_emitidos/estado{_EMITIDO}", name="estado")
    def estado(self, request: Request) -> Response:
        self._data(request)
        user = self._user(request)
        p = request.params
        with self.lock:
            company = self._emisor(p["emisor"], user)
            if not company.certificado:
                raise HttpError(506, "No existe firma asociada.")
            avanzado = _flag(request, "avanzado")
            cert_arg = request.arg("certificacion")
            cert = self._certificacion(company, request) if cert_arg is None else int(bool(_php_int(cert_arg)))
            doc = self._issued(company, p["dte"], p["folio"], cert)
            if doc.dte not in BOLETAS:
                return Response(200, self._query_est_dte(doc, avanzado))
            if avanzado:
                raise HttpError(400, "No es posible obtener el estado avanzado con boletas.")
            return Response(200, self._actualizar_estado(doc))

    @route("GET", rf"/api/dte/dte_emitidos/actualizar_estado{_EMITIDO}", name="actualizar_estado")
    def actualizar_estado(self, request: Request) -> Response:
        self._data(request)
        user = self._user(request)
        p = request.params
        with self.lock:
            company = self._emisor(p["emisor"], user)
            doc = self._issued(company, p["dte"], p["folio"], self._certificacion(company, request))
            return Response(200, self._actualizar_estado(doc))

    @route("POST", rf"/api/dte/dte_emitidos/enviar_email{_EMITIDO}", name="enviar_email")
    def enviar_email(self, request: Request) -> Response:
        data = self._data(request)
        user = self._user(request)
        p = request.params
        with self.lock:
            company = self._emisor(p["emisor"], user)
            doc = self._issued(company, p["dte"], p["folio"], self._certificacion(company, request))
            emails = _as_list(_dig(data, "emails")) or self._emails_of(doc.receptor)
        if not emails:
            raise HttpError(500, "No hay correos electrónicos a los que enviar el documento.")
        self._record_email("dte_emitido", doc.dte, doc.folio, emails)
        return Response(200, emails)

    @route("POST", r"/api/dte/dte_emitidos/consultar", name="consultar")
    def consultar(self, request: Request) -> Response:
        data = self._data(request)
        self._user(request)
        data = data if isinstance(data, dict) else {}
        for key in ("emisor", "dte", "folio", "fecha", "total"):
            if data.get(key) is None:
                raise HttpError(400, f"Falta el índice/variable {key} en el JSON de la consulta realizada.")
        with self.lock:
            company = self.companies.get(_rut_number(data["emisor"]))
            if company is None:
                raise HttpError(404, "Emisor no está registrado en la aplicación.")
            cert = self._certificacion(company, request)
            doc = self.issued.get((company.rut, _php_int(data["dte"]), _php_int(data["folio"]), cert))
            if doc is None:
                ambiente = "certificación" if cert else "producción"
                raise HttpError(404, f"{company.razon_social} no tiene emitido el DTE solicitado en el ambiente de "
                                     f"{ambiente}")
            if doc.fecha != str(data["fecha"]) or doc.total != _php_int(data["total"]):
                raise HttpError(409, "DTE existe, pero fecha y/o monto no coinciden con los registrados.")
            answer = self._row(doc)
        if _flag(request, "getXML"):
            answer["xml"] = base64.b64encode(self._envelope(doc)).decode("ascii")
        return Response(200, answer)

    @route("POST", r"/api/dte/dte_emitidos/buscar/(?P<emisor>[^/]+)(?:/.*)?", name="dte_emitidos_buscar")
    def dte_emitidos_buscar(self, request: Request) -> Response:
        filtros = self._data(request)
        user = self._user(request)
        with self.lock:
            company = self._emisor(request.params["emisor"], user)
            cert = self._certificacion(company, request)
            docs = [d for d in self.issued.values() if d.emisor == company.rut and d.certificacion == cert]
            filtros = self._filters(filtros, "getDocumentosEmitidos")
            rows = [self._search_row(d) for d in self._filter_emitidos(docs, filtros)]
        if not rows:
            raise HttpError(404, "No se encontraron documentos emitidos que coincidan con la búsqueda.")
        return Response(200, rows)

    @staticmethod
    def _filters(filtros: Any, method: str) -> dict:
        if not isinstance(filtros, (dict, list)):
            kind = "null" if filtros is None else type(filtros).__name__
            raise HttpError(500, f"website\\Dte\\Model_Contribuyente::{method}(): Argument #1 ($filtros) must be of "
                                 f"type array, {kind} given")
        return filtros if isinstance(filtros, dict) else {}

    def _razon_social(self, receptor: int, in_document: str | None) -> str | None:
        if receptor in GENERIC_RECEPTORS:
            return in_document
        return self._contribuyente(receptor).get("razon_social")

    def _search_row(self, doc: Issued) -> dict:
        return {
            "dte": doc.dte, "tipo": _tipo(doc.dte)["tipo"], "folio": doc.folio, "receptor": doc.receptor,
            "razon_social": self._razon_social(doc.receptor, doc.rzn_soc_recep), "fecha": doc.fecha,
            "total": doc.total, "estado": doc.revision_estado, "intercambio": None, "sucursal_sii": None,
            "usuario": self._username(doc.usuario), "has_xml": True, "track_id": doc.track_id,
            "fecha_hora_creacion": doc.creado,
        }

    def _username(self, user_id: int) -> str | None:
        return next((u.usuario for u in self.users.values() if u.id == user_id), None)

    def _common_filters(self, rows: list, f: dict) -> list:
        """The filters ``crearFiltrosDocumentosEmitidos`` and ``…Temporales`` share (usuario, receptor, …)."""
        if not _php_empty(f.get("usuario")):
            usuario = f["usuario"]
            if _is_numeric(usuario):
                rows = [r for r in rows if r.usuario == _php_int(usuario)]
            else:
                rows = [r for r in rows if self._username(r.usuario) == usuario]
        razon_social = f.get("razon_social")
        receptor = f.get("receptor")
        if not _php_empty(receptor) and not _is_numeric(receptor):
            if "-" in str(receptor)[1:]:
                receptor = str(receptor).replace(".", "").split("-")[0]
            else:
                razon_social, receptor = receptor, None
        if not _php_empty(receptor):
            text = receptor if isinstance(receptor, str) else None  # $int[0] is null in PHP: no "!" on numbers
            if text is not None and text.startswith("!"):
                rows = [r for r in rows if r.receptor != _php_int(text[1:])]
            else:
                rows = [r for r in rows if r.receptor == _php_int(receptor)]
        if not _php_empty(razon_social):
            needle = str(razon_social).lower()
            rows = [r for r in rows if needle in (self._razon_social(r.receptor, _rzn_soc_recep(r)) or "").lower()]
        for key, test in (("fecha_desde", lambda r, v: r.fecha >= str(v)),
                          ("fecha_hasta", lambda r, v: r.fecha <= str(v)),
                          ("total_desde", lambda r, v: r.total >= _php_int(v)),
                          ("total_hasta", lambda r, v: r.total <= _php_int(v))):
            if not _php_empty(f.get(key)):
                rows = [r for r in rows if test(r, f[key])]
        if f.get("sucursal_sii") is not None and f["sucursal_sii"] != -1 and f["sucursal_sii"] != "-1":
            if not _php_empty(f["sucursal_sii"]):
                rows = []  # no simulated document carries a sucursal
        return rows

    @staticmethod
    def _dte_filter(rows: list, value: Any, *, negation: bool) -> list:
        if isinstance(value, list):
            wanted = {_php_int(v) for v in value}
            return [r for r in rows if r.dte in wanted]
        text = str(value)
        if negation and text.startswith("!"):
            return [r for r in rows if r.dte != _php_int(text[1:])]
        return [r for r in rows if r.dte == _php_int(text)]

    def _filter_emitidos(self, docs: list[Issued], f: dict) -> list[Issued]:
        rows = docs
        for key in ("folio", "fecha", "total"):
            if not _php_empty(f.get(key)):
                rows = [r for r in rows if str(getattr(r, key)) == str(f[key]).strip()]
        if not _php_empty(f.get("dte")):
            rows = self._dte_filter(rows, f["dte"], negation=True)
        if not _php_empty(f.get("periodo")):
            periodo = str(f["periodo"])
            year, month = int(periodo[:4]), int(periodo[4:6])
            last = calendar.monthrange(year, month)[1]
            f = {**f, "fecha_desde": f"{year:04d}-{month:02d}-01", "fecha_hasta": f"{year:04d}-{month:02d}-{last:02d}"}
        rows = self._common_filters(rows, f)
        if f.get("receptor_evento") is not None and not _php_empty(f["receptor_evento"]):
            rows = []  # receptor events (acuse de recibo, reclamo) are not simulated
        if not _php_empty(f.get("cedido")) or not _php_empty(f.get("vendedor")):
            rows = []  # no document is ceded, none carries CdgVendedor
        estado_sii = f.get("estado_sii")
        if estado_sii == "sin_track_id":
            rows = [r for r in rows if not r.track_id]
        elif estado_sii == "null":
            rows = [r for r in rows if r.track_id and not r.revision_estado]
        elif estado_sii == "no_final":
            rows = [r for r in rows if r.estado == "N"]
        elif estado_sii == "rechazados":
            rows = [r for r in rows if r.estado == "R"]
        if isinstance(f.get("xml"), dict) and f["xml"]:
            rows = [r for r in rows if self._xml_matches(r, f["xml"])]
        rows = sorted(rows, key=lambda r: (r.fecha, r.creado, r.folio), reverse=True)
        return self._limit(rows, f)

    @staticmethod
    def _xml_matches(doc: Issued, nodes: dict) -> bool:
        """The ``xml`` filter: ``LOWER(xpath('/EnvioDTE/SetDTE/DTE/*/<node>')) LIKE %value%``."""
        if doc.dte in BOLETAS:
            return False  # stored as EnvioBOLETA: the /EnvioDTE/... path finds nothing
        documento = _documento(doc.dte_xml)
        for node, value in nodes.items():
            path = re.sub(r"[^A-Za-z/]", "", str(node)).strip("/")
            texts = documento.xpath("/".join(f"n:{step}" for step in path.split("/")) + "/text()",
                                    namespaces={"n": SII_NS}) if path else []
            if not texts or str(value).lower() not in ",".join(texts).lower():
                return False
        return True

    @staticmethod
    def _limit(rows: list, f: dict) -> list:
        if f.get("limit") is None:
            return rows
        offset = 0 if _php_empty(f.get("offset")) else _php_int(f["offset"])
        return rows[offset:offset + _php_int(f["limit"])]

    # --- dte_tmps --------------------------------------------------------------------------------

    def _tmp_links(self, tmp: TmpDoc) -> dict:
        return {"ver": self._link(f"/dte/dte_tmps/ver/{tmp.receptor}/{tmp.dte}/{tmp.codigo}"),
                "pdf": self._link(f"/dte/dte_tmps/cotizacion/{tmp.receptor}/{tmp.dte}/{tmp.codigo}/{tmp.emisor}")}

    def _tmp(self, company: Company, p: dict) -> TmpDoc:
        tmp = self.tmps.get((company.rut, _php_int(p["receptor"]), _php_int(p["dte"]), p["codigo"]))
        if tmp is None:
            raise HttpError(404, "No existe el documento temporal solicitado.")
        return tmp

    @route("GET", rf"/api/dte/dte_tmps/info{_TMP}", name="dte_tmps_info")
    def dte_tmps_info(self, request: Request) -> Response:
        self._data(request)
        user = self._user(request)
        with self.lock:
            company = self._emisor(request.params["emisor"], user,
                                   registered_message=NOT_REGISTERED)
            tmp = self._tmp(company, request.params)
            answer = {"emisor": tmp.emisor, "receptor": tmp.receptor, "dte": tmp.dte, "codigo": tmp.codigo,
                      "fecha": tmp.fecha, "total": tmp.total, "datos": None, "sucursal_sii": None,
                      "usuario": tmp.usuario, "extra": tmp.extra}
            if _flag(request, "getDetalle"):
                answer["detalle"] = _as_list(tmp.datos.get("Detalle"))
            if _flag(request, "getEmailEnviados"):
                answer["email_enviados"] = []
            if _flag(request, "getLinks"):
                answer["links"] = self._tmp_links(tmp)
            if _flag(request, "getReceptor"):
                answer["receptor"] = self._contribuyente(tmp.receptor)
            if _flag(request, "getUsuario"):
                answer["usuario"] = next(u.public() for u in self.users.values() if u.id == tmp.usuario)
            answer["tipo"] = _tipo(tmp.dte)
            if _flag(request, "getDatosDte"):
                answer["datos"] = tmp.datos
        return Response(200, answer)

    @route("GET", rf"/api/dte/dte_tmps/xml{_TMP}", name="dte_tmps_xml")
    def dte_tmps_xml(self, request: Request) -> Response:
        self._data(request)  # this resource checks no credentials at all, as in LibreDTE
        p = request.params
        with self.lock:
            company = self.companies.get(_rut_number(p["emisor"]))
            key = (_rut_number(p["emisor"]), _php_int(p["receptor"]), _php_int(p["dte"]), p["codigo"])
            tmp = self.tmps.get(key) if company else None
        if tmp is None:
            raise HttpError(400, "No existe el documento temporal solicitado.")
        return Response(200, base64.b64encode(self._preview(tmp, company)).decode("ascii"))

    @route("GET", rf"/api/dte/dte_tmps/pdf{_TMP}", name="dte_tmps_pdf")
    def dte_tmps_pdf(self, request: Request) -> Response:
        return self._send_tmp_pdf(request)

    @route("POST", rf"/api/dte/dte_tmps/pdf{_TMP}", name="dte_tmps_pdf_post")
    def dte_tmps_pdf_post(self, request: Request) -> Response:
        return self._send_tmp_pdf(request)

    def _send_tmp_pdf(self, request: Request) -> Response:
        data = self._data(request)
        user = self._user(request)
        with self.lock:
            company = self._emisor(request.params["emisor"], user)
            tmp = self._tmp(company, request.params)
        folio = f"{tmp.dte}-{tmp.codigo[:7].upper()}"
        lines = [f"Emisor: {company.razon_social} ({company.rut_dv})", f"Receptor: {tmp.receptor}",
                 f"Fecha: {tmp.fecha}", ""]
        lines += [f"{d.get('NmbItem', '')}  x{d.get('QtyItem', 1)}  ${d.get('MontoItem', 0)}"
                  for d in _as_list(tmp.datos.get("Detalle"))]
        lines += ["", f"Total: ${tmp.total}", "Documento temporal: sin folio, sin timbre, sin validez tributaria."]
        pdf = simple_pdf(f"{_tipo(tmp.dte)['tipo']} {folio} (borrador)", lines)
        if _flag(request, "base64") or (isinstance(data, dict) and not _php_empty(data.get("base64"))):
            return Response(200, base64.b64encode(pdf).decode("ascii"))
        return Response(200, pdf, {"Content-Disposition": f'attachement; filename="LibreDTE_{tmp.emisor}_{folio}.pdf"'},
                        "application/pdf")

    @route("GET", rf"/api/dte/dte_tmps/eliminar{_TMP}", name="dte_tmps_eliminar")
    def dte_tmps_eliminar(self, request: Request) -> Response:
        self._data(request)
        user = self._user(request)
        with self.lock:
            company = self._emisor(request.params["emisor"], user,
                                   registered_message=NOT_REGISTERED)
            tmp = self._tmp(company, request.params)
            if tmp.dte not in company.tipos:
                raise HttpError(403, f"No está autorizado a eliminar el tipo de documento {tmp.dte}")
            del self.tmps[(tmp.emisor, tmp.receptor, tmp.dte, tmp.codigo)]
        return Response(200, True)

    @route("POST", r"/api/dte/dte_tmps/buscar/(?P<emisor>[^/]+)(?:/.*)?", name="dte_tmps_buscar")
    def dte_tmps_buscar(self, request: Request) -> Response:
        filtros = self._data(request)
        user = self._user(request)
        with self.lock:
            company = self._emisor(request.params["emisor"], user)
            f = self._filters(filtros, "getDocumentosTemporales")
            rows = [t for t in self.tmps.values() if t.emisor == company.rut]
            for key in ("codigo", "fecha", "total"):
                if not _php_empty(f.get(key)):
                    rows = [r for r in rows if str(getattr(r, key)) == str(f[key])]
            if not _php_empty(f.get("folio")):
                parts = str(f["folio"]).replace("'", "-").split("-")
                if len(parts) < 2:
                    raise HttpError(500, "Folio del DTE temporal debe ser en formato DTE-CODIGO_7.")
                rows = [r for r in rows if r.dte == _php_int(parts[0]) and r.codigo[:7] == parts[1].lower()]
            if not _php_empty(f.get("dte")):
                rows = self._dte_filter(rows, f["dte"], negation=False)
            rows = self._common_filters(rows, f)
            rows.sort(key=lambda r: r.codigo, reverse=True)
            rows.sort(key=lambda r: _tipo(r.dte)["tipo"])
            rows.sort(key=lambda r: r.fecha, reverse=True)
            answer = [{
                "dte": r.dte, "tipo": _tipo(r.dte)["tipo"], "codigo": r.codigo,
                "folio": f"{r.dte}-{r.codigo[:7].upper()}", "receptor": r.receptor,
                "razon_social": self._razon_social(r.receptor, _rzn_soc_recep(r)),
                "fecha": r.fecha, "total": r.total, "sucursal_sii": None, "usuario": self._username(r.usuario),
            } for r in self._limit(rows, f)]
        return Response(200, answer)

    # --- public links, e-mail, unknown resources -------------------------------------------------

    @route("GET", r"/dte/dte_emitidos/pdf/(?P<dte>\d+)/(?P<folio>\d+)/(?P<cedible>\d+)/(?P<emisor>\d+)"
                  r"/(?P<fecha>[\d-]+)/(?P<total>\d+)", name="public_pdf")
    def public_pdf(self, request: Request) -> Response:
        doc = self._public_document(request)
        return Response(200, self._pdf(doc), {"Content-Disposition": f'attachement; filename="LibreDTE_{doc.emisor}_'
                                                                     f'T{doc.dte}F{doc.folio}.pdf"'}, "application/pdf")

    @route("GET", r"/dte/dte_emitidos/xml/(?P<dte>\d+)/(?P<folio>\d+)/(?P<emisor>\d+)/(?P<fecha>[\d-]+)/(?P<total>\d+)",
           name="public_xml")
    def public_xml(self, request: Request) -> Response:
        doc = self._public_document(request)
        return Response(200, self._envelope(doc), {"Content-Disposition": f'attachement; filename="{doc.emisor}_'
                                                                          f'{doc.dte}_{doc.folio}.xml"'},
                        "application/xml")

    def _public_document(self, request: Request) -> Issued:
        """The documents' public links: no credentials, the date and total must match."""
        p = request.params
        with self.lock:
            company = self.companies.get(int(p["emisor"]))
            doc = self.issued.get((company.rut, int(p["dte"]), int(p["folio"]), self._certificacion(company, request))
                                  ) if company else None
        if doc is None:
            raise HttpError(404, f"No existe el DTE T{p['dte']}F{p['folio']} solicitado.")
        if doc.fecha != p["fecha"] or doc.total != int(p["total"]):
            raise HttpError(409, "DTE existe, pero fecha y/o monto no coinciden con los registrados.")
        return doc

    def _emails_of(self, receptor: int) -> list[str]:
        with self.lock:
            email = self._contribuyente(receptor).get("email")
        return [email] if email else []

    def _record_email(self, kind: str, dte: int, ident: Any, emails: list) -> None:
        with self.lock:
            self.emails.append({"tipo": kind, "dte": dte, "documento": ident, "emails": emails})

    @route("GET", r"/api/.*", name="fallback")
    def zz_fallback_get(self, request: Request) -> Response:
        return self._unknown_resource(request)

    @route("POST", r"/api/.*", name="fallback")
    def zz_fallback_post(self, request: Request) -> Response:
        return self._unknown_resource(request)

    @staticmethod
    def _unknown_resource(request: Request) -> Response:
        """The API component's answers for a resource without that method (405) or its arguments (406)."""
        parts = request.path.strip("/").split("/")  # api, module, controller, resource, args…
        if len(parts) < 4 or parts[1] != "dte":
            raise HttpError(404, f"Recurso {request.path} no encontrado.")
        controller, resource, args = parts[2], parts[3], parts[4:]
        known = next((v for (c, r), v in API_RESOURCES.items() if c == controller), None)
        if known is None:
            raise HttpError(404, f"Recurso {request.path} no encontrado.")
        php_class = f"website\\Dte\\Controller_{known[0]}"
        methods = API_RESOURCES.get((controller, resource), (known[0], {}))[1]
        if request.method not in methods:
            raise HttpError(405, f"Recurso {resource} no permite método {request.method} en la API {php_class}.")
        params = methods[request.method]
        if len(args) < len(params):
            raise HttpError(406, f"Argumentos insuficientes para el recurso {resource}({', '.join(params)}) a través "
                                 f"de {request.method} en la API {php_class}.")
        raise HttpError(404, f"Recurso {request.path} no encontrado.")
