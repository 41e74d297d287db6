"""Dashboard pages of the accounts app: the first and further accounts, switching between them, the
settings area (account, members and invitations, API keys, audit log), accepting an invitation, and
staff support mode.

Who may do what, as in the API: every member reads the account and its members; owners and admins
change the account, manage members, invitations and API keys (keys are not even listed to others), and
read the audit log, which staff in support mode read too. A refused POST answers 403 and changes nothing.
"""
from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.generic import FormView, ListView, TemplateView

from billmysales.templatetags.display import rut

from .forms import AccountForm, ApiKeyForm, InviteForm, RoleForm, SupportOpenForm
from .middleware import SESSION_ACCOUNT_KEY, SESSION_SUPPORT_KEY
from .models import ADMIN_ROLES, Account, ApiKey, AuditLog, Invitation, Membership, Role
from .scoping import AccountScopedViewMixin
from .selectors import account_search, invitation_from_token, membership_get
from .services import (
    Actor,
    account_create,
    account_update,
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_mark_used,
    membership_remove,
    membership_role_change,
    support_access_open,
)

# What each audited action means, as the audit log page says it.
AUDIT_ACTIONS = {
    "account.create": gettext_lazy("Cuenta creada"),
    "account.update": gettext_lazy("Datos de la cuenta cambiados"),
    "api_key.create": gettext_lazy("Clave de API creada"),
    "api_key.revoke": gettext_lazy("Clave de API revocada"),
    "invitation.create": gettext_lazy("Invitación enviada"),
    "invitation.revoke": gettext_lazy("Invitación revocada"),
    "invitation.accept": gettext_lazy("Invitación aceptada"),
    "membership.role": gettext_lazy("Rol de un miembro cambiado"),
    "membership.remove": gettext_lazy("Miembro quitado"),
    "support.open": gettext_lazy("Acceso de soporte"),
    "sourceconnection.create": gettext_lazy("Origen de datos creado"),
    "sourceconnection.update": gettext_lazy("Origen de datos cambiado"),
    "sourceconnection.delete": gettext_lazy("Origen de datos eliminado"),
    "sourceconnection.connect_start": gettext_lazy("Conexión de tienda iniciada"),
    "billerconnection.create": gettext_lazy("Facturador creado"),
    "billerconnection.update": gettext_lazy("Facturador cambiado"),
    "billerconnection.delete": gettext_lazy("Facturador eliminado"),
    "gateway.create": gettext_lazy("Pasarela creada"),
    "gateway.update": gettext_lazy("Pasarela cambiada"),
    "gateway.delete": gettext_lazy("Pasarela eliminada"),
    "gateway.activate": gettext_lazy("Pasarela activada"),
    "gateway.deactivate": gettext_lazy("Pasarela desactivada"),
    "gateway.test_sale": gettext_lazy("Venta de prueba"),
    "gateway.backfill": gettext_lazy("Órdenes anteriores importadas"),
    "ruleset.update": gettext_lazy("Reglas de facturación cambiadas"),
    "order.emit_now": gettext_lazy("Orden emitida a mano"),
    "order.retry": gettext_lazy("Emisión reintentada"),
    "order.skip": gettext_lazy("Orden omitida"),
    "order.credit_note": gettext_lazy("Nota de crédito solicitada"),
    "order.text_correction": gettext_lazy("Corrección de texto solicitada"),
    "inbound_event.reprocess": gettext_lazy("Evento recibido reprocesado"),
    "webhook_endpoint.create": gettext_lazy("Webhook creado"),
    "webhook_endpoint.update": gettext_lazy("Webhook cambiado"),
    "webhook_endpoint.delete": gettext_lazy("Webhook eliminado"),
    "webhook_endpoint.rotate_secret": gettext_lazy("Secreto de webhook renovado"),
    "shopify.customers_data_request": gettext_lazy("Shopify pidió los datos de un comprador"),
    "shopify.customers_redact": gettext_lazy("Shopify pidió borrar los datos de un comprador"),
    "shopify.shop_redact": gettext_lazy("Shopify pidió borrar los datos de la tienda"),
}
# The names of the details an audit entry carries.
AUDIT_DETAILS = {
    "email": gettext_lazy("correo"),
    "role": gettext_lazy("rol"),
    "reason": gettext_lazy("motivo"),
    "scope": gettext_lazy("permiso"),
    "url": gettext_lazy("URL"),
    "fields": gettext_lazy("campos"),
    "start": gettext_lazy("desde"),
    "end": gettext_lazy("hasta"),
    "orders": gettext_lazy("órdenes"),
    "factura": gettext_lazy("factura"),
}
# The names of the fields a change lists ("fields": ["name", "rut"]).
AUDIT_FIELDS = {
    "name": gettext_lazy("nombre"),
    "rut": gettext_lazy("RUT"),
    "url": gettext_lazy("URL"),
    "description": gettext_lazy("descripción"),
    "events": gettext_lazy("eventos"),
    "active": gettext_lazy("activo"),
}


def _actor(request) -> Actor:
    context = request.account_context
    return Actor(user=request.user, support_mode=context.support_mode, role=context.role or "")


def may_manage(request) -> bool:
    """Owners and admins manage the account's settings (members, invitations, API keys)."""
    context = request.account_context
    return context.account is not None and not context.support_mode and context.role in ADMIN_ROLES


def refuse(request, message: str):
    """403 with the reason, in the dashboard's layout; nothing was changed."""
    return render(request, "accounts/forbidden.html", {"message": message}, status=403)


def _use_account(request, membership: Membership) -> None:
    membership_mark_used(membership=membership)
    request.session[SESSION_ACCOUNT_KEY] = membership.account_id
    request.session.pop(SESSION_SUPPORT_KEY, None)


def invitation_accept_url(request) -> str:
    """The link an invitation email carries; the service puts the token where ``{token}`` is."""
    return request.build_absolute_uri(reverse("invitation-accept", kwargs={"token": "TOKEN"})).replace("TOKEN", "{token}")


def _role_choices(request) -> list[tuple[str, str]]:
    """Roles a manager may give; only an owner may make (or unmake) owners (``accounts.services``)."""
    owner = request.account_context.role == Role.OWNER
    return [(value, label) for value, label in Role.choices if owner or value != Role.OWNER]


# --- Accounts: the first one, further ones, switching ---------------------------------------------------


class AccountCreateView(LoginRequiredMixin, FormView):
    """Creates an account with the signed-in user as owner: the first one right after sign-up, or another
    one from the account menu. The new account is the one they work in from then on."""

    template_name = "accounts/account_create.html"
    form_class = AccountForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["first_account"] = not self.request.user.memberships.exists()
        return context

    def form_valid(self, form):
        try:
            account = account_create(name=form.cleaned_data["name"], rut=form.cleaned_data["rut"], owner=self.request.user)
        except ValidationError as exc:
            form.apply_service_error(exc)
            return self.form_invalid(form)
        _use_account(self.request, membership_get(user=self.request.user, account_id=account.pk))
        messages.success(self.request, _("Cuenta %(name)s creada. Ahora puede conectar su tienda y su facturador.") % {
            "name": account.name})
        return redirect("dashboard")


@login_required
@require_POST
def account_switch(request, account_id: int):
    membership = membership_get(user=request.user, account_id=account_id)
    if membership is None:
        raise Http404("Not found")
    _use_account(request, membership)
    return redirect("dashboard")


# --- Settings -------------------------------------------------------------------------------------------


class SettingsPageMixin(AccountScopedViewMixin):
    """A page of the Configuración area: its tab and whether the user may manage."""

    section = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(settings_section=self.section, can_manage=may_manage(self.request),
                       can_read_audit=may_manage(self.request) or self.request.account_context.support_mode)
        return context


class ManagersOnlyMixin:
    """Pages that only owners and admins see at all (API keys, the audit log for members)."""

    refused_message = gettext_lazy("Solo dueños y administradores de la cuenta ven esta página.")

    def allowed(self, request) -> bool:
        return may_manage(request)

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and request.account_context.account is not None and not self.allowed(request):
            return refuse(request, self.refused_message)
        return super().dispatch(request, *args, **kwargs)


class AccountSettingsView(SettingsPageMixin, TemplateView):
    template_name = "accounts/settings_account.html"
    section = "account"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"] = form or AccountForm(initial={"name": self.account.name, "rut": rut(self.account.rut)})
        return context

    def post(self, request):
        if not may_manage(request):
            return refuse(request, _("Solo dueños y administradores cambian los datos de la cuenta."))
        form = AccountForm(request.POST)
        if form.is_valid():
            try:
                account_update(account=self.account, actor=_actor(request), name=form.cleaned_data["name"], rut=form.cleaned_data["rut"])
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("Datos de la cuenta guardados."))
                return redirect("settings-account")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class MembersView(SettingsPageMixin, TemplateView):
    """Members with their roles; for owners and admins also the pending invitations and the invite form."""

    template_name = "accounts/settings_members.html"
    section = "members"

    def scoped_queryset(self):
        return Membership.objects.select_related("user").order_by("user__email")

    def get_context_data(self, invite_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        manage = context["can_manage"]
        roles = _role_choices(self.request)
        # A row gets its role form (and its remove button) when the user may change that member: owners only by owners.
        context["members"] = [
            (membership, RoleForm(roles=roles, email=membership.user.email, initial={"role": membership.role},
                                  auto_id=f"id_%s_{membership.pk}")
             if manage and membership.role in dict(roles) else None)
            for membership in self.get_queryset()
        ]
        if manage:
            context["invitations"] = Invitation.objects.filter(
                account=self.account, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
            ).select_related("invited_by").order_by("-created_at")
            context["invite_form"] = invite_form or InviteForm(roles=roles)
        return context

    def post(self, request):
        """Invites someone by email."""
        if not may_manage(request):
            return refuse(request, _("Solo dueños y administradores invitan personas."))
        form = InviteForm(request.POST, roles=_role_choices(request))
        if form.is_valid():
            try:
                invitation = invitation_create(account=self.account, actor=_actor(request), email=form.cleaned_data["email"],
                                               role=form.cleaned_data["role"], accept_url=invitation_accept_url(request))
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("Invitación enviada a %(email)s.") % {"email": invitation.email})
                return redirect("settings-members")
        return self.render_to_response(self.get_context_data(invite_form=form), status=400)


class ManageObjectView(AccountScopedViewMixin, View):
    """A POST by an owner or admin on one object of the account (another account's is a 404)."""

    http_method_names = ["post"]
    refused_message = gettext_lazy("Solo dueños y administradores pueden hacer eso.")
    success_url = ""

    def post(self, request, pk):
        obj = self.get_object()
        if not may_manage(request):
            return refuse(request, self.refused_message)
        try:
            self.act(obj)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect(self.success_url)

    def act(self, obj) -> None:
        raise NotImplementedError


class MemberRoleView(ManageObjectView):
    success_url = "settings-members"

    def scoped_queryset(self):
        return Membership.objects.select_related("user", "account")

    def act(self, membership):
        form = RoleForm(self.request.POST, roles=_role_choices(self.request))
        if not form.is_valid():
            raise ValidationError(form.errors["role"])
        membership_role_change(membership=membership, role=form.cleaned_data["role"], actor=_actor(self.request))
        messages.success(self.request, _("%(email)s ahora tiene el rol %(role)s.") % {
            "email": membership.user.email, "role": membership.get_role_display()})


class MemberRemoveView(ManageObjectView):
    success_url = "settings-members"

    def scoped_queryset(self):
        return Membership.objects.select_related("user", "account")

    def act(self, membership):
        membership_remove(membership=membership, actor=_actor(self.request))
        messages.success(self.request, _("%(email)s ya no es miembro de la cuenta.") % {"email": membership.user.email})


class InvitationRevokeView(ManageObjectView):
    success_url = "settings-members"

    def scoped_queryset(self):
        return Invitation.objects.select_related("account")

    def act(self, invitation):
        invitation_revoke(invitation=invitation, actor=_actor(self.request))
        messages.success(self.request, _("Invitación a %(email)s revocada.") % {"email": invitation.email})


@method_decorator(never_cache, name="dispatch")
class ApiKeysView(ManagersOnlyMixin, SettingsPageMixin, TemplateView):
    """The account's API keys. A new key's secret is shown once, in the answer to the POST that created it."""

    template_name = "accounts/settings_api_keys.html"
    section = "api_keys"
    refused_message = gettext_lazy("Solo dueños y administradores ven y administran las claves de API.")

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context["keys"] = ApiKey.objects.filter(account=self.account).select_related("created_by").order_by(
            F("revoked_at").desc(nulls_first=True), "-created_at")
        context["form"] = form or ApiKeyForm()
        return context

    def post(self, request):
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        api_key, raw_key = api_key_create(account=self.account, actor=_actor(request), **form.cleaned_data)
        return self.render_to_response(self.get_context_data(created=api_key, created_key=raw_key))


class ApiKeyRevokeView(ManageObjectView):
    success_url = "settings-api-keys"

    def scoped_queryset(self):
        return ApiKey.objects.select_related("account")

    def act(self, api_key):
        api_key_revoke(api_key=api_key, actor=_actor(self.request))
        messages.success(self.request, _("Clave «%(name)s» revocada: ya no sirve para llamar a la API.") % {"name": api_key.name})


class AuditLogView(ManagersOnlyMixin, SettingsPageMixin, ListView):
    """What was done in the account, newest first, 50 a page."""

    template_name = "accounts/settings_audit.html"
    section = "audit"
    paginate_by = 50
    context_object_name = "entries"
    refused_message = gettext_lazy("Solo dueños y administradores ven la auditoría de la cuenta.")

    def allowed(self, request) -> bool:
        return may_manage(request) or request.account_context.support_mode

    def scoped_queryset(self):
        return AuditLog.objects.select_related("actor", "api_key").order_by("-created_at", "-id")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for entry in context["entries"]:
            entry.label = AUDIT_ACTIONS.get(entry.action)
            entry.details = [(AUDIT_DETAILS.get(key, key), _audit_value(key, value)) for key, value in (entry.data or {}).items()]
        return context


def _audit_value(key: str, value):
    if key == "role":
        return dict(Role.choices).get(value, value)
    if key == "fields" and isinstance(value, list):
        return ", ".join(str(AUDIT_FIELDS.get(field, field)) for field in value)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


# --- Invitations ----------------------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class InvitationAcceptView(View):
    """The page an invitation email links to.

    Signed in with the invited address: one button joins the account. Not signed in: sign in, or sign up
    with the invited address, which needs no confirmation email (the link proves the address) and comes
    back here. Signed in as someone else: says so.
    """

    template_name = "accounts/invitation_accept.html"

    def _invitation(self, token):
        invitation = invitation_from_token(token=token)
        return invitation if invitation is not None and invitation.pending else None

    def get(self, request, token):
        invitation = self._invitation(token)
        if invitation is None:
            return render(request, self.template_name, {"invitation": None}, status=404)
        here = request.get_full_path()
        if not request.user.is_authenticated:
            get_adapter(request).stash_verified_email(request, invitation.email)
        return render(request, self.template_name, {
            "invitation": invitation,
            "email_matches": request.user.is_authenticated and request.user.email.lower() == invitation.email,
            "login_url": f"{reverse('login')}?{urlencode({'next': here})}",
            "signup_url": f"{reverse('account_signup')}?{urlencode({'email': invitation.email, 'next': here})}",
        })

    def post(self, request, token):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?{urlencode({'next': request.path})}")
        try:
            membership = invitation_accept(token=token, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("invitation-accept", token=token)
        _use_account(request, membership)
        messages.success(request, _("Ahora es parte de %(account)s con el rol %(role)s.") % {
            "account": membership.account.name, "role": membership.get_role_display()})
        return redirect("dashboard")


# --- Support mode ---------------------------------------------------------------------------------------


def _support_page(request, query: str, failed: Account | None = None, failed_form=None, status=200):
    rows = [
        (account, failed_form if failed is not None and account.pk == failed.pk else SupportOpenForm(auto_id=f"id_%s_{account.pk}"))
        for account in account_search(query=query)
    ]
    if failed is not None and all(account.pk != failed.pk for account, _form in rows):
        rows.insert(0, (failed, failed_form))
    return render(request, "accounts/support.html", {"rows": rows, "query": query}, status=status)


@staff_member_required
def support_search(request):
    """Staff find any account by name or RUT to open it in support mode."""
    return _support_page(request, request.GET.get("q", ""))


@staff_member_required
@require_POST
def support_open(request, account_id: int):
    """Staff open any account in support mode, saying why; the access and its reason are audit-logged."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise Http404("Not found")
    form = SupportOpenForm(request.POST, auto_id=f"id_%s_{account.pk}")
    if form.is_valid():
        try:
            support_access_open(staff_user=request.user, account=account, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            form.apply_service_error(exc)
        else:
            request.session[SESSION_ACCOUNT_KEY] = account.pk
            request.session[SESSION_SUPPORT_KEY] = account.pk
            return redirect("dashboard")
    return _support_page(request, request.POST.get("q", ""), failed=account, failed_form=form, status=400)
