"""The biller adapter base: the base runs the flow, each biller fills in steps (as django-anymail's
backends do), and declares what it can do.

A biller package (``billers/<provider>/``) holds ``adapter.py`` (the ``BillerAdapter`` subclass),
``client.py`` (the only code that speaks HTTP to the biller, on ``billers.http.BillerHttpClient``) and
``fixtures/`` (payloads modelled on the vendor's documentation). The adapter is built from the
tenant's ``BillerConnection`` row at call time (``billers.registry.biller_adapter_for``).

The flow the pipeline drives:

1. ``check(sale, fecha=)`` when the rules decide to emit: refuses (``MappingRefused``, with a code and a
   Spanish message) what this biller cannot issue — a document type it does not issue, a total that
   cannot equal what was paid — and returns the *prepared* payload (JSON), stored on the emission so
   the document is built once per emission. The default builds the DTE with the core and keeps it as
   LibreDTE-shaped JSON; a biller of other documents (BHEXPRESS) overrides it.
2. ``issue(request, checkpoint)``: ``build_payload`` → ``send`` (the vendor's one or more calls, which
   parse the answer and raise ``TransientBillerError`` / ``RejectedBillerError``) → ``verify`` (the
   document the biller answered is the one we asked for). ``checkpoint`` is saved on the emission's
   attempt before ``save`` returns: a multi-step biller records each step (LibreDTE's temporary
   ``codigo`` between emitir and generar), so a retry after a crash continues instead of issuing twice.
3. ``find_by_reference(reference, checkpoint)``: after an attempt whose outcome is unknown, the
   pipeline asks this before anything is sent again. A biller that cannot look documents up raises
   ``UnsupportedFeature`` and the emission is held for a person, never blindly re-sent.

Errors are split into transient (retried with backoff) and rejected (failed at once, the biller's
message shown); ``BillerMismatch`` means the biller issued something other than what we asked.
"""
from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from django.utils.translation import gettext as _

from billmysales.integrations.errors import (
    IntegrationError,
    RejectedError,
    TransientError,
    UnsupportedFeature,
)
from billmysales.integrations.reports import CheckItem, ConnectionReport
from billmysales.integrations.spec import Field

from .dte.display import document_name, format_clp
from .dte.document import Document, document_from_libredte_json, document_to_libredte_json
from .dte.errors import MappingRefused
from .dte.mapping import build_document
from .dte.sale import Emisor, Sale

__all__ = [
    "BillerAdapter", "BillerError", "BillerMismatch", "BillerNeedsPerson", "Capability", "Checkpoint", "ConnectionReport",
    "IssueRequest", "IssuedDocument", "RejectedBillerError", "TransientBillerError", "UnsupportedFeature",
]


class BillerError(IntegrationError):
    """A biller call failed."""


class TransientBillerError(BillerError, TransientError):
    """Worth retrying later: the biller was unreachable, slow, overloaded or failed on its side."""


class RejectedBillerError(BillerError, RejectedError):
    """The biller said no; retrying the same request will not help."""


class BillerNeedsPerson(BillerError):
    """The biller answered something only a person can resolve (e.g. LibreDTE's 510: the folio was
    burnt and must be voided at the SII; a lookup that matches several documents): the emission is
    held with the message, never retried or re-sent on its own."""


class BillerMismatch(BillerError):
    """The biller issued a document that differs from the one we asked for (type or totals). It exists
    at the biller, so it is never re-sent: a person voids or accepts it."""


class Capability(StrEnum):
    LOOKUP_BY_REFERENCE = "lookup_by_reference"
    FETCH_PDF = "fetch_pdf"
    FETCH_XML = "fetch_xml"
    SII_STATUS = "sii_status"
    TEST_CONNECTION = "test_connection"
    VOID = "void"


@dataclass(frozen=True)
class IssueRequest:
    sale: Sale
    # Our idempotency reference for this document, e.g. "bms-12-345-F1"; lets us reconcile.
    reference: str
    fecha: datetime.date
    # What ``check`` returned when the emission was created (empty: the adapter prepares it now).
    prepared: dict = field(default_factory=dict)


@dataclass(frozen=True)
class IssuedDocument:
    tipo_dte: int
    folio: int
    fecha: datetime.date
    totals: dict
    biller_document_id: str = ""
    xml: bytes = b""
    pdf: bytes = b""
    pdf_url: str = ""
    # The SII's tracking number of the submission; empty while the biller has not sent it to the SII.
    sii_track_id: str = ""
    # One of gateways.models.SiiStatus's values ("not_sent", "sent", "accepted", ...); "" when unknown.
    sii_status: str = ""
    raw: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return int(self.totals.get("MntTotal", 0) or 0)


class Checkpoint:
    """Progress of a multi-step issue, persisted on the emission's attempt by ``save`` (committed
    before it returns), and carried to the next attempt of the same emission."""

    def __init__(self, data: dict | None = None, saver: Callable[[dict], None] | None = None):
        self._data = dict(data or {})
        self._saver = saver

    @property
    def data(self) -> dict:
        return dict(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def save(self, **values: Any) -> None:
        self._data.update(values)
        if self._saver is not None:
            self._saver(dict(self._data))


class BillerAdapter(ABC):
    """Issues documents at one biller for one connection. Subclasses declare:

    - ``provider`` (the stored type), ``label`` (shown), ``beta`` (shown as "(beta)" until confirmed
      against a real account);
    - ``document_types``: the SII types it issues;
    - ``capabilities``: what else it can do (``Capability``);
    - ``credentials_spec`` / ``config_spec``: what the connection needs.
    """

    provider: ClassVar[str]
    label: ClassVar[str]
    beta: ClassVar[bool] = False
    document_types: ClassVar[frozenset[int]]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    credentials_spec: ClassVar[tuple[Field, ...]] = ()
    config_spec: ClassVar[tuple[Field, ...]] = ()

    def __init__(self, connection):
        self.connection = connection

    @classmethod
    def display_name(cls) -> str:
        return f"{cls.label} (beta)" if cls.beta else str(cls.label)

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def emisor(self) -> Emisor:
        c = self.connection
        return Emisor(
            rut=c.emisor_rut, razon_social=c.emisor_razon_social, giro=c.emisor_giro, acteco=c.emisor_acteco,
            address=c.emisor_address, comuna=c.emisor_comuna,
        )

    # --- 1. check ------------------------------------------------------------------------------

    def check(self, sale: Sale, *, fecha: datetime.date) -> dict:
        """Refuses what this biller cannot issue (``MappingRefused``); returns the prepared payload."""
        if sale.tipo_dte not in self.document_types:
            raise MappingRefused(
                "document_type_not_supported",
                _("%(biller)s no emite %(name)s (%(tipo)s); emite: %(types)s.") % {
                    "biller": self.display_name(), "name": document_name(sale.tipo_dte).lower(), "tipo": sale.tipo_dte,
                    "types": ", ".join(str(t) for t in sorted(self.document_types))},
                {"tipo_dte": sale.tipo_dte},
            )
        document = build_document(sale, emisor=self.emisor(), folio=1, fecha=fecha)
        return {"dte": document_to_libredte_json(document)}

    @staticmethod
    def prepared_document(prepared: dict, *, folio: int, fecha: datetime.date) -> Document:
        """The DTE ``check`` prepared, numbered and dated for issue (its totals do not depend on either)."""
        document = document_from_libredte_json(prepared["dte"])
        enc = document.encabezado
        return replace(document, encabezado=replace(enc, id_doc=replace(enc.id_doc, folio=folio, fch_emis=fecha)))

    # --- 2. issue ------------------------------------------------------------------------------

    def issue(self, request: IssueRequest, checkpoint: Checkpoint) -> IssuedDocument:
        prepared = request.prepared or self.check(request.sale, fecha=request.fecha)
        payload = self.build_payload(request, prepared)
        issued = self.send(payload, request, checkpoint)
        self.verify(issued, prepared)
        return issued

    @abstractmethod
    def build_payload(self, request: IssueRequest, prepared: dict) -> Any:
        """What ``send`` sends, from the prepared document."""

    @abstractmethod
    def send(self, payload: Any, request: IssueRequest, checkpoint: Checkpoint) -> IssuedDocument:
        """The vendor's call(s); parses the answer; raises ``TransientBillerError`` / ``RejectedBillerError``."""

    def expected(self, prepared: dict) -> tuple[int, int]:
        """(type, total) the issued document must have."""
        totals = prepared["dte"]["Encabezado"]
        return int(totals["IdDoc"]["TipoDTE"]), int(totals["Totales"]["MntTotal"])

    def verify(self, issued: IssuedDocument, prepared: dict) -> None:
        tipo, total = self.expected(prepared)
        if issued.tipo_dte != tipo or issued.total != total:
            raise BillerMismatch(
                _("%(biller)s emitió %(issued_name)s (%(issued_tipo)s) N° %(folio)s por %(issued_total)s, pero se pidió "
                  "%(name)s (%(tipo)s) por %(total)s. El documento existe en el facturador: revíselo y anúlelo o "
                  "acéptelo allí; no se vuelve a emitir.") % {
                    "biller": self.display_name(), "issued_name": document_name(issued.tipo_dte).lower(),
                    "issued_tipo": issued.tipo_dte, "folio": issued.folio, "issued_total": format_clp(issued.total),
                    "name": document_name(tipo).lower(), "tipo": tipo, "total": format_clp(total)},
            )

    # --- 3. reconcile, documents, connection -----------------------------------------------------

    def find_by_reference(self, reference: str, checkpoint: Checkpoint) -> IssuedDocument | None:
        """The document issued earlier for ``reference``, if the biller has it; ``UnsupportedFeature``
        when this biller cannot look documents up."""
        raise UnsupportedFeature(_("%(biller)s no permite buscar documentos por nuestra referencia.") % {"biller": self.display_name()})

    def fetch_pdf(self, *, tipo_dte: int, folio: int) -> bytes:
        raise UnsupportedFeature(_("%(biller)s no entrega el PDF por su API.") % {"biller": self.display_name()})

    def fetch_xml(self, *, tipo_dte: int, folio: int) -> bytes:
        raise UnsupportedFeature(_("%(biller)s no entrega el XML por su API.") % {"biller": self.display_name()})

    def void(self, *, tipo_dte: int, folio: int) -> None:
        """Voids (anula) at the biller an issued document that no credit note can correct (``Capability.VOID``),
        after a full refund or a cancellation. Safe to repeat: an already voided document counts as done.
        Raises ``RejectedBillerError`` / ``TransientBillerError``."""
        raise UnsupportedFeature(_("%(biller)s no anula documentos por su API.") % {"biller": self.display_name()})

    def sii_status(self, *, tipo_dte: int, folio: int) -> tuple[str, str]:
        """(status, detail) of the document at the SII as the biller reports it; status is one of
        "not_sent", "sent", "accepted", "objections", "rejected"."""
        raise UnsupportedFeature(_("%(biller)s no informa el estado en el SII.") % {"biller": self.display_name()})

    def test_connection(self) -> ConnectionReport:
        return ConnectionReport((CheckItem(str(self.label), None, _("Este facturador no tiene una prueba de conexión.")),))
