"""Connecting a Shopify store by installing our app (``/connect/shopify/``, namespace ``connect-shopify``).

- ``start`` (GET or POST, signed-in users who may write): ``shop`` (its name or address), ``name`` of the
  connection, optionally ``connection`` (the id of a connection to reconnect) and ``next`` (where to go
  back); starts a connect attempt and sends the browser to Shopify's authorize page.
- ``install``: our App URL. Shopify opens it, signed, when a merchant installs or opens the app from
  Shopify's side; a valid request goes on to ``start`` for that shop (through the login page first
  when nobody is signed in).
- ``callback``: our redirect URL. Checks the signature, the shop and the ``state``, exchanges the code
  and saves the connection, then goes to the attempt's ``next`` or the dashboard with a message.

See ``oauth.py`` for the flow and its checks; ``services.py`` saves the connection.
"""
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.scoping import may_write
from accounts.services import Actor

from ..base import SourceError
from ..models import SourceConnection
from ..services import ConnectRefused, connect_attempt_fail, connect_attempt_start, connect_attempt_use
from .oauth import InstallRefused, authorize_url, normalize_shop, verified_shop
from .services import shopify_install_complete

logger = logging.getLogger(__name__)


def _safe_next(request, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return value
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def start(request):
    params = request.POST if request.method == "POST" else request.GET
    back = _safe_next(request, params.get("next"))
    if not may_write(request):
        messages.error(request, _("Su rol no permite conectar tiendas en esta cuenta."))
        return redirect(back or "dashboard")
    if not settings.BMS_SHOPIFY_CLIENT_ID or not settings.BMS_SHOPIFY_CLIENT_SECRET:
        messages.error(request, _("La conexión con Shopify no está disponible: falta configurar la app en este servidor."))
        return redirect(back or "dashboard")
    shop = normalize_shop(params.get("shop"))
    if shop is None:
        messages.error(request, _("Indique su tienda de Shopify como <tienda>.myshopify.com."))
        return redirect(back or "dashboard")
    account = request.account_context.account
    connection = None
    if params.get("connection"):
        connection = SourceConnection.objects.filter(account=account, platform="shopify", pk=params["connection"]).first()
        if connection is None:
            raise Http404("No connection")
    if not request.session.session_key:
        request.session.save()
    attempt = connect_attempt_start(
        account=account, actor=Actor(user=request.user, support_mode=request.account_context.support_mode),
        platform="shopify", session_key=request.session.session_key, connection=connection,
        data={"shop": shop, "name": (params.get("name") or "").strip()[:120] or shop.split(".")[0], "next": back},
    )
    redirect_uri = settings.BMS_PUBLIC_URL.rstrip("/") + reverse("connect-shopify:callback")
    return redirect(authorize_url(shop=shop, state=attempt.state, redirect_uri=redirect_uri))


@require_GET
def install(request):
    try:
        shop = verified_shop(request.GET)
    except InstallRefused as exc:
        logger.warning("shopify install request refused: %s", exc.message)
        return HttpResponseBadRequest(exc.message)
    start_url = reverse("connect-shopify:start") + "?" + urlencode({"shop": shop})
    if not request.user.is_authenticated:
        return redirect_to_login(start_url)
    account = getattr(request.account_context, "account", None)
    connected = account is not None and SourceConnection.objects.filter(
        account=account, platform="shopify", store_url=f"https://{shop}", status=SourceConnection.Status.ACTIVE
    ).exists()
    if connected:
        messages.info(request, _("La tienda %(shop)s ya está conectada.") % {"shop": shop})
        return redirect("dashboard")
    return redirect(start_url)


@require_GET
def callback(request):
    params = request.GET
    if params.get("error"):
        return _denied(request, params)
    try:
        shop = verified_shop(params)
    except InstallRefused as exc:
        logger.warning("shopify callback refused: %s", exc.message)
        messages.error(request, _("No se conectó la tienda: %(reason)s") % {"reason": exc.message})
        return redirect("dashboard")
    try:
        attempt = connect_attempt_use(state=params.get("state", ""), platform="shopify", session_key=request.session.session_key)
    except ConnectRefused as exc:
        messages.error(request, _("No se conectó la tienda: %(reason)s") % {"reason": exc})
        return redirect("dashboard")
    back = attempt.data.get("next") or "dashboard"
    if shop != attempt.data.get("shop"):
        return _failed(request, attempt, back, _("Shopify devolvió la tienda %(got)s, pero la conexión se inició para %(want)s.")
                       % {"got": shop, "want": attempt.data.get("shop")})
    try:
        connection = shopify_install_complete(attempt=attempt, shop=shop, code=params.get("code", ""))
    except InstallRefused as exc:
        return _failed(request, attempt, back, exc.message)
    except SourceError as exc:
        return _failed(request, attempt, back, exc.message)
    messages.success(request, _("Tienda Shopify %(shop)s conectada como «%(name)s».") % {"shop": shop, "name": connection.name})
    return redirect(back)


def _failed(request, attempt, back: str, reason: str):
    connect_attempt_fail(attempt=attempt, error=reason)
    messages.error(request, _("No se conectó la tienda: %(reason)s") % {"reason": reason})
    return redirect(back)


def _denied(request, params):
    """The merchant declined (or Shopify refused) the authorization: the attempt ends, nothing is saved."""
    try:
        attempt = connect_attempt_use(state=params.get("state", ""), platform="shopify", session_key=request.session.session_key)
    except ConnectRefused:
        attempt = None
    reason = _("Shopify no autorizó la instalación de la app (%(error)s).") % {"error": params.get("error", "")[:60]}
    if attempt is not None:
        return _failed(request, attempt, attempt.data.get("next") or "dashboard", reason)
    messages.error(request, _("No se conectó la tienda: %(reason)s") % {"reason": reason})
    return redirect("dashboard")
