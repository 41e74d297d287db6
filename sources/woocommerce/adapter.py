"""WooCommerce stores: connected by WooCommerce's key handshake, orders pushed by signed webhooks we
register ourselves, and polled through the REST API as the safety net.

Sources: the REST API docs (woocommerce/woocommerce-rest-api-docs ``source/includes/wp-api-v3/``:
``_authentication.md``, ``_orders.md``, ``_webhooks.md``, ``_order-notes.md``) and WooCommerce core
(``includes/class-wc-auth.php``, ``includes/class-wc-webhook.php``, the REST controllers). HTTP is in
``client.py``; the connect flow in ``services.py`` / ``views.py``; deliveries in ``webhooks.py``.

Connecting. The merchant clicks "Conectar WooCommerce", approves our app on the store
(``/wc-auth/v1/authorize``, scope ``read_write``), and WooCommerce POSTs the new REST keys to our
callback; see ``services.py``. Pasting the keys (WooCommerce > Ajustes > Avanzado > API REST, access
Lectura/Escritura) is the second path, through the credentials spec below.

Webhooks. ``ensure_webhooks`` (called when a gateway is created, and on reconnect) creates
``order.created`` and ``order.updated`` webhooks pointing at the gateway's address, signed with the
connection's ``webhook_secret`` (generated, alphanumeric: core runs the secret through
``wp_specialchars_decode`` before signing and admin screens have mangled ``&``, ``;`` and quotes). It
is idempotent: it looks for ours first (same topic and delivery URL) and re-activates a disabled or
paused one with ``PUT status=active`` and our secret (the docs mark ``secret`` write-only, so a secret
that cannot be read back is sent again). ``order.deleted`` is not subscribed: a trashed order is not an
invoicing event.

Why polling is the safety net. Core never retries a failed delivery; after more than five failures in
a row it sets the webhook to ``disabled`` (``WC_Webhook::failed_delivery``), and re-activating it does
not reset the failure count (``set_status`` only), so one more failure disables it again. Deliveries
also depend on WP-Cron / Action Scheduler running. So:

- every regular poll (first page) and every "Probar conexión" lists the store's webhooks, takes ours
  (topic ``order.created``/``order.updated`` and delivery URL under ``BMS_PUBLIC_URL``), and for a
  disabled one re-activates it and marks the connection "needs attention" with a Spanish message
  (``sources.services.connection_status_set``); the merchant clears it with a passing "Probar conexión";
- ``poll`` lists ``GET orders`` modified after the window's start (``modified_after``, exclusive, with
  ``dates_are_gmt=true``), 100 per page, following ``X-WP-TotalPages``; the next page number is the
  cursor.

Paging choice (the docs are silent on consistency): the API pages by offset, so rows that change
while we page move. We ask for ``orderby=modified&order=desc``: an order modified during the walk
jumps to the front, shifting the rows after it by one, so a row already read is read again — repeats,
which the change keys absorb — instead of the row at a page boundary being skipped, which is what
ascending order (the changed row leaves for the end, the rest shift left) would do. An order created
during the walk also lands at the front (a repeat). Only a row leaving the window (an order trashed
mid-walk, or in a backfill an order modified past the range's end) shifts rows left; the next regular
poll, which starts ``overlap_seconds`` before the last one, covers that. ``orderby=modified`` is in the
CRUD controller's enum in current core but not in the docs' list; a store that refuses it (400
``rest_invalid_param``) is paged by ``date`` (creation), where modifications do not move rows at all.

One change, one event. ``change_key`` is ``order:<id>@<date_modified_gmt>`` on the webhook and the poll
paths, so a delivered change and the same change polled are one event, and the ``order.created`` +
``order.updated`` pair core fires at checkout (woocommerce/woocommerce#19764, #43019) is stored once.
``date_modified_gmt`` has one-second resolution, so two versions of one order within the same second
(created ``pending`` and paid a moment later) would share a key and the later — the paid one — would be
dropped as a duplicate. A version that reaches us less than ``SETTLE_SECONDS`` (2 s) after its
``date_modified_gmt`` may not be the last of its second, so it is stored under its body's hash instead
(``sha256:…``), as before change keys; the same version read again once settled gets the change key,
one more event that ingestion absorbs (issuance is exactly-once by construction). Core builds webhook
bodies when it delivers, usually seconds later through Action Scheduler, so deliveries are mostly
settled; the rule matters for synchronous deliveries and polls that race a payment. It assumes the
store's clock is within a second of ours; a store clock behind ours reopens the gap.

Credentials: ``consumer_key`` and ``consumer_secret`` (read/write REST keys), ``webhook_secret`` and,
during a rotation, ``previous_webhook_secret``. ``store_url`` is the site's home URL, over HTTPS (pretty
permalinks, as the docs require). Config: ``query_string_auth`` and ``rest_prefix`` (see ``client.py``).
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billmysales.integrations.errors import IntegrationError
from billmysales.integrations.reports import CheckItem, ConnectionReport
from billmysales.integrations.spec import BOOL, SECRET_TEXT, Field, random_secret

from ..base import (
    ConnectionTester,
    OrderPoller,
    PollBatch,
    PolledOrder,
    StoreSource,
    WebhookDelivery,
    WebhookRegistrar,
    webhook_secrets,
    with_change_key,
)
from ..models import SourceConnection
from ..webhooks import body_sha256
from .client import PER_PAGE, AuthorizationHeaderDropped, OrderbyRefused, WooCommerceClient
from .fields import DEFAULT_FIELD_MAPPING
from .orders import parse_order
from .samples import sample_order
from .webhooks import WooCommerceWebhookReader

logger = logging.getLogger(__name__)

ORDER_TOPICS = ("order.created", "order.updated")
# A version younger than this may still be followed by another in the same second (see the docstring).
SETTLE_SECONDS = 2


def webhook_name(topic: str) -> str:
    return f"BillMySales ({topic})"


def ours_prefix() -> str:
    """Every gateway address lives under the public URL: a webhook pointing there is one of ours."""
    return settings.BMS_PUBLIC_URL.rstrip("/") + "/"


def _same_url(a: str, b: str) -> bool:
    return (a or "").strip().rstrip("/") == (b or "").strip().rstrip("/")


class WooCommerceSource(StoreSource, OrderPoller, ConnectionTester, WebhookRegistrar):
    platform = "woocommerce"
    label = "WooCommerce"
    credentials_spec = (
        Field("consumer_key", gettext_lazy("Clave de cliente de la API REST (ck_…)"), SECRET_TEXT,
              help_text=gettext_lazy("WooCommerce > Ajustes > Avanzado > API REST, acceso Lectura/Escritura. "
                                     "No hace falta si conecta con el botón «Conectar WooCommerce».")),
        Field("consumer_secret", gettext_lazy("Secreto de cliente de la API REST (cs_…)"), SECRET_TEXT),
        Field("webhook_secret", gettext_lazy("Secreto de los webhooks"), SECRET_TEXT, required=False,
              generated=random_secret,
              help_text=gettext_lazy("Se genera y se registra solo. Péguelo únicamente si creó los webhooks a mano "
                                     "(WooCommerce > Ajustes > Avanzado > Webhooks).")),
        Field("previous_webhook_secret", gettext_lazy("Secreto anterior (durante una rotación)"), SECRET_TEXT,
              required=False),
    )
    config_spec = (
        Field("query_string_auth", gettext_lazy("Enviar las claves en la URL"), BOOL, required=False, default=False,
              help_text=gettext_lazy("Solo si el servidor elimina la cabecera Authorization (\"Consumer key is "
                                     "missing\" o \"Sorry, you cannot list resources\" con claves correctas).")),
        Field("rest_prefix", gettext_lazy("Prefijo de la API REST"), required=False, default="wp-json"),
    )
    default_field_mapping = DEFAULT_FIELD_MAPPING
    order_parser = staticmethod(parse_order)
    webhook_reader = WooCommerceWebhookReader()
    client_class = WooCommerceClient

    @classmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        return sample_order(number=number, test=test)

    @classmethod
    def change_key(cls, raw: dict) -> str | None:
        order_id, modified = raw.get("id"), raw.get("date_modified_gmt")
        if order_id in (None, "") or isinstance(order_id, dict | list | bool | float):
            return None
        if not isinstance(modified, str) or not modified.strip():
            return None
        return f"order:{order_id}@{modified.strip()}"

    @classmethod
    def settled_change_key(cls, raw: dict, now: datetime) -> str | None:
        """``change_key`` for a version that can no longer share its second with a later one; None while it
        might (or when the body does not say), and the caller keys it by its body's hash."""
        key = cls.change_key(raw)
        if key is None:
            return None
        try:
            modified = datetime.fromisoformat(raw["date_modified_gmt"].strip()).replace(tzinfo=UTC)
        except ValueError:
            return key
        return key if now - modified >= timedelta(seconds=SETTLE_SECONDS) else None

    def webhook_delivery(self, *, headers, body: bytes) -> WebhookDelivery:
        delivery = self.webhook_reader.read(
            headers=headers, body=body, secrets=webhook_secrets(self.connection), store_url=self.connection.store_url
        )
        if delivery.payload is None or self.settled_change_key(delivery.payload, timezone.now()) is None:
            return delivery  # under the body's hash
        return with_change_key(self, delivery)

    def client(self) -> WooCommerceClient:
        return WooCommerceClient.for_connection(self.connection)

    # --- polling -----------------------------------------------------------------------------------

    def poll(self, *, cursor: dict, since: datetime, until: datetime | None) -> PollBatch:
        client = self.client()
        page = int(cursor.get("page") or 1)
        orderby = cursor.get("orderby") or "modified"
        requests_made = 1
        try:
            result = client.orders_page(modified_after=since, modified_before=until, page=page, orderby=orderby)
        except OrderbyRefused:
            orderby = "date"
            requests_made += 1
            result = client.orders_page(modified_after=since, modified_before=until, page=page, orderby=orderby)
        now = timezone.now()
        orders = tuple(
            PolledOrder(raw=raw, change_key=self.settled_change_key(raw, now)
                        or body_sha256(json.dumps(raw, sort_keys=True).encode()))
            for raw in result.orders
        )
        # Without X-WP-TotalPages (a proxy may drop it), a full page means there may be another.
        more = page < result.total_pages if result.total_pages is not None else len(orders) == PER_PAGE
        if not cursor and until is None:
            requests_made += self._review_webhooks(client)
        return PollBatch(
            orders=orders, cursor={"page": page + 1, "orderby": orderby} if more else {}, more=more,
            notes={"requests": requests_made, "page": page, "total_pages": result.total_pages, "total": result.total},
        )

    def _review_webhooks(self, client: WooCommerceClient) -> int:
        """A regular poll's look at our webhooks: a disabled one is re-activated and said; returns the calls made."""
        try:
            hooks = [hook for hook in client.webhooks() if self._ours(hook)]
        except IntegrationError as exc:
            logger.warning("account=%s source=%s could not list WooCommerce webhooks: %s",
                           self.connection.account_id, self.connection.pk, exc)
            return 1
        disabled = [hook for hook in hooks if hook.get("status") == "disabled"]
        if disabled:
            self._reactivate(client, disabled)
        return 1 + len(disabled)

    def _ours(self, hook: dict) -> bool:
        return hook.get("topic") in ORDER_TOPICS and str(hook.get("delivery_url") or "").startswith(ours_prefix())

    def _reactivate(self, client: WooCommerceClient, disabled: list[dict]) -> str:
        """Re-activates disabled webhooks of ours and marks the connection "needs attention"; returns the message."""
        from ..services import connection_status_set  # late: sources.services imports the registry, which imports this

        secret = self._webhook_secret()
        reactivated, failed = [], []
        for hook in disabled:
            label = f"{hook.get('topic')} (n.º {hook.get('id')})"
            try:
                client.webhook_update(hook["id"], status="active", secret=secret)
                reactivated.append(label)
            except IntegrationError as exc:
                failed.append((label, exc.message))
        parts = []
        if reactivated:
            parts.append(_("WooCommerce desactivó el webhook %(hooks)s tras varias entregas fallidas; se reactivó. "
                           "Las órdenes de ese lapso llegan por la consulta periódica. Revise por qué fallaban "
                           "(WooCommerce > Estado > Registros, webhooks-delivery).") % {"hooks": ", ".join(reactivated)})
        if failed:
            parts.append(_("WooCommerce desactivó el webhook %(hooks)s y no se pudo reactivar (%(error)s): "
                           "reactívelo en WooCommerce > Ajustes > Avanzado > Webhooks.")
                         % {"hooks": ", ".join(label for label, _error in failed), "error": failed[0][1][:120]})
        message = " ".join(parts)
        if self.connection.pk:
            connection_status_set(connection=self.connection, status=SourceConnection.Status.ERROR, message=message)
        return message

    def _webhook_secret(self) -> str:
        """The connection's webhook secret; one is generated and saved first when it has none."""
        secret = (self.connection.credentials or {}).get("webhook_secret")
        if secret:
            return secret
        from accounts.services import Actor

        from ..services import source_connection_update  # late: the registry imports this module

        secret = random_secret()
        source_connection_update(connection=self.connection, actor=Actor.system(), credentials={"webhook_secret": secret})
        return secret

    # --- webhooks ----------------------------------------------------------------------------------

    def ensure_webhooks(self, *, callback_url: str) -> str:
        client = self.client()
        secret = self._webhook_secret()
        hooks = client.webhooks()
        done = []
        for topic in ORDER_TOPICS:
            mine = [hook for hook in hooks if hook.get("topic") == topic and _same_url(hook.get("delivery_url"), callback_url)]
            if not mine:
                created = client.webhook_create(name=webhook_name(topic), topic=topic, delivery_url=callback_url, secret=secret)
                done.append(_("%(topic)s creado (n.º %(id)s)") % {"topic": topic, "id": created["id"]})
                continue
            for hook in mine:
                if hook.get("status") == "active" and hook.get("secret") == secret:
                    done.append(_("%(topic)s ya estaba activo (n.º %(id)s)") % {"topic": topic, "id": hook["id"]})
                    continue
                client.webhook_update(hook["id"], status="active", secret=secret)
                what = _("reactivado") if hook.get("status") != "active" else _("actualizado con nuestro secreto")
                done.append(_("%(topic)s %(what)s (n.º %(id)s)") % {"topic": topic, "what": what, "id": hook["id"]})
        return _("Webhooks de WooCommerce: %(done)s.") % {"done": "; ".join(done)}

    # --- "Probar conexión" ---------------------------------------------------------------------------

    def test_connection(self) -> ConnectionReport:
        from ..services import connection_status_set  # late: sources.services imports the registry, which imports this

        api_label = _("API REST de WooCommerce")
        try:
            client = self.client()
        except IntegrationError as exc:
            return ConnectionReport((CheckItem(api_label, False, exc.message),
                                     CheckItem(_("Webhooks"), None, _("No se revisaron: hacen falta las claves de la API REST."))))
        items = [self._check_orders(client, api_label)]
        if items[0].ok is False:
            items.append(CheckItem(_("Webhooks"), None, _("No se revisaron: la API REST no respondió con estas claves.")))
            return ConnectionReport(tuple(items))
        items.append(CheckItem(
            _("Secreto de los webhooks"), bool((self.connection.credentials or {}).get("webhook_secret")),
            _("Configurado: las entregas se verifican con él.") if (self.connection.credentials or {}).get("webhook_secret")
            else _("Falta: toda entrega se rechazará hasta que se cree una pasarela (se genera solo) o se pegue."),
        ))
        items.extend(self._check_webhooks(client))
        items.append(CheckItem(
            _("Entregas"), None,
            _("No se puede comprobar desde aquí que WooCommerce logre entregar (la API REST no expone los intentos ni "
              "si WP-Cron corre); las órdenes que no lleguen por webhook se recuperan por la consulta periódica."),
        ))
        report = ConnectionReport(tuple(items))
        if report.ok and self.connection.pk and self.connection.status == SourceConnection.Status.ERROR:
            connection_status_set(connection=self.connection, status=SourceConnection.Status.ACTIVE)
        return report

    def _check_orders(self, client: WooCommerceClient, label: str) -> CheckItem:
        try:
            orders = client.latest_orders(1)
        except AuthorizationHeaderDropped as exc:
            try:
                client.with_query_string_auth().latest_orders(1)
            except IntegrationError:
                return CheckItem(label, False, exc.message)
            return CheckItem(label, False, _(
                "Con la cabecera Authorization la tienda no reconoce las claves, pero con las claves en la URL sí: "
                "active «Enviar las claves en la URL» en la conexión (o permita esa cabecera en el servidor)."))
        except IntegrationError as exc:
            return CheckItem(label, False, exc.message)
        if not orders:
            return CheckItem(label, True, _("Las claves funcionan; la tienda aún no tiene órdenes."))
        order = orders[0]
        return CheckItem(label, True, _("Las claves leen órdenes: la última es la n.º %(number)s (%(status)s).")
                         % {"number": order.get("number") or order.get("id"), "status": order.get("status") or "?"})

    def _check_webhooks(self, client: WooCommerceClient) -> list[CheckItem]:
        try:
            hooks = [hook for hook in client.webhooks() if self._ours(hook)]
        except IntegrationError as exc:
            return [CheckItem(_("Webhooks"), None, _("No se pudieron listar los webhooks de la tienda: %(error)s")
                              % {"error": exc.message})]
        has_gateway = bool(self.connection.pk) and self.connection.gateways.exists()
        items, disabled = [], []
        for topic in ORDER_TOPICS:
            label = _("Webhook %(topic)s") % {"topic": topic}
            mine = [hook for hook in hooks if hook.get("topic") == topic]
            if not mine:
                if has_gateway:
                    items.append(CheckItem(label, False, _(
                        "No existe en la tienda: vuelva a conectar la tienda o guarde de nuevo la pasarela para crearlo. "
                        "Mientras tanto las órdenes llegan solo por la consulta periódica.")))
                else:
                    items.append(CheckItem(label, None, _("Aún no hay una pasarela con esta tienda: se crea al crearla.")))
                continue
            for hook in mine:
                status = hook.get("status")
                if status == "active":
                    items.append(CheckItem(label, True, _("Activo (n.º %(id)s).") % {"id": hook.get("id")}))
                elif status == "disabled":
                    disabled.append(hook)
                else:
                    items.append(CheckItem(label, False, _(
                        "En pausa (n.º %(id)s): alguien lo pausó en la tienda; mientras tanto las órdenes llegan solo por "
                        "la consulta periódica.") % {"id": hook.get("id")}))
        if disabled:
            items.append(CheckItem(_("Webhooks desactivados"), False, self._reactivate(client, disabled)))
        return items
