"""The only code that speaks HTTP to a WooCommerce store: its REST API v3, with the store's REST keys.

Sources: the REST API docs (woocommerce/woocommerce-rest-api-docs, ``source/includes/wp-api-v3/``,
rendered at https://woocommerce.github.io/woocommerce-rest-api-docs/) and WooCommerce core
(``includes/rest-api/Controllers/Version3/class-wc-rest-crud-controller.php``, the v2 orders controller,
``class-wc-webhook.php``).

- Authentication ("Authentication over HTTPS", ``_authentication.md``): HTTP Basic Auth with the consumer
  key as user name and the consumer secret as password. Over plain HTTP the docs require OAuth 1.0a
  signatures, which this client does not do, so an ``http://`` store URL is refused before any request
  rather than sending the keys in clear. Some servers drop the ``Authorization`` header; the docs' fix is
  to send ``consumer_key``/``consumer_secret`` as query parameters (``query_string_auth``). The symptom is
  a 401 that reads as if no key was sent: current core answers ``woocommerce_rest_cannot_view`` ("Sorry,
  you cannot list resources."), older versions and the docs "Consumer key is missing". That 401 is raised
  as ``AuthorizationHeaderDropped`` with the fix in Spanish (the same answer also comes when the key's
  WordPress user lost its permissions, and the message says so too).
- Orders ("List all orders", ``_orders.md``): ``GET orders`` with ``modified_after``/``modified_before``
  and ``dates_are_gmt=true``, ``per_page`` up to 100 (the CRUD controller's maximum), ``page``; the number
  of pages comes in ``X-WP-TotalPages``. ``orderby=modified`` is accepted by current core (the CRUD
  controller's enum) but not listed in the docs (``date, id, include, title, slug``): an older store
  answers 400 ``rest_invalid_param`` naming ``orderby``, raised as ``OrderbyRefused`` so the poller can
  fall back to ``date``.
- Webhooks (``_webhooks.md``): ``GET webhooks`` (paged like orders), ``POST webhooks`` with ``name``,
  ``topic``, ``delivery_url``, ``secret`` and ``status``, ``PUT webhooks/<id>``. The docs mark ``secret``
  write-only, so a webhook read back may not show it.
- Writing the issued document back ("Create an order note", ``_order-notes.md``): ``POST
  orders/<id>/notes`` with ``{"note": ..., "customer_note": false}``; ``customer_note`` false makes it a
  private note, "for admin reference only", so the buyer is not notified. The answer is the note, with
  its ``id``.

Choices, where the docs leave it to us (each in ``connection.config``):

- ``query_string_auth`` (default false): opt-in, because query strings end up in server logs; the
  wc-auth connect flow turns it on by itself when it sees the symptom and the query-string call works.
- ``rest_prefix`` (default ``wp-json``): the docs assume ``<site>/wp-json/``; WordPress lets a site
  change that prefix, which the docs do not cover.
- The note is plain text: one line for people, then the PDF link when there is one, then the same
  data as JSON after a fixed ``billmysales:dte`` prefix so a program can find it. The docs say nothing
  about how note text is formatted or filtered, so nothing here relies on HTML.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from django.utils.translation import gettext as _

from billmysales.integrations.http import body_excerpt

from ..base import IssuedDocumentInfo
from ..errors import SourceRejectedError, SourceTransientError
from ..http import StoreHttpClient, order_path_id

DATA_PREFIX = "billmysales:dte"
PER_PAGE = 100  # the REST API's maximum (WC_REST_CRUD_Controller::get_collection_params)
# Pages of webhooks read at most: a store with more than 2,000 webhooks is not a store we can reason about.
MAX_WEBHOOK_PAGES = 20
UNAUTHENTICATED_MESSAGES = ("consumer key is missing",)


class AuthorizationHeaderDropped(SourceRejectedError):
    """A 401 that reads as if the request carried no key: the server probably drops the Authorization header."""


class OrderbyRefused(SourceRejectedError):
    """The store does not know ``orderby=modified`` (versions before it joined the CRUD controller's enum)."""


@dataclass(frozen=True)
class OrdersPage:
    orders: list[dict]
    total_pages: int | None  # None when the store (or a proxy) did not send X-WP-TotalPages
    total: int | None


def note_text(document: IssuedDocumentInfo) -> str:
    lines = [document.note]
    if document.pdf_url:
        lines.append(f"PDF: {document.pdf_url}")
    lines.append(f"{DATA_PREFIX} {json.dumps(document.as_data(), ensure_ascii=False)}")
    return "\n".join(lines)


def gmt(moment: datetime) -> str:
    """A moment as the REST API reads it with ``dates_are_gmt=true``: UTC, to the second, no offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _header_int(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


class WooCommerceClient(StoreHttpClient):
    vendor = "WooCommerce"

    def __init__(self, *, store_url: str, consumer_key: str, consumer_secret: str,
                 query_string_auth: bool = False, rest_prefix: str = "wp-json",
                 timeout: tuple[float, float] | None = None):
        super().__init__()
        self.store_url = self.checked_url(store_url, _("URL de la tienda"))
        self.api_url = f"{self.store_url}/{rest_prefix.strip('/')}/wc/v3"
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.query_string_auth = query_string_auth
        self.rest_prefix = rest_prefix
        if timeout is not None:
            self.timeout = timeout

    @classmethod
    def for_connection(cls, connection) -> WooCommerceClient:
        """Built from the tenant's connection; refuses before any request when it cannot authenticate."""
        credentials = connection.credentials or {}
        missing = [name for name in ("consumer_key", "consumer_secret") if not credentials.get(name)]
        if missing:
            raise SourceRejectedError(
                _("La conexión de WooCommerce no tiene %(fields)s: sin las claves de la API REST no se "
                  "pueden leer órdenes ni escribir en la tienda. Conecte la tienda con «Conectar WooCommerce» o "
                  "pegue las claves.") % {"fields": _(" ni ").join(missing)}
            )
        config = connection.config or {}
        return cls(
            store_url=connection.store_url, consumer_key=credentials["consumer_key"],
            consumer_secret=credentials["consumer_secret"],
            query_string_auth=bool(config.get("query_string_auth", False)),
            rest_prefix=config.get("rest_prefix", "wp-json"),
        )

    def with_query_string_auth(self) -> WooCommerceClient:
        return type(self)(store_url=self.store_url, consumer_key=self.consumer_key,
                          consumer_secret=self.consumer_secret, query_string_auth=True,
                          rest_prefix=self.rest_prefix, timeout=self.timeout)

    def _auth(self) -> dict:
        if self.query_string_auth:
            return {"params": {"consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret}}
        return {"auth": (self.consumer_key, self.consumer_secret)}

    def _call(self, method: str, path: str, *, params: dict | None = None, **kwargs) -> requests.Response:
        auth = self._auth()
        query = {**(params or {}), **auth.pop("params", {})}
        return self.request(method, f"{self.api_url}/{path}", params=query or None, **auth, **kwargs)

    def checked(self, response: requests.Response) -> requests.Response:
        if response.status_code == 401 and not self.query_string_auth and self._reads_unauthenticated(response):
            excerpt = body_excerpt(response)
            # Short and fix first: the connection's status line holds 300 characters.
            raise AuthorizationHeaderDropped(
                _("WooCommerce no reconoció las claves (HTTP 401: %(detail)s). El servidor probablemente borra la cabecera "
                  "Authorization: active «Enviar las claves en la URL» en la conexión (o revise los permisos del usuario "
                  "dueño de las claves).") % {"detail": excerpt},
                status=401, body=excerpt,
            )
        return super().checked(response)

    @staticmethod
    def _reads_unauthenticated(response: requests.Response) -> bool:
        try:
            body = response.json()
        except ValueError:
            return False
        if not isinstance(body, dict):
            return False
        code, message = str(body.get("code") or ""), str(body.get("message") or "").lower()
        return code.startswith("woocommerce_rest_cannot_") or any(text in message for text in UNAUTHENTICATED_MESSAGES)

    def _json_list(self, response: requests.Response, what: str) -> list[dict]:
        body = self.json_body(response, what)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise SourceTransientError(
                _("WooCommerce respondió HTTP %(status)s pero %(what)s no es una lista de objetos "
                  "(¿una página de un proxy o de un plugin?).") % {"status": response.status_code, "what": what},
                status=response.status_code,
            )
        return body

    # --- orders ----------------------------------------------------------------------------------

    def orders_page(self, *, modified_after: datetime, modified_before: datetime | None = None, page: int = 1,
                    orderby: str = "modified", order: str = "desc", per_page: int = PER_PAGE) -> OrdersPage:
        """One page of the orders modified in the window (exclusive bounds, as the REST API applies them)."""
        params = {"modified_after": gmt(modified_after), "dates_are_gmt": "true", "per_page": per_page,
                  "page": page, "orderby": orderby, "order": order}
        if modified_before is not None:
            params["modified_before"] = gmt(modified_before)
        try:
            response = self._call("GET", "orders", params=params)
        except SourceRejectedError as exc:
            if exc.status == 400 and "orderby" in (exc.body or "") and orderby != "date":
                raise OrderbyRefused(exc.message, status=exc.status, body=exc.body) from None
            raise
        return OrdersPage(self._json_list(response, _("la lista de órdenes")), _header_int(response, "X-WP-TotalPages"),
                          _header_int(response, "X-WP-Total"))

    def latest_orders(self, count: int = 1) -> list[dict]:
        """The most recent orders (one REST call): proves the keys read orders."""
        response = self._call("GET", "orders", params={"per_page": count})
        return self._json_list(response, _("la lista de órdenes"))

    # --- webhooks --------------------------------------------------------------------------------

    def webhooks(self) -> list[dict]:
        """Every webhook of the store (all statuses), following X-WP-TotalPages."""
        found: list[dict] = []
        for page in range(1, MAX_WEBHOOK_PAGES + 1):
            response = self._call("GET", "webhooks", params={"per_page": PER_PAGE, "page": page})
            batch = self._json_list(response, _("la lista de webhooks"))
            found.extend(batch)
            pages = _header_int(response, "X-WP-TotalPages")
            if (pages is not None and page >= pages) or (pages is None and len(batch) < PER_PAGE) or not batch:
                break
        return found

    def webhook_create(self, *, name: str, topic: str, delivery_url: str, secret: str) -> dict:
        response = self._call("POST", "webhooks", json={"name": name, "topic": topic, "delivery_url": delivery_url,
                                                        "secret": secret, "status": "active"})
        return self.created_object(response)

    def webhook_update(self, webhook_id: int, **fields) -> dict:
        response = self._call("PUT", f"webhooks/{int(webhook_id)}", json=fields)
        return self.created_object(response)

    # --- write-back ------------------------------------------------------------------------------

    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Adds a private note about the document to the order; returns what was written, with the note's id."""
        order_id = order_path_id(self.vendor, document.order_external_id)
        response = self._call("POST", f"orders/{order_id}/notes",
                              json={"note": note_text(document), "customer_note": False})
        note = self.created_object(response)
        return _("Nota privada en la orden %(order)s de WooCommerce (nota %(note)s)") % {"order": order_id, "note": note["id"]}
