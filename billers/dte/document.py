"""The DTE document model, shaped like the SII structure, and its LibreDTE JSON form.

Every field carries its SII element name in its metadata, and the fields of each class are declared in
the order of the XSD sequence, so the JSON conversion here and the XML builder (``xml.py``) are the
same generic walk. A few elements exist only in DTE_v10 (facturas, notes) or only in EnvioBOLETA
(boletas); those are tagged with ``only=`` and skipped for the other family. Two emisor elements are
spelled differently in boletas (``RznSocEmisor``, ``GiroEmisor``); their tag is a (dte, boleta) pair.

Money is ``int`` pesos; quantities, prices and percentages are ``Decimal``. ``None`` means "absent".
"""
from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from .errors import InvalidDocument
from .types import SUPPORTED_TYPES, is_boleta

# 46 (factura de compra) and 52 (guía de despacho) normalise like facturas; the product issues
# 33, 34, 39, 41, 56 and 61, and reads the others so LibreDTE-shaped documents of those types work.


def _f(tag: str | tuple[str, str], conv: Callable | None = None, *, only: str | None = None, default: Any = None):
    return field(default=default, metadata={"sii": tag, "conv": conv, "only": only})


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        # str() first: a YAML float such as 0.1 must become Decimal("0.1"), not its binary expansion.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return str(value)


def _to_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value))


@dataclass(frozen=True)
class IdDoc:
    tipo_dte: int = _f("TipoDTE", _to_int)
    folio: int | None = _f("Folio", _to_int)
    fch_emis: datetime.date | None = _f("FchEmis", _to_date)
    ind_servicio: int | None = _f("IndServicio", _to_int)
    mnt_bruto: int | None = _f("MntBruto", _to_int, only="dte")
    ind_mnt_neto: int | None = _f("IndMntNeto", _to_int, only="boleta")
    fma_pago: int | None = _f("FmaPago", _to_int, only="dte")
    fch_venc: datetime.date | None = _f("FchVenc", _to_date)


@dataclass(frozen=True)
class Emisor:
    rut: str = _f("RUTEmisor", _to_str, default="")
    razon_social: str | None = _f(("RznSoc", "RznSocEmisor"), _to_str)
    giro: str | None = _f(("GiroEmis", "GiroEmisor"), _to_str)
    correo: str | None = _f("CorreoEmisor", _to_str, only="dte")
    acteco: tuple[int, ...] = _f("Acteco", _to_int, only="dte", default=())
    cdg_sii_sucur: int | None = _f("CdgSIISucur", _to_int)
    dir_origen: str | None = _f("DirOrigen", _to_str)
    cmna_origen: str | None = _f("CmnaOrigen", _to_str)
    ciudad_origen: str | None = _f("CiudadOrigen", _to_str)


@dataclass(frozen=True)
class Receptor:
    rut: str = _f("RUTRecep", _to_str, default="")
    cdg_int_recep: str | None = _f("CdgIntRecep", _to_str)
    razon_social: str | None = _f("RznSocRecep", _to_str)
    giro: str | None = _f("GiroRecep", _to_str, only="dte")
    contacto: str | None = _f("Contacto", _to_str)
    correo: str | None = _f("CorreoRecep", _to_str, only="dte")
    dir: str | None = _f("DirRecep", _to_str)
    cmna: str | None = _f("CmnaRecep", _to_str)
    ciudad: str | None = _f("CiudadRecep", _to_str)


@dataclass(frozen=True)
class ImptoReten:
    tipo_imp: int = _f("TipoImp", _to_int, default=0)
    tasa_imp: Decimal | None = _f("TasaImp", _to_decimal)
    monto_imp: int | None = _f("MontoImp", _to_int)


@dataclass(frozen=True)
class Totales:
    mnt_neto: int | None = _f("MntNeto", _to_int)
    mnt_exe: int | None = _f("MntExe", _to_int)
    tasa_iva: Decimal | None = _f("TasaIVA", _to_decimal, only="dte")
    iva: int | None = _f("IVA", _to_int)
    impto_reten: tuple[ImptoReten, ...] = _f("ImptoReten", ImptoReten, only="dte", default=())
    iva_no_ret: int | None = _f("IVANoRet", _to_int, only="dte")
    mnt_total: int | None = _f("MntTotal", _to_int)
    monto_nf: int | None = _f("MontoNF", _to_int)
    monto_periodo: int | None = _f("MontoPeriodo", _to_int, only="dte")


@dataclass(frozen=True)
class Encabezado:
    id_doc: IdDoc = _f("IdDoc", IdDoc, default=None)
    emisor: Emisor = _f("Emisor", Emisor, default=None)
    receptor: Receptor = _f("Receptor", Receptor, default=None)
    totales: Totales = _f("Totales", Totales, default=None)


@dataclass(frozen=True)
class CdgItem:
    tpo_codigo: str = _f("TpoCodigo", _to_str, default="INT1")
    vlr_codigo: str = _f("VlrCodigo", _to_str, default="")


@dataclass(frozen=True)
class Detalle:
    nro_lin_det: int | None = _f("NroLinDet", _to_int)
    cdg_item: tuple[CdgItem, ...] = _f("CdgItem", CdgItem, default=())
    ind_exe: int | None = _f("IndExe", _to_int)
    nmb_item: str = _f("NmbItem", _to_str, default="")
    dsc_item: str | None = _f("DscItem", _to_str)
    qty_item: Decimal | None = _f("QtyItem", _to_decimal)
    unmd_item: str | None = _f("UnmdItem", _to_str)
    prc_item: Decimal | None = _f("PrcItem", _to_decimal)
    descuento_pct: Decimal | None = _f("DescuentoPct", _to_decimal)
    descuento_monto: int | None = _f("DescuentoMonto", _to_int)
    recargo_pct: Decimal | None = _f("RecargoPct", _to_decimal)
    recargo_monto: int | None = _f("RecargoMonto", _to_int)
    cod_imp_adic: int | None = _f("CodImpAdic", _to_int, only="dte")
    monto_item: int | None = _f("MontoItem", _to_int)


@dataclass(frozen=True)
class DscRcgGlobal:
    nro_lin_dr: int | None = _f("NroLinDR", _to_int)
    tpo_mov: str = _f("TpoMov", _to_str, default="D")
    glosa_dr: str | None = _f("GlosaDR", _to_str)
    tpo_valor: str = _f("TpoValor", _to_str, default="$")
    valor_dr: Decimal = _f("ValorDR", _to_decimal, default=Decimal(0))
    ind_exe_dr: int | None = _f("IndExeDR", _to_int)


@dataclass(frozen=True)
class Referencia:
    nro_lin_ref: int | None = _f("NroLinRef", _to_int)
    tpo_doc_ref: str | None = _f("TpoDocRef", _to_str)
    folio_ref: str | None = _f("FolioRef", _to_str)
    fch_ref: datetime.date | None = _f("FchRef", _to_date, only="dte")
    cod_ref: int | None = _f("CodRef", _to_int)
    razon_ref: str | None = _f("RazonRef", _to_str)


@dataclass(frozen=True)
class Document:
    encabezado: Encabezado = _f("Encabezado", Encabezado, default=None)
    detalle: tuple[Detalle, ...] = _f("Detalle", Detalle, default=())
    dsc_rcg_global: tuple[DscRcgGlobal, ...] = _f("DscRcgGlobal", DscRcgGlobal, default=())
    referencia: tuple[Referencia, ...] = _f("Referencia", Referencia, default=())

    @property
    def tipo_dte(self) -> int:
        return self.encabezado.id_doc.tipo_dte

    @property
    def totales(self) -> Totales:
        return self.encabezado.totales


def family(tipo_dte: int) -> str:
    return "boleta" if is_boleta(tipo_dte) else "dte"


def tag_for(f, kind: str) -> str:
    tag = f.metadata["sii"]
    if isinstance(tag, tuple):
        return tag[0] if kind == "dte" else tag[1]
    return tag


@cache
def _field_tags(cls: type, kind: str) -> tuple[tuple[str, str], ...]:
    """(attribute, tag) of the fields of ``cls`` that exist in ``kind``, in XSD order; once per class."""
    return tuple((f.name, tag_for(f, kind)) for f in fields(cls) if f.metadata["only"] in (None, kind))


def present_fields(obj, kind: str):
    """Yield (tag, value) for the fields of ``obj`` that exist in ``kind`` and are set, in XSD order."""
    for name, tag in _field_tags(type(obj), kind):
        value = getattr(obj, name)
        if value is None or value == () or value == "":
            continue
        yield tag, value


def _json_number(value: Decimal) -> int | float | str:
    """A Decimal as the JSON number LibreDTE expects, without ever losing a digit.

    Whole values become ints. Fractional values become floats only when the float prints back as the
    same decimal (true for every quantity and price the SII allows up to 15 significant digits);
    anything longer stays a string, which LibreDTE's ``(float)`` cast also reads.
    """
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) == value:
        return as_float
    return format(value, "f")


def _to_json_value(value: Any, kind: str) -> Any:
    if is_dataclass(value):
        # An empty part (e.g. Totales before normalising) is left out, as LibreDTE expects.
        items = ((tag, _to_json_value(v, kind)) for tag, v in present_fields(value, kind))
        return {tag: v for tag, v in items if v != {}}
    if isinstance(value, tuple):
        return [_to_json_value(v, kind) for v in value]
    if isinstance(value, Decimal):
        return _json_number(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def document_to_libredte_json(doc: Document) -> dict:
    """The document as the JSON body LibreDTE's ``/dte/documentos/emitir`` takes (SII element names)."""
    return _to_json_value(doc, family(doc.tipo_dte))


def _as_list(value: Any) -> list:
    # LibreDTE (and its YAML cases) accept a single object where the SII allows a repeated element.
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, list) else [value]


def _from_json(cls, data: Any, path: str):
    if not isinstance(data, dict):
        raise InvalidDocument(f"{path}: expected an object, got {type(data).__name__}")
    kwargs = {}
    for f in fields(cls):
        tag = f.metadata["sii"]
        names = tag if isinstance(tag, tuple) else (tag,)
        raw = next((data[n] for n in names if n in data), None)
        if raw is None or raw is False or raw == "":
            continue
        conv = f.metadata["conv"]
        where = f"{path}.{names[0]}"
        if isinstance(f.default, tuple):
            kwargs[f.name] = tuple(_convert(conv, item, f"{where}[{i}]") for i, item in enumerate(_as_list(raw)))
        else:
            kwargs[f.name] = _convert(conv, raw, where)
    return cls(**kwargs)


def _convert(conv, raw: Any, where: str):
    if conv is CdgItem and not isinstance(raw, dict):
        # LibreDTE accepts a bare code and files it as an internal code (INT1).
        return CdgItem(vlr_codigo=_to_str(raw))
    if is_dataclass(conv):
        return _from_json(conv, raw, where)
    try:
        return conv(raw)
    except (ValueError, TypeError) as exc:
        raise InvalidDocument(f"{where}: {exc}") from None


def document_from_libredte_json(data: dict) -> Document:
    """Read a LibreDTE/SII-shaped JSON (or YAML) mapping into a ``Document``.

    Unknown keys (e.g. the ``Test`` block of LibreDTE's cases, or ``LibreDTE.extra``) are ignored.
    Raises ``InvalidDocument`` with the path of the offending element.
    """
    doc = _from_json(Document, data, "$")
    enc = doc.encabezado
    if enc is None or enc.id_doc is None or enc.id_doc.tipo_dte is None:
        raise InvalidDocument("$.Encabezado.IdDoc.TipoDTE is required")
    if enc.id_doc.tipo_dte not in SUPPORTED_TYPES:
        raise InvalidDocument(
            f"TipoDTE {enc.id_doc.tipo_dte} is not supported (supported: {sorted(SUPPORTED_TYPES)})"
        )
    if not doc.detalle:
        raise InvalidDocument("$.Detalle: the document has no lines")
    return replace(
        doc,
        encabezado=replace(
            enc,
            emisor=enc.emisor or Emisor(),
            receptor=enc.receptor or Receptor(),
            totales=enc.totales or Totales(),
        ),
    )
