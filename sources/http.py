"""The HTTP base every store client shares, and what a write-back says about an issued document.

Only ``sources/<platform>/client.py`` builds on this, and those clients are the only code that speaks
HTTP to a store. Choices:

- Every request has a timeout (5 s to connect, 15 s to read): a hung store must not hold a worker.
- Redirects are never followed. A store URL that redirects (http → https, a custom domain → the shop's
  own) is a misconfigured connection, and following it would resend the credentials wherever it points
  (and turn a POST into a GET); it is reported as a rejection naming the target.
- Only GETs are retried (urllib3 ``Retry``, on connection errors and 500/502/503/504). Writes go through
  a session without retries: a write that timed out may have been applied, and sending it again would
  write the document twice. 429 is not retried here either, because a Retry-After can be long and the
  worker must not sleep through it; it surfaces as ``SourceTransientError`` with the Retry-After.
- Failures are mapped here, once: timeouts, connection errors, 5xx and 429 → ``SourceTransientError``;
  4xx and 3xx → ``SourceRejectedError``; both carry the status and a short excerpt of the body.
  Messages never include the request URL, which may carry query-string credentials (WooCommerce).
"""
import json
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import SourceRejectedError, SourceTransientError

USER_AGENT = "BillMySales/1.0"
TIMEOUT = (5, 15)
EXCERPT_CHARS = 300



def _session(retries: Retry | None) -> requests.Session:
    session = requests.Session()
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    if retries is not None:
        adapter = HTTPAdapter(max_retries=retries)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    return session


def _read_retry() -> Retry:
    return Retry(
        total=3, connect=3, read=2, status=2, backoff_factor=0.5,
        status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=False, raise_on_status=False,
    )


def body_excerpt(response: requests.Response) -> str:
    """What the store said, short: its JSON error text when it sends one (Shopify ``errors``,
    WordPress ``message``), otherwise the start of the body, whitespace collapsed."""
    try:
        data = response.json()
    except ValueError:
        data = None
    detail = (data.get("errors") or data.get("message")) if isinstance(data, dict) else None
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False)
    text = " ".join((detail or response.text).split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def order_path_id(vendor: str, external_id: str) -> str:
    """The order id as it goes into a URL path: both stores number orders with integers, and anything
    else would change the path it is put into."""
    if not (external_id.isascii() and external_id.isdigit()):
        raise SourceRejectedError(f"La orden {external_id!r} no tiene un id numérico de {vendor}.")
    return external_id


def https_base_url(vendor: str, store_url: str) -> str:
    """The connection's store URL without a trailing slash; credentials only ever go over HTTPS."""
    parts = urlsplit(store_url or "")
    if parts.scheme != "https" or not parts.hostname:
        raise SourceRejectedError(f"La URL de la tienda {vendor} debe ser https://…, no {store_url!r}.")
    return store_url.rstrip("/")


class StoreHttpClient:
    """Base of the store clients: ``request`` sends, turns every failure into a ``SourceError`` and
    returns only 2xx responses; ``created_object`` reads what a write created."""

    vendor: str

    def __init__(self) -> None:
        self._reads = _session(_read_retry())
        self._writes = _session(None)

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        session = self._reads if method == "GET" else self._writes
        host = urlsplit(url).hostname
        try:
            response = session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
        except requests.Timeout as exc:
            raise SourceTransientError(f"{self.vendor} ({host}) no respondió a tiempo ({type(exc).__name__}).") from exc
        except requests.ConnectionError as exc:
            raise SourceTransientError(f"No se pudo conectar con {self.vendor} ({host}): {type(exc).__name__}.") from exc
        except requests.RequestException as exc:
            raise SourceRejectedError(f"No se pudo enviar la solicitud a {self.vendor} ({host}): {type(exc).__name__}.") from exc
        return self._checked(response)

    def _checked(self, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status < 300:
            return response
        excerpt = body_excerpt(response)
        if status == 429:
            retry_after = response.headers.get("Retry-After", "")
            wait = f"; Retry-After: {retry_after}" if retry_after else ""
            raise SourceTransientError(
                f"{self.vendor} limitó las solicitudes (HTTP 429){wait}.", status=status, retry_after=retry_after
            )
        if status >= 500:
            raise SourceTransientError(f"{self.vendor} falló (HTTP {status}): {excerpt}", status=status)
        if status >= 400:
            raise SourceRejectedError(f"{self.vendor} rechazó la solicitud (HTTP {status}): {excerpt}", status=status, body=excerpt)
        location = response.headers.get("Location", "")
        raise SourceRejectedError(
            f"{self.vendor} redirigió la solicitud (HTTP {status}) a {location or 'otra dirección'}: revise la URL de la tienda.",
            status=status, body=excerpt,
        )

    def created_object(self, response: requests.Response, *, field: str | None = None) -> dict:
        """The object a 2xx write answered with (``body[field]`` when the store wraps it), with its ``id``.

        Anything else (an HTML page, a PHP warning before the JSON, JSON without the object) leaves the
        write unconfirmed: the 2xx says it was probably applied, the body cannot prove it. That raises
        ``SourceTransientError`` rather than passing as done, because a write recorded as done that never
        happened is lost silently, while a failure says to check the order before writing again."""
        try:
            body = response.json()
        except ValueError:
            body = None
        created = body.get(field) if field and isinstance(body, dict) else body
        if isinstance(created, dict) and created.get("id") is not None:
            return created
        raise SourceTransientError(
            f"{self.vendor} respondió HTTP {response.status_code} sin confirmar lo creado "
            f"(respuesta: {body_excerpt(response) or 'vacía'}); pudo haberse escrito: revise la orden antes de reintentar.",
            status=response.status_code,
        )
