"""The signed-webhook reader every pushing store shares: it runs the checks, the store declares what differs.

The flow, in order:

1. A ping the store sends when a webhook is saved (``is_ping``) is acknowledged (200) and stored nowhere.
2. Without a configured secret nothing is accepted (401): unsigned deliveries are never trusted.
3. The signature header must match the raw body signed with the current or the previous secret
   (rotation), compared in constant time and as bytes (a forged header may carry non-ASCII).
4. The shop/store header must name this connection's store, when the connection names one: an app's
   secret is shared by every shop that installs it, so a valid signature alone does not prove the
   delivery is for this tenant.
5. Topics the gateway does not act on are acknowledged (200) and stored nowhere, with the reason.
6. The body is read as JSON. A body that is authentic but unreadable (not JSON, nested too deep, not
   an object, no order id) is **not** refused: it is returned with ``problem`` set, so the gateway
   stores it as an unread order the merchant sees with the reason, instead of the store retrying a
   body that will never read and the order vanishing.
7. The delivery id is the store's delivery header when it has a stable one, otherwise a hash of the body.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .base import WebhookDelivery, WebhookIgnored, WebhookRejected

MAX_DELIVERY_ID = 120
MAX_ORDER_ID = 100
BODY_TEXT_CHARS = 100_000


def hmac_sha256_base64(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def body_sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class SignedWebhookReader:
    """Subclasses declare the store's headers and topics; ``read`` runs the flow above."""

    vendor: str
    signature_header: str
    topic_header: str
    # A header that is the same on every retry of one delivery; None: deduplicate on the body's hash.
    delivery_id_header: str | None = None
    # The header naming the sending shop/store; None: no host check.
    host_header: str | None = None
    order_topics: frozenset[str] = frozenset()
    # Topics acknowledged on purpose, with the reason logged.
    ignored_topics: dict[str, str] = {}
    # What to do when the secret is missing or does not match (where the merchant finds the secret).
    secret_help: str = ""

    @classmethod
    def sign(cls, body: bytes, secret: str) -> str:
        return hmac_sha256_base64(body, secret)

    def is_ping(self, headers: dict[str, str], body: bytes) -> bool:
        return False

    @staticmethod
    def host_of(url: str) -> str:
        return (urlsplit((url or "").strip()).hostname or "").lower()

    def host_matches(self, given: str, store_url: str) -> bool:
        return self.host_of(given) == self.host_of(store_url) or given.strip().lower() == self.host_of(store_url)

    def read(self, *, headers, body: bytes, secrets: list[str], store_url: str) -> WebhookDelivery:
        # Django's request.headers is case-insensitive, a plain dict is not: look names up lower-cased.
        headers = {name.lower(): value for name, value in headers.items()}
        if self.is_ping(headers, body):
            raise WebhookIgnored(_("%(vendor)s: ping de creación del webhook.") % {"vendor": self.vendor})
        if not secrets:
            raise WebhookRejected(
                _("Esta conexión de %(vendor)s no tiene secreto de webhook y las entregas sin firma nunca se "
                  "aceptan: %(help)s") % {"vendor": self.vendor, "help": self.secret_help},
                status=401,
            )
        given = headers.get(self.signature_header.lower(), "")
        if not given:
            raise WebhookRejected(_("Falta la firma del webhook: no viene la cabecera %(header)s.") % {"header": self.signature_header},
                                  status=401)
        if not any(hmac.compare_digest(given.encode(), self.sign(body, secret).encode()) for secret in secrets):
            raise WebhookRejected(
                _("Firma de webhook inválida: %(header)s no corresponde al cuerpo firmado con el "
                  "secreto de esta conexión. %(help)s") % {"header": self.signature_header, "help": self.secret_help},
                status=401,
            )
        if self.host_header and store_url:
            sender = headers.get(self.host_header.lower(), "")
            if not self.host_matches(sender, store_url):
                raise WebhookRejected(
                    _("La entrega viene de %(sender)s, pero esta conexión es de %(store)s: revise la URL de la tienda de la "
                      "conexión.") % {
                        "sender": sender or _("(sin cabecera %(header)s)") % {"header": self.host_header},
                        "store": self.host_of(store_url)},
                    status=401,
                )
        topic = headers.get(self.topic_header.lower(), "")
        if topic in self.ignored_topics:
            raise WebhookIgnored(f"{topic}: {self.ignored_topics[topic]}")
        if topic not in self.order_topics:
            raise WebhookIgnored(_("El tema %(topic)s no es de órdenes que esta pasarela procese.") % {
                "topic": repr(topic or _("(ninguno)"))})
        delivery_id = (headers.get(self.delivery_id_header.lower(), "") if self.delivery_id_header else "") or body_sha256(body)
        payload, problem = self.read_json(body)
        if problem:
            return WebhookDelivery(
                delivery_id=delivery_id[:MAX_DELIVERY_ID], topic=topic[:60], payload=None, problem=problem,
                body_text=body[:BODY_TEXT_CHARS].decode("utf-8", errors="replace"),
            )
        return WebhookDelivery(delivery_id=delivery_id[:MAX_DELIVERY_ID], topic=topic[:60], payload=payload)

    def read_json(self, body: bytes) -> tuple[dict | None, str]:
        """(the order object, "") or (None, why it cannot be read), in Spanish."""
        try:
            payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            return None, _("El cuerpo JSON está anidado a demasiada profundidad para leerlo.")
        except (ValueError, UnicodeDecodeError) as exc:
            return None, _("El cuerpo no es JSON válido: %(error)s") % {"error": exc}
        if not isinstance(payload, dict):
            return None, _("El cuerpo no es un objeto JSON de orden (es %(kind)s).") % {"kind": type(payload).__name__}
        order_id = payload.get("id")
        if order_id in (None, "") or isinstance(order_id, (dict, list, bool, float)):
            return None, _("El cuerpo no es una orden de %(vendor)s: no trae un 'id' válido.") % {"vendor": self.vendor}
        if len(str(order_id)) > MAX_ORDER_ID:
            return None, _("El 'id' de la orden tiene %(length)s caracteres (máximo %(max)s).") % {
                "length": len(str(order_id)), "max": MAX_ORDER_ID}
        # PostgreSQL's jsonb refuses the NUL character; such a body is kept as text and shown instead. JSON
        # can only carry it escaped, so a body without the escape needs no second look (a costly one).
        if b"\\u0000" in body and "\\u0000" in json.dumps(payload):
            return None, _("El cuerpo JSON contiene caracteres nulos (\\u0000), que no se pueden guardar.")
        return payload, ""


def _refuse_constant(name: str):
    raise ValueError(f"{name} no es un número JSON válido")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"el número {text[:30]} está fuera de rango")
    return value
