"""Shopify simulator: a public app's install flow, expiring offline tokens, the GraphQL Admin API (2026-10)
with cost-based throttling, and signed webhook deliveries, for many shops in one process.

Addressing a shop. Real shops answer at ``https://<name>.myshopify.com``. Here every shop answers on the
simulator's one port, and a request names its shop in either of two ways:

- the ``Host`` header, ``Host: demo-cl.myshopify.com`` (port ignored), as a real request does; or
- a path prefix, ``http://127.0.0.1:PORT/shops/demo-cl.myshopify.com/admin/api/2026-10/graphql.json``,
  so an adapter configured with a per-shop base URL override of ``{sim.url}/shops/<shop>`` appends the
  usual ``/admin/...`` paths unchanged (``ShopifySimulator.shop_url(shop)`` builds it).

A request naming no known shop answers 404. The shop ``demo-cl.myshopify.com`` exists from the start;
more are created with ``POST /_sim/shops``.

What is simulated, from Shopify's documentation and Shopify/shopify-app-js (``lib/auth/oauth/*.ts``,
``lib/utils/hmac-validator.ts``, ``lib/webhooks/register.ts``):

- Install (authorization code grant for a standalone app): ``GET /admin/oauth/authorize`` checks the
  ``client_id`` and ``redirect_uri``, plays the merchant's consent, and redirects 302 to ``redirect_uri``
  with ``code, hmac, host, shop, state, timestamp``. ``hmac`` is the hex HMAC-SHA256, keyed with the
  client secret, of the other parameters sorted by name and joined as the URL's own query string
  (``k=v`` percent-encoded, ``&``-joined), which is what shopify-app-js recomputes. ``code``, ``host``,
  ``shop`` and ``timestamp`` never need encoding, so only an app ``state`` with reserved characters
  makes the encoded and the decoded readings differ.
- ``POST /admin/oauth/access_token`` (JSON or form): the code exchange (codes are single use; a replay
  answers 400 ``invalid_request`` "The authorization code was not found or was already used"), with
  ``expiring: "1"`` for an expiring offline token (``expires_in`` 3600, ``refresh_token``,
  ``refresh_token_expires_in`` 90 days); ``grant_type=refresh_token`` rotates the refresh token; the
  token-exchange grant migrates a non-expiring token to an expiring one (shopify-app-js
  ``migrate-to-expiring-token.ts``). Since 2026-08-28 a used refresh token stays valid until its
  replacement is first used, at most 30 days after its own first use and never past its 90 days.
- ``POST /admin/api/<version>/graphql.json`` with ``X-Shopify-Access-Token``: the schema in
  ``shopify_admin.graphql`` (a real subset of the 2026-10 Admin schema), executed with graphql-core.
  Unknown fields fail validation with Shopify's wording ("Field 'x' doesn't exist on type 'Order'",
  code ``undefinedField``). A bad, expired or revoked token answers 401
  ``{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}``.
- Cost-based throttling per shop (one app, so per app and shop, as Shopify keys it): a leaky bucket of
  ``maximumAvailable`` 2000 points refilled at ``restoreRate`` 100 points/s (the Standard plan).
  Requested cost: scalars and enums 0, objects 1, connections 2 + ``first`` × the node's cost, each
  mutation 10. The requested cost is taken before running, the difference to the actual cost (from the
  nodes really returned) is given back, and every answer carries ``extensions.cost``. An empty bucket
  answers HTTP 200 with ``errors: [{"message": "Throttled", "extensions": {"code": "THROTTLED",
  "documentation": "https://shopify.dev/api/usage/rate-limits"}}]`` and ``actualQueryCost: null``;
  a query over 1000 points answers ``MAX_COST_EXCEEDED``.
- Webhooks: subscriptions made with ``webhookSubscriptionCreate`` and the app's TOML subscriptions
  (``App.webhooks``, which the ``webhookSubscriptions`` query does not list) receive the REST-shaped
  body Shopify sends, serialised as Shopify does (``/`` as ``\\/``, ``&`` ``<`` ``>`` as ``\\u00XX``,
  other characters as UTF-8), with ``X-Shopify-Topic``, ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256
  of the raw body with the client secret), ``X-Shopify-Shop-Domain``, ``X-Shopify-Webhook-Id`` (per
  delivery), ``X-Shopify-Event-Id`` (per event, shared by every subscription it reaches),
  ``X-Shopify-API-Version`` and ``X-Shopify-Triggered-At``.

Deliveries are synchronous: the control call that changes an order sends them before it answers, and
its answer lists each delivery with the receiver's status (0 when the connection failed). There are no
retries. Faults (``POST /_sim/deliveries``): ``drop_rate`` (a share of deliveries never sent, recorded
as dropped) and ``duplicate_rate`` (a share sent twice, same headers and body, as a retry after a lost
answer would be).

Order lifecycle and the topics it fires:

- create: ``orders/create``, then ``orders/paid`` when created paid;
- pay: ``orders/paid``, ``orders/updated``;
- update (note, tags, note_attributes, addresses): ``orders/updated``;
- edit (remove quantity from a line, or add a line): ``orders/edited`` (the ``order_edit`` body),
  ``orders/updated``;
- refund: ``refunds/create`` (the refund body), ``orders/updated`` (the order, with the refund);
- cancel: ``orders/cancelled``, ``refunds/create`` when a paid order is refunded in full, ``orders/updated``;
- uninstall: ``app/uninstalled`` (the shop body); tokens are revoked and subscriptions removed.

The same order is served by the GraphQL API (``gid://shopify/Order/N``, UTC ``DateTime``, ``MoneyBag``)
and by webhooks (numeric ``id``, shop-local timestamps, money as ``"54990.00"`` strings), both derived
from one stored record. The legacy REST ``POST/GET /admin/api/<v>/orders/<id>/metafields.json`` is
also served (existing custom apps still use it) and writes the same metafields as ``metafieldsSet``.

Control routes (JSON bodies, under ``/_sim``): ``POST /app`` (any ``App`` field), ``POST /consent``
(``deny``, ``tamper_hmac``, ``timestamp_offset`` seconds), ``POST /shops`` (``shop``), and per shop
``POST /shops/<shop>/...``: ``orders`` (``count``, ``document`` boleta|factura, ``financial_status``
paid|pending, ``rut_field`` note_attributes|localized_fields|both, ``created_at``, ``order`` overrides),
``orders/<id>/pay|update|edit|refund|cancel``, ``uninstall``, ``compliance`` (``topic``),
``legacy-token`` (``scope``), ``expire-tokens`` (``access``, ``refresh``), ``bucket``
(``maximum_available``, ``restore_rate``, ``currently_available``), ``launch`` (the signed app URL of an
App Store install); ``POST /deliveries`` (``drop_rate``, ``duplicate_rate``, ``timeout``) and
``GET /deliveries``. ``GET /_sim/state`` shows shops, orders, metafields written, subscriptions, tokens,
throttle status and every delivery with its status.

Assumptions where Shopify's documentation is silent, each cheap to change:

- Authorization codes live 10 minutes. Access tokens start ``shpua_`` (public app offline), ``shpat_``
  (legacy custom app), refresh tokens ``shprt_``.
- Wrong client credentials at the token endpoint answer 400 ``{"error": "invalid_client"}``; a bad
  refresh token answers 400 ``{"error": "invalid_grant", ...}`` (the shape shopify-app-js tests use).
- When a replacement refresh token is first used, its predecessor and the predecessor's other
  replacements are retired. A refresh leaves earlier access tokens valid until they expire.
- A denied consent shows Shopify's admin page (HTTP 403 here) and never redirects to the app.
- An empty ``App.redirect_urls`` accepts any ``redirect_uri``; Shopify requires it to be listed.
- Webhook and redirect URLs must be https, except on loopback hosts (tests and the demo receive on
  127.0.0.1); Shopify refuses plain http.
- Orders older than 60 days are hidden without ``read_all_orders``, as Shopify documents; orders are
  created "now" unless the control call gives ``created_at``.
- Search syntax supported in ``orders(query:)``: ``updated_at``, ``created_at``, ``processed_at`` with
  ``:``, ``:>``, ``:>=``, ``:<``, ``:<=`` (dates without an offset are shop-local, America/Santiago),
  ``financial_status``, ``status`` (open, closed, cancelled, any), ``id`` and ``name``; other fields
  are ignored and reported in ``extensions.search[].warnings`` as Shopify does.
- Refunds of shipping appear both as ``refund_shipping_lines`` and as an ``order_adjustments`` entry of
  kind ``shipping_refund`` (older payloads carry only the latter).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import operator
import random
import re
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import graphql
from graphql import GraphQLError
from graphql.execution.values import get_argument_values
from graphql.utilities import get_operation_ast

from .base import HttpError, Request, Response, Simulator, post_json, route
from .chile import Line, Sale, iva_of, random_sale

API_VERSION = "2026-10"
SUPPORTED_VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
SCHEMA = graphql.build_schema(Path(__file__).with_name("shopify_admin.graphql").read_text(encoding="utf-8"))
SHOP_TZ = ZoneInfo("America/Santiago")
DEFAULT_SHOP = "demo-cl.myshopify.com"
SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
SHOP_PREFIX = re.compile(r"/shops/(?P<shop>[a-z0-9][a-z0-9-]*\.myshopify\.com)(?P<rest>/.*)")
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
CODE_REPLAYED = {"error": "invalid_request",
                 "error_description": "The authorization code was not found or was already used"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "Client authentication failed"}
INVALID_GRANT = {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired"}
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CODE_LIFETIME = 600
ACCESS_TOKEN_LIFETIME = 3600
ONLINE_TOKEN_LIFETIME = 86399
REFRESH_TOKEN_LIFETIME = 90 * 86400
REFRESH_RETRY_WINDOW = 30 * 86400
MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MUTATION_COST = 10
VISIBLE_DAYS = 60
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ORDER_EVENT_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/edited", "orders/cancelled",
                      "refunds/create", "app/uninstalled")
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


def topic_enum(topic: str) -> str:
    """``orders/paid`` → ``ORDERS_PAID``, the GraphQL enum's spelling."""
    return topic.replace("/", "_").upper()


def _money(amount) -> str:
    """REST money: a string with two decimals, ``"54990.00"``."""
    return f"{Decimal(amount):.2f}"


def _money_set(amount, currency: str = "CLP") -> dict:
    value = {"amount": _money(amount), "currency_code": currency}
    return {"shop_money": value, "presentment_money": dict(value)}


def _decimal(amount) -> str:
    """GraphQL ``Decimal``: ``"54990.0"`` for whole amounts, as Shopify serialises them."""
    value = Decimal(str(amount))
    return f"{int(value)}.0" if value == value.to_integral_value() else str(value.normalize())


def _bag(amount, currency: str = "CLP") -> dict:
    money = {"amount": _decimal(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def _utc(value: str | None) -> str | None:
    """A REST timestamp (shop-local, with offset) as the GraphQL ``DateTime`` (UTC, ``Z``)."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(moment: datetime) -> str:
    return moment.astimezone(SHOP_TZ).isoformat(timespec="seconds")


def _gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _gid_number(gid: str, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", gid or "")
    return int(match.group(1)) if match else None


def shopify_json(payload) -> bytes:
    """JSON as Shopify's webhooks serialise it: compact, ``/`` and HTML characters escaped, UTF-8."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("/", "\\/"), ("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def webhook_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def query_hmac(params: dict[str, str], secret: str) -> str:
    """The install/callback ``hmac``: hex, over the sorted query without ``hmac`` and ``signature``."""
    message = "&".join(
        f"{quote(key, safe='')}={quote(str(value), safe='')}"
        for key, value in sorted(params.items()) if key not in ("hmac", "signature")
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _allowed_url(url: str) -> bool:
    parts = urlsplit(url or "")
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK))


@dataclass
class App:
    """The app as its Partner Dashboard / TOML declares it."""

    client_id: str = "sim-shopify-client-id"
    client_secret: str = "sim-shopify-client-secret"
    app_url: str = "https://app.billmysales.test/shopify"
    redirect_urls: list[str] = field(default_factory=list)
    scopes: str = "read_orders,write_orders"
    compliance_url: str | None = None
    webhooks: list[dict] = field(default_factory=list)  # TOML subscriptions: [{"topics": [...], "uri": ...}]
    api_version: str = API_VERSION


class Bucket:
    """Shopify's leaky bucket for calculated query cost."""

    def __init__(self, maximum: float = 2000.0, restore_rate: float = 100.0):
        self.maximum, self.restore_rate = float(maximum), float(restore_rate)
        self.available, self.stamp = self.maximum, time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self.stamp) * self.restore_rate)
        self.stamp = now

    def take(self, cost: int) -> bool:
        self._refill()
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def give_back(self, points: int) -> None:
        self._refill()
        self.available = min(self.maximum, self.available + points)

    def status(self) -> dict:
        self._refill()
        return {"maximumAvailable": self.maximum, "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate}


@dataclass
class Shop:
    domain: str
    id: int
    bucket: Bucket
    installed: bool = False
    scopes: set[str] = field(default_factory=set)
    orders: dict[int, dict] = field(default_factory=dict)  # order id → REST order
    extras: dict[int, dict] = field(default_factory=dict)  # order id → what REST does not carry
    subscriptions: dict[int, dict] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.domain.split(".")[0]


class ShopifySimulator(Simulator):
    name = "shopify"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, app: App | None = None,
                 shops: tuple[str, ...] = (DEFAULT_SHOP,), seed: int = 1):
        self.initial_app, self.initial_shops, self.seed = app or App(), shops, seed
        super().__init__(host, port)

    def shop_url(self, shop: str = DEFAULT_SHOP) -> str:
        """The base URL that stands for ``https://<shop>``."""
        return f"{self.url}/shops/{shop}"

    # --- state -----------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.app = App(**asdict(self.initial_app))
        self.rng = random.Random(self.seed)
        self.ids = itertools.count(1)
        self.shops: dict[str, Shop] = {}
        for domain in self.initial_shops:
            self._add_shop(domain)
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.consent = {"deny": False, "tamper_hmac": False, "timestamp_offset": 0}
        self.delivery_faults = {"drop_rate": 0.0, "duplicate_rate": 0.0, "timeout": 5.0}
        self.deliveries: list[dict] = []

    def _add_shop(self, domain: str) -> Shop:
        shop = Shop(domain=domain, id=70_123_456_789 + len(self.shops), bucket=Bucket())
        self.shops[domain] = shop
        return shop

    def _next_id(self, base: int) -> int:
        return base + next(self.ids)

    def state(self) -> dict:
        now = time.time()
        return {
            "app": asdict(self.app),
            "shops": {
                domain: {
                    "installed": shop.installed, "scopes": sorted(shop.scopes),
                    "orders": {str(oid): {"name": o["name"], "financial_status": o["financial_status"],
                                          "total_price": o["total_price"], "updated_at": o["updated_at"],
                                          "cancelled_at": o["cancelled_at"], "refunds": len(o["refunds"])}
                               for oid, o in shop.orders.items()},
                    "metafields": {str(oid): list(extra["metafields"].values())
                                   for oid, extra in shop.extras.items() if extra["metafields"]},
                    "subscriptions": list(shop.subscriptions.values()),
                    "throttle": shop.bucket.status(),
                }
                for domain, shop in self.shops.items()
            },
            "tokens": [{"token": token, "shop": t["shop"], "kind": t["kind"], "scope": t["scope"],
                        "valid": self._token_valid(t, now)} for token, t in self.tokens.items()],
            "refresh_tokens": [{"token": token, "shop": r["shop"], "retired": r["retired"],
                                "expired": now >= r["expires_at"]} for token, r in self.refresh_tokens.items()],
            "consent": dict(self.consent),
            "delivery_faults": dict(self.delivery_faults),
            "deliveries": list(self.deliveries),
        }

    # --- addressing ------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        prefixed = SHOP_PREFIX.fullmatch(request.path)
        if prefixed:
            request.headers["host"] = prefixed["shop"]
            request.path = prefixed["rest"]
        return super().dispatch(request)

    def _shop(self, request: Request) -> Shop:
        shop = self.shops.get(request.header("host").split(":")[0].lower())
        if shop is None:
            raise HttpError(404, {"errors": "Not Found"})
        return shop

    # --- install and tokens ----------------------------------------------------------------------

    @route("GET", r"/admin/oauth/authorize", name="authorize")
    def authorize(self, request: Request) -> Response:
        shop = self._shop(request)
        client_id, redirect_uri = request.arg("client_id", ""), request.arg("redirect_uri", "")
        if client_id != self.app.client_id:
            return self._oauth_error_page(f"Could not find Shopify API application with api_key {client_id}")
        if (self.app.redirect_urls and redirect_uri not in self.app.redirect_urls) or not _allowed_url(redirect_uri):
            return self._oauth_error_page("The redirect_uri is not whitelisted")
        if self.consent["deny"]:
            return Response(403, b"<html><body>The merchant declined to install the app.</body></html>",
                            content_type="text/html; charset=utf-8")
        scope = request.arg("scope") or self.app.scopes
        online = request.arg("grant_options[]") == "per-user"
        code = secrets.token_hex(16)
        with self.lock:
            self.codes[code] = {"shop": shop.domain, "scope": scope, "online": online,
                                "expires_at": time.time() + CODE_LIFETIME, "used": False}
        params = {"code": code, "host": self._host_param(shop), "shop": shop.domain,
                  "timestamp": str(int(time.time()) + int(self.consent["timestamp_offset"]))}
        if request.arg("state") is not None:
            params["state"] = request.arg("state")
        signature = query_hmac(params, self.app.client_secret)
        params["hmac"] = ("0" * 64) if self.consent["tamper_hmac"] else signature
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items()))
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return Response(302, b"", {"Location": f"{redirect_uri}{separator}{query}"}, content_type="text/html")

    @staticmethod
    def _oauth_error_page(message: str) -> Response:
        return Response(400, f"<html><body>Oauth error invalid_request: {message}</body></html>".encode(),
                        content_type="text/html; charset=utf-8")

    @staticmethod
    def _host_param(shop: Shop) -> str:
        return base64.b64encode(f"admin.shopify.com/store/{shop.name}".encode()).decode().rstrip("=")

    @route("POST", r"/admin/oauth/access_token", name="access_token")
    def access_token(self, request: Request) -> Response:
        shop = self._shop(request)
        if request.header("content-type").startswith("application/json"):
            body = request.json()
            body = body if isinstance(body, dict) else {}
        else:
            body = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if body.get("client_id") != self.app.client_id or not hmac.compare_digest(
                str(body.get("client_secret", "")).encode(), self.app.client_secret.encode()):
            return Response(400, INVALID_CLIENT)
        expiring = str(body.get("expiring", "0")) == "1"
        grant = body.get("grant_type") or "authorization_code"
        with self.lock:
            if grant == "refresh_token":
                return self._refresh(shop, str(body.get("refresh_token", "")))
            if grant == TOKEN_EXCHANGE:
                return self._migrate(shop, str(body.get("subject_token", "")), expiring)
            code = self.codes.get(str(body.get("code", "")))
            if code is None or code["used"] or code["shop"] != shop.domain or time.time() > code["expires_at"]:
                return Response(400, CODE_REPLAYED)
            code["used"] = True
            shop.installed = True
            shop.scopes = set(code["scope"].split(","))
            if code["online"]:
                return Response(200, self._online_token(shop, code["scope"]))
            return Response(200, self._issue(shop, code["scope"], expiring))

    def _issue(self, shop: Shop, scope: str, expiring: bool, parent: str | None = None) -> dict:
        now = time.time()
        access = "shpua_" + secrets.token_hex(16)
        self.tokens[access] = {"shop": shop.domain, "scope": scope, "kind": "expiring" if expiring else "offline",
                               "expires_at": now + ACCESS_TOKEN_LIFETIME if expiring else None, "revoked": False}
        answer = {"access_token": access, "scope": scope}
        if expiring:
            refresh = "shprt_" + secrets.token_hex(16)
            self.refresh_tokens[refresh] = {"shop": shop.domain, "scope": scope, "parent": parent, "retired": False,
                                            "first_used_at": None, "expires_at": now + REFRESH_TOKEN_LIFETIME}
            answer.update(expires_in=ACCESS_TOKEN_LIFETIME, refresh_token=refresh,
                          refresh_token_expires_in=REFRESH_TOKEN_LIFETIME)
        return answer

    def _online_token(self, shop: Shop, scope: str) -> dict:
        access = "shpua_" + secrets.token_hex(16)
        self.tokens[access] = {"shop": shop.domain, "scope": scope, "kind": "online",
                               "expires_at": time.time() + ONLINE_TOKEN_LIFETIME, "revoked": False}
        return {"access_token": access, "scope": scope, "expires_in": ONLINE_TOKEN_LIFETIME,
                "associated_user_scope": scope,
                "associated_user": {"id": 902541635, "first_name": "Carolina", "last_name": "Vergara",
                                    "email": f"admin@{shop.name}.cl", "email_verified": True, "account_owner": True,
                                    "locale": "es", "collaborator": False}}

    def _refresh(self, shop: Shop, token: str) -> Response:
        now = time.time()
        record = self.refresh_tokens.get(token)
        if (record is None or record["retired"] or record["shop"] != shop.domain or not shop.installed
                or now >= record["expires_at"]
                or (record["first_used_at"] is not None and now >= record["first_used_at"] + REFRESH_RETRY_WINDOW)):
            return Response(400, INVALID_GRANT)
        parent = record["parent"]
        if parent is not None and record["first_used_at"] is None:
            self.refresh_tokens[parent]["retired"] = True
            for other, sibling in self.refresh_tokens.items():
                if sibling["parent"] == parent and other != token:
                    sibling["retired"] = True
        if record["first_used_at"] is None:
            record["first_used_at"] = now
        return Response(200, self._issue(shop, record["scope"], expiring=True, parent=token))

    def _migrate(self, shop: Shop, subject: str, expiring: bool) -> Response:
        record = self.tokens.get(subject)
        if not expiring or record is None or record["kind"] not in ("offline", "legacy") \
                or not self._token_valid(record, time.time()) or record["shop"] != shop.domain:
            return Response(400, {"error": "invalid_request", "error_description": "Invalid subject token"})
        record["revoked"] = True
        return Response(200, self._issue(shop, record["scope"], expiring=True))

    @staticmethod
    def _token_valid(record: dict, now: float) -> bool:
        return not record["revoked"] and (record["expires_at"] is None or now < record["expires_at"])

    def _authenticate(self, request: Request, shop: Shop) -> dict:
        record = self.tokens.get(request.header("x-shopify-access-token"))
        if record is None or record["shop"] != shop.domain or not self._token_valid(record, time.time()):
            raise HttpError(401, INVALID_TOKEN, {"WWW-Authenticate": 'Basic Realm="Shopify API Authentication"'})
        return record

    # --- GraphQL Admin API -----------------------------------------------------------------------

    @route("POST", r"/admin/api/(?P<version>\d{4}-\d{2}|unstable)/graphql\.json", name="graphql")
    def graphql_api(self, request: Request) -> Response:
        shop = self._shop(request)
        token = self._authenticate(request, shop)
        version = request.params["version"]
        headers = {"X-Shopify-API-Version": version if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[0]}
        query, variables, operation_name = self._graphql_request(request)
        try:
            document = graphql.parse(query)
        except GraphQLError as exc:
            return Response(200, {"errors": [self._error(exc)]}, headers)
        invalid = graphql.validate(SCHEMA, document)
        if invalid:
            return Response(200, {"errors": [self._error(exc) for exc in invalid]}, headers)
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return Response(200, {"errors": [{"message": "An operation name is required"}]}, headers)
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
        root_type = SCHEMA.mutation_type if operation.operation == graphql.OperationType.MUTATION else SCHEMA.query_type
        cost = CostCounter(fragments, variables or {})
        try:
            requested = cost.of_operation(operation, root_type, None)
        except GraphQLError as exc:
            return Response(200, {"errors": [self._error(exc)]}, headers)
        if requested > MAX_QUERY_COST:
            return Response(200, {"errors": [{
                "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                           f"({MAX_QUERY_COST}).\n\nSee {RATE_LIMITS_DOC} for more information on how the cost "
                           "of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
                           "operations should be used instead.",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST,
                               "documentation": RATE_LIMITS_DOC}}]}, headers)
        with self.lock:
            if not shop.bucket.take(requested):
                self.counters["throttled"] += 1
                return Response(200, {
                    "errors": [{"message": "Throttled",
                                "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC}}],
                    "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                            "throttleStatus": shop.bucket.status()}}}, headers)
            context = {"shop": shop, "scopes": self._scopes(token), "search": []}
            result = graphql.execute(SCHEMA, document, root_value=self._root(shop), context_value=context,
                                     variable_values=variables, operation_name=operation_name)
            actual = cost.of_operation(operation, root_type, result.data or {}) if result.data is not None else 0
            shop.bucket.give_back(max(0, requested - actual))
            extensions = {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                   "throttleStatus": shop.bucket.status()}}
        if context["search"]:
            extensions["search"] = context["search"]
        body = {"data": result.data}
        if result.errors:
            body = {"errors": [self._error(exc) for exc in result.errors], **body}
        body["extensions"] = extensions
        return Response(200, body, headers)

    @staticmethod
    def _graphql_request(request: Request) -> tuple[str, dict | None, str | None]:
        if request.header("content-type").startswith("application/graphql"):
            return request.body.decode("utf-8", "replace"), None, None
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise HttpError(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = body.get("variables")
        return body["query"], variables if isinstance(variables, dict) else None, body.get("operationName")

    @staticmethod
    def _scopes(token: dict) -> set[str]:
        scopes = set(filter(None, token["scope"].split(",")))
        return scopes | {"read_" + s.removeprefix("write_") for s in scopes if s.startswith("write_")}

    @staticmethod
    def _error(exc: GraphQLError) -> dict:
        """graphql-core's error, worded as Shopify (graphql-ruby) words the common validation errors."""
        formatted = exc.formatted
        undefined = re.match(r"Cannot query field '(\w+)' on type '(\w+)'", exc.message)
        if undefined:
            field_name, type_name = undefined.groups()
            formatted["message"] = f"Field '{field_name}' doesn't exist on type '{type_name}'"
            formatted["extensions"] = {"code": "undefinedField", "typeName": type_name, "fieldName": field_name}
        unknown_arg = re.match(r"Unknown argument '(\w+)' on field '\w+\.(\w+)'", exc.message)
        if unknown_arg:
            arg, field_name = unknown_arg.groups()
            formatted["message"] = f"Field '{field_name}' doesn't accept argument '{arg}'"
            formatted["extensions"] = {"code": "argumentNotAccepted", "name": field_name, "argumentName": arg}
        if not formatted.get("extensions"):
            formatted.pop("extensions", None)
        for key in ("path", "locations"):
            if formatted.get(key) is None:
                formatted.pop(key, None)
        return formatted

    def _root(self, shop: Shop) -> dict:
        return {
            "orders": lambda info, **args: self._orders(shop, info, **args),
            "order": lambda info, id: self._order_by_gid(shop, info, id),
            "shop": lambda info: {"id": _gid("Shop", shop.id), "name": shop.name, "myshopifyDomain": shop.domain,
                                  "currencyCode": "CLP", "ianaTimezone": "America/Santiago",
                                  "email": f"contacto@{shop.name}.cl", "taxesIncluded": True},
            "webhookSubscriptions": lambda info, **args: self._subscriptions(shop, info, **args),
            "webhookSubscription": lambda info, id: self._subscription_node(
                shop.subscriptions.get(_gid_number(id, "WebhookSubscription"))),
            "metafieldsSet": lambda info, metafields: self._metafields_set(shop, info, metafields),
            "webhookSubscriptionCreate": lambda info, topic, webhookSubscription: self._subscribe(
                shop, info, topic, webhookSubscription),
            "webhookSubscriptionUpdate": lambda info, id, webhookSubscription: self._update_subscription(
                shop, id, webhookSubscription),
            "webhookSubscriptionDelete": lambda info, id: self._unsubscribe(shop, id),
        }

    @staticmethod
    def _require(info, scope: str) -> None:
        if scope not in info.context["scopes"]:
            raise GraphQLError(
                f"Access denied for {info.field_name} field. Required access: `{scope}` access scope.",
                extensions={"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes",
                            "requiredAccess": f"`{scope}` access scope."})

    def _visible_orders(self, shop: Shop, info) -> list[dict]:
        orders = list(shop.orders.values())
        if "read_all_orders" not in info.context["scopes"]:
            cutoff = datetime.now(UTC) - timedelta(days=VISIBLE_DAYS)
            orders = [o for o in orders if datetime.fromisoformat(o["created_at"]) >= cutoff]
        return orders

    def _orders(self, shop: Shop, info, first=None, after=None, last=None, before=None, query=None, reverse=False,
                savedSearchId=None, sortKey="PROCESSED_AT"):
        self._require(info, "read_orders")
        orders = self._visible_orders(shop, info)
        if query:
            predicates, warnings = parse_order_search(query)
            orders = [o for o in orders if all(p(o) for p in predicates)]
            if warnings:
                info.context["search"].append({"path": [info.field_name], "query": query, "warnings": warnings})
        key = ORDER_SORT_KEYS.get(sortKey, ORDER_SORT_KEYS["ID"])
        return connection(orders, lambda o: (key(o), o["id"]), lambda o: self._gql_order(shop, o),
                          first=first, after=after, last=last, before=before, reverse=reverse)

    def _order_by_gid(self, shop: Shop, info, gid: str):
        self._require(info, "read_orders")
        number = _gid_number(gid, "Order")
        order = next((o for o in self._visible_orders(shop, info) if o["id"] == number), None)
        return self._gql_order(shop, order) if order else None

    # --- GraphQL shapes of the stored REST order -------------------------------------------------

    def _gql_order(self, shop: Shop, order: dict) -> dict:
        extra = shop.extras[order["id"]]
        currency = order["currency"]
        lines = {item["id"]: self._gql_line(item, order) for item in order["line_items"]}
        shipping = [self._gql_shipping(line, order) for line in order["shipping_lines"]]
        refunded = sum((Decimal(t["amount"]) for r in order["refunds"] for t in r["transactions"]
                        if t["kind"] == "refund" and t["status"] == "success"), Decimal(0))
        refunded_shipping = sum((-Decimal(a["amount"]) for r in order["refunds"] for a in r["order_adjustments"]
                                 if a["kind"] == "shipping_refund"), Decimal(0))
        financial = order["financial_status"]
        received = sum((Decimal(t["amount"]) for t in extra["transactions"]
                        if t["kind"] == "sale" and t["status"] == "success"), Decimal(0))
        return {
            "__typename": "Order",
            "id": order["admin_graphql_api_id"], "legacyResourceId": str(order["id"]), "name": order["name"],
            "number": order["number"], "confirmationNumber": order["confirmation_number"],
            "createdAt": _utc(order["created_at"]), "updatedAt": _utc(order["updated_at"]),
            "processedAt": _utc(order["processed_at"]), "cancelledAt": _utc(order["cancelled_at"]),
            "cancelReason": (order["cancel_reason"] or "").upper() or None,
            "closed": order["closed_at"] is not None, "closedAt": _utc(order["closed_at"]),
            "confirmed": order["confirmed"], "test": order["test"],
            "currencyCode": currency, "presentmentCurrencyCode": order["presentment_currency"],
            "displayFinancialStatus": financial.upper(),
            "displayFulfillmentStatus": "UNFULFILLED",
            "fullyPaid": financial in ("paid", "partially_refunded", "refunded"),
            "unpaid": financial in ("pending", "authorized"),
            "refundable": financial in ("paid", "partially_refunded"),
            "email": order["email"], "phone": order["phone"], "note": order["note"],
            "tags": [t.strip() for t in order["tags"].split(",") if t.strip()],
            "sourceName": order["source_name"], "taxesIncluded": order["taxes_included"],
            "taxExempt": order["tax_exempt"],
            "customAttributes": [{"key": a["name"], "value": a["value"]} for a in order["note_attributes"]],
            "discountCodes": [d["code"] for d in order["discount_codes"]],
            "paymentGatewayNames": order["payment_gateway_names"], "statusPageUrl": order["order_status_url"],
            "subtotalPriceSet": _bag(order["subtotal_price"], currency),
            "totalPriceSet": _bag(order["total_price"], currency),
            "totalTaxSet": _bag(order["total_tax"], currency),
            "totalDiscountsSet": _bag(order["total_discounts"], currency),
            "totalShippingPriceSet": _bag(sum((Decimal(s["discounted_price"]) for s in order["shipping_lines"]),
                                              Decimal(0)), currency),
            "totalRefundedSet": _bag(refunded, currency),
            "totalRefundedShippingSet": _bag(refunded_shipping, currency),
            "totalTipReceivedSet": _bag(order["total_tip_received"], currency),
            "totalOutstandingSet": _bag(order["total_outstanding"], currency),
            "totalReceivedSet": _bag(received - refunded, currency),
            "currentTotalPriceSet": _bag(order["current_total_price"], currency),
            "currentSubtotalPriceSet": _bag(order["current_subtotal_price"], currency),
            "currentTotalTaxSet": _bag(order["current_total_tax"], currency),
            "currentTotalDiscountsSet": _bag(order["current_total_discounts"], currency),
            "currentSubtotalLineItemsQuantity": sum(i["current_quantity"] for i in order["line_items"]),
            "taxLines": [self._gql_tax(t, currency) for t in order["tax_lines"]],
            "lineItems": lambda info, **args: connection(list(lines.values()), lambda i: (i["_id"], i["_id"]),
                                                         None, **args),
            "shippingLines": lambda info, includeRemovals=False, **args: connection(
                shipping, lambda s: (s["_id"], s["_id"]), None, **args),
            "shippingLine": shipping[0] if shipping else None,
            "discountApplications": lambda info, **args: connection(
                [self._gql_discount_application(d, i, currency) for i, d in enumerate(order["discount_applications"])],
                lambda d: (d["index"], d["index"]), None, **args),
            "billingAddress": self._gql_address(order["billing_address"], order["id"]),
            "shippingAddress": self._gql_address(order["shipping_address"], order["id"] + 1),
            "billingAddressMatchesShippingAddress": order["billing_address"] == order["shipping_address"],
            "customer": self._gql_customer(order["customer"]),
            "refunds": lambda info, first=None: [self._gql_refund(r, order, lines) for r in order["refunds"]][:first],
            "transactions": lambda info, first=None: [self._gql_transaction(t, currency)
                                                      for t in extra["transactions"]][:first],
            "localizedFields": lambda info, countryCodes=None, purposes=None, **args: connection(
                [f for f in extra["localized_fields"] if (not countryCodes or f["countryCode"] in countryCodes)
                 and (not purposes or f["purpose"] in purposes)],
                lambda f: (f["key"], f["key"]), None, **args),
            "metafield": lambda info, key, namespace=None: self._gql_metafield(
                extra["metafields"].get((namespace or self._app_namespace(), key))),
            "metafields": lambda info, namespace=None, keys=None, **args: connection(
                [m for (ns, k), m in extra["metafields"].items()
                 if (namespace is None or ns == namespace) and (keys is None or f"{ns}.{k}" in keys)],
                lambda m: (m["id"], m["id"]), self._gql_metafield, **args),
        }

    @staticmethod
    def _gql_tax(tax: dict, currency: str) -> dict:
        return {"title": tax["title"], "rate": tax["rate"], "ratePercentage": round(tax["rate"] * 100, 2),
                "priceSet": _bag(tax["price"], currency), "channelLiable": tax.get("channel_liable", False),
                "source": "Shopify"}

    def _gql_line(self, item: dict, order: dict) -> dict:
        currency = order["currency"]
        price = Decimal(item["price"])
        discount = sum((Decimal(a["amount"]) for a in item["discount_allocations"]), Decimal(0))
        original = price * item["quantity"]
        per_unit_after = (original - discount) / item["quantity"] if item["quantity"] else Decimal(0)
        return {
            "__typename": "LineItem", "_id": item["id"],
            "id": item["admin_graphql_api_id"], "name": item["name"], "title": item["title"], "sku": item["sku"],
            "vendor": item["vendor"], "variantTitle": item["variant_title"], "quantity": item["quantity"],
            "currentQuantity": item["current_quantity"], "refundableQuantity": item["current_quantity"],
            "unfulfilledQuantity": item["current_quantity"], "taxable": item["taxable"],
            "isGiftCard": item["gift_card"], "requiresShipping": item["requires_shipping"],
            "originalUnitPriceSet": _bag(price, currency), "discountedUnitPriceSet": _bag(price, currency),
            "discountedUnitPriceAfterAllDiscountsSet": _bag(
                per_unit_after.quantize(Decimal(1), rounding=ROUND_HALF_UP), currency),
            "originalTotalSet": _bag(original, currency), "discountedTotalSet": _bag(original, currency),
            "totalDiscountSet": _bag(discount, currency),
            "taxLines": lambda info, first=None: [self._gql_tax(t, currency) for t in item["tax_lines"]][:first],
            "discountAllocations": [self._gql_allocation(a, order) for a in item["discount_allocations"]],
            "customAttributes": [{"key": p["name"], "value": p["value"]} for p in item["properties"]],
            "product": {"id": _gid("Product", item["product_id"]), "legacyResourceId": str(item["product_id"]),
                        "title": item["title"]},
            "variant": {"id": _gid("ProductVariant", item["variant_id"]), "legacyResourceId": str(item["variant_id"]),
                        "title": item["variant_title"] or "Default Title", "sku": item["sku"]},
        }

    def _gql_allocation(self, allocation: dict, order: dict) -> dict:
        index = allocation["discount_application_index"]
        application = order["discount_applications"][index]
        return {"allocatedAmountSet": _bag(allocation["amount"], order["currency"]),
                "discountApplication": self._gql_discount_application(application, index, order["currency"])}

    @staticmethod
    def _gql_discount_application(application: dict, index: int, currency: str) -> dict:
        if application["value_type"] == "percentage":
            value = {"__typename": "PricingPercentageValue", "percentage": float(application["value"])}
        else:
            value = {"__typename": "MoneyV2", "amount": _decimal(application["value"]), "currencyCode": currency}
        common = {"index": index, "allocationMethod": application["allocation_method"].upper(),
                  "targetSelection": application["target_selection"].upper(),
                  "targetType": application["target_type"].upper(), "value": value}
        if application["type"] == "discount_code":
            return {"__typename": "DiscountCodeApplication", "code": application["code"], **common}
        return {"__typename": "ManualDiscountApplication", "title": application.get("title") or "",
                "description": application.get("description"), **common}

    def _gql_shipping(self, line: dict, order: dict) -> dict:
        currency = order["currency"]
        return {"_id": line["id"], "id": _gid("ShippingLine", line["id"]), "title": line["title"],
                "code": line["code"], "source": line["source"], "carrierIdentifier": line["carrier_identifier"],
                "originalPriceSet": _bag(line["price"], currency),
                "discountedPriceSet": _bag(line["discounted_price"], currency),
                "currentDiscountedPriceSet": _bag(line["discounted_price"], currency),
                "taxLines": [self._gql_tax(t, currency) for t in line["tax_lines"]],
                "discountAllocations": [self._gql_allocation(a, order) for a in line["discount_allocations"]],
                "isRemoved": line["is_removed"]}

    @staticmethod
    def _gql_address(address: dict | None, number: int) -> dict | None:
        if not address:
            return None
        return {"id": _gid("MailingAddress", number) + "?model_name=Address", "firstName": address["first_name"],
                "lastName": address["last_name"], "name": address["name"], "company": address["company"],
                "address1": address["address1"], "address2": address["address2"], "city": address["city"],
                "province": address["province"], "provinceCode": address["province_code"], "zip": address["zip"],
                "country": address["country"], "countryCodeV2": address["country_code"], "phone": address["phone"],
                "formattedArea": f"{address['city']}, {address['country']}"}

    @staticmethod
    def _gql_customer(customer: dict | None) -> dict | None:
        if not customer:
            return None
        return {"id": customer["admin_graphql_api_id"], "legacyResourceId": str(customer["id"]),
                "firstName": customer["first_name"], "lastName": customer["last_name"],
                "displayName": f"{customer['first_name']} {customer['last_name']}", "email": customer["email"],
                "phone": customer["phone"], "defaultEmailAddress": {"emailAddress": customer["email"]},
                "defaultPhoneNumber": {"phoneNumber": customer["phone"]} if customer["phone"] else None,
                "taxExempt": customer["tax_exempt"]}

    def _gql_refund(self, refund: dict, order: dict, lines: dict[int, dict]) -> dict:
        currency = order["currency"]
        items = [{"_id": r["id"], "id": _gid("RefundLineItem", r["id"]), "lineItem": lines[r["line_item_id"]],
                  "quantity": r["quantity"], "restockType": r["restock_type"].upper(), "restocked": refund["restock"],
                  "priceSet": _bag(lines[r["line_item_id"]]["originalUnitPriceSet"]["shopMoney"]["amount"], currency),
                  "subtotalSet": _bag(r["subtotal"], currency), "totalTaxSet": _bag(r["total_tax"], currency)}
                 for r in refund["refund_line_items"]]
        transactions = [dict(self._gql_transaction(t, currency), _id=t["id"]) for t in refund["transactions"]]
        shipping = [{"_id": s["id"], "id": _gid("RefundShippingLine", s["id"]),
                     "shippingLine": self._gql_shipping(s["shipping_line"], order),
                     "subtotalAmountSet": _bag(s["subtotal_amount_set"]["shop_money"]["amount"], currency),
                     "taxAmountSet": _bag(s["tax_amount_set"]["shop_money"]["amount"], currency)}
                    for s in refund["refund_shipping_lines"]]
        total = sum((Decimal(t["amount"]) for t in refund["transactions"] if t["status"] == "success"), Decimal(0))
        return {"id": refund["admin_graphql_api_id"], "legacyResourceId": str(refund["id"]),
                "createdAt": _utc(refund["created_at"]), "updatedAt": _utc(refund["processed_at"]),
                "note": refund["note"], "totalRefundedSet": _bag(total, currency),
                "order": lambda info: self._gql_order(info.context["shop"], order),
                "refundLineItems": lambda info, **args: connection(items, lambda i: (i["_id"], i["_id"]), None, **args),
                "transactions": lambda info, **args: connection(transactions, lambda t: (t["_id"], t["_id"]), None,
                                                                **args),
                "refundShippingLines": lambda info, **args: connection(shipping, lambda s: (s["_id"], s["_id"]), None,
                                                                       **args)}

    @staticmethod
    def _gql_transaction(transaction: dict, currency: str) -> dict:
        return {"id": _gid("OrderTransaction", transaction["id"]), "kind": transaction["kind"].upper(),
                "status": transaction["status"].upper(), "gateway": transaction["gateway"],
                "amountSet": _bag(transaction["amount"], currency), "createdAt": _utc(transaction["created_at"]),
                "processedAt": _utc(transaction["processed_at"])}

    @staticmethod
    def _gql_metafield(metafield: dict | None) -> dict | None:
        if metafield is None:
            return None
        value = metafield["value"]
        json_value = json.loads(value) if metafield["type"] == "json" else value
        return {"id": _gid("Metafield", metafield["id"]), "legacyResourceId": str(metafield["id"]),
                "namespace": metafield["namespace"], "key": metafield["key"], "type": metafield["type"],
                "value": value, "jsonValue": json_value, "ownerType": "ORDER", "description": None,
                "createdAt": _utc(metafield["created_at"]), "updatedAt": _utc(metafield["updated_at"]),
                "compareDigest": metafield["compare_digest"]}

    # --- metafields --------------------------------------------------------------------------------

    def _app_namespace(self) -> str:
        return f"app--{int(hashlib.sha256(self.app.client_id.encode()).hexdigest()[:8], 16) % 10_000_000}"

    def _metafields_set(self, shop: Shop, info, inputs: list[dict]) -> dict:
        self._require(info, "write_orders")
        if len(inputs) > 25:
            return {"metafields": None, "userErrors": [{
                "field": ["metafields"], "message": "Exceeded the maximum metafields input limit of 25.",
                "code": "LESS_THAN_OR_EQUAL_TO", "elementIndex": None}]}
        errors, planned = [], []
        for index, item in enumerate(inputs):
            order_id = _gid_number(item["ownerId"], "Order")
            namespace = item.get("namespace") or self._app_namespace()
            key, value, kind = item["key"], item["value"], item.get("type")
            if order_id not in shop.orders:
                errors.append(self._mf_error(index, "ownerId", "Owner does not exist.", "INVALID"))
                continue
            current = shop.extras[order_id]["metafields"].get((namespace, key))
            problem = validate_metafield(namespace, key, value, kind or (current or {}).get("type"))
            if problem:
                errors.append(self._mf_error(index, *problem))
            elif item.get("compareDigest") is not None and (current is None
                                                            or current["compare_digest"] != item["compareDigest"]):
                errors.append(self._mf_error(
                    index, "compareDigest", "The resource has been updated since it was loaded. Try again with an "
                    "updated `compareDigest` value.", "STALE_OBJECT"))
            else:
                planned.append((order_id, namespace, key, value, kind or current["type"]))
        if errors:
            return {"metafields": [], "userErrors": errors}
        return {"metafields": [self._gql_metafield(self._write_metafield(shop, *p)) for p in planned],
                "userErrors": []}

    @staticmethod
    def _mf_error(index: int, field_name: str, message: str, code: str) -> dict:
        return {"field": ["metafields", str(index), field_name], "message": message, "code": code,
                "elementIndex": index}

    def _write_metafield(self, shop: Shop, order_id: int, namespace: str, key: str, value: str, kind: str) -> dict:
        now = _local(datetime.now(UTC))
        store = shop.extras[order_id]["metafields"]
        current = store.get((namespace, key))
        metafield = current or {"id": self._next_id(26_000_000_000), "namespace": namespace, "key": key,
                                "owner_id": order_id, "owner_resource": "order", "created_at": now}
        metafield.update(value=value, type=kind, updated_at=now,
                         compare_digest=hashlib.sha256(f"{namespace}.{key}={value}@{now}".encode()).hexdigest())
        store[(namespace, key)] = metafield
        return metafield

    @route("POST", r"/admin/api/(?P<version>\d{4}-\d{2})/orders/(?P<order>\d+)/metafields\.json",
           name="rest_metafield_create")
    def rest_metafield_create(self, request: Request) -> Response:
        shop = self._shop(request)
        token = self._authenticate(request, shop)
        if "write_orders" not in self._scopes(token):
            raise HttpError(403, {"errors": "[API] This action requires merchant approval for write_orders scope."})
        order_id = int(request.params["order"])
        body = request.json()
        metafield = body.get("metafield") if isinstance(body, dict) else None
        if not isinstance(metafield, dict):
            raise HttpError(400, {"errors": {"metafield": "Required parameter missing or invalid"}})
        with self.lock:
            if order_id not in shop.orders:
                raise HttpError(404, {"errors": "Not Found"})
            namespace, key = str(metafield.get("namespace") or ""), str(metafield.get("key") or "")
            value, kind = metafield.get("value"), metafield.get("type")
            if (namespace, key) in shop.extras[order_id]["metafields"]:
                raise HttpError(422, {"errors": {"key": ["must be unique within this namespace on this resource"]}})
            problem = validate_metafield(namespace, key, str(value) if value is not None else "", kind)
            if problem:
                raise HttpError(422, {"errors": {problem[0]: [problem[1]]}})
            saved = self._write_metafield(shop, order_id, namespace, key, str(value), kind)
        return Response(201, {"metafield": self._rest_metafield(saved)})

    @route("GET", r"/admin/api/(?P<version>\d{4}-\d{2})/orders/(?P<order>\d+)/metafields\.json",
           name="rest_metafield_list")
    def rest_metafield_list(self, request: Request) -> Response:
        shop = self._shop(request)
        self._authenticate(request, shop)
        extra = shop.extras.get(int(request.params["order"]))
        if extra is None:
            raise HttpError(404, {"errors": "Not Found"})
        return Response(200, {"metafields": [self._rest_metafield(m) for m in extra["metafields"].values()]})

    @staticmethod
    def _rest_metafield(metafield: dict) -> dict:
        return {"id": metafield["id"], "namespace": metafield["namespace"], "key": metafield["key"],
                "value": metafield["value"], "description": None, "owner_id": metafield["owner_id"],
                "created_at": metafield["created_at"], "updated_at": metafield["updated_at"],
                "owner_resource": "order", "type": metafield["type"],
                "admin_graphql_api_id": _gid("Metafield", metafield["id"])}

    # --- webhook subscriptions -------------------------------------------------------------------

    def _subscriptions(self, shop: Shop, info, topics=None, uri=None, callbackUrl=None, format=None,
                       query=None, **args):
        subscriptions = [s for s in shop.subscriptions.values()
                         if (not topics or s["topic"] in topics) and (uri is None or s["uri"] == uri)
                         and (callbackUrl is None or s["uri"] == callbackUrl)
                         and (format is None or s["format"] == format)]
        return connection(subscriptions, lambda s: (s["id"], s["id"]), self._subscription_node, **args)

    def _subscription_node(self, subscription: dict | None) -> dict | None:
        if subscription is None:
            return None
        return {"id": _gid("WebhookSubscription", subscription["id"]), "legacyResourceId": str(subscription["id"]),
                "topic": subscription["topic"], "uri": subscription["uri"], "callbackUrl": subscription["uri"],
                "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": subscription["uri"]},
                "format": subscription["format"], "includeFields": subscription["include_fields"],
                "metafieldNamespaces": subscription["metafield_namespaces"], "filter": subscription["filter"],
                "apiVersion": {"handle": self.app.api_version, "displayName": self.app.api_version, "supported": True},
                "createdAt": _utc(subscription["created_at"]), "updatedAt": _utc(subscription["updated_at"])}

    def _subscribe(self, shop: Shop, info, topic: str, spec: dict) -> dict:
        uri = spec.get("uri") or spec.get("callbackUrl")
        errors = self._subscription_errors(shop, topic, uri, info.context["scopes"], None)
        if errors:
            return {"webhookSubscription": None, "userErrors": errors}
        now = _local(datetime.now(UTC))
        subscription = {"id": self._next_id(1_400_000_000_000), "topic": topic, "uri": uri,
                        "format": spec.get("format") or "JSON", "include_fields": spec.get("includeFields") or [],
                        "metafield_namespaces": spec.get("metafieldNamespaces") or [], "filter": spec.get("filter"),
                        "created_at": now, "updated_at": now}
        shop.subscriptions[subscription["id"]] = subscription
        return {"webhookSubscription": self._subscription_node(subscription), "userErrors": []}

    def _subscription_errors(self, shop: Shop, topic: str, uri: str | None, scopes: set[str],
                             same: int | None) -> list[dict]:
        if not uri:
            return [{"field": ["webhookSubscription", "uri"], "message": "Address can't be blank"}]
        if not _allowed_url(uri):
            return [{"field": ["webhookSubscription", "uri"], "message": "Address protocol http:// is not supported"
                     if uri.startswith("http://") else "Address is invalid"}]
        needs = "read_orders" if topic.startswith(("ORDERS_", "REFUNDS_")) else None
        if needs and needs not in scopes:
            return [{"field": ["webhookSubscription"], "message": f"You do not have permission to create or update "
                     f"webhooks with {topic.lower().replace('_', '/', 1)} topic. This topic requires `{needs}`."}]
        if any(s["topic"] == topic and s["uri"] == uri and s["id"] != same for s in shop.subscriptions.values()):
            return [{"field": ["webhookSubscription", "callbackUrl"],
                     "message": "Address for this topic has already been taken"}]
        return []

    def _update_subscription(self, shop: Shop, gid: str, spec: dict) -> dict:
        subscription = shop.subscriptions.get(_gid_number(gid, "WebhookSubscription"))
        if subscription is None:
            return {"webhookSubscription": None,
                    "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}]}
        uri = spec.get("uri") or spec.get("callbackUrl") or subscription["uri"]
        errors = self._subscription_errors(shop, subscription["topic"], uri, {"read_orders"}, subscription["id"])
        if errors:
            return {"webhookSubscription": None, "userErrors": errors}
        subscription.update(uri=uri, updated_at=_local(datetime.now(UTC)))
        for name, key in (("format", "format"), ("includeFields", "include_fields"),
                          ("metafieldNamespaces", "metafield_namespaces"), ("filter", "filter")):
            if spec.get(name) is not None:
                subscription[key] = spec[name]
        return {"webhookSubscription": self._subscription_node(subscription), "userErrors": []}

    @staticmethod
    def _unsubscribe(shop: Shop, gid: str) -> dict:
        number = _gid_number(gid, "WebhookSubscription")
        if shop.subscriptions.pop(number, None) is None:
            return {"deletedWebhookSubscriptionId": None,
                    "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}]}
        return {"deletedWebhookSubscriptionId": gid, "userErrors": []}

    # --- orders: building and changing the stored REST record -------------------------------------

    def _address(self, sale: Sale) -> dict:
        buyer = sale.buyer
        return {"first_name": buyer.first_name, "last_name": buyer.last_name, "name": buyer.name,
                "company": sale.company.razon_social if sale.company else None, "address1": buyer.address1,
                "address2": buyer.address2, "city": buyer.comuna, "province": buyer.region,
                "province_code": buyer.region_code, "zip": buyer.postcode, "country": "Chile",
                "country_code": "CL", "phone": buyer.phone, "latitude": None, "longitude": None}

    def _line_item(self, line: Line, discount_index: int | None) -> dict:
        item_id = self._next_id(14_501_230_000_000)
        product_id = 8_234_500_000 + sum(map(ord, line.sku))
        return {
            "id": item_id, "admin_graphql_api_id": _gid("LineItem", item_id), "product_id": product_id,
            "variant_id": product_id * 10 + 1, "title": line.name, "name": line.name, "variant_title": None,
            "sku": line.sku, "vendor": "Tienda", "quantity": line.quantity, "current_quantity": line.quantity,
            "fulfillable_quantity": line.quantity, "fulfillment_status": None, "price": _money(line.unit_gross),
            "price_set": _money_set(line.unit_gross), "total_discount": "0.00", "total_discount_set": _money_set(0),
            "taxable": True, "gift_card": False, "requires_shipping": True, "product_exists": True,
            "properties": [], "tax_lines": [],
            "discount_allocations": [{"amount": _money(line.discount), "amount_set": _money_set(line.discount),
                                      "discount_application_index": discount_index}]
            if line.discount and discount_index is not None else [],
        }

    def _build_order(self, shop: Shop, sale: Sale, created: datetime, financial_status: str,
                     rut_field: str) -> dict:
        order_id = self._next_id(5_812_340_000_000)
        number = 1000 + len(shop.orders) + 1
        stamp = _local(created)
        discount_applications = [{"target_type": "line_item", "type": "discount_code", "value": "10.0",
                                  "value_type": "percentage", "allocation_method": "across",
                                  "target_selection": "entitled", "code": sale.coupon}] if sale.coupon else []
        attributes = [{"name": "Tipo de documento", "value": sale.document.capitalize()}]
        localized = []
        if sale.company and rut_field in ("note_attributes", "both"):
            attributes += [{"name": "RUT", "value": sale.company.rut},
                           {"name": "Razón social", "value": sale.company.razon_social},
                           {"name": "Giro", "value": sale.company.giro}]
        if sale.company and rut_field in ("localized_fields", "both"):
            localized.append({"countryCode": "CL", "key": "TAX_CREDENTIAL_CL", "purpose": "TAX", "title": "RUT",
                              "value": sale.company.rut})
        buyer = sale.buyer
        customer_id = 7_012_345_000_000 + sum(map(ord, buyer.email))
        address = self._address(sale)
        shipping_lines = []
        if sale.shipping:
            title, code, price = sale.shipping
            shipping_lines.append({
                "id": self._next_id(4_401_230_000), "title": title, "code": code, "source": "shopify",
                "carrier_identifier": None, "price": _money(price), "price_set": _money_set(price),
                "discounted_price": _money(price), "discounted_price_set": _money_set(price),
                "discount_allocations": [], "tax_lines": [], "is_removed": False, "phone": None,
                "requested_fulfillment_service_id": None, "delivery_category": None})
        gateway = {"webpay_plus": "webpay_plus", "mercadopago": "mercado_pago", "flow": "flow"}[sale.payment]
        order = {
            "id": order_id, "admin_graphql_api_id": _gid("Order", order_id), "name": f"#{number}",
            "order_number": number, "number": number - 1000, "token": secrets.token_hex(16),
            "confirmation_number": "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9)),
            "email": buyer.email, "contact_email": buyer.email, "phone": None,
            "created_at": stamp, "updated_at": stamp, "processed_at": stamp, "closed_at": None,
            "cancelled_at": None, "cancel_reason": None, "currency": "CLP", "presentment_currency": "CLP",
            "financial_status": financial_status, "fulfillment_status": None, "confirmed": True, "test": False,
            "taxes_included": True, "tax_exempt": False, "estimated_taxes": False, "source_name": "web",
            "gateway": gateway, "payment_gateway_names": [gateway], "tags": "", "note": sale.note or None,
            "note_attributes": attributes, "buyer_accepts_marketing": False, "browser_ip": "190.100.12.34",
            "customer_locale": "es-CL", "landing_site": "/", "referring_site": "",
            "discount_codes": [{"code": sale.coupon, "amount": _money(sale.discount), "type": "percentage"}]
            if sale.coupon else [],
            "discount_applications": discount_applications,
            "line_items": [self._line_item(line, 0 if sale.coupon else None) for line in sale.lines],
            "shipping_lines": shipping_lines,
            "billing_address": address, "shipping_address": dict(address),
            "customer": {"id": customer_id, "admin_graphql_api_id": _gid("Customer", customer_id),
                         "email": buyer.email, "first_name": buyer.first_name, "last_name": buyer.last_name,
                         "phone": buyer.phone, "state": "enabled", "currency": "CLP", "tax_exempt": False,
                         "verified_email": True, "created_at": stamp, "updated_at": stamp, "note": None,
                         "tags": "", "default_address": dict(address, id=customer_id + 1, customer_id=customer_id,
                                                             default=True)},
            "order_status_url": f"https://{shop.domain}/{shop.id}/orders/{secrets.token_hex(16)}/authenticate"
                                f"?key={secrets.token_hex(6)}",
            "total_tip_received": "0.00", "total_weight": 0, "refunds": [], "fulfillments": [],
        }
        shop.orders[order_id] = order
        transactions = []
        if financial_status == "paid":
            transactions.append(self._transaction(order, "sale", sale.total, stamp))
        shop.extras[order_id] = {"transactions": transactions, "localized_fields": localized, "metafields": {}}
        recompute_order(order)
        return order

    def _transaction(self, order: dict, kind: str, amount, stamp: str) -> dict:
        return {"id": self._next_id(7_301_234_000), "order_id": order["id"], "kind": kind,
                "gateway": order["gateway"], "status": "success", "amount": _money(amount), "currency": "CLP",
                "created_at": stamp, "processed_at": stamp, "parent_id": None, "test": False}

    def _refund(self, order: dict, lines: list[dict], shipping: bool, note: str, stamp: str) -> dict:
        refund_id = self._next_id(930_123_000_000)
        items_by_id = {item["id"]: item for item in order["line_items"]}
        refund_lines, amount = [], Decimal(0)
        for wanted in lines:
            item = items_by_id.get(int(wanted["line_item_id"]))
            if item is None:
                raise HttpError(422, {"errors": {"refund_line_items": [
                    f"line item {wanted['line_item_id']} not found"]}})
            quantity = min(int(wanted.get("quantity", item["current_quantity"])), item["current_quantity"])
            if quantity <= 0:
                raise HttpError(422, {"errors": {"refund_line_items": ["nothing left to refund on that line"]}})
            unit_discount = sum((Decimal(a["amount"]) for a in item["discount_allocations"]), Decimal(0)) \
                / item["quantity"]
            subtotal = (Decimal(item["price"]) - unit_discount) * quantity
            subtotal = subtotal.quantize(Decimal(1), rounding=ROUND_HALF_UP)
            tax = iva_of(int(subtotal))
            item["current_quantity"] -= quantity
            item["fulfillable_quantity"] = item["current_quantity"]
            refund_lines.append({"id": self._next_id(610_012_000), "line_item_id": item["id"], "quantity": quantity,
                                 "restock_type": "return", "location_id": None, "subtotal": float(subtotal),
                                 "subtotal_set": _money_set(subtotal), "total_tax": float(tax),
                                 "total_tax_set": _money_set(tax), "line_item": dict(item)})
            amount += subtotal
        adjustments, shipping_refunds = [], []
        if shipping:
            for line in order["shipping_lines"]:
                price = Decimal(line["discounted_price"])
                tax = iva_of(int(price))
                adjustments.append({"id": self._next_id(250_000_000), "order_id": order["id"], "refund_id": refund_id,
                                    "amount": _money(-price), "tax_amount": _money(-tax), "kind": "shipping_refund",
                                    "reason": "Shipping refund", "amount_set": _money_set(-price),
                                    "tax_amount_set": _money_set(-tax)})
                shipping_refunds.append({"id": self._next_id(260_000_000), "shipping_line": dict(line),
                                         "subtotal_amount_set": _money_set(price - tax),
                                         "tax_amount_set": _money_set(tax)})
                amount += price
        refund = {"id": refund_id, "order_id": order["id"], "admin_graphql_api_id": _gid("Refund", refund_id),
                  "created_at": stamp, "processed_at": stamp, "note": note or None, "restock": True,
                  "user_id": None, "refund_line_items": refund_lines, "order_adjustments": adjustments,
                  "refund_shipping_lines": shipping_refunds, "duties": [], "total_duties_set": _money_set(0),
                  "transactions": [self._transaction(order, "refund", amount, stamp)]}
        order["refunds"].append(refund)
        already = sum((Decimal(t["amount"]) for r in order["refunds"] for t in r["transactions"]), Decimal(0))
        order["financial_status"] = "refunded" if already >= Decimal(order["total_price"]) else "partially_refunded"
        return refund

    # --- deliveries ------------------------------------------------------------------------------

    def _targets(self, shop: Shop, topic: str) -> list[dict]:
        enum = topic_enum(topic)
        targets = [{"uri": s["uri"], "include_fields": s["include_fields"]}
                   for s in shop.subscriptions.values() if s["topic"] == enum and s["format"] == "JSON"]
        targets += [{"uri": w["uri"], "include_fields": w.get("include_fields") or []}
                    for w in self.app.webhooks if topic in w.get("topics", ())]
        return targets

    def _plan(self, shop: Shop, topic: str, payload: dict) -> list[dict]:
        """The deliveries one event makes (built under the lock, sent after it is released)."""
        event_id = str(uuid.uuid4())
        triggered = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        planned = []
        for target in self._targets(shop, topic):
            body_data = {k: v for k, v in payload.items() if k in target["include_fields"]} \
                if target["include_fields"] else payload
            planned.append(self._signed(shop, topic, target["uri"], shopify_json(body_data), event_id, triggered))
        return planned

    def _signed(self, shop: Shop, topic: str, url: str, body: bytes, event_id: str, triggered: str) -> dict:
        headers = {"User-Agent": "Shopify-Captain-Hook", "X-Shopify-Topic": topic,
                   "X-Shopify-Hmac-Sha256": webhook_hmac(body, self.app.client_secret),
                   "X-Shopify-Shop-Domain": shop.domain, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                   "X-Shopify-Event-Id": event_id, "X-Shopify-API-Version": self.app.api_version,
                   "X-Shopify-Triggered-At": triggered}
        return {"url": url, "topic": topic, "shop": shop.domain, "body": body, "headers": headers}

    def _send(self, planned: list[dict]) -> list[dict]:
        """Sends outside the lock (a receiver may call back into the simulator) and records every answer."""
        records = []
        for delivery in planned:
            record = {"topic": delivery["topic"], "shop": delivery["shop"], "url": delivery["url"],
                      "webhook_id": delivery["headers"]["X-Shopify-Webhook-Id"],
                      "event_id": delivery["headers"].get("X-Shopify-Event-Id"), "duplicate": False}
            if self.rng.random() < self.delivery_faults["drop_rate"]:
                records.append(dict(record, status=None, dropped=True))
                continue
            copies = 2 if self.rng.random() < self.delivery_faults["duplicate_rate"] else 1
            for copy in range(copies):
                status, _ = post_json(delivery["url"], delivery["body"], delivery["headers"],
                                      timeout=self.delivery_faults["timeout"])
                records.append(dict(record, status=status, dropped=False, duplicate=copy > 0))
        with self.lock:
            self.deliveries.extend(records)
            for record in records:
                self.counters[f"deliveries:{record['topic']}"] += 1
        return records

    # --- control routes --------------------------------------------------------------------------

    CONTROL = re.compile(r"/_sim/shops/(?P<shop>[a-z0-9-]+\.myshopify\.com)/(?P<action>[a-z-]+)"
                         r"(?:/(?P<order>\d+)/(?P<change>pay|update|edit|refund|cancel))?")

    def control(self, request: Request) -> Response | None:
        path, method = request.path, request.method
        body = request.json() if request.body else {}
        if not isinstance(body, dict):
            return Response(400, {"error": "expected a JSON object"})
        if method == "POST" and path == "/_sim/app":
            with self.lock:
                for key, value in body.items():
                    if key not in App.__dataclass_fields__:
                        return Response(400, {"error": f"unknown app setting {key!r}"})
                    setattr(self.app, key, value)
            return Response(200, {"app": asdict(self.app)})
        if method == "POST" and path == "/_sim/consent":
            with self.lock:
                self.consent.update({k: v for k, v in body.items() if k in self.consent})
            return Response(200, {"consent": dict(self.consent)})
        if method == "POST" and path == "/_sim/deliveries":
            with self.lock:
                self.delivery_faults.update({k: float(v) for k, v in body.items() if k in self.delivery_faults})
            return Response(200, {"delivery_faults": dict(self.delivery_faults)})
        if method == "GET" and path == "/_sim/deliveries":
            return Response(200, {"deliveries": list(self.deliveries)})
        if method == "POST" and path == "/_sim/shops":
            domain = str(body.get("shop", "")).lower()
            if not SHOP_DOMAIN.fullmatch(domain):
                return Response(400, {"error": "shop must be <name>.myshopify.com"})
            with self.lock:
                shop = self.shops.get(domain) or self._add_shop(domain)
            return Response(201, {"shop": shop.domain, "id": shop.id, "base_url": self.shop_url(domain)})
        match = self.CONTROL.fullmatch(path)
        if method != "POST" or match is None:
            return None
        shop = self.shops.get(match["shop"])
        if shop is None:
            return Response(404, {"error": f"no shop {match['shop']}"})
        action = match["action"]
        if action == "orders" and match["order"]:
            return self._change_order(shop, int(match["order"]), match["change"], body)
        handler = {"orders": self._create_orders, "uninstall": self._uninstall, "compliance": self._compliance,
                   "legacy-token": self._legacy_token, "expire-tokens": self._expire_tokens,
                   "bucket": self._set_bucket, "launch": self._launch}.get(action)
        return handler(shop, body) if handler else None

    def _create_orders(self, shop: Shop, body: dict) -> Response:
        count = int(body.get("count", 1))
        financial_status = body.get("financial_status", "paid")
        created = datetime.fromisoformat(body["created_at"]) if body.get("created_at") else datetime.now(UTC)
        planned, created_orders = [], []
        with self.lock:
            for _ in range(count):
                sale = random_sale(self.rng, body.get("document"))
                order = self._build_order(shop, sale, created, financial_status,
                                          body.get("rut_field", "note_attributes"))
                order.update(body.get("order") or {})
                created_orders.append(order)
                planned += self._plan(shop, "orders/create", order)
                if financial_status == "paid":
                    planned += self._plan(shop, "orders/paid", order)
        deliveries = self._send(planned)
        return Response(201, {"orders": created_orders, "deliveries": deliveries})

    def _change_order(self, shop: Shop, order_id: int, change: str, body: dict) -> Response:
        stamp = _local(datetime.now(UTC))
        with self.lock:
            order = shop.orders.get(order_id)
            if order is None:
                return Response(404, {"error": f"no order {order_id} in {shop.domain}"})
            events: list[tuple[str, dict]] = []
            if change == "pay":
                if order["financial_status"] != "pending":
                    return Response(409, {"error": f"order is {order['financial_status']}, not pending"})
                order["financial_status"] = "paid"
                order["processed_at"] = stamp
                shop.extras[order_id]["transactions"].append(
                    self._transaction(order, "sale", order["total_price"], stamp))
                events.append(("orders/paid", order))
            elif change == "update":
                for key in ("note", "tags", "note_attributes", "billing_address", "shipping_address", "email"):
                    if key in body:
                        order[key] = body[key]
            elif change == "edit":
                events.append(("orders/edited", {"order_edit": self._edit(order, body, stamp)}))
            elif change == "refund":
                lines = body.get("line_items") or [{"line_item_id": order["line_items"][0]["id"], "quantity": 1}]
                refund = self._refund(order, lines, bool(body.get("shipping")), body.get("note", ""), stamp)
                events.append(("refunds/create", refund))
            else:
                if order["cancelled_at"]:
                    return Response(409, {"error": "order is already cancelled"})
                order["cancelled_at"] = order["closed_at"] = stamp
                order["cancel_reason"] = body.get("reason", "customer")
                events.append(("orders/cancelled", order))
                if order["financial_status"] in ("paid", "partially_refunded"):
                    lines = [{"line_item_id": i["id"], "quantity": i["current_quantity"]}
                             for i in order["line_items"] if i["current_quantity"]]
                    events.append(("refunds/create", self._refund(
                        order, lines, bool(order["shipping_lines"]), "Pedido cancelado", stamp)))
                elif order["financial_status"] == "pending":
                    order["financial_status"] = "voided"
            order["updated_at"] = stamp
            recompute_order(order)
            events.append(("orders/updated", order))
            planned = [delivery for topic, payload in events for delivery in self._plan(shop, topic, payload)]
        return Response(200, {"order": order, "deliveries": self._send(planned)})

    def _edit(self, order: dict, body: dict, stamp: str) -> dict:
        """Removes quantity from a line (``line_item_id``, ``quantity``: the new quantity) or adds a line."""
        edit = {"id": self._next_id(91_000_000), "app_id": None, "created_at": stamp, "notify_customer": False,
                "order_id": order["id"], "staff_note": "", "user_id": None,
                "line_items": {"additions": [], "removals": []},
                "discounts": {"line_item": {"additions": [], "removals": []}},
                "shipping_lines": {"additions": [], "removals": []}}
        if body.get("add"):
            added = body["add"]
            item = self._line_item(Line(added["name"], added["sku"], int(added.get("quantity", 1)),
                                        int(added["price"])), None)
            order["line_items"].append(item)
            edit["line_items"]["additions"].append({"id": item["id"], "delta": item["quantity"]})
            return edit
        item = next((i for i in order["line_items"] if i["id"] == int(body.get("line_item_id", 0))),
                    order["line_items"][0])
        new_quantity = max(0, min(int(body.get("quantity", item["current_quantity"] - 1)), item["current_quantity"]))
        delta = item["current_quantity"] - new_quantity
        item["current_quantity"] = item["fulfillable_quantity"] = new_quantity
        edit["line_items"]["removals"].append({"id": item["id"], "delta": delta})
        return edit

    def _uninstall(self, shop: Shop, body: dict) -> Response:
        with self.lock:
            payload = self._shop_payload(shop)
            planned = self._plan(shop, "app/uninstalled", payload)
            for record in self.tokens.values():
                if record["shop"] == shop.domain:
                    record["revoked"] = True
            for record in self.refresh_tokens.values():
                if record["shop"] == shop.domain:
                    record["retired"] = True
            shop.subscriptions.clear()
            shop.installed, shop.scopes = False, set()
        return Response(200, {"deliveries": self._send(planned)})

    def _shop_payload(self, shop: Shop) -> dict:
        return {"id": shop.id, "name": shop.name.replace("-", " ").title(), "email": f"contacto@{shop.name}.cl",
                "domain": shop.domain, "province": "Región Metropolitana", "country": "CL",
                "address1": "Av. Providencia 1208",
                "zip": "7500000", "city": "Providencia", "source": None, "phone": "+56 2 2345 6789",
                "created_at": "2025-03-04T11:20:00-03:00", "updated_at": _local(datetime.now(UTC)),
                "customer_email": f"contacto@{shop.name}.cl", "currency": "CLP", "country_code": "CL",
                "country_name": "Chile", "timezone": "(GMT-03:00) America/Santiago",
                "iana_timezone": "America/Santiago",
                "shop_owner": "Carolina Vergara", "money_format": "${{amount_no_decimals_with_comma_separator}}",
                "taxes_included": True, "tax_shipping": None, "plan_name": "basic", "plan_display_name": "Basic",
                "myshopify_domain": shop.domain, "primary_locale": "es", "enabled_presentment_currencies": ["CLP"]}

    def _compliance(self, shop: Shop, body: dict) -> Response:
        topic = body.get("topic")
        if topic not in COMPLIANCE_TOPICS:
            return Response(400, {"error": f"topic must be one of {COMPLIANCE_TOPICS}"})
        if not self.app.compliance_url:
            return Response(409, {"error": "the app has no compliance_url (POST /_sim/app)"})
        with self.lock:
            orders = list(shop.orders.values())[:3]
            customer = orders[0]["customer"] if orders else {"id": 7012345678901, "email": "cliente@example.cl",
                                                              "phone": None}
            payload = {"shop_id": shop.id, "shop_domain": shop.domain}
            who = {"id": customer["id"], "email": customer["email"], "phone": customer.get("phone")}
            if topic == "customers/data_request":
                payload.update(orders_requested=[o["id"] for o in orders], customer=who,
                               data_request={"id": self._next_id(9_000)})
            elif topic == "customers/redact":
                payload.update(customer=who, orders_to_redact=[o["id"] for o in orders])
            triggered = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            planned = [self._signed(shop, topic, self.app.compliance_url, shopify_json(payload), str(uuid.uuid4()),
                                    triggered)]
        return Response(200, {"payload": payload, "deliveries": self._send(planned)})

    def _legacy_token(self, shop: Shop, body: dict) -> Response:
        token = "shpat_" + secrets.token_hex(16)
        scope = body.get("scope", "read_orders,write_orders")
        with self.lock:
            self.tokens[token] = {"shop": shop.domain, "scope": scope, "kind": "legacy", "expires_at": None,
                                  "revoked": False}
            shop.installed, shop.scopes = True, set(scope.split(","))
        return Response(201, {"access_token": token, "scope": scope})

    def _expire_tokens(self, shop: Shop, body: dict) -> Response:
        now = time.time() - 1
        expired = 0
        with self.lock:
            if body.get("access", True):
                for record in self.tokens.values():
                    if record["shop"] == shop.domain and record["expires_at"] is not None:
                        record["expires_at"] = min(record["expires_at"], now)
                        expired += 1
            if body.get("refresh", False):
                for record in self.refresh_tokens.values():
                    if record["shop"] == shop.domain:
                        record["expires_at"] = min(record["expires_at"], now)
                        expired += 1
        return Response(200, {"expired": expired})

    def _set_bucket(self, shop: Shop, body: dict) -> Response:
        with self.lock:
            bucket = Bucket(body.get("maximum_available", shop.bucket.maximum),
                            body.get("restore_rate", shop.bucket.restore_rate))
            if "currently_available" in body:
                bucket.available = float(body["currently_available"])
            shop.bucket = bucket
            return Response(200, {"throttleStatus": bucket.status()})

    def _launch(self, shop: Shop, body: dict) -> Response:
        """The signed URL Shopify opens on the app when a merchant installs it from the App Store."""
        params = {"host": self._host_param(shop), "shop": shop.domain, "timestamp": str(int(time.time()))}
        params["hmac"] = query_hmac(params, self.app.client_secret)
        return Response(200, {"url": f"{self.app.app_url}?{urlencode(sorted(params.items()))}"})


# --- pieces without state ---------------------------------------------------------------------------


def recompute_order(order: dict) -> None:
    """Every total of a REST order from its lines, shipping and refunds, as Shopify keeps them."""
    def taxes(gross: int) -> list[dict]:
        tax = iva_of(gross)
        return [{"title": "IVA", "price": _money(tax), "price_set": _money_set(tax), "rate": 0.19,
                 "channel_liable": False}]

    line_total = discount_total = tax_total = current_subtotal = current_tax = 0
    for item in order["line_items"]:
        price = int(Decimal(item["price"]))
        discount = int(sum((Decimal(a["amount"]) for a in item["discount_allocations"]), Decimal(0)))
        gross = price * item["quantity"] - discount
        item["tax_lines"] = taxes(gross) if item["taxable"] else []
        line_total += price * item["quantity"]
        discount_total += discount
        tax_total += iva_of(gross) if item["taxable"] else 0
        current_gross = (Decimal(gross) * item["current_quantity"] / item["quantity"]).quantize(
            Decimal(1), rounding=ROUND_HALF_UP) if item["quantity"] else Decimal(0)
        current_subtotal += int(current_gross)
        current_tax += iva_of(int(current_gross)) if item["taxable"] else 0
    shipping_total = 0
    for line in order["shipping_lines"]:
        price = int(Decimal(line["discounted_price"]))
        line["tax_lines"] = taxes(price)
        shipping_total += price
        tax_total += iva_of(price)
    refunded_shipping = sum((-int(Decimal(a["amount"])) for r in order["refunds"] for a in r["order_adjustments"]
                             if a["kind"] == "shipping_refund"), 0)
    subtotal = line_total - discount_total
    total = subtotal + shipping_total
    current_total = current_subtotal + shipping_total - refunded_shipping
    if order["cancelled_at"] and order["financial_status"] == "voided":
        current_total = current_subtotal = current_tax = 0
    current_tax += iva_of(shipping_total - refunded_shipping)
    paid = order["financial_status"] in ("paid", "partially_refunded", "refunded")
    for key, value in (("total_line_items_price", line_total), ("total_discounts", discount_total),
                       ("subtotal_price", subtotal), ("total_price", total), ("total_tax", tax_total),
                       ("current_subtotal_price", current_subtotal), ("current_total_price", current_total),
                       ("current_total_tax", current_tax), ("current_total_discounts", discount_total),
                       ("total_outstanding", 0 if paid else total)):
        order[key] = _money(value)
        order[f"{key}_set"] = _money_set(value)
    order["total_shipping_price_set"] = _money_set(shipping_total)
    order["tax_lines"] = [{"title": "IVA", "price": _money(tax_total), "price_set": _money_set(tax_total),
                           "rate": 0.19, "channel_liable": False}]


def validate_metafield(namespace: str, key: str, value: str, kind: str | None) -> tuple[str, str, str] | None:
    """(field, message, code) of the first problem Shopify would report, or None."""
    if not kind:
        return "type", "Type can't be blank.", "BLANK"
    if not 3 <= len(namespace) <= 255:
        return "namespace", "Namespace is too short or too long (3 to 255 characters).", "INVALID"
    if not 2 <= len(key) <= 64 or not re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return "key", "Key must be 2 to 64 characters: letters, digits, underscores and hyphens.", "INVALID"
    if kind == "json":
        try:
            json.loads(value)
        except ValueError as exc:
            return "value", f"Value is invalid JSON: {exc}.", "INVALID_VALUE"
    elif kind == "single_line_text_field" and "\n" in value:
        return "value", "Value must be a single line text string.", "INVALID_VALUE"
    elif kind == "number_integer" and not re.fullmatch(r"-?\d+", value):
        return "value", "Value must be an integer.", "INVALID_VALUE"
    elif kind not in ("json", "single_line_text_field", "multi_line_text_field", "number_integer", "url",
                      "boolean", "date", "date_time", "number_decimal"):
        return "type", f"Type '{kind}' is not a valid type.", "INVALID_TYPE"
    return None


def _order_datetime(field_name: str):
    return lambda o: datetime.fromisoformat(o[field_name]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


ORDER_SORT_KEYS = {
    "ID": lambda o: o["id"],
    "CREATED_AT": _order_datetime("created_at"),
    "UPDATED_AT": _order_datetime("updated_at"),
    "PROCESSED_AT": _order_datetime("processed_at"),
    "ORDER_NUMBER": lambda o: o["order_number"],
    "TOTAL_PRICE": lambda o: float(o["total_price"]),
    "FINANCIAL_STATUS": lambda o: o["financial_status"],
    "CUSTOMER_NAME": lambda o: (o["billing_address"] or {}).get("name") or "",
}
SEARCH_TERM = re.compile(r"""(?P<neg>-)?(?P<field>\w+):(?P<op><=|>=|<|>)?(?P<value>'[^']*'|"[^"]*"|\S+)""")
SEARCH_DATES = ("updated_at", "created_at", "processed_at")


def _search_date(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value \
        else datetime.fromisoformat(value + "T00:00:00")
    return moment if moment.tzinfo else moment.replace(tzinfo=SHOP_TZ)


def parse_order_search(query: str) -> tuple[list, list[dict]]:
    """Shopify's search syntax, the part an order poller uses: predicates, and warnings for the rest."""
    predicates, warnings = [], []
    for token in re.findall(r"""(?:[^\s'"]+|'[^']*'|"[^"]*")+""", query):
        if token.upper() in ("AND", "OR"):
            continue
        match = SEARCH_TERM.fullmatch(token)
        if match is None:
            warnings.append({"field": None, "message": f"Unsupported search term {token!r}."})
            continue
        name, op, value, negate = match["field"], match["op"] or "", match["value"].strip("'\""), bool(match["neg"])
        predicate = None
        if name in SEARCH_DATES:
            try:
                bound = _search_date(value)
            except ValueError:
                warnings.append({"field": name, "message": f"Invalid date value {value!r}."})
                continue
            compare = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
                       "<=": lambda a, b: a <= b, "": lambda a, b: a.date() == b.date()}[op]
            predicate = (lambda n, c, b: lambda o: c(datetime.fromisoformat(o[n]), b))(name, compare, bound)
        elif name == "financial_status":
            predicate = (lambda v: lambda o: o["financial_status"] == v)(value.lower())
        elif name == "status":
            states = {"open": lambda o: not o["closed_at"] and not o["cancelled_at"],
                      "closed": lambda o: bool(o["closed_at"]), "cancelled": lambda o: bool(o["cancelled_at"]),
                      "any": lambda o: True}
            predicate = states.get(value.lower())
        elif name == "id" and value.isdigit():
            compare = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "": operator.eq}[op]
            predicate = (lambda c, n: lambda o: c(o["id"], n))(compare, int(value))
        elif name == "name":
            predicate = (lambda v: lambda o: o["name"].lstrip("#") == v.lstrip("#"))(value)
        if predicate is None:
            warnings.append({"field": name, "message": "Invalid search field for this query."})
            continue
        predicates.append((lambda p: lambda o: not p(o))(predicate) if negate else predicate)
    return predicates, warnings


def _cursor(sort_value, item_id) -> str:
    return base64.b64encode(json.dumps({"last_id": item_id, "last_value": sort_value},
                                       separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str) -> tuple:
    try:
        data = json.loads(base64.b64decode(cursor))
        return data["last_value"], data["last_id"]
    except (ValueError, KeyError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from None


def connection(items: list, key, render, *, first=None, after=None, last=None, before=None, reverse=False) -> dict:
    """A Relay connection over ``items`` sorted by ``key(item) = (sort value, id)``, paged like Shopify."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(f"{name} cannot exceed {MAX_PAGE_SIZE}. To query larger amounts of data with fewer "
                               "limits, bulk operations should be used instead.")
    ordered = sorted(items, key=key, reverse=reverse)
    keys = [key(item) for item in ordered]
    start, end = 0, len(ordered)
    if after:
        bound = _decode_cursor(after)
        start = next((i for i, k in enumerate(keys) if (k < bound if reverse else k > bound)), len(ordered))
    if before:
        bound = _decode_cursor(before)
        end = next((i for i, k in enumerate(keys) if (k <= bound if reverse else k >= bound)), len(ordered))
        end = max(end, start)
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    page = ordered[start:end]
    nodes = [render(item) if render else item for item in page]
    edges = [{"cursor": _cursor(*keys[start + i]), "node": node} for i, node in enumerate(nodes)]
    return {"edges": edges, "nodes": nodes, "pageInfo": {
        "hasNextPage": end < len(ordered), "hasPreviousPage": start > 0,
        "startCursor": edges[0]["cursor"] if edges else None, "endCursor": edges[-1]["cursor"] if edges else None}}


class CostCounter:
    """Shopify's calculated query cost: requested (from ``first``/``last``) or actual (from the data)."""

    def __init__(self, fragments: dict, variables: dict):
        self.fragments, self.variables = fragments, variables

    def of_operation(self, operation, root_type, data) -> int:
        if operation.operation == graphql.OperationType.MUTATION:
            return MUTATION_COST * len(self._fields(operation.selection_set, root_type))
        return self._selection(operation.selection_set, root_type, data)

    def _fields(self, selection_set, parent_type) -> list:
        """The fields of a selection set, fragments flattened (typed fragments kept apart for max())."""
        plain, typed = [], []
        for selection in selection_set.selections:
            if isinstance(selection, graphql.FieldNode):
                plain.append((selection, parent_type))
                continue
            fragment = selection if isinstance(selection, graphql.InlineFragmentNode) \
                else self.fragments[selection.name.value]
            condition = SCHEMA.get_type(fragment.type_condition.name.value) if fragment.type_condition else parent_type
            fields = self._fields(fragment.selection_set, condition)
            if condition is parent_type:
                plain.extend(fields)
            else:
                typed.append(fields)
        if typed:
            plain.append(("typed", typed))
        return plain

    def _sum(self, fields: list, data) -> int:
        total = 0
        for node, owner in fields:
            if node == "typed":
                total += max(self._sum(group, data) for group in owner)
            else:
                total += self._field(node, owner, data)
        return total

    def _selection(self, selection_set, parent_type, data) -> int:
        return self._sum(self._fields(selection_set, parent_type), data)

    def _field(self, node, parent_type, data) -> int:
        name = node.name.value
        if name.startswith("__") or not hasattr(parent_type, "fields") or name not in parent_type.fields:
            return 0
        definition = parent_type.fields[name]
        named = graphql.get_named_type(definition.type)
        if isinstance(named, (graphql.GraphQLScalarType, graphql.GraphQLEnumType)) or node.selection_set is None:
            return 0
        value = None
        if data is not None:
            value = data.get(node.alias.value if node.alias else name) if isinstance(data, dict) else None
            if value is None:
                return 0
        args = get_argument_values(definition, node, self.variables)
        if named.name.endswith("Connection"):
            size = args.get("first") or args.get("last") or 0
            return 2 + self._connection_nodes(node, named, value, size)
        listed = graphql.is_list_type(graphql.get_nullable_type(definition.type))
        if isinstance(value, list) or (data is None and listed):
            if data is None:
                size = args.get("first") or 1
                return size * (1 + self._selection(node.selection_set, named, None))
            return sum(1 + self._selection(node.selection_set, named, item) for item in value)
        return 1 + self._selection(node.selection_set, named, value)

    def _connection_nodes(self, node, connection_type, value, size: int) -> int:
        node_type = graphql.get_named_type(connection_type.fields["nodes"].type)
        costs = []
        for child, _ in self._fields(node.selection_set, connection_type):
            if child == "typed":
                continue
            if child.name.value == "nodes":
                selection, items = child.selection_set, (value or {}).get(
                    child.alias.value if child.alias else "nodes") if value is not None else None
            elif child.name.value == "edges":
                edge_type = graphql.get_named_type(connection_type.fields["edges"].type)
                inner = [n for n, _ in self._fields(child.selection_set, edge_type)
                         if n != "typed" and n.name.value == "node"]
                if not inner:
                    continue
                selection = inner[0].selection_set
                edges = (value or {}).get(child.alias.value if child.alias else "edges") if value is not None else None
                alias = inner[0].alias.value if inner[0].alias else "node"
                items = [e.get(alias) for e in edges] if edges is not None else None
            else:
                continue
            if items is None:
                costs.append(size * (1 + self._selection(selection, node_type, None)))
            else:
                costs.append(sum(1 + self._selection(selection, node_type, item) for item in items))
        return max(costs, default=0)
