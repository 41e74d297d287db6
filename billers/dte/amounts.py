"""Peso arithmetic: Decimal with half-up rounding (Ley 18.267 art. 21, and PHP's ``round()``).

Python's ``round()`` rounds halves to even, which is wrong for pesos, and floats are never used.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

IVA_RATE = Decimal(19)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


def round_half_up(value: Decimal | int) -> int:
    return int(Decimal(value).quantize(_ONE, rounding=ROUND_HALF_UP))


def percent_of(amount: int | Decimal, pct: Decimal) -> int:
    return round_half_up(Decimal(amount) * pct / _HUNDRED)


def neto_iva_from_gross(gross: int, rate: Decimal | None) -> tuple[int, int]:
    """LibreDTE's ``calcularNetoIVA``: net = round(gross / 1.19) and IVA = gross - net.

    Defining IVA as the difference keeps net + IVA equal to the gross figure, which is what makes the
    document total agree with what the buyer paid.
    """
    if not rate:
        return 0, 0
    neto = round_half_up(Decimal(gross) / (_ONE + rate / _HUNDRED))
    return neto, gross - neto


# Additional taxes (A, added to the total) and retentions (R, subtracted), with their rates, as in
# LibreDTE's resources/data/repository/impuestos_adicionales_retenciones.php.
IMPUESTOS_ADICIONALES: dict[int, tuple[str, Decimal]] = {
    15: ("R", Decimal("19")),
    17: ("A", Decimal("5")),
    18: ("A", Decimal("5")),
    19: ("A", Decimal("12")),
    23: ("A", Decimal("15")),
    24: ("A", Decimal("31.5")),
    25: ("A", Decimal("20.5")),
    26: ("A", Decimal("20.5")),
    27: ("A", Decimal("10")),
    271: ("A", Decimal("18")),
    30: ("R", Decimal("10")),
    31: ("R", Decimal("19")),
    32: ("R", Decimal("8")),
    33: ("R", Decimal("8")),
    34: ("R", Decimal("4")),
    36: ("R", Decimal("10")),
    37: ("R", Decimal("10")),
    38: ("R", Decimal("19")),
    39: ("R", Decimal("19")),
    41: ("R", Decimal("19")),
    44: ("A", Decimal("15")),
    45: ("A", Decimal("50")),
    47: ("R", Decimal("19")),
    48: ("R", Decimal("14")),
}
