"""The contract suite every biller adapter's tests inherit.

It pins what the pipeline relies on: the adapter declares itself (provider, label, document types,
capabilities, credentials and settings); ``check`` prepares the document or refuses with a code;
``issue`` returns the document for exactly what was paid; a transient failure is transient and a
refusal is a rejection; a document whose answer was lost is found again by our reference (or the
adapter says it cannot look documents up); and a multi-step issue interrupted after its first step
resumes from the checkpoint without issuing twice.

A subclass sets ``provider`` and implements the hooks marked "subclass";
``tests/test_contracts.py`` fails when a registered adapter has no subclass.
"""
import dataclasses
import datetime
from decimal import Decimal

import pytest

from billers.base import (
    BillerAdapter,
    Capability,
    Checkpoint,
    IssuedDocument,
    IssueRequest,
    RejectedBillerError,
    TransientBillerError,
    UnsupportedFeature,
)
from billers.dte.errors import MappingRefused
from billers.dte.sale import Receptor, Sale, SaleLine
from billers.dte.types import SUPPORTED_TYPES
from billers.registry import BILLER_ADAPTERS, biller_adapter_for
from billmysales.integrations.spec import Field

FECHA = datetime.date(2026, 11, 25)


def boleta_sale(paid_total: int = 36960) -> Sale:
    return Sale(
        tipo_dte=39,
        lines=(
            SaleLine(name="Polera algodón orgánico", quantity=Decimal(2), unit_price=Decimal(12990), sku="POL-1"),
            SaleLine(name="Despacho", quantity=Decimal(1), unit_price=Decimal(paid_total - 25980)),
        ),
        paid_total=paid_total,
        receptor=Receptor(email="camila@example.cl"),
    )


def factura_sale() -> Sale:
    return Sale(
        tipo_dte=33,
        lines=(SaleLine(name="Taladro percutor", quantity=Decimal(1), unit_price=Decimal(54990)),),
        paid_total=54990,
        receptor=Receptor(rut="76086428-5", razon_social="Ferretería El Roble SpA", giro="Ferretería",
                          address="Los Carrera 455", comuna="Concepción"),
    )


@pytest.mark.django_db(transaction=True)
class BillerContract:
    provider: str
    # Single-step billers never write a checkpoint; multi-step ones resume from it.
    multi_step = False

    # --- hooks -----------------------------------------------------------------------------------

    def make_connection(self, account):  # subclass: a BillerConnection this adapter can issue with
        raise NotImplementedError

    def arrange_transient(self, connection) -> None:  # subclass: the next issue fails transiently
        raise NotImplementedError

    def arrange_rejection(self, connection) -> None:  # subclass: the next issue is refused
        raise NotImplementedError

    def arrange_lost_answer(self, connection) -> None:  # subclass: the next issue succeeds, its answer is lost
        raise NotImplementedError

    def arrange_crash_after_first_step(self, connection) -> None:  # subclass, multi-step only
        raise NotImplementedError

    def issued_count(self, connection) -> int:  # subclass: documents the biller holds for this connection
        raise NotImplementedError

    def sale(self) -> Sale:
        return boleta_sale()

    # --- plumbing --------------------------------------------------------------------------------

    @pytest.fixture
    def connection(self, account):
        return self.make_connection(account)

    def adapter(self, connection) -> BillerAdapter:
        return biller_adapter_for(connection)

    def request(self, adapter, reference: str = "bms-1-1-F1", sale: Sale | None = None) -> IssueRequest:
        sale = sale or self.sale()
        return IssueRequest(sale=sale, reference=reference, fecha=FECHA, prepared=adapter.check(sale, fecha=FECHA))

    # --- the contract ----------------------------------------------------------------------------

    def test_declares_what_it_is(self):
        adapter = BILLER_ADAPTERS[self.provider]
        assert adapter.provider == self.provider and str(adapter.label)
        assert adapter.document_types and adapter.document_types <= SUPPORTED_TYPES | {0}
        assert all(isinstance(c, Capability) for c in adapter.capabilities)
        for field in (*adapter.credentials_spec, *adapter.config_spec):
            assert isinstance(field, Field) and field.name and str(field.label)

    def test_check_prepares_the_document(self, connection):
        prepared = self.adapter(connection).check(self.sale(), fecha=FECHA)
        assert isinstance(prepared, dict) and prepared

    def test_check_refuses_a_total_that_does_not_square_with_a_code(self, connection):
        sale = self.sale()
        broken = dataclasses.replace(sale, paid_total=sale.paid_total + 7)
        with pytest.raises(MappingRefused) as refused:
            self.adapter(connection).check(broken, fecha=FECHA)
        assert refused.value.code and refused.value.message

    def test_issue_returns_the_document_for_what_was_paid(self, connection):
        adapter = self.adapter(connection)
        checkpoint = Checkpoint()
        issued = adapter.issue(self.request(adapter), checkpoint)
        assert isinstance(issued, IssuedDocument)
        assert issued.folio > 0 and issued.total == self.sale().paid_total
        assert self.issued_count(connection) == 1

    def test_transient_failure_is_transient(self, connection):
        self.arrange_transient(connection)
        adapter = self.adapter(connection)
        with pytest.raises(TransientBillerError) as caught:
            adapter.issue(self.request(adapter), Checkpoint())
        assert caught.value.message

    def test_refusal_is_a_rejection_with_the_biller_s_reason(self, connection):
        self.arrange_rejection(connection)
        adapter = self.adapter(connection)
        with pytest.raises(RejectedBillerError) as caught:
            adapter.issue(self.request(adapter), Checkpoint())
        assert caught.value.message
        assert self.issued_count(connection) == 0

    def test_lost_answer_is_found_by_reference_or_said_unknowable(self, connection):
        self.arrange_lost_answer(connection)
        adapter = self.adapter(connection)
        checkpoint = Checkpoint()
        with pytest.raises(TransientBillerError):
            adapter.issue(self.request(adapter, reference="bms-1-7-F1"), checkpoint)
        assert self.issued_count(connection) == 1
        if not adapter.can(Capability.LOOKUP_BY_REFERENCE):
            with pytest.raises(UnsupportedFeature):
                adapter.find_by_reference("bms-1-7-F1", checkpoint)
            return
        found = adapter.find_by_reference("bms-1-7-F1", checkpoint)
        assert found is not None and found.total == self.sale().paid_total
        assert adapter.find_by_reference("bms-1-8-F1", Checkpoint()) is None
        assert self.issued_count(connection) == 1

    def test_interrupted_issue_resumes_from_the_checkpoint(self, connection):
        adapter = self.adapter(connection)
        saved = []
        if not self.multi_step:
            checkpoint = Checkpoint(saver=saved.append)
            adapter.issue(self.request(adapter), checkpoint)
            assert saved == [] and checkpoint.data == {}
            return
        self.arrange_crash_after_first_step(connection)
        checkpoint = Checkpoint(saver=saved.append)
        with pytest.raises(TransientBillerError):
            adapter.issue(self.request(adapter), checkpoint)
        assert saved, "the first step's result must be saved before the second step"
        resumed = Checkpoint(saved[-1])
        issued = adapter.issue(self.request(adapter), resumed)
        assert issued.total == self.sale().paid_total
        assert self.issued_count(connection) == 1
