"""Totals normalisation: a port of LibreDTE's normaliser, so our totals are the biller's to the peso.

Source: ``libredte-lib-core`` ``src/Package/Billing/Component/Document/Worker/Normalizer/``
(``NormalizeDetalleTrait``, ``NormalizeDescuentosRecargosTrait``,
``NormalizeImpuestoAdicionalRetencionTrait``, ``NormalizeIvaMntTotalTrait`` and the per-type jobs),
with PHP's float ``round()`` replaced by exact Decimal arithmetic rounded half up.

Deliberate points, all copied from LibreDTE rather than "fixed":

* A global discount/surcharge without ``IndExeDR`` targets ``MntNeto`` (``MntTotal`` on a 39); when the
  target amount is zero it is skipped silently. So a 34 with a global discount and no ``IndExeDR``
  keeps its full ``MntExe`` (fixture 034_002); our order mapping always sets ``IndExeDR = 1`` there.
* ``MntBruto = 1`` means the afecto lines are gross: net = round(gross / 1.19), IVA = gross - net.
* Boletas: net and IVA come from the gross afecto total the same way. ``IndMntNeto = 2`` (net lines in
  a boleta) is refused, because LibreDTE does not support it.
* Only ``IndExe`` 1 (exempt) and 2 (not billable) are accepted on lines, as in LibreDTE.
* Notes (56, 61) whose net amount comes out zero carry ``MntNeto`` 0 and no ``TasaIVA``
  (``NormalizeNotaCreditoJob`` / ``NormalizeNotaDebitoJob``); a given ``IVA`` of 0 is kept, as LibreDTE
  keeps a given IVA when there is no net amount. That is the shape of a text correction (CodRef 2,
  case 061_002): ``MntNeto`` 0, ``IVA`` 0, ``MntTotal`` 0.

Differences: totals given in the input are recomputed from the lines (LibreDTE would add the lines to
them), except that zero IVA on a note without net amount; a given non-zero IVA without a net amount,
and a total that would come out negative, are refused here instead of failing the schema later.
"""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from .amounts import IMPUESTOS_ADICIONALES, IVA_RATE, neto_iva_from_gross, percent_of, round_half_up
from .document import Document, ImptoReten, Totales
from .errors import InvalidDocument
from .types import EXEMPT_TYPES, NOTE_TYPES, is_boleta


def _line_amount(d) -> tuple[int, int | None, int | None]:
    """(MontoItem, DescuentoMonto, RecargoMonto) of one line, as NormalizeDetalleTrait computes them."""
    if d.prc_item:
        if d.monto_item:
            return d.monto_item, d.descuento_monto, d.recargo_monto
        qty = d.qty_item or Decimal(1)
        monto = round_half_up(qty * d.prc_item)
        descuento = percent_of(monto, d.descuento_pct) if d.descuento_pct else d.descuento_monto
        monto -= descuento or 0
        # The surcharge percentage applies to the already discounted amount, as in LibreDTE.
        recargo = percent_of(monto, d.recargo_pct) if d.recargo_pct else d.recargo_monto
        monto += recargo or 0
        return monto, descuento, recargo
    return d.monto_item or 0, d.descuento_monto, d.recargo_monto


def normalize(doc: Document) -> Document:
    """Return ``doc`` with line numbers, line amounts and ``Totales`` computed as LibreDTE does.

    Raises ``InvalidDocument`` for what LibreDTE refuses or what the SII schema cannot hold.
    """
    id_doc = doc.encabezado.id_doc
    tipo = id_doc.tipo_dte
    boleta = is_boleta(tipo)
    if boleta and id_doc.ind_mnt_neto == 2:
        raise InvalidDocument(
            "IndMntNeto = 2 (net line amounts in a boleta) is not supported by LibreDTE; "
            "send gross prices (IVA included) on boletas"
        )
    given_rate = doc.encabezado.totales.tasa_iva
    rate = None if tipo in EXEMPT_TYPES else (given_rate or IVA_RATE)

    t = {"MntNeto": 0, "MntExe": 0, "MontoNF": 0, "MntTotal": 0}
    lines = []
    for n, d in enumerate(doc.detalle, start=1):
        if d.ind_exe not in (None, 1, 2):
            raise InvalidDocument(f"line {n} has IndExe = {d.ind_exe}; only 1 (exempt) and 2 (not billable) are supported")
        monto, descuento, recargo = _line_amount(d)
        if monto < 0:
            raise InvalidDocument(f"line {n} ({d.nmb_item!r}) has a negative amount ({monto}): its discount exceeds it")
        lines.append(replace(
            d, nro_lin_det=n, qty_item=d.qty_item if not d.prc_item else (d.qty_item or Decimal(1)),
            monto_item=monto, descuento_monto=descuento or None, recargo_monto=recargo or None,
        ))
        if d.ind_exe == 1:
            t["MntExe"] += monto
            if boleta:
                t["MntTotal"] += monto
        elif d.ind_exe == 2:
            t["MontoNF"] += monto
        elif boleta:
            t["MntTotal"] += monto
        else:
            t["MntNeto"] += monto

    drs = []
    for n, dr in enumerate(doc.dsc_rcg_global, start=1):
        drs.append(replace(dr, nro_lin_dr=n))
        if dr.tpo_mov not in ("D", "R") or dr.tpo_valor not in ("%", "$"):
            raise InvalidDocument(f"DscRcgGlobal {n}: TpoMov must be D or R and TpoValor % or $")
        if dr.ind_exe_dr is None:
            target = "MntTotal" if tipo == 39 else "MntNeto"
        else:
            target = "MntExe" if dr.ind_exe_dr == 1 else "MontoNF"
        if not t[target]:
            continue
        valor = percent_of(t[target], dr.valor_dr) if dr.tpo_valor == "%" else round_half_up(dr.valor_dr)
        t[target] += valor if dr.tpo_mov == "R" else -valor
        if tipo == 41 and dr.ind_exe_dr == 1:
            t["MntTotal"] = t["MntExe"]

    impto_reten = _impuestos_adicionales(lines, tipo)

    iva = 0
    if boleta:
        afecto = t["MntTotal"] - t["MntExe"]
        if afecto:
            t["MntNeto"], iva = neto_iva_from_gross(afecto, rate)
    if t["MntNeto"]:
        if not boleta:
            if id_doc.mnt_bruto == 1:
                t["MntNeto"], iva = neto_iva_from_gross(t["MntNeto"], rate)
            elif rate:
                iva = percent_of(t["MntNeto"], rate)
            t["MntTotal"] = t["MntNeto"] + iva + t["MntExe"]
    elif not t["MntTotal"]:
        t["MntTotal"] = t["MntExe"]

    iva_no_ret = None
    for imp in impto_reten:
        kind, _ = IMPUESTOS_ADICIONALES[imp.tipo_imp]
        if kind == "R":
            t["MntTotal"] -= imp.monto_imp
            if imp.monto_imp != iva:
                iva_no_ret = iva - imp.monto_imp
        else:
            t["MntTotal"] += imp.monto_imp

    for name, value in t.items():
        if value < 0:
            raise InvalidDocument(f"{name} would be negative ({value}): discounts exceed the amounts they apply to")

    has_neto = bool(t["MntNeto"])
    zero_net_note = tipo in NOTE_TYPES and not has_neto
    if boleta:
        # Boleta IVA is a positive integer in EnvioBOLETA.
        iva = iva or None
    elif not (has_neto and rate):
        # On a DTE the IVA accompanies MntNeto, even when 0; without MntNeto only a note keeps a given 0.
        iva = _given_zero_iva(doc.encabezado.totales.iva) if zero_net_note else None
    totales = Totales(
        mnt_neto=t["MntNeto"] if has_neto else (0 if zero_net_note else None),
        mnt_exe=t["MntExe"] or None,
        tasa_iva=rate if has_neto and rate else None,
        iva=iva,
        impto_reten=impto_reten,
        iva_no_ret=iva_no_ret,
        mnt_total=t["MntTotal"],
        monto_nf=t["MontoNF"] or None,
        monto_periodo=t["MntTotal"] + t["MontoNF"] if t["MontoNF"] and not boleta and t["MntTotal"] else None,
    )
    if boleta and id_doc.ind_servicio is None:
        # EnvioBOLETA requires IndServicio; 3 ("ventas y servicios") is LibreDTE's default for boletas.
        id_doc = replace(id_doc, ind_servicio=3)
    return replace(
        doc,
        encabezado=replace(doc.encabezado, id_doc=id_doc, totales=totales),
        detalle=tuple(lines),
        dsc_rcg_global=tuple(drs),
        referencia=tuple(replace(r, nro_lin_ref=n) for n, r in enumerate(doc.referencia, start=1)),
    )


def _given_zero_iva(given: int | None) -> int | None:
    if given:
        raise InvalidDocument(f"IVA {given} is given but the note has no net amount for it to be the tax of")
    return given


def _impuestos_adicionales(lines, tipo: int) -> tuple[ImptoReten, ...]:
    # LibreDTE runs this step only for facturas and notes; boletas and 34 ignore CodImpAdic.
    if is_boleta(tipo) or tipo == 34:
        return ()
    per_code: dict[int, int] = {}
    for d in lines:
        if d.cod_imp_adic:
            if d.cod_imp_adic not in IMPUESTOS_ADICIONALES:
                raise InvalidDocument(f"line {d.nro_lin_det}: CodImpAdic {d.cod_imp_adic} is not a known additional tax or retention")
            per_code[d.cod_imp_adic] = per_code.get(d.cod_imp_adic, 0) + d.monto_item
    result = []
    for code in sorted(per_code):
        _, rate = IMPUESTOS_ADICIONALES[code]
        result.append(ImptoReten(tipo_imp=code, tasa_imp=rate, monto_imp=percent_of(per_code[code], rate)))
    return tuple(result)
