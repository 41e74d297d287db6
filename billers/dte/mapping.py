"""Sale → Document: the mapping of a normalised order to an SII document, and the "cuadre".

The rule: the document's ``MntTotal`` (as LibreDTE's normaliser computes it from what we send) equals
``sale.paid_total``, or nothing is emitted and ``MappingRefused`` says which amounts differ and by how
much. There are no hidden adjustment lines.

How prices reach the document without drifting:

* **Boletas (39, 41)** carry gross lines natively. Net store prices are turned gross exactly
  (price × 1.19 as a decimal ``PrcItem``, at most 6 decimals as the XSD allows; discounts rounded half up).
* **Facturas and notes (33, 34, 56, 61) with gross store prices** are emitted with
  ``IdDoc.MntBruto = 1``: lines stay gross, and net and IVA come from the gross total
  (net = round(gross / 1.19), IVA = gross − net), so the total is the gross total exactly. We chose
  this over converting each line to net, which drifts by a peso or two on most multi-line orders.
* **Net store prices** on facturas are sent net; IVA = round(net × 0.19). If the store computed its
  total differently the mapping refuses (``total_mismatch``) rather than invent a correction.
* **Stores that add IVA themselves, line by line** (net prices, and each taxable line carrying
  ``SaleLine.tax``, the store's own IVA on it): such stores round IVA per line, so IVA on the net total
  would miss what was charged by a few pesos. Each taxable line is billed at exactly what the store
  charged for it, net + its tax, as a gross line: ``PrcItem`` is the net unit price × 1.19 and
  ``DescuentoMonto`` the difference down to the charged amount (the store's discount with its IVA,
  give or take the store's rounding); when that difference would be negative, or would invent a
  discount on a line without one, ``PrcItem`` is the charged amount / quantity (6 decimals, which
  ``round(QtyItem × PrcItem)`` brings back to the peso for any quantity under a million). Boletas carry
  gross lines anyway; facturas and notes get ``MntBruto = 1``, so LibreDTE's normaliser takes
  ``MntTotal`` = Σ gross lines (net = round(gross / 1.19), IVA = gross − net) — the paid total by
  construction, and still checked by the cuadre below. The document's IVA may then differ by a peso or
  two from the sum of the store's line taxes; its total never does. The order-level discount is taken
  off with its IVA: ``Sale.global_discount_tax`` when the store said how much, else 19 % of it.
* Exempt lines (``IndExe = 1``) are never converted: they carry no IVA. On 34 and 41 every line must
  be exempt, and the global discount is sent with ``IndExeDR = 1`` (LibreDTE ignores it otherwise).
* The order-level discount becomes one ``DscRcgGlobal`` in pesos (``TpoValor $``).

* **Notes that only correct text** (``CodRef 2`` on every reference, e.g. a wrong razón social on an
  issued factura) carry zero amounts as LibreDTE's case 061_002 sends them (``MntNeto`` 0,
  ``TasaIVA`` 19, ``IVA`` 0, ``MntTotal`` 0; its normaliser then drops ``TasaIVA``) and one line
  without price naming what is corrected; their cuadre is "total 0". Any amount on such a note is
  refused (``text_correction_with_amounts``): amounts are corrected with ``CodRef 3``.

Other decisions: more lines than the schema holds (60 on DTE_v10 types, 1000 on a boleta) is refused,
not grouped, so the buyer's document always lists what they bought; a factura (33/34) needs a valid
receptor RUT other than the consumer-final one, razón social, giro, address and comuna, and is never
downgraded to a boleta; a boleta without a RUT goes to 66666666-6 "Sin RUT", but a malformed RUT is
refused rather than dropped (its razón social is optional there); a line with an empty name is named after its SKU (or "Ítem N").
"""
from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal

from .amounts import IVA_RATE, round_half_up
from .display import format_clp
from .document import (
    CdgItem,
    Detalle,
    Document,
    DscRcgGlobal,
    Encabezado,
    IdDoc,
    Referencia,
    Totales,
)
from .document import Emisor as DocEmisor
from .document import Receptor as DocReceptor
from .errors import InvalidDocument, MappingRefused
from .normalize import normalize
from .sale import (
    CONSUMIDOR_FINAL_NAME,
    CONSUMIDOR_FINAL_RUT,
    Emisor,
    Receptor,
    Sale,
    SaleLine,
)
from .sanitize import clean_rut, fit, sanitize
from .types import BOLETA_TYPES, DOCUMENT_TYPES, EXEMPT_TYPES, FACTURA_TYPES, NOTE_TYPES, SUPPORTED_TYPES

_PRICE_PLACES = Decimal("0.000001")
_MAX_DECIMAL = Decimal(10) ** 12  # Dec12_6Type: 12 integer digits
_GROSS_FACTOR = 1 + IVA_RATE / 100


def _refuse(code: str, message: str, **details) -> MappingRefused:
    return MappingRefused(code, message, details)


def _check_amounts(sale: Sale) -> None:
    if sale.currency != "CLP":
        raise _refuse("currency", f"La orden está en {sale.currency}; solo se facturan órdenes en CLP.", currency=sale.currency)
    if sale.tipo_dte not in SUPPORTED_TYPES:
        raise _refuse("unsupported_document_type", f"El tipo de documento {sale.tipo_dte} no está soportado.", tipo_dte=sale.tipo_dte)
    if sale.price_basis not in ("gross", "net"):
        raise _refuse("price_basis", f"Base de precios desconocida {sale.price_basis!r} (se espera 'gross' o 'net').")
    for name, value in (("paid_total", sale.paid_total), ("global_discount", sale.global_discount)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _refuse(
                "non_integer_amount", f"{name} debe ser un número entero de pesos; vino {value!r}.", field=name, value=str(value)
            )
    if sale.corrects_text:
        _check_text_correction(sale)
    elif sale.paid_total <= 0:
        raise _refuse(
            "non_positive_total",
            f"El total pagado es {format_clp(sale.paid_total)}; solo se facturan órdenes con total positivo.",
            paid_total=sale.paid_total,
        )
    if sale.global_discount < 0:
        raise _refuse(
            "negative_amount", f"El descuento de la orden es negativo ({sale.global_discount}).", global_discount=sale.global_discount
        )
    if sale.global_discount_tax is not None and not _whole_non_negative(sale.global_discount_tax):
        raise _refuse(
            "non_integer_amount",
            f"El IVA del descuento de la orden debe ser pesos enteros no negativos; vino {sale.global_discount_tax!r}.",
        )
    if not sale.lines:
        raise _refuse("no_lines", "La orden no tiene líneas.")
    limit = DOCUMENT_TYPES[sale.tipo_dte].max_lines
    if len(sale.lines) > limit:
        raise _refuse(
            "too_many_lines",
            f"La orden tiene {len(sale.lines)} líneas y un documento tipo {sale.tipo_dte} admite como máximo {limit}; "
            "no se emite un documento incompleto.",
            lines=len(sale.lines), max_lines=limit,
        )
    for n, line in enumerate(sale.lines, start=1):
        if not isinstance(line.discount, int) or isinstance(line.discount, bool):
            raise _refuse("non_integer_amount", f"El descuento de la línea {n} debe ser pesos enteros; vino {line.discount!r}.", line=n)
        if not isinstance(line.quantity, (Decimal, int)) or not isinstance(line.unit_price, (Decimal, int)):
            raise _refuse("non_decimal_amount", f"Cantidad y precio de la línea {n} deben ser Decimal o int, nunca float.", line=n)
        if not Decimal(line.quantity).is_finite() or not Decimal(line.unit_price).is_finite():
            raise _refuse("invalid_amount", f"La línea {n} tiene una cantidad o un precio no finito.", line=n)
        if line.quantity >= _MAX_DECIMAL or line.unit_price >= _MAX_DECIMAL:
            raise _refuse(
                "amount_too_large", f"La línea {n} ({line.name!r}) tiene cantidad o precio de más de 12 dígitos enteros (límite del SII).",
                line=n,
            )
        if line.quantity <= 0:
            raise _refuse("invalid_quantity", f"La línea {n} ({line.name!r}) tiene cantidad {line.quantity}; debe ser positiva.", line=n)
        if line.unit_price < 0 or line.discount < 0:
            raise _refuse("negative_amount", f"La línea {n} ({line.name!r}) tiene precio o descuento negativo.", line=n)
        if Decimal(line.quantity).quantize(_PRICE_PLACES) != line.quantity:
            raise _refuse("too_many_decimals", f"La cantidad {line.quantity} de la línea {n} tiene más de 6 decimales.", line=n)
        if line.tax is not None and not _whole_non_negative(line.tax):
            raise _refuse("non_integer_amount", f"El IVA de la línea {n} debe ser pesos enteros no negativos; vino {line.tax!r}.", line=n)
    if sale.store_tax:
        _check_store_tax(sale)


def _whole_non_negative(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_store_tax(sale: Sale) -> None:
    """Lines with the store's own IVA: net prices, and every taxable line says its IVA."""
    if sale.price_basis != "net":
        raise _refuse(
            "price_basis",
            "Las líneas traen el IVA que cobró la tienda, así que sus precios deben ser netos (price_basis 'net').",
        )
    for n, line in enumerate(sale.lines, start=1):
        if line.exempt and line.tax:
            raise _refuse(
                "exempt_line_with_tax",
                f"La línea {n} ({line.name!r}) va exenta de IVA, pero la tienda le cobró IVA ({format_clp(line.tax)}): "
                "revise las reglas de exención o la configuración de impuestos de la tienda.",
                line=n, tax=line.tax,
            )
        if not line.exempt and line.tax is None:
            raise _refuse(
                "missing_line_tax",
                f"La tienda informó el IVA de otras líneas pero no el de la línea {n} ({line.name!r}); sin él no se puede "
                "cuadrar lo cobrado.",
                line=n,
            )


def _check_text_correction(sale: Sale) -> None:
    amounts = sale.paid_total or sale.global_discount or any(line.unit_price or line.discount or line.tax for line in sale.lines)
    if amounts:
        raise _refuse(
            "text_correction_with_amounts",
            "Una nota que corrige texto (CodRef 2) va con montos en cero; para corregir montos use CodRef 3.",
            paid_total=sale.paid_total,
        )


def _emisor(emisor: Emisor, tipo: int) -> DocEmisor:
    rut = clean_rut(emisor.rut)
    missing = [name for name, value in (("razón social", emisor.razon_social), ("giro", emisor.giro)) if not (value or "").strip()]
    if tipo not in BOLETA_TYPES and not emisor.acteco:
        missing.append("actividad económica (acteco)")
    if rut is None or missing:
        problem = f"RUT inválido {emisor.rut!r}" if rut is None else "falta " + ", ".join(missing)
        raise _refuse("invalid_emisor", f"Los datos del emisor están incompletos: {problem}.", rut=emisor.rut, missing=missing)
    return DocEmisor(
        rut=rut, razon_social=emisor.razon_social, giro=emisor.giro,
        acteco=(emisor.acteco,) if emisor.acteco and tipo not in BOLETA_TYPES else (),
        dir_origen=emisor.address or None, cmna_origen=emisor.comuna or None, ciudad_origen=emisor.city or None,
    )


def _receptor(receptor: Receptor, tipo: int) -> DocReceptor:
    if tipo in BOLETA_TYPES and not (receptor.rut or "").strip():
        receptor = Receptor()
    rut = clean_rut(receptor.rut)
    if rut is None:
        raise _refuse(
            "invalid_receptor_rut",
            f"El RUT del comprador {receptor.rut!r} no es válido (dígito verificador o formato); la orden queda retenida para revisión.",
            rut=receptor.rut,
        )
    if tipo in FACTURA_TYPES:
        if rut == CONSUMIDOR_FINAL_RUT:
            raise _refuse(
                "invalid_receptor_rut", "Una factura necesita el RUT del comprador, no el de consumidor final 66666666-6.", rut=rut
            )
        required = (
            ("razón social", receptor.razon_social), ("giro", receptor.giro), ("dirección", receptor.address),
            ("comuna", receptor.comuna),
        )
        missing = [name for name, value in required if fit(value, 100) is None]
        if missing:
            raise _refuse("incomplete_receptor", "A la factura le falta del comprador: " + ", ".join(missing) + ".", missing=missing)
    name = receptor.razon_social if fit(receptor.razon_social, 100) else (CONSUMIDOR_FINAL_NAME if rut == CONSUMIDOR_FINAL_RUT else None)
    if name is None and tipo not in BOLETA_TYPES:
        raise _refuse("incomplete_receptor", "Falta la razón social del comprador.", missing=["razón social"])
    return DocReceptor(
        rut=rut, razon_social=name, giro=receptor.giro or None, correo=receptor.email or None,
        dir=receptor.address or None, cmna=receptor.comuna or None, ciudad=receptor.city or None,
    )


def _to_gross(amount: Decimal | int) -> Decimal:
    return (Decimal(amount) * _GROSS_FACTOR).quantize(_PRICE_PLACES)


def _with_store_tax(n: int, line: SaleLine) -> tuple[Decimal, int]:
    """Gross ``PrcItem`` and ``DescuentoMonto`` whose line amount is exactly the line's net + the store's IVA."""
    quantity = Decimal(line.quantity)
    net_price = Decimal(line.unit_price).quantize(_PRICE_PLACES)
    net = round_half_up(quantity * net_price) - line.discount
    if net < 0:
        raise _refuse(
            "line_discount_exceeds_amount",
            f"Línea {n} ({line.name!r}): el descuento {format_clp(line.discount)} es mayor que el monto neto de la línea "
            f"{format_clp(net + line.discount)}.",
            line=n, discount=line.discount, amount=net + line.discount,
        )
    charged = net + line.tax
    price = _to_gross(net_price)
    discount = round_half_up(quantity * price) - charged
    if discount < 0 or (discount and not line.discount):
        # The store rounded its IVA otherwise (per unit, before the discount): bill the charged amount per unit.
        return (Decimal(charged) / quantity).quantize(_PRICE_PLACES, rounding=ROUND_HALF_UP), 0
    return price, discount


def _detalle(n: int, line: SaleLine, *, convert_to_gross: bool, add_store_tax: bool) -> Detalle:
    price = Decimal(line.unit_price)
    discount = line.discount
    if add_store_tax and not line.exempt:
        price, discount = _with_store_tax(n, line)
    elif convert_to_gross and not line.exempt:
        price = _to_gross(price)
        discount = round_half_up(Decimal(discount) * _GROSS_FACTOR)
    else:
        price = price.quantize(_PRICE_PLACES)
    gross_amount = round_half_up(Decimal(line.quantity) * price)
    if discount > gross_amount:
        raise _refuse(
            "line_discount_exceeds_amount",
            f"Línea {n} ({line.name!r}): el descuento {format_clp(discount)} es mayor que el monto de la línea "
            f"{format_clp(gross_amount)}.",
            line=n, discount=discount, amount=gross_amount,
        )
    name = next((text for text in (line.name, line.sku) if fit(text, 80)), f"Ítem {n}")
    return Detalle(
        cdg_item=(CdgItem(vlr_codigo=line.sku),) if fit(line.sku, 35) else (),
        ind_exe=1 if line.exempt else None,
        nmb_item=name,
        dsc_item=line.description or None,
        qty_item=Decimal(line.quantity),
        prc_item=price or None,
        descuento_monto=discount or None,
        # A zero-price line (a gift) has no PrcItem (the XSD minimum is 0.000001), so its amount is explicit.
        monto_item=None if price else 0,
    )


def _check_composition(sale: Sale) -> None:
    exempt = [line.exempt for line in sale.lines]
    tipo = sale.tipo_dte
    if tipo in EXEMPT_TYPES and not all(exempt):
        raise _refuse(
            "taxable_line_on_exempt_document",
            f"El documento tipo {tipo} es solo exento, pero {exempt.count(False)} línea(s) son afectas; use "
            f"{33 if tipo == 34 else 39}.",
            taxable_lines=exempt.count(False),
        )
    if tipo in (33, 39) and all(exempt):
        raise _refuse(
            "exempt_only_on_taxable_document",
            f"Todas las líneas son exentas; un documento tipo {tipo} necesita líneas afectas (use {34 if tipo == 33 else 41}).",
        )
    if tipo in NOTE_TYPES and not sale.references:
        raise _refuse("missing_reference", f"Un documento tipo {tipo} debe referenciar el documento que corrige.")


def _referencias(sale: Sale) -> tuple[Referencia, ...]:
    refs = []
    for ref in sale.references:
        try:
            fecha = datetime.date.fromisoformat(ref.fecha)
        except (TypeError, ValueError):
            raise _refuse(
                "invalid_reference", f"Referencia al folio {ref.folio}: {ref.fecha!r} no es una fecha ISO.", fecha=ref.fecha
            ) from None
        refs.append(Referencia(
            tpo_doc_ref=str(ref.tipo_doc), folio_ref=str(ref.folio), fch_ref=fecha,
            cod_ref=ref.cod_ref, razon_ref=ref.razon or None,
        ))
    return tuple(refs)


def build_document(sale: Sale, *, emisor: Emisor, folio: int, fecha: datetime.date) -> Document:
    """The normalised document for ``sale`` whose ``MntTotal`` equals ``sale.paid_total``.

    Raises ``MappingRefused`` (code, message, details) when it cannot be built; never returns a
    document whose total differs from what the buyer paid.
    """
    _check_amounts(sale)
    tipo = sale.tipo_dte
    _check_composition(sale)
    boleta = tipo in BOLETA_TYPES
    gross = sale.price_basis == "gross"
    has_taxable = not all(line.exempt for line in sale.lines)

    store_tax = sale.store_tax
    lines = tuple(
        _detalle(n, line, convert_to_gross=boleta and not gross, add_store_tax=store_tax) for n, line in enumerate(sale.lines, start=1)
    )
    descuentos = ()
    if sale.global_discount:
        value = sale.global_discount
        if store_tax and has_taxable:
            tax = sale.global_discount_tax
            value += tax if tax is not None else round_half_up(Decimal(value) * IVA_RATE / 100)
        elif boleta and not gross and has_taxable:
            value = round_half_up(Decimal(value) * _GROSS_FACTOR)
        descuentos = (DscRcgGlobal(
            tpo_mov="D", glosa_dr="Descuento", tpo_valor="$", valor_dr=Decimal(value),
            ind_exe_dr=1 if tipo in EXEMPT_TYPES else None,
        ),)

    doc = Document(
        encabezado=Encabezado(
            id_doc=IdDoc(
                tipo_dte=tipo, folio=folio, fch_emis=fecha,
                ind_servicio=3 if boleta else None,
                mnt_bruto=1 if (gross or store_tax) and not boleta and tipo not in EXEMPT_TYPES and has_taxable
                and not sale.corrects_text else None,
            ),
            emisor=_emisor(emisor, tipo),
            receptor=_receptor(sale.receptor, tipo),
            # What LibreDTE's case 061_002 tells a text correction to send; its normaliser keeps the zeros.
            totales=Totales(mnt_neto=0, tasa_iva=IVA_RATE, iva=0, mnt_total=0) if sale.corrects_text else Totales(),
        ),
        detalle=lines,
        dsc_rcg_global=descuentos,
        referencia=_referencias(sale),
    )
    try:
        doc = normalize(sanitize(doc))
    except InvalidDocument as exc:
        raise _refuse("invalid_amounts", f"Los montos de la orden no forman un documento válido: {exc}.") from None
    _reconcile(doc, sale)
    return doc


def _reconcile(doc: Document, sale: Sale) -> None:
    t = doc.totales
    total = t.mnt_total
    if total != sale.paid_total:
        difference = total - sale.paid_total
        raise _refuse(
            "total_mismatch",
            f"El total del documento {format_clp(total)} (neto {format_clp(t.mnt_neto or 0)}, IVA {format_clp(t.iva or 0)}, "
            f"exento {format_clp(t.mnt_exe or 0)}) difiere del total pagado {format_clp(sale.paid_total)} en "
            f"{format_clp(abs(difference))} ({'más' if difference > 0 else 'menos'} que lo pagado).",
            document_total=total, paid_total=sale.paid_total, difference=difference,
            mnt_neto=t.mnt_neto or 0, iva=t.iva or 0, mnt_exe=t.mnt_exe or 0, price_basis=sale.price_basis,
        )
