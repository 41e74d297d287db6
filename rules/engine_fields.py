"""Where each store keeps the buyer's tax data: JMESPath field mappings over the raw order.

No Chilean store platform has RUT, razón social or giro fields; checkout plugins and apps put them in
``note_attributes`` (Shopify), ``meta_data`` (WooCommerce) or the billing object (Multivende), under
names that vary by store. So each field is a JMESPath expression the merchant can override, and
``default_field_mapping(platform)`` gives the names Chilean stores commonly use.

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


def _named(collection: str, key: str, names: list[str], value: str = "value") -> str:
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"{collection}[?contains([{quoted}], {key})].{value} | [0]"


def _shopify_note(names: list[str]) -> str:
    return _named("note_attributes", "name", names)


def _woo_meta(key: str) -> str:
    return f"meta_data[?key=='{key}'].value | [0]"


_SHOPIFY = {
    "rut": "[{}, billing_address.company, billing_address.address2]".format(
        _shopify_note(["rut", "RUT", "Rut", "rut_empresa", "RUT Empresa", "RUT empresa"])
    ),
    "razon_social": "[{}, billing_address.company]".format(
        _shopify_note(["razon_social", "Razón social", "Razón Social", "Razon social", "Razon Social"])
    ),
    "giro": _shopify_note(["giro", "Giro"]),
    "address": "[{}, join(' ', map(&to_string(@), [billing_address.address1, billing_address.address2][?@]))]".format(
        _shopify_note(["direccion", "Dirección", "Direccion", "Dirección de facturación"])
    ),
    "comuna": "[{}, billing_address.city]".format(_shopify_note(["comuna", "Comuna"])),
    "email": "[email, contact_email, customer.email]",
    "document_choice": _shopify_note(
        ["tipo_documento", "Tipo de documento", "Tipo documento", "documento", "Documento", "Boleta o factura"]
    ),
}

_WOOCOMMERCE = {
    # The company RUT first: stores that ask for both use it for facturas.
    "rut": f"[{_woo_meta('_billing_RUT_Empresa')}, {_woo_meta('_billing_rut_empresa')}, {_woo_meta('_billing_rut')}]",
    "razon_social": f"[{_woo_meta('_billing_razon_social')}, billing.company]",
    "giro": _woo_meta("_billing_giro"),
    "address": "join(' ', map(&to_string(@), [billing.address_1, billing.address_2][?@]))",
    "comuna": f"[{_woo_meta('_billing_comuna')}, billing.city]",
    "email": "billing.email",
    "document_choice": f"[{_woo_meta('_billing_documento')}, {_woo_meta('_billing_tipo_documento')}]",
}

_MULTIVENDE = {
    "rut": "[BillingAddress.taxId, Client.taxId]",
    "razon_social": "[BillingAddress.businessName, BillingAddress.fullName]",
    "giro": "BillingAddress.businessActivity",
    "address": "join(' ', map(&to_string(@), [BillingAddress.address_1, BillingAddress.address_2][?@]))",
    "comuna": "[BillingAddress.commune, BillingAddress.city]",
    "email": "Client.email",
    "document_choice": "BillingAddress.documentType",
}

_DEFAULTS = {
    "shopify": _SHOPIFY,
    # The built-in Demo store produces Shopify-shaped orders.
    "demo": _SHOPIFY,
    "woocommerce": _WOOCOMMERCE,
    "multivende": _MULTIVENDE,
}


def default_field_mapping(platform: str) -> dict[str, str]:
    """The JMESPath expression for each of ``MAPPED_FIELDS`` that suits ``platform``'s order JSON."""
    try:
        return dict(_DEFAULTS[platform])
    except KeyError:
        raise ValueError(f"No default field mapping for platform {platform!r}") from None


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
