"""BHEXPRESS: boletas de honorarios electrónicas (BHE) through BHExpress's API.

Sources: the official clients ``BHExpress/bhexpress-api-client-php`` @ 3345282 and ``…-python`` @ 305bfed
(no public API reference exists; see ``client.py``), API Gateway's ``apigatewaycl/api_client/sii/bhe.py``
(who withholds, void causes), LibreDTE's ``Honorarios`` module (retention rates), and
reference/biller-bhexpress.md.

What it issues. A BHE is not a DTE: the product records it as ``BOLETA_HONORARIOS`` (900), its own code.
The rules still decide 39/41/33/34; this biller takes those sales (setting ``sales``: all four, the
default, or only the exempt ones, 41 and 34, for merchants whose rules mark honorarios as exempt) and
issues one BHE for each. Credit and debit notes (61, 56) are refused at ``check``: a BHE is never
corrected by a note, it is voided (``void``). How lines, discounts, shipping and the retention become
the BHE, and what "the total equals what was paid" means with retention, is in ``mapping.py``.

Who withholds (``TipoRetencion``, setting ``retention``): ``emisor`` (2, the default: store buyers are
mostly final consumers, who cannot withhold; the buyer pays the gross), ``receptor`` (1: the buyer pays
the líquido and the retention to the SII), or ``by_document`` (the receptor on factura sales, 33/34, a
business that must withhold; the emisor on boletas).

The flow, and what we assumed where the clients are silent:

- ``check`` builds the body of ``POST /bhe/emitir`` offline (it runs inside the ingest transaction): the
  retention uses our table of rates (15.25 % in 2026) and ``round_half_up(bruto × tasa)``, which is
  also how LibreDTE's BHE form computes it. BHExpress's own rounding is not documented: when it
  differs on a receptor-withheld BHE the líquido will not be what was paid and ``verify`` fails it as a
  mismatch (the boleta exists; a person voids or accepts it).
- ``FchEmis`` is the day of the attempt; if the year's rate changed since ``check`` the BHE is prepared
  again for that day.
- The answer's shape is not documented. We read the number from ``numero`` (the clients read
  ``results[0]['numero']`` from lists) or ``Encabezado.IdDoc.Folio``, and the amounts from ``bruto``/
  ``retencion``/``liquido`` or ``Encabezado.Totales.MntBruto``/``MntRetencion``/``MntNeto`` (the names the
  SII's BHE answers use, as LibreDTE reads them); missing amounts are taken from what we sent. An
  answer without a number leaves the outcome unknown (transient: the boleta is looked up first).
- Reconciliation. Our reference travels as the ``CdgItem`` of the first line (the official examples send
  free codes there, e.g. "CASO2"); setting ``reference_in_code`` turns that off, and then an unknown
  outcome is held for a person (``UnsupportedFeature``). Before each ``emitir`` the attempt's checkpoint
  records the date, receptor and amounts sent, so a lookup lists ``GET /bhe/boletas`` for that date and
  receptor (``fecha_desde``/``fecha_hasta``/``receptor_codigo``), skips boletas whose gross differs,
  reads each remaining one (``GET /bhe/boletas/{numero}``) and matches our code in its ``Detalle``. No
  recorded send means nothing was sent (``None``). A candidate whose detail shows no line codes cannot
  be told apart, and several matches cannot be chosen between: both hold the emission for a person
  (``BillerNeedsPerson``), never a blind re-send. A retry whose checkpoint shows an earlier send looks
  the boleta up before sending again.
- PDF by number (``GET /bhe/pdf/{numero}``). Test connection lists this month's boletas.
- ``void(folio=, causa=)`` posts ``/bhe/anular/{numero}`` with ``causa`` 1 (no pago), 2 (no prestación) or
  3 (error de digitación). The pipeline voids a BHE on a full refund or a cancellation of its order with
  the connection's ``void_cause`` (default 2: a store's refund means the service was not rendered); a
  partial refund cannot be expressed on a BHE and is left on the order for a person. Voiding twice is not
  an error: a refusal is checked against the boleta's ``anulada`` flag (the field name is an assumption)
  and an already-voided boleta counts as done.
"""
from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.spec import BOOL, CHOICE, INT, SECRET_TEXT, URL, Field

from ..base import (
    BillerAdapter,
    BillerNeedsPerson,
    Capability,
    CheckItem,
    Checkpoint,
    ConnectionReport,
    IssuedDocument,
    IssueRequest,
    RejectedBillerError,
    TransientBillerError,
    UnsupportedFeature,
)
from ..dte.display import format_clp
from ..dte.sanitize import clean_rut
from ..dte.types import BOLETA_EXENTA, BOLETA_HONORARIOS, FACTURA_EXENTA, SALE_TYPES
from .client import DEFAULT_URL, BHExpressClient
from .mapping import RETENCION_RECEPTOR, prepare_bhe
from .retention import periodo, retention_rate

VOID_NO_PAGO = 1
VOID_NO_PRESTACION = 2
VOID_ERROR_DIGITACION = 3
VOID_CAUSES = {VOID_NO_PAGO: _("no pago"), VOID_NO_PRESTACION: _("no prestación"), VOID_ERROR_DIGITACION: _("error de digitación")}
# Pages of a day's boletas for one receptor read while reconciling, before handing it to a person.
LOOKUP_MAX_PAGES = 10


@dataclass(frozen=True)
class BhePayload:
    """What ``send`` posts, and what the checkpoint records before posting it."""

    body: dict
    totals: dict

    @property
    def sent(self) -> dict:
        id_doc = self.body["Encabezado"]["IdDoc"]
        return {"fecha": id_doc["FchEmis"], "tipo_retencion": id_doc["TipoRetencion"],
                "rut_receptor": self.body["Encabezado"]["Receptor"]["RUTRecep"], "totals": self.totals}


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return int(number) if number.is_finite() and number == number.to_integral_value() else None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _numero(data: dict) -> int | None:
    return _int(data.get("numero")) or _int(_dig(data, "Encabezado", "IdDoc", "Folio"))


def _amount(data: dict, flat: str, sii: str) -> int | None:
    value = _int(data.get(flat))
    return value if value is not None else _int(_dig(data, "Encabezado", "Totales", sii))


def _line_codes(data: dict) -> list[str]:
    lines = data.get("Detalle")
    lines = [lines] if isinstance(lines, dict) else lines if isinstance(lines, list) else []
    codes = []
    for line in lines:
        code = line.get("CdgItem") if isinstance(line, dict) else None
        code = code.get("VlrCodigo") if isinstance(code, dict) else code
        if code not in (None, ""):
            codes.append(str(code))
    return codes


class BHExpressAdapter(BillerAdapter):
    provider = "bhexpress"
    label = _("BHEXPRESS (boletas de honorarios)")
    document_types = frozenset(SALE_TYPES)
    capabilities = frozenset({Capability.LOOKUP_BY_REFERENCE, Capability.FETCH_PDF, Capability.TEST_CONNECTION, Capability.VOID})
    credentials_spec = (
        Field("api_token", _("Token de la API de BHExpress"), SECRET_TEXT,
              help_text=_("En BHExpress: Perfil de usuario → Token. El RUT emisor es el de la conexión.")),
    )
    config_spec = (
        Field("base_url", _("URL de la API de BHExpress"), URL, required=False, default=DEFAULT_URL),
        Field("retention", _("Quién retiene el impuesto de la boleta"), CHOICE, required=False, default="emisor", choices=(
            ("emisor", _("El emisor: el comprador paga el bruto y el profesional entera la retención")),
            ("receptor", _("El receptor: el comprador paga el líquido y entera la retención")),
            ("by_document", _("El receptor en ventas con factura (33, 34); el emisor en boletas (39, 41)")),
        )),
        Field("sales", _("Ventas que se emiten como boleta de honorarios"), CHOICE, required=False, default="all", choices=(
            ("all", _("Todas (39, 41, 33 y 34)")),
            ("exempt", _("Solo las exentas (41 y 34)")),
        )),
        Field("max_lines", _("Máximo de líneas por boleta"), INT, required=False, default=4, minimum=1, maximum=100,
              help_text=_("Las líneas que sobran se agrupan en una sola: «Otros N ítems: …».")),
        Field("void_cause", _("Causa al anular una boleta por devolución total o anulación del pedido"), CHOICE, required=False,
              default=str(VOID_NO_PRESTACION), choices=(
                  (str(VOID_NO_PRESTACION), _("No se prestó el servicio")),
                  (str(VOID_NO_PAGO), _("No se pagó")),
                  (str(VOID_ERROR_DIGITACION), _("Error de digitación")),
              )),
        Field("reference_in_code", _("Enviar nuestra referencia como código de la primera línea"), BOOL, required=False, default=True,
              help_text=_("Permite encontrar la boleta cuando se pierde la respuesta; sin ella, esos casos quedan para revisión.")),
    )

    def _setting(self, name: str) -> Any:
        value = (self.connection.config or {}).get(name)
        if value in (None, ""):
            return next(field.default for field in self.config_spec if field.name == name)
        return value

    def client(self) -> BHExpressClient:
        return BHExpressClient.for_connection(self.connection)

    def accepted_types(self) -> frozenset[int]:
        return frozenset({BOLETA_EXENTA, FACTURA_EXENTA}) if self._setting("sales") == "exempt" else self.document_types

    # --- 1. check ------------------------------------------------------------------------------

    def check(self, sale, *, fecha: datetime.date) -> dict:
        return prepare_bhe(
            sale, fecha=fecha, emisor_rut=self.connection.emisor_rut, retention_by=self._setting("retention"),
            accepted_types=self.accepted_types(), max_lines=int(self._setting("max_lines")), label=self.display_name(),
        )

    def expected(self, prepared: dict) -> tuple[int, int]:
        return BOLETA_HONORARIOS, int(prepared["paid_total"])

    # --- 2. issue ------------------------------------------------------------------------------

    def build_payload(self, request: IssueRequest, prepared: dict) -> BhePayload:
        if retention_rate(request.fecha) != Decimal(prepared["tasa_retencion"]):
            # A new year's rate since the order was checked: the gross of a receptor-withheld BHE changes.
            prepared = self.check(request.sale, fecha=request.fecha)
        body = copy.deepcopy(prepared["bhe"])
        body["Encabezado"]["IdDoc"]["FchEmis"] = request.fecha.isoformat()
        if self._setting("reference_in_code"):
            body["Detalle"][0] = {"CdgItem": request.reference, **body["Detalle"][0]}
        return BhePayload(body=body, totals=prepared["totals"])

    def send(self, payload: BhePayload, request: IssueRequest, checkpoint: Checkpoint) -> IssuedDocument:
        if checkpoint.get("bhe"):
            # An earlier attempt of this emission posted a boleta: it may exist already.
            found = self.find_by_reference(request.reference, checkpoint)
            if found is not None:
                return found
        client = self.client()
        checkpoint.save(bhe=payload.sent)
        try:
            answer = client.emitir(payload.body)
        except RejectedBillerError as exc:
            if exc.status in (401, 403) or exc.status is None:
                raise
            raise RejectedBillerError(
                gettext("BHExpress rechazó la boleta de honorarios (HTTP %(status)s): %(detail)s") % {
                    "status": exc.status, "detail": exc.body or exc.message},
                status=exc.status, body=exc.body,
            ) from exc
        return self._document(answer, payload.sent, request.fecha)

    def _document(self, data: dict, sent: dict, fecha: datetime.date) -> IssuedDocument:
        """The BHE BHExpress answered (``emitir`` or a detail), with what we sent for what it leaves out."""
        numero = _numero(data)
        if not numero:
            raise TransientBillerError(
                gettext("BHExpress respondió sin el número de la boleta de honorarios; se buscará antes de reintentar."))
        ours = sent["totals"]
        bruto = _amount(data, "bruto", "MntBruto")
        retencion = _amount(data, "retencion", "MntRetencion")
        liquido = _amount(data, "liquido", "MntNeto")
        bruto = ours["MntBruto"] if bruto is None else bruto
        retencion = ours["MntRetencion"] if retencion is None else retencion
        liquido = bruto - retencion if liquido is None else liquido
        tipo = _int(data.get("tipo_retencion")) or _int(_dig(data, "Encabezado", "IdDoc", "TipoRetencion")) or sent["tipo_retencion"]
        issued_on = data.get("fecha") or _dig(data, "Encabezado", "IdDoc", "FchEmis") or sent.get("fecha")
        try:
            fecha = datetime.date.fromisoformat(str(issued_on)[:10])
        except ValueError:
            pass
        return IssuedDocument(
            tipo_dte=BOLETA_HONORARIOS, folio=numero, fecha=fecha,
            totals={"MntBruto": bruto, "MntRetencion": retencion, "MntNeto": liquido,
                    "MntTotal": liquido if tipo == RETENCION_RECEPTOR else bruto},
            biller_document_id=f"bhe-{numero}", raw=data,
        )

    # --- 3. reconcile, documents, void, connection -----------------------------------------------

    def find_by_reference(self, reference: str, checkpoint: Checkpoint) -> IssuedDocument | None:
        if not self._setting("reference_in_code"):
            raise UnsupportedFeature(
                gettext("%(biller)s no puede buscar la boleta: la conexión no envía nuestra referencia como código de línea.") % {
                    "biller": self.display_name()}
            )
        sent = checkpoint.get("bhe")
        if not sent:
            return None  # what was sent is recorded before every emitir: nothing was sent
        return self._lookup(reference, sent)

    def _lookup(self, reference: str, sent: dict) -> IssuedDocument | None:
        client = self.client()
        fecha, rut, bruto = sent["fecha"], sent["rut_receptor"], sent["totals"]["MntBruto"]
        filters = {"fecha_desde": fecha, "fecha_hasta": fecha, "receptor_codigo": rut.split("-")[0]}
        matches, undecided = [], []
        for page in range(1, LOOKUP_MAX_PAGES + 1):
            try:
                listing = client.boletas({**filters, "page": page})
            except RejectedBillerError as exc:
                if page > 1 and exc.status == 404:
                    break  # past the last page of a list that does not say "next"
                raise
            for row in listing["results"]:
                numero = _numero(row) if isinstance(row, dict) else None
                if numero is None or _amount(row, "bruto", "MntBruto") not in (None, bruto):
                    continue
                detail = client.boleta(numero)
                if _amount(detail, "bruto", "MntBruto") not in (None, bruto):
                    continue
                codes = _line_codes(detail)
                if reference in codes:
                    matches.append(detail)
                elif not codes:
                    undecided.append(numero)
            if not listing["results"] or not listing.get("next", True):
                break
        else:
            raise BillerNeedsPerson(
                gettext("BHExpress tiene más de %(pages)s páginas de boletas del %(date)s para el receptor %(rut)s: revise allí si "
                        "se emitió la boleta %(reference)s por %(total)s y reintente u omita la orden.") % {
                    "pages": LOOKUP_MAX_PAGES, "date": fecha, "rut": rut, "reference": reference, "total": format_clp(bruto)}
            )
        if len(matches) > 1:
            numbers = ", ".join(str(_numero(m)) for m in matches)
            raise BillerNeedsPerson(
                gettext("BHExpress tiene %(n)s boletas de honorarios con nuestra referencia %(reference)s (N° %(numbers)s): "
                        "revise cuál corresponde a la orden y anule las demás allí.") % {
                    "n": len(matches), "reference": reference, "numbers": numbers}
            )
        if matches:
            return self._document(matches[0], sent, datetime.date.fromisoformat(fecha))
        if undecided:
            raise BillerNeedsPerson(
                gettext("No se sabe si la boleta de honorarios se emitió: BHExpress tiene boletas del %(date)s al receptor %(rut)s "
                        "por %(total)s (N° %(numbers)s) que no muestran códigos de línea, así que no se puede saber si alguna es "
                        "la de esta orden. Revise en BHExpress y reintente u omita la orden.") % {
                    "date": fecha, "rut": rut, "total": format_clp(bruto), "numbers": ", ".join(map(str, undecided))}
            )
        return None

    def fetch_pdf(self, *, tipo_dte: int, folio: int) -> bytes:
        if tipo_dte != BOLETA_HONORARIOS:
            raise UnsupportedFeature(gettext("%(biller)s solo emite boletas de honorarios; no tiene el documento %(tipo)s.") % {
                "biller": self.display_name(), "tipo": tipo_dte})
        return self.client().pdf(folio)

    def void(self, *, tipo_dte: int = BOLETA_HONORARIOS, folio: int, causa: int | None = None) -> None:
        """Voids (anula) the BHE N° ``folio`` with ``causa`` (``VOID_CAUSES``; by default the connection's
        ``void_cause``). Safe to repeat: a boleta voided already counts as done. Raises
        ``RejectedBillerError`` / ``TransientBillerError``."""
        if tipo_dte != BOLETA_HONORARIOS:
            raise UnsupportedFeature(gettext("%(biller)s solo anula boletas de honorarios; no el documento %(tipo)s.") % {
                "biller": self.display_name(), "tipo": tipo_dte})
        if causa is None:
            causa = int(self._setting("void_cause"))
        if causa not in VOID_CAUSES:
            raise ValueError(f"causa de anulación {causa!r}: debe ser una de {sorted(VOID_CAUSES)}")
        client = self.client()
        try:
            client.anular(folio, causa)
        except RejectedBillerError as exc:
            if exc.status in (400, 409, 422) and client.boleta(folio).get("anulada") is True:
                return
            raise RejectedBillerError(
                gettext("BHExpress no anuló la boleta de honorarios N° %(folio)s (%(cause)s): %(error)s") % {
                    "folio": folio, "cause": VOID_CAUSES[causa], "error": exc.message},
                status=exc.status, body=exc.body,
            ) from exc

    def test_connection(self) -> ConnectionReport:
        today = timezone.localdate()
        rut = clean_rut(self.connection.emisor_rut)
        items = [CheckItem(gettext("RUT emisor"), rut is not None, f"{rut}." if rut else gettext("%(rut)s no es un RUT válido.") % {
            "rut": repr(self.connection.emisor_rut)})]
        token = gettext("Token de la API")
        try:
            listing = self.client().boletas({"periodo": periodo(today)})
            count = _int(listing.get("count"))
            count = len(listing["results"]) if count is None else count
            items.append(CheckItem(token, True, gettext(
                "BHExpress aceptó el token para el emisor %(rut)s: %(count)s boleta(s) de honorarios en %(month)s.") % {
                "rut": self.connection.emisor_rut, "count": count, "month": f"{today:%m/%Y}"}))
        except RejectedBillerError as exc:
            items.append(CheckItem(token, False, exc.message))
        except TransientBillerError as exc:
            items.append(CheckItem(token, None, gettext("No se pudo comprobar ahora: %(error)s") % {"error": exc.message}))
        who = {"emisor": gettext("el emisor"), "receptor": gettext("el receptor"),
               "by_document": gettext("el receptor en facturas y el emisor en boletas")}
        withholder = who[self._setting("retention")]
        items.append(CheckItem(gettext("Retención"), True, gettext("%(rate)s %% en %(year)s; la retiene %(who)s.") % {
            "rate": retention_rate(today), "year": today.year, "who": withholder}))
        return ConnectionReport(tuple(items))
