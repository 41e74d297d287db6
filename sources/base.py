"""The store adapter base: what every store declares, and the capabilities a store may have.

A store package (``sources/<platform>/``) holds ``adapter.py`` (the adapter class, its declarations),
``orders.py`` (raw order → neutral ``OrderData``, pure), ``fields.py`` (its default buyer-field
mapping), ``webhooks.py`` (its signed-delivery reader, where the store pushes), ``client.py`` (the
only code that speaks HTTP to it) and ``fixtures/`` (real-shaped payloads). The adapter is built from
the tenant's ``SourceConnection`` row at call time (``sources.registry.source_adapter_for``).

Capabilities are mixins the pipeline checks with ``isinstance``: ``WebhookReceiver`` (the store
pushes signed order deliveries), ``OrderPoller`` (its API lists orders changed since a moment: the
safety net for lost webhooks, and backfills), ``DocumentWriteBack`` (the store can show the issued
document on its order), ``ConnectionTester`` ("Probar conexión").

One change of one order is one event, however it arrives: ``change_key(raw)`` names it from the order's
id and its update time, and both the webhook path and the poller use it as the delivery id.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from billmysales.integrations.errors import IntegrationError
from billmysales.integrations.reports import ConnectionReport
from billmysales.integrations.spec import Field

from .orderdata import OrderData


class SourceError(IntegrationError):
    """A store adapter failed."""


class OrderParseError(SourceError):
    """The store sent an order we cannot read; the message (Spanish) names the field and the problem."""


class WebhookRejected(SourceError):
    """A delivery that must not be accepted: bad or missing signature, wrong shop. Answered with 4xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message, status=status)


class WebhookIgnored(SourceError):
    """A genuine delivery we do not act on (a ping, a topic we do not handle): answered 200."""


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified delivery. ``payload`` is the JSON object, or None with ``problem`` saying why the
    authentic body cannot be read (it is then kept as ``body_text`` and shown as an unread order)."""

    delivery_id: str
    topic: str
    payload: dict | None
    problem: str = ""
    body_text: str = ""


class SourceAdapter(ABC):
    """Reads a store's orders into the neutral ``OrderData``; built from the tenant's connection row.

    Declarations every store makes:

    - ``platform`` (the stored type) and ``label`` (shown to people);
    - ``credentials_spec`` / ``config_spec``: what the connection needs (drives API validation and forms);
    - ``store_url_required``: whether the connection must name the store's address;
    - ``certification_only``: whether its orders may only reach a biller in certification;
    - ``default_field_mapping``: JMESPath expressions for the buyer's tax fields in this store's orders;
    - ``sample_order(number=, test=)``: a realistic paid CLP order in this store's own shape, which the
      test sale sends through the real pipeline.
    """

    platform: ClassVar[str]
    label: ClassVar[str]
    credentials_spec: ClassVar[tuple[Field, ...]] = ()
    config_spec: ClassVar[tuple[Field, ...]] = ()
    store_url_required: ClassVar[bool] = True
    # Only ever wired to a biller in certification (a store whose orders are never real sales).
    certification_only: ClassVar[bool] = False
    default_field_mapping: ClassVar[dict[str, str]]

    def __init__(self, connection):
        self.connection = connection

    @abstractmethod
    def parse_order(self, raw: dict) -> OrderData:
        """Turns one raw order as the store sends it into an ``OrderData``, or raises ``OrderParseError``."""

    @classmethod
    @abstractmethod
    def sample_order(cls, *, number: int, test: bool = False) -> dict:
        """A paid CLP order in this store's own shape (a test sale, a rules preview without real orders)."""

    @classmethod
    def change_key(cls, raw: dict) -> str | None:
        """``order:<id>@<update time>`` for one version of an order, or None when the body does not say
        (then a delivery is deduplicated on the store's delivery id or the body's hash)."""
        return None


@dataclass(frozen=True)
class PolledOrder:
    raw: dict
    change_key: str


@dataclass(frozen=True)
class PollBatch:
    """One page of orders changed in the polled window. ``cursor`` is where the next call continues,
    saved only after the batch's events are committed; ``more``: another page is due right away."""

    orders: tuple[PolledOrder, ...]
    cursor: dict
    more: bool = False
    # Requests this batch cost and what the store said about its limits, for the connection's page.
    notes: dict = field(default_factory=dict)


class OrderPoller(ABC):
    """Adapters whose store lists orders by update time implement this.

    ``poll(cursor=, since=, until=)`` returns the next batch. With ``cursor`` empty it starts at
    ``since`` (the last successful poll minus ``overlap_seconds``, or a backfill's start); ``until`` is
    None for the regular poll (up to now) and the end of the range for a backfill.
    """

    poll_interval_seconds: ClassVar[int] = 300
    # Each regular poll starts this far before the last one ended: clocks and late writes drift.
    overlap_seconds: ClassVar[int] = 600

    @abstractmethod
    def poll(self, *, cursor: dict, since: datetime, until: datetime | None) -> PollBatch:
        """The next batch; raises ``SourceTransientError`` / ``SourceRejectedError``."""


class WebhookReceiver(ABC):
    """Adapters whose store pushes orders implement this; the gateway's webhook view calls it."""

    @abstractmethod
    def webhook_delivery(self, *, headers, body: bytes) -> WebhookDelivery:
        """Verifies the delivery's signature and reads it, or raises ``WebhookRejected`` (answered
        4xx) or ``WebhookIgnored`` (answered 200, nothing stored)."""


@dataclass(frozen=True)
class IssuedDocumentInfo:
    """What a store is told about the document issued for one of its orders. ``note`` is the line a
    person reads ("Boleta electrónica N° 123 por $36.960"), written by the pipeline."""

    order_external_id: str
    tipo_dte: int
    folio: int
    total: int
    certification: bool
    note: str
    pdf_url: str = ""
    fecha: str = ""  # ISO date of the document
    credit_note: bool = False
    # The PDF itself, for stores that take a file (Multivende's document upload), and the order as the
    # store sent it (ids the store's write-back API needs, e.g. Multivende's ClientId).
    pdf: bytes = field(default=b"", repr=False)
    order_raw: dict = field(default_factory=dict, repr=False)

    def as_data(self) -> dict:
        """The same document for programs: tipo, folio, total, certification and, when there is one, the PDF."""
        data = {"tipo_dte": self.tipo_dte, "folio": self.folio, "total": self.total, "certification": self.certification}
        if self.pdf_url:
            data["pdf_url"] = self.pdf_url
        return data


class DocumentWriteBack(ABC):
    """Adapters whose store can show the document on the order (note, metafield, attachment)."""

    # True for stores that take the PDF file itself (``IssuedDocumentInfo.pdf`` is filled only then).
    wants_pdf_file: ClassVar[bool] = False

    @abstractmethod
    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Writes the document back to the store; returns a short description of what was written.
        Raises ``SourceError`` when the store refuses or cannot be reached."""


class StoreSource(SourceAdapter, WebhookReceiver, DocumentWriteBack):
    """A store that pushes signed order webhooks and takes the issued document back.

    A platform names its pieces: ``order_parser(raw)`` (its ``orders.py``), ``webhook_reader`` (a
    ``SignedWebhookReader`` from its ``webhooks.py``) and ``client_class`` (its ``client.py``, the only
    code that calls the store). Secrets tried: ``webhook_secret`` and, during a rotation,
    ``previous_webhook_secret``.
    """

    order_parser: ClassVar[Callable[[dict], OrderData]]
    webhook_reader: ClassVar[object]
    client_class: ClassVar[type]

    def parse_order(self, raw: dict) -> OrderData:
        return type(self).order_parser(raw)

    def webhook_delivery(self, *, headers, body: bytes) -> WebhookDelivery:
        delivery = self.webhook_reader.read(
            headers=headers, body=body, secrets=webhook_secrets(self.connection), store_url=self.connection.store_url
        )
        return with_change_key(self, delivery)

    def push_document(self, document: IssuedDocumentInfo) -> str:
        return self.client_class.for_connection(self.connection).push_document(document)


def with_change_key(adapter: SourceAdapter, delivery: WebhookDelivery) -> WebhookDelivery:
    """The delivery under the id of the order change it carries, so a poll of the same change is the same event."""
    key = adapter.change_key(delivery.payload) if delivery.payload is not None else None
    if not key:
        return delivery
    return WebhookDelivery(delivery_id=key[:120], topic=delivery.topic, payload=delivery.payload)


class WebhookRegistrar(ABC):
    """Adapters that can subscribe the gateway's webhook address at the store themselves (so the merchant
    never pastes a URL or a secret). Called after a gateway is created, and again on reconnect."""

    @abstractmethod
    def ensure_webhooks(self, *, callback_url: str) -> str:
        """Creates (or repairs) the store's subscriptions to ``callback_url``, signed with the connection's
        webhook secret; returns what was done, in words. Idempotent."""


class ConnectionTester(ABC):
    """Adapters that can check a connection ("Probar conexión") implement this."""

    @abstractmethod
    def test_connection(self) -> ConnectionReport:
        """What was checked, in words; never raises for an answer the store gave."""


def webhook_secrets(connection) -> list[str]:
    """The secrets a delivery may be signed with: the current one and, during a rotation, the previous."""
    credentials = connection.credentials or {}
    return [s for s in (credentials.get("webhook_secret"), credentials.get("previous_webhook_secret")) if s]
