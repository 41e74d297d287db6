"""Documents: the account's issued documents (filters, keyset pages, SII status, CSV export for
accounting) and their files (the signed XML and the PDF), for the account and through the public link."""
import csv
from urllib.parse import urlencode

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from accounts.scoping import AccountScopedViewMixin
from billers.dte.display import document_name

from .. import selectors, services
from ..models import Document, SiiStatus
from .forms import DocumentFilterForm
from .orders import int_param

FILTER_FIELDS = ("folio", "tipo", "gateway", "sii", "desde", "hasta")


def document_filter_query(params) -> str:
    return urlencode([(name, params[name]) for name in FILTER_FIELDS if params.get(name)])


def _filtered(view) -> tuple[DocumentFilterForm, object]:
    form = DocumentFilterForm(view.request.GET, gateways=selectors.gateway_list(account=view.account))
    form.is_valid()
    return form, selectors.document_filtered(account=view.account, **form.filters())


class DocumentListView(AccountScopedViewMixin, TemplateView):
    """The issued documents, newest first (by date when a date range is asked), with their files."""

    template_name = "gateways/document_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form, queryset = _filtered(self)
        filters = form.filters()
        page = selectors.keyset_page(
            selectors.document_rows(queryset), before=int_param(self.request.GET, "before"),
            after=int_param(self.request.GET, "after"), by="fecha" if filters["date_from"] or filters["date_to"] else None,
        )
        context.update(form=form, page=page, documents=page.items, filter_query=document_filter_query(self.request.GET))
        return context


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming ``csv.writer`` output."""

    def write(self, value):
        return value


CSV_HEADERS = (
    gettext_lazy("Fecha"), gettext_lazy("Tipo"), gettext_lazy("Documento"), gettext_lazy("Folio"), gettext_lazy("Neto"),
    gettext_lazy("IVA"), gettext_lazy("Exento"), gettext_lazy("Total"), gettext_lazy("Orden"), gettext_lazy("Pasarela"),
    gettext_lazy("Ambiente"), gettext_lazy("Estado en el SII"), gettext_lazy("Emitido el"),
)


class DocumentExportView(AccountScopedViewMixin, View):
    """The filtered documents as CSV for Excel: UTF-8 with BOM, ";" between columns (Excel's separator in
    Spanish), Spanish headers, amounts as whole pesos. Streamed in keyset chunks, so any size fits."""

    def get(self, request):
        _form, queryset = _filtered(self)
        writer = csv.writer(_Echo(), delimiter=";")
        # Words are translated now: the rows are written after the view returns, outside the request's language.
        headers = [str(header) for header in CSV_HEADERS]
        environments = {True: _("Certificación"), False: _("Producción")}
        sii_labels = {value: str(label) for value, label in SiiStatus.choices}

        def rows():
            yield "\ufeff" + writer.writerow(headers)
            for d in selectors.document_export_iter(queryset):
                totals = d.totals or {}
                yield writer.writerow([
                    d.fecha.isoformat(), d.tipo_dte, document_name(d.tipo_dte), d.folio, int(totals.get("MntNeto") or 0),
                    int(totals.get("IVA") or 0), int(totals.get("MntExe") or 0), d.mnt_total, d.order.number or d.order.external_id,
                    d.order.gateway.name, environments[d.certification], sii_labels.get(d.sii_status, d.sii_status),
                    timezone.localtime(d.issued_at).strftime("%Y-%m-%d %H:%M"),
                ])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="documentos-{timezone.localdate().isoformat()}.csv"'
        return response


class DocumentFileView(AccountScopedViewMixin, View):
    """The document's signed XML or its PDF, as a download."""

    extension = "xml"

    def scoped_queryset(self):
        return Document.objects.select_related("biller")

    def get(self, request, pk):
        document = self.get_object()
        if self.extension == "pdf":
            response = HttpResponse(services.document_pdf_bytes(document=document), content_type="application/pdf")
        else:
            response = HttpResponse(bytes(document.xml), content_type="application/xml; charset=ISO-8859-1")
        filename = selectors.document_filename(document=document, extension=self.extension)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def public_document_pdf(request, token: str):
    """The PDF behind a document's public link (the one written back to the store for the buyer)."""
    document = services.document_from_public_token(token)
    if document is None:
        raise Http404("Documento no encontrado")
    response = HttpResponse(services.document_pdf_bytes(document=document), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{selectors.document_filename(document=document, extension="pdf")}"'
    return response
