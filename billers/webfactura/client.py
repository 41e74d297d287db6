"""The only code that speaks HTTP to webFactura: OAuth2 client credentials and ``sendDTEJson``.

webFactura publishes no API documentation. The one public client found is unofficial
(``nicolasjelincictimark/webfacturafastapi`` @ 5c563c5; reference/biller-webfactura.md):

- Token: ``GET {base}/oauth/v2/token?client_id=…&client_secret=…&grant_type=client_credentials``,
  answer JSON ``access_token`` (``app/api/auth.py``). The path is FOSOAuthServerBundle's, which also takes
  the same fields as a POST form (RFC 6749 §4.4), so ``token_method`` may be ``post``; ``expires_in`` is
  read when present (FOSOAuthServerBundle answers it), else one hour, that bundle's default lifetime.
- Documents: ``POST {base}/api/v3/pos/dte/sendDTEJson.json`` with ``Authorization: Bearer <token>`` and
  the JSON envelope ``{"DteSend": {"Dte": [...]}}`` (``app/api/dte.py``, ``app/models/dte_model.py``).
- Base URLs: ``https://api.webfactura.cl`` (production) and ``https://api-qa.webfactura.cl`` (QA, at that
  repository's commit 3667664).

The token cache. Tokens are kept process-wide, keyed by the connection (its id, the token URL, the
client id and a hash of the secret, so new credentials never reuse an old token), until a minute before
they expire, and fetched under a per-key lock so a burst of workers' threads asks for one token, not
one each. A process lock is enough because client credentials do not rotate: any number of valid
tokens for one client may coexist, fetching one consumes nothing, so two processes (or hosts) that
each fetch their own never invalidate each other, unlike rotating refresh tokens, which need the
database lease ``sources.services.credentials_refresh`` takes. A 401 on a document drops the cached
token and the call is made once more with a new one (a 401 means webFactura did not process the
request, so sending it again cannot issue twice); a second 401 is a rejection.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.utils.translation import gettext as _

from billmysales.integrations.http import body_excerpt

from ..base import RejectedBillerError, TransientBillerError
from ..http import BillerHttpClient

PRODUCTION_URL = "https://api.webfactura.cl"
QA_URL = "https://api-qa.webfactura.cl"
TOKEN_PATH = "/oauth/v2/token"
SEND_PATH = "/api/v3/pos/dte/sendDTEJson.json"
# Seconds a token is assumed to live when the answer does not say (FOSOAuthServerBundle's default),
# and how long before its expiry it is replaced.
DEFAULT_TOKEN_TTL = 3600
EXPIRY_MARGIN = 60


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


_tokens: dict[tuple, _Token] = {}
_locks: dict[tuple, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(key: tuple) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class WebFacturaRefusal(RejectedBillerError):
    """A 4xx from webFactura, with the OAuth ``error`` code of its body when it sends one (``body`` holds
    its ``error_description``)."""

    def __init__(self, message: str, *, error: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.error = error


def _oauth_error(response: requests.Response) -> tuple[str, str]:
    """(``error``, ``error_description``) of an OAuth-style error body, as FOSOAuthServerBundle sends them."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return "", body_excerpt(response)
    return str(data.get("error") or ""), str(data.get("error_description") or data.get("message") or body_excerpt(response))


class WebFacturaClient(BillerHttpClient):
    vendor = "webFactura"

    def __init__(self, *, base_url: str, client_id: str, client_secret: str, connection_id: Any = None, token_method: str = "get"):
        super().__init__()
        self.base_url = self.checked_url(base_url, _("URL de la API"))
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_method = token_method
        secret_hash = hashlib.sha256(client_secret.encode()).hexdigest()
        self.cache_key = (connection_id, self.base_url + TOKEN_PATH, client_id, secret_hash)

    # --- the token -------------------------------------------------------------------------------

    def access_token(self, *, replacing: str | None = None) -> str:
        """A valid token: the cached one, or a new one. ``replacing``: the token webFactura just refused,
        which is never handed out again (another thread may have replaced it already)."""
        with _lock_for(self.cache_key):
            cached = _tokens.get(self.cache_key)
            if cached is not None and cached.value != replacing and cached.expires_at - EXPIRY_MARGIN > time.time():
                return cached.value
            token = self._fetch_token()
            _tokens[self.cache_key] = token
            return token.value

    def token_lifetime(self) -> int:
        """Seconds the cached token has left (``test_connection`` reports it)."""
        cached = _tokens.get(self.cache_key)
        return max(0, int(cached.expires_at - time.time())) if cached else 0

    def _fetch_token(self) -> _Token:
        fields = {"client_id": self.client_id, "client_secret": self.client_secret, "grant_type": "client_credentials"}
        url = self.base_url + TOKEN_PATH
        try:
            if self.token_method == "post":
                response = self.request("POST", url, data=fields)
            else:
                response = self.request("GET", url, params=fields)
        except WebFacturaRefusal as exc:
            raise self._token_refusal(exc) from exc
        data = self.json_body(response, _("la respuesta del token"))
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise TransientBillerError(_("webFactura respondió al pedido de token sin access_token."), status=response.status_code)
        try:
            ttl = int(data.get("expires_in") or DEFAULT_TOKEN_TTL)
        except (TypeError, ValueError):
            ttl = DEFAULT_TOKEN_TTL
        return _Token(token, time.time() + ttl)

    @staticmethod
    def _token_refusal(exc: WebFacturaRefusal) -> RejectedBillerError:
        error, description = exc.error, exc.body
        if error in ("invalid_client", "unauthorized_client") or exc.status == 401:
            message = _("webFactura no aceptó el client_id y client_secret de la conexión (%(error)s: %(detail)s). "
                        "Revíselos con webFactura y guárdelos de nuevo.") % {
                "error": error or f"HTTP {exc.status}", "detail": description}
        elif error in ("unsupported_grant_type", "invalid_grant", "invalid_scope"):
            message = _("webFactura no entrega tokens de tipo client_credentials a este cliente (%(error)s: %(detail)s): "
                        "pida a webFactura un cliente OAuth para su API.") % {"error": error, "detail": description}
        else:
            message = _("webFactura rechazó el pedido de token (HTTP %(status)s%(code)s): %(detail)s") % {
                "status": exc.status, "code": f", {error}" if error else "", "detail": description}
        return RejectedBillerError(message, status=exc.status, body=exc.body)

    def checked(self, response: requests.Response) -> requests.Response:
        try:
            return super().checked(response)
        except RejectedBillerError as exc:
            error, description = _oauth_error(response)
            raise WebFacturaRefusal(exc.message, error=error, status=exc.status, body=description) from None

    # --- documents -------------------------------------------------------------------------------

    def send_dte(self, envelope: dict) -> dict:
        """Posts ``{"DteSend": {"Dte": [...]}}``; returns webFactura's answer (a JSON object)."""
        token = self.access_token()
        try:
            response = self._post_dte(envelope, token)
        except WebFacturaRefusal as exc:
            if exc.status != 401:
                raise self._document_refusal(exc) from exc
            # Expired or revoked: one new token, one more try; 401 means nothing was processed.
            token = self.access_token(replacing=token)
            try:
                response = self._post_dte(envelope, token)
            except WebFacturaRefusal as again:
                if again.status == 401:
                    raise RejectedBillerError(
                        _("webFactura rechazó un token recién emitido (HTTP 401: %(detail)s): revise que el "
                          "cliente OAuth de la conexión tenga acceso a la emisión de documentos.") % {"detail": again.body},
                        status=401, body=again.body,
                    ) from again
                raise self._document_refusal(again) from again
        data = self.json_body(response, _("la respuesta del envío"))
        if not isinstance(data, dict):
            raise TransientBillerError(_("webFactura respondió el envío con un JSON que no es un objeto."), status=response.status_code)
        return data

    def _post_dte(self, envelope: dict, token: str) -> requests.Response:
        return self.request("POST", self.base_url + SEND_PATH, json=envelope, headers={"Authorization": f"Bearer {token}"})

    @staticmethod
    def _document_refusal(exc: WebFacturaRefusal) -> RejectedBillerError:
        code = f", {exc.error}" if exc.error else ""
        return RejectedBillerError(_("webFactura rechazó el documento (HTTP %(status)s%(code)s): %(detail)s") % {
            "status": exc.status, "code": code, "detail": exc.body or exc.message}, status=exc.status, body=exc.body)

    def download(self, url: str) -> bytes:
        """A file webFactura links to in its answer (``UrlPdf``/``UrlXml``); sent without our token."""
        return self.request("GET", self.checked_url(url, _("dirección del archivo"))).content
