"""Dashboard pages for gateways, orders and documents. Views call selectors and services only."""
import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views import View
from django.views.generic import DetailView, TemplateView

from accounts.scoping import AccountScopedViewMixin, may_write
from accounts.services import Actor
from rules.forms import RuleSetForm
from rules.models import RuleSet
from rules.services import effective_field_mapping, ruleset_update
from sources.registry import SourceNotRegistered, source_adapter_class

from . import selectors, services
from .models import Document, Gateway, OrderStatus


def _actor(request) -> Actor:
    context = request.account_context
    return Actor(user=request.user, support_mode=context.support_mode, role=context.role or "")


class DashboardView(AccountScopedViewMixin, TemplateView):
    template_name = "gateways/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["gateways"] = selectors.gateway_list(account=self.account)
        context["orders"] = selectors.order_list(account=self.account, limit=20)
        context["memberships"] = self.request.user.memberships.select_related("account").order_by("account__name")
        return context


class OrderListView(AccountScopedViewMixin, TemplateView):
    template_name = "gateways/order_list.html"
    page_size = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        status = self.request.GET.get("status") or None
        before = self.request.GET.get("before")
        orders = selectors.order_list(
            account=self.account, status=status, before_id=int(before) if before and before.isdigit() else None,
            limit=self.page_size + 1,
        )
        context.update(
            orders=orders[: self.page_size],
            next_before=orders[self.page_size - 1].pk if len(orders) > self.page_size else None,
            status=status or "",
            statuses=OrderStatus.choices,
        )
        return context


class OrderDetailView(AccountScopedViewMixin, DetailView):
    template_name = "gateways/order_detail.html"
    context_object_name = "order"

    def scoped_queryset(self):
        return selectors.order_detail_queryset()

    def post(self, request, pk):
        order = self.get_object()
        if not may_write(request):
            messages.error(request, "Su rol solo permite ver.")
            return redirect("order-detail", pk=order.pk)
        action = request.POST.get("action")
        try:
            if action == "emit":
                order = services.order_emit_now(order=order, actor=_actor(request))
                if order.status == OrderStatus.READY:
                    messages.success(request, "Orden enviada a emisión.")
                else:
                    messages.error(request, f"No se emitió ({order.get_status_display()}): {order.status_reason}")
            elif action == "retry":
                services.order_retry(order=order, actor=_actor(request))
                messages.success(request, "Reintento en cola.")
            elif action == "skip":
                services.order_skip(order=order, reason=request.POST.get("reason", ""), actor=_actor(request))
                messages.success(request, "Orden omitida.")
            else:
                messages.error(request, "Acción desconocida.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("order-detail", pk=order.pk)


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
            report = services.gateway_test_sale(gateway=gateway, actor=_actor(request))
            request.session["test_sale_report"] = report.as_dict()
        elif action == "reprocess":
            event = selectors.unread_event_get(account=self.account, gateway=gateway, event_id=request.POST.get("event", ""))
            if event is None:
                messages.error(request, "Entrega no encontrada.")
            else:
                try:
                    services.inbound_event_reprocess(event=event, actor=_actor(request))
                    messages.success(request, "La entrega se volverá a leer.")
                except ValueError as exc:
                    messages.error(request, str(exc))
        elif action == "activate":
            services.gateway_activate(gateway=gateway, actor=_actor(request))
            messages.success(request, "Pasarela activada.")
        elif action == "deactivate":
            services.gateway_deactivate(gateway=gateway, actor=_actor(request))
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
                ruleset_update(ruleset=self.object.ruleset, actor=_actor(request), **{k: form.cleaned_data[k] for k in form.Meta.fields})
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Reglas guardadas.")
                return redirect("gateway-detail", pk=self.object.pk)
        return self.render_to_response(self.get_context_data(form=form))


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
