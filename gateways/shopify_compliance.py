"""Shopify's mandatory compliance webhooks for our public app: ``customers/data_request``,
``customers/redact`` and ``shop/redact`` (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).

One address for the app (declared as the app's compliance webhooks URL, not per shop): a JSON POST
signed like every Shopify webhook (``X-Shopify-Hmac-Sha256``, base64 HMAC-SHA256 of the raw body with
the app's client secret, or the previous one during a rotation), answered 401 when the signature is missing or wrong, 200 once handled.

What each does with the data this product holds for the shop's connections (orders, the raw bodies
Shopify sent, the decisions taken on them):

- ``customers/data_request`` (``customer {id, email, phone}``, ``orders_requested``): compiles what we
  hold about that buyer (orders, buyer name and e-mail, addresses and tax data in the stored order,
  the documents issued to them) and records it in the account's audit log for the merchant, who must
  hand it to the buyer; the answer says how much was found.
- ``customers/redact`` (``customer``, ``orders_to_redact``): erases the buyer's personal data from those
  orders (and the orders with the buyer's e-mail): buyer name and e-mail, the contact, address, note,
  attribute and localized-field parts of the stored order and of every stored delivery of it, and the
  decision's texts that quote them.
- ``shop/redact`` (48 hours after the app is removed): the same erasure for every order of the shop,
  plus the connection's tokens; the connection stays, disconnected, because its gateways and documents
  point at it.

Kept, and said so in the answer and the log: issued tax documents (and their XML and PDF, with the
buyer's RUT and name as the SII received them) and the emissions that produced them. Chilean tax law
requires keeping them for six years (Código Tributario, arts. 17 and 200). Emissions not yet issued are
kept too: the sale happened and its document must still be issued.

Assumptions where Shopify's page is silent: a shop connected in several accounts is erased in all of
them; a topic other than these three, signed, is acknowledged and ignored.
"""
import copy
import hmac
import json
import logging

from django.db import transaction
from django.db.models import Q
from django.http import JsonResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.services import Actor, audit_log_record
from sources.models import SourceConnection
from sources.services import connection_status_set
from sources.shopify.client import SHOP_DOMAIN, app_secrets
from sources.shopify.webhooks import SIGNATURE_HEADER, TOPIC_HEADER
from sources.webhooks import hmac_sha256_base64

from .models import Document, Gateway, InboundEvent, Order

logger = logging.getLogger(__name__)

KEPT = gettext_noop("Se conservan los documentos tributarios emitidos (con su XML y PDF) y las emisiones en curso: "
        "la ley tributaria chilena exige guardarlos seis años.")
REDACTED_NOTE = gettext_noop("Datos personales del comprador borrados a pedido de Shopify (%(topic)s, %(when)s).")
# Parts of a Shopify order (REST shape) that describe the buyer rather than the sale.
PERSONAL_ORDER_KEYS = ("email", "contact_email", "phone", "customer", "billing_address", "shipping_address", "note",
                       "note_attributes", "localized_fields", "browser_ip", "client_details", "order_status_url",
                       "landing_site", "referring_site", "customer_locale", "token", "cart_token", "checkout_token",
                       "fulfillments")


def redacted_order(raw: dict | None, note: str) -> dict | None:
    """The stored order without the buyer: personal keys removed, line properties and shipping phones emptied."""
    if not isinstance(raw, dict):
        return raw
    order = copy.deepcopy(raw)
    for key in PERSONAL_ORDER_KEYS:
        order.pop(key, None)
    for item in order.get("line_items") or []:
        if isinstance(item, dict) and item.get("properties"):
            item["properties"] = []
    for line in order.get("shipping_lines") or []:
        if isinstance(line, dict):
            line.pop("phone", None)
    order["redacted"] = note
    return order


def _connections(shop: str):
    return SourceConnection.objects.filter(platform="shopify", store_url__in=[f"https://{shop}", f"https://{shop}/"])


def _orders(gateways, *, order_ids: list, email: str):
    match = Q(external_id__in=[str(i) for i in order_ids])
    if email:
        match |= Q(buyer_email__iexact=email)
    return Order.objects.filter(gateway__in=gateways).filter(match)


def _redact_orders(orders, note: str) -> tuple[int, int]:
    """Erases the buyer from ``orders`` and from every stored delivery of them; (orders, deliveries)."""
    done = events = 0
    for order in orders.select_for_update():
        reasons = [{**reason, "message": note} for reason in (order.decision or {}).get("reasons") or []]
        Order.objects.filter(pk=order.pk).update(
            buyer_name="", buyer_email="", raw=redacted_order(order.raw, note) or {},
            decision={**(order.decision or {}), "reasons": reasons} if order.decision else order.decision,
            status_reason=note if order.status_reason else "",
        )
        ids = [order.external_id, int(order.external_id)] if order.external_id.isdigit() else [order.external_id]
        for event in InboundEvent.objects.filter(gateway_id=order.gateway_id).filter(
                Q(payload__id__in=ids) | Q(delivery_id__startswith=f"order:{order.external_id}@")):
            InboundEvent.objects.filter(pk=event.pk).update(payload=redacted_order(event.payload, note), body_text="")
            events += 1
        done += 1
    return done, events


def _document_receptor(document: Document) -> dict:
    return (document.emission.sale or {}).get("receptor") or {}


def customers_data_request(*, shop: str, payload: dict) -> dict:
    """Records, for each account that holds the shop, what we hold about the buyer; returns the counts."""
    customer = payload.get("customer") or {}
    email = str(customer.get("email") or "")
    found = documents = 0
    for connection in _connections(shop):
        gateways = Gateway.objects.filter(source=connection)
        report = []
        for order in _orders(gateways, order_ids=payload.get("orders_requested") or [], email=email):
            raw = order.raw or {}
            issued = list(Document.objects.filter(order=order).select_related("emission"))
            report.append({
                "order": order.number or order.external_id, "external_id": order.external_id,
                "buyer_name": order.buyer_name, "buyer_email": order.buyer_email,
                "stored_order": {key: raw[key] for key in PERSONAL_ORDER_KEYS if raw.get(key)},
                "documents": [{"tipo_dte": d.tipo_dte, "folio": d.folio, "fecha": d.fecha.isoformat(),
                               "receptor": _document_receptor(d)} for d in issued],
            })
            documents += len(issued)
        found += len(report)
        audit_log_record(account=connection.account, actor=Actor.system(), action="shopify.customers_data_request",
                         obj=connection, data={"customer": customer, "data_request": payload.get("data_request"),
                                               "orders": report, "note": _(KEPT)})
        logger.info("account=%s source=%s shopify customers/data_request: %s orders recorded in the audit log",
                    connection.account_id, connection.pk, len(report))
    return {"orders": found, "documents": documents, "kept": _(KEPT)}


def customers_redact(*, shop: str, payload: dict) -> dict:
    customer = payload.get("customer") or {}
    note = _(REDACTED_NOTE) % {"topic": "customers/redact", "when": timezone.now().date().isoformat()}
    orders = events = 0
    for connection in _connections(shop):
        gateways = Gateway.objects.filter(source=connection)
        with transaction.atomic():
            done, deliveries = _redact_orders(
                _orders(gateways, order_ids=payload.get("orders_to_redact") or [], email=str(customer.get("email") or "")),
                note)
            audit_log_record(account=connection.account, actor=Actor.system(), action="shopify.customers_redact",
                             obj=connection, data={"customer_id": customer.get("id"), "orders": done,
                                                   "deliveries": deliveries, "note": _(KEPT)})
        orders, events = orders + done, events + deliveries
        logger.info("account=%s source=%s shopify customers/redact: %s orders, %s deliveries erased. %s",
                    connection.account_id, connection.pk, done, deliveries, KEPT)
    return {"orders": orders, "deliveries": events, "kept": _(KEPT)}


def shop_redact(*, shop: str, payload: dict) -> dict:
    note = _(REDACTED_NOTE) % {"topic": "shop/redact", "when": timezone.now().date().isoformat()}
    orders = events = 0
    for connection in _connections(shop):
        gateways = Gateway.objects.filter(source=connection)
        with transaction.atomic():
            done, deliveries = _redact_orders(Order.objects.filter(gateway__in=gateways), note)
            SourceConnection.objects.filter(pk=connection.pk).update(credentials={}, cursor={})
            audit_log_record(account=connection.account, actor=Actor.system(), action="shopify.shop_redact",
                             obj=connection, data={"orders": done, "deliveries": deliveries, "note": _(KEPT)})
        connection_status_set(connection=connection, status=SourceConnection.Status.DISABLED,
                              message=_("Shopify pidió borrar los datos de la tienda (shop/redact): se borraron.") + " " + _(KEPT))
        orders, events = orders + done, events + deliveries
        logger.info("account=%s source=%s shopify shop/redact: %s orders, %s deliveries erased, tokens removed. %s",
                    connection.account_id, connection.pk, done, deliveries, KEPT)
    return {"orders": orders, "deliveries": events, "kept": _(KEPT)}


HANDLERS = {"customers/data_request": customers_data_request, "customers/redact": customers_redact,
            "shop/redact": shop_redact}


@csrf_exempt
@require_POST
def shopify_compliance_webhook(request):
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given or not any(hmac.compare_digest(given.encode(), hmac_sha256_base64(request.body, secret).encode())
                            for secret in app_secrets()):
        logger.warning("shopify compliance webhook with a missing or wrong signature refused")
        return JsonResponse({"error": _("Firma de webhook inválida.")}, status=401)
    topic = request.headers.get(TOPIC_HEADER, "")
    handler = HANDLERS.get(topic)
    if handler is None:
        return JsonResponse({"received": True, "ignored": _("El tema %(topic)s no es de cumplimiento.") % {"topic": repr(topic)}})
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    shop = str(payload.get("shop_domain") or "").lower() if isinstance(payload, dict) else ""
    if not SHOP_DOMAIN.fullmatch(shop):
        return JsonResponse({"error": _("El cuerpo no es un pedido de cumplimiento de Shopify (falta shop_domain).")}, status=400)
    return JsonResponse({"received": True, "topic": topic, **handler(shop=shop, payload=payload)})


urlpatterns = [path("", shopify_compliance_webhook, name="shopify-compliance")]
