"""WooCommerce's connect flow over HTTP: the dashboard's start page, WooCommerce's key callback and the
page the merchant's browser returns to. The flow itself is in ``services.py``.

- ``start`` (signed-in users; starting needs a role that may write): a form with the store URL and the
  connection's name (or ``?connection=<id>`` to reconnect one); POST sends the browser to the store's
  ``/wc-auth/v1/authorize``.
- ``callback`` (WooCommerce's server, unsigned, no session, no CSRF token): exactly 200 when the one-time
  ``user_id`` is ours (whatever the keys turned out to be), 400 otherwise so WooCommerce deletes the key.
- ``return`` (the browser, session-bound): the result in words, and where to continue. A flow started with
  ``next`` (a path on this site, e.g. the setup wizard's data-source step) goes back there once connected.
"""
import logging
from functools import cache
from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template import engines
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.scoping import AccountScopedViewMixin, may_write
from accounts.services import Actor

from ..models import SourceConnection
from ..services import ConnectRefused
from . import services

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Where the browser goes back to after the return page (the flow's ``next``), kept in its session.
NEXT_SESSION_KEY = "woocommerce_connect_next"


@cache
def _template(name: str):
    # The package keeps its pages beside its code; they extend the project's base.html.
    return engines["django"].from_string((TEMPLATES / name).read_text(encoding="utf-8"))


def _render(request, name: str, context: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(_template(name).render(context, request), status=status)


def _actor(request) -> Actor:
    return Actor(user=request.user, support_mode=request.account_context.support_mode)


def _local(request, url: str) -> str:
    """``url`` when it is a path on this site (where to come back), else ""."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return ""


class ConnectStartView(AccountScopedViewMixin, View):
    def _connection(self, request) -> SourceConnection | None:
        pk = request.POST.get("connection") or request.GET.get("connection")
        if not pk:
            return None
        connection = SourceConnection.objects.filter(
            account=self.account, platform=services.PLATFORM, pk=pk if str(pk).isdigit() else 0
        ).first()
        if connection is None:
            raise Http404("No such connection")
        return connection

    def _form(self, request, *, errors=(), status=200) -> HttpResponse:
        data = request.POST if request.method == "POST" else request.GET
        return _render(request, "connect_start.html", {
            "may_write": may_write(request), "errors": list(errors), "connection": self._connection(request),
            "store_url": data.get("store_url", ""), "name": data.get("name", ""), "next_url": _local(request, data.get("next", "")),
        }, status=status)

    def get(self, request):
        return self._form(request, status=200 if may_write(request) else 403)

    def post(self, request):
        if not may_write(request):
            return self._form(request, status=403)
        if not request.session.session_key:
            request.session.save()
        try:
            url = services.woocommerce_connect_start(
                account=self.account, actor=_actor(request), session_key=request.session.session_key,
                store_url=request.POST.get("store_url", ""), name=request.POST.get("name", ""),
                connection=self._connection(request),
            )
        except ValidationError as exc:
            return self._form(request, errors=exc.messages, status=400)
        request.session[NEXT_SESSION_KEY] = _local(request, request.POST.get("next", ""))
        return HttpResponseRedirect(url)


@csrf_exempt
@require_POST
def keys_callback(request):
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > services.MAX_CALLBACK_BYTES:
        return JsonResponse({"error": _("Cuerpo demasiado grande.")}, status=413)
    try:
        outcome = services.woocommerce_connect_keys_receive(body=request.body)
    except ConnectRefused as exc:
        logger.warning("woocommerce keys callback refused: %s", exc)
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"received": True, "outcome": outcome})


class ConnectReturnView(AccountScopedViewMixin, View):
    def get(self, request):
        status = 200
        try:
            result = services.woocommerce_connect_finish(
                account=self.account, state=request.GET.get("user_id", ""), success=request.GET.get("success") == "1",
                session_key=request.session.session_key,
            )
        except ConnectRefused as exc:
            result, status = services.ConnectResult(False, str(exc)), 400
        next_url = request.session.pop(NEXT_SESSION_KEY, "")
        if result.ok and next_url:
            messages.success(request, result.message)
            return HttpResponseRedirect(next_url)
        return _render(request, "connect_result.html", {
            "result": result, "continue_url": next_url or reverse("dashboard"),
            "retry_url": reverse(f"connect-{services.PLATFORM}:start"),
        }, status=status)
