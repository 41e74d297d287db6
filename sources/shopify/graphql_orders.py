"""Orders read from the GraphQL Admin API, turned into the REST-shaped JSON an ``orders/*`` webhook carries.

One parser (``orders.py``) and one field mapping (``fields.py``) serve both paths: a polled order is
converted here, field by field, into the shape Shopify's webhooks use (REST Admin ``Order`` resource,
https://shopify.dev/docs/api/admin-rest/latest/resources/order), so the rules see the same paths
whether a change arrived pushed or polled. Pure functions and query text: no HTTP (``client.py`` sends).

Queries (GraphQL Admin API, https://shopify.dev/docs/api/admin-graphql/latest/queries/orders):
``orders(first:, after:, query: "updated_at:>'…'", sortKey: UPDATED_AT)`` with cursor pagination
(``pageInfo { hasNextPage endCursor }``), and ``order(id:)`` for a single order.

Sizes. Shopify charges every query its *requested* cost before running it (objects 1 point,
connections 2 + ``first`` × the node's cost, https://shopify.dev/docs/api/usage/rate-limits) and
refuses any over 1000 points, so nested connections cannot ask for everything at once. A page reads
``PAGE_ORDERS`` orders with small nested sizes (about 800 points requested, a small fraction of it
actually charged); an order whose nested lists do not fit is read again alone with larger sizes
(``LARGE``), and its line items are then paged until the last one. Other nested lists that still do not
fit (more than ``LARGE`` refund lines in one refund, shipping lines, transactions…) cannot be paged
through ``order(id:)``: ``truncated`` names them and the poller leaves that order to its webhook.

Conversion choices where the two APIs differ:

- Money: GraphQL ``MoneyBag.shopMoney.amount`` ("54990.0") becomes the REST string with two decimals
  ("54990.00"), in the shop's currency, as REST's plain amount fields are; ``*_set`` objects are not
  built (the webhook fixtures and the parser use the plain fields).
- Ids: ``legacyResourceId`` / the number at the end of the gid become REST's integer ids, and the gid
  is kept as ``admin_graphql_api_id``.
- Timestamps stay as GraphQL gives them (UTC, ``Z``); webhooks send shop-local times with an offset.
  They are the same instants, and ``ShopifySource.change_key`` compares instants, not strings.
- Enums (``PAID``, ``CUSTOMER``, ``REFUND``…) become REST's lower-case words.
- ``customAttributes`` are REST's ``note_attributes`` (``name``/``value``); line ``customAttributes``
  are ``properties``.
- ``localizedFields`` (e.g. ``TAX_CREDENTIAL_CL``, the buyer's RUT where the merchant asks for it at
  checkout) have no REST field: they are carried as ``localized_fields`` with REST-style keys.
- A shipping refund is given both as ``refund_shipping_lines`` and as an ``order_adjustments`` entry of
  kind ``shipping_refund`` whose ``amount`` is the negative refunded shipping (tax included when the
  shop's prices include tax), as older REST payloads carry it.
- GraphQL has no discount-application type for automatic and script discounts in every version we
  read, so their ``title`` is not read; ``type`` comes from ``__typename``.
"""
from __future__ import annotations

import re
from datetime import UTC
from decimal import Decimal, InvalidOperation

PAGE_ORDERS = 3
PAGE = {"lines": 8, "shipping": 3, "refund_lines": 8, "transactions": 4, "refund_shipping": 2, "discounts": 5,
        "localized": 5}
LARGE = {"lines": 40, "shipping": 5, "refund_lines": 25, "transactions": 10, "refund_shipping": 5, "discounts": 10,
         "localized": 5}
LINE_PAGE = 60

_MONEY = "{ shopMoney { amount } }"
_LINE = f"""id name title sku variantTitle vendor quantity currentQuantity taxable isGiftCard requiresShipping
          originalUnitPriceSet {_MONEY}
          discountAllocations {{ allocatedAmountSet {_MONEY} discountApplication {{ index }} }}
          taxLines {{ title rate priceSet {_MONEY} }}
          customAttributes {{ key value }}
          product {{ legacyResourceId }}"""
_ADDRESS = "firstName lastName name company address1 address2 city province provinceCode zip country countryCodeV2 phone"


def order_fields(sizes: dict) -> str:
    """The selection of one order, with ``sizes`` for its nested connections."""
    return f"""
      id legacyResourceId name email phone createdAt updatedAt processedAt cancelledAt cancelReason closedAt
      currencyCode presentmentCurrencyCode displayFinancialStatus test taxesIncluded taxExempt sourceName tags note
      paymentGatewayNames discountCodes
      customAttributes {{ key value }}
      totalPriceSet {_MONEY} subtotalPriceSet {_MONEY} totalTaxSet {_MONEY} totalDiscountsSet {_MONEY}
      currentTotalPriceSet {_MONEY} currentSubtotalPriceSet {_MONEY} currentTotalTaxSet {_MONEY}
      currentTotalDiscountsSet {_MONEY} totalTipReceivedSet {_MONEY} totalOutstandingSet {_MONEY}
      taxLines {{ title rate priceSet {_MONEY} }}
      billingAddress {{ {_ADDRESS} }}
      shippingAddress {{ {_ADDRESS} }}
      customer {{ id legacyResourceId firstName lastName taxExempt defaultEmailAddress {{ emailAddress }}
        defaultPhoneNumber {{ phoneNumber }} }}
      localizedFields(first: {sizes["localized"]}) {{ pageInfo {{ hasNextPage }} nodes {{ key value countryCode purpose title }} }}
      discountApplications(first: {sizes["discounts"]}) {{ pageInfo {{ hasNextPage }} nodes {{
        __typename index allocationMethod targetSelection targetType
        value {{ __typename ... on MoneyV2 {{ amount }} ... on PricingPercentageValue {{ percentage }} }}
        ... on DiscountCodeApplication {{ code }}
        ... on ManualDiscountApplication {{ title description }} }} }}
      lineItems(first: {sizes["lines"]}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {_LINE} }} }}
      shippingLines(first: {sizes["shipping"]}) {{ pageInfo {{ hasNextPage }} nodes {{
        id title code source carrierIdentifier originalPriceSet {_MONEY} discountedPriceSet {_MONEY}
        discountAllocations {{ allocatedAmountSet {_MONEY} discountApplication {{ index }} }}
        taxLines {{ title rate priceSet {_MONEY} }} }} }}
      refunds {{ id legacyResourceId createdAt note
        refundLineItems(first: {sizes["refund_lines"]}) {{ pageInfo {{ hasNextPage }} nodes {{
          id quantity restockType lineItem {{ id }} subtotalSet {_MONEY} totalTaxSet {_MONEY} }} }}
        transactions(first: {sizes["transactions"]}) {{ pageInfo {{ hasNextPage }} nodes {{
          id kind status gateway createdAt processedAt amountSet {_MONEY} }} }}
        refundShippingLines(first: {sizes["refund_shipping"]}) {{ pageInfo {{ hasNextPage }} nodes {{
          id subtotalAmountSet {_MONEY} taxAmountSet {_MONEY} }} }} }}"""


ORDERS_PAGE_QUERY = f"""query BillMySalesOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {order_fields(PAGE)} }}
  }}
}}"""

ORDER_QUERY = f"""query BillMySalesOrder($id: ID!) {{
  order(id: $id) {{ {order_fields(LARGE)} }}
}}"""

ORDER_LINES_QUERY = f"""query BillMySalesOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {LINE_PAGE}, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {_LINE} }} }}
  }}
}}"""


def search_query(*, since, until=None) -> str:
    """Shopify's search syntax for orders changed after ``since`` (and up to ``until``), in UTC."""
    terms = [f"updated_at:>'{_utc(since)}'"]
    if until is not None:
        terms.append(f"updated_at:<='{_utc(until)}'")
    return " ".join(terms)


def _utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nested_overflow(node: dict) -> bool:
    """Whether some nested list of the order has more items than the page read."""
    return bool(truncated(node) or _has_next(node.get("lineItems")))


def truncated(node: dict) -> list[str]:
    """The nested lists other than line items that did not fit (line items are paged separately)."""
    names = [name for name in ("localizedFields", "discountApplications", "shippingLines") if _has_next(node.get(name))]
    for refund in node.get("refunds") or []:
        names += [f"refunds.{name}" for name in ("refundLineItems", "transactions", "refundShippingLines")
                  if _has_next(refund.get(name))]
    return names


def _has_next(connection) -> bool:
    return bool(((connection or {}).get("pageInfo") or {}).get("hasNextPage"))


def _nodes(connection) -> list[dict]:
    return [n for n in ((connection or {}).get("nodes") or []) if isinstance(n, dict)]


def gid_number(gid) -> int | None:
    """``gid://shopify/Order/123`` → 123."""
    match = re.fullmatch(r"gid://shopify/\w+/(\d+)(?:\?.*)?", str(gid or ""))
    return int(match.group(1)) if match else None


def _money(bag) -> str | None:
    """A ``MoneyBag``'s shop amount as REST writes it: a string with at least two decimals."""
    amount = ((bag or {}).get("shopMoney") or {}).get("amount")
    if amount is None:
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    return f"{value:.2f}" if value.as_tuple().exponent >= -2 else str(value)


def _int(value) -> int | None:
    return int(value) if str(value or "").isdigit() else None


def _lower(value) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _taxes(lines) -> list[dict]:
    return [{"title": t.get("title"), "price": _money(t.get("priceSet")), "rate": t.get("rate")}
            for t in lines or [] if isinstance(t, dict)]


def _allocations(allocations) -> list[dict]:
    return [{"amount": _money(a.get("allocatedAmountSet")),
             "discount_application_index": (a.get("discountApplication") or {}).get("index")}
            for a in allocations or [] if isinstance(a, dict)]


def _attributes(attributes) -> list[dict]:
    return [{"name": a.get("key"), "value": a.get("value")} for a in attributes or [] if isinstance(a, dict)]


def rest_line(node: dict) -> dict:
    return {
        "id": gid_number(node.get("id")), "admin_graphql_api_id": node.get("id"),
        "title": node.get("title"), "name": node.get("name"), "sku": node.get("sku"),
        "variant_title": node.get("variantTitle"), "vendor": node.get("vendor"),
        "quantity": node.get("quantity"), "current_quantity": node.get("currentQuantity"),
        "price": _money(node.get("originalUnitPriceSet")),
        "discount_allocations": _allocations(node.get("discountAllocations")),
        "taxable": node.get("taxable"), "gift_card": node.get("isGiftCard"),
        "requires_shipping": node.get("requiresShipping"),
        "tax_lines": _taxes(node.get("taxLines")),
        "properties": _attributes(node.get("customAttributes")),
        "product_id": _int((node.get("product") or {}).get("legacyResourceId")),
    }


def _shipping(node: dict) -> dict:
    return {
        "id": gid_number(node.get("id")), "title": node.get("title"), "code": node.get("code"),
        "source": node.get("source"), "carrier_identifier": node.get("carrierIdentifier"),
        "price": _money(node.get("originalPriceSet")), "discounted_price": _money(node.get("discountedPriceSet")),
        "discount_allocations": _allocations(node.get("discountAllocations")),
        "tax_lines": _taxes(node.get("taxLines")),
    }


def _discount_application(node: dict) -> dict:
    value = node.get("value") or {}
    percentage = value.get("__typename") == "PricingPercentageValue"
    kind = {"DiscountCodeApplication": "discount_code", "ManualDiscountApplication": "manual",
            "AutomaticDiscountApplication": "automatic", "ScriptDiscountApplication": "script"}.get(node.get("__typename"))
    application = {
        "type": kind, "value": str(value.get("percentage") if percentage else value.get("amount")),
        "value_type": "percentage" if percentage else "fixed_amount",
        "allocation_method": _lower(node.get("allocationMethod")),
        "target_selection": _lower(node.get("targetSelection")), "target_type": _lower(node.get("targetType")),
    }
    for key in ("code", "title", "description"):
        if key in node:
            application[key] = node[key]
    return application


def _address(node) -> dict | None:
    if not isinstance(node, dict):
        return None
    return {"first_name": node.get("firstName"), "last_name": node.get("lastName"), "name": node.get("name"),
            "company": node.get("company"), "address1": node.get("address1"), "address2": node.get("address2"),
            "city": node.get("city"), "province": node.get("province"), "province_code": node.get("provinceCode"),
            "zip": node.get("zip"), "country": node.get("country"), "country_code": node.get("countryCodeV2"),
            "phone": node.get("phone")}


def _customer(node) -> dict | None:
    if not isinstance(node, dict):
        return None
    return {"id": gid_number(node.get("id")), "admin_graphql_api_id": node.get("id"),
            "first_name": node.get("firstName"), "last_name": node.get("lastName"),
            "email": (node.get("defaultEmailAddress") or {}).get("emailAddress"),
            "phone": (node.get("defaultPhoneNumber") or {}).get("phoneNumber"), "tax_exempt": node.get("taxExempt")}


def _refund(node: dict, taxes_included: bool) -> dict:
    order_adjustments, shipping = [], []
    for line in _nodes(node.get("refundShippingLines")):
        subtotal = Decimal(_money(line.get("subtotalAmountSet")) or "0")
        tax = Decimal(_money(line.get("taxAmountSet")) or "0")
        shipping.append({"id": gid_number(line.get("id")), "subtotal_amount": f"{subtotal:.2f}", "tax_amount": f"{tax:.2f}"})
        refunded = subtotal + tax if taxes_included else subtotal
        order_adjustments.append({"kind": "shipping_refund", "reason": "Shipping refund", "amount": f"{-refunded:.2f}",
                                  "tax_amount": f"{-tax:.2f}", "refund_id": gid_number(node.get("id"))})
    return {
        "id": gid_number(node.get("id")), "admin_graphql_api_id": node.get("id"),
        "created_at": node.get("createdAt"), "processed_at": node.get("createdAt"), "note": node.get("note"),
        "refund_line_items": [
            {"id": gid_number(item.get("id")), "line_item_id": gid_number((item.get("lineItem") or {}).get("id")),
             "quantity": item.get("quantity"), "restock_type": _lower(item.get("restockType")),
             "subtotal": _money(item.get("subtotalSet")), "total_tax": _money(item.get("totalTaxSet"))}
            for item in _nodes(node.get("refundLineItems"))
        ],
        "transactions": [
            {"id": gid_number(t.get("id")), "kind": _lower(t.get("kind")), "status": _lower(t.get("status")),
             "gateway": t.get("gateway"), "amount": _money(t.get("amountSet")), "created_at": t.get("createdAt"),
             "processed_at": t.get("processedAt")}
            for t in _nodes(node.get("transactions"))
        ],
        "order_adjustments": order_adjustments,
        "refund_shipping_lines": shipping,
    }


def rest_order(node: dict) -> dict:
    """A GraphQL ``Order`` (the selection of ``order_fields``) as the REST-shaped webhook body."""
    taxes_included = node.get("taxesIncluded")
    gateways = node.get("paymentGatewayNames") or []
    order = {
        "id": _int(node.get("legacyResourceId")) or gid_number(node.get("id")),
        "admin_graphql_api_id": node.get("id"), "name": node.get("name"),
        "email": node.get("email"), "phone": node.get("phone"),
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "processed_at": node.get("processedAt"), "cancelled_at": node.get("cancelledAt"),
        "cancel_reason": _lower(node.get("cancelReason")), "closed_at": node.get("closedAt"),
        "currency": node.get("currencyCode"), "presentment_currency": node.get("presentmentCurrencyCode"),
        "financial_status": _lower(node.get("displayFinancialStatus")),
        "test": node.get("test"), "taxes_included": taxes_included, "tax_exempt": node.get("taxExempt"),
        "source_name": node.get("sourceName"), "tags": ", ".join(node.get("tags") or []), "note": node.get("note"),
        "gateway": gateways[0] if gateways else None, "payment_gateway_names": gateways,
        "note_attributes": _attributes(node.get("customAttributes")),
        "discount_codes": [{"code": code} for code in node.get("discountCodes") or []],
        "discount_applications": [_discount_application(n) for n in _nodes(node.get("discountApplications"))],
        "tax_lines": _taxes(node.get("taxLines")),
        "line_items": [rest_line(n) for n in _nodes(node.get("lineItems"))],
        "shipping_lines": [_shipping(n) for n in _nodes(node.get("shippingLines"))],
        "billing_address": _address(node.get("billingAddress")),
        "shipping_address": _address(node.get("shippingAddress")),
        "customer": _customer(node.get("customer")),
        "refunds": [_refund(r, taxes_included is True) for r in node.get("refunds") or [] if isinstance(r, dict)],
        "localized_fields": [
            {"key": f.get("key"), "value": f.get("value"), "country_code": f.get("countryCode"),
             "purpose": _lower(f.get("purpose")), "title": f.get("title")}
            for f in _nodes(node.get("localizedFields"))
        ],
    }
    for key, bag in (("total_price", "totalPriceSet"), ("subtotal_price", "subtotalPriceSet"), ("total_tax", "totalTaxSet"),
                     ("total_discounts", "totalDiscountsSet"), ("current_total_price", "currentTotalPriceSet"),
                     ("current_subtotal_price", "currentSubtotalPriceSet"), ("current_total_tax", "currentTotalTaxSet"),
                     ("current_total_discounts", "currentTotalDiscountsSet"), ("total_tip_received", "totalTipReceivedSet"),
                     ("total_outstanding", "totalOutstandingSet")):
        order[key] = _money(node.get(bag))
    return order
