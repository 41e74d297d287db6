"""WooCommerce REST v3 order JSON (also the ``order.*`` webhook body) → neutral ``OrderData``.

Pure functions: no HTTP, no Django. Choices made where WooCommerce leaves room:

- Payment: ``completed`` is paid (the merchant closed the sale, e.g. cash on delivery collected, even
  when ``date_paid`` is empty); ``processing`` is paid only with ``date_paid`` (bank transfer / COD
  orders sit in ``processing`` unpaid); ``pending``, ``on-hold`` and ``checkout-draft`` are pending;
  a paid order with refunds is ``partially_refunded``.
- WooCommerce stores line amounts without tax. When ``prices_include_tax`` is true the line tax is
  added back, so unit prices and discounts are gross, as the buyer saw them; otherwise they are the
  stored amounts (net, or gross in the many Chilean stores that do not compute IVA in WooCommerce).
- Positive ``fee_lines`` are charges the buyer paid, so they become lines; negative fees are how
  some plugins give discounts, so they add up to ``global_discount``. Coupons are already in the line
  totals (``subtotal - total``).
- Comuna: the ``_billing_comuna`` meta that Chilean checkout plugins add, else ``billing.city``.
- ``channel`` is ``created_via`` (``checkout``, ``admin``, ``rest-api``), so rules can leave out
  orders typed in by hand.
- Dates: the ``*_gmt`` twins, read as UTC; the site-local ones only when the twin is missing.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..base import OrderParseError
from ..orderdata import (
    Buyer,
    OrderData,
    OrderLine,
    PaymentStatus,
    RefundData,
    RefundLine,
    ShippingLine,
)
from ..parsing import list_of_objects, money

STATUS = {
    "pending": PaymentStatus.PENDING,
    "on-hold": PaymentStatus.PENDING,
    "checkout-draft": PaymentStatus.PENDING,
    "cancelled": PaymentStatus.CANCELLED,
    "trash": PaymentStatus.CANCELLED,
    "refunded": PaymentStatus.REFUNDED,
    "failed": PaymentStatus.FAILED,
}


def parse_order(raw: dict) -> OrderData:
    """Reads one WooCommerce order; raises ``OrderParseError`` naming the field when it cannot."""
    if not isinstance(raw, dict):
        raise OrderParseError(f"WooCommerce order must be a JSON object, got {type(raw).__name__}")
    if raw.get("id") in (None, ""):
        raise OrderParseError("WooCommerce order has no id")
    external_id = str(raw["id"])
    if raw.get("total") is None:
        raise OrderParseError(f"WooCommerce order {external_id} has no total")
    gross = raw.get("prices_include_tax") is True
    meta = _meta(raw.get("meta_data"))
    refunds = tuple(_refund(refund, index, gross) for index, refund in enumerate(list_of_objects(raw, "refunds")))
    lines = [_line(item, index, gross) for index, item in enumerate(list_of_objects(raw, "line_items"))]
    global_discount = Decimal("0")
    for index, fee in enumerate(list_of_objects(raw, "fee_lines")):
        amount = money(fee.get("total"), f"fee_lines[{index}].total")
        if gross:
            amount += money(fee.get("total_tax") or "0", f"fee_lines[{index}].total_tax")
        if amount < 0:
            global_discount -= amount
        else:
            lines.append(
                OrderLine(
                    line_id=f"fee-{fee.get('id') or index}",
                    name=html.unescape(str(fee.get("name") or "Cargo")),
                    quantity=Decimal("1"),
                    unit_price=amount,
                    taxable=fee.get("tax_status") != "none",
                )
            )
    status = str(raw.get("status") or "")
    date_paid = _datetime(raw, "date_paid")
    payment_status = _payment_status(status, date_paid, refunds)
    return OrderData(
        external_id=external_id,
        number=str(raw.get("number") or external_id),
        currency=str(raw.get("currency") or "").upper(),
        payment_status=payment_status,
        paid_total=money(raw.get("total"), "total"),
        lines=tuple(lines),
        created_at=_datetime(raw, "date_created"),
        paid_at=date_paid,
        shipping=tuple(_shipping(line, index, gross) for index, line in enumerate(list_of_objects(raw, "shipping_lines"))),
        global_discount=global_discount,
        prices_include_tax=raw.get("prices_include_tax") if isinstance(raw.get("prices_include_tax"), bool) else None,
        buyer=_buyer(raw.get("billing") or {}, meta),
        channel=str(raw.get("created_via") or ""),
        cancelled=status == "cancelled",
        refunds=refunds,
        raw=raw,
    )


def _payment_status(status: str, date_paid: datetime | None, refunds: tuple[RefundData, ...]) -> str:
    if status == "completed" or (status == "processing" and date_paid is not None):
        return PaymentStatus.PARTIALLY_REFUNDED if refunds else PaymentStatus.PAID
    if status == "processing":
        return PaymentStatus.PENDING
    return STATUS.get(status, PaymentStatus.UNKNOWN)


def _line(item: Any, index: int, gross: bool) -> OrderLine:
    where = f"line_items[{index}]"
    quantity = money(item.get("quantity"), f"{where}.quantity")
    if quantity <= 0:
        raise OrderParseError(f"{where}.quantity must be positive, got {quantity}")
    subtotal = money(item.get("subtotal"), f"{where}.subtotal")
    total = money(item.get("total"), f"{where}.total")
    if gross:
        subtotal += money(item.get("subtotal_tax") or "0", f"{where}.subtotal_tax")
        total += money(item.get("total_tax") or "0", f"{where}.total_tax")
    return OrderLine(
        line_id=str(item.get("id") or index),
        name=html.unescape(str(item.get("name") or "")),
        quantity=quantity,
        unit_price=subtotal / quantity,
        sku=str(item.get("sku") or ""),
        discount=subtotal - total,
        product_id=str(item.get("product_id") or ""),
    )


def _shipping(line: Any, index: int, gross: bool) -> ShippingLine:
    where = f"shipping_lines[{index}]"
    price = money(line.get("total") or "0", f"{where}.total")
    if gross:
        price += money(line.get("total_tax") or "0", f"{where}.total_tax")
    return ShippingLine(name=html.unescape(str(line.get("method_title") or "")), price=price)


def _buyer(billing: dict, meta: dict[str, Any]) -> Buyer:
    name = " ".join(
        part.strip() for part in (billing.get("first_name"), billing.get("last_name")) if part and part.strip()
    )
    street = " ".join(
        part.strip() for part in (billing.get("address_1"), billing.get("address_2")) if part and part.strip()
    )
    return Buyer(
        email=str(billing.get("email") or ""),
        name=name,
        phone=str(billing.get("phone") or ""),
        address=street,
        city=str(billing.get("city") or ""),
        comuna=str(meta.get("_billing_comuna") or billing.get("city") or ""),
        company=str(billing.get("company") or ""),
    )


def _refund(refund: Any, index: int, gross: bool) -> RefundData:
    """Reads both shapes: the ``{id, reason, total}`` summary on the order and a full refund object."""
    where = f"refunds[{index}]"
    if refund.get("amount") is not None:
        amount = abs(money(refund["amount"], f"{where}.amount"))
    else:
        # The order's summary carries the refund as a negative total ("-10.00").
        amount = abs(money(refund.get("total"), f"{where}.total"))
    lines = []
    for n, item in enumerate(list_of_objects(refund, "line_items", f"{where}.")):
        line_amount = abs(money(item.get("total") or "0", f"{where}.line_items[{n}].total"))
        if gross:
            line_amount += abs(money(item.get("total_tax") or "0", f"{where}.line_items[{n}].total_tax"))
        refunded_item = _meta(item.get("meta_data")).get("_refunded_item_id")
        lines.append(
            RefundLine(
                line_id=str(refunded_item or item.get("id") or ""),
                quantity=abs(money(item.get("quantity"), f"{where}.line_items[{n}].quantity")),
                amount=line_amount,
            )
        )
    created = refund.get("date_created_gmt")
    return RefundData(
        external_id=str(refund.get("id") or index),
        created_at=_parse_datetime(created, f"{where}.date_created_gmt", utc=True) if created else None,
        amount=amount,
        lines=tuple(lines),
        # The order's summary names the reason "refund" (REST docs sample); full refund objects say "reason".
        reason=str(refund.get("reason") or refund.get("refund") or ""),
    )


def _meta(meta_data: Any) -> dict[str, Any]:
    return {m.get("key"): m.get("value") for m in meta_data or [] if isinstance(m, dict)}




def _datetime(raw: dict, key: str) -> datetime | None:
    if raw.get(f"{key}_gmt"):
        return _parse_datetime(raw[f"{key}_gmt"], f"{key}_gmt", utc=True)
    if raw.get(key):
        return _parse_datetime(raw[key], key, utc=False)
    return None


def _parse_datetime(value: Any, field: str, *, utc: bool) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise OrderParseError(f"{field} is not an ISO 8601 date: {value!r}") from None
    return parsed.replace(tzinfo=timezone.utc) if utc and parsed.tzinfo is None else parsed
