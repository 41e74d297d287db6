"""Field readers shared by the store parsers: each failure names the field, for the order page."""
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import OrderParseError


def list_of_objects(container: dict, key: str, where: str = "") -> list[dict]:
    value = container.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise OrderParseError(f"{where}{key} must be a list of objects")
    return value


def money(value: Any, field: str) -> Decimal:
    if value is None or isinstance(value, bool):
        raise OrderParseError(f"{field} is missing or not a number: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise OrderParseError(f"{field} is not a number: {value!r}") from None
    if not amount.is_finite():
        raise OrderParseError(f"{field} is not a finite number: {value!r}")
    return amount


def iso_datetime(value: Any, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise OrderParseError(f"{field} is not an ISO 8601 date: {value!r}") from None
