"""WooCommerce simulator: one WordPress + WooCommerce site with the wc-auth key handshake, the REST API v3
subset a billing app calls (orders, order notes, webhooks) and signed webhook deliveries.

Addressing the store. WooCommerce is self-hosted: each store is its own site, so one simulator is one
site, at its root (``{sim.url}/wp-json/wc/v3/...``, ``{sim.url}/wc-auth/v1/authorize``); start one
simulator per store. Its home URL, which webhooks name in ``X-WC-Webhook-Source`` and responses in
``_links``, is ``{sim.url}/`` unless ``home_url`` is set (e.g. ``https://tiendavalpo.cl/``, to match a
connection's store URL).

Behaviour taken from WooCommerce core (``includes/class-wc-auth.php``, ``class-wc-rest-authentication.php``,
``class-wc-webhook.php``, ``rest-api/Controllers/Version3/class-wc-rest-crud-controller.php``, the v1
webhooks controller) and the REST API docs (woocommerce/woocommerce-rest-api-docs):

- ``GET /wc-auth/v1/authorize?app_name&scope&user_id&return_url&callback_url``: every parameter is
  required (else a 401 ``wp_die`` page "Error: Missing parameter app_name."), ``scope`` is ``read``,
  ``write`` or ``read_write``, a URL without a scheme gets ``https://``, and ``callback_url`` must be
  https. The merchant (logged in, with ``manage_woocommerce``) approves; the keys are created
  (``ck_``/``cs_`` + 40 hex) and POSTed, unsigned, as ``{key_id, user_id, consumer_key, consumer_secret,
  key_permissions}`` (``user_id`` is the app's own value, echoed as a string) with a 60 s timeout. Any
  answer other than exactly 200 deletes the key and shows the 401 page "Error: An error occurred in the
  request and at the time were unable to send the consumer data."; 200 redirects 302 to
  ``return_url?success=1&user_id=...``. A denial redirects to ``return_url?success=0&user_id=...``.
- Authentication, as ``WC_REST_Authentication`` does it over HTTPS: ``consumer_key``/``consumer_secret``
  query parameters first, else HTTP Basic. An unknown key, or no key at all (e.g. a host that strips
  the ``Authorization`` header, ``strip_authorization``), authenticates nobody, and the route's permission
  check answers 401 ``woocommerce_rest_cannot_view`` "Sorry, you cannot list resources." (current core;
  the docs still describe the old "Consumer key is missing" message, available with
  ``missing_key_answer: "docs"``). A wrong secret answers 401 ``woocommerce_rest_authentication_error``
  "Consumer secret is invalid." with ``WWW-Authenticate``. A read key cannot write and vice versa.
- ``GET orders``: ``status`` (list), ``after``/``before``, ``modified_after``/``modified_before``
  (exclusive bounds, compared with the site-local dates unless ``dates_are_gmt``), ``include``,
  ``customer``, ``orderby`` (date, id, include, title, slug, modified; ties broken by id), ``order``
  (default desc), ``page``, ``per_page`` (1..100, default 10), ``offset``, ``dp``. Headers
  ``X-WP-Total``, ``X-WP-TotalPages``, and ``Link`` with ``prev``/``next`` only (as the CRUD controller
  sends them, carrying the request's own query, keys included); a page past the end is an empty list.
  Bad parameters answer WordPress's 400 ``rest_invalid_param`` with ``params`` and ``details``.
- ``GET orders/<id>`` (404 ``woocommerce_rest_shop_order_invalid_id``), ``GET``/``POST orders/<id>/notes``
  (``note`` required, ``customer_note`` false makes a private note), ``GET``/``POST webhooks``,
  ``GET``/``PUT webhooks/<id>``, ``DELETE webhooks/<id>?force=true``.
- Bodies are serialised like ``wp_json_encode``: ``/`` as ``\\/`` and non-ASCII as ``\\uXXXX``.
- Webhooks: topics ``<coupon|customer|order|product>.<created|updated|deleted|restored>`` and
  ``action.*``. Creating one sends the unsigned ping (form body ``webhook_id=N``). Deliveries carry the
  order exactly as ``GET orders/<id>`` returns it, with ``X-WC-Webhook-Source`` (home URL with trailing
  slash), ``-Topic``, ``-Resource``, ``-Event``, ``-Signature`` (base64 HMAC-SHA256 of the raw body
  with the webhook's secret), ``-ID`` and ``-Delivery-ID`` (a hash of the webhook id and the current
  second, so it repeats across orders sent in the same second). Success is 2xx, 301 or 302; there are
  no retries; a failure increments ``failure_count``, and a failure when it is already above 5 sets
  the status to ``disabled``. Paused and disabled webhooks deliver nothing.

Deliveries are synchronous: the control call that changes an order sends them before it answers and
lists each delivery with the receiver's status (0 when the connection failed). Real WooCommerce queues
them in Action Scheduler and builds the body at delivery time; here the body is the order at the moment
of the change. Faults (``POST /_sim/deliveries``): ``drop_rate`` (never sent, as when WP-Cron does not
run) and ``duplicate_rate`` (sent twice).

Order events and topics: create → ``order.created``; pay (``processing`` with ``date_paid``), complete,
refund, cancel, update → ``order.updated``.

Control routes (JSON bodies, under ``/_sim``): ``POST /settings`` (any setting below, plus ``deny``,
``strip_authorization``, ``missing_key_answer``, ``callback_timeout``, ``home_url``), ``POST /keys``
(``permissions``: keys as a merchant would paste them), ``POST /orders`` (``count``, ``document``,
``status``, ``created_at``, ``order`` overrides), ``POST /orders/<id>/pay|complete|refund|cancel|update``
(``amount`` and ``reason`` for refunds), ``POST /deliveries`` (``drop_rate``, ``duplicate_rate``,
``timeout``). ``GET /_sim/state`` shows keys, orders, the notes written back, webhooks with
``failure_count``, the wc-auth handshakes and every delivery with its status.

Assumptions where the sources are silent, each a setting:

- The site is served over HTTPS (``ssl``): the loopback HTTP stands for TLS terminated in front of
  WordPress. With ``ssl`` false, Basic auth is not attempted (core requires OAuth 1.0a over plain HTTP,
  which this simulator does not implement), so every request is anonymous.
- ``callback_url`` and delivery URLs on loopback hosts may be http (core's ``wp_safe_remote_post`` would
  refuse loopback addresses altogether).
- Site timezone America/Santiago; prices have 0 decimals (``price_decimals``), as Chilean stores set them.
- ``tax_mode``: ``gross`` (default: prices include IVA and WooCommerce computes it, line amounts are
  stored net with their tax) or ``none`` (the many Chilean stores that do not compute IVA in
  WooCommerce: ``prices_include_tax`` false, taxes 0, amounts gross).
- ``meta_style``: ``classic`` (``_billing_rut``, ``_billing_documento``, ``_billing_razon_social``,
  ``_billing_giro``, ``_billing_comuna``, as checkout-field plugins store them) or ``blocks`` (block
  checkout additional fields, ``_wc_billing/cl/rut``, ``_wc_other/cl/documento``, ...).
- Several ``Link`` headers are sent as one, comma-separated.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from .base import HttpError, Request, Response, Simulator, post_json, route
from .chile import Sale, iva_of, random_sale

SITE_TZ = ZoneInfo("America/Santiago")
API = r"/wp-json/wc/v3"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
                  "checkout-draft")
ORDERBY = ("date", "id", "include", "title", "slug", "modified")
WEBHOOK_RESOURCES = ("coupon", "customer", "order", "product")
WEBHOOK_EVENTS = ("created", "updated", "deleted", "restored")
WEBHOOK_HOOKS = {
    "order.created": ["woocommerce_new_order"],
    "order.updated": ["woocommerce_update_order", "woocommerce_order_refunded", "woocommerce_delete_order_refund"],
    "order.deleted": ["wp_trash_post", "woocommerce_trash_order"],
    "order.restored": ["untrashed_post", "woocommerce_untrash_order"],
}
MAX_DELIVERY_FAILURES = 5
CANNOT_CREATE = ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.")
PAYMENT_TITLES = {"webpay_plus": ("transbank_webpay_plus_rest", "Webpay Plus"),
                  "mercadopago": ("woo-mercado-pago-basic", "Mercado Pago"), "flow": ("flow", "Flow")}
DEFAULT_SETTINGS = {
    "home_url": None, "ssl": True, "strip_authorization": False, "missing_key_answer": "core",
    "deny": False, "callback_timeout": 60.0, "tax_mode": "gross", "price_decimals": 0, "meta_style": "classic",
    "wc_version": "9.4.2", "wp_version": "6.7.1",
}


def wp_json(payload) -> bytes:
    """``wp_json_encode`` output: ``/`` escaped, non-ASCII as ``\\uXXXX``, no spaces."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def wc_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _wp_error(status: int, code: str, message: str, **data) -> HttpError:
    return HttpError(status, {"code": code, "message": message, "data": {"status": status, **data}})


def _invalid_param(name: str, message: str, code: str) -> HttpError:
    return _wp_error(400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: message},
                     details={name: {"code": code, "message": message, "data": None}})


def _loopback_or_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)


def _formatted_url(url: str) -> str:
    """``WC_Auth::get_formatted_url``: URL-decoded, ``https://`` added when there is no scheme."""
    return url if "://" in url else "https://" + url


class WooCommerceSimulator(Simulator):
    name = "woocommerce"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 1, **settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise TypeError(f"unknown WooCommerce settings {sorted(unknown)}")
        self.initial_settings, self.seed = {**DEFAULT_SETTINGS, **settings}, seed
        super().__init__(host, port)

    @property
    def home_url(self) -> str:
        return self.settings["home_url"] or f"{self.url}/"

    def reset_state(self) -> None:
        self.settings = dict(self.initial_settings)
        self.rng = random.Random(self.seed)
        self.ids = itertools.count(20_900)
        self.item_ids = itertools.count(9_900)
        self.comment_ids = itertools.count(774_100)
        self.keys: dict[str, dict] = {}  # consumer_key → key
        self.key_ids = itertools.count(1)
        self.orders: dict[int, dict] = {}
        self.notes: dict[int, list[dict]] = {}
        self.webhooks: dict[int, dict] = {}
        self.webhook_ids = itertools.count(1)
        self.salt = secrets.token_hex(16)
        self.auth_log: list[dict] = []
        self.delivery_faults = {"drop_rate": 0.0, "duplicate_rate": 0.0, "timeout": 60.0}
        self.deliveries: list[dict] = []

    def state(self) -> dict:
        return {
            "settings": dict(self.settings),
            "keys": [{k: v for k, v in key.items()} for key in self.keys.values()],
            "orders": {str(oid): {"status": o["status"], "total": o["total"], "refunds": len(o["refunds"]),
                                  "date_modified_gmt": o["date_modified_gmt"]} for oid, o in self.orders.items()},
            "notes": {str(oid): notes for oid, notes in self.notes.items() if notes},
            "webhooks": [dict(w) for w in self.webhooks.values()],
            "auth": list(self.auth_log),
            "delivery_faults": dict(self.delivery_faults),
            "deliveries": list(self.deliveries),
        }

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        if response.status == 404 and request.path.startswith("/wp-json/") and isinstance(response.body, dict) \
                and str(response.body.get("error", "")).startswith(f"{self.name} simulator: no route"):
            return self._json(404, {"code": "rest_no_route",
                                    "message": "No route was found matching the URL and request method.",
                                    "data": {"status": 404}})
        if isinstance(response.body, dict | list) and request.path.startswith("/wp-json/"):
            return self._json(response.status, response.body, response.headers)
        return response

    @staticmethod
    def _json(status: int, body, headers: dict | None = None) -> Response:
        return Response(status, wp_json(body), headers or {}, content_type="application/json; charset=UTF-8")

    # --- wc-auth -----------------------------------------------------------------------------------

    @route("GET", r"/wc-auth/v1/authorize", name="wc_auth_authorize")
    def wc_auth(self, request: Request) -> Response:
        data = {}
        for param in ("app_name", "user_id", "return_url", "callback_url", "scope"):
            value = request.arg(param)
            if not value:
                return self._die(f"Missing parameter {param}")
            data[param] = value
        if data["scope"] not in ("read", "write", "read_write"):
            return self._die(f"Invalid scope {data['scope']}")
        for param in ("return_url", "callback_url"):
            parts = urlsplit(_formatted_url(data[param]))
            if not parts.scheme or not parts.hostname:
                return self._die(f"The {_formatted_url(data[param])} is not a valid URL")
        callback, return_url = _formatted_url(data["callback_url"]), _formatted_url(data["return_url"])
        if not _loopback_or_https(callback):
            return self._die("The callback_url needs to be over SSL")
        if self.settings["deny"]:
            with self.lock:
                self.auth_log.append({"app_name": data["app_name"], "user_id": data["user_id"], "result": "denied"})
            return self._redirect(return_url, success=0, user_id=data["user_id"])
        with self.lock:
            key = self._create_key(f"{data['app_name'][:170]} - API ({datetime.now(UTC):%Y-%m-%d %H:%M:%S})",
                                   data["scope"])
        consumer_data = {"key_id": key["key_id"], "user_id": data["user_id"], "consumer_key": key["consumer_key"],
                         "consumer_secret": key["consumer_secret"], "key_permissions": key["permissions"]}
        status, _ = post_json(callback, wp_json(consumer_data), {"Content-Type": "application/json;charset=UTF-8"},
                              timeout=float(self.settings["callback_timeout"]))
        with self.lock:
            self.auth_log.append({"app_name": data["app_name"], "user_id": data["user_id"], "callback_status": status,
                                  "key_id": key["key_id"], "result": "granted" if status == 200 else "key deleted"})
            if status != 200:
                self.keys.pop(key["consumer_key"], None)
                return self._die("An error occurred in the request and at the time were unable to send the "
                                 "consumer data")
        return self._redirect(return_url, success=1, user_id=data["user_id"])

    @staticmethod
    def _die(message: str) -> Response:
        page = (f"<!DOCTYPE html><html><head><title>Access denied</title></head>"
                f"<body id=\"error-page\"><div class=\"wp-die-message\">Error: {message}.</div></body></html>")
        return Response(401, page.encode(), content_type="text/html; charset=utf-8")

    @staticmethod
    def _redirect(url: str, **params) -> Response:
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        query.update({k: [str(v)] for k, v in params.items()})
        location = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return Response(302, b"", {"Location": location}, content_type="text/html; charset=UTF-8")

    def _create_key(self, description: str, permissions: str) -> dict:
        key = {"key_id": next(self.key_ids), "user_id": 1, "description": description, "permissions": permissions,
               "consumer_key": "ck_" + secrets.token_hex(20), "consumer_secret": "cs_" + secrets.token_hex(20)}
        self.keys[key["consumer_key"]] = key
        return key

    # --- authentication ----------------------------------------------------------------------------

    def _authenticate(self, request: Request, denied: tuple[str, str]) -> dict:
        """The API key of the request, or the error WordPress answers (``denied``: code and message of the
        route's permission check, used when nobody is authenticated)."""
        key_id = secret = ""
        if self.settings["ssl"]:
            if request.arg("consumer_key") and request.arg("consumer_secret"):
                key_id, secret = request.arg("consumer_key"), request.arg("consumer_secret")
            elif request.header("authorization").lower().startswith("basic ") \
                    and not self.settings["strip_authorization"]:
                try:
                    key_id, _, secret = base64.b64decode(request.header("authorization")[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    key_id = secret = ""
        key = self.keys.get(key_id) if key_id and secret else None
        if key is not None and not hmac.compare_digest(key["consumer_secret"].encode(), secret.encode()):
            realm = ("WooCommerce API. Use a consumer key in the username field and a consumer secret in the "
                     "password field.")
            raise HttpError(401, {"code": "woocommerce_rest_authentication_error",
                                  "message": "Consumer secret is invalid.", "data": {"status": 401}},
                            {"WWW-Authenticate": f'Basic realm="{realm}"'})
        if key is None:
            if not key_id and self.settings["missing_key_answer"] == "docs":
                raise _wp_error(401, "woocommerce_rest_authentication_error", "Consumer key is missing.")
            raise _wp_error(401, *denied)
        needed = "read" if request.method in ("GET", "HEAD") else "write"
        if key["permissions"] not in (needed, "read_write"):
            raise _wp_error(401, "woocommerce_rest_authentication_error",
                            f"The API key provided does not have {needed} permissions.")
        key["last_access"] = datetime.now(SITE_TZ).strftime("%Y-%m-%d %H:%M:%S")
        return key

    # --- orders ------------------------------------------------------------------------------------

    @route("GET", API + r"/orders", name="list_orders")
    def list_orders(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."))
        args = self._collection_args(request)
        statuses = [s for v in request.query.get("status", []) + request.query.get("status[]", [])
                    for s in v.split(",") if s]
        for status in statuses:
            if status != "any" and status not in ORDER_STATUSES:
                raise _invalid_param("status", f"status[0] is not one of any, {', '.join(ORDER_STATUSES)}.",
                                     "rest_not_in_enum")
        with self.lock:
            orders = [o for o in self.orders.values() if o["status"] != "checkout-draft"]
            if statuses and "any" not in statuses:
                orders = [o for o in orders if o["status"] in statuses]
            else:
                orders = [o for o in orders if o["status"] != "trash"]
            gmt = args["dates_are_gmt"]
            for name, column, after in (("after", "date_created", True), ("before", "date_created", False),
                                        ("modified_after", "date_modified", True),
                                        ("modified_before", "date_modified", False)):
                if args[name] is not None:
                    bound = args[name].astimezone(UTC if gmt else SITE_TZ).replace(tzinfo=None)
                    key = column + "_gmt" if gmt else column
                    orders = [o for o in orders if (datetime.fromisoformat(o[key]) > bound if after
                                                    else datetime.fromisoformat(o[key]) < bound)]
            if args["include"]:
                orders = [o for o in orders if o["id"] in args["include"]]
            if request.arg("customer"):
                orders = [o for o in orders if str(o["customer_id"]) == request.arg("customer")]
            column = {"date": "date_created_gmt", "modified": "date_modified_gmt"}.get(args["orderby"])
            orders.sort(key=lambda o: (o[column], o["id"]) if column else o["id"], reverse=args["order"] == "desc")
            total = len(orders)
            start = args["offset"] if args["offset"] is not None else (args["page"] - 1) * args["per_page"]
            page = [self._order_json(o, args["dp"]) for o in orders[start:start + args["per_page"]]]
        pages = -(-total // args["per_page"])
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = self._rest_url("/wc/v3/orders", request)
        if args["page"] > 1:
            links.append(f'<{self._with_page(base, min(args["page"] - 1, pages))}>; rel="prev"')
        if pages > args["page"]:
            links.append(f'<{self._with_page(base, args["page"] + 1)}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return Response(200, page, headers)

    def _collection_args(self, request: Request) -> dict:
        def integer(name: str, default: int | None, low: int, high: int | None = None) -> int | None:
            raw = request.arg(name)
            if raw is None:
                return default
            if not raw.lstrip("-").isdigit():
                raise _invalid_param(name, f"{name} is not of type integer.", "rest_invalid_type")
            value = int(raw)
            if value < low or (high is not None and value > high):
                bounds = f"between {low} (inclusive) and {high} (inclusive)" if high \
                    else f"greater than or equal to {low}"
                raise _invalid_param(name, f"{name} must be {bounds}", "rest_out_of_bounds")
            return value

        args = {"page": integer("page", 1, 1), "per_page": integer("per_page", 10, 1, 100),
                "offset": integer("offset", None, 0), "dp": integer("dp", int(self.settings["price_decimals"]), 0)}
        args["order"] = request.arg("order", "desc")
        if args["order"] not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc and desc.", "rest_not_in_enum")
        args["orderby"] = request.arg("orderby", "date")
        if args["orderby"] not in ORDERBY:
            raise _invalid_param("orderby", "orderby is not one of date, id, include, title, slug, and modified.",
                                 "rest_not_in_enum")
        args["dates_are_gmt"] = request.arg("dates_are_gmt", "false").lower() in ("1", "true")
        for name in ("after", "before", "modified_after", "modified_before"):
            raw = request.arg(name)
            args[name] = None
            if raw is not None:
                try:
                    moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
                except ValueError:
                    raise _invalid_param(name, "Invalid date.", "rest_invalid_date") from None
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC if args["dates_are_gmt"] else SITE_TZ)
                args[name] = moment
        args["include"] = {int(i) for v in request.query.get("include", []) for i in v.split(",") if i.isdigit()}
        return args

    def _rest_url(self, route_path: str, request: Request | None = None) -> str:
        url = self.home_url.rstrip("/") + "/wp-json" + route_path
        if request is not None and request.query:
            url += "?" + urlencode([(k, v) for k, values in request.query.items() for v in values])
        return url

    @staticmethod
    def _with_page(url: str, page: int) -> str:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qs(parts.query, keep_blank_values=True).items()]
        pairs = [(k, v) for k, values in query if k != "page" for v in values] + [("page", str(page))]
        return urlunsplit(parts._replace(query=urlencode(pairs)))

    @route("GET", API + r"/orders/(?P<id>\d+)", name="get_order")
    def get_order(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."))
        dp = self._collection_args(request)["dp"]
        with self.lock:
            order = self._order(int(request.params["id"]), "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            return Response(200, self._order_json(order, dp))

    def _order(self, order_id: int, code: str, message: str) -> dict:
        order = self.orders.get(order_id)
        if order is None or order["status"] == "checkout-draft":
            raise _wp_error(404, code, message)
        return order

    @route("GET", API + r"/orders/(?P<id>\d+)/notes", name="list_notes")
    def list_notes(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."))
        kind = request.arg("type", "any")
        with self.lock:
            self._order(int(request.params["id"]), "woocommerce_rest_order_invalid_id", "Invalid order ID.")
            notes = [n for n in self.notes.get(int(request.params["id"]), [])
                     if kind == "any" or (kind == "customer") == n["customer_note"]]
            return Response(200, [self._note_json(n) for n in reversed(notes)])

    @route("POST", API + r"/orders/(?P<id>\d+)/notes", name="create_note")
    def create_note(self, request: Request) -> Response:
        self._authenticate(request, CANNOT_CREATE)
        body = self._body(request)
        if not body.get("note"):
            raise _wp_error(400, "rest_missing_callback_param", "Missing parameter(s): note", params=["note"])
        order_id = int(request.params["id"])
        with self.lock:
            self._order(order_id, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
            now = datetime.now(UTC)
            note = {"id": next(self.comment_ids), "author": "WooCommerce" if not body.get("added_by_user") else "admin",
                    "date_created": now.astimezone(SITE_TZ).strftime("%Y-%m-%dT%H:%M:%S"),
                    "date_created_gmt": now.strftime("%Y-%m-%dT%H:%M:%S"), "note": str(body["note"]),
                    "customer_note": bool(body.get("customer_note", False)),
                    "added_by_user": bool(body.get("added_by_user", False)), "order_id": order_id}
            self.notes.setdefault(order_id, []).append(note)
        location = self._rest_url(f"/wc/v3/orders/{order_id}/notes/{note['id']}")
        return Response(201, self._note_json(note), {"Location": location})

    def _note_json(self, note: dict) -> dict:
        data = {k: v for k, v in note.items() if k != "order_id"}
        data["_links"] = {"self": [{"href": self._rest_url(f"/wc/v3/orders/{note['order_id']}/notes/{note['id']}")}],
                          "collection": [{"href": self._rest_url(f"/wc/v3/orders/{note['order_id']}/notes")}],
                          "up": [{"href": self._rest_url(f"/wc/v3/orders/{note['order_id']}")}]}
        return data

    @staticmethod
    def _body(request: Request) -> dict:
        if request.header("content-type").startswith("application/json"):
            try:
                body = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise _wp_error(400, "rest_invalid_json", "Invalid JSON body passed.") from None
            return body if isinstance(body, dict) else {}
        return {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}

    # --- order JSON ----------------------------------------------------------------------------------

    def _order_json(self, order: dict, dp: int) -> dict:
        """The stored order (amounts as Decimals) as ``GET orders/<id>`` shows it, with ``dp`` decimals."""
        def amount(value) -> str:
            return f"{Decimal(value):.{dp}f}"

        data = json.loads(json.dumps(order, default=str))
        for key in ("discount_total", "discount_tax", "shipping_total", "shipping_tax", "cart_tax", "total",
                    "total_tax"):
            data[key] = amount(order[key])
        for item in data["line_items"]:
            for key in ("subtotal", "subtotal_tax", "total", "total_tax"):
                item[key] = amount(item[key])
            item["taxes"] = [{"id": t["id"], "total": amount(t["total"]), "subtotal": amount(t["subtotal"])}
                             for t in item["taxes"]]
        for line in data["shipping_lines"] + data["fee_lines"]:
            line["total"], line["total_tax"] = amount(line["total"]), amount(line["total_tax"])
            line["taxes"] = [{"id": t["id"], "total": amount(t["total"]), "subtotal": ""} for t in line["taxes"]]
        for tax in data["tax_lines"]:
            tax["tax_total"], tax["shipping_tax_total"] = amount(tax["tax_total"]), amount(tax["shipping_tax_total"])
        for coupon in data["coupon_lines"]:
            coupon["discount"], coupon["discount_tax"] = amount(coupon["discount"]), amount(coupon["discount_tax"])
        for refund in data["refunds"]:
            refund["total"] = amount(refund["total"])
        data["_links"] = {"self": [{"href": self._rest_url(f"/wc/v3/orders/{order['id']}")}],
                          "collection": [{"href": self._rest_url("/wc/v3/orders")}]}
        if order["customer_id"]:
            data["_links"]["customer"] = [{"href": self._rest_url(f"/wc/v3/customers/{order['customer_id']}")}]
        return data

    def _build_order(self, sale: Sale, status: str, created: datetime) -> dict:
        gross_mode = self.settings["tax_mode"] == "gross"
        order_id = next(self.ids)
        local, gmt = created.astimezone(SITE_TZ), created.astimezone(UTC)
        buyer = sale.buyer

        def split(gross: int) -> tuple[int, int]:
            tax = iva_of(gross) if gross_mode else 0
            return gross - tax, tax

        line_items, cart_tax, discount_total, discount_tax = [], 0, 0, 0
        for line in sale.lines:
            sub_net, sub_tax = split(line.unit_gross * line.quantity)
            net, tax = split(line.total_gross)
            cart_tax += tax
            discount_total += sub_net - net
            discount_tax += sub_tax - tax
            product_id = 300 + sum(map(ord, line.sku)) % 3000
            line_items.append({
                "id": next(self.item_ids), "name": line.name, "product_id": product_id, "variation_id": 0,
                "quantity": line.quantity, "tax_class": "", "subtotal": sub_net, "subtotal_tax": sub_tax,
                "total": net, "total_tax": tax,
                "taxes": [{"id": 1, "total": tax, "subtotal": sub_tax}] if gross_mode else [],
                "meta_data": [], "sku": line.sku, "price": net // line.quantity if net % line.quantity == 0
                else net / line.quantity,
                "image": {"id": "", "src": ""}, "parent_name": None})
        shipping_lines, shipping_total, shipping_tax = [], 0, 0
        if sale.shipping:
            title, code, price = sale.shipping
            shipping_total, shipping_tax = split(price)
            shipping_lines.append({"id": next(self.item_ids), "method_title": title, "method_id": "flat_rate",
                                   "instance_id": "3", "total": shipping_total, "total_tax": shipping_tax,
                                   "taxes": [{"id": 1, "total": shipping_tax}] if gross_mode else [],
                                   "meta_data": []})
        coupon_lines = [{"id": next(self.item_ids), "code": sale.coupon.lower(), "discount": discount_total,
                         "discount_tax": discount_tax, "meta_data": []}] if sale.coupon else []
        tax_lines = [{"id": next(self.item_ids), "rate_code": "CL-IVA-1", "rate_id": 1, "label": "IVA",
                      "compound": False, "tax_total": cart_tax, "shipping_tax_total": shipping_tax,
                      "rate_percent": 19, "meta_data": []}] if gross_mode else []
        method, method_title = PAYMENT_TITLES[sale.payment]
        company = sale.company
        billing = {"first_name": buyer.first_name, "last_name": buyer.last_name,
                   "company": company.razon_social if company else "", "address_1": buyer.address1,
                   "address_2": buyer.address2, "city": buyer.comuna, "state": f"CL-{buyer.region_code}",
                   "postcode": buyer.postcode, "country": "CL", "email": buyer.email, "phone": buyer.phone}
        order = {
            "id": order_id, "parent_id": 0, "status": status, "currency": "CLP",
            "version": self.settings["wc_version"], "prices_include_tax": gross_mode,
            "date_created": local.strftime("%Y-%m-%dT%H:%M:%S"), "date_modified": local.strftime("%Y-%m-%dT%H:%M:%S"),
            "discount_total": discount_total, "discount_tax": discount_tax, "shipping_total": shipping_total,
            "shipping_tax": shipping_tax, "cart_tax": cart_tax, "total": sale.total,
            "total_tax": cart_tax + shipping_tax, "customer_id": self.rng.choice((0, 300 + order_id % 500)),
            "order_key": "wc_order_" + secrets.token_urlsafe(9)[:13], "billing": billing,
            "shipping": {k: v for k, v in billing.items() if k != "email"},
            "payment_method": method, "payment_method_title": method_title, "transaction_id": "",
            "customer_ip_address": "190.100.12.34", "customer_user_agent": "Mozilla/5.0", "created_via": "checkout",
            "customer_note": sale.note, "date_completed": None, "date_paid": None,
            "cart_hash": secrets.token_hex(16), "number": str(order_id), "meta_data": self._meta(sale),
            "line_items": line_items, "tax_lines": tax_lines, "shipping_lines": shipping_lines, "fee_lines": [],
            "coupon_lines": coupon_lines, "refunds": [], "payment_url": "", "is_editable": status == "pending",
            "needs_payment": status == "pending", "needs_processing": True,
            "date_created_gmt": gmt.strftime("%Y-%m-%dT%H:%M:%S"),
            "date_modified_gmt": gmt.strftime("%Y-%m-%dT%H:%M:%S"),
            "date_completed_gmt": None, "date_paid_gmt": None, "currency_symbol": "$",
        }
        order["payment_url"] = (f"{self.home_url}finalizar-compra/order-pay/{order_id}/"
                                f"?pay_for_order=true&key={order['order_key']}")
        if status in ("processing", "completed"):
            self._mark_paid(order, created)
        if status == "completed":
            self._stamp(order, "date_completed", created)
        return order

    def _meta(self, sale: Sale) -> list[dict]:
        company, buyer = sale.company, sale.buyer
        if self.settings["meta_style"] == "blocks":
            pairs = [("_wc_other/cl/documento", sale.document),
                     ("_wc_billing/cl/rut", company.rut if company else buyer.rut),
                     ("_wc_billing/cl/comuna", buyer.comuna)]
            if company:
                pairs += [("_wc_billing/cl/razon-social", company.razon_social), ("_wc_billing/cl/giro", company.giro)]
        else:
            pairs = [("_billing_documento", sale.document), ("_billing_rut", company.rut if company else buyer.rut),
                     ("_billing_comuna", buyer.comuna)]
            if company:
                pairs += [("_billing_razon_social", company.razon_social), ("_billing_giro", company.giro)]
        reference = "_transbank_token" if sale.payment == "webpay_plus" else "_payment_reference"
        pairs.append((reference, secrets.token_hex(16)))
        return [{"id": next(self.comment_ids), "key": key, "value": value} for key, value in pairs]

    @staticmethod
    def _stamp(order: dict, name: str, moment: datetime) -> None:
        order[name] = moment.astimezone(SITE_TZ).strftime("%Y-%m-%dT%H:%M:%S")
        order[name + "_gmt"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def _mark_paid(self, order: dict, moment: datetime) -> None:
        self._stamp(order, "date_paid", moment)
        order["transaction_id"] = str(self.rng.randint(1_000_000_000, 9_999_999_999))
        order["needs_payment"] = order["is_editable"] = False

    # --- webhooks --------------------------------------------------------------------------------------

    @route("GET", API + r"/webhooks", name="list_webhooks")
    def list_webhooks(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."))
        args = self._collection_args(request)
        status = request.arg("status", "all")
        with self.lock:
            hooks = sorted((w for w in self.webhooks.values() if status == "all" or w["status"] == status),
                           key=lambda w: w["id"], reverse=args["order"] == "desc")
            start = (args["page"] - 1) * args["per_page"]
            page = [self._webhook_json(w) for w in hooks[start:start + args["per_page"]]]
        return Response(200, page, {"X-WP-Total": str(len(hooks)),
                                    "X-WP-TotalPages": str(-(-len(hooks) // args["per_page"]))})

    @route("POST", API + r"/webhooks", name="create_webhook")
    def create_webhook(self, request: Request) -> Response:
        self._authenticate(request, CANNOT_CREATE)
        body = self._body(request)
        topic = str(body.get("topic") or "").lower()
        if not self._valid_topic(topic):
            raise _wp_error(400, "woocommerce_rest_webhook_invalid_topic",
                            "Webhook topic is required and must be valid.")
        url = str(body.get("delivery_url") or "")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise _wp_error(400, "woocommerce_rest_webhook_invalid_delivery_url",
                            "Webhook delivery URL must be a valid URL starting with http:// or https://.")
        status = body.get("status") or "active"
        if status not in ("active", "paused", "disabled"):
            raise _wp_error(400, "woocommerce_rest_webhook_invalid_status", "Webhook status must be valid.")
        now = datetime.now(UTC)
        with self.lock:
            webhook = {"id": next(self.webhook_ids),
                       "name": body.get("name") or f"Webhook created on {now.astimezone(SITE_TZ):%b %d, %Y @ %I:%M %p}",
                       "status": status, "topic": topic, "delivery_url": url,
                       "secret": body.get("secret") or secrets.token_urlsafe(38)[:50], "api_version": "wp_api_v3",
                       "failure_count": 0, "pending_delivery": True, "user_id": 1}
            self._stamp(webhook, "date_created", now)
            self._stamp(webhook, "date_modified", now)
            self.webhooks[webhook["id"]] = webhook
            answer = self._webhook_json(webhook)
        ping_status, _ = post_json(url, f"webhook_id={webhook['id']}".encode(), {
            "Content-Type": "application/x-www-form-urlencoded", "User-Agent": self._user_agent()},
            timeout=self.delivery_faults["timeout"])
        with self.lock:
            self.deliveries.append({"webhook_id": webhook["id"], "topic": "ping", "url": url, "status": ping_status,
                                    "dropped": False, "duplicate": False})
            if ping_status == 200:
                webhook["pending_delivery"] = False
        location = self._rest_url(f"/wc/v3/webhooks/{webhook['id']}")
        return Response(201, answer, {"Location": location})

    @staticmethod
    def _valid_topic(topic: str) -> bool:
        resource, _, event = topic.partition(".")
        if resource == "action":
            return event.startswith(("woocommerce_", "wc_"))
        return resource in WEBHOOK_RESOURCES and event in WEBHOOK_EVENTS

    def _webhook(self, request: Request) -> dict:
        webhook = self.webhooks.get(int(request.params["id"]))
        if webhook is None:
            raise _wp_error(400, "woocommerce_rest_webhook_invalid_id", "ID is invalid.")
        return webhook

    @route("GET", API + r"/webhooks/(?P<id>\d+)", name="get_webhook")
    def get_webhook(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."))
        with self.lock:
            return Response(200, self._webhook_json(self._webhook(request)))

    @route("PUT", API + r"/webhooks/(?P<id>\d+)", name="update_webhook")
    def update_webhook(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_edit",
                                     "Sorry, you are not allowed to edit this resource."))
        body = self._body(request)
        with self.lock:
            webhook = self._webhook(request)
            if body.get("topic"):
                if not self._valid_topic(str(body["topic"]).lower()):
                    raise _wp_error(400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic must be valid.")
                webhook["topic"] = str(body["topic"]).lower()
            if body.get("delivery_url"):
                parts = urlsplit(str(body["delivery_url"]))
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise _wp_error(400, "woocommerce_rest_webhook_invalid_delivery_url",
                                    "Webhook delivery URL must be a valid URL starting with http:// or https://.")
                webhook["delivery_url"] = str(body["delivery_url"])
            if body.get("secret"):
                webhook["secret"] = str(body["secret"])
            if body.get("status"):
                if body["status"] not in ("active", "paused", "disabled"):
                    raise _wp_error(400, "woocommerce_rest_webhook_invalid_status", "Webhook status must be valid.")
                webhook["status"] = body["status"]
                if body["status"] == "active":
                    webhook["failure_count"] = 0
            if body.get("name"):
                webhook["name"] = str(body["name"])
            self._stamp(webhook, "date_modified", datetime.now(UTC))
            return Response(200, self._webhook_json(webhook))

    @route("DELETE", API + r"/webhooks/(?P<id>\d+)", name="delete_webhook")
    def delete_webhook(self, request: Request) -> Response:
        self._authenticate(request, ("woocommerce_rest_cannot_delete",
                                     "Sorry, you are not allowed to delete this resource."))
        if request.arg("force", "false").lower() not in ("1", "true"):
            raise _wp_error(501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
        with self.lock:
            webhook = self.webhooks.pop(int(request.params["id"]), None)
            if webhook is None:
                raise _wp_error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            return Response(200, self._webhook_json(webhook))

    def _webhook_json(self, webhook: dict) -> dict:
        resource, _, event = webhook["topic"].partition(".")
        return {"id": webhook["id"], "name": webhook["name"], "status": webhook["status"], "topic": webhook["topic"],
                "resource": resource, "event": event, "hooks": WEBHOOK_HOOKS.get(webhook["topic"], []),
                "delivery_url": webhook["delivery_url"], "secret": webhook["secret"],
                "date_created": webhook["date_created"], "date_created_gmt": webhook["date_created_gmt"],
                "date_modified": webhook["date_modified"], "date_modified_gmt": webhook["date_modified_gmt"],
                "_links": {"self": [{"href": self._rest_url(f"/wc/v3/webhooks/{webhook['id']}")}],
                           "collection": [{"href": self._rest_url("/wc/v3/webhooks")}]}}

    def _user_agent(self) -> str:
        return f"WooCommerce/{self.settings['wc_version']} Hookshot (WordPress/{self.settings['wp_version']})"

    def _plan(self, order: dict, event: str) -> list[dict]:
        """The deliveries an order event makes, signed now (under the lock), sent after it is released."""
        topic = f"order.{event}"
        body = wp_json(self._order_json(order, int(self.settings["price_decimals"])))
        planned = []
        for webhook in self.webhooks.values():
            if webhook["topic"] != topic or webhook["status"] != "active":
                continue
            delivery_id = hmac.new(self.salt.encode(), f"{webhook['id']}{int(time.time())}".encode(),
                                   hashlib.md5).hexdigest()
            planned.append({"webhook": webhook, "url": webhook["delivery_url"], "topic": topic, "body": body,
                            "headers": {"User-Agent": self._user_agent(), "X-WC-Webhook-Source": self.home_url,
                                        "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": "order",
                                        "X-WC-Webhook-Event": event,
                                        "X-WC-Webhook-Signature": wc_signature(body, webhook["secret"]),
                                        "X-WC-Webhook-ID": str(webhook["id"]),
                                        "X-WC-Webhook-Delivery-ID": delivery_id}})
        return planned

    def _send(self, planned: list[dict]) -> list[dict]:
        records = []
        for delivery in planned:
            webhook = delivery["webhook"]
            record = {"webhook_id": webhook["id"], "topic": delivery["topic"], "url": delivery["url"],
                      "delivery_id": delivery["headers"]["X-WC-Webhook-Delivery-ID"], "duplicate": False}
            if self.rng.random() < self.delivery_faults["drop_rate"]:
                records.append(dict(record, status=None, dropped=True))
                continue
            copies = 2 if self.rng.random() < self.delivery_faults["duplicate_rate"] else 1
            for copy in range(copies):
                status, _ = post_json(delivery["url"], delivery["body"], delivery["headers"],
                                      timeout=self.delivery_faults["timeout"])
                records.append(dict(record, status=status, dropped=False, duplicate=copy > 0))
                with self.lock:
                    self._log_delivery(webhook, status)
        with self.lock:
            self.deliveries.extend(records)
            for record in records:
                self.counters[f"deliveries:{record['topic']}"] += 1
        return records

    @staticmethod
    def _log_delivery(webhook: dict, status: int) -> None:
        """``WC_Webhook::log_delivery`` / ``failed_delivery``: 2xx, 301 and 302 succeed."""
        if 200 <= status < 303:
            webhook["failure_count"] = 0
        elif webhook["failure_count"] > MAX_DELIVERY_FAILURES:
            webhook["status"] = "disabled"
        else:
            webhook["failure_count"] += 1

    # --- control routes --------------------------------------------------------------------------------

    def control(self, request: Request) -> Response | None:
        path, method = request.path, request.method
        body = request.json() if request.body else {}
        if not isinstance(body, dict):
            return Response(400, {"error": "expected a JSON object"})
        if method == "POST" and path == "/_sim/settings":
            unknown = set(body) - set(DEFAULT_SETTINGS)
            if unknown:
                return Response(400, {"error": f"unknown settings {sorted(unknown)}"})
            with self.lock:
                self.settings.update(body)
            return Response(200, {"settings": dict(self.settings)})
        if method == "POST" and path == "/_sim/keys":
            with self.lock:
                key = self._create_key(body.get("description", "BillMySales"), body.get("permissions", "read_write"))
            return Response(201, key)
        if method == "POST" and path == "/_sim/deliveries":
            with self.lock:
                self.delivery_faults.update({k: float(v) for k, v in body.items() if k in self.delivery_faults})
            return Response(200, {"delivery_faults": dict(self.delivery_faults)})
        if method == "POST" and path == "/_sim/orders":
            return self._create_orders(body)
        parts = path.split("/")
        if method == "POST" and len(parts) == 5 and parts[2] == "orders" and parts[3].isdigit():
            return self._change_order(int(parts[3]), parts[4], body)
        return None

    def _create_orders(self, body: dict) -> Response:
        status = body.get("status", "processing")
        if status not in ORDER_STATUSES:
            return Response(400, {"error": f"status must be one of {ORDER_STATUSES}"})
        created = datetime.fromisoformat(body["created_at"]) if body.get("created_at") else datetime.now(UTC)
        planned, orders = [], []
        with self.lock:
            for _ in range(int(body.get("count", 1))):
                order = self._build_order(random_sale(self.rng, body.get("document")), status, created)
                order.update(body.get("order") or {})
                self.orders[order["id"]] = order
                orders.append(self._order_json(order, int(self.settings["price_decimals"])))
                if status != "checkout-draft":
                    planned += self._plan(order, "created")
        return Response(201, {"orders": orders, "deliveries": self._send(planned)})

    def _change_order(self, order_id: int, change: str, body: dict) -> Response:
        now = datetime.now(UTC)
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return Response(404, {"error": f"no order {order_id}"})
            if change == "pay":
                order["status"] = body.get("status", "processing")
                self._mark_paid(order, now)
            elif change == "complete":
                if order["date_paid"] is None and body.get("paid", True):
                    self._mark_paid(order, now)
                order["status"] = "completed"
                self._stamp(order, "date_completed", now)
            elif change == "refund":
                first = order["line_items"][0]
                refunded = sum(-r["total"] for r in order["refunds"])
                amount = int(body.get("amount", first["total"] + first["total_tax"]))
                if refunded + amount > order["total"]:
                    return Response(400, {"error": "refund larger than what is left"})
                order["refunds"].insert(0, {"id": next(self.ids), "reason": body.get("reason", ""), "total": -amount})
                if refunded + amount == order["total"]:
                    order["status"] = "refunded"
            elif change == "cancel":
                order["status"] = "cancelled"
            elif change == "update":
                for key in ("customer_note", "billing", "shipping", "meta_data", "status"):
                    if key in body:
                        order[key] = body[key]
            else:
                return Response(404, {"error": f"no order change {change!r}"})
            self._stamp(order, "date_modified", now)
            planned = self._plan(order, "updated")
            answer = self._order_json(order, int(self.settings["price_decimals"]))
        return Response(200, {"order": answer, "deliveries": self._send(planned)})
