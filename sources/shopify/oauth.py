"""Our public app's install flow, the parts without HTTP: the shop's name, signed query strings, the
authorize address. The views (``views.py``) run the flow; ``client.py`` exchanges the code.

The authorization-code grant for a standalone app
(https://shopify.dev/docs/apps/build/authentication-authorization/authenticate-standalone-apps), as
Shopify/shopify-app-js does it (``lib/auth/oauth/oauth.ts``, ``lib/utils/hmac-validator.ts``,
``lib/utils/shop-validator.ts``):

1. The merchant asks to connect from our dashboard (or opens the app from Shopify: a request to our
   App URL with ``shop``, ``timestamp``, ``host`` and ``hmac``, verified here).
2. We send the browser to ``https://<shop>/admin/oauth/authorize?client_id=&scope=&redirect_uri=&state=``
   with a ``state`` we generated and stored (``sources.services.connect_attempt_start``); no
   ``grant_options[]``, so the token is offline (the shop's, not the user's).
3. Shopify sends the browser back to the redirect URL with ``code``, ``hmac``, ``host``, ``shop``,
   ``state`` and ``timestamp``. The ``hmac`` is the hex HMAC-SHA256, keyed with the app's client secret,
   of the other parameters (without ``hmac`` and ``signature``) sorted by name and written as a URL query
   (``URLSearchParams``: everything but letters, digits and ``*-._`` percent-encoded, spaces as
   ``%20``), compared in constant time; ``shop`` must be a ``*.myshopify.com`` host; ``timestamp`` must
   be within ``HMAC_TOLERANCE_SECONDS`` of now (shopify-app-js's 90 s clock tolerance), so an old signed
   address cannot be replayed.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from .client import SHOP_DOMAIN, app_secrets, shop_base_url

HMAC_TOLERANCE_SECONDS = 90
ADMIN_STORE = re.compile(r"admin\.shopify\.com/store/(?P<name>[a-z0-9][a-z0-9-]*)/?")


class InstallRefused(ValueError):
    """A request from (or claiming to be from) Shopify that must not be trusted; the message says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def normalize_shop(value: str | None) -> str | None:
    """``tienda``, ``tienda.myshopify.com``, ``https://tienda.myshopify.com/admin`` or
    ``admin.shopify.com/store/tienda`` → ``tienda.myshopify.com``; None when it names no shop."""
    text = (value or "").strip().lower()
    if not text:
        return None
    admin = ADMIN_STORE.search(text)
    if admin:
        return f"{admin['name']}.myshopify.com"
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    if "." not in host:
        host = f"{host}.myshopify.com"
    return host if SHOP_DOMAIN.fullmatch(host) else None


def _encode(text: str) -> str:
    # URLSearchParams keeps only letters, digits and *-._ unencoded; quote() also keeps "~".
    return quote(text, safe="*").replace("~", "%7E")


def signed_message(params) -> str:
    """The text Shopify signs: every parameter but ``hmac``/``signature``, sorted, as a query string.
    ``params`` is a Django ``QueryDict`` (or a dict of lists); repeated values are joined with commas."""
    pairs = sorted((key, ",".join(values)) for key, values in params.lists() if key not in ("hmac", "signature"))
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in pairs)


def query_hmac(params, secret: str) -> str:
    return hmac.new(secret.encode(), signed_message(params).encode(), hashlib.sha256).hexdigest()


def verified_shop(params, *, now: float | None = None) -> str:
    """The shop a signed request from Shopify names, or ``InstallRefused`` saying what is wrong."""
    secrets = app_secrets()
    if not secrets:
        raise InstallRefused(_("La app de Shopify no está configurada en este servidor."))
    given = params.get("hmac") or ""
    if not given:
        raise InstallRefused(_("La solicitud no trae la firma (hmac) de Shopify."))
    if not any(hmac.compare_digest(given.encode(), query_hmac(params, secret).encode()) for secret in secrets):
        raise InstallRefused(_("La firma (hmac) de la solicitud no es de Shopify."))
    timestamp = params.get("timestamp") or ""
    if not timestamp.isdigit():
        raise InstallRefused(_("La solicitud de Shopify no trae una hora (timestamp) válida."))
    if abs((now if now is not None else time.time()) - int(timestamp)) > HMAC_TOLERANCE_SECONDS:
        raise InstallRefused(_("La solicitud firmada de Shopify es antigua; vuelva a intentarlo desde el comienzo."))
    shop = (params.get("shop") or "").lower()
    if not SHOP_DOMAIN.fullmatch(shop):
        raise InstallRefused(_("La tienda indicada no es una tienda de Shopify (<tienda>.myshopify.com)."))
    return shop


def authorize_url(*, shop: str, state: str, redirect_uri: str) -> str:
    query = urlencode({"client_id": settings.BMS_SHOPIFY_CLIENT_ID, "scope": ",".join(settings.BMS_SHOPIFY_SCOPES),
                       "redirect_uri": redirect_uri, "state": state})
    return f"{shop_base_url(shop)}/admin/oauth/authorize?{query}"
