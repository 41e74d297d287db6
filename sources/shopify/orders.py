"""Shopify order JSON (REST / ``orders/*`` webhooks) → neutral ``OrderData``.

Pure functions: no HTTP, no Django. Choices made where Shopify leaves room:

- The REST envelope ``{"order": {...}}`` and the bare webhook body are both accepted; ``raw`` keeps the
  bare order object, so the rules' JMESPath field mappings read the same paths for both.
- ``paid_total`` is ``total_price`` (what was charged at checkout), falling back to
  ``current_total_price``. ``line_items`` keep their original quantities, and refunds become credit
  notes of their own, so the original document must be for the original total; ``current_total_price``
  already has the refunds taken off and would never square with the lines.
- Line discounts are the sum of ``discount_allocations`` (newer API: every order-level discount is
  allocated to lines or shipping), or ``total_discount`` on old payloads without allocations.
- ``global_discount`` is what ``total_discounts`` has beyond the discounts on the lines and shipping:
  a ``discount_applications`` entry (an ``across`` / ``all`` order discount) that no allocation
  reflects, or an old payload's discount code with no per-line discounts. Never negative (a payload
  whose ``total_discounts`` leaves out shipping discounts has nothing left over). Same basis as the
  prices (gross with ``taxes_included``, else net).
- Stores that add tax (``taxes_included: false`` and some line or shipping ``tax_lines`` with a price):
  ``OrderLine.tax`` / ``ShippingLine.tax`` are the sum of each one's ``tax_lines[].price`` (0 when it
  has none), the tax Shopify charged on the whole line after its discounts, rounded per line as
  Shopify does; the document bills exactly those. ``OrderData.global_discount_tax`` is the tax that
  went with an unallocated order discount: the line and shipping taxes minus ``total_tax`` (left
  unknown when ``total_tax`` is missing or exceeds them). Old payloads that carry tax only on the order
  (no line ``tax_lines``) leave the line taxes unknown (None), and the rules' price basis applies.
- Refund amounts are the successful ``refund`` transactions (the money returned). A refunded line's
  amount is gross: ``subtotal`` already includes IVA when ``taxes_included`` is true, otherwise
  ``total_tax`` is added.
- The Chilean checkout has no comuna field: stores put the comuna in ``city``, so ``Buyer.comuna`` is
  ``billing_address.city``.
"""
from __future__ import annotations

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

FINANCIAL_STATUS = {
    "paid": PaymentStatus.PAID,
    "partially_refunded": PaymentStatus.PARTIALLY_REFUNDED,
    "refunded": PaymentStatus.REFUNDED,
    "pending": PaymentStatus.PENDING,
    "authorized": PaymentStatus.PENDING,
    "partially_paid": PaymentStatus.PENDING,
    "voided": PaymentStatus.CANCELLED,
    "expired": PaymentStatus.FAILED,
}
PAID_STATUSES = {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}


def parse_order(raw: dict) -> OrderData:
    """Reads one Shopify order; raises ``OrderParseError`` naming the field when it cannot."""
    if not isinstance(raw, dict):
        raise OrderParseError(f"La orden de Shopify debe ser un objeto JSON, no {type(raw).__name__}.")
    order = raw["order"] if isinstance(raw.get("order"), dict) and "id" not in raw else raw
    external_id = identifier(order.get("id"), "id")
    taxes_included = order.get("taxes_included")
    total = order.get("total_price")
    if total is None:
        total = order.get("current_total_price")
    if total is None:
        raise OrderParseError(f"La orden {external_id} de Shopify no trae total_price.")
    payment_status = FINANCIAL_STATUS.get(text(order.get("financial_status"), "financial_status"), PaymentStatus.UNKNOWN)
    items = list_of_objects(order, "line_items")
    shipping_lines = list_of_objects(order, "shipping_lines")
    adds_tax = taxes_included is False and any(
        _tax(line, f"{kind}[{index}]") > 0
        for kind, lines in (("line_items", items), ("shipping_lines", shipping_lines))
        for index, line in enumerate(lines)
    )
    lines = tuple(_line(item, index, adds_tax) for index, item in enumerate(items))
    shipping = tuple(_shipping(line, index, adds_tax) for index, line in enumerate(shipping_lines))
    global_discount = _unallocated_discount(order, lines, shipping)
    return OrderData(
        external_id=external_id,
        number=text(order.get("name") or order.get("order_number") or order.get("number") or external_id, "name", 200),
        currency=currency(order.get("currency")),
        payment_status=payment_status,
        paid_total=money(total, "total_price"),
        lines=lines,
        created_at=iso_datetime(order.get("created_at"), "created_at"),
        paid_at=iso_datetime(order.get("processed_at"), "processed_at") if payment_status in PAID_STATUSES else None,
        shipping=shipping,
        global_discount=global_discount,
        global_discount_tax=_global_discount_tax(order, lines, shipping) if adds_tax and global_discount else None,
        tips=money(order.get("total_tip_received") or "0", "total_tip_received"),
        prices_include_tax=taxes_included if isinstance(taxes_included, bool) else None,
        buyer=_buyer(order),
        tags=tuple(tag.strip() for tag in text(order.get("tags"), "tags", 10_000).split(",") if tag.strip()),
        channel=text(order.get("source_name"), "source_name"),
        cancelled=bool(order.get("cancelled_at")),
        refunds=tuple(
            _refund(refund, index, taxes_included is True) for index, refund in enumerate(list_of_objects(order, "refunds"))
        ),
        is_test=bool(order.get("test")),
        raw=order,
    )


def _tax(line: dict, where: str) -> Decimal:
    """The sum of a line's ``tax_lines`` prices (0 without tax lines)."""
    return sum(
        (money(t.get("price"), f"{where}.tax_lines[{n}].price") for n, t in enumerate(list_of_objects(line, "tax_lines", f"{where}."))),
        Decimal("0"),
    )


def _unallocated_discount(order: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...]) -> Decimal:
    if order.get("total_discounts") is None:
        return Decimal("0")
    allocated = sum((line.discount for line in lines), Decimal("0")) + sum((s.discount for s in shipping), Decimal("0"))
    return max(money(order["total_discounts"], "total_discounts") - allocated, Decimal("0"))


def _global_discount_tax(order: dict, lines: tuple[OrderLine, ...], shipping: tuple[ShippingLine, ...]) -> Decimal | None:
    if order.get("total_tax") is None:
        return None
    charged = sum((line.tax for line in lines), Decimal("0")) + sum((s.tax for s in shipping), Decimal("0"))
    difference = charged - money(order["total_tax"], "total_tax")
    return difference if difference >= 0 else None


def _line(item: Any, index: int, adds_tax: bool) -> OrderLine:
    where = f"line_items[{index}]"
    allocations = list_of_objects(item, "discount_allocations", f"{where}.")
    if allocations:
        discount = sum(
            (money(a.get("amount"), f"{where}.discount_allocations[{n}].amount") for n, a in enumerate(allocations)),
            Decimal("0"),
        )
    else:
        discount = money(item.get("total_discount") or "0", f"{where}.total_discount")
    return OrderLine(
        line_id=text(item.get("id") or index, f"{where}.id", 100),
        name=text(item.get("name") or item.get("title"), f"{where}.name"),
        quantity=money(item.get("quantity"), f"{where}.quantity"),
        unit_price=money(item.get("price"), f"{where}.price"),
        sku=text(item.get("sku"), f"{where}.sku", 200),
        discount=discount,
        taxable=item.get("taxable", True) is not False,
        is_gift_card=item.get("gift_card") is True,
        product_id=text(item.get("product_id"), f"{where}.product_id", 100),
        tax=_tax(item, where) if adds_tax else None,
    )


def _shipping(line: Any, index: int, adds_tax: bool) -> ShippingLine:
    where = f"shipping_lines[{index}]"
    price = money(line.get("price") or "0", f"{where}.price")
    allocations = list_of_objects(line, "discount_allocations", f"{where}.")
    if allocations:
        discount = sum(
            (money(a.get("amount"), f"{where}.discount_allocations[{n}].amount") for n, a in enumerate(allocations)),
            Decimal("0"),
        )
    elif line.get("discounted_price") is not None:
        discount = price - money(line["discounted_price"], f"{where}.discounted_price")
    else:
        discount = Decimal("0")
    return ShippingLine(
        name=text(line.get("title") or line.get("code"), f"{where}.title"), price=price, discount=discount,
        tax=_tax(line, where) if adds_tax else None,
    )


def _buyer(order: dict) -> Buyer:
    where = "billing_address" if order.get("billing_address") else "shipping_address"
    address = obj(order, where)
    customer = obj(order, "customer")
    name = text(address.get("name"), f"{where}.name") or " ".join(
        part for part in (text(customer.get("first_name"), "customer.first_name"),
                          text(customer.get("last_name"), "customer.last_name")) if part
    )
    street = " ".join(
        part for part in (text(address.get("address1"), f"{where}.address1"),
                          text(address.get("address2"), f"{where}.address2")) if part
    )
    city = text(address.get("city"), f"{where}.city")
    return Buyer(
        email=text(order.get("email") or order.get("contact_email") or customer.get("email"), "email", 254),
        name=name,
        phone=text(address.get("phone") or order.get("phone") or customer.get("phone"), "phone"),
        address=street,
        city=city,
        comuna=city,
        company=text(address.get("company"), f"{where}.company"),
    )


def _refund(refund: Any, index: int, taxes_included: bool) -> RefundData:
    where = f"refunds[{index}]"
    lines = []
    for n, item in enumerate(list_of_objects(refund, "refund_line_items", f"{where}.")):
        amount = money(item.get("subtotal") or "0", f"{where}.refund_line_items[{n}].subtotal")
        if not taxes_included:
            amount += money(item.get("total_tax") or "0", f"{where}.refund_line_items[{n}].total_tax")
        lines.append(
            RefundLine(
                line_id=text(item.get("line_item_id"), f"{where}.refund_line_items[{n}].line_item_id", 100),
                quantity=money(item.get("quantity"), f"{where}.refund_line_items[{n}].quantity"),
                amount=amount,
            )
        )
    shipping_amount = sum(
        (
            abs(money(adjustment.get("amount"), f"{where}.order_adjustments[{n}].amount"))
            for n, adjustment in enumerate(list_of_objects(refund, "order_adjustments", f"{where}."))
            if adjustment.get("kind") == "shipping_refund"
        ),
        Decimal("0"),
    )
    transactions = [
        t
        for t in list_of_objects(refund, "transactions", f"{where}.")
        if t.get("kind") == "refund" and t.get("status") == "success"
    ]
    if transactions:
        amount = sum(
            (money(t.get("amount"), f"{where}.transactions[{n}].amount") for n, t in enumerate(transactions)),
            Decimal("0"),
        )
    else:
        amount = sum((line.amount for line in lines), shipping_amount)
    return RefundData(
        external_id=text(refund.get("id") or index, f"{where}.id", 100),
        created_at=iso_datetime(refund.get("processed_at") or refund.get("created_at"), f"{where}.created_at"),
        amount=amount,
        lines=tuple(lines),
        shipping_amount=shipping_amount,
        reason=text(refund.get("note"), f"{where}.note"),
    )
