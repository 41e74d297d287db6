"""Document files: the signed XML and the PDF, for the account and through the public link."""
from django.http import Http404, HttpResponse
from django.views import View

from accounts.scoping import AccountScopedViewMixin

from .. import selectors, services
from ..models import Document


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
