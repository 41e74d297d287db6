"""BHExpress simulator: boletas de honorarios electrónicas (BHE) over ``/api/v1/bhe/...``.

There is no public API reference (developers.bhexpress.cl was not found); this follows the official
clients, ``BHExpress/bhexpress-api-client-python`` @ 305bfed and ``…-php`` @ 3345282 (and its 2021
history), and reference/biller-bhexpress.md:

* Every request carries ``Authorization: Token <token>`` and ``X-Bhexpress-Emisor: <RUT with DV>``.
* Routes: ``POST /bhe/emitir``, ``GET /bhe/boletas`` (filters ``periodo`` AAAAMM, ``fecha_desde``,
  ``fecha_hasta``, ``receptor_codigo``, ``page``), ``GET /bhe/boletas/{numero}``, ``GET /bhe/pdf/{numero}``
  (binary), ``POST /bhe/email/{numero}`` ``{"destinatario": {"email": …}}``, ``POST /bhe/anular/{numero}``
  ``{"causa": 1|2|3}`` (no pago, no prestación, error de digitación), ``GET /bhe/liquido/{bruto}/{periodo}``,
  ``GET /bhe/bruto/{liquido}/{periodo}``, ``GET /bhe/receptores`` and ``/bhe/receptores/{rut}[/{codigo}]``.
* The body of ``emitir`` is SII-shaped: ``Encabezado.IdDoc.FchEmis/TipoRetencion``, ``Emisor.RUTEmisor``,
  ``Receptor.RUTRecep/RznSocRecep/DirRecep/CmnaRecep`` and ``Detalle`` lines with ``MontoItem`` or
  ``QtyItem`` × ``PrcItem`` (then ``MontoItem`` is ignored) with ``DescuentoPct`` or ``DescuentoMonto``.
  Amounts are gross honorarios; the retention is the period's rate (Ley 21.133, 15.25 % in 2026)
  rounded half up, whoever withholds it (``TipoRetencion`` 1 receptor, 2 emisor).
* Lists are paginated with ``results`` (the clients read ``results[0]['numero']`` and ``results[0]['rut']``).
* Errors: the clients read ``message`` (then ``exception``) and ``code`` from a JSON object.

Guesses, where the clients show nothing (each one a choice an adapter should not depend on blindly):

* Error bodies are ``{"message": "...", "code": <status>}``: missing or wrong token 401, missing emisor
  header 400, an emisor the token may not use 403, a boleta that does not exist 404, invalid data 400,
  voiding a voided boleta 409. Messages are in Spanish.
* A boleta (``emitir``, detail, ``anular``) answers ``numero`` (per emisor, from 1), flat amounts
  (``bruto``, ``retencion``, ``liquido``, ``tasa_retencion``), ``anulada``/``anulacion``, and the same data
  SII-shaped (``Encabezado.IdDoc.Folio``/``CodigoBarras``, ``Encabezado.Totales.MntBruto``/
  ``MntRetencion``/``MntNeto``, as LibreDTE reads SII boletas de terceros) with the normalised ``Detalle``.
  List rows are the flat part only. Pages hold ``page_size`` rows (20) with ``count``/``next``/``previous``.
* ``TipoRetencion`` must be 1 or 2 (0 is unconfirmed); the receptor needs a valid RUT and a name;
  ``FchEmis`` defaults to today and may not be in the future; a ``RUTEmisor`` must match the header.
* ``bruto``/``liquido``: retention = round_half_up(bruto × rate); the gross for a net amount is the
  smallest gross whose net reaches it (equal to it whenever one exists).
* ``email`` answers ``{"numero", "destinatario", "enviado": true}`` and records the address (nothing is
  sent); the PDF is a plain one-page document.

Control routes: ``POST /_sim/emisores`` ``{"rut", "razon_social", "token" or "tokens", "numero_siguiente"}``
registers an emisor and the tokens allowed to use it; the constructor seeds ``DEFAULT_EMISOR`` with
``DEFAULT_TOKEN``.
"""
from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from .base import HttpError, Request, Response, Simulator, route
from .biller_helpers import simple_pdf, split_rut

DEFAULT_TOKEN = "simuladorbhexpress00000000000001"
DEFAULT_EMISOR = "12345678-5"
# BHE retention rates (Ley 21.133) by the first period (AAAAMM) each applies; APP BoletaTerceros.php.
RETENTION_RATES = (
    (201608, Decimal("10.00")), (202001, Decimal("10.75")), (202101, Decimal("11.50")),
    (202201, Decimal("12.25")), (202301, Decimal("13.00")), (202401, Decimal("13.75")),
    (202501, Decimal("14.50")), (202601, Decimal("15.25")), (202701, Decimal("16.00")),
    (202801, Decimal("17.00")),
)
CAUSAS = {1: "No pago", 2: "No prestación", 3: "Error de digitación"}
_HUNDRED = Decimal(100)


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def retention_rate(periodo: int) -> Decimal:
    """The retention percentage for a period AAAAMM; ValueError before the table starts."""
    rates = [rate for start, rate in RETENTION_RATES if periodo >= start]
    if not rates or not 1 <= periodo % 100 <= 12:
        raise ValueError(periodo)
    return rates[-1]


def retention(bruto: int, rate: Decimal) -> int:
    return _round(Decimal(bruto) * rate / _HUNDRED)


def bruto_for(liquido: int, rate: Decimal) -> int:
    """The smallest gross whose net (gross − retention) reaches ``liquido``."""
    bruto = max(0, int(Decimal(liquido) / (1 - rate / _HUNDRED)) - 2)
    while bruto - retention(bruto, rate) < liquido:
        bruto += 1
    return bruto


def _error(status: int, message: str) -> HttpError:
    return HttpError(status, {"message": message, "code": status})


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool):
        raise _error(400, f"{where}: se espera un número.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _error(400, f"{where}: se espera un número, se recibió {value!r}.") from None
    if not number.is_finite():
        raise _error(400, f"{where}: se espera un número finito.")
    return number


def _number(value: Decimal) -> int | float:
    """A quantity or price back as the JSON number it came as."""
    return int(value) if value == value.to_integral_value() else float(value)


def _periodo(value: Any) -> int:
    text = str(value)
    if len(text) != 6 or not text.isdigit():
        raise _error(400, f"Periodo {text!r} inválido: se espera AAAAMM.")
    try:
        retention_rate(int(text))
    except ValueError:
        raise _error(400, f"No hay tasa de retención para el periodo {text}.") from None
    return int(text)


@dataclass
class Emisor:
    rut: str
    razon_social: str
    siguiente: int = 1
    boletas: dict[int, dict] = field(default_factory=dict)
    receptores: dict[str, dict] = field(default_factory=dict)


class BHExpressSimulator(Simulator):
    """BHExpress's BHE API, in memory. See the module docstring."""

    name = "bhexpress"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: bool = True, page_size: int = 20):
        self.seed = seed
        self.page_size = page_size
        super().__init__(host, port)

    def reset_state(self) -> None:
        self.emisores: dict[str, Emisor] = {}
        self.tokens: dict[str, set[str]] = {}  # token → emisor RUTs it may use
        self.emails: list[dict] = []
        if self.seed:
            self.add_emisor({"rut": DEFAULT_EMISOR, "razon_social": "Profesional Demo", "token": DEFAULT_TOKEN})

    def state(self) -> dict:
        return {
            "emisores": {rut: {"boletas": len(e.boletas), "anuladas": sum(b["anulada"] for b in e.boletas.values()),
                               "siguiente": e.siguiente} for rut, e in self.emisores.items()},
            "emails": len(self.emails),
        }

    def add_emisor(self, spec: dict) -> Emisor:
        parsed = split_rut(spec.get("rut", ""))
        if parsed is None:
            raise ValueError("rut: se espera un RUT con dígito verificador válido")
        rut = f"{parsed[0]}-{parsed[1]}"
        tokens = spec.get("tokens") or ([spec["token"]] if spec.get("token") else [])
        with self.lock:
            emisor = self.emisores.get(rut) or Emisor(rut=rut, razon_social=spec.get("razon_social") or f"Emisor {rut}")
            emisor.razon_social = spec.get("razon_social") or emisor.razon_social
            emisor.siguiente = int(spec.get("numero_siguiente", emisor.siguiente))
            self.emisores[rut] = emisor
            for token in tokens:
                self.tokens.setdefault(str(token), set()).add(rut)
        return emisor

    def control(self, request: Request) -> Response | None:
        if request.path != "/_sim/emisores" or request.method != "POST":
            return None
        body = request.json()
        try:
            emisor = self.add_emisor(body if isinstance(body, dict) else {})
        except (TypeError, ValueError) as exc:
            return Response(400, {"error": str(exc)})
        return Response(200, {"rut": emisor.rut, "siguiente": emisor.siguiente})

    # --- helpers ---------------------------------------------------------------------------------

    def _emisor(self, request: Request) -> Emisor:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme != "Token" or not token.strip():
            raise _error(401, "No se ha enviado el token de la API (cabecera Authorization: Token <token>).")
        allowed = self.tokens.get(token.strip())
        if allowed is None:
            raise _error(401, "Token de la API inválido.")
        header = request.header("x-bhexpress-emisor")
        if not header:
            raise _error(400, "Se debe indicar el RUT del emisor en la cabecera X-Bhexpress-Emisor.")
        parsed = split_rut(header)
        rut = f"{parsed[0]}-{parsed[1]}" if parsed else header
        if rut not in allowed:
            raise _error(403, f"No está autorizado a operar con el emisor {header}.")
        return self.emisores[rut]

    def _boleta(self, emisor: Emisor, numero: str) -> dict:
        boleta = emisor.boletas.get(int(numero))
        if boleta is None:
            raise _error(404, f"No existe la boleta de honorarios N° {numero} del emisor {emisor.rut}.")
        return boleta

    @staticmethod
    def _json(request: Request) -> Any:
        try:
            return request.json()
        except HttpError:
            raise _error(400, "El cuerpo de la solicitud no es un JSON válido.") from None

    def _page(self, request: Request, rows: list[dict]) -> dict:
        try:
            page = int(request.arg("page", "1"))
        except ValueError:
            page = 0
        pages = max(1, -(-len(rows) // self.page_size))
        if not 1 <= page <= pages:
            raise _error(404, "Página inválida.")

        def link(number: int) -> str:
            query = {k: v[0] for k, v in request.query.items()}
            return f"{self.url}{request.path}?{urlencode({**query, 'page': number})}"

        start = (page - 1) * self.page_size
        return {"count": len(rows), "next": link(page + 1) if page < pages else None,
                "previous": link(page - 1) if page > 1 else None, "results": rows[start:start + self.page_size]}

    # --- boletas ---------------------------------------------------------------------------------

    @route("POST", r"/api/v1/bhe/emitir", name="emitir")
    def emitir(self, request: Request) -> Response:
        emisor = self._emisor(request)
        data = self._json(request)
        if not isinstance(data, dict) or not isinstance(data.get("Encabezado"), dict):
            raise _error(400, "Se espera un objeto JSON con Encabezado y Detalle.")
        encabezado = data["Encabezado"]
        id_doc = encabezado.get("IdDoc") or {}
        fecha = self._fecha(id_doc.get("FchEmis"))
        tipo_retencion = id_doc.get("TipoRetencion")
        if tipo_retencion not in (1, 2):
            raise _error(400, "TipoRetencion debe ser 1 (retiene el receptor) o 2 (retiene el emisor).")
        rut_emisor = (encabezado.get("Emisor") or {}).get("RUTEmisor")
        if rut_emisor and (split_rut(rut_emisor) or (0, ""))[0] != int(emisor.rut.split("-")[0]):
            raise _error(400, f"RUTEmisor {rut_emisor} no coincide con el emisor {emisor.rut} de la cabecera.")
        receptor = self._receptor(encabezado.get("Receptor"))
        lines = self._detalle(data.get("Detalle"))
        periodo = fecha.year * 100 + fecha.month
        rate = retention_rate(periodo)
        bruto = sum(line["MontoItem"] for line in lines)
        ret = retention(bruto, rate)
        with self.lock:
            numero = emisor.siguiente
            emisor.siguiente += 1
            codigo = hashlib.sha1(f"{emisor.rut}:{numero}:{fecha}".encode()).hexdigest()[:12].upper()
            boleta = {
                "numero": numero, "fecha": fecha.isoformat(), "periodo": periodo,
                "emisor": {"rut": emisor.rut, "razon_social": emisor.razon_social},
                "receptor": receptor, "tipo_retencion": tipo_retencion, "tasa_retencion": float(rate),
                "bruto": bruto, "retencion": ret, "liquido": bruto - ret, "codigo_barras": codigo,
                "anulada": False, "anulacion": None,
                "Encabezado": {
                    "IdDoc": {"Folio": numero, "FchEmis": fecha.isoformat(), "TipoRetencion": tipo_retencion,
                              "CodigoBarras": codigo},
                    "Emisor": {"RUTEmisor": emisor.rut, "RznSocEmisor": emisor.razon_social},
                    "Receptor": {"RUTRecep": receptor["rut"], "RznSocRecep": receptor["razon_social"],
                                 "DirRecep": receptor["direccion"], "CmnaRecep": receptor["comuna"]},
                    "Totales": {"MntBruto": bruto, "MntRetencion": ret, "MntNeto": bruto - ret},
                },
                "Detalle": lines,
            }
            emisor.boletas[numero] = boleta
            emisor.receptores[receptor["rut"]] = receptor
            self.counters["issued"] += 1
        return Response(200, boleta)

    @staticmethod
    def _fecha(value: Any) -> datetime.date:
        if value in (None, ""):
            return datetime.date.today()
        try:
            fecha = datetime.date.fromisoformat(str(value))
        except ValueError:
            raise _error(400, f"FchEmis {value!r} inválida: se espera AAAA-MM-DD.") from None
        if fecha > datetime.date.today():
            raise _error(400, "La fecha de emisión no puede ser futura.")
        try:
            retention_rate(fecha.year * 100 + fecha.month)
        except ValueError:
            raise _error(400, f"No hay tasa de retención para la fecha {fecha}.") from None
        return fecha

    @staticmethod
    def _receptor(data: Any) -> dict:
        data = data if isinstance(data, dict) else {}
        parsed = split_rut(data.get("RUTRecep", ""))
        if parsed is None:
            raise _error(400, f"RUTRecep {data.get('RUTRecep')!r} inválido: se espera un RUT con dígito verificador.")
        if not str(data.get("RznSocRecep") or "").strip():
            raise _error(400, "Falta la razón social o nombre del receptor (RznSocRecep).")
        return {"rut": f"{parsed[0]}-{parsed[1]}", "codigo": parsed[0],
                "razon_social": str(data["RznSocRecep"]).strip()[:100],
                "direccion": str(data.get("DirRecep") or "").strip()[:70] or None,
                "comuna": str(data.get("CmnaRecep") or "").strip()[:20] or None}

    @staticmethod
    def _detalle(data: Any) -> list[dict]:
        raw = data if isinstance(data, list) else ([data] if isinstance(data, dict) else [])
        if not raw:
            raise _error(400, "La boleta debe tener al menos una línea en Detalle.")
        lines = []
        for n, item in enumerate(raw, start=1):
            if not isinstance(item, dict) or not str(item.get("NmbItem") or "").strip():
                raise _error(400, f"Detalle línea {n}: falta NmbItem.")
            line: dict = {"NroLinDet": n}
            if item.get("CdgItem") not in (None, ""):
                line["CdgItem"] = item["CdgItem"]
            line["NmbItem"] = str(item["NmbItem"]).strip()[:80]
            if item.get("QtyItem") is not None and item.get("PrcItem") is not None:
                qty = _decimal(item["QtyItem"], f"Detalle línea {n} QtyItem")
                price = _decimal(item["PrcItem"], f"Detalle línea {n} PrcItem")
                line.update(QtyItem=_number(qty), PrcItem=_number(price))
                monto = _round(qty * price)
                if item.get("DescuentoPct") is not None:
                    pct = _decimal(item["DescuentoPct"], f"Detalle línea {n} DescuentoPct")
                    line["DescuentoPct"] = _number(pct)
                    descuento = _round(Decimal(monto) * pct / _HUNDRED)
                else:
                    descuento = _round(_decimal(item.get("DescuentoMonto") or 0, f"Detalle línea {n} DescuentoMonto"))
                if descuento:
                    line["DescuentoMonto"] = descuento
                monto -= descuento
            elif item.get("MontoItem") is not None:
                monto = _decimal(item["MontoItem"], f"Detalle línea {n} MontoItem")
                if monto % 1:
                    raise _error(400, f"Detalle línea {n}: MontoItem debe ser un número entero de pesos.")
                monto = int(monto)
            else:
                raise _error(400, f"Detalle línea {n}: se espera MontoItem, o QtyItem y PrcItem.")
            if monto <= 0:
                raise _error(400, f"Detalle línea {n}: el monto debe ser positivo (es {monto}).")
            line["MontoItem"] = monto
            lines.append(line)
        return lines

    @staticmethod
    def _summary(boleta: dict) -> dict:
        return {k: v for k, v in boleta.items() if k not in ("Encabezado", "Detalle")}

    @route("GET", r"/api/v1/bhe/boletas", name="boletas")
    def boletas(self, request: Request) -> Response:
        emisor = self._emisor(request)
        desde, hasta = request.arg("fecha_desde"), request.arg("fecha_hasta")
        for value in (desde, hasta):
            if value:
                self._iso(value)
        periodo = _periodo(request.arg("periodo")) if request.arg("periodo") else None
        receptor = request.arg("receptor_codigo") or request.arg("receptor")
        codigo = (split_rut(receptor) or (None,))[0] if receptor and "-" in receptor else receptor
        with self.lock:
            rows = [self._summary(b) for b in sorted(emisor.boletas.values(), key=lambda b: b["numero"], reverse=True)
                    if (periodo is None or b["periodo"] == periodo)
                    and (not desde or b["fecha"] >= desde) and (not hasta or b["fecha"] <= hasta)
                    and (not receptor or str(b["receptor"]["codigo"]) == str(codigo))]
        return Response(200, self._page(request, rows))

    @staticmethod
    def _iso(value: str) -> None:
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise _error(400, f"Fecha {value!r} inválida: se espera AAAA-MM-DD.") from None

    @route("GET", r"/api/v1/bhe/boletas/(?P<numero>\d+)", name="boleta")
    def boleta(self, request: Request) -> Response:
        emisor = self._emisor(request)
        with self.lock:
            return Response(200, self._boleta(emisor, request.params["numero"]))

    @route("GET", r"/api/v1/bhe/pdf/(?P<numero>\d+)", name="pdf")
    def pdf(self, request: Request) -> Response:
        emisor = self._emisor(request)
        with self.lock:
            b = self._boleta(emisor, request.params["numero"])
        lines = [f"Emisor: {emisor.razon_social} ({emisor.rut})", f"Fecha: {b['fecha']}",
                 f"Receptor: {b['receptor']['razon_social']} ({b['receptor']['rut']})", ""]
        lines += [f"{line['NmbItem']}: ${line['MontoItem']}" for line in b["Detalle"]]
        lines += ["", f"Total honorarios: ${b['bruto']}",
                  f"Retención {b['tasa_retencion']} %: ${b['retencion']}", f"Total líquido: ${b['liquido']}"]
        if b["anulada"]:
            lines.append(f"ANULADA: {b['anulacion']['glosa']}")
        filename = f"bhe_{emisor.rut}_{b['numero']}.pdf"
        return Response(200, simple_pdf(f"Boleta de honorarios electrónica N° {b['numero']}", lines),
                        {"Content-Disposition": f'attachment; filename="{filename}"'}, "application/pdf")

    @route("POST", r"/api/v1/bhe/email/(?P<numero>\d+)", name="email")
    def email(self, request: Request) -> Response:
        emisor = self._emisor(request)
        data = self._json(request)
        address = ((data or {}).get("destinatario") or {}).get("email") if isinstance(data, dict) else None
        if not isinstance(address, str) or "@" not in address[1:-1]:
            raise _error(400, "Se debe indicar un correo válido en destinatario.email.")
        with self.lock:
            b = self._boleta(emisor, request.params["numero"])
            self.emails.append({"emisor": emisor.rut, "numero": b["numero"], "email": address})
        return Response(200, {"numero": b["numero"], "destinatario": {"email": address}, "enviado": True})

    @route("POST", r"/api/v1/bhe/anular/(?P<numero>\d+)", name="anular")
    def anular(self, request: Request) -> Response:
        emisor = self._emisor(request)
        data = self._json(request)
        causa = data.get("causa") if isinstance(data, dict) else None
        if causa not in CAUSAS:
            raise _error(400, "Causa de anulación inválida: 1 (no pago), 2 (no prestación) o 3 (error de digitación).")
        with self.lock:
            b = self._boleta(emisor, request.params["numero"])
            if b["anulada"]:
                raise _error(409, f"La boleta de honorarios N° {b['numero']} ya está anulada.")
            b["anulada"] = True
            b["anulacion"] = {"causa": causa, "glosa": CAUSAS[causa], "fecha": datetime.date.today().isoformat()}
            return Response(200, b)

    # --- amounts and receptores ------------------------------------------------------------------

    @route("GET", r"/api/v1/bhe/liquido/(?P<monto>\d+)/(?P<periodo>[^/]+)", name="liquido")
    def liquido(self, request: Request) -> Response:
        self._emisor(request)
        periodo = _periodo(request.params["periodo"])
        rate, bruto = retention_rate(periodo), int(request.params["monto"])
        ret = retention(bruto, rate)
        return Response(200, {"periodo": periodo, "tasa": float(rate), "bruto": bruto, "retencion": ret,
                              "liquido": bruto - ret})

    @route("GET", r"/api/v1/bhe/bruto/(?P<monto>\d+)/(?P<periodo>[^/]+)", name="bruto")
    def bruto(self, request: Request) -> Response:
        self._emisor(request)
        periodo = _periodo(request.params["periodo"])
        rate = retention_rate(periodo)
        bruto = bruto_for(int(request.params["monto"]), rate)
        ret = retention(bruto, rate)
        return Response(200, {"periodo": periodo, "tasa": float(rate), "bruto": bruto, "retencion": ret,
                              "liquido": bruto - ret})

    @route("GET", r"/api/v1/bhe/receptores", name="receptores")
    def receptores(self, request: Request) -> Response:
        emisor = self._emisor(request)
        with self.lock:
            rows = sorted(emisor.receptores.values(), key=lambda r: r["codigo"])
        return Response(200, self._page(request, rows))

    @route("GET", r"/api/v1/bhe/receptores/(?P<rut>[^/]+)(?:/(?P<codigo>[^/]+))?", name="receptor")
    def receptor(self, request: Request) -> Response:
        emisor = self._emisor(request)
        parsed = split_rut(request.params["rut"])
        key = f"{parsed[0]}-{parsed[1]}" if parsed else request.params["rut"]
        with self.lock:
            found = emisor.receptores.get(key)
        if found is None:
            raise _error(404, f"No existe el receptor {request.params['rut']} entre los receptores del emisor.")
        return Response(200, found)
