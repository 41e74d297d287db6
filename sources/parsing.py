"""Typed field readers shared by the store parsers: a store body of the wrong shape (an address that is
a string, a customer that is a list, an id of 500 characters, a price of 1e30) is refused here with a
reason that names the field, in Spanish, never by a crash further down or by the database."""
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import OrderParseError

MAX_ID = 100
MAX_TEXT = 1000
# The SII's amounts have at most 12 integer digits (Dec12_6Type); nothing larger is a real order.
MAX_AMOUNT = Decimal(10) ** 12


def list_of_objects(container: dict, key: str, where: str = "") -> list[dict]:
    value = container.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise OrderParseError(f"{where}{key} debe ser una lista de objetos.")
    return value


def obj(container: dict, key: str, where: str = "") -> dict:
    """The object under ``key`` ({} when absent or null)."""
    value = container.get(key)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise OrderParseError(f"{where}{key} debe ser un objeto, no {_kind(value)}.")
    return value


def text(value: Any, field: str, max_length: int = MAX_TEXT) -> str:
    """A text value ("" when absent); numbers are read as their text; objects and lists are refused."""
    if value is None or value is False:
        return ""
    if isinstance(value, (dict, list, bool)):
        raise OrderParseError(f"{field} debe ser texto, no {_kind(value)}.")
    result = str(value).strip()
    if len(result) > max_length:
        raise OrderParseError(f"{field} tiene {len(result)} caracteres (máximo {max_length}).")
    return result


def identifier(value: Any, field: str) -> str:
    """An order or line id: present, text or an integer, at most ``MAX_ID`` characters."""
    if value in (None, "") or isinstance(value, (dict, list, bool, float)):
        raise OrderParseError(f"{field} falta o no es un identificador válido: {_short(value)}.")
    return text(value, field, MAX_ID)


def currency(value: Any, field: str = "currency") -> str:
    code = text(value, field, 10).upper()
    if code and not (len(code) == 3 and code.isalpha()):
        raise OrderParseError(f"{field} no es un código de moneda ISO 4217: {_short(value)}.")
    return code


def money(value: Any, field: str) -> Decimal:
    if value is None or isinstance(value, (bool, dict, list)):
        raise OrderParseError(f"{field} falta o no es un número: {_short(value)}.")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise OrderParseError(f"{field} no es un número: {_short(value)}.") from None
    if not amount.is_finite():
        raise OrderParseError(f"{field} no es un número finito: {_short(value)}.")
    if abs(amount) >= MAX_AMOUNT:
        raise OrderParseError(f"{field} = {_short(value)} excede el máximo que admite un documento (12 dígitos).")
    return amount


def iso_datetime(value: Any, field: str) -> datetime | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise OrderParseError(f"{field} no es una fecha ISO 8601: {_short(value)}.")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise OrderParseError(f"{field} no es una fecha ISO 8601: {_short(value)}.") from None


def _kind(value: Any) -> str:
    return {dict: "un objeto", list: "una lista", str: "texto", bool: "un booleano"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:60] + "…"
