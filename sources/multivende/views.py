"""Multivende's connect flow over HTTP (the flow itself is in ``services.py``):

- ``start`` (signed-in users; starting needs a role that may write, ``accounts.scoping.may_write``): GET
  shows the button (``?connection=<id>`` to connect or reconnect an existing Multivende connection,
  ``?next=<path>`` where to come back); POST, with the connection's ``name`` (or ``connection``), sends
  the browser to Multivende's consent screen.
- ``callback`` (the browser, back from Multivende, same session and role): saves the connection and
  sends the browser to ``next`` (or the dashboard) with the result in words.
"""
from functools import cache
from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template import engines
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View

from accounts.scoping import AccountScopedViewMixin, may_write
from accounts.services import Actor
from billmysales.integrations.errors import IntegrationError

from ..models import SourceConnection
from . import services

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _template(name: str):
    # The package keeps its page beside its code; it extends the project's base.html.
    return engines["django"].from_string((TEMPLATES / name).read_text(encoding="utf-8"))


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
        context = {"may_write": may_write(request), "errors": list(errors), "connection": self._connection(request),
                   "name": data.get("name", ""), "next_url": _local(request, data.get("next", ""))}
        return HttpResponse(_template("connect_start.html").render(context, request), status=status)

    def get(self, request):
        return self._form(request, status=200 if may_write(request) else 403)

    def post(self, request):
        if not may_write(request):
            return self._form(request, status=403)
        if not request.session.session_key:
            request.session.save()
        try:
            url = services.multivende_connect_start(
                account=self.account, actor=_actor(request), session_key=request.session.session_key,
                name=request.POST.get("name", ""), connection=self._connection(request),
                next_url=_local(request, request.POST.get("next", "")),
            )
        except ValidationError as exc:
            return self._form(request, errors=exc.messages, status=400)
        except IntegrationError as exc:
            return self._form(request, errors=[exc.message], status=503)
        return HttpResponseRedirect(url)


class ConnectCallbackView(AccountScopedViewMixin, View):
    def get(self, request):
        if not may_write(request):
            messages.error(request, _("Su rol en esta cuenta solo permite ver: no puede conectar Multivende."))
            return redirect("dashboard")
        outcome = services.multivende_connect_finish(
            account=self.account, actor=_actor(request), session_key=request.session.session_key,
            callback_url=request.build_absolute_uri(), params=request.GET,
        )
        (messages.success if outcome.ok else messages.error)(request, outcome.message)
        return redirect(_local(request, outcome.next_url) or "dashboard")
