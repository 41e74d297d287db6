"""Small pieces the biller simulators share: RUT parsing and a plain one-page PDF.

Not product code: the product has its own RUT handling and its own SII-layout PDF (``billers.dte``);
these exist so a simulator can answer like a vendor without depending on either changing.
"""
from __future__ import annotations

import io
import re

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas

_RUT = re.compile(r"^\s*(\d{1,3}(?:\.?\d{3})*)\s*-\s*([\dkK])\s*$")


def rut_dv(number: int) -> str:
    """The check digit of a RUT number (módulo 11, as the SII computes it)."""
    total, factor = 0, 2
    while number:
        total += (number % 10) * factor
        number //= 10
        factor = 2 if factor == 7 else factor + 1
    digit = 11 - total % 11
    return {10: "K", 11: "0"}.get(digit, str(digit))


def split_rut(value: object) -> tuple[int, str] | None:
    """``"76.192.083-9"`` → ``(76192083, "9")`` when the check digit is right; otherwise None."""
    match = _RUT.match(str(value))
    if not match:
        return None
    number, dv = int(match.group(1).replace(".", "")), match.group(2).upper()
    return (number, dv) if number > 0 and rut_dv(number) == dv else None


def simple_pdf(title: str, lines: list[str]) -> bytes:
    """A valid one-page PDF with a title and lines of text (what a vendor's PDF endpoint returns)."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER, invariant=True)
    canvas.setTitle(title)
    width, height = LETTER
    canvas.setFont("Helvetica-Bold", 14)
    canvas.drawString(50, height - 60, title)
    canvas.setFont("Helvetica", 9)
    y = height - 90
    for line in lines:
        if y < 50:
            break
        canvas.drawString(50, y, line[:120])
        y -= 13
    canvas.save()
    return buffer.getvalue()
