"""Connecting a WooCommerce store without pasting keys: WooCommerce's key handshake (wc-auth).

How WooCommerce does it (``includes/class-wc-auth.php``; docs ``_authentication.md``, "Auto generating
API keys using our Application Authentication Endpoint"):

1. We send the merchant's browser to ``<store>/wc-auth/v1/authorize`` with ``app_name``, ``scope``
   (``read_write``: we read orders, write notes and create webhooks), ``user_id``, ``return_url`` and
   ``callback_url``. Every parameter is required; ``callback_url`` must be https.
2. A logged-in shop manager approves. WooCommerce creates the keys, then POSTs them, **unsigned**, as
   JSON ``{key_id, user_id, consumer_key, consumer_secret, key_permissions}`` to ``callback_url`` with
   a 60 s timeout; anything but exactly HTTP 200 makes it delete the key and show an error page.
3. On 200 it redirects the browser to ``return_url?success=1&user_id=…``; a denial redirects with
   ``success=0`` (and no callback).

Our side:

- ``user_id`` is the connect attempt's one-time ``state`` (``sources.services.connect_attempt_start``):
  unguessable, bound to the account, the browser session, 30 minutes and one use. Because the callback is
  unsigned, that value is the only proof it answers our request: the callback uses it without the
  session (``check_session=False``, WooCommerce's server has no browser session), and an unknown,
  expired or replayed value is answered 400, so WooCommerce deletes the key and nothing is stored.
- The keys are verified with one REST call (``GET orders?per_page=1``) before they are trusted, inside
  the callback but with short timeouts (3 s to connect, 10 s to read; with the HTTP base's read retries
  at most about 45 s), so the 200 goes out before WooCommerce's 60 s. A 401 that reads as a dropped
  Authorization header is tried once more with the keys in the query string; when that works the
  connection gets ``query_string_auth`` on (the merchant is told on the return page).
- Verified: the keys are stored encrypted on the connection (created, or updated on a reconnect) through
  ``sources.services`` and the connection is active. The store could not be reached in time (e.g. a host
  with one PHP worker, busy waiting for our 200): the keys are stored, the connection is marked "needs
  attention" and the return page verifies them again, once WooCommerce is free. The store refused them:
  nothing is stored (a reconnect keeps the old keys) and the return page says why and asks to revoke
  the unusable key in WooCommerce. In every case once the one-time value matched the answer is 200:
  the merchant then lands on our page with the explanation instead of WooCommerce's generic error.
- The return page is bound to the browser session that started the flow
  (``sources.services.connect_attempt_for_session``) and to its account.

Assumptions where the sources are silent: ``key_permissions`` other than ``read_write`` (a plugin
filtering the scope) is refused like keys that do not work; the store URL is the WordPress home URL
with pretty permalinks (the docs require them for the REST API; wc-auth also has a
``?wc-auth-version=1&wc-auth-route=authorize`` form for plain permalinks, not used here).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.services import Actor
from billmysales.integrations.errors import IntegrationError, TransientError
from billmysales.integrations.http import url_problem

from ..models import ConnectAttempt, SourceConnection
from ..services import (
    ConnectRefused,
    connect_attempt_fail,
    connect_attempt_for_session,
    connect_attempt_start,
    connect_attempt_use,
    connection_status_set,
    source_connection_create,
    source_connection_update,
)
from .client import AuthorizationHeaderDropped, WooCommerceClient

logger = logging.getLogger(__name__)

PLATFORM = "woocommerce"
APP_NAME = "BillMySales"
SCOPE = "read_write"
VERIFY_TIMEOUT = (3.0, 10.0)
MAX_CALLBACK_BYTES = 16 * 1024
VERIFIED, UNVERIFIED, REFUSED = "verified", "unverified", "refused"


@dataclass(frozen=True)
class ConnectResult:
    ok: bool
    message: str
    connection: SourceConnection | None = None


def _public_url(route: str) -> str:
    return settings.BMS_PUBLIC_URL.rstrip("/") + reverse(f"connect-{PLATFORM}:{route}")


def clean_store_url(store_url: str) -> str:
    """The site's home URL as typed, with ``https://`` when no scheme was typed, without a trailing slash."""
    url = (store_url or "").strip()
    if url and "://" not in url:
        url = "https://" + url
    problem = url_problem(url)
    if problem:
        raise ValidationError({"store_url": [_("La URL de la tienda no sirve: %(problem)s") % {"problem": problem}]})
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValidationError({"store_url": [_("Indique solo la dirección de la tienda, sin parámetros (https://mitienda.cl).")]})
    return url.rstrip("/")


def woocommerce_connect_start(
    *, account: Account, actor: Actor, session_key: str | None, store_url: str = "", name: str = "",
    connection: SourceConnection | None = None,
) -> str:
    """Starts the handshake; returns the store's authorization URL the browser is sent to."""
    if connection is not None:
        if connection.account_id != account.id or connection.platform != PLATFORM:
            raise ValidationError(_("Esa conexión no es una tienda WooCommerce de esta cuenta."))
        store_url, name = store_url or connection.store_url, name or connection.name
    store_url = clean_store_url(store_url)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationError({"name": [_("Indique un nombre para la tienda (hasta 120 caracteres).")]})
    callback_url = _public_url("callback")
    problem = url_problem(callback_url)
    if problem:
        raise ValidationError(_("La dirección pública de BillMySales (BMS_PUBLIC_URL) no sirve para que WooCommerce "
                                "envíe las claves: %(problem)s") % {"problem": problem})
    attempt = connect_attempt_start(account=account, actor=actor, platform=PLATFORM, session_key=session_key,
                                    data={"store_url": store_url, "name": name}, connection=connection)
    query = urlencode({"app_name": APP_NAME, "scope": SCOPE, "user_id": attempt.state,
                       "return_url": _public_url("return"), "callback_url": callback_url})
    return f"{store_url}/wc-auth/v1/authorize?{query}"


def _read_keys(body: bytes) -> dict:
    if len(body) > MAX_CALLBACK_BYTES:
        raise ConnectRefused(_("El cuerpo del aviso de claves es demasiado grande."))
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ConnectRefused(_("El aviso de claves no es JSON.")) from None
    if not isinstance(data, dict):
        raise ConnectRefused(_("El aviso de claves no es un objeto JSON."))
    user_id = data.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, str | int) or str(user_id) == "":
        raise ConnectRefused(_("El aviso de claves no trae user_id."))
    for field, prefix in (("consumer_key", "ck_"), ("consumer_secret", "cs_")):
        value = data.get(field)
        if not isinstance(value, str) or not value.startswith(prefix) or len(value) > 200:
            raise ConnectRefused(_("El aviso de claves no trae un %(field)s válido.") % {"field": field})
    return data


def verify_keys(*, store_url: str, consumer_key: str, consumer_secret: str, rest_prefix: str = "wp-json") -> bool:
    """One REST call with the keys (two when the first reads as a dropped Authorization header); returns
    whether they need ``query_string_auth``. Raises ``SourceRejectedError`` / ``SourceTransientError``."""
    client = WooCommerceClient(store_url=store_url, consumer_key=consumer_key, consumer_secret=consumer_secret,
                               rest_prefix=rest_prefix, timeout=VERIFY_TIMEOUT)
    try:
        client.latest_orders(1)
        return False
    except AuthorizationHeaderDropped as dropped:
        try:
            client.with_query_string_auth().latest_orders(1)
        except IntegrationError:
            raise dropped from None
        return True


def woocommerce_connect_keys_receive(*, body: bytes) -> str:
    """WooCommerce's unsigned POST of the new keys. Raises ``ConnectRefused`` (answer 400: WooCommerce deletes
    the key) when it does not answer one of our attempts; otherwise records the outcome and returns it."""
    data = _read_keys(body)
    attempt = connect_attempt_use(state=str(data["user_id"]), platform=PLATFORM, check_session=False)
    store_url = attempt.data.get("store_url", "")
    keys = {"consumer_key": data["consumer_key"], "consumer_secret": data["consumer_secret"]}
    if data.get("key_permissions") != SCOPE:
        return _refuse(attempt, _("WooCommerce creó claves con permiso «%(permissions)s» y hace falta lectura/escritura.")
                       % {"permissions": str(data.get("key_permissions"))[:20]})
    rest_prefix = (attempt.connection.config or {}).get("rest_prefix", "wp-json") if attempt.connection else "wp-json"
    try:
        query_string_auth = verify_keys(store_url=store_url, rest_prefix=rest_prefix, **keys)
    except TransientError as exc:
        unverified = exc.message
    except IntegrationError as exc:
        return _refuse(attempt, exc.message)
    else:
        unverified = ""
    try:
        connection = _store(attempt, keys, config={} if unverified else {"query_string_auth": query_string_auth})
    except ValidationError as exc:
        return _refuse(attempt, " ".join(exc.messages))
    if unverified:
        connection_status_set(connection=connection, status=SourceConnection.Status.ERROR,
                              message=_("Claves recibidas de WooCommerce, aún sin verificar: %(error)s") % {"error": unverified})
        return _outcome(attempt, UNVERIFIED, connection, unverified)
    connection_status_set(connection=connection, status=SourceConnection.Status.ACTIVE)
    return _outcome(attempt, VERIFIED, connection, "", query_string_auth=query_string_auth)


def _store(attempt: ConnectAttempt, keys: dict, *, config: dict) -> SourceConnection:
    actor = Actor(user=attempt.created_by)
    if attempt.connection is not None:
        return source_connection_update(connection=attempt.connection, actor=actor, credentials=keys, config=config)
    return source_connection_create(
        account=attempt.account, actor=actor, name=attempt.data.get("name") or "WooCommerce", platform=PLATFORM,
        store_url=attempt.data.get("store_url", ""), credentials=keys, config=config,
    )


def _outcome(attempt: ConnectAttempt, outcome: str, connection: SourceConnection | None, error: str, **extra) -> str:
    ConnectAttempt.objects.filter(pk=attempt.pk).update(
        data={**attempt.data, "outcome": outcome, **extra}, connection=connection or attempt.connection,
    )
    if error:
        connect_attempt_fail(attempt=attempt, error=error)
    return outcome


def _refuse(attempt: ConnectAttempt, reason: str) -> str:
    return _outcome(attempt, REFUSED, None, reason)


def woocommerce_connect_finish(*, account: Account, state: str, success: bool, session_key: str | None) -> ConnectResult:
    """The return page: what came of the attempt this browser started, in words. Raises ``ConnectRefused``."""
    attempt = connect_attempt_for_session(state=state, platform=PLATFORM, session_key=session_key)
    if attempt.account_id != account.id:
        raise ConnectRefused(_("Esta conexión se inició en otra cuenta; cámbiese a esa cuenta e inténtelo de nuevo."))
    if attempt.used_at is None:
        # No keys came: a denial, or a return without WooCommerce's callback. Either way the attempt ends here.
        connect_attempt_use(state=attempt.state, platform=PLATFORM, session_key=session_key)
        reason = (_("Se rechazó el acceso en WooCommerce; no se guardó nada.") if not success
                  else _("WooCommerce no envió las claves a BillMySales; no se guardó nada."))
        connect_attempt_fail(attempt=attempt, error=reason)
        return ConnectResult(False, reason + " " + _("Puede intentarlo de nuevo."))
    outcome = attempt.data.get("outcome")
    if outcome == REFUSED:
        return ConnectResult(False, _(
            "WooCommerce creó las claves, pero no funcionan: %(error)s No se guardaron. Revóquelas en WooCommerce > "
            "Ajustes > Avanzado > API REST (descripción «%(app)s - API …») y vuelva a intentarlo.")
            % {"error": attempt.error, "app": APP_NAME})
    connection = attempt.connection
    if connection is None or outcome not in (VERIFIED, UNVERIFIED):
        return ConnectResult(False, _("La conexión no se completó; inténtelo de nuevo."))
    if outcome == UNVERIFIED:
        return _verify_again(attempt, connection)
    note = _(" El servidor de la tienda elimina la cabecera Authorization, así que las claves van en la URL.") \
        if attempt.data.get("query_string_auth") else ""
    return ConnectResult(True, _("Tienda «%(name)s» conectada: las claves funcionan.%(note)s")
                         % {"name": connection.name, "note": note}, connection)


def _verify_again(attempt: ConnectAttempt, connection: SourceConnection) -> ConnectResult:
    credentials = connection.credentials or {}
    try:
        query_string_auth = verify_keys(store_url=connection.store_url, consumer_key=credentials.get("consumer_key", ""),
                                        consumer_secret=credentials.get("consumer_secret", ""),
                                        rest_prefix=(connection.config or {}).get("rest_prefix", "wp-json"))
    except IntegrationError as exc:
        message = _("Claves guardadas, pero la tienda no respondió al verificarlas: %(error)s Use «Probar conexión» cuando "
                    "la tienda responda.") % {"error": exc.message}
        connection_status_set(connection=connection, status=SourceConnection.Status.ERROR, message=message)
        return ConnectResult(False, message, connection)
    if query_string_auth:
        connection = source_connection_update(connection=connection, actor=Actor(user=attempt.created_by),
                                              config={"query_string_auth": True})
    connection_status_set(connection=connection, status=SourceConnection.Status.ACTIVE)
    ConnectAttempt.objects.filter(pk=attempt.pk).update(
        data={**attempt.data, "outcome": VERIFIED, "query_string_auth": query_string_auth}, error="")
    return ConnectResult(True, _("Tienda «%(name)s» conectada: las claves funcionan.") % {"name": connection.name}, connection)
