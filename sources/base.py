"""The interface every store adapter implements, and its errors."""
from abc import ABC, abstractmethod
from dataclasses import dataclass

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


class DocumentWriteBack(ABC):
    """Adapters whose store can show the document on the order (note, metafield, attachment)."""

    @abstractmethod
    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Writes the document back to the store; returns a short description of what was written.
        Raises ``SourceError`` when the store refuses or cannot be reached."""
