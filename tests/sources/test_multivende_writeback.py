"""The issued document uploaded to the Multivende checkout: the record, then the PDF; every refusal and failure."""
import json
from email.parser import BytesParser
from email.policy import HTTP

import pytest
import requests
import responses

from gateways import services
from gateways.models import SideEffect
from gateways.side_effects import document_side_effects_run
from sources.base import IssuedDocumentInfo
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.sources.contracts import StoreWriteBackContract
from tests.sources.test_multivende_client import (
    BASE,
    credentials,
    fixture,
    multivende_app,  # noqa: F401  (autouse: our app's settings)
    multivende_connection,
)

CHECKOUT = "7f3c2b1a-9d84-4e6f-a1b2-3c4d5e6f7a81"
CLIENT = "c41f0d2e-7b6a-4d59-9e8f-1a2b3c4d5e6f"
EMITTER = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140"
CREATED = fixture("electronic_billing_document_created.json")
CREATE_URL = f"{BASE}/api/checkouts/{CHECKOUT}/electronic-billing-documents"
UPLOAD_URL = f"{BASE}/api/electronic-billing-documents/{CREATED['_id']}/upload"
CONFIG = {"provider": "billmysales", "emitter_id": EMITTER}
PDF = b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n"
DOCUMENT = IssuedDocumentInfo(
    order_external_id=CHECKOUT, tipo_dte=39, folio=123, total=38470, certification=True,
    note="Boleta electrónica N° 123 por $38.470 (certificación)", fecha="2026-11-21", pdf=PDF,
    order_raw={"_id": CHECKOUT, "Client": {"_id": CLIENT, "fullName": "Josefa Contreras"}},
)


def connection(**overrides) -> SourceConnection:
    fields = {"platform": "multivende", "store_url": BASE, "credentials": credentials(), "config": dict(CONFIG)}
    return SourceConnection(**{**fields, **overrides})


def push(document=DOCUMENT, **overrides) -> str:
    return source_adapter_for(connection(**overrides)).push_document(document)


def uploaded_file(request) -> tuple[str, str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.body)
    [part] = list(message.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    return part.get_filename(), part.get_content_type(), part.get_payload(decode=True)


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def test_the_record_is_created_then_the_pdf_uploaded(api):
    api.post(CREATE_URL, json=CREATED)
    api.post(UPLOAD_URL, json={"_id": "f-1", "synchronizationStatus": "pending"})

    written = push()

    assert written == (f"Boleta electrónica N° 123 por $38.470 (certificación): documento {CREATED['_id']} creado en la venta "
                       f"{CHECKOUT} de Multivende, con su PDF (2 KB).")
    create, upload = api.calls
    assert json.loads(create.request.body) == {
        "ClientId": CLIENT, "id": "123", "emissionDate": "2026-11-21", "type": "electronic_billing_electronic_bill",
        "provider": "billmysales", "ElectronicBillingDocumentEmitterId": EMITTER}
    assert create.request.headers["Authorization"] == "Bearer at-1"
    assert create.request.headers["Content-Type"] == "application/json"
    assert upload.request.headers["Authorization"] == "Bearer at-1"
    assert uploaded_file(upload.request) == ("123.pdf", "application/pdf", PDF)


@pytest.mark.parametrize("tipo, credit_note, config, expected", [
    (61, True, {"type_credit_note": "electronic_billing_credit_note"}, "electronic_billing_credit_note"),
    (33, False, {"type_factura": "electronic_billing_invoice"}, "electronic_billing_invoice"),
    (41, False, {}, "electronic_billing_electronic_bill"),
    (61, True, {}, "electronic_billing_electronic_bill"),
])
def test_the_type_comes_from_the_connection_per_kind_of_document(api, tipo, credit_note, config, expected):
    api.post(CREATE_URL, json=CREATED)
    api.post(UPLOAD_URL, json={})
    document = IssuedDocumentInfo(**{**DOCUMENT.__dict__, "tipo_dte": tipo, "credit_note": credit_note})

    push(document, config={**CONFIG, **config})

    assert json.loads(api.calls[0].request.body)["type"] == expected


def test_a_pdf_over_one_megabyte_is_refused_before_any_request(api):
    document = IssuedDocumentInfo(**{**DOCUMENT.__dict__, "pdf": b"%PDF-" + b"0" * (1024 * 1024)})
    with pytest.raises(SourceRejectedError, match="pesa 1024 KB y Multivende acepta hasta 1 MB"):
        push(document)
    assert len(api.calls) == 0


@pytest.mark.parametrize("config, missing", [
    ({}, "provider, ElectronicBillingDocumentEmitterId"),
    ({"provider": "billmysales"}, "ElectronicBillingDocumentEmitterId"),
])
def test_without_provider_and_emitter_nothing_is_sent(api, config, missing):
    with pytest.raises(SourceRejectedError, match=f"configure en la conexión: {missing}"):
        push(config=config)
    assert len(api.calls) == 0


def test_a_document_type_multivende_has_no_code_for_is_refused(api):
    with pytest.raises(SourceRejectedError, match="DTE 56"):
        push(IssuedDocumentInfo(**{**DOCUMENT.__dict__, "tipo_dte": 56}))
    assert len(api.calls) == 0


def test_the_client_is_read_from_the_checkout_when_the_order_does_not_carry_it(api):
    api.get(f"{BASE}/api/checkouts/{CHECKOUT}", json=fixture("checkout_mercadolibre_boleta.json"))
    api.post(CREATE_URL, json=CREATED)
    api.post(UPLOAD_URL, json={})

    push(IssuedDocumentInfo(**{**DOCUMENT.__dict__, "order_raw": {}}))

    assert json.loads(api.calls[1].request.body)["ClientId"] == CLIENT


@pytest.mark.parametrize("answer, error", [
    ({"status": 400, "json": {"message": "El archivo supera el peso máximo de 1MB"}}, SourceRejectedError),
    ({"status": 502, "body": "<html>Bad gateway</html>"}, SourceTransientError),
    ({"body": requests.exceptions.ReadTimeout()}, SourceTransientError),
])
def test_an_upload_that_fails_says_the_record_exists(api, answer, error):
    api.post(CREATE_URL, json=CREATED)
    api.post(UPLOAD_URL, **answer)
    with pytest.raises(error, match=f"Multivende creó el documento {CREATED['_id']} pero no aceptó el PDF"):
        push()
    assert len(api.calls) == 2  # the upload is never repeated


def test_an_id_that_is_not_a_multivende_checkout_never_reaches_a_path(api):
    with pytest.raises(SourceRejectedError, match="no es un id de venta"):
        push(IssuedDocumentInfo(**{**DOCUMENT.__dict__, "order_external_id": "../../api/d/info"}))
    assert len(api.calls) == 0


@pytest.mark.django_db
def test_an_issued_document_is_uploaded_with_its_pdf_by_the_side_effect(api, account):
    source = multivende_connection(account)
    source.config = dict(CONFIG)
    source.save()
    gateway = GatewayFactory(account=account, source=source)
    order = services.order_ingest(gateway=gateway, raw=fixture("checkout_mercadolibre_boleta.json"))
    [document] = run_pending(order)
    api.post(CREATE_URL, json=CREATED)
    api.post(UPLOAD_URL, json={"_id": "f-1", "synchronizationStatus": "pending"})

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert effect.outcome == SideEffect.Outcome.DONE and "con su PDF" in effect.message
    body = json.loads(api.calls[0].request.body)
    assert (body["ClientId"], body["id"], body["emissionDate"]) == (CLIENT, str(document.folio), document.fecha.isoformat())
    name, content_type, content = uploaded_file(api.calls[1].request)
    assert name == f"{document.folio}.pdf" and content.startswith(b"%PDF-")


class TestMultivendeWriteBackContract(StoreWriteBackContract):
    platform = "multivende"
    store_url = BASE
    # A Multivende write-back needs the checkout's client, which the pipeline always passes with the order;
    # without a PDF only the record is created (one request, as the contract counts them).
    document = IssuedDocumentInfo(
        order_external_id=CHECKOUT, tipo_dte=39, folio=123, total=36960, certification=True,
        note="Boleta electrónica N° 123 por $36.960 (certificación)", order_raw={"Client": {"_id": CLIENT}},
    )

    def connection_fields(self) -> dict:
        # The contract's connections are not saved, so a 401/403 is final there (renewal needs the row's
        # lease); renewal and the one retry are tested in test_multivende_client.py.
        return {"credentials": credentials(), "config": dict(CONFIG)}

    def write_url(self, document) -> str:
        return f"{BASE}/api/checkouts/{document.order_external_id}/electronic-billing-documents"

    def success(self, document) -> dict:
        return {**CREATED, "id": str(document.folio)}
