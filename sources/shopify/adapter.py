"""Shopify stores, connected by installing our public app: orders arrive by signed webhooks and, as a
safety net, by polling the GraphQL Admin API; the issued document is written back as a metafield.

Two ways to connect (credentials):

- **Our public app** (``views.py``, ``oauth.py``): the merchant installs it and we keep an *expiring
  offline token*: ``access_token`` (about an hour) with ``access_token_expires_at``, ``refresh_token``
  (rotated on every use, about 90 days) with ``refresh_token_expires_at``, and the granted ``scope``.
  The token is refreshed before it expires, under the connection's lease
  (``sources.services.credentials_refresh``); a refused refresh marks the connection "reconnect needed".
  Its webhooks are signed with the app's client secret (``BMS_SHOPIFY_CLIENT_SECRET``). Since
  2026-01-01 merchants cannot create custom apps (https://shopify.dev/apps/auth/basic-http), so this is
  the way new stores connect.
- **An existing legacy custom app**: its Admin API ``access_token`` (``shpat_…``, never expires) pasted by
  hand, and the app's client secret as ``webhook_secret`` (``previous_webhook_secret`` during a
  rotation) for its webhooks.

``store_url`` is the shop's ``https://<shop>.myshopify.com``: the Admin API answers there without a
redirect and deliveries name the shop by that host. Every call uses the GraphQL Admin API, version
``BMS_SHOPIFY_API_VERSION`` (``client.py``).

Capabilities:

- ``WebhookReceiver``: ``orders/*`` deliveries (``webhooks.py``); ``app/uninstalled`` marks the connection
  disconnected (``SourceConnection.Status.DISABLED``), which stops its polling.
- ``WebhookRegistrar``: subscribes ``WEBHOOK_TOPICS`` to the gateway's address with
  ``webhookSubscriptionCreate``, after listing what exists (idempotent).
- ``OrderPoller``: ``orders(query: "updated_at:>'…'", sortKey: UPDATED_AT)`` page by page
  (``graphql_orders.py``), each order turned into the webhook's REST shape and keyed with
  ``change_key``, so a change seen by both paths is one event. A throttled page is a transient error
  with Shopify's wait as its retry hint (``client.py``); nothing here sleeps longer than a second.
- ``DocumentWriteBack``: ``metafieldsSet`` on the order (``client.py``).
- ``ConnectionTester``: the token works, the scopes, the webhooks to our address, the last poll.

Where Shopify's documentation is silent (assumptions):

- ``change_key`` is ``order:<id>@<updated_at>`` with the time as a UTC instant to the second, because
  webhooks send shop-local times and GraphQL UTC ones. Two versions of an order saved within the same
  second share a key; the later one is then read at the next change of the order.
- Webhook bodies are not documented to carry the order's localized fields (the RUT of
  ``TAX_CREDENTIAL_CL``); polled orders carry them. A shop whose checkout asks for the RUT there turns
  on the config ``rut_from_checkout_field``: its order webhooks are then acknowledged and not stored,
  and its orders are read by the poll (every ``poll_interval_seconds``), which brings that field. With
  it off, webhook orders rely on the other RUT candidates (``fields.py``).
- Scopes are those Shopify returned with the token (``scope`` of the token answer); a pasted custom-app
  token's scopes are not known, and the connection test says so.
"""
from datetime import UTC, datetime

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billmysales.integrations.errors import IntegrationError
from billmysales.integrations.reports import CheckItem, ConnectionReport
from billmysales.integrations.spec import BOOL, SECRET_TEXT, Field

from ..base import (
    ConnectionTester,
    OrderPoller,
    PollBatch,
    PolledOrder,
    StoreSource,
    WebhookIgnored,
    WebhookRegistrar,
    webhook_secrets,
    with_change_key,
)
from ..models import SourceConnection
from . import graphql_orders
from .client import ShopifyClient, app_secrets
from .fields import DEFAULT_FIELD_MAPPING
from .orders import parse_order
from .samples import sample_order
from .webhooks import APP_UNINSTALLED, TOPIC_HEADER, ShopifyAppReader, ShopifyWebhookReader

# GraphQL ``WebhookSubscriptionTopic`` values: what the gateway reads, and the app's removal.
WEBHOOK_TOPICS = ("ORDERS_CREATE", "ORDERS_PAID", "ORDERS_UPDATED", "ORDERS_EDITED", "ORDERS_CANCELLED",
                  "REFUNDS_CREATE", "APP_UNINSTALLED")
# What the gateway needs: reading orders and writing the document's metafield (write implies read).
NEEDED_SCOPES = ("read_orders", "write_orders")


def installed_by_app(connection) -> bool:
    """Connections made by installing our public app hold a refresh token (expiring offline tokens)."""
    return bool((connection.credentials or {}).get("refresh_token"))


def shopify_webhook_secrets(connection) -> list[str]:
    return webhook_secrets(connection) + (app_secrets() if installed_by_app(connection) else [])


def _utc_second(value) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifySource(StoreSource, OrderPoller, WebhookRegistrar, ConnectionTester):
    platform = "shopify"
    label = "Shopify"
    credentials_spec = (
        Field("access_token", gettext_lazy("Token de acceso de la Admin API"), SECRET_TEXT, required=False,
              help_text=gettext_lazy("Lo guarda la instalación de la app; o el de una app personalizada existente (shpat_…).")),
        Field("access_token_expires_at", gettext_lazy("Vencimiento del token de acceso"), required=False),
        Field("refresh_token", gettext_lazy("Token de renovación"), SECRET_TEXT, required=False),
        Field("refresh_token_expires_at", gettext_lazy("Vencimiento del token de renovación"), required=False),
        Field("scope", gettext_lazy("Permisos otorgados"), required=False),
        Field("webhook_secret", gettext_lazy("Secreto de webhooks de la app personalizada"), SECRET_TEXT, required=False,
              help_text=gettext_lazy("Solo para apps personalizadas existentes; la app pública firma con su propio secreto.")),
        Field("previous_webhook_secret", gettext_lazy("Secreto anterior (durante una rotación)"), SECRET_TEXT, required=False),
    )
    config_spec = (
        Field("rut_from_checkout_field", gettext_lazy("El RUT se pide en el campo de Shopify para Chile (TAX_CREDENTIAL_CL)"),
              BOOL, required=False, default=False,
              help_text=gettext_lazy("Las órdenes se leen entonces por la API cada pocos minutos, que trae ese campo, "
                                     "en lugar de por webhook, que no lo trae.")),
    )
    default_field_mapping = DEFAULT_FIELD_MAPPING
    order_parser = staticmethod(parse_order)
    webhook_reader = ShopifyWebhookReader()
    app_reader = ShopifyAppReader()
    client_class = ShopifyClient

    @classmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        return sample_order(number=number, test=test)

    @classmethod
    def change_key(cls, raw: dict) -> str | None:
        """``order:<id>@<updated_at as a UTC instant>:<financial status>:<refunds>:<cancelled>``: the same for
        a webhook body and a polled order. ``updated_at`` has whole seconds only: an order created pending
        and paid (or refunded) within the same second would otherwise look like one version, and its paid
        delivery would be dropped as a duplicate."""
        if not isinstance(raw, dict):
            return None
        order = raw["order"] if isinstance(raw.get("order"), dict) and "id" not in raw else raw
        order_id, updated = order.get("id"), _utc_second(order.get("updated_at"))
        if not isinstance(order_id, (int, str)) or isinstance(order_id, bool) or order_id == "" or updated is None:
            return None
        refunds = order.get("refunds") if isinstance(order.get("refunds"), list) else []
        status = order.get("financial_status") if isinstance(order.get("financial_status"), str) else ""
        return f"order:{order_id}@{updated}:{status.lower()}:{len(refunds)}:{'x' if order.get('cancelled_at') else ''}"

    # --- webhooks --------------------------------------------------------------------------------

    def webhook_delivery(self, *, headers, body: bytes):
        topic = {name.lower(): value for name, value in headers.items()}.get(TOPIC_HEADER.lower(), "")
        reader = self.app_reader if topic == APP_UNINSTALLED else self.webhook_reader
        delivery = reader.read(headers=headers, body=body, secrets=shopify_webhook_secrets(self.connection),
                               store_url=self.connection.store_url)
        if delivery.topic == APP_UNINSTALLED:
            self._uninstalled()
            raise WebhookIgnored(_("app/uninstalled: la conexión quedó desconectada y no se consultará más."))
        if (self.connection.config or {}).get("rut_from_checkout_field"):
            raise WebhookIgnored(_("%(topic)s: esta tienda se lee por la API (trae el RUT del checkout); la orden "
                                   "llega con la próxima consulta.") % {"topic": delivery.topic})
        return with_change_key(self, delivery)

    def _uninstalled(self) -> None:
        # Imported here: sources.services imports the registry, which imports this adapter.
        from ..services import connection_status_set

        connection_status_set(
            connection=self.connection, status=SourceConnection.Status.DISABLED,
            message=_("La app se desinstaló de la tienda en Shopify: no llegan órdenes. Vuelva a instalarla para reconectar."),
        )

    def ensure_webhooks(self, *, callback_url: str) -> str:
        client = ShopifyClient.for_connection(self.connection)
        present = {s.get("topic") for s in client.webhook_subscriptions() if s.get("uri") == callback_url}
        created = [topic for topic in WEBHOOK_TOPICS if topic not in present]
        for topic in created:
            client.webhook_subscription_create(topic=topic, uri=callback_url)
        if not created:
            return _("Webhooks de Shopify: los %(n)s temas ya estaban suscritos.") % {"n": len(WEBHOOK_TOPICS)}
        return _("Webhooks de Shopify: %(created)s suscritos; %(kept)s ya existían.") % {
            "created": ", ".join(created), "kept": len(WEBHOOK_TOPICS) - len(created)}

    # --- polling ---------------------------------------------------------------------------------

    def poll(self, *, cursor: dict, since: datetime, until: datetime | None) -> PollBatch:
        if self.connection.status == SourceConnection.Status.DISABLED:
            return PollBatch(orders=(), cursor={}, more=False, notes={"skipped": "disabled"})
        client = ShopifyClient.for_connection(self.connection)
        search = cursor.get("search") or graphql_orders.search_query(since=since, until=until)
        page = client.orders_page(search=search, after=cursor.get("after"))
        orders, left_to_webhooks = [], []
        for node in page.get("nodes") or []:
            if graphql_orders.nested_overflow(node):
                full = client.order(node["id"])
                if full is None or graphql_orders.truncated(full):
                    left_to_webhooks.append(node.get("name") or node.get("id"))
                    continue
                node = full
            raw = graphql_orders.rest_order(node)
            key = self.change_key(raw)
            if key:
                orders.append(PolledOrder(raw=raw, change_key=key))
        info = page.get("pageInfo") or {}
        more = bool(info.get("hasNextPage"))
        notes = {"requests": client.requests, "cost": client.last_cost}
        if left_to_webhooks:
            notes["too_large"] = left_to_webhooks
        return PollBatch(orders=tuple(orders), cursor={"search": search, "after": info.get("endCursor")} if more else {},
                         more=more, notes=notes)

    # --- "Probar conexión" -----------------------------------------------------------------------

    def test_connection(self) -> ConnectionReport:
        try:
            client = ShopifyClient.for_connection(self.connection)
            shop = client.shop_info()
        except IntegrationError as exc:
            return ConnectionReport((CheckItem(_("Acceso a la tienda"), False, exc.message), self._poll_item()))
        items = [CheckItem(_("Acceso a la tienda"), True, _("%(name)s (%(domain)s) responde con el token guardado.")
                           % {"name": shop.get("name"), "domain": shop.get("myshopifyDomain")})]
        items.append(self._scopes_item())
        try:
            items.append(self._webhooks_item(client.webhook_subscriptions()))
        except IntegrationError as exc:
            items.append(CheckItem(_("Webhooks"), False, exc.message))
        items.append(self._poll_item())
        return ConnectionReport(tuple(items))

    def _scopes_item(self) -> CheckItem:
        granted = {s.strip() for s in str((self.connection.credentials or {}).get("scope") or "").split(",") if s.strip()}
        if not granted:
            return CheckItem(_("Permisos"), None, _("No se conocen los permisos de este token (app personalizada)."))
        granted |= {"read_" + s.removeprefix("write_") for s in granted if s.startswith("write_")}
        missing = [scope for scope in NEEDED_SCOPES if scope not in granted]
        if missing:
            return CheckItem(_("Permisos"), False, _("Faltan permisos: %(missing)s. Vuelva a instalar la app.")
                             % {"missing": ", ".join(missing)})
        return CheckItem(_("Permisos"), True, ", ".join(sorted(granted)))

    @staticmethod
    def _webhooks_item(subscriptions: list[dict]) -> CheckItem:
        ours = {s.get("topic") for s in subscriptions if str(s.get("uri") or "").startswith(settings.BMS_PUBLIC_URL.rstrip("/") + "/")}
        missing = [topic for topic in WEBHOOK_TOPICS if topic not in ours]
        if missing:
            return CheckItem(_("Webhooks"), False, _("Sin suscripción hacia esta plataforma: %(topics)s.")
                             % {"topics": ", ".join(missing)})
        return CheckItem(_("Webhooks"), True, _("Los %(n)s temas llegan a esta plataforma.") % {"n": len(WEBHOOK_TOPICS)})

    def _poll_item(self) -> CheckItem:
        connection = self.connection
        if connection.poll_error:
            return CheckItem(_("Última consulta de órdenes"), False, connection.poll_error[:300])
        if connection.last_polled_at is None:
            return CheckItem(_("Última consulta de órdenes"), None, _("Aún no se ha consultado."))
        return CheckItem(_("Última consulta de órdenes"), True, _("Sin errores; la última terminó el %(when)s.")
                         % {"when": connection.last_polled_at.isoformat(timespec="seconds")})
