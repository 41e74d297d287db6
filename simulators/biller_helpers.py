"""Small pieces the biller simulators share: RUT parsing, a plain one-page PDF, one test signer per emisor.

RUT parsing and the plain PDF are the simulators' own, so a vendor's answers do not change when the
product's RUT handling or SII-layout PDF does; signing reuses the DTE core's test certificate and CAFs.
"""
from __future__ import annotations

import io
import re
import threading

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas

from billers.dte.credentials import DteSigner, test_signer

_RUT = re.compile(r"^\s*(\d{1,3}(?:\.?\d{3})*)\s*-\s*([\dkK])\s*$")
_signers: dict[tuple[str, str], DteSigner] = {}
_signers_lock = threading.Lock()


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


def signer_for(rut: str, razon_social: str) -> DteSigner:
    """The test certificate and CAFs an emisor signs with, built once per process.

    Building one takes a few hundred milliseconds of RSA key generation; behind a lock, a burst of
    first requests waits for one build instead of running a hundred at once (``test_signer``'s own
    cache does not stop that)."""
    with _signers_lock:
        if (rut, razon_social) not in _signers:
            _signers[(rut, razon_social)] = test_signer(rut, razon_social)
        return _signers[(rut, razon_social)]
