"""The retention of a boleta de honorarios electrónica (BHE): the rate by period and the peso math.

Plain Python, no Django. The rates are Ley 21.133's schedule, keyed by the first period (AAAAMM) in
which each applies, as LibreDTE's ``Honorarios/Model/BoletaTerceros.php`` (``$tasas_retencion``) has
them and the press confirms (15.25 % in 2026; reference/biller-bhexpress.md §2.5). From 2028 on the
rate stays at 17 %.

Money is integer CLP: ``retencion = round_half_up(bruto × tasa)`` with ``Decimal``, ``liquido =
bruto − retencion``, as the BHExpress simulator and LibreDTE's form compute them.
"""
from __future__ import annotations

import datetime
from decimal import Decimal

from billers.dte.amounts import percent_of

RETENTION_RATES: tuple[tuple[int, Decimal], ...] = (
    (201608, Decimal("10.00")),
    (202001, Decimal("10.75")),
    (202101, Decimal("11.50")),
    (202201, Decimal("12.25")),
    (202301, Decimal("13.00")),
    (202401, Decimal("13.75")),
    (202501, Decimal("14.50")),
    (202601, Decimal("15.25")),
    (202701, Decimal("16.00")),
    (202801, Decimal("17.00")),
)


def periodo(fecha: datetime.date) -> int:
    return fecha.year * 100 + fecha.month


def retention_rate(fecha: datetime.date) -> Decimal | None:
    """The retention percentage (15.25 for 15.25 %) for a BHE dated ``fecha``; None before 2016-08."""
    rates = [rate for start, rate in RETENTION_RATES if periodo(fecha) >= start]
    return rates[-1] if rates else None


def retention(bruto: int, rate: Decimal) -> int:
    return percent_of(bruto, rate)


def bruto_for(liquido: int, rate: Decimal) -> int:
    """The gross whose net (gross − retention) is exactly ``liquido``.

    It always exists: one more peso of gross adds 0 or 1 peso of retention (the rate is below 50 %),
    so the net climbs one peso at a time and reaches every amount. The smallest such gross is taken.
    """
    bruto = max(0, int(Decimal(liquido) / (1 - rate / 100)) - 2)
    while bruto - retention(bruto, rate) < liquido:
        bruto += 1
    return bruto
