"""How documents and amounts are named to people: one place for the whole product."""
from __future__ import annotations

from .types import document_name

__all__ = ["document_name", "format_clp"]


def format_clp(amount: int) -> str:
    """Whole pesos the Chilean way: ``$36.960`` (negative: ``-$1.000``)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,}".replace(",", ".")
