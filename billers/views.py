"""Dashboard pages of biller connections ("Facturadores"): the list, linking a new biller, a biller's page
(details, "Probar conexión", its data, delete). The pieces — type choice, form, details, test report — are
templates that the setup wizard and a gateway's "Facturador" tab include as well. Every write goes through
``billers.services``."""
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from accounts.scoping import AccountScopedViewMixin, may_write, request_actor, require_write
from billmysales.integrations.forms import stored_details
from billmysales.integrations.views import ConnectionDeleteView, ConnectionTestView

from .forms import BillerConnectionForm, BillerTypeForm
from .models import BillerConnection
from .registry import BILLER_ADAPTERS, BillerNotRegistered, biller_adapter_class
from .services import biller_connection_delete, biller_connection_test


def chosen_provider(value: str | None) -> str | None:
    return value if value in BILLER_ADAPTERS else None


def connection_details(connection: BillerConnection) -> dict:
    """What a biller's page shows about it: the stored credentials (secrets only as "guardado") and the
    document types its adapter issues."""
    try:
        adapter = biller_adapter_class(connection.provider)
    except BillerNotRegistered:
        return {"stored": [], "document_types": ()}
    return {"stored": stored_details(adapter.credentials_spec, connection), "document_types": sorted(adapter.document_types)}


def new_biller_context(request, *, provider: str | None, form: BillerConnectionForm | None) -> dict:
    """The pieces of "link a new biller": the type choice and, once chosen, its form."""
    provider = chosen_provider(provider)
    if provider and form is None:
        form = BillerConnectionForm(provider=provider)
    return {"type_form": BillerTypeForm(initial={"provider": provider}), "provider": provider, "form": form,
            "may_write": may_write(request)}


class BillerListView(AccountScopedViewMixin, TemplateView):
    template_name = "billers/biller_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["billers"] = BillerConnection.objects.filter(account=self.account).prefetch_related("gateways").order_by("name")
        context["may_write"] = may_write(self.request)
        return context


class BillerCreateView(AccountScopedViewMixin, TemplateView):
    """``?provider=`` picks the biller (the page swaps its lower part live with htmx, or reloads without it)."""

    template_name = "billers/biller_new.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        provider = kwargs.get("provider", self.request.GET.get("provider"))
        context.update(new_biller_context(self.request, provider=provider, form=kwargs.get("form")))
        context["form_action"] = reverse("biller-create")
        return context

    def post(self, request):
        require_write(request)
        provider = chosen_provider(request.POST.get("provider"))
        if provider is None:
            return redirect("biller-create")
        form = BillerConnectionForm(request.POST, provider=provider)
        connection = form.save(account=self.account, actor=request_actor(request)) if form.is_valid() else None
        if connection is None:
            return self.render_to_response(self.get_context_data(provider=provider, form=form))
        messages.success(request, _("Facturador «%(name)s» guardado.") % {"name": connection.name})
        return redirect("biller-edit", pk=connection.pk)


class BillerEditView(AccountScopedViewMixin, TemplateView):
    template_name = "billers/biller_edit.html"

    def scoped_queryset(self):
        return BillerConnection.objects.prefetch_related("gateways")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        connection = kwargs.get("connection") or self.get_object()
        context.update(
            connection=connection, details=connection_details(connection), may_write=may_write(self.request),
            form=kwargs.get("form") or BillerConnectionForm(provider=connection.provider, instance=connection),
        )
        return context

    def post(self, request, pk):
        require_write(request)
        connection = self.get_object()
        form = BillerConnectionForm(request.POST, provider=connection.provider, instance=connection)
        if form.is_valid() and form.save(account=self.account, actor=request_actor(request)) is not None:
            messages.success(request, _("Cambios guardados."))
            return redirect("biller-edit", pk=pk)
        connection.refresh_from_db()
        return self.render_to_response(self.get_context_data(connection=connection, form=form))


class BillerTestView(ConnectionTestView):
    """"Probar conexión": the biller's answer in words."""

    model = BillerConnection
    page_template = "billers/biller_test.html"

    def run_test(self, connection):
        return biller_connection_test(connection=connection)


class BillerDeleteView(ConnectionDeleteView):
    model = BillerConnection
    edit_url, list_url = "biller-edit", "biller-list"

    def delete(self, connection, actor) -> None:
        biller_connection_delete(connection=connection, actor=actor)

    def deleted_message(self, connection) -> str:
        return _("Facturador «%(name)s» eliminado.") % {"name": connection.name}
