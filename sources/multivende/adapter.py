"""Multivende accounts: checkouts (sales of every marketplace the merchant syncs there) are polled,
webhook hints re-read, and the issued document is uploaded back to the checkout.

Sources: Multivende's help center and integrators' code, summarised with their links in
``reference/source-multivende.md`` (its "2026 corrections" override the rest). The HTTP details are in
``client.py``, the connect flow in ``services.py`` / ``views.py``, the checkout's fields in ``orders.py``.

Connecting. The merchant presses "Conectar con Multivende": our Multivende application (settings
``BMS_MULTIVENDE_CLIENT_ID`` / ``_SECRET`` / ``_SCOPES``, redirect URI ``{BMS_PUBLIC_URL}/connect/multivende/
callback/`` registered with Multivende) is authorized for one merchant, and the connection keeps, encrypted,
the access token, the refresh token, their expiries and the ``MerchantId``. ``config["authorization"]``
shows the merchant, the scopes and the expiries (written by the flow and by each renewal). Credentials may
also be pasted through the API (Multivende's "no-GUI" flow gives an app a merchant's token).

Reading. ``poll``: the checkouts updated in the polled range, in windows of at most 2 hours (Multivende
blocks longer ranges: "el rango máximo permitido por consulta es de 2 horas"), page by page, the window
and page kept in the cursor. Results are not sorted by date, so each window is read to its last page, and
a change is one event under ``checkout:<_id>@<updatedAt>`` however often it is seen. Kept: checkouts
paid (``paymentStatus == "completed"``, what integrators invoice on) and cancelled or refunded ones (so
an invoiced sale that is cancelled gets its credit note); pending ones come back when their payment
changes their ``updatedAt``. The light entry lacks items, totals and the client, so the full checkout
(``GET /api/checkouts/{id}``) is fetched unless the entry already carries them. Filtering on
``updatedAt`` (not ``soldAt``, which the help center calls "no recomendada" because of marketplace lag).
Multivende recommends polling every 1–2 h as a complement to webhooks; without webhooks it is the only
path, so the default interval stays the product's 5 minutes (``BMS_POLL_INTERVALS`` changes it).

Webhooks. Where the merchant's Multivende app sends them (its Callback_URL set to the gateway's webhook
address), a delivery only names a checkout, unsigned: ``webhook_delivery`` fetches that checkout with the
merchant's token and returns it under its change key. An id Multivende does not know is a 404, another
merchant's a 403; nothing else in the body is used. That receiver cannot pass the signed-webhook
contract (there is no signature); ``tests/sources/test_multivende_webhooks.py`` checks it instead.

Writing back (``push_document``, the PDF itself is given: ``wants_pdf_file``). [help-dte]: create the
record on the checkout (``ClientId`` from the checkout's ``Client._id``, ``id`` = the folio,
``emissionDate``, ``type``, ``provider``, ``ElectronicBillingDocumentEmitterId``), then upload the PDF
(at most 1 MB; a larger one is refused before any request). ``provider`` (the code Multivende assigns
to the billing provider) and the emitter id come from the connection's config: the help article's part
that explains them was cut off, and no API to list emitters was found. The ``type`` per kind of document
is configurable: only ``electronic_billing_electronic_bill`` is documented, so it is every kind's default
(boletas, facturas and credit notes, which Multivende's tax documents module accepts) until Multivende
gives the codes. Credit notes are uploaded to the same checkout. Without a PDF only the record is created
and the answer says so.

Not documented, assumed (each a setting or config field where it mattered): the token answer's fields
(``token``, ``expiresAt``, ``refreshToken``, ``refreshTokenExpiresAt``, ``MerchantId``, ``scopes``);
403 for an expired token; what the rate limit answers; the light list's ``pagination`` keys
(``next_page``, ``current_page``, ``total_pages``); the upload's answer body (any 2xx is success).
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billmysales.integrations.errors import IntegrationError
from billmysales.integrations.reports import CheckItem, ConnectionReport
from billmysales.integrations.spec import SECRET_TEXT, Field

from ..base import (
    ConnectionTester,
    DocumentWriteBack,
    IssuedDocumentInfo,
    OrderPoller,
    PollBatch,
    PolledOrder,
    SourceAdapter,
    WebhookDelivery,
    WebhookReceiver,
    WebhookRejected,
)
from ..errors import SourceRejectedError, SourceTransientError
from ..orderdata import OrderData
from .client import Grant, MultivendeClient, parse_time, path_id
from .fields import DEFAULT_FIELD_MAPPING
from .orders import CANCELLED_STATUSES, parse_order
from .samples import sample_order
from .webhooks import hinted_checkout_id

# Multivende refuses ranges longer than this in one light-list query.
WINDOW = timedelta(hours=2)
MAX_PDF_BYTES = 1024 * 1024
# The only billing document type Multivende documents ([help-dte]).
DOCUMENTED_TYPE = "electronic_billing_electronic_bill"
TYPE_FIELDS = {39: "type_boleta", 41: "type_boleta", 33: "type_factura", 34: "type_factura", 61: "type_credit_note"}
# Payment states of a checkout the pipeline must see: paid, and undone after payment.
BILLABLE_PAYMENTS = {"completed", "refunded", "cancelled", "canceled"}
# What a light entry lacks that the parser needs; a list that already carries them is used as is.
FULL_FIELDS = ("gross", "CheckoutItems", "Client")


def _iso_validator(value: str) -> str:
    if parse_time(value) is None:
        raise ValueError(_("debe ser una fecha ISO 8601 (2026-11-20T13:07:44.905Z)."))
    return value


class MultivendeSource(SourceAdapter, OrderPoller, WebhookReceiver, DocumentWriteBack, ConnectionTester):
    platform = "multivende"
    label = "Multivende"
    credentials_spec = (
        Field("access_token", _("Token de acceso"), SECRET_TEXT, required=False,
              help_text=_("Lo completa «Conectar con Multivende».")),
        Field("refresh_token", _("Token de renovación"), SECRET_TEXT, required=False,
              help_text=_("Lo completa «Conectar con Multivende»; cambia con cada renovación.")),
        Field("access_token_expires_at", _("Vencimiento del token de acceso"), required=False, validators=(_iso_validator,)),
        Field("refresh_token_expires_at", _("Vencimiento del token de renovación"), required=False,
              validators=(_iso_validator,)),
        Field("merchant_id", _("Cuenta de Multivende (MerchantId)"), required=False),
    )
    config_spec = (
        Field("provider", _("Código de proveedor (provider)"), required=False,
              help_text=_("El código que Multivende asignó al proveedor de facturación; necesario para subir documentos.")),
        Field("emitter_id", _("Emisor de documentos (ElectronicBillingDocumentEmitterId)"), required=False,
              help_text=_("El id del emisor de la cuenta en Multivende; necesario para subir documentos.")),
        Field("type_boleta", _("Tipo de documento Multivende para boletas (39, 41)"), required=False, default=DOCUMENTED_TYPE),
        Field("type_factura", _("Tipo de documento Multivende para facturas (33, 34)"), required=False, default=DOCUMENTED_TYPE),
        Field("type_credit_note", _("Tipo de documento Multivende para notas de crédito (61)"), required=False,
              default=DOCUMENTED_TYPE,
              help_text=_("Multivende solo documenta electronic_billing_electronic_bill; use el código que le indique Multivende.")),
    )
    store_url_required = False
    default_field_mapping = DEFAULT_FIELD_MAPPING
    wants_pdf_file = True

    def parse_order(self, raw: dict) -> OrderData:
        return parse_order(raw)

    @classmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        return sample_order(number=number, test=test)

    @classmethod
    def change_key(cls, raw: dict) -> str | None:
        checkout_id, updated_at = raw.get("_id"), raw.get("updatedAt")
        if isinstance(checkout_id, str) and checkout_id and isinstance(updated_at, str) and updated_at:
            return f"checkout:{checkout_id}@{updated_at}"
        return None

    def client(self) -> MultivendeClient:
        return MultivendeClient(self.connection, on_renewed=self._renewed)

    def _renewed(self, grant: Grant) -> None:
        # Imported here: that module imports sources.services, which imports the registry and this adapter.
        from .services import multivende_authorization_renewed

        if self.connection.pk is not None:
            multivende_authorization_renewed(connection=self.connection, grant=grant)

    # --- polling ---------------------------------------------------------------------------------

    def poll(self, *, cursor: dict, since: datetime, until: datetime | None) -> PollBatch:
        if cursor:
            start, end, page = parse_time(cursor.get("from")), parse_time(cursor.get("to")), int(cursor.get("page") or 1)
            if start is None or end is None:
                raise SourceRejectedError(gettext("Cursor de Multivende ilegible: %(cursor)s.") % {"cursor": repr(cursor)})
        else:
            # Whole seconds, as Multivende's filter reads them: the end rounded up so a change in the
            # last second is not left for the next poll.
            end = until or timezone.now()
            start, end, page = since.replace(microsecond=0), end.replace(microsecond=0) + timedelta(seconds=bool(end.microsecond)), 1
        if start >= end:
            return PollBatch(orders=(), cursor={})
        client = self.client()
        window_end = min(start + WINDOW, end)
        answer = client.checkouts_light(page=page, start=start, end=window_end)
        entries = answer.get("entries")
        if not isinstance(entries, list):
            raise SourceTransientError(gettext("Multivende respondió la lista de ventas sin 'entries'."))
        orders = [order for entry in entries if (order := self._polled(client, entry)) is not None]
        if entries and _has_next_page(answer.get("pagination"), page):
            following = {"from": start.isoformat(), "to": end.isoformat(), "page": page + 1}
        elif window_end < end:
            following = {"from": window_end.isoformat(), "to": end.isoformat(), "page": 1}
        else:
            following = {}
        notes = {"requests": client.requests_sent, "window": f"{start.isoformat()} → {window_end.isoformat()}",
                 "page": page, "entries": len(entries)}
        return PollBatch(orders=tuple(orders), cursor=following, more=bool(following), notes=notes)

    def _polled(self, client: MultivendeClient, entry) -> PolledOrder | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("_id"), str):
            return None
        if entry.get("paymentStatus") not in BILLABLE_PAYMENTS and entry.get("status") not in CANCELLED_STATUSES:
            return None
        checkout = entry
        if not all(name in entry for name in FULL_FIELDS):
            try:
                checkout = client.checkout(entry["_id"])
            except SourceRejectedError as exc:
                if exc.status == 404:  # gone between the list and the read
                    return None
                raise
        if checkout.get("MerchantId") not in (None, client.merchant_id):
            return None
        key = self.change_key(checkout) or self.change_key(entry) or _body_key(checkout)
        return PolledOrder(raw=checkout, change_key=key)

    # --- webhook hints ---------------------------------------------------------------------------

    def webhook_delivery(self, *, headers, body: bytes) -> WebhookDelivery:
        checkout_id = hinted_checkout_id(body)
        try:
            client = self.client()
            # A hinted id comes from outside: a 403 must not rotate the merchant's tokens.
            checkout = client.checkout(checkout_id, renew_on_denied=False)
        except SourceRejectedError as exc:
            if exc.status == 404:
                raise WebhookRejected(gettext("Multivende no tiene la venta %(sale)s: aviso rechazado.") % {"sale": checkout_id},
                                      404) from exc
            if exc.status == 403:
                raise WebhookRejected(_not_this_account(checkout_id), 403) from exc
            raise WebhookRejected(gettext("No se pudo leer la venta %(sale)s en Multivende: %(error)s") % {
                "sale": checkout_id, "error": exc.message}, 503) from exc
        except SourceTransientError as exc:
            raise WebhookRejected(gettext("No se pudo leer la venta %(sale)s en Multivende; reintente: %(error)s") % {
                "sale": checkout_id, "error": exc.message}, 503) from exc
        if checkout.get("_id") != checkout_id or checkout.get("MerchantId") not in (None, client.merchant_id):
            raise WebhookRejected(_not_this_account(checkout_id), 403)
        key = self.change_key(checkout) or _body_key(checkout)
        return WebhookDelivery(delivery_id=key[:120], topic="checkout", payload=checkout)

    # --- write-back ------------------------------------------------------------------------------

    def push_document(self, document: IssuedDocumentInfo) -> str:
        config = self.connection.config or {}
        missing = [label for name, label in (("provider", "provider"), ("emitter_id", "ElectronicBillingDocumentEmitterId"))
                   if not config.get(name)]
        if missing:
            raise SourceRejectedError(
                gettext("Para subir documentos a Multivende configure en la conexión: %(fields)s (los entrega Multivende).") % {
                    "fields": ", ".join(missing)}
            )
        field = "type_credit_note" if document.credit_note else TYPE_FIELDS.get(document.tipo_dte)
        if field is None:
            raise SourceRejectedError(gettext("No hay tipo de documento de Multivende para el DTE %(tipo)s.") % {"tipo": document.tipo_dte})
        if len(document.pdf) > MAX_PDF_BYTES:
            raise SourceRejectedError(
                gettext("El PDF del documento pesa %(kb)s KB y Multivende acepta hasta 1 MB: no se subió.") % {
                    "kb": f"{len(document.pdf) / 1024:.0f}"}
            )
        checkout_id = path_id(document.order_external_id, gettext("venta"))
        client = self.client()
        client_id = _client_id(document.order_raw) or _client_id(client.checkout(checkout_id))
        if not client_id:
            raise SourceRejectedError(
                gettext("La venta %(sale)s de Multivende no trae el cliente (Client._id) que pide el documento.") % {"sale": checkout_id})
        created = client.document_create(checkout_id, {
            "ClientId": client_id, "id": str(document.folio),
            "emissionDate": document.fecha or timezone.localdate().isoformat(),
            "type": config.get(field) or DOCUMENTED_TYPE, "provider": config["provider"],
            "ElectronicBillingDocumentEmitterId": config["emitter_id"],
        })
        written = gettext("%(note)s: documento %(document)s creado en la venta %(sale)s de Multivende") % {
            "note": document.note, "document": created["_id"], "sale": checkout_id}
        if not document.pdf:
            return gettext("%(written)s, sin PDF (no había archivo que subir).") % {"written": written}
        try:
            client.document_upload(created["_id"], filename=f"{document.folio}.pdf", pdf=document.pdf)
        except IntegrationError as exc:
            raise type(exc)(
                gettext("Multivende creó el documento %(document)s pero no aceptó el PDF: %(error)s") % {
                    "document": created["_id"], "error": exc.message},
                status=exc.status, body=exc.body, retry_after=exc.retry_after,
            ) from exc
        return gettext("%(written)s, con su PDF (%(kb)s KB).") % {"written": written, "kb": f"{len(document.pdf) / 1024:.0f}"}

    # --- "Probar conexión" -----------------------------------------------------------------------

    def test_connection(self) -> ConnectionReport:
        try:
            client = self.client()
            info = client.info()
        except IntegrationError as exc:
            return ConnectionReport((CheckItem(str(_("Token de acceso")), False, exc.message),))
        credentials = self.connection.credentials or {}
        items = [CheckItem(str(_("Token de acceso")), True, _expiry_text(credentials))]
        merchant = info.get("Merchant") if isinstance(info.get("Merchant"), dict) else {}
        token_merchant = info.get("MerchantId") or merchant.get("_id")
        name = merchant.get("name") or token_merchant
        if token_merchant == client.merchant_id:
            items.append(CheckItem(str(_("Cuenta de Multivende")), True, f"{name} ({token_merchant})."))
        else:
            items.append(CheckItem(str(_("Cuenta de Multivende")), False,
                                   gettext("El token es de la cuenta %(token)s, pero la conexión es de %(connection)s: "
                                           "vuelva a conectar con Multivende.") % {
                                       "token": token_merchant, "connection": client.merchant_id}))
        items.append(_scopes_item(info.get("scopes") or (self.connection.config or {}).get("authorization", {}).get("scopes")))
        now = timezone.now()
        try:
            page = client.checkouts_light(page=1, start=now - WINDOW, end=now)
        except IntegrationError as exc:
            items.append(CheckItem(str(_("Lectura de ventas")), False, exc.message))
        else:
            total = (page.get("pagination") or {}).get("total_items", len(page.get("entries") or []))
            items.append(CheckItem(str(_("Lectura de ventas")), True,
                                   gettext("%(total)s ventas actualizadas en las últimas 2 horas.") % {"total": total}))
        config = self.connection.config or {}
        if config.get("provider") and config.get("emitter_id"):
            items.append(CheckItem(str(_("Documentos a Multivende")), True,
                                   gettext("Se suben con provider %(provider)s y emisor %(emitter)s.") % {
                                       "provider": config["provider"], "emitter": config["emitter_id"]}))
        else:
            items.append(CheckItem(str(_("Documentos a Multivende")), None,
                                   gettext("Falta configurar provider y ElectronicBillingDocumentEmitterId: los documentos no se suben.")))
        return ConnectionReport(tuple(items))


def _has_next_page(pagination, page: int) -> bool:
    if not isinstance(pagination, dict):
        return False
    next_page, total = pagination.get("next_page"), pagination.get("total_pages")
    if isinstance(next_page, int) and next_page > page:
        return True
    current = pagination.get("current_page", page)
    return isinstance(total, int) and isinstance(current, int) and current < total


def _not_this_account(checkout_id: str) -> str:
    return gettext("La venta %(sale)s no es de la cuenta de Multivende de esta conexión: aviso rechazado.") % {"sale": checkout_id}


def _client_id(checkout: dict) -> str:
    client = checkout.get("Client") if isinstance(checkout, dict) else None
    value = client.get("_id") if isinstance(client, dict) else None
    return value if isinstance(value, str) else ""


def _body_key(checkout: dict) -> str:
    """A change key for a checkout without ``updatedAt``: its id and the hash of what it says."""
    digest = hashlib.sha256(json.dumps(checkout, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"checkout:{checkout.get('_id')}#{digest}"


def _expiry_text(credentials: dict) -> str:
    access = parse_time(credentials.get("access_token_expires_at"))
    refresh = parse_time(credentials.get("refresh_token_expires_at"))
    parts = [gettext("Multivende aceptó el token")]
    if access is not None:
        parts.append(gettext("vence %(when)s UTC y se renueva solo") % {"when": f"{access.astimezone(UTC):%Y-%m-%d %H:%M}"})
    if refresh is not None:
        parts.append(gettext("la autorización caduca si no se usa hasta %(when)s UTC") % {
            "when": f"{refresh.astimezone(UTC):%Y-%m-%d %H:%M}"})
    return "; ".join(parts) + "."


def _scopes_item(granted) -> CheckItem:
    label = str(_("Permisos"))
    if not granted:
        return CheckItem(label, None, gettext("Multivende no informó los permisos otorgados."))
    have = set((" ".join(granted) if isinstance(granted, list) else str(granted)).replace(",", " ").split())
    missing = [scope for scope in settings.BMS_MULTIVENDE_SCOPES if scope not in have]
    if missing:
        return CheckItem(label, False, gettext("Faltan permisos: %(scopes)s. Vuelva a conectar y déjelos activados.") % {
            "scopes": ", ".join(missing)})
    return CheckItem(label, True, ", ".join(sorted(have)) + ".")
