"""Dashboard views that store and biller connections share: "Probar conexión" and delete. Each app names
its model, its service and its routes; the pages and messages differ only in those."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views import View

from accounts.scoping import AccountScopedViewMixin, request_actor, require_write


class ConnectionTestView(AccountScopedViewMixin, View):
    """The vendor's answer in words: a fragment for htmx, a page without it."""

    model = None
    page_template = ""

    def run_test(self, connection):
        raise NotImplementedError

    def scoped_queryset(self):
        return self.model.objects.all()

    def post(self, request, pk):
        require_write(request)
        connection = self.get_object()
        context = {"report": self.run_test(connection), "connection": connection}
        return render(request, "integrations/_report.html" if request.htmx else self.page_template, context)


class ConnectionDeleteView(AccountScopedViewMixin, View):
    """Deletes through the app's service; a connection in use is refused with the service's reason."""

    model = None
    edit_url = ""
    list_url = ""

    def delete(self, connection, actor) -> None:
        raise NotImplementedError

    def deleted_message(self, connection) -> str:
        raise NotImplementedError

    def scoped_queryset(self):
        return self.model.objects.all()

    def post(self, request, pk):
        require_write(request)
        connection = self.get_object()
        try:
            self.delete(connection, request_actor(request))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(self.edit_url, pk=pk)
        messages.success(request, self.deleted_message(connection))
        return redirect(self.list_url)
