"""The issued document written back to a Shopify order as a metafield with ``metafieldsSet`` (GraphQL Admin
API 2026-10): the request, what Shopify answers, and every failure."""
import json
from pathlib import Path

import pytest
import responses

from gateways import services
from gateways.models import Document, Order, SideEffect
from gateways.side_effects import document_side_effects_run
from sources.base import DocumentWriteBack, IssuedDocumentInfo
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import source_adapter_for
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending
from tests.sources.contracts import StoreWriteBackContract

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "shopify" / "fixtures"
STORE = "https://tienda-chile.myshopify.com"
TOKEN = "shpat_x"
ORDER_ID = "5812340098113"
URL = f"{STORE}/admin/api/2026-10/graphql.json"
DOCUMENT = IssuedDocumentInfo(
    order_external_id=ORDER_ID, tipo_dte=39, folio=123, total=36960, certification=True,
    note="Boleta electrónica N° 123 por $36.960 (certificación)", pdf_url="https://docs.example.cl/dte/39/123.pdf",
)
THROTTLED = {
    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
    "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": None,
                            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 0, "restoreRate": 100.0}}},
}


def connection(**overrides) -> SourceConnection:
    fields = {"platform": "shopify", "store_url": STORE, "credentials": {"access_token": TOKEN}, "config": {}}
    return SourceConnection(**{**fields, **overrides})


def push(document=DOCUMENT, **overrides) -> str:
    return source_adapter_for(connection(**overrides)).push_document(document)


def metafields_set(key="dte_39_123", metafield_id=1069228994) -> dict:
    """The shape of ``metafieldsSet``'s answer in the GraphQL Admin reference."""
    return {"data": {"metafieldsSet": {"metafields": [{"id": f"gid://shopify/Metafield/{metafield_id}",
                                                       "namespace": "billmysales", "key": key}],
                                       "userErrors": []}},
            "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": 10,
                                    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990,
                                                       "restoreRate": 100.0}}}}


@pytest.fixture
def store():
    with responses.RequestsMock() as mock:
        yield mock


def test_shopify_adapter_writes_documents_back():
    assert isinstance(source_adapter_for(connection()), DocumentWriteBack)


def test_document_becomes_a_json_metafield_on_the_order(store):
    store.post(URL, status=200, json=metafields_set())

    written = push()

    assert written == f"Metafield billmysales.dte_39_123 en la orden {ORDER_ID} de Shopify (id gid://shopify/Metafield/1069228994)"
    [call] = store.calls
    request = call.request
    assert (request.method, request.url) == ("POST", URL)
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert request.headers["User-Agent"].startswith("BillMySales/1.0")
    assert request.headers["Content-Type"] == "application/json"
    assert request.req_kwargs["timeout"] == (5, 15)
    body = json.loads(request.body)
    assert "metafieldsSet(metafields: $metafields)" in body["query"]
    assert "userErrors { field message code }" in body["query"]
    [metafield] = body["variables"]["metafields"]
    value = metafield.pop("value")
    assert metafield == {"ownerId": f"gid://shopify/Order/{ORDER_ID}", "namespace": "billmysales", "key": "dte_39_123",
                         "type": "json"}
    assert json.loads(value) == {
        "note": "Boleta electrónica N° 123 por $36.960 (certificación)",
        "tipo_dte": 39, "folio": 123, "total": 36960, "certification": True,
        "pdf_url": "https://docs.example.cl/dte/39/123.pdf",
    }


def test_production_document_without_pdf_says_neither(store):
    store.post(URL, status=200, json=metafields_set(key="dte_33_9"))
    push(IssuedDocumentInfo(order_external_id=ORDER_ID, tipo_dte=33, folio=9, total=1190000, certification=False,
                            note="Factura electrónica N° 9 por $1.190.000"))
    value = json.loads(json.loads(store.calls[0].request.body)["variables"]["metafields"][0]["value"])
    assert value == {"note": "Factura electrónica N° 9 por $1.190.000", "tipo_dte": 33, "folio": 9,
                     "total": 1190000, "certification": False}


def test_user_errors_are_rejections_with_shopify_s_words(store):
    store.post(URL, status=200, json={"data": {"metafieldsSet": {"metafields": [], "userErrors": [
        {"field": ["metafields", "0", "ownerId"], "message": "Owner does not exist.", "code": "INVALID"}]}}})
    with pytest.raises(SourceRejectedError, match=r"dte_39_123 de la orden 5812340098113: Owner does not exist\. \(INVALID\)"):
        push()
    assert len(store.calls) == 1


def test_missing_scope_is_a_rejection(store):
    store.post(URL, status=200, json={"errors": [{"message": "Access denied for metafieldsSet field. Required access: "
                                                  "`write_orders` access scope.", "extensions": {"code": "ACCESS_DENIED"}}],
                                      "data": {"metafieldsSet": None}})
    with pytest.raises(SourceRejectedError, match="write_orders.*ACCESS_DENIED"):
        push()


def test_throttled_with_a_long_wait_is_transient_with_the_wait_as_retry_hint(store, monkeypatch):
    monkeypatch.setattr("sources.shopify.client.MAX_THROTTLE_WAIT", 0.05)
    store.post(URL, status=200, json=THROTTLED)
    with pytest.raises(SourceTransientError, match="THROTTLED") as caught:
        push()
    # 10 points asked, none available, 100 restored a second: a tenth of a second, rounded up.
    assert caught.value.retry_after == "1"
    assert len(store.calls) == 1


def test_throttled_with_a_short_wait_is_sent_again_once(store, monkeypatch):
    slept = []
    monkeypatch.setattr("sources.shopify.client.time.sleep", slept.append)
    store.post(URL, status=200, json=THROTTLED)
    store.post(URL, status=200, json=metafields_set())
    assert "dte_39_123" in push()
    assert slept == [pytest.approx(0.1)] and len(store.calls) == 2


def test_a_success_without_the_metafield_is_unconfirmed(store):
    store.post(URL, status=200, json={"data": {"metafieldsSet": {"metafields": [], "userErrors": []}}})
    with pytest.raises(SourceTransientError, match="pudo haberse escrito"):
        push()


@pytest.mark.parametrize("overrides, message", [
    ({"credentials": {}}, "access_token"),
    ({"credentials": {"webhook_secret": "shpss_1"}}, "access_token"),
    ({"store_url": "http://tienda-chile.myshopify.com"}, "https://"),
    ({"store_url": ""}, "https://"),
    ({"store_url": "https://tienda.cl"}, "myshopify.com"),
])
def test_a_connection_that_cannot_authenticate_is_rejected_before_any_request(store, overrides, message):
    with pytest.raises(SourceRejectedError, match=message):
        push(**overrides)
    assert len(store.calls) == 0


def test_an_order_id_that_is_not_shopify_s_is_rejected_before_any_request(store):
    with pytest.raises(SourceRejectedError, match="id numérico"):
        push(IssuedDocumentInfo(order_external_id="../shop", tipo_dte=39, folio=1, total=1, certification=True, note=""))
    assert len(store.calls) == 0


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
    store.post(URL, status=200, json=metafields_set(key=key, metafield_id=77))

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert (effect.outcome, effect.message) == (
        SideEffect.Outcome.DONE, f"Metafield billmysales.{key} en la orden {ORDER_ID} de Shopify (id gid://shopify/Metafield/77)"
    )
    value = json.loads(json.loads(store.calls[0].request.body)["variables"]["metafields"][0]["value"])
    assert (value["tipo_dte"], value["folio"], value["total"]) == (39, document.folio, 36960)
    assert value["pdf_url"].startswith("http") and "/documentos/" in value["pdf_url"]
    assert snapshot(document) == before


def test_side_effect_records_shopify_s_refusal_and_leaves_the_document(gateway, store):
    document = issued_document(gateway)
    before = snapshot(document)
    store.post(URL, status=401, json={"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert effect.outcome == SideEffect.Outcome.FAILED
    assert "HTTP 401" in effect.message and "Invalid API key" in effect.message
    assert snapshot(document) == before and Document.objects.filter(order=document.order).count() == 1


def test_a_simulated_test_order_is_not_written_back(gateway, store):
    document = issued_document(gateway)
    Order.objects.filter(pk=document.order_id).update(is_test=True)

    document_side_effects_run(document_id=document.pk)

    effect = SideEffect.objects.get(document=document, kind=SideEffect.Kind.STORE_WRITEBACK)
    assert effect.outcome == SideEffect.Outcome.NOT_APPLICABLE and "prueba simulada" in effect.message
    assert len(store.calls) == 0


class TestShopifyWriteBackContract(StoreWriteBackContract):
    platform = "shopify"
    store_url = STORE

    def connection_fields(self) -> dict:
        return {"credentials": {"access_token": TOKEN}}

    def write_url(self, document) -> str:
        return URL

    def success(self, document) -> dict:
        return metafields_set(key=f"dte_{document.tipo_dte}_{document.folio}")
