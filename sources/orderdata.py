"""The neutral order every source adapter produces.

Plain dataclasses, no Django. Amounts are ``Decimal`` exactly as the store sent them (stores send
strings such as ``"12990.00"``); conversion to integer CLP, and the refusal of anything that is not a
whole peso, happens in the rules engine / DTE mapping, where the reason can be shown on the order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


class PaymentStatus:
    PAID = "paid"
    PENDING = "pending"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OrderLine:
    """One product line as the buyer saw it.

    ``unit_price`` is what the store shows per unit (gross when the store prices include IVA, the
    usual Chilean setting); ``discount`` is the total discount allocated to the whole line (not per
    unit), in the same gross/net basis as the price.
    """

    line_id: str
    name: str
    quantity: Decimal
    unit_price: Decimal
    sku: str = ""
    discount: Decimal = Decimal("0")
    taxable: bool = True
    is_gift_card: bool = False
    tags: tuple[str, ...] = ()
    product_id: str = ""
    # The tax the store charged on this line after its discount (the sum of its tax lines), when the
    # store adds tax itself (prices without tax) and says how much; None when the store does not say.
    tax: Decimal | None = None


@dataclass(frozen=True)
class ShippingLine:
    name: str
    price: Decimal
    discount: Decimal = Decimal("0")
    # As ``OrderLine.tax``: the store's own tax on the shipping, when it adds tax itself.
    tax: Decimal | None = None


@dataclass(frozen=True)
class Buyer:
    email: str = ""
    name: str = ""
    phone: str = ""
    address: str = ""
    city: str = ""
    comuna: str = ""
    company: str = ""


@dataclass(frozen=True)
class RefundLine:
    line_id: str
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class RefundData:
    """A refund or cancellation reported by the store.

    ``amount`` is the money returned to the buyer (gross). ``lines`` lists refunded product lines
    when the store says which; ``shipping_amount`` the refunded shipping.
    """

    external_id: str
    created_at: datetime | None
    amount: Decimal
    lines: tuple[RefundLine, ...] = ()
    shipping_amount: Decimal = Decimal("0")
    reason: str = ""


@dataclass(frozen=True)
class OrderData:
    external_id: str
    number: str
    currency: str
    payment_status: str
    paid_total: Decimal
    lines: tuple[OrderLine, ...]
    created_at: datetime | None = None
    paid_at: datetime | None = None
    shipping: tuple[ShippingLine, ...] = ()
    # Order-level discount not already allocated to lines (gross/net like the prices).
    global_discount: Decimal = Decimal("0")
    # As ``OrderLine.tax``: the tax the store took off with ``global_discount``, when it adds tax itself
    # and its figures say how much; None when they do not.
    global_discount_tax: Decimal | None = None
    tips: Decimal = Decimal("0")
    prices_include_tax: bool | None = None
    buyer: Buyer = field(default_factory=Buyer)
    tags: tuple[str, ...] = ()
    channel: str = ""
    cancelled: bool = False
    refunds: tuple[RefundData, ...] = ()
    is_test: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
