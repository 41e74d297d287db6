"""The LibreDTE normaliser port: rounding, gross lines, taxes, and the JSON form."""
from decimal import Decimal

import pytest

from billers.dte import InvalidDocument, document_from_libredte_json, document_to_libredte_json, normalize
from billers.dte.amounts import neto_iva_from_gross, round_half_up

FACTURA_HEADER = {
    "IdDoc": {"TipoDTE": 33, "Folio": 1},
    "Emisor": {"RUTEmisor": "76192083-9", "RznSoc": "SASCO SpA", "GiroEmis": "Informática", "Acteco": 726000},
    "Receptor": {"RUTRecep": "60803000-K", "RznSocRecep": "SII", "GiroRecep": "Gobierno", "DirRecep": "Santiago", "CmnaRecep": "Santiago"},
}


def totales(header, detalle, **extra):
    data = {"Encabezado": header, "Detalle": detalle, **extra}
    return document_to_libredte_json(normalize(document_from_libredte_json(data)))["Encabezado"]["Totales"]


@pytest.mark.parametrize("value, expected", [("0.5", 1), ("1.5", 2), ("2.5", 3), ("2.49", 2), ("-0.5", -1)])
def test_round_half_up_is_not_bankers_rounding(value, expected):
    assert round_half_up(Decimal(value)) == expected


def test_iva_rounds_half_up():
    # 50 × 0.19 = 9.5: Python's round() would give 10 only by luck of parity; 150 × 0.19 = 28.5 → 29.
    assert totales(FACTURA_HEADER, [{"NmbItem": "x", "PrcItem": 150}]) == {"MntNeto": 150, "TasaIVA": 19, "IVA": 29, "MntTotal": 179}


@pytest.mark.parametrize("gross, neto, iva", [(680, 571, 109), (86710, 72866, 13844), (1190, 1000, 190)])
def test_neto_iva_from_gross_keeps_the_gross_total(gross, neto, iva):
    assert neto_iva_from_gross(gross, Decimal(19)) == (neto, iva)


def test_mnt_bruto_lines_are_gross():
    header = {**FACTURA_HEADER, "IdDoc": {"TipoDTE": 33, "Folio": 1, "MntBruto": 1}}
    assert totales(header, [{"NmbItem": "x", "QtyItem": 2, "PrcItem": 340}]) == {"MntNeto": 571, "TasaIVA": 19, "IVA": 109, "MntTotal": 680}


def test_additional_tax_ila_is_added_to_the_total():
    # LibreDTE case 033_008: pisco, 1 000 net, code 24 at 31.5 %.
    assert totales(FACTURA_HEADER, [{"NmbItem": "Pisco", "PrcItem": 1000, "CodImpAdic": 24}]) == {
        "MntNeto": 1000, "TasaIVA": 19, "IVA": 190,
        "ImptoReten": [{"TipoImp": 24, "TasaImp": 31.5, "MontoImp": 315}], "MntTotal": 1505,
    }


def test_iva_anticipado_harina_with_decimal_quantity():
    # LibreDTE case 033_003: 2.5 × 280 000 = 700 000; IVA 133 000; code 19 at 12 % = 84 000.
    result = totales(FACTURA_HEADER, [{"NmbItem": "Harina", "QtyItem": 2.5, "PrcItem": 280000, "CodImpAdic": 19}])
    assert (result["MntNeto"], result["IVA"], result["MntTotal"]) == (700000, 133000, 917000)


def test_retention_is_subtracted_and_reported_as_iva_no_retenido():
    result = totales(FACTURA_HEADER, [{"NmbItem": "Madera", "PrcItem": 10000, "CodImpAdic": 33}])
    assert result["ImptoReten"] == [{"TipoImp": 33, "TasaImp": 8, "MontoImp": 800}]
    assert (result["IVA"], result["IVANoRet"], result["MntTotal"]) == (1900, 1100, 11100)


def test_line_percent_surcharge_and_global_surcharge():
    detalle = [{"NmbItem": "x", "QtyItem": 3, "PrcItem": 1001, "RecargoPct": 10}]
    # 3003 + round(300.3) = 3303; global +5 % = round(165.15) = 165 → 3468; IVA round(658.92) = 659.
    result = totales(FACTURA_HEADER, detalle, DscRcgGlobal=[{"TpoMov": "R", "TpoValor": "%", "ValorDR": 5}])
    assert (result["MntNeto"], result["IVA"], result["MntTotal"]) == (3468, 659, 4127)


def test_exempt_and_taxable_lines_on_a_factura():
    detalle = [{"NmbItem": "a", "PrcItem": 1000}, {"NmbItem": "b", "PrcItem": 500, "IndExe": 1}]
    assert totales(FACTURA_HEADER, detalle) == {"MntNeto": 1000, "MntExe": 500, "TasaIVA": 19, "IVA": 190, "MntTotal": 1690}


def test_boleta_discount_targets_the_gross_total_and_iva_is_the_difference():
    header = {"IdDoc": {"TipoDTE": 39}, "Emisor": {"RUTEmisor": "76192083-9"}, "Receptor": {"RUTRecep": "66666666-6"}}
    detalle = [{"NmbItem": "a", "PrcItem": 2000}, {"NmbItem": "b", "QtyItem": 2, "PrcItem": 1500}]
    assert totales(header, detalle) == {"MntNeto": 4202, "IVA": 798, "MntTotal": 5000}


def test_discount_larger_than_the_line_is_invalid():
    with pytest.raises(InvalidDocument, match="negative amount"):
        totales(FACTURA_HEADER, [{"NmbItem": "x", "PrcItem": 100, "DescuentoMonto": 101}])


def test_unsupported_indexe_is_refused():
    with pytest.raises(InvalidDocument, match="IndExe = 3"):
        totales(FACTURA_HEADER, [{"NmbItem": "x", "PrcItem": 100, "IndExe": 3}])


def test_json_round_trip_keeps_every_field():
    data = {
        "Encabezado": {**FACTURA_HEADER, "IdDoc": {"TipoDTE": 61, "Folio": 7, "FchEmis": "2026-03-01"}},
        "Detalle": [{"NroLinDet": 1, "CdgItem": [{"TpoCodigo": "INT1", "VlrCodigo": "SKU-1"}], "NmbItem": "x", "QtyItem": 1.25, "PrcItem": 0.1, "MontoItem": 7}],
        "Referencia": [{"NroLinRef": 1, "TpoDocRef": "33", "FolioRef": "5", "FchRef": "2026-02-01", "CodRef": 1, "RazonRef": "Anula"}],
    }
    data["Encabezado"]["Emisor"] = {**FACTURA_HEADER["Emisor"], "Acteco": [726000]}
    assert document_to_libredte_json(document_from_libredte_json(data)) == data


def test_boletas_use_their_own_emisor_names_and_drop_dte_only_fields():
    data = {
        "Encabezado": {"IdDoc": {"TipoDTE": 39}, "Emisor": {"RUTEmisor": "76192083-9", "RznSoc": "SASCO", "GiroEmis": "Giro", "Acteco": 1},
                       "Receptor": {"RUTRecep": "66666666-6", "GiroRecep": "no"}},
        "Detalle": [{"NmbItem": "x", "PrcItem": 1190}],
    }
    encabezado = document_to_libredte_json(normalize(document_from_libredte_json(data)))["Encabezado"]
    assert encabezado["Emisor"] == {"RUTEmisor": "76192083-9", "RznSocEmisor": "SASCO", "GiroEmisor": "Giro"}
    assert encabezado["Receptor"] == {"RUTRecep": "66666666-6"}
    assert encabezado["IdDoc"] == {"TipoDTE": 39, "IndServicio": 3}


NOTE_HEADER = {**FACTURA_HEADER, "IdDoc": {"TipoDTE": 61, "Folio": 1}}
TEXT_CORRECTION_REFERENCE = [{"TpoDocRef": "33", "FolioRef": "1", "FchRef": "2016-01-01", "CodRef": 2,
                              "RazonRef": "DONDE DICE Giro1 DEBE DECIR Giro2"}]


def test_text_correction_note_keeps_zero_amounts_and_drops_the_rate():
    # Shaped like LibreDTE's case 061_002: Totales sent as MntNeto 0, TasaIVA 19, IVA 0, MntTotal 0 and one line
    # without price; LibreDTE's normaliser answers MntNeto 0, IVA 0, MntTotal 0 (TasaIVA dropped: no net amount).
    header = {**NOTE_HEADER, "Totales": {"MntNeto": 0, "TasaIVA": 19, "IVA": 0, "MntTotal": 0}}
    result = totales(header, [{"NmbItem": "Corrige Giro", "QtyItem": 1}], Referencia=TEXT_CORRECTION_REFERENCE)
    assert result == {"MntNeto": 0, "IVA": 0, "MntTotal": 0}


@pytest.mark.parametrize("tipo", [56, 61])
def test_note_without_net_amount_says_mnt_neto_zero(tipo):
    header = {**NOTE_HEADER, "IdDoc": {"TipoDTE": tipo, "Folio": 1}}
    result = totales(header, [{"NmbItem": "Asesoría", "PrcItem": 5000, "IndExe": 1}], Referencia=TEXT_CORRECTION_REFERENCE)
    assert result == {"MntNeto": 0, "MntExe": 5000, "MntTotal": 5000}


def test_a_factura_without_net_amount_has_no_mnt_neto():
    assert totales(FACTURA_HEADER, [{"NmbItem": "b", "PrcItem": 500, "IndExe": 1}]) == {"MntExe": 500, "MntTotal": 500}


def test_iva_given_on_a_note_without_net_amount_is_refused():
    header = {**NOTE_HEADER, "Totales": {"IVA": 190}}
    with pytest.raises(InvalidDocument, match="IVA 190 is given"):
        totales(header, [{"NmbItem": "Corrige Giro", "QtyItem": 1}], Referencia=TEXT_CORRECTION_REFERENCE)
