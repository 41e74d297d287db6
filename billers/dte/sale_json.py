"""``Sale`` ⇄ JSON-safe dict, so a decided sale can be stored on the emission row unchanged."""
from dataclasses import asdict
from decimal import Decimal

from .sale import Receptor, Reference, Sale, SaleLine


def sale_to_dict(sale: Sale) -> dict:
    data = asdict(sale)
    for line in data["lines"]:
        line["quantity"] = str(line["quantity"])
        line["unit_price"] = str(line["unit_price"])
    return data


def sale_from_dict(data: dict) -> Sale:
    lines = tuple(
        SaleLine(**{**line, "quantity": Decimal(line["quantity"]), "unit_price": Decimal(line["unit_price"])})
        for line in data["lines"]
    )
    return Sale(
        **{
            **data,
            "lines": lines,
            "receptor": Receptor(**data["receptor"]),
            "references": tuple(Reference(**ref) for ref in data.get("references", ())),
        }
    )
