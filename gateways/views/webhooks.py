"""Configuración > Webhooks: the account's outgoing webhook endpoints and their recent deliveries.

The same services as the API (``gateways.services.webhook_endpoints`` for the endpoints, ``gateways.outbox``
for sending a test event and re-sending a delivery). Who may change them is who may write in the account
(as in the API); viewers see the endpoints and deliveries without the buttons and are refused on POST.
An endpoint's signing secret is shown once: in the answer to the POST that created or renewed it.
"""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import DetailView, TemplateView

from accounts.forms import BootstrapFormMixin
from accounts.scoping import AccountScopedViewMixin, may_write, request_actor
from accounts.views import SettingsPageMixin, refuse

from .. import outbox
from ..models import WebhookDelivery, WebhookEndpoint, WebhookEventType
from ..services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

RECENT_DELIVERIES = 50
READ_ONLY = gettext_lazy("Su rol solo permite ver los webhooks.")


class WebhookEndpointForm(BootstrapFormMixin, forms.Form):
    url = forms.URLField(label=gettext_lazy("URL"), max_length=500, assume_scheme="https",
                         help_text=gettext_lazy("Una dirección https:// pública de su sistema, que responda 2xx."))
    description = forms.CharField(label=gettext_lazy("Descripción"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Eventos"), widget=forms.CheckboxSelectMultiple,
        choices=[choice for choice in WebhookEventType.choices if choice[0] != WebhookEventType.TEST],
        error_messages={"required": gettext_lazy("Elija al menos un evento.")},
    )
    active = forms.BooleanField(label=gettext_lazy("Activo"), required=False, initial=True)


class WebhooksPageMixin(SettingsPageMixin):
    section = "webhooks"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_write"] = may_write(self.request)
        return context


@method_decorator(never_cache, name="dispatch")
class WebhookEndpointListView(WebhooksPageMixin, TemplateView):
    template_name = "gateways/webhooks_list.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        labels = dict(WebhookEventType.choices)
        context["endpoints"] = list(WebhookEndpoint.objects.filter(account=self.account).order_by("-created_at"))
        for endpoint in context["endpoints"]:
            endpoint.event_labels = [labels.get(event, event) for event in endpoint.events]
        context["form"] = form or WebhookEndpointForm()
        return context

    def post(self, request):
        if not may_write(request):
            return refuse(request, READ_ONLY)
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = webhook_endpoint_create(account=self.account, actor=request_actor(request), **form.cleaned_data)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                return self.render_to_response(self.get_context_data(created=endpoint))
        return self.render_to_response(self.get_context_data(form=form), status=400)


@method_decorator(never_cache, name="dispatch")
class WebhookEndpointDetailView(WebhooksPageMixin, DetailView):
    """One endpoint: change it, send a test event, renew its secret, delete it; its recent deliveries."""

    template_name = "gateways/webhooks_detail.html"
    context_object_name = "endpoint"

    def scoped_queryset(self):
        return WebhookEndpoint.objects.all()

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoint = self.object
        context["form"] = form or WebhookEndpointForm(initial={
            "url": endpoint.url, "description": endpoint.description, "events": endpoint.events, "active": endpoint.active,
        })
        context["deliveries"] = endpoint.deliveries.order_by("-id")[:RECENT_DELIVERIES]
        return context

    def post(self, request, pk):
        self.object = self.get_object()
        if not may_write(request):
            return refuse(request, READ_ONLY)
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                webhook_endpoint_update(endpoint=self.object, actor=request_actor(request), **form.cleaned_data)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("Webhook guardado."))
                return redirect("settings-webhook-detail", pk=self.object.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class WebhookEndpointRotateView(WebhookEndpointDetailView):
    """Renews the signing secret; the answer shows the new one, once."""

    http_method_names = ["post"]

    def post(self, request, pk):
        self.object = self.get_object()
        if not may_write(request):
            return refuse(request, READ_ONLY)
        self.object = webhook_endpoint_rotate_secret(endpoint=self.object, actor=request_actor(request))
        return self.render_to_response(self.get_context_data(new_secret=self.object.secret))


class WebhookActionView(AccountScopedViewMixin, View):
    """A POST on one endpoint or delivery of the account (another account's is a 404)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        obj = self.get_object()
        if not may_write(request):
            return refuse(request, READ_ONLY)
        return self.act(obj)

    def act(self, obj):
        raise NotImplementedError


class WebhookEndpointTestView(WebhookActionView):
    def scoped_queryset(self):
        return WebhookEndpoint.objects.all()

    def act(self, endpoint):
        outbox.webhook_test_event_send(endpoint=endpoint)
        messages.success(self.request, _("Evento de prueba en camino; su resultado aparece abajo en unos segundos."))
        return redirect("settings-webhook-detail", pk=endpoint.pk)


class WebhookEndpointDeleteView(WebhookActionView):
    def scoped_queryset(self):
        return WebhookEndpoint.objects.all()

    def act(self, endpoint):
        webhook_endpoint_delete(endpoint=endpoint, actor=request_actor(self.request))
        messages.success(self.request, _("Webhook %(url)s eliminado.") % {"url": endpoint.url})
        return redirect("settings-webhooks")


class WebhookDeliveryResendView(WebhookActionView):
    def scoped_queryset(self):
        return WebhookDelivery.objects.select_related("endpoint")

    def act(self, delivery):
        outbox.webhook_delivery_resend(delivery=delivery)
        messages.success(self.request, _("Entrega reenviada; el resultado aparece en unos segundos."))
        return redirect("settings-webhook-detail", pk=delivery.endpoint_id)
