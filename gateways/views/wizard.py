"""The setup wizard ("Nueva pasarela"): the seed's steps for a new gateway, one page each, each saved as it
is done — 1 the account (name, company RUT), 2 the data source (a connect button or credentials, then
"Probar conexión"), 3 the biller (the emisor, the environment, credentials; "Probar conexión"), 4 the rules
(with a live preview on a real order), 5 the test (a real test purchase in the store, watched live, or a
simulated order through the real pipeline), 6 activation.

Progress is read from what exists (``gateways.services.setup``), so leaving and coming back resumes at the
first unfinished step. Until the biller is chosen there is no gateway: the data source being set up is
the one chosen in this session, or else the account's newest source that no gateway uses. Choosing the
biller creates the gateway (in the biller's environment, inactive); from then on the wizard lives under
``/gateways/<id>/setup/``. The stores' connect flows come back to step 2 with ``?connect=<platform>``, and
the connection they saved becomes the step's data source.
"""
from datetime import UTC, datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import ADMIN_ROLES
from accounts.scoping import AccountScopedViewMixin, may_write, request_actor, require_write
from accounts.services import account_update
from billers.forms import BillerConnectionForm
from billers.views import chosen_provider, new_biller_context
from billers.views import connection_details as biller_details
from billmysales.integrations.forms import add_service_errors
from billmysales.templatetags.display import rut
from rules.models import RuleSet
from sources.forms import SourceConnectionForm
from sources.models import SourceConnection
from sources.views import chosen_platform, new_source_context
from sources.views import connection_details as source_details

from .. import selectors, services
from ..forms import ActivationForm, SetupAccountForm, StyledRuleSetForm, biller_choice_form, source_choice_form
from ..models import DocumentKind, Gateway, OrderStatus
from ..services.setup import gateway_test_order_confirm, setup_next_step, setup_steps
from .gateway import rules_form_context, rules_save

SESSION_SOURCE = "setup_source_id"
# Order states in which a watched test purchase will not change any more (the live panel stops polling).
SETTLED = (OrderStatus.ISSUED, OrderStatus.SKIPPED, OrderStatus.HELD, OrderStatus.FAILED)
LIVE_POLL_SECONDS = 3


def step_urls(gateway: Gateway | None) -> dict[str, str]:
    if gateway is None:
        return {"account": reverse("setup-account"), "source": reverse("setup-source"), "biller": reverse("setup-biller")}
    pk = gateway.pk
    return {
        "account": reverse("setup-account") + "?" + urlencode({"gateway": pk}),
        "source": reverse("setup-gateway-source", args=[pk]), "biller": reverse("setup-gateway-biller", args=[pk]),
        "rules": reverse("setup-rules", args=[pk]), "test": reverse("setup-test", args=[pk]),
        "activate": reverse("setup-activate", args=[pk]),
    }


class WizardMixin(AccountScopedViewMixin):
    """The stepper every step shows, and where a setup resumes."""

    step = ""
    template_name = ""

    def draft_source(self) -> SourceConnection | None:
        """The data source of the setup before its gateway exists: this session's choice, or the newest unused one."""
        unused = SourceConnection.objects.filter(account=self.account, gateways__isnull=True)
        chosen = self.request.session.get(SESSION_SOURCE)
        source = unused.filter(pk=chosen).first() if chosen else None
        return source or unused.order_by("-created_at", "-pk").first()

    def steps(self, gateway: Gateway | None, source: SourceConnection | None = None) -> list[dict]:
        urls = step_urls(gateway)
        steps = setup_steps(account=self.account, source=source, gateway=gateway)
        resume = setup_next_step(steps)
        return [{"step": step, "url": urls.get(step.key), "current": step.key == self.step,
                 "next": resume is not None and step.key == resume.key} for step in steps]

    def resume_url(self, gateway: Gateway | None) -> str:
        source = None if gateway is not None else self.draft_source()
        step = setup_next_step(setup_steps(account=self.account, source=source, gateway=gateway))
        if step is None:
            return reverse("gateway-detail", args=[gateway.pk])
        return step_urls(gateway).get(step.key) or step_urls(None)["source"]

    def render_step(self, gateway: Gateway | None, source: SourceConnection | None = None, **extra):
        context = {"gateway": gateway, "steps": self.steps(gateway, source), "step": self.step, "may_write": may_write(self.request),
                   "urls": step_urls(gateway), **extra}
        return render(self.request, self.template_name, context)


class GatewayWizardMixin(WizardMixin):
    """Steps of a setup whose gateway exists (404 when it is not this account's)."""

    def scoped_queryset(self):
        return Gateway.objects.select_related("source", "biller", "ruleset")


class SetupStartView(WizardMixin, View):
    """"Nueva pasarela": the first unfinished step of the setup in progress."""

    def get(self, request):
        return redirect(self.resume_url(None))


class SetupResumeView(GatewayWizardMixin, View):
    """A gateway in setup: its first unfinished step (its page once the setup is complete)."""

    def get(self, request, pk):
        return redirect(self.resume_url(self.get_object()))


class SetupAccountView(WizardMixin, View):
    """Step 1: the account's name and company RUT (``accounts.services.account_update``, the API's service).
    Owners and admins change them, as in the API; a support agent in support mode too (audited as such)."""

    step = "account"
    template_name = "gateways/wizard_account.html"

    def _gateway(self) -> Gateway | None:
        pk = self.request.GET.get("gateway") or self.request.POST.get("gateway")
        if not pk:
            return None
        gateway = Gateway.objects.filter(account=self.account, pk=pk if str(pk).isdigit() else 0).first()
        if gateway is None:
            raise Http404("Not found")
        return gateway

    def _may_edit(self) -> bool:
        context = self.request.account_context
        return context.role in ADMIN_ROLES or context.support_mode

    def get(self, request):
        gateway = self._gateway()
        form = SetupAccountForm(initial={"name": self.account.name, "rut": rut(self.account.rut)})
        return self.render_step(gateway, source=self.draft_source() if gateway is None else None, form=form,
                                may_edit=self._may_edit())

    def post(self, request):
        if not self._may_edit():
            raise PermissionDenied(_("Solo dueños y administradores cambian los datos de la cuenta."))
        gateway = self._gateway()
        form = SetupAccountForm(request.POST)
        if form.is_valid():
            try:
                account_update(account=self.account, actor=request_actor(request), **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
                self.account.refresh_from_db()
            else:
                messages.success(request, _("Cuenta guardada."))
                return redirect(self.resume_url(gateway))
        return self.render_step(gateway, source=self.draft_source() if gateway is None else None, form=form,
                                may_edit=True)


class SetupSourceView(WizardMixin, View):
    """Step 2 before the gateway exists: connect a store (its connect button, or its credentials typed and
    tried), or choose one the account already has and no gateway uses; then "Probar conexión"."""

    step = "source"
    template_name = "gateways/wizard_source.html"

    def get(self, request):
        connected = chosen_platform(request.GET.get("connect"))
        if connected:
            # Back from a store's connect flow: the connection it just saved is this setup's data source.
            newest = SourceConnection.objects.filter(account=self.account, platform=connected, gateways__isnull=True) \
                .order_by("-created_at", "-pk").first()
            request.session.pop(SESSION_SOURCE, None)
            if newest is not None:
                request.session[SESSION_SOURCE] = newest.pk
            return redirect("setup-source")
        return self._page(platform=request.GET.get("platform"))

    def _page(self, *, platform=None, form=None, choice=None):
        source = self.draft_source()
        platform = chosen_platform(platform)
        connect_next = reverse("setup-source") + "?" + urlencode({"connect": platform or ""})
        unused = source_choice_form(account=self.account, exclude=source)
        return self.render_step(
            None, source=source, draft=source, details=source_details(source) if source else None,
            choice=choice or (unused if unused.fields["connection"].queryset.exists() else None),
            form_action=reverse("setup-source"), form_step="create",
            **new_source_context(self.request, platform=platform, form=form, connect_next=connect_next),
        )

    def post(self, request):
        require_write(request)
        if request.POST.get("action") == "choose":
            choice = source_choice_form(request.POST, account=self.account)
            if choice.is_valid():
                request.session[SESSION_SOURCE] = choice.cleaned_data["connection"].pk
                return redirect("setup-biller")
            return self._page(choice=choice)
        platform = chosen_platform(request.POST.get("platform"))
        if platform is None:
            return redirect("setup-source")
        form = SourceConnectionForm(request.POST, platform=platform)
        connection = form.save(account=self.account, actor=request_actor(request)) if form.is_valid() else None
        if connection is None:
            return self._page(platform=platform, form=form)
        request.session[SESSION_SOURCE] = connection.pk
        messages.success(request, _("Origen de datos «%(name)s» guardado.") % {"name": connection.name})
        return redirect("setup-source")


class SetupBillerView(WizardMixin, View):
    """Step 3 before the gateway exists: link a new biller or choose one of the account's (several stores may
    share one). The gateway is created with it, joining the step 2 data source, in the biller's environment."""

    step = "biller"
    template_name = "gateways/wizard_biller.html"

    def get(self, request):
        source = self.draft_source()
        if source is None:
            return redirect("setup-source")
        return self._page(source, provider=request.GET.get("provider"))

    def _page(self, source, *, provider=None, form=None, choice=None):
        billers = biller_choice_form(account=self.account)
        return self.render_step(
            None, source=source, draft=source,
            choice=choice or (billers if billers.fields["connection"].queryset.exists() else None),
            form_action=reverse("setup-biller"), form_step="create",
            **new_biller_context(self.request, provider=provider, form=form),
        )

    def _gateway_create(self, source: SourceConnection, biller) -> Gateway:
        return services.gateway_create(account=self.account, name=source.name, source=source, biller=biller,
                                       environment=biller.environment, actor=request_actor(self.request))

    def _created(self, gateway: Gateway):
        self.request.session.pop(SESSION_SOURCE, None)
        messages.success(self.request, _("Pasarela «%(name)s» creada: %(source)s → %(biller)s.")
                         % {"name": gateway.name, "source": gateway.source.name, "biller": gateway.biller.name})
        return redirect("setup-gateway-biller", pk=gateway.pk)

    def post(self, request):
        require_write(request)
        source = self.draft_source()
        if source is None:
            return redirect("setup-source")
        if request.POST.get("action") == "choose":
            choice = biller_choice_form(request.POST, account=self.account)
            if choice.is_valid():
                try:
                    return self._created(self._gateway_create(source, choice.cleaned_data["connection"]))
                except ValidationError as exc:
                    choice.add_error("connection", exc)
            return self._page(source, choice=choice)
        provider = chosen_provider(request.POST.get("provider"))
        if provider is None:
            return redirect("setup-biller")
        form = BillerConnectionForm(request.POST, provider=provider)
        gateway = None
        if form.is_valid():
            try:
                with transaction.atomic():
                    biller = form.save(account=self.account, actor=request_actor(request))
                    gateway = self._gateway_create(source, biller) if biller is not None else None
            except ValidationError as exc:
                form.add_error("environment", exc)
        if gateway is None:
            return self._page(source, provider=provider, form=form)
        return self._created(gateway)


class SetupGatewaySourceView(GatewayWizardMixin, View):
    """Step 2 once the gateway exists: its data source, "Probar conexión", and where to change it."""

    step = "source"
    template_name = "gateways/wizard_source_done.html"

    def get(self, request, pk):
        gateway = self.get_object()
        return self.render_step(gateway, connection=gateway.source, details=source_details(gateway.source))


class SetupGatewayBillerView(GatewayWizardMixin, View):
    """Step 3 once the gateway exists: its biller, "Probar conexión" (the biller's answer in words), and where to change it."""

    step = "biller"
    template_name = "gateways/wizard_biller_done.html"

    def get(self, request, pk):
        gateway = self.get_object()
        return self.render_step(gateway, connection=gateway.biller, details=biller_details(gateway.biller))


class SetupRulesView(GatewayWizardMixin, View):
    """Step 4: the rules, with the preview on a real order of this store beside them, live as the form changes."""

    step = "rules"
    template_name = "gateways/wizard_rules.html"

    def get(self, request, pk):
        gateway = self.get_object()
        return self.render_step(gateway, **rules_form_context(gateway, StyledRuleSetForm(instance=gateway.ruleset)))

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        form = StyledRuleSetForm(request.POST, instance=RuleSet.objects.get(pk=gateway.ruleset_id))
        if rules_save(request, gateway, form):
            messages.success(request, _("Reglas guardadas."))
            return redirect("setup-test", pk=pk)
        return self.render_step(gateway, **rules_form_context(gateway, form))


class SetupTestView(GatewayWizardMixin, View):
    """Step 5, two ways: (a) a real test purchase in the store, watched live (``SetupTestLiveView``) and, once
    its document is issued in certification, taken as the passing test; (b) a simulated order in the store's
    own shape through the real pipeline and the biller in certification (``gateway_test_sale``)."""

    step = "test"
    template_name = "gateways/wizard_test.html"

    def get(self, request, pk):
        gateway = self.get_object()
        return self.render_step(gateway, since=int(timezone.now().timestamp()),
                                report=request.session.pop("setup_test_report", None))

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        actor = request_actor(request)
        if request.POST.get("action") == "confirm":
            order = gateway.orders.filter(pk=request.POST.get("order") if str(request.POST.get("order")).isdigit() else 0).first()
            if order is None:
                messages.error(request, _("Orden no encontrada."))
                return redirect("setup-test", pk=pk)
            try:
                gateway_test_order_confirm(gateway=gateway, order=order, actor=actor)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect("setup-test", pk=pk)
            messages.success(request, _("Venta de prueba correcta: la orden %(number)s llegó y su documento se emitió.")
                             % {"number": order.number or order.external_id})
            return redirect("setup-activate", pk=pk)
        report = services.gateway_test_sale(gateway=gateway, actor=actor).as_dict()
        if request.htmx:
            gateway.refresh_from_db()
            return render(request, "gateways/wizard_test_report.html", {"gateway": gateway, "report": report,
                                                                        "urls": step_urls(gateway)})
        request.session["setup_test_report"] = report
        return redirect("setup-test", pk=pk)


class SetupTestLiveView(GatewayWizardMixin, View):
    """The live part of a real test sale: the newest order the store sent since the page opened (``since``, a
    Unix time), what the rules decided and the document issued, with its PDF. Polled by htmx; answers 286
    (htmx stops polling) once the order is settled."""

    def get(self, request, pk):
        gateway = self.get_object()
        try:
            since = datetime.fromtimestamp(int(request.GET.get("since", "")), tz=UTC)
        except (ValueError, OverflowError):
            since = timezone.now()
        order = next((o for o in selectors.order_list(account=self.account, gateway_id=gateway.pk, limit=10)
                      if o.received_at >= since and not o.backfill), None)
        document = order.documents.filter(kind=DocumentKind.INVOICE).order_by("-sequence").first() if order else None
        context = {
            "gateway": gateway, "order": order, "document": document, "may_write": may_write(request),
            "reasons": [reason["message"] for reason in (order.decision or {}).get("reasons", [])] if order else [],
            "confirmable": document is not None and document.certification and document.mnt_total == int(order.paid_total)
            and gateway.test_passed_at is None,
        }
        settled = order is not None and order.status in SETTLED
        return render(request, "gateways/wizard_test_live.html", context, status=286 if settled else 200)


class SetupActivateView(GatewayWizardMixin, View):
    """Step 6: activation, allowed after a passing test sale, or by an owner or admin who says why (audited);
    ``gateway_activate`` enforces it and its refusal is shown."""

    step = "activate"
    template_name = "gateways/wizard_activate.html"

    def _page(self, gateway, form):
        return self.render_step(gateway, form=form,
                                may_activate_without_test=self.request.account_context.role in ADMIN_ROLES)

    def get(self, request, pk):
        return self._page(self.get_object(), ActivationForm())

    def post(self, request, pk):
        require_write(request)
        gateway = self.get_object()
        form = ActivationForm(request.POST)
        if form.is_valid():
            try:
                services.gateway_activate(gateway=gateway, actor=request_actor(request), reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                form.add_error(None, exc)
                gateway.refresh_from_db()
            else:
                messages.success(request, _("Pasarela «%(name)s» activada: desde ahora cada orden que las reglas elijan se "
                                            "factura sola.") % {"name": gateway.name})
                return redirect("gateway-detail", pk=pk)
        return self._page(gateway, form)
