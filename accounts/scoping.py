"""Tenant scoping in one place.

Every tenant-owned query in a view goes through these bases: the account comes from the API key or
the signed-in session (never from a request body), the queryset is filtered by it after the subclass
hook, and an object of another account is indistinguishable from one that does not exist (404).
Subclasses may not override ``get_queryset`` / ``get_object``: they implement ``scoped_queryset``.
"""
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from rest_framework import permissions, viewsets
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied
from rest_framework.response import Response

from . import idempotency
from .models import ADMIN_ROLES, WRITE_ROLES, Account, ApiKey, User
from .services import Actor

_SEALED = ("get_queryset", "get_object")


def _seal(cls):
    for name in _SEALED:
        if name in cls.__dict__:
            raise TypeError(f"{cls.__name__} must implement scoped_queryset(), not {name}(): scoping is applied by the base.")


def request_account(request) -> tuple[Account | None, str | None, bool]:
    """(account, role, support_mode) for this request. API keys act with their scope as role."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return auth.account, ("write" if auth.allows_write() else "read"), False
    context = getattr(request, "account_context", None)
    if context is None:
        return None, None, False
    return context.account, context.role, context.support_mode


def may_write(request) -> bool:
    """Whether the signed-in dashboard user may change things in the current account."""
    context = getattr(request, "account_context", None)
    return context is not None and context.account is not None and (context.role in WRITE_ROLES or context.support_mode)


def require_write(request) -> None:
    """Dashboard views: viewers read; every change (and every call to a vendor) needs a role that may write."""
    if not may_write(request):
        raise DjangoPermissionDenied(_("Su rol en esta cuenta solo permite ver."))


def request_actor(request) -> Actor:
    """Who acts, for the audit log and the services' role checks, from the dashboard's request."""
    context = request.account_context
    return Actor(user=request.user, support_mode=context.support_mode, role=context.role or "")


class AccountPermission(permissions.BasePermission):
    """Members and keys read; writes need a write-scoped key or a role that may write."""

    message = _("Esta clave de API o su rol no permite hacer eso en esta cuenta.")

    def has_permission(self, request, view) -> bool:
        account, role, _support = request_account(request)
        if account is None:
            return False
        if getattr(view, "admin_only", False):
            # Reading included: who may see the account's keys or members' settings is who may manage them.
            return role in ADMIN_ROLES
        if request.method in permissions.SAFE_METHODS:
            return True
        return role == "write" or role in WRITE_ROLES


class AccountScopedViewSet(viewsets.GenericViewSet):
    account_field = "account"
    permission_classes = [permissions.IsAuthenticated, AccountPermission]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _seal(cls)

    @property
    def account(self) -> Account:
        account, _role, _support = request_account(self.request)
        if account is None:
            raise NotAuthenticated(_("No hay una cuenta seleccionada."))
        return account

    def require_admin(self) -> None:
        """Writes of account settings (members, invitations) are for owners and admins."""
        _account, role, _support = request_account(self.request)
        if role not in ADMIN_ROLES:
            raise PermissionDenied(_("Solo dueños y administradores pueden hacer eso."))

    @property
    def actor(self):
        auth = getattr(self.request, "auth", None)
        _account, role, support_mode = request_account(self.request)
        return Actor(
            user=self.request.user if isinstance(self.request.user, User) else None,
            api_key=auth if isinstance(auth, ApiKey) else None,
            support_mode=support_mode,
            role=role or "",
        )

    def scoped_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # The schema generator asks for the model without a request account.
            return self.scoped_queryset().none()
        return self.scoped_queryset().filter(**{self.account_field: self.account})

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["account"] = self.account if self.request and self.request.user.is_authenticated else None
        return context

    # --- Throttling before permissions, so calls without valid credentials are limited per IP too -------

    def perform_authentication(self, request):
        try:
            super().perform_authentication(request)
        except AuthenticationFailed:
            self.check_throttles(request)
            raise

    def check_permissions(self, request):
        self.check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request):
        if getattr(request, "_throttled_once", False):
            return
        request._throttled_once = True
        super().check_throttles(request)

    # --- Idempotency-Key on POSTs (see accounts.idempotency) --------------------------------------

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(idempotency.HEADER)
        if request.method == "POST" and key is not None:
            request.idempotent_row = idempotency.idempotent_request_begin(
                account=self.account, key=key, method=request.method, path=request.path, body=request.body
            )

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            response = Response(exc.row.response_body, status=exc.row.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        row = getattr(request, "idempotent_row", None)
        if row is not None and not response.has_header("Idempotent-Replayed"):
            body = response.data if isinstance(getattr(response, "data", None), (dict, list)) else None
            idempotency.idempotent_request_finish(row=row, status=response.status_code, body=body)
        return super().finalize_response(request, response, *args, **kwargs)


class AccountScopedViewMixin(LoginRequiredMixin):
    """The same scoping for dashboard class-based views."""

    account_field = "account"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _seal(cls)

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and request.account_context.account is None:
            if request.user.is_staff:
                return redirect("support-search")
            raise Http404("No account")
        return super().dispatch(request, *args, **kwargs)

    @property
    def account(self) -> Account:
        return self.request.account_context.account

    def scoped_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        return self.scoped_queryset().filter(**{self.account_field: self.account})

    def get_object(self, queryset=None):
        queryset = self.get_queryset() if queryset is None else queryset
        obj = queryset.filter(pk=self.kwargs.get("pk")).first()
        if obj is None:
            raise Http404("Not found")
        return obj
