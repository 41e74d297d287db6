"""Multivende checkout JSON (``GET /api/checkouts/{id}``) → neutral ``OrderData``.

Pure functions: no HTTP, no Django. No public sample of a full checkout exists (see
``reference/source-multivende.md`` §2.1 and §6), so this reads the fields integrators' code uses and
is tolerant where their code disagrees. Assumptions, to verify against a live response:

- ``paymentStatus == "completed"`` means paid (what integrators invoice on).
- ``gross`` is the order total with IVA, shipping included; ``CheckoutItems[].gross`` is the gross
  unit price, ``count`` the quantity and ``totalWithDiscount`` the line total after discounts.
- Shipping charged to the buyer is ``DeliveryOrderInCheckouts[].DeliveryOrder.cost``.
- The order number is the marketplace's (``CheckoutLink.externalOrderNumber``, or the first of
  ``CheckoutLinks``), which is what the buyer knows; Multivende's ``code`` otherwise.
- Buyer billing data sits in a ``BillingAddress`` object (the light list only shows
  ``BillingAddressId``): ``taxId``, ``businessName``, ``businessActivity``, ``address_1``,
  ``address_2``, ``commune``, ``city``, ``documentType``.
- Multivende works with Chilean marketplaces, so a checkout without ``currency`` is CLP.
- Marketplace refunds are not in the checkout; ``refunds`` stays empty.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..base import OrderParseError
from ..orderdata import Buyer, OrderData, OrderLine, PaymentStatus, ShippingLine
from ..parsing import iso_datetime, list_of_objects, money

PAYMENT_STATUS = {
    "completed": PaymentStatus.PAID,
    "pending": PaymentStatus.PENDING,
    "in_process": PaymentStatus.PENDING,
    "cancelled": PaymentStatus.CANCELLED,
    "canceled": PaymentStatus.CANCELLED,
    "refunded": PaymentStatus.REFUNDED,
    "rejected": PaymentStatus.FAILED,
}
CANCELLED_STATUSES = {"cancelled", "canceled"}


def parse_order(raw: dict) -> OrderData:
    """Reads one Multivende checkout; raises ``OrderParseError`` naming the field when it cannot."""
    if not isinstance(raw, dict):
        raise OrderParseError(f"Multivende checkout must be a JSON object, got {type(raw).__name__}")
    if not raw.get("_id"):
        raise OrderParseError("Multivende checkout has no _id")
    external_id = str(raw["_id"])
    if raw.get("gross") is None:
        raise OrderParseError(f"Multivende checkout {external_id} has no gross total")
    payment_status = PAYMENT_STATUS.get(str(raw.get("paymentStatus") or ""), PaymentStatus.UNKNOWN)
    sold_at = iso_datetime(raw.get("soldAt"), "soldAt")
    return OrderData(
        external_id=external_id,
        number=_number(raw),
        currency=str(raw.get("currency") or "CLP").upper(),
        payment_status=payment_status,
        paid_total=money(raw["gross"], "gross"),
        lines=tuple(_line(item, index) for index, item in enumerate(list_of_objects(raw, "CheckoutItems"))),
        created_at=sold_at or iso_datetime(raw.get("createdAt"), "createdAt"),
        paid_at=sold_at if payment_status == PaymentStatus.PAID else None,
        shipping=tuple(_shipping(raw)),
        prices_include_tax=True,
        buyer=_buyer(raw),
        channel=str(raw.get("origin") or ""),
        cancelled=str(raw.get("status") or "") in CANCELLED_STATUSES,
        raw=raw,
    )


def _number(raw: dict) -> str:
    link = raw.get("CheckoutLink")
    if not isinstance(link, dict):
        links = list_of_objects(raw, "CheckoutLinks")
        link = links[0] if links else {}
    return str(link.get("externalOrderNumber") or raw.get("code") or raw["_id"])


def _line(item: Any, index: int) -> OrderLine:
    where = f"CheckoutItems[{index}]"
    version = item.get("ProductVersion") or {}
    product = version.get("Product") or {}
    size = (version.get("Size") or {}).get("name")
    name = str(product.get("name") or item.get("name") or "")
    quantity = money(item.get("count"), f"{where}.count")
    unit_price = money(item.get("gross"), f"{where}.gross")
    if item.get("totalWithDiscount") is None:
        discount = Decimal("0")
    else:
        discount = quantity * unit_price - money(item["totalWithDiscount"], f"{where}.totalWithDiscount")
    return OrderLine(
        line_id=str(item.get("_id") or index),
        name=f"{name} - {size}" if size else name,
        quantity=quantity,
        unit_price=unit_price,
        sku=str(item.get("code") or version.get("code") or ""),
        discount=discount,
        product_id=str(version.get("ProductId") or ""),
    )


def _shipping(raw: dict) -> list[ShippingLine]:
    lines = []
    for index, link in enumerate(list_of_objects(raw, "DeliveryOrderInCheckouts")):
        delivery = link.get("DeliveryOrder") or {}
        if delivery.get("cost") is None:
            continue
        lines.append(
            ShippingLine(
                name=str(delivery.get("courierName") or delivery.get("shippingMode") or ""),
                price=money(delivery["cost"], f"DeliveryOrderInCheckouts[{index}].DeliveryOrder.cost"),
            )
        )
    return lines


def _buyer(raw: dict) -> Buyer:
    client = raw.get("Client") or {}
    billing = raw.get("BillingAddress") or {}
    street = " ".join(
        str(part).strip() for part in (billing.get("address_1"), billing.get("address_2")) if part and str(part).strip()
    )
    return Buyer(
        email=str(client.get("email") or ""),
        name=str(client.get("fullName") or billing.get("fullName") or ""),
        phone=str(client.get("phoneNumber") or ""),
        address=street,
        city=str(billing.get("city") or ""),
        comuna=str(billing.get("commune") or billing.get("city") or ""),
        company=str(billing.get("businessName") or ""),
    )
