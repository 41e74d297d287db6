"""Voiding a document at its biller: the correction of a document no credit note can correct.

A boleta de honorarios (BHE) is never corrected by a nota de crédito; a full refund or a cancellation of
its order voids it at the biller instead (``BillerAdapter.void``, ``Capability.VOID``). A partial refund
cannot be expressed on it and is left on the order, with the reason, for a person.

The void is a small outbox of its own on the document (``void_status``): requested in the transaction
that saw the refund, run after commit outside any transaction, retried with the emissions' backoff on
transient failures, failed with the biller's message when refused, and re-queued by the sweeper when a
message was lost. Voiding is safe to repeat at the biller, so a retry after a lost answer is harmless.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import Actor, audit_log_record
from billers.base import Capability, RejectedBillerError, TransientBillerError
from billers.dte.display import document_name
from billers.dte.types import DOCUMENT_TYPES
from billers.registry import BillerNotRegistered, biller_adapter_for
from billmysales.integrations.errors import UnsupportedFeature

from ..dispatch import enqueue_after_commit
from ..models import Document, Order, VoidStatus

logger = logging.getLogger(__name__)

VOID_TASK = "gateways.tasks.document_void_task"
# What a running try holds the document for, before the sweeper may presume its worker dead.
VOID_LEASE = timedelta(minutes=5)


def voided_instead_of_credited(document: Document) -> bool:
    """Documents of a kind no credit note can reference (the boleta de honorarios) are voided instead."""
    known = DOCUMENT_TYPES.get(document.tipo_dte)
    return known is not None and known.kind == "honorarios"


def document_void_request(*, document: Document, reason: str, actor: Actor | None = None) -> bool:
    """Asks for ``document`` to be voided at its biller (after the current transaction commits); False
    when it is voided or being voided already. Call it inside the transaction that decided it."""
    claimed = Document.objects.filter(pk=document.pk, void_status__in=(VoidStatus.NONE, VoidStatus.FAILED)).update(
        void_status=VoidStatus.PENDING, void_attempts=0, void_at=timezone.now(),
        void_message=_("Anulación pedida: %(reason)s") % {"reason": reason},
    )
    if not claimed:
        return False
    if actor is not None:
        audit_log_record(account=document.order.account, actor=actor, action="document.void", obj=document.order,
                         data={"document": document.pk, "folio": document.folio, "reason": reason})
    enqueue_after_commit(VOID_TASK, (document.pk,))
    return True


def document_void_run(*, document_id: int) -> Document | None:
    """One try at voiding; None when the document is not due (voided, failed, or another worker holds it)."""
    now = timezone.now()
    with transaction.atomic():
        document = (
            Document.objects.select_for_update(of=("self",)).select_related("biller", "order")
            .filter(pk=document_id, void_status=VoidStatus.PENDING).first()
        )
        if document is None or (document.void_at is not None and document.void_at > now):
            return None
        attempts = document.void_attempts + 1
        Document.objects.filter(pk=document.pk).update(void_attempts=attempts, void_at=now + VOID_LEASE)
    name = _("%(name)s N° %(folio)s") % {"name": document_name(document.tipo_dte), "folio": document.folio}
    try:
        adapter = biller_adapter_for(document.biller)
        if not adapter.can(Capability.VOID):
            raise UnsupportedFeature(_("%(biller)s no anula documentos por su API.") % {"biller": adapter.display_name()})
        adapter.void(tipo_dte=document.tipo_dte, folio=document.folio)
    except TransientBillerError as exc:
        delays = settings.BMS_RETRY_DELAYS
        if attempts > len(delays):
            return _finish(document, VoidStatus.FAILED, _("%(name)s no se pudo anular tras %(n)s intentos: %(why)s. Anúlela en el "
                                                          "facturador.") % {"name": name, "n": attempts, "why": exc.message})
        due = now + timedelta(seconds=delays[attempts - 1])
        Document.objects.filter(pk=document.pk).update(void_at=due, void_message=_(
            "%(name)s: el facturador no respondió (%(why)s); se reintenta a las %(when)s.")
            % {"name": name, "why": exc.message, "when": timezone.localtime(due).strftime("%H:%M")})
        enqueue_after_commit(VOID_TASK, (document.pk,), countdown=delays[attempts - 1])
        return None
    except (RejectedBillerError, UnsupportedFeature, BillerNotRegistered) as exc:
        message = getattr(exc, "message", str(exc))
        return _finish(document, VoidStatus.FAILED, _("%(name)s no se anuló: %(why)s") % {"name": name, "why": message})
    return _finish(document, VoidStatus.DONE, _("%(name)s anulada en el facturador.") % {"name": name})


def _finish(document: Document, status: str, message: str) -> Document:
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(void_status=status, void_message=message[:2000], void_at=timezone.now())
        if status == VoidStatus.FAILED:
            logger.warning("account=%s document=%s void failed: %s", document.account_id, document.pk, message)
            Order.objects.filter(pk=document.order_id).update(status_reason=message[:500])
    document.refresh_from_db()
    return document


def documents_void_requeue(*, stale_before) -> int:
    """Pending voids due for longer than the sweeper's threshold: a lost message, or a worker presumed dead
    once its lease ran out."""
    due = list(Document.objects.filter(void_status=VoidStatus.PENDING, void_at__lt=stale_before).values_list("pk", flat=True)[:1000])
    for document_id in due:
        enqueue_after_commit(VOID_TASK, (document_id,))
    return len(due)
