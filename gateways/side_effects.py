"""What happens after a document is issued: email to the buyer, write-back to the store, webhooks.

Each side effect is claimed (pending → done / failed / n/a) with a conditional update, so a repeated
task never sends twice, and a failure is recorded on the document without touching the document.
"""
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _

from billers.dte.display import document_name, format_clp
from sources.base import DocumentWriteBack, IssuedDocumentInfo
from sources.registry import SourceNotRegistered, source_adapter_for

from .models import Document, DocumentKind, SideEffect, WebhookDelivery, WebhookEventType
from .selectors import document_filename
from .services.documents import DocumentFileUnavailable, document_files_fetch, document_pdf_bytes, document_public_url

logger = logging.getLogger(__name__)


def _claim(document: Document, kind: str) -> bool:
    return bool(
        SideEffect.objects.filter(document=document, kind=kind, outcome=SideEffect.Outcome.PENDING)
        .update(outcome=SideEffect.Outcome.DONE, message="")
    )


def _set(document: Document, kind: str, outcome: str, message: str) -> None:
    SideEffect.objects.filter(document=document, kind=kind).update(outcome=outcome, message=message[:2000])


def document_side_effects_run(*, document_id: int) -> None:
    document = Document.objects.select_related("order__gateway__ruleset", "order__gateway__source", "biller").get(pk=document_id)
    document_files_fetch(document=document)
    if _claim(document, SideEffect.Kind.EMAIL):
        _email_buyer(document)
    if _claim(document, SideEffect.Kind.STORE_WRITEBACK):
        _write_back(document)
    if _claim(document, SideEffect.Kind.WEBHOOK):
        _webhooks_noted(document)


def document_note(document: Document) -> str:
    """One line a person reads on the order: "Boleta electrónica N° 123 por $36.960 (certificación)"."""
    values = {"name": document_name(document.tipo_dte), "folio": document.folio, "total": format_clp(document.mnt_total)}
    if document.certification:
        return _("%(name)s N° %(folio)s por %(total)s (certificación)") % values
    return _("%(name)s N° %(folio)s por %(total)s") % values


def _webhooks_noted(document: Document) -> None:
    """The account's outgoing webhooks for this document were queued with it (``gateways.events``, in the
    transaction that recorded it); the order page says how many and where to follow them."""
    event = WebhookEventType.CREDIT_NOTE_ISSUED if document.kind == DocumentKind.CREDIT_NOTE else WebhookEventType.DOCUMENT_ISSUED
    queued = WebhookDelivery.objects.filter(
        account_id=document.account_id, event_type=event, payload__data__document__id=document.pk,
    ).count()
    if not queued:
        _set(document, SideEffect.Kind.WEBHOOK, SideEffect.Outcome.NOT_APPLICABLE,
             _("Ningún webhook saliente de la cuenta está suscrito a %(event)s.") % {"event": event})
        return
    _set(document, SideEffect.Kind.WEBHOOK, SideEffect.Outcome.DONE,
         _("Aviso %(event)s en cola para %(count)s destino(s); el detalle de cada envío está en Configuración > Webhooks.")
         % {"event": event, "count": queued})


def _write_back(document: Document) -> None:
    source = document.order.gateway.source
    try:
        adapter = source_adapter_for(source)
    except SourceNotRegistered as exc:
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.FAILED, exc.message)
        return
    if not isinstance(adapter, DocumentWriteBack):
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.NOT_APPLICABLE,
             _("El origen %(platform)s no admite escribir el documento de vuelta.") % {"platform": source.get_platform_display()})
        return
    if document.order.is_test:
        # A simulated test sale has no order in the store to write on.
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.NOT_APPLICABLE,
             _("Orden de prueba simulada: no existe en la tienda, no se escribe de vuelta."))
        return
    try:
        pdf = document_pdf_bytes(document=document) if adapter.wants_pdf_file else b""
    except DocumentFileUnavailable as exc:
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.FAILED, str(exc))
        return
    info = IssuedDocumentInfo(
        order_external_id=document.order.external_id, tipo_dte=document.tipo_dte, folio=document.folio,
        total=document.mnt_total, certification=document.certification, note=document_note(document),
        pdf_url=document_public_url(document=document), fecha=document.fecha.isoformat(),
        credit_note=document.kind == DocumentKind.CREDIT_NOTE,
        pdf=pdf, order_raw=document.order.raw,
    )
    try:
        written = adapter.push_document(info)
    except Exception as exc:  # a store's refusal or an adapter bug: recorded, never undoes the document
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.FAILED,
             _("La tienda no aceptó el documento: %(why)s") % {"why": exc})
        logger.warning("account=%s document=%s write-back failed: %s", document.account_id, document.pk, exc)
        return
    _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.DONE, written)


def _email_buyer(document: Document) -> None:
    order = document.order
    if not order.gateway.ruleset.email_buyer:
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.NOT_APPLICABLE, _("Las reglas no envían correo al comprador."))
        return
    if not order.buyer_email:
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.NOT_APPLICABLE, _("La orden no trae correo del comprador."))
        return
    name = document_name(document.tipo_dte)
    values = {"name": name, "lower_name": name.lower(), "folio": document.folio, "order": order.number,
              "buyer": order.buyer_name or "", "total": format_clp(document.mnt_total)}
    body = _("Hola %(buyer)s,\n\nAdjuntamos su %(lower_name)s N° %(folio)s por %(total)s correspondiente al pedido %(order)s.\n") % values
    if document.certification:
        body += "\n" + _("(Documento de certificación: sin validez tributaria.)") + "\n"
    message = EmailMessage(
        subject=_("%(name)s N° %(folio)s — pedido %(order)s") % values,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.buyer_email],
    )
    try:
        pdf = document_pdf_bytes(document=document)
    except DocumentFileUnavailable as exc:
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.FAILED, _("No se envió el correo: %(why)s") % {"why": exc})
        logger.warning("account=%s document=%s email not sent: %s", document.account_id, document.pk, exc)
        return
    message.attach(document_filename(document=document, extension="pdf"), pdf, "application/pdf")
    if bytes(document.xml):
        message.attach(document_filename(document=document, extension="xml"), bytes(document.xml), "application/xml")
    try:
        message.send()
    except Exception as exc:  # SMTP, ESP APIs and their SDKs raise anything; the document must stand
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.FAILED,
             _("No se pudo enviar el correo: %(why)s") % {"why": f"{type(exc).__name__}: {exc}"})
        logger.warning("account=%s document=%s email failed: %r", document.account_id, document.pk, exc)
        return
    _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.DONE, _("Enviado a %(email)s") % {"email": order.buyer_email})
