"""A decided sale survives its JSON form on the emission row unchanged, line taxes and references included."""
import json
from decimal import Decimal

from billers.dte.sale import Receptor, Reference, Sale, SaleLine
from billers.dte.sale_json import sale_from_dict, sale_to_dict


def test_store_tax_sale_round_trips_through_json():
    sale = Sale(
        tipo_dte=61,
        lines=(SaleLine("Jeans", Decimal(1), Decimal("21003"), discount=2100, tax=3592), SaleLine("Libro", Decimal("0.5"), Decimal("9990.5"), exempt=True)),
        paid_total=31393,
        price_basis="net",
        receptor=Receptor(rut="76086428-5", razon_social="Comercial Los Andes SpA", giro="Comercio", address="Calle 1", comuna="Ñuñoa"),
        global_discount=100,
        global_discount_tax=19,
        references=(Reference(33, 881, "2026-11-18", cod_ref=1, razon="Anula documento"),),
        external_ref="#1046",
    )

    assert sale_from_dict(json.loads(json.dumps(sale_to_dict(sale)))) == sale


def test_a_sale_stored_before_line_taxes_reads_with_none():
    stored = {"tipo_dte": 39, "lines": [{"name": "x", "quantity": "1", "unit_price": "1190", "discount": 0, "exempt": False,
                                        "sku": "", "description": ""}],
              "paid_total": 1190, "price_basis": "gross", "receptor": {}, "global_discount": 0, "references": [],
              "currency": "CLP", "external_ref": ""}

    sale = sale_from_dict(stored)

    assert (sale.lines[0].tax, sale.global_discount_tax, sale.store_tax, sale.corrects_text) == (None, None, False, False)
