"""A gateway's page (test sale, unread deliveries, activation) and its rules."""
import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.generic import DetailView

from accounts.scoping import AccountScopedViewMixin, may_write
from rules.forms import RuleSetForm
from rules.models import RuleSet
from rules.services import effective_field_mapping, ruleset_update
from sources.registry import SourceNotRegistered, source_adapter_class

from .. import selectors, services
from ..models import Gateway
from .common import request_actor


class GatewayDetailView(AccountScopedViewMixin, DetailView):
    template_name = "gateways/gateway_detail.html"
    context_object_name = "gateway"

    def scoped_queryset(self):
        return Gateway.objects.select_related("source", "biller", "ruleset")

    def post(self, request, pk):
        gateway = self.get_object()
        if not may_write(request):
            messages.error(request, "Su rol solo permite ver.")
            return redirect("gateway-detail", pk=gateway.pk)
        action = request.POST.get("action")
        if action == "test_sale":
            report = services.gateway_test_sale(gateway=gateway, actor=request_actor(request))
            request.session["test_sale_report"] = report.as_dict()
        elif action == "reprocess":
            event = selectors.unread_event_get(account=self.account, gateway=gateway, event_id=request.POST.get("event", ""))
            if event is None:
                messages.error(request, "Entrega no encontrada.")
            else:
                try:
                    services.inbound_event_reprocess(event=event, actor=request_actor(request))
                    messages.success(request, "La entrega se volverá a leer.")
                except ValueError as exc:
                    messages.error(request, str(exc))
        elif action == "activate":
            services.gateway_activate(gateway=gateway, actor=request_actor(request))
            messages.success(request, "Pasarela activada.")
        elif action == "deactivate":
            services.gateway_deactivate(gateway=gateway, actor=request_actor(request))
            messages.success(request, "Pasarela desactivada.")
        return redirect("gateway-detail", pk=gateway.pk)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["test_sale_report"] = self.request.session.pop("test_sale_report", None)
        context["unread_events"] = [
            (event, json.dumps(selectors.masked_payload(event.payload), ensure_ascii=False, indent=1)[:20000]
             if event.payload is not None else event.body_text[:20000])
            for event in selectors.unread_event_list(account=self.account, gateway_id=self.object.pk, limit=20)
        ]
        return context


class GatewayRulesView(AccountScopedViewMixin, DetailView):
    """Edit a gateway's billing rules; saving goes through the same service as the API."""

    template_name = "gateways/gateway_rules.html"
    context_object_name = "gateway"

    def scoped_queryset(self):
        return Gateway.objects.select_related("ruleset", "source")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", RuleSetForm(instance=self.object.ruleset))
        try:
            defaults = source_adapter_class(self.object.source.platform).default_field_mapping
        except SourceNotRegistered:
            defaults = {}
        context["defaults"] = effective_field_mapping(ruleset=self.object.ruleset, field_defaults=defaults)
        return context

    def post(self, request, pk):
        self.object = self.get_object()
        # The form writes what was posted onto its instance even when invalid: give it its own copy, so
        # the page re-rendered with the errors still shows the saved rules.
        form = RuleSetForm(request.POST, instance=RuleSet.objects.get(pk=self.object.ruleset_id))
        if not may_write(request):
            messages.error(request, "Su rol solo permite ver.")
        elif form.is_valid():
            try:
                changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
                ruleset_update(ruleset=self.object.ruleset, actor=request_actor(request), **changes)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Reglas guardadas.")
                return redirect("gateway-detail", pk=self.object.pk)
        return self.render_to_response(self.get_context_data(form=form))


