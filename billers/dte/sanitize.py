"""Making texts fit the SII: ISO-8859-1 only, within the schema's length limits; RUTs in canonical form.

* Characters ISO-8859-1 cannot hold are replaced one by one, keeping the rest of the text: typographic
  quotes and dashes become their ASCII twins, other characters their compatibility decomposition when
  that is Latin-1 ("ﬁ" → "fi", "ś" → "s", "…" → "..."), and anything else (emoji, CJK) becomes "?".
  Control characters, which XML 1.0 forbids or which print as garbage, become spaces.
* Texts are then trimmed and truncated to the XSD ``maxLength`` of their element. Truncation only ever
  shortens descriptive text, never amounts.
* RUTs are validated and formatted with cl-sii's ``Rut`` (modulo 11 included): ``76086428-5``, upper-case
  K, no dots, which is the XSD ``RUTType``.
"""
from __future__ import annotations

import unicodedata
from dataclasses import fields, replace
from functools import cache

from cl_sii.rut import Rut

_PUNCTUATION = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2022": "\u00b7", "\u20ac": "EUR",
}
_REPLACEMENT = "?"


def _latin1_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 and ch not in "\t\n\r" or 0x7F <= code <= 0x9F:
        return " "
    if code <= 0xFF:
        return ch
    if ch in _PUNCTUATION:
        return _PUNCTUATION[ch]
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if decomposed and all(ord(c) <= 0xFF and ord(c) >= 0x20 for c in decomposed):
        return decomposed
    return _REPLACEMENT


class _Latin1Table(dict):
    """``str.translate`` table filled on first sight of each code point (the loop then runs in C)."""

    def __missing__(self, code: int) -> str:
        self[code] = _latin1_char(chr(code))
        return self[code]


_LATIN1_TABLE = _Latin1Table()


def to_latin1(text: str) -> str:
    """``text`` with every character ISO-8859-1 cannot encode replaced (see module docstring)."""
    if text.isascii() and text.isprintable():
        return text
    return text.translate(_LATIN1_TABLE)


def fit(text: str | None, max_length: int) -> str | None:
    if text is None:
        return None
    cleaned = to_latin1(text).strip()[:max_length].rstrip()
    return cleaned or None


def clean_rut(value: str | None) -> str | None:
    """The canonical RUT (``12345678-5``) if ``value`` is a valid RUT that fits the XSD, else None."""
    if not value:
        return None
    try:
        rut = Rut(value.strip(), validate_dv=True)
    except (ValueError, TypeError):
        return None
    canonical = rut.canonical
    return canonical if 3 <= len(canonical) <= 10 and int(rut.digits) > 0 else None


# XSD maxLength per (class name, field name); the boleta schema uses the same limits for the texts
# both families share.
FIELD_LIMITS: dict[tuple[str, str], int] = {
    ("Emisor", "razon_social"): 100,
    ("Emisor", "giro"): 80,
    ("Emisor", "correo"): 80,
    ("Emisor", "dir_origen"): 70,
    ("Emisor", "cmna_origen"): 20,
    ("Emisor", "ciudad_origen"): 20,
    ("Receptor", "cdg_int_recep"): 20,
    ("Receptor", "razon_social"): 100,
    ("Receptor", "giro"): 40,
    ("Receptor", "contacto"): 80,
    ("Receptor", "correo"): 80,
    ("Receptor", "dir"): 70,
    ("Receptor", "cmna"): 20,
    ("Receptor", "ciudad"): 20,
    ("CdgItem", "tpo_codigo"): 10,
    ("CdgItem", "vlr_codigo"): 35,
    ("Detalle", "nmb_item"): 80,
    ("Detalle", "dsc_item"): 1000,
    ("Detalle", "unmd_item"): 4,
    ("DscRcgGlobal", "glosa_dr"): 45,
    ("Referencia", "tpo_doc_ref"): 3,
    ("Referencia", "folio_ref"): 18,
    ("Referencia", "razon_ref"): 90,
}
# Texts that must stay exactly as given (RUTs are validated, not rewritten; codes are enumerations).
_UNTOUCHED = {"rut", "tpo_mov", "tpo_valor"}


@cache
def _text_plan(cls: type) -> tuple[tuple[str, int | None, bool], ...]:
    """(attribute, length limit, empty default) for every field sanitising looks at; once per class."""
    return tuple(
        (f.name, FIELD_LIMITS.get((cls.__name__, f.name)), f.default == "")
        for f in fields(cls)
        if f.name not in _UNTOUCHED
    )


def sanitize(obj):
    """Return a copy of a document (or any part of it) with every text made Latin-1 and cut to size."""
    changes = {}
    for name, limit, empty_default in _text_plan(type(obj)):
        value = getattr(obj, name)
        if isinstance(value, str):
            new = fit(value, limit) if limit else (to_latin1(value).strip() or None)
            if empty_default and new is None:
                new = ""
        elif hasattr(value, "__dataclass_fields__"):
            new = sanitize(value)
        elif isinstance(value, tuple) and value and hasattr(value[0], "__dataclass_fields__"):
            new = tuple(sanitize(v) for v in value)
        else:
            continue
        if new is not value:
            changes[name] = new
    return replace(obj, **changes) if changes else obj
