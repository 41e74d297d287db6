"""Where each store keeps the buyer's tax data: JMESPath field mappings over the raw order.

No Chilean store platform has RUT, razón social or giro fields; checkout plugins and apps put them in
``note_attributes`` (Shopify), ``meta_data`` (WooCommerce) or the billing object (Multivende), under
names that vary by store. So each field is a JMESPath expression the merchant can override; each store
package declares the names its stores commonly use (``default_field_mapping`` in ``sources/<platform>/``),
and the engine receives that mapping.

An expression may return a list of candidates (a multi-select such as ``[a, b, c]``): the first
usable one wins. For ``rut`` that is the first valid RUT, else the first value that looks like a RUT
(so the order can be held with "invalid RUT" rather than "missing"); values that are not RUT-like at
all (e.g. "Depto 56" in Shopify's address2 fallback) are ignored. For ``razon_social`` a RUT-like
value is skipped, because stores that relabel Shopify's *company* field as "RUT" would otherwise
put the RUT in the razón social.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jmespath
from cl_sii.rut import Rut
from jmespath.exceptions import JMESPathError

MAPPED_FIELDS = ("rut", "razon_social", "giro", "address", "comuna", "email", "document_choice")

# Digits with optional dots/spaces, then an optional hyphen and the check digit: "76.086.428-5",
# "760864285", "76086428-k". Used only to tell a mistyped RUT from unrelated text.
RUT_LIKE = re.compile(r"\d[\d.\s]*-?\s*[\dkK]")


class FieldMappingError(Exception):
    """A field expression failed on this order (e.g. ``join`` over a number)."""


@lru_cache(maxsize=512)
def compile_expression(expression: str):
    """Compiles once per distinct expression; raises ``jmespath`` ``ParseError`` when invalid."""
    return jmespath.compile(expression)


def parse_rut(value: str) -> Rut | None:
    """The RUT when ``value`` is one with a correct check digit, else ``None``."""
    try:
        return Rut(value, validate_dv=True)
    except (ValueError, TypeError):
        return None


def read_fields(raw: dict[str, Any], mapping: dict[str, str]) -> dict[str, str]:
    """Evaluates every mapped field on the raw order; missing values are ``""``."""
    values = {}
    for name in MAPPED_FIELDS:
        expression = mapping.get(name)
        if not expression:
            values[name] = ""
            continue
        try:
            found = compile_expression(expression).search(raw)
        except JMESPathError as exc:
            raise FieldMappingError(f"{name}: {exc}") from exc
        values[name] = _pick(name, _candidates(found))
    return values


def _candidates(found: Any) -> list[str]:
    items = found if isinstance(found, list) else [found]
    texts = []
    for item in items:
        # bool is an int subclass, and True is never a RUT or an address.
        if isinstance(item, str) or (isinstance(item, (int, float)) and not isinstance(item, bool)):
            text = str(item).strip()
            if text:
                texts.append(text)
    return texts


def _pick(name: str, candidates: list[str]) -> str:
    if name == "rut":
        valid = [c for c in candidates if parse_rut(c) is not None]
        rut_like = [c for c in candidates if RUT_LIKE.fullmatch(c)]
        return (valid or rut_like or [""])[0]
    if name == "razon_social":
        candidates = [c for c in candidates if not RUT_LIKE.fullmatch(c)]
    return candidates[0] if candidates else ""
