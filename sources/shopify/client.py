"""The only code that speaks HTTP to Shopify: the OAuth token endpoint and the GraphQL Admin API of one shop.

Addresses. A shop answers at ``https://<shop>.myshopify.com``; the setting ``BMS_SHOPIFY_SHOP_URL_TEMPLATE``
(``https://{shop}`` in production) builds that base from the shop's domain, so the demo and the tests
can point every shop at the simulator. A connection names its shop by ``store_url``
(``https://<shop>.myshopify.com``), which must be https and a ``*.myshopify.com`` host: that is where
the Admin API answers without a redirect, and the name its webhooks carry.

Tokens (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens;
Shopify/shopify-app-js ``lib/auth/oauth/oauth.ts`` and ``refresh-token.ts``):
``POST /admin/oauth/access_token`` with a JSON body ``{client_id, client_secret, code, expiring: "1"}``
exchanges an install's code for an *expiring offline token*: ``access_token`` (``expires_in`` ≈ 3600 s),
``refresh_token`` (``refresh_token_expires_in`` ≈ 90 days, rotated on every use) and ``scope``. The same
endpoint with ``{client_id, client_secret, refresh_token, grant_type: "refresh_token"}`` refreshes.
A refused code or refresh token answers 4xx (``invalid_request`` / ``invalid_grant``): a rejection.
Legacy custom-app tokens pasted by hand (``shpat_…``) never expire and have no refresh token.

The Admin API (https://shopify.dev/docs/api/admin-graphql, version ``BMS_SHOPIFY_API_VERSION``):
``POST /admin/api/<version>/graphql.json`` with ``X-Shopify-Access-Token`` and ``{query, variables}``.
How its answers are read:

- HTTP 401 (an expired or revoked token) is a rejection; when the connection has a refresh token, the
  token is refreshed once under the connection's lease and the call sent again (nothing ran).
- HTTP 429 / 5xx / timeouts are transient (``sources/http.py``); a POST is never retried by the HTTP
  layer, because a mutation that timed out may have run.
- Throttling is an HTTP 200 whose ``errors`` carry ``extensions.code == "THROTTLED"``
  (https://shopify.dev/docs/api/usage/rate-limits); nothing ran. The wait is computed from
  ``extensions.cost``: (requested cost − ``throttleStatus.currentlyAvailable``) / ``restoreRate``. A
  wait up to ``MAX_THROTTLE_WAIT`` seconds is slept once and the query sent again; a longer one is a
  transient error whose ``retry_after`` is that wait, so no worker sleeps through it.
- Any other top-level ``errors`` (``ACCESS_DENIED`` for a missing scope, a query the version does not
  know, ``MAX_COST_EXCEEDED``) are rejections naming Shopify's messages.
- Mutations answer ``userErrors``: ``metafieldsSet`` ones are rejections with Shopify's words.

Write-back: ``metafieldsSet`` (https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsSet,
needs ``write_orders``) on the order's gid, namespace ``billmysales``, one key per document
``dte_<tipo>_<folio>`` (an invoice and its later credit notes never overwrite each other), type
``json``, the value a JSON string with tipo, folio, total, certification, the PDF link and the note a
person reads. ``metafieldsSet`` creates or updates, so writing the same document again is harmless.
A 2xx that does not show the metafield written leaves the write unconfirmed (transient).

Webhook subscriptions: ``webhookSubscriptions`` (listed 100 per page) and ``webhookSubscriptionCreate``
with ``webhookSubscription: {uri}`` (``callbackUrl`` is deprecated in favour of ``uri``,
https://shopify.dev/docs/api/admin-graphql/latest/objects/WebhookSubscription).
"""
from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from billmysales.integrations.http import body_excerpt, url_problem

from ..base import IssuedDocumentInfo
from ..errors import SourceRejectedError, SourceTransientError
from ..http import StoreHttpClient, order_path_id
from . import graphql_orders

METAFIELD_NAMESPACE = "billmysales"
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"
SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
# Seconds a throttled query may wait in the worker before it becomes a transient error instead.
MAX_THROTTLE_WAIT = 1.0
# An expiring access token is refreshed this long before it expires.
REFRESH_MARGIN = timedelta(minutes=5)

METAFIELDS_SET = """mutation BillMySalesDocument($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key }
    userErrors { field message code }
  }
}"""
WEBHOOK_SUBSCRIPTIONS = """query BillMySalesWebhooks($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}"""
WEBHOOK_SUBSCRIPTION_CREATE = """mutation BillMySalesWebhook($topic: WebhookSubscriptionTopic!,
                                $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""
SHOP_QUERY = "query BillMySalesShop { shop { name myshopifyDomain } }"


def app_secrets() -> list[str]:
    """Our app's client secret and, for the hour after a rotation while Shopify may still sign with it, the
    previous one (``BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET``, https://shopify.dev/docs/apps/build/webhooks/verify-deliveries)."""
    return [s for s in (settings.BMS_SHOPIFY_CLIENT_SECRET, settings.BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET) if s]


def shop_base_url(shop: str) -> str:
    """Where ``shop``'s Admin API and OAuth endpoints answer (``https://<shop>`` in production)."""
    return settings.BMS_SHOPIFY_SHOP_URL_TEMPLATE.format(shop=shop)


def connection_shop(connection) -> str:
    """The ``*.myshopify.com`` domain of a connection, or the rejection that stops any request."""
    problem = url_problem(connection.store_url)
    if problem:
        raise SourceRejectedError(_("La URL de la tienda de Shopify no sirve: %(problem)s") % {"problem": problem})
    host = (urlsplit(connection.store_url).hostname or "").lower()
    if not SHOP_DOMAIN.fullmatch(host):
        raise SourceRejectedError(
            _("La URL de la tienda de Shopify debe ser su dirección https://<tienda>.myshopify.com, no %(host)s.") % {"host": repr(host)}
        )
    return host


def token_credentials(answer: dict, *, now: datetime | None = None) -> dict:
    """The connection credentials of a token answer (code exchange or refresh), expiries as ISO instants."""
    now = now or datetime.now(UTC)
    credentials = {"access_token": answer["access_token"], "scope": str(answer.get("scope") or "")}
    if answer.get("expires_in"):
        credentials["access_token_expires_at"] = (now + timedelta(seconds=int(answer["expires_in"]))).isoformat()
    if answer.get("refresh_token"):
        credentials["refresh_token"] = answer["refresh_token"]
        if answer.get("refresh_token_expires_in"):
            credentials["refresh_token_expires_at"] = (
                now + timedelta(seconds=int(answer["refresh_token_expires_in"]))).isoformat()
    return credentials


def _moment(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None


def needs_refresh(credentials: dict) -> bool:
    """An expiring token due within ``REFRESH_MARGIN`` (or of unknown expiry) with a refresh token to renew it."""
    if not credentials.get("refresh_token"):
        return False
    expires = _moment(credentials.get("access_token_expires_at"))
    return expires is None or expires - datetime.now(UTC) < REFRESH_MARGIN


class ShopifyOAuthClient(StoreHttpClient):
    """The shop's ``/admin/oauth/access_token``: code exchange and refresh, with our app's credentials."""

    vendor = "Shopify"

    def __init__(self, *, shop: str):
        super().__init__()
        if not SHOP_DOMAIN.fullmatch(shop or ""):
            raise SourceRejectedError(_("%(shop)s no es una tienda de Shopify (<tienda>.myshopify.com).") % {"shop": repr(shop)})
        if not settings.BMS_SHOPIFY_CLIENT_ID or not settings.BMS_SHOPIFY_CLIENT_SECRET:
            raise SourceRejectedError(_("La app de Shopify no está configurada (faltan BMS_SHOPIFY_CLIENT_ID/SECRET)."))
        self.url = self.checked_url(shop_base_url(shop), _("URL de la tienda")) + "/admin/oauth/access_token"

    def checked(self, response):
        """OAuth refusals (``{"error", "error_description"}``) are told with Shopify's description."""
        status = response.status_code
        if 400 <= status < 500 and status != 429:
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                detail = data["error"] + (f": {data['error_description']}" if data.get("error_description") else "")
                raise SourceRejectedError(_("Shopify rechazó la solicitud de token (HTTP %(status)s): %(detail)s") % {
                    "status": status, "detail": detail[:300]}, status=status, body=detail[:300])
        return super().checked(response)

    def _token(self, body: dict) -> dict:
        payload = {"client_id": settings.BMS_SHOPIFY_CLIENT_ID, "client_secret": settings.BMS_SHOPIFY_CLIENT_SECRET, **body}
        answer = self.json_body(self.request("POST", self.url, json=payload), _("el token"))
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise SourceTransientError(_("Shopify respondió sin access_token; se reintentará."))
        return answer

    def exchange_code(self, code: str) -> dict:
        """The install's code for an expiring offline token (the answer as Shopify gives it)."""
        return self._token({"code": code, "expiring": "1"})

    def refresh(self, refresh_token: str) -> dict:
        return self._token({"refresh_token": refresh_token, "grant_type": "refresh_token"})


def refresh_credentials(shop: str, credentials: dict) -> dict:
    """The new credentials for ``credentials`` (called under the connection's lease); a refresh token that
    has already expired is refused without asking Shopify."""
    expires = _moment(credentials.get("refresh_token_expires_at"))
    if expires is not None and expires <= datetime.now(UTC):
        raise SourceRejectedError(_("el token de renovación de Shopify venció (duran 90 días sin uso)."))
    return token_credentials(ShopifyOAuthClient(shop=shop).refresh(credentials["refresh_token"]))


def fresh_connection(connection, *, when=needs_refresh):
    """The connection with a usable access token: refreshed once, under the lease, when ``when`` says so."""
    if not (connection.pk and when(connection.credentials or {})):
        return connection
    # Imported here: sources.services imports the registry, which imports this package.
    from sources.services import credentials_refresh

    shop = connection_shop(connection)
    return credentials_refresh(connection=connection, needs_refresh=when,
                               refresh=lambda credentials: refresh_credentials(shop, credentials))


class ShopifyClient(StoreHttpClient):
    vendor = "Shopify"

    def __init__(self, *, shop: str, access_token: str, connection=None):
        super().__init__()
        self.shop = shop
        self.base_url = self.checked_url(shop_base_url(shop), _("URL de la tienda"))
        self.access_token = access_token
        self.api_version = settings.BMS_SHOPIFY_API_VERSION
        # Kept to refresh an expiring token that Shopify refused before its time.
        self.connection = connection
        self.requests = 0
        self.last_cost: dict = {}

    @classmethod
    def for_connection(cls, connection) -> ShopifyClient:
        """Built from the tenant's connection; refuses before any request when it cannot authenticate."""
        shop = connection_shop(connection)
        connection = fresh_connection(connection)
        access_token = (connection.credentials or {}).get("access_token")
        if not access_token:
            raise SourceRejectedError(_("La conexión de Shopify no tiene access_token: conecte la tienda instalando la app."))
        return cls(shop=shop, access_token=access_token, connection=connection)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}/graphql.json"

    def graphql(self, query: str, variables: dict | None = None, *, write: bool = False) -> dict:
        """The ``data`` of a query or mutation; see the module docstring for how answers are read."""
        refreshed = throttled = False
        while True:
            try:
                response = self.request("POST", self.graphql_url, json={"query": query, "variables": variables or {}},
                                        headers={ACCESS_TOKEN_HEADER: self.access_token})
            except SourceRejectedError as exc:
                if exc.status == 401 and not refreshed and self._refresh_refused_token():
                    refreshed = True
                    continue
                raise
            self.requests += 1
            body = self._body(response, write)
            self.last_cost = (body.get("extensions") or {}).get("cost") or {}
            errors = body.get("errors")
            if errors:
                if self._throttled(errors):
                    wait = self._throttle_wait()
                    if not throttled and wait <= MAX_THROTTLE_WAIT:
                        throttled = True
                        time.sleep(wait)
                        continue
                    raise SourceTransientError(
                        _("Shopify limitó las consultas (THROTTLED): hay que esperar unos %(seconds)s s.") % {"seconds": math.ceil(wait)},
                        retry_after=str(math.ceil(wait)),
                    )
                raise SourceRejectedError(_("Shopify rechazó la consulta: %(errors)s") % {"errors": _error_messages(errors)},
                                          body=_error_messages(errors))
            data = body.get("data")
            if not isinstance(data, dict):
                raise self._unconfirmed(response, write)
            return data

    def _refresh_refused_token(self) -> bool:
        """After a 401: refreshes the token once when the connection has a refresh token (and nobody did already)."""
        connection = self.connection
        if connection is None or not connection.pk or not (connection.credentials or {}).get("refresh_token"):
            return False
        refused = self.access_token
        self.connection = fresh_connection(connection, when=lambda credentials: credentials.get("access_token") == refused)
        self.access_token = (self.connection.credentials or {}).get("access_token") or refused
        return self.access_token != refused

    def _body(self, response, write: bool) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._unconfirmed(response, write)
        return body

    def _unconfirmed(self, response, write: bool) -> SourceTransientError:
        values = {"status": response.status_code, "excerpt": body_excerpt(response) or _("vacía")}
        if write:
            return SourceTransientError(
                _("Shopify respondió HTTP %(status)s sin confirmar lo escrito (respuesta: %(excerpt)s); "
                  "pudo haberse escrito: revise la orden antes de reintentar.") % values, status=response.status_code,
            )
        return SourceTransientError(_("Shopify respondió HTTP %(status)s sin datos legibles (%(excerpt)s).") % values,
                                    status=response.status_code)

    @staticmethod
    def _throttled(errors) -> bool:
        return isinstance(errors, list) and any(
            isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)

    def _throttle_wait(self) -> float:
        status = self.last_cost.get("throttleStatus") or {}
        try:
            needed = float(self.last_cost.get("requestedQueryCost") or 0) - float(status.get("currentlyAvailable") or 0)
            rate = float(status.get("restoreRate") or 0)
        except (TypeError, ValueError):
            return 60.0
        if rate <= 0:
            return 60.0
        return max(needed, 0.0) / rate

    # --- what the adapter asks ---------------------------------------------------------------------

    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Sets the document's metafield on the order; returns what was written, with its id."""
        order_id = order_path_id(self.vendor, document.order_external_id)
        key = f"dte_{document.tipo_dte}_{document.folio}"
        value = {"note": document.note, **document.as_data()}
        data = self.graphql(METAFIELDS_SET, {"metafields": [{
            "ownerId": f"gid://shopify/Order/{order_id}", "namespace": METAFIELD_NAMESPACE, "key": key,
            "type": "json", "value": json.dumps(value, ensure_ascii=False),
        }]}, write=True)
        answer = data.get("metafieldsSet") or {}
        metafield = f"{METAFIELD_NAMESPACE}.{key}"
        if answer.get("userErrors"):
            raise SourceRejectedError(
                _("Shopify no aceptó el metafield %(metafield)s de la orden %(order)s: %(errors)s") % {
                    "metafield": metafield, "order": order_id, "errors": _error_messages(answer["userErrors"])}
            )
        written = [m for m in answer.get("metafields") or [] if isinstance(m, dict) and m.get("id")]
        if not written:
            raise SourceTransientError(
                _("Shopify no confirmó el metafield %(metafield)s de la orden %(order)s; "
                  "pudo haberse escrito: revise la orden antes de reintentar.") % {"metafield": metafield, "order": order_id}
            )
        return _("Metafield %(metafield)s en la orden %(order)s de Shopify (id %(id)s)") % {
            "metafield": metafield, "order": order_id, "id": written[0]["id"]}

    def shop_info(self) -> dict:
        return self.graphql(SHOP_QUERY).get("shop") or {}

    def orders_page(self, *, search: str, after: str | None) -> dict:
        """One page of orders (``nodes``, ``pageInfo``) changed in the window ``search`` names, oldest change first."""
        data = self.graphql(graphql_orders.ORDERS_PAGE_QUERY,
                            {"first": graphql_orders.PAGE_ORDERS, "after": after, "query": search})
        return data.get("orders") or {}

    def order(self, gid: str) -> dict | None:
        """One order with the larger nested sizes, its line items all read."""
        node = self.graphql(graphql_orders.ORDER_QUERY, {"id": gid}).get("order")
        if node is None:
            return None
        lines = node.get("lineItems") or {}
        nodes = list(lines.get("nodes") or [])
        page_info = lines.get("pageInfo") or {}
        while page_info.get("hasNextPage"):
            more = (self.graphql(graphql_orders.ORDER_LINES_QUERY, {"id": gid, "after": page_info.get("endCursor")})
                    .get("order") or {}).get("lineItems") or {}
            nodes += more.get("nodes") or []
            page_info = more.get("pageInfo") or {}
        node["lineItems"] = {"nodes": nodes, "pageInfo": {"hasNextPage": False}}
        return node

    def webhook_subscriptions(self) -> list[dict]:
        """Every shop-scoped subscription of this app (``id``, ``topic``, ``uri``)."""
        subscriptions, after = [], None
        while True:
            page = self.graphql(WEBHOOK_SUBSCRIPTIONS, {"after": after}).get("webhookSubscriptions") or {}
            subscriptions += [s for s in page.get("nodes") or [] if isinstance(s, dict)]
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return subscriptions
            after = info.get("endCursor")

    def webhook_subscription_create(self, *, topic: str, uri: str) -> dict:
        answer = self.graphql(WEBHOOK_SUBSCRIPTION_CREATE, {"topic": topic, "webhookSubscription": {"uri": uri}},
                              write=True).get("webhookSubscriptionCreate") or {}
        if answer.get("userErrors"):
            raise SourceRejectedError(_("Shopify no creó el webhook %(topic)s: %(errors)s") % {
                "topic": topic, "errors": _error_messages(answer["userErrors"])})
        return answer.get("webhookSubscription") or {}


def _error_messages(errors) -> str:
    if isinstance(errors, str):
        return errors
    if not isinstance(errors, list):
        return json.dumps(errors, ensure_ascii=False)[:300]
    messages = []
    for error in errors:
        if isinstance(error, dict):
            code = error.get("code") or (error.get("extensions") or {}).get("code")
            messages.append(f"{error.get('message')}" + (f" ({code})" if code else ""))
        else:
            messages.append(str(error))
    return "; ".join(messages)[:500]
