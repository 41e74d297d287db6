"""The interface every store adapter implements, and its errors."""
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from billers.dte.display import document_name, format_clp

from .orderdata import OrderData


class SourceError(Exception):
    """A store adapter failed."""


class OrderParseError(SourceError):
    """The store sent an order we cannot read; the message says what is wrong."""


class OrderSource(ABC):
    """Reads a store's orders into the neutral ``OrderData``. Built from the tenant's connection row."""

    platform: str

    def __init__(self, connection):
        self.connection = connection

    @abstractmethod
    def parse_order(self, raw: dict) -> OrderData:
        """Turns one raw order as the store sends it into an ``OrderData``."""


class WebhookRejected(SourceError):
    """A delivery that must not be accepted: bad signature, unreadable body. Answered with 4xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class WebhookIgnored(SourceError):
    """A genuine delivery we do not act on (a ping, a topic we do not handle): answered 200."""


@dataclass(frozen=True)
class WebhookDelivery:
    delivery_id: str
    topic: str
    payload: dict


class WebhookReceiver(ABC):
    """Adapters whose store pushes orders implement this; the gateway's webhook view calls it."""

    @abstractmethod
    def webhook_delivery(self, *, headers: dict, body: bytes) -> WebhookDelivery:
        """Verifies the delivery's signature and reads it, or raises ``WebhookRejected`` (answered
        4xx) or ``WebhookIgnored`` (answered 200, nothing stored)."""


@dataclass(frozen=True)
class IssuedDocumentInfo:
    """What a store is told about the document issued for one of its orders."""

    order_external_id: str
    tipo_dte: int
    folio: int
    total: int
    certification: bool
    pdf_url: str = ""


def document_note(document: IssuedDocumentInfo) -> str:
    """One line a person reads on the order: "Boleta electrónica N° 123 por $36.960 (certificación)"."""
    note = f"{document_name(document.tipo_dte)} N° {document.folio} por {format_clp(document.total)}"
    return f"{note} (certificación)" if document.certification else note


def document_data(document: IssuedDocumentInfo) -> dict:
    """The same document for programs: tipo, folio, total, certification and, when there is one, the PDF."""
    data = {"tipo_dte": document.tipo_dte, "folio": document.folio, "total": document.total,
            "certification": document.certification}
    if document.pdf_url:
        data["pdf_url"] = document.pdf_url
    return data


class DocumentWriteBack(ABC):
    """Adapters whose store can show the document on the order (note, metafield, attachment)."""

    @abstractmethod
    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Writes the document back to the store; returns a short description of what was written.
        Raises ``SourceError`` when the store refuses or cannot be reached."""


class StoreSource(OrderSource, WebhookReceiver, DocumentWriteBack):
    """A store that pushes signed order webhooks and takes the issued document back.

    A platform names its three pieces: ``order_parser(raw)``, ``delivery_reader(headers=, body=,
    secrets=, store_url=)`` (its ``webhooks.py``) and ``client_class`` (its ``client.py``, the only
    code that calls the store). Secrets tried: ``webhook_secret`` and, during a rotation,
    ``previous_webhook_secret``.
    """

    order_parser: Callable[[dict], OrderData]
    delivery_reader: Callable[..., WebhookDelivery]
    client_class: type

    def parse_order(self, raw: dict) -> OrderData:
        return self.order_parser(raw)

    def webhook_delivery(self, *, headers: dict, body: bytes) -> WebhookDelivery:
        credentials = self.connection.credentials or {}
        secrets = [s for s in (credentials.get("webhook_secret"), credentials.get("previous_webhook_secret")) if s]
        return self.delivery_reader(headers=headers, body=body, secrets=secrets, store_url=self.connection.store_url)

    def push_document(self, document: IssuedDocumentInfo) -> str:
        return self.client_class.for_connection(self.connection).push_document(document)
