"""Multivende checkout JSON (``GET /api/checkouts/{id}``) → neutral ``OrderData``.

Pure functions: no HTTP, no Django. No public sample of a full checkout exists (see
``reference/source-multivende.md`` §2.1 and §6), so this reads the fields integrators' code uses and
is tolerant where their code disagrees. Assumptions, to verify against a live response:

- ``paymentStatus == "completed"`` means paid (what integrators invoice on).
- ``gross`` is the order total with IVA, shipping included; ``CheckoutItems[].gross`` is the gross
  unit price, ``count`` the quantity and ``totalWithDiscount`` the line total after discounts.
- Shipping charged to the buyer is ``DeliveryOrderInCheckouts[].DeliveryOrder.cost``.
- The order number is the marketplace's (``CheckoutLink.externalOrderNumber``, then
  ``CheckoutLink.externalCustomerOrderNumber``, or the first of ``CheckoutLinks``), which is what the
  buyer knows; Multivende's ``code`` otherwise.
- Buyer data is read from two shapes, tolerant of either or both. The 2026 one seen in integrators'
  code: ``Client {taxId, type, fullName, BillingAddresses[0] {address_1, address_2, commune?, city}}``
  and ``CheckoutBillingClients[0].documentType``; the older ``BillingAddress`` object (the light list
  only shows ``BillingAddressId``): ``taxId``, ``businessName``, ``businessActivity``, ``address_1``,
  ``address_2``, ``commune``, ``city``, ``documentType``. ``BillingAddress`` wins where both speak; a
  company client's ``fullName`` is its razón social when no ``businessName`` is given.
- A line's SKU is its ``code``, else the product version's ``code``, else its ``internalCode``.
- Multivende works with Chilean marketplaces, so a checkout without ``currency`` is CLP.
- Marketplace refunds are not in the checkout; ``refunds`` stays empty.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..base import OrderParseError
from ..orderdata import Buyer, OrderData, OrderLine, PaymentStatus, ShippingLine
from ..parsing import currency, identifier, iso_datetime, list_of_objects, money, obj, text

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
        raise OrderParseError(f"La venta de Multivende debe ser un objeto JSON, no {type(raw).__name__}.")
    external_id = identifier(raw.get("_id"), "_id")
    if raw.get("gross") is None:
        raise OrderParseError(f"La venta {external_id} de Multivende no trae el total (gross).")
    payment_status = PAYMENT_STATUS.get(text(raw.get("paymentStatus"), "paymentStatus"), PaymentStatus.UNKNOWN)
    sold_at = iso_datetime(raw.get("soldAt"), "soldAt")
    return OrderData(
        external_id=external_id,
        number=_number(raw),
        currency=currency(raw.get("currency") or "CLP"),
        payment_status=payment_status,
        paid_total=money(raw["gross"], "gross"),
        lines=tuple(_line(item, index) for index, item in enumerate(list_of_objects(raw, "CheckoutItems"))),
        created_at=sold_at or iso_datetime(raw.get("createdAt"), "createdAt"),
        paid_at=sold_at if payment_status == PaymentStatus.PAID else None,
        shipping=tuple(_shipping(raw)),
        prices_include_tax=True,
        buyer=_buyer(raw),
        channel=text(raw.get("origin"), "origin"),
        cancelled=text(raw.get("status"), "status") in CANCELLED_STATUSES,
        raw=raw,
    )


def _number(raw: dict) -> str:
    link = raw.get("CheckoutLink")
    if not isinstance(link, dict):
        links = list_of_objects(raw, "CheckoutLinks")
        link = links[0] if links else {}
    number = link.get("externalOrderNumber") or link.get("externalCustomerOrderNumber")
    return text(number or raw.get("code") or raw["_id"], "CheckoutLink.externalOrderNumber", 200)


def _line(item: Any, index: int) -> OrderLine:
    where = f"CheckoutItems[{index}]"
    version = obj(item, "ProductVersion", f"{where}.")
    product = obj(version, "Product", f"{where}.ProductVersion.")
    size = text(obj(version, "Size", f"{where}.ProductVersion.").get("name"), f"{where}.ProductVersion.Size.name")
    name = text(product.get("name") or item.get("name"), f"{where}.ProductVersion.Product.name")
    quantity = money(item.get("count"), f"{where}.count")
    unit_price = money(item.get("gross"), f"{where}.gross")
    if item.get("totalWithDiscount") is None:
        discount = Decimal("0")
    else:
        discount = quantity * unit_price - money(item["totalWithDiscount"], f"{where}.totalWithDiscount")
    return OrderLine(
        line_id=text(item.get("_id") or index, f"{where}._id", 100),
        name=f"{name} - {size}" if size else name,
        quantity=quantity,
        unit_price=unit_price,
        sku=text(item.get("code") or version.get("code") or version.get("internalCode"), f"{where}.code", 200),
        discount=discount,
        product_id=text(version.get("ProductId"), f"{where}.ProductVersion.ProductId", 100),
    )


def _shipping(raw: dict) -> list[ShippingLine]:
    lines = []
    for index, link in enumerate(list_of_objects(raw, "DeliveryOrderInCheckouts")):
        where = f"DeliveryOrderInCheckouts[{index}]"
        delivery = obj(link, "DeliveryOrder", f"{where}.")
        if delivery.get("cost") is None:
            continue
        lines.append(
            ShippingLine(
                name=text(delivery.get("courierName") or delivery.get("shippingMode"), f"{where}.DeliveryOrder.courierName"),
                price=money(delivery["cost"], f"DeliveryOrderInCheckouts[{index}].DeliveryOrder.cost"),
            )
        )
    return lines


def _buyer(raw: dict) -> Buyer:
    client = obj(raw, "Client")
    billing = obj(raw, "BillingAddress")
    addresses = list_of_objects(client, "BillingAddresses", "Client.")
    client_address = addresses[0] if addresses else {}

    def field(container: dict, where: str, name: str, max_length: int = 1000) -> str:
        return text(container.get(name), f"{where}.{name}", max_length)

    def street(container: dict, where: str) -> str:
        return " ".join(part for part in (field(container, where, "address_1"), field(container, where, "address_2")) if part)

    where_address = "Client.BillingAddresses[0]"
    city = field(billing, "BillingAddress", "city") or field(client_address, where_address, "city")
    company_name = field(client, "Client", "fullName") if field(client, "Client", "type") == "company" else ""
    return Buyer(
        email=field(client, "Client", "email", 254),
        name=field(client, "Client", "fullName") or field(billing, "BillingAddress", "fullName"),
        phone=field(client, "Client", "phoneNumber"),
        address=street(billing, "BillingAddress") or street(client_address, where_address),
        city=city,
        comuna=field(billing, "BillingAddress", "commune") or field(client_address, where_address, "commune") or city,
        company=field(billing, "BillingAddress", "businessName") or company_name,
    )
