"""The interface every biller adapter implements, its request/result dataclasses and its errors.

Errors are split the way the pipeline needs them: transient ones (timeouts, 5xx, 429) are retried with
backoff; rejected ones (4xx, validation) fail at once with the biller's message shown to the user.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date

from .dte.sale import Sale


class BillerError(Exception):
    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class TransientBillerError(BillerError):
    """Worth retrying later: the biller was unreachable, slow, overloaded or failed on its side."""


class RejectedBillerError(BillerError):
    """The biller said no; retrying the same request will not help."""


@dataclass(frozen=True)
class IssueRequest:
    sale: Sale
    # Our idempotency reference for this document, e.g. "gw12-o345-invoice-1"; lets us reconcile.
    reference: str
    fecha: date


@dataclass(frozen=True)
class IssuedDocument:
    tipo_dte: int
    folio: int
    fecha: date
    totals: dict
    biller_document_id: str = ""
    xml: bytes = b""
    pdf_url: str = ""
    raw: dict = field(default_factory=dict)


class DocumentIssuer(ABC):
    """Issues documents at one biller; built from the tenant's ``BillerConnection`` at call time."""

    def __init__(self, connection):
        self.connection = connection

    @abstractmethod
    def issue(self, request: IssueRequest) -> IssuedDocument:
        """Issues the document or raises ``TransientBillerError`` / ``RejectedBillerError``."""

    @abstractmethod
    def find_by_reference(self, reference: str) -> IssuedDocument | None:
        """The document issued earlier for ``reference``, if the biller has it (reconciliation)."""
