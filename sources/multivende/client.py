"""The only code that speaks HTTP to Multivende: its OAuth2 app authorization and one merchant's API.

From Multivende's help center ([help-oauth], [help-token], [help-ventas], [help-dte] in
``reference/source-multivende.md``) and, where those pages are cut short, integrators' code:

- OAuth2 authorization code. authlib's OAuth2 client does the protocol (the authorize URL, reading the
  callback's code and state, the token and refresh requests and their answers) over our HTTP base (the
  ``_Transport`` below: timeouts, no redirects, errors mapped, https only).
  ``GET /apps/authorize?response_type=code&client_id&redirect_uri&scope&state``; ``POST
  /oauth/access-token`` with a JSON body ``{client_id: <number>, client_secret, grant_type, code |
  refresh_token}`` and ``cache-control: no-cache`` (not RFC 6749's form body with Basic auth: a
  client-auth method registered with authlib writes it), answered ``{token, expiresAt, refreshToken,
  refreshTokenExpiresAt, MerchantId, scopes, ...}``. Only the documented fields are sent (no
  ``redirect_uri`` in the token request). Several scopes go space-separated (RFC 6749 §3.3); the help
  center only shows one. Whether ``state`` comes back is not documented (see ``services.py``).
- API calls carry ``Authorization: Bearer <token>``. The access token is renewed ``REFRESH_MARGIN``
  before it expires, once for all workers (``sources.services.credentials_refresh``, under a lease);
  refresh tokens rotate, so the new pair is saved before the lease ends. A 401 or 403 (integrators see
  403 for an expired token) renews once and retries the call once; a 403 whose body says "rate limit"
  is transient instead (what Multivende answers beyond its limit is not documented). A refresh token
  that expired (or that Multivende refuses) marks the connection "reconnect" with the reason.
- Every API call first waits its turn: at most 5 per second per merchant (``ratelimit.py``).
- ``GET /api/d/info``; ``GET /api/m/{merchant}/checkouts/light/p/{page}`` with ``_updated_at_from`` /
  ``_updated_at_to`` (UTC ``YYYY-mm-dd hh:mm:ss``; Multivende blocks ranges over 2 hours);
  ``GET /api/checkouts/{id}``; ``POST /api/checkouts/{id}/electronic-billing-documents`` then
  ``POST /api/electronic-billing-documents/{id}/upload`` (multipart field ``file``, ``<folio>.pdf``).
  The "light with scroll" list is the one Multivende recommends, but its cursor parameter is not
  public, so the paged light list is used.
- The API address is ``settings.BMS_MULTIVENDE_BASE_URL``. A connection records where it was
  authorized (``store_url``); one naming any other address is refused before a request, so a merchant's
  token never goes elsewhere. Our app's client secret only ever goes to the configured address.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from authlib.common.urls import url_decode
from authlib.integrations.requests_client.oauth2_session import OAuth2ClientAuth
from authlib.oauth2.client import OAuth2Client
from authlib.oauth2.rfc6749.errors import MismatchingStateException, MissingCodeException
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response
from django.conf import settings
from django.utils.translation import gettext as _

from ..errors import SourceRejectedError, SourceTransientError
from ..http import StoreHttpClient, body_excerpt
from . import ratelimit

VENDOR = "Multivende"
AUTHORIZE_PATH = "/apps/authorize"
TOKEN_PATH = "/oauth/access-token"
JSON_CLIENT_AUTH = "client_secret_json"
# Renew this long before the access token's expiresAt (it lives about 6 hours).
REFRESH_MARGIN = timedelta(minutes=5)
WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S"
# Multivende's ids are UUIDs; anything else must not reach a URL path.
PATH_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def parse_time(value) -> datetime | None:
    """Multivende's timestamps (``2026-11-20T13:07:44.905Z``) as aware datetimes; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def path_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not PATH_ID.fullmatch(value):
        raise SourceRejectedError(_("%(value)s no es un id de %(what)s de Multivende.") % {"value": repr(value), "what": what})
    return value


@dataclass(frozen=True)
class Grant:
    """What a token answer gives: the two tokens, their expiries, the merchant and the granted scopes."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime | None
    merchant_id: str
    scopes: str

    def credentials(self) -> dict:
        """The connection's credentials (stored encrypted)."""
        values = {"access_token": self.access_token, "refresh_token": self.refresh_token,
                  "access_token_expires_at": self.expires_at.isoformat(), "merchant_id": self.merchant_id}
        if self.refresh_expires_at is not None:
            values["refresh_token_expires_at"] = self.refresh_expires_at.isoformat()
        return values

    @classmethod
    def from_token(cls, token: dict) -> Grant:
        return cls(
            access_token=token["access_token"], refresh_token=token["refresh_token"],
            expires_at=datetime.fromtimestamp(token["expires_at"], UTC),
            refresh_expires_at=parse_time(token.get("refresh_token_expires_at")),
            merchant_id=token["merchant_id"], scopes=token.get("scope", ""),
        )


def _json_client_secret(client, method, uri, headers, body):
    """Multivende's token request: the grant as JSON with the app's numeric client_id and its secret."""
    grant = dict(url_decode(body or ""))
    client_id = str(client.client_id)
    payload = {"client_id": int(client_id) if client_id.isdigit() else client_id,
               "client_secret": client.client_secret, "grant_type": grant.get("grant_type")}
    for name in ("code", "refresh_token"):
        if grant.get(name):
            payload[name] = grant[name]
    headers["Content-Type"] = "application/json"
    headers["Cache-Control"] = "no-cache"
    return uri, headers, json.dumps(payload).encode()


class _Transport:
    """What authlib posts through: our HTTP base, so the token requests have its timeouts and error mapping."""

    def __init__(self, http: StoreHttpClient):
        self.http = http

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.http.request("POST", url, **kwargs)


class _OAuth2(OAuth2Client):
    client_auth_class = OAuth2ClientAuth

    def __init__(self, http: StoreHttpClient, **kwargs):
        super().__init__(_Transport(http), token_endpoint_auth_method=JSON_CLIENT_AUTH, **kwargs)
        self.register_client_auth_method((JSON_CLIENT_AUTH, _json_client_secret))
        self.http = http

    def parse_response_token(self, resp: requests.Response):
        """Multivende's answer in OAuth2 terms (``access_token``, ``expires_at``…), or why it is unusable."""
        body = self.http.json_body(resp, _("la respuesta del token"))
        body = body if isinstance(body, dict) else {}
        expires_at = parse_time(body.get("expiresAt"))
        fields = (body.get("token"), body.get("refreshToken"), body.get("MerchantId"))
        if expires_at is None or not all(isinstance(value, str) and value for value in fields):
            raise SourceTransientError(
                _("Multivende respondió HTTP %(status)s sin un token completo (token, refreshToken, expiresAt, "
                  "MerchantId): %(excerpt)s.") % {"status": resp.status_code, "excerpt": body_excerpt(resp) or _("vacía")},
                status=resp.status_code,
            )
        scopes = body.get("scopes") or ""
        self.token = {
            "access_token": body["token"], "token_type": "bearer", "refresh_token": body["refreshToken"],
            "expires_at": int(expires_at.timestamp()), "refresh_token_expires_at": body.get("refreshTokenExpiresAt"),
            "merchant_id": body["MerchantId"], "scope": " ".join(scopes) if isinstance(scopes, list) else str(scopes),
        }
        return self.token


class MultivendeOAuth(StoreHttpClient):
    """Our Multivende application: the authorize URL, the code exchange and token renewal."""

    vendor = VENDOR

    def __init__(self, *, base_url: str, client_id: str, client_secret: str, redirect_uri: str = "", scopes=()):
        super().__init__()
        if not str(client_id or "").strip() or not client_secret:
            raise SourceRejectedError(_(
                "La aplicación de Multivende no está configurada en este servidor "
                "(BMS_MULTIVENDE_CLIENT_ID / BMS_MULTIVENDE_CLIENT_SECRET)."
            ))
        self.base_url = self.checked_url(base_url, _("URL de Multivende"))
        self.client_id, self.client_secret = str(client_id).strip(), client_secret
        self.redirect_uri, self.scopes = redirect_uri, tuple(scopes)

    @classmethod
    def from_settings(cls, *, redirect_uri: str = "") -> MultivendeOAuth:
        return cls(base_url=settings.BMS_MULTIVENDE_BASE_URL, client_id=settings.BMS_MULTIVENDE_CLIENT_ID,
                   client_secret=settings.BMS_MULTIVENDE_CLIENT_SECRET, redirect_uri=redirect_uri,
                   scopes=settings.BMS_MULTIVENDE_SCOPES)

    def _oauth(self, **kwargs) -> _OAuth2:
        return _OAuth2(self, client_id=self.client_id, client_secret=self.client_secret, **kwargs)

    def authorization_url(self, *, state: str) -> str:
        url, _state = self._oauth(redirect_uri=self.redirect_uri, scope=list(self.scopes)).create_authorization_url(
            self.base_url + AUTHORIZE_PATH, state=state
        )
        return url

    @staticmethod
    def callback_code(url: str, *, state: str | None) -> str:
        """The authorization code of the callback ``url``; ``state``, when given, must be the one it carries."""
        try:
            return parse_authorization_code_response(url, state=state)["code"]
        except MissingCodeException:
            raise SourceRejectedError(_("Multivende volvió sin código de autorización.")) from None
        except MismatchingStateException:
            raise SourceRejectedError(_("El state devuelto por Multivende no corresponde a esta conexión.")) from None

    def exchange_code(self, code: str) -> Grant:
        token = self._oauth().fetch_token(self.base_url + TOKEN_PATH, grant_type="authorization_code", code=code)
        return Grant.from_token(token)

    def refresh(self, refresh_token: str) -> Grant:
        return Grant.from_token(self._oauth().refresh_token(self.base_url + TOKEN_PATH, refresh_token=refresh_token))


def access_expiring(credentials: dict) -> bool:
    """Whether the stored access token expires within ``REFRESH_MARGIN`` (False when its expiry is unknown)."""
    expires_at = parse_time(credentials.get("access_token_expires_at"))
    return expires_at is not None and expires_at - datetime.now(UTC) < REFRESH_MARGIN


def renewed_credentials(credentials: dict, *, oauth: MultivendeOAuth, on_renewed: Callable[[Grant], None] | None = None) -> dict:
    """The next token pair for ``credentials`` (called under the refresh lease), or ``SourceRejectedError``
    when it cannot be had: no refresh token, or one past its expiry (Multivende's lasts about 48 hours)."""
    refresh_token = credentials.get("refresh_token")
    if not refresh_token:
        raise SourceRejectedError(_("La conexión de Multivende no tiene token de renovación."))
    refresh_expires = parse_time(credentials.get("refresh_token_expires_at"))
    if refresh_expires is not None and refresh_expires <= datetime.now(UTC):
        raise SourceRejectedError(
            _("la autorización de Multivende venció el %(when)s UTC (el token de renovación "
              "dura unas 48 horas sin usarse).") % {"when": f"{refresh_expires:%Y-%m-%d %H:%M}"}
        )
    grant = oauth.refresh(refresh_token)
    if on_renewed is not None:
        on_renewed(grant)
    # The merchant is the one authorized; a refresh answer never moves the connection to another.
    return {**grant.credentials(), "merchant_id": credentials.get("merchant_id") or grant.merchant_id}


class MultivendeClient(StoreHttpClient):
    """One merchant's Multivende API, with its tokens renewed as needed and its calls paced."""

    vendor = VENDOR

    def __init__(self, connection, *, on_renewed: Callable[[Grant], None] | None = None):
        super().__init__()
        self.connection = connection
        self.on_renewed = on_renewed
        self.base_url = api_base_url(self, connection.store_url)
        credentials = connection.credentials or {}
        if not credentials.get("access_token") or not credentials.get("merchant_id"):
            raise SourceRejectedError(_("La conexión de Multivende no está autorizada: use «Conectar con Multivende»."))
        self.requests_sent = 0

    @property
    def merchant_id(self) -> str:
        return path_id(self.connection.credentials["merchant_id"], _("cuenta (MerchantId)"))

    # --- the API ---------------------------------------------------------------------------------

    def info(self) -> dict:
        return self._json("GET", "/api/d/info", _("la información de la cuenta"))

    def checkouts_light(self, *, page: int, start: datetime, end: datetime) -> dict:
        """One page of the checkouts updated in [start, end] (at most 2 hours apart)."""
        params = {"_updated_at_from": start.astimezone(UTC).strftime(WINDOW_FORMAT),
                  "_updated_at_to": end.astimezone(UTC).strftime(WINDOW_FORMAT)}
        return self._json("GET", f"/api/m/{self.merchant_id}/checkouts/light/p/{int(page)}", _("la lista de ventas"), params=params)

    def checkout(self, checkout_id: str, *, renew_on_denied: bool = True) -> dict:
        """The full checkout. ``renew_on_denied=False`` for ids named by someone else (a webhook hint):
        a 403 then stays a 403 rather than rotating the merchant's tokens for each forged id."""
        return self._json("GET", f"/api/checkouts/{path_id(checkout_id, _('venta'))}", _("la venta"), renew_on_denied=renew_on_denied)

    def document_create(self, checkout_id: str, body: dict) -> dict:
        """Creates the billing document record on the checkout; returns it (with its ``_id``)."""
        response = self._call("POST", f"/api/checkouts/{path_id(checkout_id, _('venta'))}/electronic-billing-documents", json=body)
        try:
            created = response.json()
        except ValueError:
            created = None
        if isinstance(created, dict) and isinstance(created.get("_id"), str) and PATH_ID.fullmatch(created["_id"]):
            return created
        raise SourceTransientError(
            _("Multivende respondió HTTP %(status)s sin confirmar el documento creado (respuesta: "
              "%(excerpt)s); pudo haberse escrito: revise la venta antes de reintentar.") % {
                "status": response.status_code, "excerpt": body_excerpt(response) or _("vacía")},
            status=response.status_code,
        )

    def document_upload(self, document_id: str, *, filename: str, pdf: bytes) -> dict:
        """Uploads the PDF to a billing document; the answer's body is not documented (a 2xx is success)."""
        response = self._call("POST", f"/api/electronic-billing-documents/{path_id(document_id, _('documento'))}/upload",
                              files={"file": (filename, pdf, "application/pdf")})
        try:
            answer = response.json()
        except ValueError:
            answer = None
        return answer if isinstance(answer, dict) else {}

    # --- plumbing --------------------------------------------------------------------------------

    def _json(self, method: str, path: str, what: str, *, renew_on_denied: bool = True, **kwargs) -> dict:
        response = self._call(method, path, renew_on_denied=renew_on_denied, **kwargs)
        body = self.json_body(response, what)
        if not isinstance(body, dict):
            raise SourceTransientError(_("Multivende respondió HTTP %(status)s pero %(what)s no es un objeto JSON.") % {
                "status": response.status_code, "what": what}, status=response.status_code)
        return body

    def _call(self, method: str, path: str, *, renew_on_denied: bool = True, **kwargs) -> requests.Response:
        credentials = self.connection.credentials or {}
        token = credentials["access_token"]
        if access_expiring(credentials):
            token = self._renew(access_expiring)
        try:
            return self._send(method, path, token, **kwargs)
        except SourceRejectedError as exc:
            if exc.status not in (401, 403) or self.connection.pk is None or not renew_on_denied:
                raise
        # Once: renewed unless another worker already did, then the same call again.
        stale = token
        return self._send(method, path, self._renew(lambda stored: stored.get("access_token") == stale), **kwargs)

    def _send(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        ratelimit.wait_turn(self.merchant_id)
        self.requests_sent += 1
        try:
            return self.request(method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except SourceRejectedError as exc:
            if exc.status == 403 and "rate limit" in exc.body.lower():
                raise SourceTransientError(_("Multivende limitó las solicitudes (HTTP 403: %(detail)s).") % {"detail": exc.body},
                                           status=403,
                                           body=exc.body, retry_after="1") from exc
            raise

    def _renew(self, needs_refresh: Callable[[dict], bool]) -> str:
        # Imported here: sources.services imports the registry, which imports this package.
        from ..services import credentials_refresh

        if self.connection.pk is None:
            raise SourceRejectedError(_("El token de Multivende venció y esta conexión no está guardada para renovarlo."))
        oauth = MultivendeOAuth.from_settings()
        self.connection = credentials_refresh(
            connection=self.connection, needs_refresh=needs_refresh,
            refresh=lambda credentials: renewed_credentials(credentials, oauth=oauth, on_renewed=self.on_renewed),
        )
        return self.connection.credentials["access_token"]


def api_base_url(client: StoreHttpClient, store_url: str) -> str:
    """The configured Multivende address; a connection that names another one is refused."""
    configured = client.checked_url(settings.BMS_MULTIVENDE_BASE_URL, _("URL de Multivende"))
    if not store_url:
        return configured
    named = client.checked_url(store_url, _("dirección de la conexión"))
    if named != configured:
        raise SourceRejectedError(
            _("La conexión apunta a %(named)s, que no es la dirección de Multivende de este servidor (%(configured)s): "
              "vuelva a conectar con Multivende.") % {"named": named, "configured": configured}
        )
    return configured
