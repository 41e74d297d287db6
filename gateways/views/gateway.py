"""The gateways in the merchants' words ("Facturación > Pasarelas de facturación"): the list with "Nueva
pasarela", and a gateway's page with its tabs "General" (name, environment, active; the test sale and the
unread deliveries), "Origen de datos" (the store connection: details, test, connect again, its data, or
another one), "Facturador" (the same for the biller) and "Reglas" (with a live preview on a real order).
Each tab saves with "Guardar cambios" through the services the API calls."""
import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from accounts.models import ADMIN_ROLES
from accounts.scoping import AccountScopedViewMixin, may_write, request_actor, require_write
from billers.forms import BillerConnectionForm
from billers.views import connection_details as biller_details
from rules.models import RuleSet
from rules.services import effective_field_mapping, ruleset_update
from sources.forms import SourceConnectionForm
from sources.registry import SourceNotRegistered, source_adapter_class
from sources.views import connection_details as source_details

from .. import selectors, services
from ..forms import GatewayGeneralForm, StyledRuleSetForm, biller_choice_form, source_choice_form
from ..models import Gateway

TABS = (
    ("general", gettext_lazy("General"), "gateway-detail"),
    ("source", gettext_lazy("Origen de datos"), "gateway-source"),
    ("biller", gettext_lazy("Facturador"), "gateway-biller"),
    ("rules", gettext_lazy("Reglas"), "gateway-rules"),
)


class GatewayListView(AccountScopedViewMixin, TemplateView):
    template_name = "gateways/gateway_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = []
        for gateway in selectors.gateway_list(account=self.account).select_related("ruleset"):
            step = None if gateway.active else services.setup_next_step(services.setup_steps(account=self.account, gateway=gateway))
            rows.append((gateway, step))
        context.update(rows=rows, may_write=may_write(self.request))
        return context


class GatewayPageMixin(AccountScopedViewMixin):
    """A gateway's tabbed page: the gateway (404 when not this account's), the tabs and who may write."""

    tab = "general"
    template_name = ""

    def scoped_queryset(self):
        return Gateway.objects.select_related("source", "biller", "ruleset")

    def page_context(self, gateway: Gateway, **extra) -> dict:
        return {
            "gateway": gateway, "tab": self.tab, "may_write": may_write(self.request),
            "tabs": [(key, label, reverse(route, args=[gateway.pk])) for key, label, route in TABS],
            "setup_step": None if gateway.active else services.setup_next_step(services.setup_steps(account=self.account, gateway=gateway)),
            **extra,
        }

    def render_page(self, gateway: Gateway, **extra):
        return render(self.request, self.template_name, self.page_context(gateway, **extra))


class GatewayDetailView(GatewayPageMixin, View):
    """The "General" tab. Besides saving it runs the test sale and reprocesses unread deliveries."""

    template_name = "gateways/gateway_detail.html"

    def get(self, request, pk):
        gateway = self.get_object()
        return self.render_page(gateway, form=GatewayGeneralForm.for_gateway(gateway))

    def page_context(self, gateway: Gateway, **extra) -> dict:
        context = super().page_context(gateway, **extra)
        context.update(
            test_sale_report=self.request.session.pop("test_sale_report", None),
            may_activate_without_test=self.request.account_context.role in ADMIN_ROLES,
            webhook_url=services.gateway_webhook_url(gateway),
            unread_events=[
                (event, json.dumps(selectors.masked_payload(event.payload), ensure_ascii=False, indent=1)[:20000]
                 if event.payload is not None else event.body_text[:20000])
                for event in selectors.unread_event_list(account=self.account, gateway_id=gateway.pk, limit=20)
            ],
        )
        return context

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        action = request.POST.get("action", "save")
        if action == "save":
            return self._save(gateway)
        if action == "test_sale":
            report = services.gateway_test_sale(gateway=gateway, actor=request_actor(request))
            request.session["test_sale_report"] = report.as_dict()
        elif action == "reprocess":
            event = selectors.unread_event_get(account=self.account, gateway=gateway, event_id=request.POST.get("event", ""))
            if event is None:
                messages.error(request, _("Entrega no encontrada."))
            else:
                try:
                    services.inbound_event_reprocess(event=event, actor=request_actor(request))
                    messages.success(request, _("La entrega se volverá a leer."))
                except ValueError as exc:
                    messages.error(request, str(exc))
        return redirect("gateway-detail", pk=gateway.pk)

    def _save(self, gateway: Gateway):
        form = GatewayGeneralForm.for_gateway(gateway, self.request.POST)
        if form.is_valid():
            actor, data = request_actor(self.request), form.cleaned_data
            changes = {name: data[name] for name in ("name", "environment") if data[name] != getattr(gateway, name)}
            step = "update"
            try:
                with transaction.atomic():
                    if changes:
                        services.gateway_update(gateway=gateway, actor=actor, **changes)
                    step = "active"
                    if data["active"] and not gateway.active:
                        services.gateway_activate(gateway=gateway, actor=actor, reason=data["reason"])
                    elif not data["active"] and gateway.active:
                        services.gateway_deactivate(gateway=gateway, actor=actor)
            except ValidationError as exc:
                form.add_error("active" if step == "active" else None, exc)
                gateway.refresh_from_db()
            else:
                messages.success(self.request, _("Cambios guardados."))
                return redirect("gateway-detail", pk=gateway.pk)
        return self.render_page(gateway, form=form)


class GatewaySourceView(GatewayPageMixin, View):
    """The "Origen de datos" tab: the store connection (details, "Probar conexión", connect again, its data)
    and the choice of another of the account's connections that no other gateway reads."""

    tab = "source"
    template_name = "gateways/gateway_source.html"

    def get(self, request, pk):
        return self.render_page(self.get_object())

    def page_context(self, gateway: Gateway, **extra) -> dict:
        connection = gateway.source
        extra.setdefault("form", SourceConnectionForm(platform=connection.platform, instance=connection))
        extra.setdefault("choice", source_choice_form(account=self.account, gateway=gateway, initial={"connection": connection.pk}))
        return super().page_context(gateway, connection=connection, details=source_details(connection),
                                    connect_next=reverse("gateway-source", args=[gateway.pk]), **extra)

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        actor = request_actor(request)
        if request.POST.get("action") == "switch":
            choice = source_choice_form(request.POST, account=self.account, gateway=gateway)
            if choice.is_valid():
                try:
                    services.gateway_update(gateway=gateway, actor=actor, source=choice.cleaned_data["connection"])
                except ValidationError as exc:
                    choice.add_error("connection", exc)
                else:
                    messages.success(request, _("La pasarela ahora lee las órdenes de «%(name)s».") % {"name": gateway.source.name})
                    return redirect("gateway-source", pk=pk)
            gateway.refresh_from_db()
            return self.render_page(gateway, choice=choice)
        form = SourceConnectionForm(request.POST, platform=gateway.source.platform, instance=gateway.source)
        if form.is_valid() and form.save(account=self.account, actor=actor) is not None:
            messages.success(request, _("Cambios guardados."))
            return redirect("gateway-source", pk=pk)
        gateway.source.refresh_from_db()
        return self.render_page(gateway, form=form)


class GatewayBillerView(GatewayPageMixin, View):
    """The "Facturador" tab: the biller connection (details, "Probar conexión", its data) and the choice of
    another. A change of the biller's environment moves this gateway to the same environment."""

    tab = "biller"
    template_name = "gateways/gateway_biller.html"

    def get(self, request, pk):
        return self.render_page(self.get_object())

    def page_context(self, gateway: Gateway, **extra) -> dict:
        connection = gateway.biller
        extra.setdefault("form", BillerConnectionForm(provider=connection.provider, instance=connection))
        extra.setdefault("choice", biller_choice_form(account=self.account, initial={"connection": connection.pk}))
        return super().page_context(gateway, connection=connection, details=biller_details(connection), **extra)

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        actor = request_actor(request)
        if request.POST.get("action") == "switch":
            choice = biller_choice_form(request.POST, account=self.account)
            if choice.is_valid():
                biller = choice.cleaned_data["connection"]
                try:
                    services.gateway_update(gateway=gateway, actor=actor, biller=biller, environment=biller.environment)
                except ValidationError as exc:
                    choice.add_error("connection", exc)
                else:
                    messages.success(request, _("La pasarela ahora emite con «%(name)s».") % {"name": biller.name})
                    return redirect("gateway-biller", pk=pk)
            gateway.refresh_from_db()
            return self.render_page(gateway, choice=choice)
        form = BillerConnectionForm(request.POST, provider=gateway.biller.provider, instance=gateway.biller)
        if form.is_valid():
            try:
                with transaction.atomic():
                    biller = form.save(account=self.account, actor=actor)
                    if biller is not None and biller.environment != gateway.environment:
                        services.gateway_update(gateway=gateway, actor=actor, environment=biller.environment)
            except ValidationError as exc:
                form.add_error("environment", exc)
            else:
                if biller is not None:
                    messages.success(request, _("Cambios guardados."))
                    return redirect("gateway-biller", pk=pk)
        gateway.refresh_from_db()
        gateway.biller.refresh_from_db()
        return self.render_page(gateway, form=form)


def edited_ruleset(gateway: Gateway, form: StyledRuleSetForm) -> RuleSet:
    """The gateway's rules with what the form holds that is valid (an invalid field keeps its saved value); unsaved."""
    ruleset = RuleSet.objects.get(pk=gateway.ruleset_id)
    if form.is_bound:
        for name in form.Meta.fields:
            if name in form.cleaned_data:
                setattr(ruleset, name, form.cleaned_data[name])
    return ruleset


def rules_form_context(gateway: Gateway, form: StyledRuleSetForm) -> dict:
    """The rules form, the store's own buyer-field defaults beside it, and the preview of the rules as they stand."""
    try:
        defaults = source_adapter_class(gateway.source.platform).default_field_mapping
    except SourceNotRegistered:
        defaults = {}
    return {"form": form, "defaults": effective_field_mapping(ruleset=gateway.ruleset, field_defaults=defaults),
            "preview": services.rules_preview(gateway=gateway, ruleset=edited_ruleset(gateway, form))}


def rules_save(request, gateway: Gateway, form: StyledRuleSetForm) -> bool:
    """Saves a valid rules form through ``ruleset_update`` (the API's service); False with the errors on the form."""
    if not form.is_valid():
        return False
    try:
        ruleset_update(ruleset=gateway.ruleset, actor=request_actor(request),
                       **{name: form.cleaned_data[name] for name in form.Meta.fields})
    except ValidationError as exc:
        form.add_error(None, exc)
        return False
    return True


class GatewayRulesView(GatewayPageMixin, View):
    """The "Reglas" tab; saving goes through the same service as the API."""

    tab = "rules"
    template_name = "gateways/gateway_rules.html"

    def get(self, request, pk):
        gateway = self.get_object()
        return self.render_page(gateway, **rules_form_context(gateway, StyledRuleSetForm(instance=gateway.ruleset)))

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        # The form writes what was posted onto its instance even when invalid: give it its own copy, so the
        # page re-rendered with the errors still shows the saved rules elsewhere.
        form = StyledRuleSetForm(request.POST, instance=RuleSet.objects.get(pk=gateway.ruleset_id))
        if rules_save(request, gateway, form):
            messages.success(request, _("Reglas guardadas."))
            return redirect("gateway-rules", pk=pk)
        return self.render_page(gateway, **rules_form_context(gateway, form))


class GatewayRulesPreviewView(AccountScopedViewMixin, View):
    """The preview of the rules as they are in the form (a GET of the form's fields; nothing is saved)."""

    def scoped_queryset(self):
        return Gateway.objects.select_related("source", "biller", "ruleset")

    def get(self, request, pk):
        gateway = self.get_object()
        form = StyledRuleSetForm(request.GET, instance=RuleSet.objects.get(pk=gateway.ruleset_id))
        form.is_valid()
        return render(request, "gateways/gateway_rules_preview.html",
                      {"preview": services.rules_preview(gateway=gateway, ruleset=edited_ruleset(gateway, form)), "form": form})


class GatewayDeleteView(AccountScopedViewMixin, View):
    def scoped_queryset(self):
        return Gateway.objects.select_related("ruleset")

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        try:
            services.gateway_delete(gateway=gateway, actor=request_actor(request))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("gateway-detail", pk=pk)
        messages.success(request, _("Pasarela «%(name)s» eliminada.") % {"name": gateway.name})
        return redirect("gateway-list")
