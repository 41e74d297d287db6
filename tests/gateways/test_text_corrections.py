"""Credit notes that correct text (CodRef 2) on an issued factura, and orders from stores that add tax,
through the pipeline's services with the Sandbox biller: rules → biller check → emission → document."""
import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from billers.dte import validate_dte_xml, verify_signatures
from billers.sandbox.adapter import SandboxAdapter
from gateways import services
from gateways.models import Document, DocumentKind, EmissionStatus, OrderStatus
from gateways.services.credit_notes import order_text_correction
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending, with_refund
from tests.shared import SHARED_DIR

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"
SCHEMA_DIR = SHARED_DIR / "sii" / "xsd"
FACTURA_NOTES = [
    {"name": "documento", "value": "factura"},
    {"name": "rut", "value": "76.086.428-5"},
    {"name": "razon_social", "value": "Comercial Los Andes SpA"},
    {"name": "giro", "value": "Venta de artículos de regalo"},
]


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account)


@pytest.fixture
def factura_payload():
    payload = sample_order(number=6001)
    payload["note_attributes"] = copy.deepcopy(FACTURA_NOTES)
    return payload


@pytest.fixture
def issued_factura(gateway, factura_payload):
    order = services.order_ingest(gateway=gateway, raw=factura_payload)
    [invoice] = run_pending(order)
    assert invoice.tipo_dte == 33
    order.refresh_from_db()
    return order, invoice


def xml_of(document: Document) -> str:
    return bytes(document.xml).decode("iso-8859-1")


def test_text_correction_is_a_zero_amount_credit_note_on_the_factura(issued_factura, actor):
    order, invoice = issued_factura

    emission = order_text_correction(
        order=order, corrections={"giro": "Venta al por menor de regalos"}, reason="El cliente informó otro giro", actor=actor
    )
    [note] = run_pending(order)

    assert (emission.kind, emission.sequence, emission.sale["paid_total"]) == (DocumentKind.CREDIT_NOTE, 1, 0)
    assert (note.kind, note.tipo_dte, note.mnt_total, note.credited_document) == (DocumentKind.CREDIT_NOTE, 61, 0, invoice)
    assert note.totals == {"MntNeto": 0, "IVA": 0, "MntTotal": 0}
    xml = xml_of(note)
    assert "<CodRef>2</CodRef>" in xml and f"<FolioRef>{invoice.folio}</FolioRef>" in xml
    assert "<RazonRef>DONDE DICE Venta de artículos de regalo DEBE DECIR Venta al por menor de regalos</RazonRef>" in xml
    assert "<NmbItem>Corrige giro</NmbItem>" in xml and "<GiroRecep>Venta al por menor de regalos</GiroRecep>" in xml
    assert "<MNT>0</MNT>" in xml and "<TasaIVA>" not in xml
    assert verify_signatures(bytes(note.xml)) == []
    assert services.document_pdf_bytes(document=note).startswith(b"%PDF")
    if SCHEMA_DIR.is_dir():
        assert validate_dte_xml(bytes(note.xml), schema_dir=SCHEMA_DIR) == []
    order.refresh_from_db()
    assert order.status == OrderStatus.ISSUED
    log = order.account.audit_logs.get(action="order.text_correction")
    assert log.data["reason"] == "El cliente informó otro giro" and log.data["factura"] == invoice.folio


def test_a_second_correction_carries_the_first_and_a_repeat_is_nothing_to_correct(issued_factura, actor):
    order, _ = issued_factura
    order_text_correction(order=order, corrections={"giro": "Venta al por menor de regalos"}, reason="giro", actor=actor)

    with pytest.raises(ValidationError, match="no hay nada que corregir"):
        order_text_correction(order=order, corrections={"giro": "Venta al por menor de regalos"}, reason="otra vez", actor=actor)
    second = order_text_correction(order=order, corrections={"comuna": "Providencia"}, reason="comuna", actor=actor)
    run_pending(order)

    assert second.sequence == 2
    receptor = second.sale["receptor"]
    assert (receptor["giro"], receptor["comuna"]) == ("Venta al por menor de regalos", "Providencia")
    assert Document.objects.filter(order=order, kind=DocumentKind.CREDIT_NOTE, mnt_total=0).count() == 2


def test_text_corrections_never_count_against_what_refunds_may_credit(issued_factura, factura_payload, gateway, actor):
    order, invoice = issued_factura
    order_text_correction(order=order, corrections={"razon_social": "Comercial Los Andes Limitada"}, reason="razón social",
                          actor=actor)
    run_pending(order)

    services.order_ingest(gateway=gateway, raw=with_refund(factura_payload, refund_id=81, amount=invoice.mnt_total))
    [annulment] = run_pending(order)

    assert (annulment.mnt_total, annulment.credited_document) == (invoice.mnt_total, invoice)
    assert "<CodRef>1</CodRef>" in xml_of(annulment)
    with pytest.raises(ValidationError, match="anulada"):
        order_text_correction(order=order, corrections={"giro": "Otro giro"}, reason="tarde", actor=actor)


@pytest.mark.parametrize(
    "corrections, reason, message",
    [
        ({"rut": "77.123.456-0"}, "RUT mal escrito", "anule la factura"),
        ({"giro": "Venta de artículos de regalo"}, "sin cambio", "no hay nada que corregir"),
        ({"razon_social": ""}, "vacía", "no puede quedar vacía"),
        ({"telefono": "+56 9 1234 5678"}, "teléfono", "No se corrigen con una nota de crédito: telefono"),
        ({"giro": "Otro"}, "  ", "Indique el motivo"),
    ],
)
def test_text_correction_refusals_are_spanish_validation_errors(issued_factura, actor, corrections, reason, message):
    order, _ = issued_factura

    with pytest.raises(ValidationError) as refused:
        order_text_correction(order=order, corrections=corrections, reason=reason, actor=actor)

    assert message in " ".join(refused.value.messages)
    assert not order.emissions.filter(kind=DocumentKind.CREDIT_NOTE).exists()


def test_only_an_issued_factura_can_be_text_corrected(gateway, actor):
    boleta_order = services.order_ingest(gateway=gateway, raw=sample_order(number=6002))
    with pytest.raises(ValidationError, match="no tiene una factura emitida"):
        order_text_correction(order=boleta_order, corrections={"giro": "x"}, reason="antes de emitir", actor=actor)
    run_pending(boleta_order)
    boleta_order.refresh_from_db()
    assert boleta_order.status == OrderStatus.ISSUED
    with pytest.raises(ValidationError, match="no tiene una factura emitida"):
        order_text_correction(order=boleta_order, corrections={"giro": "x"}, reason="es boleta", actor=actor)


def test_a_biller_that_does_not_issue_credit_notes_refuses_at_check(issued_factura, actor, monkeypatch):
    order, _ = issued_factura
    monkeypatch.setattr(SandboxAdapter, "document_types", frozenset({33, 34, 39, 41}))

    with pytest.raises(ValidationError, match="El facturador no puede emitir la corrección: .*no emite nota de crédito"):
        order_text_correction(order=order, corrections={"giro": "Otro giro"}, reason="giro", actor=actor)
    assert not order.emissions.filter(kind=DocumentKind.CREDIT_NOTE).exists()


def test_a_failed_correction_is_not_the_base_of_the_next_one(issued_factura, gateway, actor):
    order, _ = issued_factura
    gateway.biller.config = {"reject_all": "folios de notas de crédito agotados"}
    gateway.biller.save()
    failed = order_text_correction(order=order, corrections={"giro": "Venta al por menor de regalos"}, reason="giro", actor=actor)
    run_pending(order)
    failed.refresh_from_db()
    assert failed.status == EmissionStatus.FAILED
    gateway.biller.config = {}
    gateway.biller.save()

    again = order_text_correction(order=order, corrections={"giro": "Venta al por menor de regalos"}, reason="giro", actor=actor)

    assert again.sequence == 2 and again.sale["references"][0]["razon"].startswith("DONDE DICE Venta de artículos de regalo")


@pytest.mark.parametrize("factura", [False, True])
def test_order_of_a_store_that_adds_tax_is_issued_for_what_was_paid(gateway, factura):
    payload = json.loads((FIXTURES / "order_paid_net_prices_tax_lines.json").read_text(encoding="utf-8"))
    if factura:
        payload["note_attributes"] = copy.deepcopy(FACTURA_NOTES)

    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.READY, order.status_reason
    [document] = run_pending(order)

    assert document.tipo_dte == (33 if factura else 39)
    assert document.mnt_total == int(Decimal(payload["total_price"])) == 92279
    assert document.totals["MntNeto"] + document.totals["IVA"] == 92279
    assert ("<MntBruto>1</MntBruto>" in xml_of(document)) is factura


def test_text_correction_through_the_api(issued_factura, write_key_client, other_account):
    order, invoice = issued_factura
    url = f"/api/v1/orders/{order.pk}/text-correction/"

    empty = write_key_client.post(url, {"reason": "nada que corregir"}, format="json")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid"

    answer = write_key_client.post(url, {"reason": "Otro giro", "giro": "Venta al por menor de regalos"}, format="json")
    assert answer.status_code == 202, answer.json()
    [note] = run_pending(order)
    assert (note.tipo_dte, note.mnt_total, note.credited_document) == (61, 0, invoice)
    assert "<GiroRecep>Venta al por menor de regalos</GiroRecep>" in xml_of(note)

    rut = write_key_client.post(url, {"reason": "RUT", "razon_social": "x" * 101}, format="json")
    assert rut.status_code == 400 and "razon_social" in rut.json()["error"]["fields"]

    foreign = GatewayFactory(account=other_account)
    foreign_order = services.order_ingest(gateway=foreign, raw=sample_order(number=6002))
    assert write_key_client.post(f"/api/v1/orders/{foreign_order.pk}/text-correction/",
                                 {"reason": "x", "giro": "y"}, format="json").status_code == 404


def test_text_correction_api_refuses_a_boleta_with_the_reason(gateway, write_key_client):
    order = services.order_ingest(gateway=gateway, raw=sample_order(number=6003))
    [boleta] = run_pending(order)
    assert boleta.tipo_dte == 39
    answer = write_key_client.post(f"/api/v1/orders/{order.pk}/text-correction/", {"reason": "x", "giro": "y"}, format="json")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "no_factura"
    assert "factura emitida" in answer.json()["error"]["message"]


def test_a_credit_note_by_lines_returns_the_tax_the_store_charged(gateway, actor):
    """A store that adds tax may round it its own way: a line credited by hand returns the tax it charged."""
    payload = json.loads((FIXTURES / "order_paid_net_prices_tax_lines.json").read_text(encoding="utf-8"))
    line = next(item for item in payload["line_items"] if item["id"] == 14208879100001)
    line["tax_lines"][0]["price"] = line["tax_lines"][0]["price_set"]["shop_money"]["amount"] = "2075.00"
    payload["total_tax"], payload["total_price"] = "14735.00", "92278.00"
    order = services.order_ingest(gateway=gateway, raw=payload)
    [invoice] = run_pending(order)
    assert invoice.mnt_total == 92278
    order.refresh_from_db()

    services.order_credit_note_request(order=order, reason="Devolución de una línea", actor=actor,
                                       lines=[{"line_id": "14208879100001", "quantity": 1}])
    [note] = run_pending(order)

    assert note.mnt_total == 10924 + 2075
