"""WooCommerce REST v3 order JSON (also the ``order.*`` webhook body) → neutral ``OrderData``.

Pure functions: no HTTP, no Django. Choices made where WooCommerce leaves room:

- Payment: ``completed`` is paid (the merchant closed the sale, e.g. cash on delivery collected, even
  when ``date_paid`` is empty); ``processing`` is paid only with ``date_paid`` (bank transfer / COD
  orders sit in ``processing`` unpaid); ``pending``, ``on-hold`` and ``checkout-draft`` are pending;
  a paid order with refunds is ``partially_refunded``.
- WooCommerce stores line amounts without tax. When ``prices_include_tax`` is true the line tax is
  added back, so unit prices and discounts are gross, as the buyer saw them; otherwise they are the
  stored amounts (net, or gross in the many Chilean stores that do not compute IVA in WooCommerce).
- A net-price store that charges tax (``prices_include_tax: false`` and ``total_tax`` above 0) adds it
  per line: ``OrderLine.tax`` is the line's ``total_tax`` (after coupons), ``ShippingLine.tax`` the
  shipping line's, a positive fee's its own, and ``OrderData.global_discount_tax`` the tax taken off by
  negative fees. The document bills exactly those amounts. (With "round tax at subtotal level" these
  carry decimals, and the rules engine does not use them.)
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
from datetime import UTC, datetime
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
from ..parsing import currency, identifier, iso_datetime, list_of_objects, money, obj, text

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
        raise OrderParseError(f"La orden de WooCommerce debe ser un objeto JSON, no {type(raw).__name__}.")
    external_id = identifier(raw.get("id"), "id")
    if raw.get("total") is None:
        raise OrderParseError(f"La orden {external_id} de WooCommerce no trae total.")
    gross = raw.get("prices_include_tax") is True
    adds_tax = raw.get("prices_include_tax") is False and money(raw.get("total_tax") or "0", "total_tax") > 0
    meta = _meta(raw.get("meta_data"))
    refunds = tuple(_refund(refund, index, gross) for index, refund in enumerate(list_of_objects(raw, "refunds")))
    lines = [_line(item, index, gross, adds_tax) for index, item in enumerate(list_of_objects(raw, "line_items"))]
    global_discount = Decimal("0")
    global_discount_tax = Decimal("0")
    for index, fee in enumerate(list_of_objects(raw, "fee_lines")):
        amount = money(fee.get("total"), f"fee_lines[{index}].total")
        tax = money(fee.get("total_tax") or "0", f"fee_lines[{index}].total_tax")
        if gross:
            amount += tax
        if amount < 0:
            global_discount -= amount
            global_discount_tax -= tax
        else:
            lines.append(
                OrderLine(
                    line_id=f"fee-{text(fee.get('id') or index, f'fee_lines[{index}].id', 90)}",
                    name=html.unescape(text(fee.get("name"), f"fee_lines[{index}].name") or "Cargo"),
                    quantity=Decimal("1"),
                    unit_price=amount,
                    taxable=fee.get("tax_status") != "none",
                    tax=tax if adds_tax else None,
                )
            )
    status = text(raw.get("status"), "status")
    date_paid = _datetime(raw, "date_paid")
    payment_status = _payment_status(status, date_paid, refunds)
    return OrderData(
        external_id=external_id,
        number=text(raw.get("number") or external_id, "number", 200),
        currency=currency(raw.get("currency")),
        payment_status=payment_status,
        paid_total=money(raw.get("total"), "total"),
        lines=tuple(lines),
        created_at=_datetime(raw, "date_created"),
        paid_at=date_paid,
        shipping=tuple(
            _shipping(line, index, gross, adds_tax) for index, line in enumerate(list_of_objects(raw, "shipping_lines"))
        ),
        global_discount=global_discount,
        global_discount_tax=global_discount_tax if adds_tax and global_discount else None,
        # A store that computes no tax (total_tax 0) says nothing about its prices with "false": most Chilean
        # stores type gross prices and leave WooCommerce's taxes off.
        prices_include_tax=raw.get("prices_include_tax") if gross or adds_tax else None,
        buyer=_buyer(obj(raw, "billing"), meta),
        channel=text(raw.get("created_via"), "created_via"),
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


def _line(item: Any, index: int, gross: bool, adds_tax: bool) -> OrderLine:
    where = f"line_items[{index}]"
    quantity = money(item.get("quantity"), f"{where}.quantity")
    if quantity <= 0:
        raise OrderParseError(f"{where}.quantity debe ser positiva; vino {quantity}.")
    subtotal = money(item.get("subtotal"), f"{where}.subtotal")
    total = money(item.get("total"), f"{where}.total")
    tax = money(item.get("total_tax") or "0", f"{where}.total_tax")
    if gross:
        subtotal += money(item.get("subtotal_tax") or "0", f"{where}.subtotal_tax")
        total += tax
    return OrderLine(
        line_id=text(item.get("id") or index, f"{where}.id", 100),
        name=html.unescape(text(item.get("name"), f"{where}.name")),
        quantity=quantity,
        unit_price=subtotal / quantity,
        sku=text(item.get("sku"), f"{where}.sku", 200),
        discount=subtotal - total,
        product_id=text(item.get("product_id"), f"{where}.product_id", 100),
        tax=tax if adds_tax else None,
    )


def _shipping(line: Any, index: int, gross: bool, adds_tax: bool) -> ShippingLine:
    where = f"shipping_lines[{index}]"
    price = money(line.get("total") or "0", f"{where}.total")
    tax = money(line.get("total_tax") or "0", f"{where}.total_tax")
    if gross:
        price += tax
    return ShippingLine(
        name=html.unescape(text(line.get("method_title"), f"{where}.method_title")), price=price,
        tax=tax if adds_tax else None,
    )


def _buyer(billing: dict, meta: dict[str, Any]) -> Buyer:
    def field(name: str, max_length: int = 1000) -> str:
        return text(billing.get(name), f"billing.{name}", max_length)

    name = " ".join(part for part in (field("first_name"), field("last_name")) if part)
    street = " ".join(part for part in (field("address_1"), field("address_2")) if part)
    comuna = meta.get("_billing_comuna")
    return Buyer(
        email=field("email", 254),
        name=name,
        phone=field("phone"),
        address=street,
        city=field("city"),
        comuna=(text(comuna, "meta_data._billing_comuna") if isinstance(comuna, str) else "") or field("city"),
        company=field("company"),
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
                line_id=text(refunded_item or item.get("id"), f"{where}.line_items[{n}].id", 100),
                quantity=abs(money(item.get("quantity"), f"{where}.line_items[{n}].quantity")),
                amount=line_amount,
            )
        )
    created = refund.get("date_created_gmt")
    return RefundData(
        external_id=text(refund.get("id") or index, f"{where}.id", 100),
        created_at=_parse_datetime(created, f"{where}.date_created_gmt", utc=True) if created else None,
        amount=amount,
        lines=tuple(lines),
        # The order's summary names the reason "refund" (REST docs sample); full refund objects say "reason".
        reason=text(refund.get("reason") or refund.get("refund"), f"{where}.reason"),
    )


def _meta(meta_data: Any) -> dict[str, Any]:
    if not isinstance(meta_data, list):
        return {}
    return {m["key"]: m.get("value") for m in meta_data if isinstance(m, dict) and isinstance(m.get("key"), str)}


def _datetime(raw: dict, key: str) -> datetime | None:
    if raw.get(f"{key}_gmt"):
        return _parse_datetime(raw[f"{key}_gmt"], f"{key}_gmt", utc=True)
    if raw.get(key):
        return _parse_datetime(raw[key], key, utc=False)
    return None


def _parse_datetime(value: Any, field: str, *, utc: bool) -> datetime:
    parsed = iso_datetime(value, field)
    return parsed.replace(tzinfo=UTC) if utc and parsed.tzinfo is None else parsed
