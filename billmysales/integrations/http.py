"""The HTTP base every vendor client shares, stores and billers alike.

Only the vendors' ``client.py`` modules build on this, and they are the only code that speaks HTTP to
a vendor. Choices:

- Every request has a timeout (5 s to connect, 15 s to read unless the client says otherwise): a hung
  vendor must not hold a worker.
- Redirects are never followed. A vendor URL that redirects (http → https, a custom domain → the
  shop's own) is a misconfigured connection, and following it would resend the credentials wherever
  it points (and turn a POST into a GET); it is reported as a rejection naming the target.
- Only GETs are retried (urllib3 ``Retry``, on connection errors and 500/502/503/504). Writes go through
  a session without retries: a write that timed out may have been applied, and sending it again could
  issue or write twice. 429 is not retried here either, because a Retry-After can be long and the
  worker must not sleep through it; it surfaces as a transient error with the Retry-After.
- Failures are mapped here, once: timeouts, connection errors, 5xx and 429 → the client's
  ``transient_error``; 4xx and 3xx → its ``rejected_error``; both carry the status and a short excerpt
  of the body. Messages name the host, never the URL, which may carry query-string credentials.
- Credentials only ever travel over HTTPS. Plain ``http://`` is allowed only to hosts listed in the
  setting ``BMS_INSECURE_HOSTS`` (loopback in the demo and the tests, empty in production), so the
  local simulators can be reached.
- Sessions are kept per thread and per client class, so a worker reuses its TLS connections to a
  vendor instead of opening one per call.
"""
from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import IntegrationError, RejectedError, TransientError

USER_AGENT = "BillMySales/1.0 (+https://billmysales.cl)"
TIMEOUT = (5, 15)
EXCERPT_CHARS = 300
_local = threading.local()


def insecure_hosts() -> frozenset[str]:
    return frozenset(host.strip().lower() for host in settings.BMS_INSECURE_HOSTS if host.strip())


def url_problem(url: str) -> str | None:
    """Why credentials may not be sent to ``url`` (in Spanish), or None when they may."""
    parts = urlsplit(url or "")
    if not parts.hostname or parts.scheme not in ("https", "http"):
        return _("%(url)s no es una dirección web completa (https://…).") % {"url": repr(url)}
    if parts.username or parts.password:
        return _("la dirección no puede llevar usuario ni contraseña; use los campos de credenciales.")
    if parts.scheme == "http" and parts.hostname.lower() not in insecure_hosts():
        return _("debe ser https://…, no %(url)s: las credenciales solo viajan cifradas.") % {"url": repr(url)}
    return None


def body_excerpt(response: requests.Response) -> str:
    """What the vendor said, short: its JSON error text when it sends one (Shopify ``errors``,
    WordPress ``message``, LibreDTE's bare JSON string), otherwise the start of the body."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, str):
        detail = data
    elif isinstance(data, dict):
        detail = data.get("errors") or data.get("message") or data.get("error")
    else:
        detail = None
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False)
    text = " ".join((detail or response.text or "").split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def _read_retry() -> Retry:
    return Retry(
        total=3, connect=3, read=2, status=2, backoff_factor=0.5,
        status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=False, raise_on_status=False,
    )


def _new_session(retries: Retry | None) -> requests.Session:
    session = requests.Session()
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    # Proxies and .netrc from the environment must not redirect or authenticate vendor calls.
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=retries if retries is not None else 0, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _session(kind: str) -> requests.Session:
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    session = sessions.get(kind)
    if session is None:
        session = sessions[kind] = _new_session(_read_retry() if kind == "read" else None)
    return session


class VendorHttpClient:
    """Base of every vendor client: ``request`` sends, turns every failure into the client's own error
    classes and returns only 2xx responses; ``json_body`` reads a 2xx answer or says it cannot."""

    vendor: str
    transient_error: type[IntegrationError] = TransientError
    rejected_error: type[IntegrationError] = RejectedError
    timeout: tuple[float, float] = TIMEOUT

    def checked_url(self, url: str, what: str = "URL") -> str:
        """``url`` without a trailing slash, or the rejection that stops credentials going there (``what``
        names it, translated: "URL de la API")."""
        problem = url_problem(url)
        if problem:
            raise self.rejected_error(_("La %(what)s de %(vendor)s no sirve: %(problem)s") % {
                "what": what, "vendor": self.vendor, "problem": problem})
        return url.rstrip("/")

    def request(self, method: str, url: str, *, timeout: tuple[float, float] | None = None, **kwargs) -> requests.Response:
        session = _session("read" if method == "GET" else "write")
        host = urlsplit(url).hostname
        try:
            response = session.request(method, url, timeout=timeout or self.timeout, allow_redirects=False, **kwargs)
        except requests.Timeout as exc:
            raise self.transient_error(_("%(vendor)s (%(host)s) no respondió a tiempo (%(error)s).") % {
                "vendor": self.vendor, "host": host, "error": type(exc).__name__}) from exc
        except requests.ConnectionError as exc:
            raise self.transient_error(_("No se pudo conectar con %(vendor)s (%(host)s): %(error)s.") % {
                "vendor": self.vendor, "host": host, "error": type(exc).__name__}) from exc
        except requests.RequestException as exc:
            raise self.rejected_error(_("No se pudo enviar la solicitud a %(vendor)s (%(host)s): %(error)s.") % {
                "vendor": self.vendor, "host": host, "error": type(exc).__name__}) from exc
        return self.checked(response)

    def checked(self, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status < 300:
            return response
        excerpt = body_excerpt(response)
        if status == 429:
            retry_after = response.headers.get("Retry-After", "")
            wait = f"; Retry-After: {retry_after}" if retry_after else ""
            raise self.transient_error(
                _("%(vendor)s limitó las solicitudes (HTTP 429)%(wait)s.") % {"vendor": self.vendor, "wait": wait},
                status=status, retry_after=retry_after,
            )
        values = {"vendor": self.vendor, "status": status, "excerpt": excerpt}
        if status >= 500:
            raise self.transient_error(_("%(vendor)s falló (HTTP %(status)s): %(excerpt)s") % values, status=status, body=excerpt)
        if status >= 400:
            raise self.rejected_error(_("%(vendor)s rechazó la solicitud (HTTP %(status)s): %(excerpt)s") % values,
                                      status=status, body=excerpt)
        location = response.headers.get("Location", "")
        raise self.rejected_error(
            _("%(vendor)s redirigió la solicitud (HTTP %(status)s) a %(location)s: revise la URL configurada.") % {
                "vendor": self.vendor, "status": status, "location": location or _("otra dirección")},
            status=status, body=excerpt,
        )

    def json_body(self, response: requests.Response, what: str | None = None) -> Any:
        """The JSON of a 2xx answer. An unreadable one (an HTML page, a PHP warning before the JSON)
        leaves the outcome unknown, so it is transient: the caller looks up what happened before
        doing anything again. ``what`` names the answer, translated ("la respuesta" by default)."""
        try:
            return response.json()
        except ValueError:
            raise self.transient_error(
                _("%(vendor)s respondió HTTP %(status)s pero %(what)s no es JSON legible (%(excerpt)s).") % {
                    "vendor": self.vendor, "status": response.status_code, "what": what or _("la respuesta"),
                    "excerpt": body_excerpt(response) or _("vacía")},
                status=response.status_code,
            ) from None
