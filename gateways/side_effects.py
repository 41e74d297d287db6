"""What happens after a document is issued: email to the buyer, write-back to the store, webhooks.

Each side effect is claimed (pending → done / failed / n/a) with a conditional update, so a repeated
task never sends twice, and a failure is recorded on the document without touching the document.
"""
import logging

from django.conf import settings
from django.core.mail import EmailMessage

from billers.dte.display import document_name, format_clp
from sources.base import DocumentWriteBack, IssuedDocumentInfo
from sources.registry import SourceNotRegistered, source_adapter_for

from .models import Document, DocumentKind, SideEffect
from .selectors import document_filename
from .services.documents import document_files_fetch, document_pdf_bytes, document_public_url

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
        _set(document, SideEffect.Kind.WEBHOOK, SideEffect.Outcome.NOT_APPLICABLE, "No hay webhooks salientes configurados.")


def document_note(document: Document) -> str:
    """One line a person reads on the order: "Boleta electrónica N° 123 por $36.960 (certificación)"."""
    note = f"{document_name(document.tipo_dte)} N° {document.folio} por {format_clp(document.mnt_total)}"
    return f"{note} (certificación)" if document.certification else note


def _write_back(document: Document) -> None:
    source = document.order.gateway.source
    try:
        adapter = source_adapter_for(source)
    except SourceNotRegistered as exc:
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.FAILED, exc.message)
        return
    if not isinstance(adapter, DocumentWriteBack):
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.NOT_APPLICABLE,
             f"El origen {source.get_platform_display()} no admite escribir el documento de vuelta.")
        return
    info = IssuedDocumentInfo(
        order_external_id=document.order.external_id, tipo_dte=document.tipo_dte, folio=document.folio,
        total=document.mnt_total, certification=document.certification, note=document_note(document),
        pdf_url=document_public_url(document=document), fecha=document.fecha.isoformat(),
        credit_note=document.kind == DocumentKind.CREDIT_NOTE,
        pdf=document_pdf_bytes(document=document) if adapter.wants_pdf_file else b"", order_raw=document.order.raw,
    )
    try:
        written = adapter.push_document(info)
    except Exception as exc:  # a store's refusal or an adapter bug: recorded, never undoes the document
        _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.FAILED, f"La tienda no aceptó el documento: {exc}")
        logger.warning("account=%s document=%s write-back failed: %s", document.account_id, document.pk, exc)
        return
    _set(document, SideEffect.Kind.STORE_WRITEBACK, SideEffect.Outcome.DONE, written)


def _email_buyer(document: Document) -> None:
    order = document.order
    if not order.gateway.ruleset.email_buyer:
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.NOT_APPLICABLE, "Las reglas no envían correo al comprador.")
        return
    if not order.buyer_email:
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.NOT_APPLICABLE, "La orden no trae correo del comprador.")
        return
    name = document_name(document.tipo_dte)
    message = EmailMessage(
        subject=f"{name} N° {document.folio} — pedido {order.number}",
        body=(
            f"Hola {order.buyer_name or ''},\n\nAdjuntamos su {name.lower()} N° {document.folio} "
            f"por {format_clp(document.mnt_total)} correspondiente al pedido {order.number}.\n"
            + ("\n(Documento de certificación: sin validez tributaria.)\n" if document.certification else "")
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.buyer_email],
    )
    message.attach(document_filename(document=document, extension="pdf"), document_pdf_bytes(document=document), "application/pdf")
    message.attach(document_filename(document=document, extension="xml"), bytes(document.xml), "application/xml")
    try:
        message.send()
    except Exception as exc:  # SMTP, ESP APIs and their SDKs raise anything; the document must stand
        _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.FAILED, f"No se pudo enviar el correo: {type(exc).__name__}: {exc}")
        logger.warning("account=%s document=%s email failed: %r", document.account_id, document.pk, exc)
        return
    _set(document, SideEffect.Kind.EMAIL, SideEffect.Outcome.DONE, f"Enviado a {order.buyer_email}")
