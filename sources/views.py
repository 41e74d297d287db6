"""Dashboard pages of store connections ("Orígenes de datos"): the list, connecting a new store (its connect
button, or credentials typed by hand), a connection's page (details, "Probar conexión", reconnect, its data,
delete). The pieces — type choice, connect buttons, form, details, test report — are templates that the setup
wizard and a gateway's "Origen de datos" tab include as well. Every write goes through ``sources.services``;
the vendors' connect flows stay in their packages (``/connect/<platform>/``)."""
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from accounts.scoping import AccountScopedViewMixin, may_write, request_actor, require_write
from billmysales.integrations.forms import stored_details
from billmysales.integrations.views import ConnectionDeleteView, ConnectionTestView

from .api.views import connect_platforms
from .forms import SourceConnectionForm, SourceTypeForm
from .models import SourceConnection
from .registry import SOURCE_ADAPTERS, SourceNotRegistered, source_adapter_class
from .services import source_connection_delete, source_connection_test


def chosen_platform(value: str | None) -> str | None:
    return value if value in SOURCE_ADAPTERS else None


def connection_details(connection: SourceConnection) -> dict:
    """What a connection's page shows about it: the stored values (secrets only as "guardado"), the
    authorization a connect flow recorded, and whether it has a connect button."""
    try:
        adapter = source_adapter_class(connection.platform)
    except SourceNotRegistered:
        return {"stored": [], "authorization": None, "connectable": False}
    authorization = (connection.config or {}).get("authorization") or None
    if authorization:
        authorization = {**authorization, **{key: parse_datetime(authorization[key]) for key in
                                             ("authorized_at", "access_expires_at", "refresh_expires_at") if authorization.get(key)}}
        if isinstance(authorization.get("scopes"), str):  # as OAuth grants them: "read:checkouts write:checkouts"
            authorization["scopes"] = authorization["scopes"].split()
    return {"stored": stored_details(adapter.credentials_spec, connection), "authorization": authorization,
            "connectable": connection.platform in connect_platforms()}


def new_source_context(request, *, platform: str | None, form: SourceConnectionForm | None, connect_next: str) -> dict:
    """The pieces of "connect a new store": the type choice and, once chosen, its connect button and its form."""
    platform = chosen_platform(platform)
    if platform and form is None:
        form = SourceConnectionForm(platform=platform)
    return {
        "type_form": SourceTypeForm(initial={"platform": platform}),
        "platform": platform,
        "form": form,
        "connectable": platform in connect_platforms(),
        "connect_next": connect_next,
        "may_write": may_write(request),
    }


class SourceListView(AccountScopedViewMixin, TemplateView):
    template_name = "sources/source_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sources"] = SourceConnection.objects.filter(account=self.account).prefetch_related("gateways").order_by("name")
        context["may_write"] = may_write(self.request)
        return context


class SourceCreateView(AccountScopedViewMixin, TemplateView):
    """``?platform=`` picks the type (the page swaps its lower part live with htmx, or reloads without it)."""

    template_name = "sources/source_new.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        platform = kwargs.get("platform", self.request.GET.get("platform"))
        context.update(new_source_context(self.request, platform=platform, form=kwargs.get("form"),
                                          connect_next=reverse("source-list")))
        context["form_action"] = reverse("source-create")
        return context

    def post(self, request):
        require_write(request)
        platform = chosen_platform(request.POST.get("platform"))
        if platform is None:
            return redirect("source-create")
        form = SourceConnectionForm(request.POST, platform=platform)
        connection = form.save(account=self.account, actor=request_actor(request)) if form.is_valid() else None
        if connection is None:
            return self.render_to_response(self.get_context_data(platform=platform, form=form))
        messages.success(request, _("Origen de datos «%(name)s» guardado.") % {"name": connection.name})
        return redirect("source-edit", pk=connection.pk)


class SourceEditView(AccountScopedViewMixin, TemplateView):
    template_name = "sources/source_edit.html"

    def scoped_queryset(self):
        return SourceConnection.objects.prefetch_related("gateways")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        connection = kwargs.get("connection") or self.get_object()
        context.update(
            connection=connection, details=connection_details(connection), may_write=may_write(self.request),
            form=kwargs.get("form") or SourceConnectionForm(platform=connection.platform, instance=connection),
            connect_next=reverse("source-edit", args=[connection.pk]),
        )
        return context

    def post(self, request, pk):
        require_write(request)
        connection = self.get_object()
        form = SourceConnectionForm(request.POST, platform=connection.platform, instance=connection)
        if form.is_valid() and form.save(account=self.account, actor=request_actor(request)) is not None:
            messages.success(request, _("Cambios guardados."))
            return redirect("source-edit", pk=pk)
        connection.refresh_from_db()
        return self.render_to_response(self.get_context_data(connection=connection, form=form))


class SourceTestView(ConnectionTestView):
    """"Probar conexión": the store's answer in words."""

    model = SourceConnection
    page_template = "sources/source_test.html"

    def run_test(self, connection):
        return source_connection_test(connection=connection)


class SourceDeleteView(ConnectionDeleteView):
    model = SourceConnection
    edit_url, list_url = "source-edit", "source-list"

    def delete(self, connection, actor) -> None:
        source_connection_delete(connection=connection, actor=actor)

    def deleted_message(self, connection) -> str:
        return _("Origen de datos «%(name)s» eliminado.") % {"name": connection.name}
