"""Multivende simulator: the OAuth2 app authorization, rotating tokens, the checkouts API (light list and full
checkout), electronic billing documents with PDF upload, the ~5 requests/s limit and webhook hints.

Addressing a merchant. Multivende is one service (``https://app.multivende.com``); merchants are named in
paths (``/api/m/<merchant_id>/...``) and by the token. Point the adapter's base URL at ``sim.url``.
One merchant exists from the start (``MultivendeSimulator.merchant_id``); ``POST /_sim/merchants`` adds
more, and the consent control chooses which merchant authorizes.

From Multivende's help center (OAuth2 articles, "Cómo registrar las ventas", "Cómo enviar Documentos
Tributarios"), its 2026 integration challenge ("El rps … es de 5") and integrators' code (see
``reference/source-multivende.md``):

- ``GET /apps/authorize?response_type=code&client_id&redirect_uri&scope[&state]`` → 302 to
  ``redirect_uri?code=ac-<uuid>``; ``redirect_uri`` must be one registered with the app.
- ``POST /oauth/access-token`` JSON ``{client_id: <number>, client_secret, grant_type: "authorization_code",
  code}`` or ``{..., grant_type: "refresh_token", refresh_token}`` → ``{_id, status, OauthClientId,
  MerchantId, CreatedById, UpdatedById, OwnerId, scopes, expiresAt, refreshToken: "rt-...",
  refreshTokenExpiresAt, token}``. Codes are single use; each refresh returns a new refresh token and
  retires the one used. Lifetimes ≈ 6 h (access) and 48 h (refresh), settings.
- ``Authorization: Bearer <token>`` (any case). An expired access token answers 403, which is what
  integrators see and retry on after refreshing.
- ``GET /api/d/info``; ``GET /api/m/<merchant>/checkouts/light/p/<page>`` with ``_updated_at_from`` /
  ``_updated_at_to`` (or ``_sold_at_from`` / ``_sold_at_to``), UTC ``YYYY-mm-dd hh:mm[:ss]``; a range
  over 2 hours is refused ("las consultas serán bloqueadas y se retornará un error"); the answer is
  ``{"entries": [...], "pagination": {...}}`` and entries are not sorted by date.
- ``GET /api/checkouts/<id>``; ``POST /api/checkouts/<id>/electronic-billing-documents`` then
  ``POST /api/electronic-billing-documents/<id>/upload`` (multipart field ``file``, a PDF of at most 1 MB);
  ``GET /api/checkouts/<id>/electronic-billing-documents/p/<page>`` with each document's
  ``ElectronicBillingDocumentFiles[] {synchronizationStatus, url}``.
- Webhooks carry only ``{"CheckoutId": ..., "OauthClient": {"client_id": ...}}``, unsigned: a hint to
  re-read the checkout.

Control routes (JSON bodies, under ``/_sim``): ``POST /settings`` (any of ``DEFAULT_SETTINGS``),
``POST /consent`` (``deny``, ``merchant_id``), ``POST /merchants`` (``name``), ``POST /checkouts``
(``count``, ``document``, ``origin``, ``payment_status``, ``merchant_id``, ``sold_at``, ``updated_at``,
``checkout`` overrides), ``POST /checkouts/<id>/pay|cancel|update``, ``POST /webhook`` (``checkout_id``),
``POST /expire-tokens`` (``access``, ``refresh``, ``merchant_id``), ``POST /sync-documents``,
``POST /deliveries``. ``GET /_sim/state`` shows merchants, checkouts, the billing documents and files
written back, tokens and every webhook hint with its status.

Assumptions where nothing public says (each a setting or a control where cheap):

- ``state`` is echoed back (``echo_state``, default true). A denied consent redirects with
  ``error=access_denied`` (RFC 6749 §4.1.2.1); codes live 10 minutes.
- Errors are JSON ``{"statusCode", "error", "message"}``. An unknown or malformed token answers 401;
  a token of another merchant's path, 403. A bad code or client answers 400; an expired or already
  used refresh token answers 401 "Refresh token expired" / "Invalid refresh token".
- ``scopes`` in the token answer is the scope string the app asked for. ``token`` is a JWT (HS256)
  carrying ``MerchantId`` and ``OauthClientId``.
- ``GET /api/d/info`` answers ``{_id, name, email, MerchantId, Merchant {_id, name, taxId, country},
  OauthClientId, scopes}``.
- The rate limit counts requests to ``/api/`` per merchant over the last second: more than ``rps`` (5)
  answers 403 ``Rate limit exceeded`` (``rate_limit_answer: "403"``, as integrators report), or 429 with
  ``Retry-After: 1`` (``"429"``).
- Light pages hold ``page_size`` (50) entries ordered by ``_id``; a page past the end is empty.
  ``pagination`` has ``total_items, total_pages, current_page, next_page, previous_page, limit, offset``.
  Only the paged light list is simulated: the "light with scroll" variant's cursor parameter is not
  public.
- A full checkout carries both the billing shape the product reads today (``BillingAddress {taxId,
  businessName, businessActivity, address_1, address_2, commune, city, documentType}``) and the one seen
  in integrators' code (``CheckoutBillingClients[0].documentType``, ``Client.taxId``, ``Client.type``,
  ``Client.BillingAddresses[]``, ``net``, ``CheckoutLink.externalCustomerOrderNumber``,
  ``ProductVersion.internalCode``). Mercado Libre checkouts have a ``CheckoutLink`` object, other
  marketplaces a ``CheckoutLinks`` array, as integrators found.
- Billing document ``type`` codes: any non-empty value unless ``document_types`` lists the accepted
  ones (only ``electronic_billing_electronic_bill`` is documented). Creating and uploading answer 200.
  Uploaded files are ``pending`` until ``POST /_sim/sync-documents`` marks them ``synchronized``.
- Webhook hints go to ``callback_url`` synchronously from the control call that changed the checkout;
  faults ``drop_rate`` and ``duplicate_rate`` as for the other stores.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import time
import uuid
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .base import HttpError, Request, Response, Simulator, post_json, route
from .chile import Sale, random_sale

MAX_PDF_BYTES = 1024 * 1024
CODE_LIFETIME = 600
ORIGINS = ("mercadolibre", "falabella", "ripley", "paris", "dafiti")
DEFAULT_SETTINGS = {
    "client_id": 1234, "client_secret": "sim-multivende-secret", "redirect_uris": [], "echo_state": True,
    "access_lifetime": 6 * 3600, "refresh_lifetime": 48 * 3600, "rps": 5, "rate_limit_answer": "403",
    "page_size": 50, "max_range_hours": 2, "document_types": [], "callback_url": None,
}


def _error(status: int, message: str) -> HttpError:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}
    return HttpError(status, {"statusCode": status, "error": names.get(status, "Error"), "message": message})


def _iso(moment: datetime) -> str:
    """Multivende's timestamps: UTC with milliseconds, ``2026-11-20T13:07:44.905Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _parse_window(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(value.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise _error(400, f"{name} debe tener el formato 'YYYY-mm-dd hh:mm:ss' (UTC)")


class MultivendeSimulator(Simulator):
    name = "multivende"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 1, **settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise TypeError(f"unknown Multivende settings {sorted(unknown)}")
        self.initial_settings, self.seed = {**DEFAULT_SETTINGS, **settings}, seed
        self.merchant_id = "0b2e6f90-5a41-4c7d-8e3f-6d1c2b3a4f50"
        super().__init__(host, port)

    def reset_state(self) -> None:
        self.settings = {k: (list(v) if isinstance(v, list) else v) for k, v in self.initial_settings.items()}
        self.rng = random.Random(self.seed)
        self.jwt_key = secrets.token_bytes(32)
        self.merchants: dict[str, dict] = {}
        self._add_merchant("Comercializadora Andina SpA", self.merchant_id)
        self.consent = {"deny": False, "merchant_id": self.merchant_id}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.checkouts: dict[str, dict] = {}
        self.documents: dict[str, dict] = {}
        self.recent: dict[str, deque] = defaultdict(deque)
        self.delivery_faults = {"drop_rate": 0.0, "duplicate_rate": 0.0, "timeout": 10.0}
        self.deliveries: list[dict] = []
        self.code_numbers = iter(range(184_600, 10_000_000))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _add_merchant(self, name: str, merchant_id: str | None = None) -> dict:
        merchant = {"_id": merchant_id or self._uuid(), "name": name, "taxId": "76.543.210-3", "country": "CL",
                    "owner": self._uuid(), "emitter": self._uuid()}
        self.merchants[merchant["_id"]] = merchant
        return merchant

    def state(self) -> dict:
        now = time.time()
        return {
            "settings": dict(self.settings), "consent": dict(self.consent),
            "merchants": list(self.merchants.values()),
            "checkouts": {cid: {"MerchantId": c["MerchantId"], "paymentStatus": c["paymentStatus"],
                                "status": c["status"], "gross": c["gross"], "updatedAt": c["updatedAt"]}
                          for cid, c in self.checkouts.items()},
            "documents": list(self.documents.values()),
            "tokens": [{"token": t[:16] + "…", "MerchantId": r["MerchantId"], "valid": now < r["expires_at"]}
                       for t, r in self.tokens.items()],
            "refresh_tokens": [{"refreshToken": t, "MerchantId": r["MerchantId"], "used": r["used"],
                                "expired": now >= r["expires_at"]} for t, r in self.refresh_tokens.items()],
            "delivery_faults": dict(self.delivery_faults), "deliveries": list(self.deliveries),
        }

    # --- OAuth -------------------------------------------------------------------------------------------

    @route("GET", r"/apps/authorize", name="authorize")
    def authorize(self, request: Request) -> Response:
        if request.arg("response_type") != "code":
            raise _error(400, "response_type debe ser 'code'")
        if request.arg("client_id") != str(self.settings["client_id"]):
            raise _error(400, "Aplicación no encontrada")
        redirect_uri = request.arg("redirect_uri", "")
        registered = self.settings["redirect_uris"]
        if not urlsplit(redirect_uri).scheme or (registered and redirect_uri not in registered):
            raise _error(400, "redirect_uri no corresponde a la aplicación")
        state = request.arg("state") if self.settings["echo_state"] else None
        if self.consent["deny"]:
            return self._redirect(redirect_uri, error="access_denied", state=state)
        code = f"ac-{uuid.uuid4()}"
        with self.lock:
            self.codes[code] = {"MerchantId": self.consent["merchant_id"], "scopes": request.arg("scope", ""),
                                "expires_at": time.time() + CODE_LIFETIME}
        return self._redirect(redirect_uri, code=code, state=state)

    @staticmethod
    def _redirect(url: str, **params) -> Response:
        parts = urlsplit(url)
        query = [(k, v) for k, values in parse_qs(parts.query, keep_blank_values=True).items() for v in values]
        query += [(k, v) for k, v in params.items() if v is not None]
        return Response(302, b"", {"Location": urlunsplit(parts._replace(query=urlencode(query)))},
                        content_type="text/html")

    @route("POST", r"/oauth/access-token", name="access_token")
    def access_token(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise _error(400, "Cuerpo inválido")
        if str(body.get("client_id")) != str(self.settings["client_id"]) or not hmac.compare_digest(
                str(body.get("client_secret", "")).encode(), str(self.settings["client_secret"]).encode()):
            raise _error(400, "Credenciales de la aplicación inválidas")
        now = time.time()
        with self.lock:
            if body.get("grant_type") == "authorization_code":
                code = self.codes.pop(str(body.get("code", "")), None)
                if code is None or now > code["expires_at"]:
                    raise _error(400, "Código de autorización inválido o expirado")
                return Response(200, self._issue(code["MerchantId"], code["scopes"]))
            if body.get("grant_type") == "refresh_token":
                record = self.refresh_tokens.get(str(body.get("refresh_token", "")))
                if record is None or record["used"]:
                    raise _error(401, "Invalid refresh token")
                if now >= record["expires_at"]:
                    raise _error(401, "Refresh token expired")
                record["used"] = True
                return Response(200, self._issue(record["MerchantId"], record["scopes"]))
        raise _error(400, "grant_type no soportado")

    def _issue(self, merchant_id: str, scopes: str) -> dict:
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.settings["access_lifetime"])
        refresh_expires = now + timedelta(seconds=self.settings["refresh_lifetime"])
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps({"MerchantId": merchant_id, "OauthClientId": self.settings["client_id"],
                                      "iat": int(now.timestamp()), "exp": int(expires.timestamp()),
                                      "jti": str(uuid.uuid4())}).encode())
        signature = _b64url(hmac.new(self.jwt_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        token, refresh = f"{header}.{payload}.{signature}", f"rt-{uuid.uuid4()}"
        self.tokens[token] = {"MerchantId": merchant_id, "scopes": scopes, "expires_at": expires.timestamp()}
        self.refresh_tokens[refresh] = {"MerchantId": merchant_id, "scopes": scopes, "used": False,
                                        "expires_at": refresh_expires.timestamp()}
        owner = self.merchants[merchant_id]["owner"]
        return {"_id": str(uuid.uuid4()), "status": "created", "OauthClientId": self.settings["client_id"],
                "MerchantId": merchant_id, "CreatedById": owner, "UpdatedById": owner, "OwnerId": owner,
                "scopes": scopes, "expiresAt": _iso(expires), "refreshToken": refresh,
                "refreshTokenExpiresAt": _iso(refresh_expires), "token": token,
                "createdAt": _iso(now), "updatedAt": _iso(now)}

    def _authenticate(self, request: Request) -> dict:
        scheme, _, token = request.header("authorization").partition(" ")
        record = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            raise _error(401, "Unauthorized")
        if time.time() >= record["expires_at"]:
            raise _error(403, "Token expired")
        self._throttle(record["MerchantId"])
        return record

    def _throttle(self, merchant_id: str) -> None:
        now = time.monotonic()
        with self.lock:
            recent = self.recent[merchant_id]
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= int(self.settings["rps"]):
                self.counters["rate_limited"] += 1
                if str(self.settings["rate_limit_answer"]) == "429":
                    raise HttpError(429, {"statusCode": 429, "error": "Too Many Requests",
                                          "message": "Rate limit exceeded"}, {"Retry-After": "1"})
                raise _error(403, "Rate limit exceeded")
            recent.append(now)

    # --- API ---------------------------------------------------------------------------------------------

    @route("GET", r"/api/d/info", name="info")
    def info(self, request: Request) -> Response:
        token = self._authenticate(request)
        merchant = self.merchants[token["MerchantId"]]
        return Response(200, {"_id": merchant["owner"], "name": "Carolina Vergara", "email": "integraciones@tienda.cl",
                              "MerchantId": merchant["_id"], "OauthClientId": self.settings["client_id"],
                              "scopes": token["scopes"],
                              "Merchant": {k: merchant[k] for k in ("_id", "name", "taxId", "country")}})

    @route("GET", r"/api/m/(?P<merchant>[0-9a-f-]{36})/checkouts/light/p/(?P<page>\d+)", name="checkouts_light")
    def checkouts_light(self, request: Request) -> Response:
        token = self._authenticate(request)
        if request.params["merchant"] != token["MerchantId"]:
            raise _error(403, "Forbidden")
        windows = []
        for field in ("updated_at", "sold_at"):
            start = _parse_window(request.arg(f"_{field}_from"), f"_{field}_from")
            end = _parse_window(request.arg(f"_{field}_to"), f"_{field}_to")
            if start is None and end is None:
                continue
            end = end or datetime.now(UTC)
            start = start or end - timedelta(hours=self.settings["max_range_hours"])
            if end - start > timedelta(hours=self.settings["max_range_hours"]) or end < start:
                raise _error(400, f"El rango máximo permitido por consulta es de {self.settings['max_range_hours']} "
                                  "horas")
            windows.append(({"updated_at": "updatedAt", "sold_at": "soldAt"}[field], start, end))
        connection = request.arg("_marketplace_connection_id")
        with self.lock:
            matching = sorted(
                (c for c in self.checkouts.values() if c["MerchantId"] == token["MerchantId"]
                 and (connection is None or c["MarketplaceConnectionId"] == connection)
                 and all(start <= datetime.fromisoformat(c[key].replace("Z", "+00:00")) <= end
                         for key, start, end in windows)),
                key=lambda c: c["_id"])
            entries = [{k: c[k] for k in ("_id", "status", "verifyStatus", "paymentStatus", "soldAt", "createdAt",
                                          "updatedAt", "BillingAddressId", "DeliveryTypeId", "MerchantId")}
                       for c in matching]
        size, page = int(self.settings["page_size"]), max(1, int(request.params["page"]))
        pages = -(-len(entries) // size)
        return Response(200, {"entries": entries[(page - 1) * size:page * size], "pagination": {
            "total_items": len(entries), "total_pages": pages, "current_page": page,
            "next_page": page + 1 if page < pages else None, "previous_page": page - 1 if page > 1 else None,
            "limit": size, "offset": (page - 1) * size}})

    def _checkout(self, request: Request, token: dict) -> dict:
        checkout = self.checkouts.get(request.params["id"])
        if checkout is None:
            raise _error(404, "Checkout no encontrado")
        if checkout["MerchantId"] != token["MerchantId"]:
            raise _error(403, "Forbidden")
        return checkout

    @route("GET", r"/api/checkouts/(?P<id>[0-9a-f-]{36})", name="checkout")
    def checkout(self, request: Request) -> Response:
        token = self._authenticate(request)
        with self.lock:
            return Response(200, json.loads(json.dumps(self._checkout(request, token))))

    @route("POST", r"/api/checkouts/(?P<id>[0-9a-f-]{36})/electronic-billing-documents", name="create_document")
    def create_document(self, request: Request) -> Response:
        token = self._authenticate(request)
        body = request.json()
        if not isinstance(body, dict):
            raise _error(400, "Cuerpo inválido")
        missing = [k for k in ("ClientId", "id", "emissionDate", "type", "provider",
                               "ElectronicBillingDocumentEmitterId") if not body.get(k)]
        if missing:
            raise _error(400, f"Faltan campos obligatorios: {', '.join(missing)}")
        if self.settings["document_types"] and body["type"] not in self.settings["document_types"]:
            raise _error(400, f"Tipo de documento no soportado: {body['type']}")
        try:
            datetime.strptime(str(body["emissionDate"]), "%Y-%m-%d")
        except ValueError:
            raise _error(400, "emissionDate debe tener el formato YYYY-MM-DD") from None
        with self.lock:
            checkout = self._checkout(request, token)
            if body["ClientId"] != checkout["Client"]["_id"]:
                raise _error(400, "ClientId no corresponde al cliente de la venta")
            now = _iso(datetime.now(UTC))
            document = {"_id": str(uuid.uuid4()), "status": "created", "ClientId": body["ClientId"],
                        "id": str(body["id"]), "emissionDate": body["emissionDate"],
                        "ElectronicBillingDocumentEmitterId": body["ElectronicBillingDocumentEmitterId"],
                        "MerchantId": token["MerchantId"], "type": body["type"], "provider": body["provider"],
                        "ElectronicBillingDocumentTypeId": str(uuid.uuid5(uuid.NAMESPACE_URL, body["type"])),
                        "ElectronicBillingDocumentProviderId": str(uuid.uuid5(uuid.NAMESPACE_URL, body["provider"])),
                        "CheckoutId": checkout["_id"], "createdAt": now, "updatedAt": now,
                        "ElectronicBillingDocumentFiles": []}
            self.documents[document["_id"]] = document
            return Response(200, document)

    @route("POST", r"/api/electronic-billing-documents/(?P<id>[0-9a-f-]{36})/upload", name="upload_document")
    def upload_document(self, request: Request) -> Response:
        token = self._authenticate(request)
        upload = self._multipart_file(request)
        if upload is None:
            raise _error(400, "Falta el archivo (campo 'file')")
        filename, content = upload
        if len(content) > MAX_PDF_BYTES:
            raise _error(400, "El archivo supera el peso máximo de 1MB")
        if not content.startswith(b"%PDF-"):
            raise _error(400, "El archivo debe estar en formato PDF")
        with self.lock:
            document = self.documents.get(request.params["id"])
            if document is None or document["MerchantId"] != token["MerchantId"]:
                raise _error(404, "Documento no encontrado")
            file_id = str(uuid.uuid4())
            stored = {"_id": file_id, "name": filename, "size": len(content),
                      "sha256": hashlib.sha256(content).hexdigest(), "synchronizationStatus": "pending",
                      "url": f"https://multivende-documents.s3.amazonaws.com/{document['MerchantId']}/{file_id}.pdf",
                      "ElectronicBillingDocumentId": document["_id"], "createdAt": _iso(datetime.now(UTC))}
            document["ElectronicBillingDocumentFiles"].append(stored)
            document["status"] = "uploaded"
            return Response(200, stored)

    @staticmethod
    def _multipart_file(request: Request) -> tuple[str, bytes] | None:
        content_type = request.header("content-type")
        if not content_type.startswith("multipart/form-data"):
            return None
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                return part.get_filename() or "file.pdf", part.get_payload(decode=True) or b""
        return None

    @route("GET", r"/api/checkouts/(?P<id>[0-9a-f-]{36})/electronic-billing-documents/p/(?P<page>\d+)",
           name="list_documents")
    def list_documents(self, request: Request) -> Response:
        token = self._authenticate(request)
        with self.lock:
            checkout = self._checkout(request, token)
            documents = [d for d in self.documents.values() if d["CheckoutId"] == checkout["_id"]]
        size, page = int(self.settings["page_size"]), max(1, int(request.params["page"]))
        pages = -(-len(documents) // size)
        return Response(200, {"entries": documents[(page - 1) * size:page * size], "pagination": {
            "total_items": len(documents), "total_pages": pages, "current_page": page,
            "next_page": page + 1 if page < pages else None, "previous_page": page - 1 if page > 1 else None,
            "limit": size, "offset": (page - 1) * size}})

    # --- checkouts --------------------------------------------------------------------------------------

    def _build_checkout(self, sale: Sale, merchant_id: str, origin: str, payment_status: str,
                        sold_at: datetime, updated_at: datetime) -> dict:
        buyer, company = sale.buyer, sale.company
        checkout_id, client_id = self._uuid(), self._uuid()
        number = next(self.code_numbers)
        items = []
        for line in sale.lines:
            items.append({"_id": self._uuid(), "code": line.sku, "count": line.quantity, "gross": line.unit_gross,
                          "totalWithDiscount": line.total_gross, "ProductVersionId": self._uuid(),
                          "ProductVersion": {"code": line.sku, "internalCode": line.sku, "ProductId": self._uuid(),
                                             "Product": {"code": line.sku.rsplit("-", 1)[0], "name": line.name},
                                             "Size": None}})
        shipping_cost = sale.shipping[2] if sale.shipping else 0
        courier = {"mercadolibre": "Mercado Envíos Flex", "falabella": "Falabella Envíos",
                   "ripley": "Ripley Despacho", "paris": "Paris Despacho", "dafiti": "Dafiti Envíos"}[origin]
        external = str(self.rng.randint(2_000_000_000, 2_999_999_999))
        billing_address = {"_id": self._uuid(), "documentType": "Factura", "taxId": company.rut,
                           "businessName": company.razon_social, "businessActivity": company.giro,
                           "fullName": buyer.name, "address_1": buyer.address1, "address_2": buyer.address2,
                           "city": buyer.comuna, "commune": buyer.comuna} if company else None
        gross = sale.total
        checkout = {
            "_id": checkout_id, "code": f"MV-{number:08d}", "status": "completed" if payment_status == "completed"
            else "pending", "verifyStatus": "verified", "paymentStatus": payment_status, "deliveryStatus": "pending",
            "origin": origin, "currency": "CLP", "soldAt": _iso(sold_at), "createdAt": _iso(sold_at + timedelta(
                seconds=130)), "updatedAt": _iso(updated_at), "MerchantId": merchant_id,
            "MarketplaceConnectionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{merchant_id}/{origin}")),
            "BillingAddressId": billing_address["_id"] if billing_address else None,
            "DeliveryTypeId": "a1d4c3b2-0000-4000-8000-000000000002", "gross": gross,
            "net": int((Decimal(gross) / Decimal("1.19")).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
            "Client": {"_id": client_id, "fullName": buyer.name,
                       "email": f"{buyer.email.split('@')[0]}@mail.{origin}.cl",
                       "phoneNumber": buyer.phone, "taxId": company.rut if company else buyer.rut,
                       "type": "company" if company else "person",
                       "BillingAddresses": [{"address_1": buyer.address1, "address_2": buyer.address2,
                                             "city": buyer.comuna}]},
            "CheckoutBillingClients": [{"documentType": "Factura" if company else "Boleta"}],
            "CheckoutItems": items,
            "CheckoutPayments": [{"_id": self._uuid(), "paymentStatus": payment_status, "amount": gross,
                                  "paymentMethod": "mercadopago" if origin == "mercadolibre" else "webpay"}],
            "DeliveryOrderInCheckouts": [{"DeliveryOrderId": self._uuid(), "DeliveryOrder": {
                "code": f"{origin[:3].upper()}-{self.rng.randint(10_000_000, 99_999_999)}", "cost": shipping_cost,
                "courierName": courier, "shippingMode": "me2" if origin == "mercadolibre" else "dropoff",
                "trackingNumber": str(self.rng.randint(10_000_000, 99_999_999)), "deliveryStatus": "pending",
                "ShippingAddress": {"street": buyer.address1.rsplit(" ", 1)[0],
                                    "number": buyer.address1.rsplit(" ", 1)[1],
                                    "indications": buyer.address2, "city": buyer.comuna,
                                    "address_1": buyer.address1, "address_2": buyer.address2}}}],
        }
        if billing_address:
            checkout["BillingAddress"] = billing_address
        link = {"externalOrderNumber": external, "externalCustomerOrderNumber": external, "CheckoutId": checkout_id}
        if origin == "mercadolibre":
            checkout["CheckoutLink"] = link
        else:
            checkout["CheckoutLinks"] = [{"externalOrderNumber": external, "externalContent": {"OrderId": external}}]
        return checkout

    def _hints(self, checkouts: list[dict]) -> list[dict]:
        url = self.settings["callback_url"]
        if not url:
            return []
        return [{"url": url, "body": json.dumps({"CheckoutId": c["_id"], "OauthClient": {
            "client_id": self.settings["client_id"]}}).encode(), "CheckoutId": c["_id"]} for c in checkouts]

    def _send(self, planned: list[dict]) -> list[dict]:
        records = []
        for hint in planned:
            record = {"CheckoutId": hint["CheckoutId"], "url": hint["url"], "duplicate": False}
            if self.rng.random() < self.delivery_faults["drop_rate"]:
                records.append(dict(record, status=None, dropped=True))
                continue
            copies = 2 if self.rng.random() < self.delivery_faults["duplicate_rate"] else 1
            for copy in range(copies):
                status, _ = post_json(hint["url"], hint["body"], {}, timeout=self.delivery_faults["timeout"])
                records.append(dict(record, status=status, dropped=False, duplicate=copy > 0))
        with self.lock:
            self.deliveries.extend(records)
            self.counters["deliveries:webhook"] += len(records)
        return records

    # --- control routes --------------------------------------------------------------------------------

    def control(self, request: Request) -> Response | None:
        path, method = request.path, request.method
        body = request.json() if request.body else {}
        if method != "POST" or not isinstance(body, dict):
            return None
        if path == "/_sim/settings":
            unknown = set(body) - set(DEFAULT_SETTINGS)
            if unknown:
                return Response(400, {"error": f"unknown settings {sorted(unknown)}"})
            with self.lock:
                self.settings.update(body)
            return Response(200, {"settings": dict(self.settings)})
        if path == "/_sim/consent":
            if body.get("merchant_id", self.consent["merchant_id"]) not in self.merchants:
                return Response(400, {"error": "unknown merchant_id"})
            with self.lock:
                self.consent.update({k: v for k, v in body.items() if k in self.consent})
            return Response(200, {"consent": dict(self.consent)})
        if path == "/_sim/merchants":
            with self.lock:
                merchant = self._add_merchant(body.get("name", "Otra Tienda SpA"))
            return Response(201, merchant)
        if path == "/_sim/deliveries":
            with self.lock:
                self.delivery_faults.update({k: float(v) for k, v in body.items() if k in self.delivery_faults})
            return Response(200, {"delivery_faults": dict(self.delivery_faults)})
        if path == "/_sim/expire-tokens":
            with self.lock:
                stores = ([self.tokens] if body.get("access", True) else []) + \
                    ([self.refresh_tokens] if body.get("refresh", False) else [])
                for store in stores:
                    for record in store.values():
                        if body.get("merchant_id") in (None, record["MerchantId"]):
                            record["expires_at"] = min(record["expires_at"], time.time() - 1)
            return Response(200, {"expired": True})
        if path == "/_sim/sync-documents":
            with self.lock:
                files = [f for d in self.documents.values() for f in d["ElectronicBillingDocumentFiles"]]
                for stored in files:
                    stored["synchronizationStatus"] = body.get("status", "synchronized")
            return Response(200, {"files": len(files)})
        if path == "/_sim/checkouts":
            return self._create_checkouts(body)
        if path == "/_sim/webhook":
            with self.lock:
                checkout = self.checkouts.get(body.get("checkout_id")) or next(iter(self.checkouts.values()), None)
                if checkout is None:
                    return Response(404, {"error": "no checkout"})
                planned = self._hints([checkout])
            return Response(200, {"deliveries": self._send(planned)})
        parts = path.split("/")
        if len(parts) == 5 and parts[2] == "checkouts" and parts[4] in ("pay", "cancel", "update"):
            return self._change_checkout(parts[3], parts[4], body)
        return None

    def _create_checkouts(self, body: dict) -> Response:
        merchant_id = body.get("merchant_id", self.merchant_id)
        if merchant_id not in self.merchants:
            return Response(400, {"error": "unknown merchant_id"})
        now = datetime.now(UTC)
        updated_at = datetime.fromisoformat(body["updated_at"]) if body.get("updated_at") else now
        sold_at = datetime.fromisoformat(body["sold_at"]) if body.get("sold_at") else updated_at - timedelta(minutes=8)
        created = []
        with self.lock:
            for _ in range(int(body.get("count", 1))):
                origin = body.get("origin") or self.rng.choice(ORIGINS)
                checkout = self._build_checkout(random_sale(self.rng, body.get("document")), merchant_id, origin,
                                                body.get("payment_status", "completed"), sold_at, updated_at)
                checkout.update(body.get("checkout") or {})
                self.checkouts[checkout["_id"]] = checkout
                created.append(checkout)
            planned = self._hints(created)
            answer = json.loads(json.dumps(created))
        return Response(201, {"checkouts": answer, "deliveries": self._send(planned)})

    def _change_checkout(self, checkout_id: str, change: str, body: dict) -> Response:
        with self.lock:
            checkout = self.checkouts.get(checkout_id)
            if checkout is None:
                return Response(404, {"error": f"no checkout {checkout_id}"})
            if change == "pay":
                checkout["paymentStatus"] = checkout["status"] = "completed"
                for payment in checkout["CheckoutPayments"]:
                    payment["paymentStatus"] = "completed"
            elif change == "cancel":
                checkout["status"] = "cancelled"
            else:
                checkout.update(body.get("checkout") or {})
            updated = datetime.fromisoformat(body["updated_at"]) if body.get("updated_at") \
                else datetime.now(UTC)
            checkout["updatedAt"] = _iso(updated)
            planned = self._hints([checkout])
            answer = json.loads(json.dumps(checkout))
        return Response(200, {"checkout": answer, "deliveries": self._send(planned)})
