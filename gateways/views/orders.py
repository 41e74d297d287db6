"""Orders: the list (filters, search, statuses that update while orders are processed, bulk actions with
their progress, the deliveries a store could not read) and one order's page with its actions.

The list is keyset-paginated (``before`` / ``after`` row ids) and never counts the account's orders. Its
rows poll (htmx) every 2 s while one of them is in progress; the first page also asks every 5 s
whether newer orders arrived (an indexed EXISTS, answered 204 when none), so a paid order shows up and
turns "Emitida" without a reload. Older pages do not poll.
"""
import json
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import DetailView, TemplateView

from accounts.scoping import AccountScopedViewMixin, may_write, request_actor
from billers.dte.display import format_clp

from .. import labels, selectors, services
from ..models import BulkJob, DocumentKind, EmissionStatus, InboundEvent, OrderStatus
from ..services.bulk_jobs import BULK_JOB_MAX_ITEMS, bulk_job_create
from ..services.manual_credit_notes import order_credit_note_request
from .forms import CreditNoteForm, OrderFilterForm, SkipForm, TextCorrectionForm

FILTER_FIELDS = ("q", "status", "gateway", "tipo", "desde", "hasta")
# Polling of the rows: fast while an order is in progress, slow on the first page to see new orders.
POLL_BUSY, POLL_IDLE = "every 2s", "every 5s"
# Which orders a bulk action over "all filtered orders" takes: those the action applies to.
BULK_STATUSES = {
    BulkJob.Kind.EMIT: (OrderStatus.WAITING, OrderStatus.HELD, OrderStatus.SKIPPED, OrderStatus.FAILED, OrderStatus.RECEIVED),
    BulkJob.Kind.RETRY: (OrderStatus.FAILED, OrderStatus.HELD),
}


def int_param(params, name: str) -> int | None:
    value = params.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


def filter_query(params) -> str:
    """The list's filters as a query string (for pagination links, polling and going back after an action)."""
    return urlencode([(name, params[name]) for name in FILTER_FIELDS if params.get(name)])


class OrderPageMixin:
    """The filtered, keyset-paginated page of orders the list and its polled rows both show."""

    def order_queryset(self, params):
        form = OrderFilterForm(params, gateways=selectors.gateway_list(account=self.account))
        form.is_valid()
        return form, selectors.order_filtered(account=self.account, **form.filters())

    def order_page(self, params):
        form, queryset = self.order_queryset(params)
        filters = form.filters()
        by = "received_at" if filters["date_from"] or filters["date_to"] else None
        page = selectors.keyset_page(
            selectors.order_rows(queryset), before=int_param(params, "before"), after=int_param(params, "after"), by=by,
        )
        return form, page

    def rows_context(self, params, page) -> dict:
        busy = any(order.status in selectors.IN_PROGRESS_STATUSES for order in page.items)
        first_page = not params.get("before") and not params.get("after")
        query = filter_query(params)
        poll = POLL_BUSY if busy else (POLL_IDLE if first_page else "")
        poll_url = f"{reverse('order-rows')}?{query}"
        if params.get("before"):
            poll_url += f"&before={params['before']}"
        if not busy and first_page:
            poll_url += f"&top={page.items[0].pk if page.items else 0}"
        return {
            "orders": page.items, "page": page, "poll": poll, "poll_url": poll_url, "selectable": may_write(self.request),
            "selected": {int(i) for i in params.getlist("order") if i.isdigit()},
            "in_progress": sum(order.status in selectors.IN_PROGRESS_STATUSES for order in page.items),
        }


class OrderListView(AccountScopedViewMixin, OrderPageMixin, TemplateView):
    template_name = "gateways/order_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET
        form, page = self.order_page(params)
        jobs = selectors.job_list(account=self.account)
        context.update(
            self.rows_context(params, page),
            form=form, filter_query=filter_query(params), filtered=any(params.get(name) for name in FILTER_FIELDS),
            filter_items=[(name, params[name]) for name in FILTER_FIELDS if params.get(name)],
            unread=selectors.unread_event_page(account=self.account, limit=20), jobs=jobs,
            jobs_running=selectors.jobs_running(jobs), may_write=may_write(self.request), bulk_max=BULK_JOB_MAX_ITEMS,
        )
        return context


class OrderRowsView(AccountScopedViewMixin, OrderPageMixin, View):
    """The rows of the list, for htmx polling: 204 (nothing to swap) when the page had nothing in progress
    and no newer order arrived."""

    def get(self, request):
        top = int_param(request.GET, "top")
        if top is not None:
            # The page had nothing in progress (``top`` is sent only then): only a newer order changes it.
            _form, queryset = self.order_queryset(request.GET)
            if not selectors.orders_newer_exist(queryset, than_id=top):
                return HttpResponse(status=204)
        _form, page = self.order_page(request.GET)
        return render(request, "gateways/_order_rows.html", {**self.rows_context(request.GET, page), "partial": True})


class JobListView(AccountScopedViewMixin, View):
    """The progress bars of the latest bulk actions and backfills, polled while one is running."""

    def get(self, request):
        jobs = selectors.job_list(account=self.account)
        return render(request, "gateways/_jobs.html", {"jobs": jobs, "jobs_running": selectors.jobs_running(jobs)})


def _back_to_list(params) -> str:
    query = filter_query(params)
    return reverse("order-list") + (f"?{query}" if query else "")


class OrderBulkView(AccountScopedViewMixin, View):
    """Emit or retry the selected orders, or every filtered order the action applies to, as a job."""

    def post(self, request):
        back = _back_to_list(request.POST)
        if not may_write(request):
            messages.error(request, _("Su rol solo permite ver."))
            return redirect(back)
        kind = request.POST.get("action", "")
        if kind not in BULK_STATUSES:
            messages.error(request, _("Acción desconocida."))
            return redirect(back)
        if request.POST.get("scope") == "filtered":
            form = OrderFilterForm(request.POST, gateways=selectors.gateway_list(account=self.account))
            form.is_valid()
            queryset = selectors.order_filtered(account=self.account, **form.filters()).filter(status__in=BULK_STATUSES[kind])
            ids = list(queryset.order_by("-id").values_list("pk", flat=True)[:BULK_JOB_MAX_ITEMS])
            description = _("Órdenes filtradas")
        else:
            ids = [int(i) for i in request.POST.getlist("order") if i.isdigit()]
            description = ngettext("%(n)s orden seleccionada", "%(n)s órdenes seleccionadas", len(ids)) % {"n": len(ids)}
        try:
            job = bulk_job_create(account=self.account, kind=kind, item_ids=ids, description=description, actor=request_actor(request))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(back)
        messages.success(request, ngettext(
            "%(action)s: %(n)s orden en cola; el avance se muestra en «Trabajos».",
            "%(action)s: %(n)s órdenes en cola; el avance se muestra en «Trabajos».", job.total,
        ) % {"action": job.get_kind_display(), "n": job.total})
        return redirect(back)


class UnreadReprocessView(AccountScopedViewMixin, View):
    """Read one unread delivery again (after fixing the field mapping or the connection)."""

    def scoped_queryset(self):
        return InboundEvent.objects.filter(status__in=selectors.UNREAD_STATUSES).select_related("gateway__account")

    def post(self, request, pk):
        event = self.get_object()
        if not may_write(request):
            messages.error(request, _("Su rol solo permite ver."))
        else:
            try:
                services.inbound_event_reprocess(event=event, actor=request_actor(request))
                messages.success(request, _("La entrega se volverá a leer."))
            except ValueError as exc:
                messages.error(request, str(exc))
        return redirect(reverse("order-list") + "#no-leidos")


class UnreadReprocessAllView(AccountScopedViewMixin, View):
    """Read every unread delivery of the account again, as a job with its progress."""

    def post(self, request):
        if not may_write(request):
            messages.error(request, _("Su rol solo permite ver."))
            return redirect(reverse("order-list") + "#no-leidos")
        ids = selectors.unread_event_ids(account=self.account, limit=BULK_JOB_MAX_ITEMS)
        try:
            job = bulk_job_create(account=self.account, kind=BulkJob.Kind.REPROCESS, item_ids=ids,
                                  description=_("Pedidos no leídos"), actor=request_actor(request))
            messages.success(request, ngettext("%(n)s entrega se volverá a leer.", "%(n)s entregas se volverán a leer.", job.total)
                             % {"n": job.total})
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect(reverse("order-list") + "#no-leidos")


def _add_service_error(form, exc: ValidationError) -> None:
    """A service's refusal on the form: on the field it names when the form has it, else for the whole form."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def format_price(value) -> str:
    """A unit price in the one money format (``$12.990``), keeping the decimals a net unit price may have
    (``$8.394,958``)."""
    if value is None:
        return ""
    value = Decimal(value)
    whole = format_clp(int(value))
    decimals = f"{abs(value) % 1:f}".rstrip("0").removeprefix("0.")
    return f"{whole},{decimals}" if decimals and decimals != "0" else whole


def _with_credited(documents: list) -> list:
    """Sale documents first, then credit notes, each note with ``credited`` (the document it credits)."""
    by_id = {d.pk: d for d in documents}
    for d in documents:
        d.credited = by_id.get(d.credited_document_id)
    return sorted(documents, key=lambda d: (d.kind != DocumentKind.INVOICE, d.sequence))


class OrderDetailView(AccountScopedViewMixin, DetailView):
    """Why the order was (not) billed, its document and what happened after, and what can be done now.
    The parts that change while a document is issued poll while something is in progress."""

    template_name = "gateways/order_detail.html"
    context_object_name = "order"

    def scoped_queryset(self):
        return selectors.order_detail_queryset()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        order = self.object
        writer = may_write(self.request)
        actions = selectors.order_actions(order=order) if writer else selectors.OrderActions()
        documents = list(order.documents.all())
        preview = selectors.order_document_preview(order=order)
        emissions = sorted(order.emissions.all(), key=lambda e: (e.kind != DocumentKind.INVOICE, e.sequence))
        busy = order.status in selectors.IN_PROGRESS_STATUSES or any(
            e.status in (EmissionStatus.PENDING, EmissionStatus.ISSUING) for e in emissions
        )
        context.update(
            may_write=writer, actions=actions, busy=busy,
            decision_label=labels.decision_label(order.decision.get("action")),
            payment_label=labels.payment_label(order.payment_status),
            reasons=order.decision.get("reasons") or [],
            refused_credit_notes=[
                {"refund": note.get("refund", ""), "reasons": note.get("reasons") or []}
                for note in order.decision.get("credit_notes", [])
            ],
            preview=preview,
            preview_lines=[(line, format_price(line.prc_item)) for line in preview.document.detalle]
            if preview is not None and preview.document is not None else [],
            documents=_with_credited(documents),
            pending_emissions=[e for e in emissions if e.status != EmissionStatus.ISSUED],
            emissions=emissions,
            payload=json.dumps(selectors.masked_payload(order.raw), ensure_ascii=False, indent=2)[:50000],
        )
        if actions.skip:
            context.setdefault("skip_form", SkipForm())
        if actions.credit_note:
            context.setdefault("credit_form", CreditNoteForm(lines=selectors.order_credit_lines(order=order)))
        if actions.text_correction:
            context.setdefault("correction_form", TextCorrectionForm(current=selectors.order_current_receptor(order=order)))
        return context

    def post(self, request, pk):
        order = self.object = self.get_object()
        if not may_write(request):
            messages.error(request, _("Su rol solo permite ver."))
            return redirect("order-detail", pk=order.pk)
        actor = request_actor(request)
        action = request.POST.get("action")
        forms = {}
        try:
            if action == "emit":
                order = services.order_emit_now(order=order, actor=actor)
                if order.status == OrderStatus.READY:
                    messages.success(request, _("Orden enviada a emisión."))
                else:
                    messages.error(request, _("No se emitió (%(status)s): %(reason)s") % {
                        "status": order.get_status_display(), "reason": order.status_reason})
            elif action == "retry":
                services.order_retry(order=order, actor=actor)
                messages.success(request, _("Reintento en cola."))
            elif action == "skip":
                forms["skip_form"] = form = SkipForm(request.POST)
                if form.is_valid():
                    services.order_skip(order=order, reason=form.cleaned_data["reason"], actor=actor)
                    messages.success(request, _("La orden no se emitirá."))
            elif action == "credit_note":
                forms["credit_form"] = form = CreditNoteForm(request.POST, lines=selectors.order_credit_lines(order=order))
                if form.is_valid():
                    order_credit_note_request(order=order, reason=form.cleaned_data["reason"], lines=form.lines(), actor=actor)
                    messages.success(request, _("Nota de crédito en cola de emisión."))
            elif action == "text_correction":
                form = TextCorrectionForm(request.POST, current=selectors.order_current_receptor(order=order))
                forms["correction_form"] = form
                if form.is_valid():
                    services.order_text_correction(order=order, corrections=form.corrections(), reason=form.cleaned_data["reason"],
                                                   actor=actor)
                    messages.success(request, _("Corrección de texto en cola de emisión."))
            else:
                messages.error(request, _("Acción desconocida."))
        except ValidationError as exc:
            if not forms:
                messages.error(request, " ".join(exc.messages))
                return redirect("order-detail", pk=order.pk)
            _add_service_error(next(iter(forms.values())), exc)
        if any(form.errors for form in forms.values()):
            self.object = selectors.order_detail_queryset().get(pk=order.pk)
            return self.render_to_response(self.get_context_data(**forms), status=400)
        return redirect("order-detail", pk=order.pk)
