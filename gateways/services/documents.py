"""Issued documents after the fact: their files, their status at the SII, their public link.

- Files: a biller that keeps the XML and PDF (LibreDTE) is asked for them once, after issue, and they
  are stored, so the dashboard, the buyer's email, the store write-back and the API serve them without
  anyone holding the biller's credentials. A document with only its signed XML gets its PDF rendered
  from it (in the SII's layout, with the emisor's resolution).
- SII status: documents of billers that report it are checked on a schedule until the SII accepts or
  rejects them; a rejection is written on the order with the SII's detail.
- Public link: a signed, unguessable URL to the PDF, which the store shows the buyer.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billers.base import Capability
from billers.dte.display import document_name
from billers.dte.pdf import render_pdf
from billers.registry import BillerNotRegistered, biller_adapter_for
from billmysales.integrations.errors import IntegrationError

from ..dispatch import enqueue_after_commit
from ..models import SII_FINAL_STATUSES, Document, Order, SiiStatus

logger = logging.getLogger(__name__)

SII_STATUS_TASK = "gateways.tasks.document_sii_status_task"
PUBLIC_LINK_SALT = "bms.document.public"
# How long after issue the SII status is still asked for, and how often.
SII_STATUS_GIVE_UP = timedelta(days=7)
SII_STATUS_EVERY = timedelta(minutes=10)


def document_files_fetch(*, document: Document) -> Document:
    """Stores the biller's XML and PDF of ``document`` when they are missing and the biller gives them.
    A biller that cannot be reached now leaves them missing; the next read asks again."""
    missing_xml, missing_pdf = not bytes(document.xml), not bytes(document.pdf)
    if not (missing_xml or missing_pdf):
        return document
    try:
        adapter = biller_adapter_for(document.biller)
        updates = {}
        if missing_xml and adapter.can(Capability.FETCH_XML):
            updates["xml"] = adapter.fetch_xml(tipo_dte=document.tipo_dte, folio=document.folio)
        if missing_pdf and adapter.can(Capability.FETCH_PDF):
            updates["pdf"] = adapter.fetch_pdf(tipo_dte=document.tipo_dte, folio=document.folio)
    except (IntegrationError, BillerNotRegistered) as exc:
        logger.warning("account=%s document=%s files not fetched: %s", document.account_id, document.pk, exc)
        return document
    if updates:
        Document.objects.filter(pk=document.pk).update(**updates)
        for field, value in updates.items():
            setattr(document, field, value)
    return document


class DocumentFileUnavailable(Exception):
    """The biller has not given this document's file (yet) and we cannot make it: e.g. a boleta de
    honorarios whose PDF the biller keeps, while the biller cannot be reached."""


def document_pdf_bytes(*, document: Document) -> bytes:
    """The document's PDF: the biller's, or rendered from the signed XML; ``DocumentFileUnavailable``
    (with a Spanish message) when there is neither."""
    if not bytes(document.pdf):
        document_files_fetch(document=document)
    if bytes(document.pdf):
        return bytes(document.pdf)
    if not bytes(document.xml):
        raise DocumentFileUnavailable(
            _("El facturador aún no entrega el PDF de %(name)s N° %(folio)s; intente de nuevo en unos minutos.")
            % {"name": document_name(document.tipo_dte).lower(), "folio": document.folio}
        )
    biller = document.biller
    return render_pdf(
        bytes(document.xml),
        certification=document.certification,
        resolution_number=biller.sii_resolution_number,
        resolution_year=biller.sii_resolution_date.year if biller.sii_resolution_date else None,
    )


def document_xml_bytes(*, document: Document) -> bytes:
    """The document's signed XML (asked from the biller when it keeps it); ``DocumentFileUnavailable``
    when there is none, e.g. a boleta de honorarios, which is not an XML document."""
    if not bytes(document.xml):
        document_files_fetch(document=document)
    if not bytes(document.xml):
        raise DocumentFileUnavailable(
            _("El facturador no entrega un XML de %(name)s N° %(folio)s.")
            % {"name": document_name(document.tipo_dte).lower(), "folio": document.folio}
        )
    return bytes(document.xml)


def document_public_url(*, document: Document) -> str:
    token = signing.dumps({"d": document.pk, "a": document.account_id}, salt=PUBLIC_LINK_SALT, compress=True)
    return f"{settings.BMS_PUBLIC_URL.rstrip('/')}/documentos/{token}.pdf"


def document_from_public_token(token: str) -> Document | None:
    try:
        data = signing.loads(token, salt=PUBLIC_LINK_SALT)
    except signing.BadSignature:
        return None
    return Document.objects.select_related("biller").filter(pk=data.get("d"), account_id=data.get("a")).first()


def documents_sii_status_due() -> int:
    """Queues a status check for each document the SII has not decided on yet, at most every
    ``SII_STATUS_EVERY``, for ``SII_STATUS_GIVE_UP`` after issue."""
    now = timezone.now()
    due = (
        Document.objects.exclude(sii_status__in=SII_FINAL_STATUSES)
        .exclude(sii_status=SiiStatus.UNKNOWN, sii_track_id="")
        .filter(issued_at__gt=now - SII_STATUS_GIVE_UP)
        .filter(Q(sii_checked_at__isnull=True) | Q(sii_checked_at__lt=now - SII_STATUS_EVERY))
        .values_list("pk", flat=True)[:500]
    )
    ids = list(due)
    Document.objects.filter(pk__in=ids).update(sii_checked_at=now)
    for document_id in ids:
        enqueue_after_commit(SII_STATUS_TASK, (document_id,))
    return len(ids)


def document_sii_status_refresh(*, document_id: int) -> Document:
    document = Document.objects.select_related("biller", "order").get(pk=document_id)
    try:
        adapter = biller_adapter_for(document.biller)
        if not adapter.can(Capability.SII_STATUS):
            return document
        status, detail = adapter.sii_status(tipo_dte=document.tipo_dte, folio=document.folio)
    except (IntegrationError, BillerNotRegistered) as exc:
        logger.warning("account=%s document=%s SII status not read: %s", document.account_id, document.pk, exc)
        return document
    if status not in SiiStatus.values:
        status = SiiStatus.UNKNOWN
    Document.objects.filter(pk=document.pk).update(sii_status=status, sii_status_detail=detail[:2000], sii_checked_at=timezone.now())
    if status == SiiStatus.REJECTED and document.sii_status != SiiStatus.REJECTED:
        reason = _("El SII rechazó la %(name)s N° %(folio)s: %(detail)s") % {
            "name": document_name(document.tipo_dte).lower(), "folio": document.folio, "detail": detail or _("sin detalle"),
        }
        Order.objects.filter(pk=document.order_id).update(status_reason=reason[:2000], updated_at=timezone.now())
        logger.warning("account=%s document=%s rejected by the SII: %s", document.account_id, document.pk, detail)
    document.refresh_from_db()
    return document
