"""Declared specs of a vendor connection's credentials and settings.

Each adapter declares ``credentials_spec`` (secrets: stored encrypted, write-only in the API, masked in
the dashboard) and ``config_spec`` (plain settings) as tuples of ``Field``. The same declaration drives
the API's validation, the setup wizard's forms and the README's tables, so a vendor's knowledge of what
it needs lives in its own package, once (in the way Saleor's ``CONFIG_STRUCTURE`` does).

``validate_values`` checks a dict against a spec: unknown keys, wrong JSON types, required fields
missing, each field's own validators; ``generated`` fields (e.g. a webhook secret we create) are
filled in when absent. Errors are Spanish and keyed by field name.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from .http import url_problem

TEXT, SECRET_TEXT, URL, BOOL, INT, DECIMAL, CHOICE = "text", "secret", "url", "bool", "int", "decimal", "choice"
MAX_TEXT = 4000


class SpecError(ValueError):
    """``errors``: field name → list of Spanish messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = TEXT
    required: bool = True
    help_text: str = ""
    default: Any = None
    choices: tuple[tuple[str, str], ...] = ()
    validators: tuple[Callable[[Any], Any], ...] = ()
    # Makes a value when none is given (e.g. a webhook secret we create and register ourselves).
    generated: Callable[[], str] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def secret(self) -> bool:
        return self.kind == SECRET_TEXT

    def describe(self) -> dict:
        """The field for programs (the API's connection types, the wizard)."""
        return {
            "name": self.name, "label": str(self.label), "kind": self.kind, "required": self.required,
            "secret": self.secret, "help_text": str(self.help_text), "default": self.default,
            "choices": [{"value": value, "label": str(label)} for value, label in self.choices],
            "generated": self.generated is not None,
        }


def random_secret() -> str:
    """Alphanumeric only: WooCommerce and some admin UIs mangle ``&``, ``;`` and quotes in secrets."""
    return secrets.token_hex(24)


def _convert(field: Field, value: Any) -> Any:
    if field.kind in (TEXT, SECRET_TEXT, URL, CHOICE):
        if not isinstance(value, str):
            raise ValueError(_("debe ser texto."))
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise ValueError(_("es demasiado largo (máximo %(n)s caracteres).") % {"n": MAX_TEXT})
        if field.kind == URL and value:
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        if field.kind == CHOICE and value not in {choice for choice, _label in field.choices}:
            raise ValueError(_("debe ser uno de: %(choices)s.") % {"choices": ", ".join(c for c, _l in field.choices)})
        return value
    if field.kind == BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "off", ""):
            return value.lower() in ("true", "1", "on")
        raise ValueError(_("debe ser verdadero o falso."))
    if field.kind in (INT, DECIMAL):
        if isinstance(value, bool):
            raise ValueError(_("debe ser un número."))
        try:
            number = int(value) if field.kind == INT else float(value)
        except (TypeError, ValueError):
            raise ValueError(_("debe ser un número.")) from None
        if field.kind == INT and isinstance(value, float) and not value.is_integer():
            raise ValueError(_("debe ser un número entero."))
        if field.minimum is not None and number < field.minimum:
            raise ValueError(_("debe ser al menos %(n)s.") % {"n": field.minimum})
        if field.maximum is not None and number > field.maximum:
            raise ValueError(_("debe ser como máximo %(n)s.") % {"n": field.maximum})
        return number
    raise ValueError(f"unknown field kind {field.kind!r}")


def validate_values(spec: tuple[Field, ...], values: Any, *, existing: dict | None = None) -> dict:
    """The cleaned values of ``values`` (merged over ``existing``, as an update does), or ``SpecError``.

    ``existing`` is what is stored already: a required field stored earlier need not be sent again.
    An empty string for a field that is not required removes it.
    """
    if not isinstance(values, dict):
        raise SpecError({"__all__": [str(_("Se esperaba un objeto JSON con los campos."))]})
    fields = {field.name: field for field in spec}
    errors: dict[str, list[str]] = {}
    merged = dict(existing or {})
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            known = ", ".join(fields) or str(_("ninguno"))
            errors.setdefault(name, []).append(str(_("campo desconocido; los campos son: %(known)s.") % {"known": known}))
            continue
        try:
            cleaned = _convert(field, value)
            for validator in field.validators:
                cleaned = validator(cleaned) if cleaned not in ("", None) else cleaned
        except ValueError as exc:
            errors.setdefault(name, []).append(f"{field.label}: {exc}")
            continue
        if cleaned == "" and not field.required:
            merged.pop(name, None)
        else:
            merged[name] = cleaned
    for field in spec:
        if field.name in merged and merged[field.name] not in ("", None):
            continue
        if field.generated is not None:
            merged[field.name] = field.generated()
        elif field.required and field.name not in errors:
            errors.setdefault(field.name, []).append(f"{field.label}: {_('es obligatorio.')}")
    if errors:
        raise SpecError(errors)
    return merged


def describe(spec: tuple[Field, ...]) -> list[dict]:
    return [field.describe() for field in spec]


def validate_connection_values(adapter, *, credentials: Any, config: Any, existing=None) -> tuple[dict, dict]:
    """(credentials, config) of a store or biller connection checked against ``adapter``'s specs, merged
    over ``existing``'s; raises Django's ``ValidationError`` keyed ``credentials.<name>`` / ``config.<name>``."""
    from django.core.exceptions import ValidationError

    errors: dict[str, list[str]] = {}
    cleaned = {}
    for part, spec, values in (("credentials", adapter.credentials_spec, credentials),
                               ("config", adapter.config_spec, config)):
        stored = getattr(existing, part, None) or {} if existing is not None else {}
        try:
            cleaned[part] = validate_values(spec, {} if values is None else values, existing=stored)
        except SpecError as exc:
            errors.update({f"{part}.{name}" if name != "__all__" else part: msgs for name, msgs in exc.errors.items()})
    if errors:
        raise ValidationError(errors)
    return cleaned["credentials"], cleaned["config"]
