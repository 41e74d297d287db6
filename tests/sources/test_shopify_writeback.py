"""The issued document written back to a Shopify order as a metafield: the request, and every failure."""
import json
from pathlib import Path

import pytest
import responses

from gateways import services
from gateways.models import Document, SideEffect
from gateways.side_effects import document_side_effects_run
from sources.base import DocumentWriteBack, IssuedDocumentInfo
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from sources.shopify.client import ShopifyClient
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.sources.contracts import StoreWriteBackContract

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"
STORE = "https://tienda-chile.myshopify.com"
TOKEN = "shpat_x"
ORDER_ID = "5812340098113"
URL = f"{STORE}/admin/api/2026-04/orders/{ORDER_ID}/metafields.json"
DOCUMENT = IssuedDocumentInfo(
    order_external_id=ORDER_ID, tipo_dte=39, folio=123, total=36960, certification=True,
    note="Boleta electrónica N° 123 por $36.960 (certificación)", pdf_url="https://docs.example.cl/dte/39/123.pdf",
)


def connection(**overrides) -> SourceConnection:
    fields = {"platform": "shopify", "store_url": STORE, "credentials": {"access_token": TOKEN}, "config": {}}
    return SourceConnection(**{**fields, **overrides})


def push(document=DOCUMENT, **overrides) -> str:
    return source_adapter_for(connection(**overrides)).push_document(document)


def created(key="dte_39_123", metafield_id=1069228994) -> dict:
    """The shape of the reference's "Create a metafield for an order" answer."""
    return {"metafield": {"id": metafield_id, "namespace": "billmysales", "key": key, "value": "{}",
                          "description": None, "owner_id": int(ORDER_ID), "owner_resource": "order", "type": "json",
                          "admin_graphql_api_id": f"gid://shopify/Metafield/{metafield_id}"}}


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


def test_shopify_adapter_writes_documents_back():
    assert isinstance(source_adapter_for(connection()), DocumentWriteBack)


def test_document_becomes_a_json_metafield_on_the_order(store):
    store.post(URL, status=201, json=created())

    written = push()

    assert written == f"Metafield billmysales.dte_39_123 en la orden {ORDER_ID} de Shopify (id 1069228994)"
    [call] = store.calls
    request = call.request
    assert (request.method, request.url) == ("POST", URL)
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert request.headers["User-Agent"].startswith("BillMySales/1.0")
    assert request.headers["Content-Type"] == "application/json"
    assert request.req_kwargs["timeout"] == (5, 15)
    body = json.loads(request.body)
    value = body["metafield"].pop("value")
    assert body == {"metafield": {"namespace": "billmysales", "key": "dte_39_123", "type": "json"}}
    assert json.loads(value) == {
        "note": "Boleta electrónica N° 123 por $36.960 (certificación)",
        "tipo_dte": 39, "folio": 123, "total": 36960, "certification": True,
        "pdf_url": "https://docs.example.cl/dte/39/123.pdf",
    }


def test_production_document_without_pdf_says_neither(store):
    store.post(URL, status=201, json=created(key="dte_33_9"))
    push(IssuedDocumentInfo(order_external_id=ORDER_ID, tipo_dte=33, folio=9, total=1190000, certification=False,
                            note="Factura electrónica N° 9 por $1.190.000"))
    value = json.loads(json.loads(store.calls[0].request.body)["metafield"]["value"])
    assert value == {"note": "Factura electrónica N° 9 por $1.190.000", "tipo_dte": 33, "folio": 9,
                     "total": 1190000, "certification": False}


def test_api_version_comes_from_the_connection_config(store):
    store.post(URL.replace("2026-04", "2026-07"), status=201, json=created())
    push(config={"api_version": "2026-07"})
    assert "/admin/api/2026-07/" in store.calls[0].request.url


@pytest.mark.parametrize("status, errors", [
    (401, "[API] Invalid API key or access token (unrecognized login or wrong password)"),
    (403, "[API] This action requires merchant approval for write_orders scope."),
    (404, "Not Found"),
    (422, {"key": ["is too short (minimum is 2 characters)"]}),
])
def test_refusals_are_rejected_with_the_status_and_what_shopify_said(store, status, errors):
    store.post(URL, status=status, json={"errors": errors})
    with pytest.raises(SourceRejectedError) as caught:
        push()
    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)
    assert (errors if isinstance(errors, str) else "is too short") in str(caught.value)
    assert len(store.calls) == 1














@pytest.mark.parametrize("overrides, message", [
    ({"credentials": {}}, "access_token"),
    ({"credentials": {"webhook_secret": "shpss_1"}}, "access_token"),
    ({"store_url": "http://tienda-chile.myshopify.com"}, "https://"),
    ({"store_url": ""}, "https://"),
    ({"config": {"api_version": "latest/../../x"}}, "Versión"),
])
def test_a_connection_that_cannot_authenticate_is_rejected_before_any_request(store, overrides, message):
    with pytest.raises(SourceRejectedError, match=message):
        push(**overrides)
    assert len(store.calls) == 0


def test_an_order_id_that_is_not_shopify_s_is_rejected_before_any_request(store):
    with pytest.raises(SourceRejectedError, match="id numérico"):
        push(IssuedDocumentInfo(order_external_id="../shop", tipo_dte=39, folio=1, total=1, certification=True, note=""))
    assert len(store.calls) == 0


def test_reads_are_retried_but_writes_never_are(store):
    client = ShopifyClient(store_url=STORE, access_token=TOKEN)
    orders = f"{STORE}/admin/api/2026-04/orders.json"
    store.get(orders, status=503)
    store.get(orders, status=200, json={"orders": []})
    assert client.request("GET", orders).json() == {"orders": []}
    assert len(store.calls) == 2
    store.post(URL, status=503)
    with pytest.raises(SourceTransientError):
        client.request("POST", URL, json={})
    assert len(store.calls) == 3


@pytest.fixture
def gateway(account):
    return GatewayFactory(
        account=account, source__platform="shopify", source__store_url=STORE, source__credentials={"access_token": TOKEN},
    )


def issued_document(gateway) -> Document:
    raw = json.loads((FIXTURES / "webhook_orders_paid_clp.json").read_text(encoding="utf-8"))
    order = services.order_ingest(gateway=gateway, raw=raw)
    [document] = run_pending(order)
    return document


def snapshot(document: Document) -> tuple:
    document.refresh_from_db()
    return (document.tipo_dte, document.folio, document.mnt_total, document.certification, document.pdf_url,
            bytes(document.xml), document.totals)


def test_side_effect_is_done_with_what_was_written(gateway, store):
    document = issued_document(gateway)
    before = snapshot(document)
    key = f"dte_{document.tipo_dte}_{document.folio}"
    store.post(URL, status=201, json=created(key=key, metafield_id=77))

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert (effect.outcome, effect.message) == (
        SideEffect.Outcome.DONE, f"Metafield billmysales.{key} en la orden {ORDER_ID} de Shopify (id 77)"
    )
    value = json.loads(json.loads(store.calls[0].request.body)["metafield"]["value"])
    assert (value["tipo_dte"], value["folio"], value["total"]) == (39, document.folio, 36960)
    assert snapshot(document) == before


def test_side_effect_records_shopify_s_refusal_and_leaves_the_document(gateway, store):
    document = issued_document(gateway)
    before = snapshot(document)
    store.post(URL, status=403, json={"errors": "[API] This action requires merchant approval for write_orders scope."})

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert effect.outcome == SideEffect.Outcome.FAILED
    assert "HTTP 403" in effect.message and "write_orders scope" in effect.message
    assert snapshot(document) == before and Document.objects.filter(order=document.order).count() == 1


class TestShopifyWriteBackContract(StoreWriteBackContract):
    platform = "shopify"
    store_url = STORE

    def connection_fields(self) -> dict:
        return {"credentials": {"access_token": TOKEN}}

    def write_url(self, document) -> str:
        return f"{STORE}/admin/api/2026-04/orders/{document.order_external_id}/metafields.json"

    def success(self, document) -> dict:
        return created(key=f"dte_{document.tipo_dte}_{document.folio}")
