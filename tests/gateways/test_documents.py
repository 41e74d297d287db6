"""Issued documents after the fact: the PDF (biller's or rendered), the public link, the SII status."""
import pytest

from billers.base import Capability
from billers.registry import BILLER_ADAPTERS
from billers.sandbox.adapter import SandboxAdapter
from gateways import services
from gateways.models import Document, Order, SideEffect, SiiStatus
from gateways.services.webhook_endpoints import webhook_endpoint_create
from gateways.side_effects import document_side_effects_run
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending


class ReportingSandbox(SandboxAdapter):
    """The Sandbox plus an SII status answered from ``ANSWERS``."""

    provider = "reporting-sandbox"
    capabilities = SandboxAdapter.capabilities | {Capability.SII_STATUS, Capability.FETCH_PDF}
    ANSWERS: list = []

    def sii_status(self, *, tipo_dte, folio):
        return self.ANSWERS.pop(0)

    def fetch_pdf(self, *, tipo_dte, folio):
        return b"%PDF-1.4 biller's own pdf"


@pytest.fixture
def document(account, monkeypatch):
    monkeypatch.setitem(BILLER_ADAPTERS, "reporting-sandbox", ReportingSandbox)
    gateway = GatewayFactory(account=account, biller__provider="reporting-sandbox")
    [document] = run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=31)))
    Document.objects.filter(pk=document.pk).update(sii_status=SiiStatus.SENT, sii_track_id="123")
    document.refresh_from_db()
    return document


def test_the_biller_pdf_is_fetched_once_and_kept(document):
    assert services.document_pdf_bytes(document=document) == b"%PDF-1.4 biller's own pdf"
    document.refresh_from_db()
    assert bytes(document.pdf) == b"%PDF-1.4 biller's own pdf"


def test_without_a_biller_pdf_it_is_rendered_from_the_xml_with_the_resolution(account):
    gateway = GatewayFactory(account=account, biller__sii_resolution_number=0,
                             biller__sii_resolution_date="2026-01-05")
    [document] = run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=32)))
    pdf = services.document_pdf_bytes(document=document)
    assert pdf.startswith(b"%PDF") and not bytes(Document.objects.get(pk=document.pk).pdf)


def test_the_public_link_opens_the_pdf_and_cannot_be_forged(client, document):
    url = services.document_public_url(document=document)
    path = url.split("127.0.0.1:8000", 1)[1]
    assert client.get(path).content.startswith(b"%PDF")
    assert client.get(path.replace(".pdf", "x.pdf")).status_code == 404
    assert client.get("/documentos/eyJkIjoxfQ:forged.pdf").status_code == 404


def test_the_sii_status_is_followed_until_the_sii_decides(document, django_capture_on_commit_callbacks):
    ReportingSandbox.ANSWERS[:] = [("sent", "EPR - Envío procesado"), ("accepted", "DOK - Documento recibido por el SII")]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert services.documents_sii_status_due() == 1
    assert len(queued) == 1
    assert services.document_sii_status_refresh(document_id=document.pk).sii_status == SiiStatus.SENT
    final = services.document_sii_status_refresh(document_id=document.pk)
    assert (final.sii_status, final.sii_status_detail) == (SiiStatus.ACCEPTED, "DOK - Documento recibido por el SII")
    Document.objects.filter(pk=document.pk).update(sii_checked_at=None)
    assert services.documents_sii_status_due() == 0


def test_a_rejection_by_the_sii_is_written_on_the_order(document):
    ReportingSandbox.ANSWERS[:] = [("rejected", "RCT - Rechazado por error en carátula")]
    services.document_sii_status_refresh(document_id=document.pk)
    order = Order.objects.get(pk=document.order_id)
    assert "El SII rechazó la boleta electrónica" in order.status_reason and "RCT" in order.status_reason


class FilelessSandbox(SandboxAdapter):
    """A biller that keeps its documents' files and cannot be asked for them now."""

    provider = "fileless-sandbox"
    capabilities = SandboxAdapter.capabilities - {Capability.FETCH_XML}


@pytest.fixture
def document_without_files(account, monkeypatch):
    monkeypatch.setitem(BILLER_ADAPTERS, "fileless-sandbox", FilelessSandbox)
    gateway = GatewayFactory(account=account, ruleset__email_buyer=True, biller__provider="fileless-sandbox")
    [document] = run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=33)))
    Document.objects.filter(pk=document.pk).update(xml=b"", pdf=b"")
    document.refresh_from_db()
    return document


def test_a_document_whose_files_the_biller_has_not_given_says_so(document_without_files, write_key_client, mailoutbox):
    with pytest.raises(services.DocumentFileUnavailable, match="aún no entrega el PDF de boleta electrónica N°"):
        services.document_pdf_bytes(document=document_without_files)

    for kind in ("pdf", "xml"):
        answer = write_key_client.get(f"/api/v1/documents/{document_without_files.pk}/{kind}/")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "file_unavailable"
        assert f"N° {document_without_files.folio}" in answer.json()["error"]["message"]

    document_side_effects_run(document_id=document_without_files.pk)
    email = SideEffect.objects.get(document=document_without_files, kind=SideEffect.Kind.EMAIL)
    assert email.outcome == SideEffect.Outcome.FAILED and "aún no entrega el PDF" in email.message
    assert mailoutbox == []


def test_the_outgoing_webhooks_of_a_document_are_noted_on_it(account, actor):
    gateway = GatewayFactory(account=account)
    [alone] = run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=34)))
    document_side_effects_run(document_id=alone.pk)
    effect = SideEffect.objects.get(document=alone, kind=SideEffect.Kind.WEBHOOK)
    assert effect.outcome == SideEffect.Outcome.NOT_APPLICABLE and "document.issued" in effect.message

    webhook_endpoint_create(account=account, actor=actor, url="http://127.0.0.1:9/bms", events=["document.issued"])
    [noted] = run_pending(services.order_ingest(gateway=gateway, raw=sample_order(number=35)))
    document_side_effects_run(document_id=noted.pk)
    effect = SideEffect.objects.get(document=noted, kind=SideEffect.Kind.WEBHOOK)
    assert effect.outcome == SideEffect.Outcome.DONE and "1 destino" in effect.message
