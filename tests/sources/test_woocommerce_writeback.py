"""The issued document written back to a WooCommerce order as a private note: the request, and every failure."""
import base64
import json
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from gateways import services
from gateways.models import Document, SideEffect
from gateways.side_effects import document_side_effects_run
from sources.base import DocumentWriteBack, IssuedDocumentInfo
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.sources.contracts import StoreWriteBackContract

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "woocommerce" / "fixtures"
STORE = "https://tienda.example.cl"
KEY, SECRET = "ck_4f1c9a7e2b8d", "cs_0a9b8c7d6e5f"
URL = f"{STORE}/wp-json/wc/v3/orders/727/notes"
DOCUMENT = IssuedDocumentInfo(
    order_external_id="727", tipo_dte=39, folio=123, total=36960, certification=True,
    note="Boleta electrónica N° 123 por $36.960 (certificación)", pdf_url="https://docs.example.cl/dte/39/123.pdf",
)


def connection(**overrides) -> SourceConnection:
    fields = {"platform": "woocommerce", "store_url": STORE,
              "credentials": {"consumer_key": KEY, "consumer_secret": SECRET}, "config": {}}
    return SourceConnection(**{**fields, **overrides})


def push(document=DOCUMENT, **overrides) -> str:
    return source_adapter_for(connection(**overrides)).push_document(document)


def created_note(note_id=281, order_id=727, note="") -> dict:
    """The shape of the docs' "Create an order note" answer."""
    return {"id": note_id, "author": "system", "date_created": "2026-11-21T10:15:00", "date_created_gmt": "2026-11-21T13:15:00",
            "note": note, "customer_note": False,
            "_links": {"up": [{"href": f"{STORE}/wp-json/wc/v3/orders/{order_id}"}]}}


def wp_error(status: int, code: str, message: str) -> dict:
    return {"code": code, "message": message, "data": {"status": status}}


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


def test_woocommerce_adapter_writes_documents_back():
    assert isinstance(source_adapter_for(connection()), DocumentWriteBack)


def test_document_becomes_a_private_note_on_the_order(store):
    store.post(URL, status=201, json=created_note())

    written = push()

    assert written == "Nota privada en la orden 727 de WooCommerce (nota 281)"
    [call] = store.calls
    request = call.request
    assert (request.method, request.url) == ("POST", URL)
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert request.headers["User-Agent"].startswith("BillMySales/1.0")
    assert request.req_kwargs["timeout"] == (5, 15)
    assert json.loads(request.body) == {
        "note": "Boleta electrónica N° 123 por $36.960 (certificación)\n"
                "PDF: https://docs.example.cl/dte/39/123.pdf\n"
                'billmysales:dte {"tipo_dte": 39, "folio": 123, "total": 36960, "certification": true, '
                '"pdf_url": "https://docs.example.cl/dte/39/123.pdf"}',
        "customer_note": False,
    }


def test_the_data_line_reads_back_as_json_without_a_pdf(store):
    store.post(URL, status=201, json=created_note())
    push(IssuedDocumentInfo(order_external_id="727", tipo_dte=61, folio=4, total=12990, certification=False,
                            note="Nota de crédito electrónica N° 4 por $12.990"))
    note = json.loads(store.calls[0].request.body)["note"]
    first, data = note.split("\n")
    assert first == "Nota de crédito electrónica N° 4 por $12.990"
    assert json.loads(data.removeprefix("billmysales:dte ")) == {"tipo_dte": 61, "folio": 4, "total": 12990, "certification": False}


def test_query_string_auth_when_the_server_drops_the_authorization_header(store):
    store.post(URL, status=201, json=created_note(),
               match=[matchers.query_param_matcher({"consumer_key": KEY, "consumer_secret": SECRET})])
    push(config={"query_string_auth": True})
    assert "Authorization" not in store.calls[0].request.headers


def test_rest_prefix_and_a_site_in_a_subdirectory(store):
    url = "https://example.cl/tienda/api/wc/v3/orders/727/notes"
    store.post(url, status=201, json=created_note())
    push(store_url="https://example.cl/tienda/", config={"rest_prefix": "/api/"})
    assert store.calls[0].request.url == url


@pytest.mark.parametrize("status, code, message", [
    (401, "woocommerce_rest_cannot_create", "Lo siento, no tienes permisos para crear recursos."),
    (403, "woocommerce_rest_authentication_error", "Firma no válida - la firma proporcionada no coincide."),
    (404, "woocommerce_rest_order_invalid_id", "ID no válido."),
])
def test_refusals_are_rejected_with_the_status_and_what_the_store_said(store, status, code, message):
    store.post(URL, status=status, json=wp_error(status, code, message))
    with pytest.raises(SourceRejectedError) as caught:
        push()
    assert caught.value.status == status and caught.value.body == message
    assert f"HTTP {status}" in str(caught.value) and message in str(caught.value)
    assert len(store.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient_and_the_note_is_not_repeated(store, status):
    store.post(URL, status=status, body="<html><head><title>Error</title></head><body>There has been a critical error on this website.</body></html>")
    with pytest.raises(SourceTransientError) as caught:
        push()
    assert caught.value.status == status and f"HTTP {status}" in str(caught.value)
    assert "critical error" in str(caught.value)
    assert len(store.calls) == 1




@pytest.mark.parametrize("error", [requests.exceptions.ReadTimeout(), requests.exceptions.ConnectTimeout(),
                                   requests.exceptions.ConnectionError()])
def test_timeouts_and_connection_errors_are_transient_and_never_show_the_keys(store, error):
    store.post(URL, body=error)
    with pytest.raises(SourceTransientError, match=type(error).__name__) as caught:
        push(config={"query_string_auth": True})
    assert "tienda.example.cl" in str(caught.value)
    assert SECRET not in str(caught.value) and KEY not in str(caught.value)


@pytest.mark.parametrize("body", [
    "<br />\n<b>Deprecated</b>: Function x is deprecated in /var/www/wp-includes/functions.php<br />\n" + json.dumps(created_note()),
    "<html>Checking your browser before accessing</html>",
    '{"id": null}',
])
def test_a_success_without_the_note_is_unconfirmed_not_done(store, body):
    store.post(URL, status=201, body=body, content_type="application/json")
    with pytest.raises(SourceTransientError, match="pudo haberse escrito") as caught:
        push()
    assert caught.value.status == 201


def test_an_http_store_url_is_refused_before_the_keys_go_out_in_clear(store):
    with pytest.raises(SourceRejectedError, match="https://"):
        push(store_url="http://tienda.example.cl")
    assert len(store.calls) == 0


@pytest.mark.parametrize("credentials, missing", [
    ({}, "consumer_key ni consumer_secret"),
    ({"consumer_key": KEY}, "consumer_secret"),
    ({"consumer_secret": SECRET, "webhook_secret": "whsec"}, "consumer_key"),
])
def test_missing_keys_are_rejected_before_any_request(store, credentials, missing):
    with pytest.raises(SourceRejectedError, match=f"no tiene {missing}:"):
        push(credentials=credentials)
    assert len(store.calls) == 0


def test_a_redirect_is_rejected_with_its_target(store):
    store.post(URL, status=302, headers={"Location": "https://tienda.example.cl/wp-login.php"})
    with pytest.raises(SourceRejectedError, match="HTTP 302.*wp-login.php"):
        push()


@pytest.fixture
def gateway(account):
    return GatewayFactory(
        account=account, source__platform="woocommerce", source__store_url=STORE,
        source__credentials={"consumer_key": KEY, "consumer_secret": SECRET},
    )


def issued_document(gateway) -> Document:
    raw = json.loads((FIXTURES / "webhook_order_updated_processing_clp.json").read_text(encoding="utf-8"))
    order = services.order_ingest(gateway=gateway, raw=raw)
    [document] = run_pending(order)
    return document


def snapshot(document: Document) -> tuple:
    document.refresh_from_db()
    return (document.tipo_dte, document.folio, document.mnt_total, document.certification, document.pdf_url,
            bytes(document.xml), document.totals)


def order_url(document: Document) -> str:
    return f"{STORE}/wp-json/wc/v3/orders/{document.order.external_id}/notes"


def test_side_effect_is_done_with_what_was_written(gateway, store):
    document = issued_document(gateway)
    before = snapshot(document)
    store.post(order_url(document), status=201, json=created_note(note_id=512, order_id=20934))

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert (effect.outcome, effect.message) == (SideEffect.Outcome.DONE, "Nota privada en la orden 20934 de WooCommerce (nota 512)")
    note = json.loads(store.calls[0].request.body)["note"]
    assert note.startswith(f"Boleta electrónica N° {document.folio} por $31.990 (certificación)")
    assert snapshot(document) == before


def test_side_effect_records_the_store_s_refusal_and_leaves_the_document(gateway, store):
    document = issued_document(gateway)
    before = snapshot(document)
    store.post(order_url(document), status=403,
               json=wp_error(403, "woocommerce_rest_cannot_create", "Lo siento, no tienes permisos para crear recursos."))

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert effect.outcome == SideEffect.Outcome.FAILED
    assert "HTTP 403" in effect.message and "no tienes permisos para crear recursos" in effect.message
    assert snapshot(document) == before and Document.objects.filter(order=document.order).count() == 1


class TestWooCommerceWriteBackContract(StoreWriteBackContract):
    platform = "woocommerce"
    store_url = STORE

    def connection_fields(self) -> dict:
        return {"credentials": {"consumer_key": KEY, "consumer_secret": SECRET}}

    def write_url(self, document) -> str:
        return f"{STORE}/wp-json/wc/v3/orders/{document.order_external_id}/notes"

    def success(self, document) -> dict:
        return created_note()
