"""webFactura (beta): the biller contract over the simulator, the OAuth2 client-credentials token (cache,
refresh on 401), the ``sendDTEJson`` envelope and its answers at the transport (``responses``), and one
order through the pipeline to a ``Document`` over real HTTP."""
import json
import threading
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses
from responses import matchers

from billers.base import BillerMismatch, Capability, Checkpoint, IssueRequest, RejectedBillerError, TransientBillerError
from billers.models import BillerConnection
from billers.registry import biller_adapter_for
from billers.webfactura import client as webfactura_client
from billers.webfactura.adapter import same_site
from gateways import services
from gateways.models import Document, OrderStatus
from simulators.webfactura import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_EMISOR, WebFacturaSimulator
from sources.shopify.samples import sample_order
from tests.billers.contracts import FECHA, BillerContract, boleta_sale, factura_sale
from tests.billers.factories import BillerConnectionFactory
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending

FIXTURES = Path(__file__).resolve().parents[2] / "billers" / "webfactura" / "fixtures"
QA = "https://api-qa.webfactura.cl"
PROD = "https://api.webfactura.cl"
CLIENT_ID, CLIENT_SECRET = "3_4b9x2k1m0c8w4o8gswc0kcgk", "s3cr3t-0a9b8c7d6e5f"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


TOKEN = fixture("token_response.json")["access_token"]


@pytest.fixture(autouse=True)
def empty_token_cache():
    webfactura_client._tokens.clear()
    yield
    webfactura_client._tokens.clear()


@pytest.fixture(scope="module")
def simulator():
    with WebFacturaSimulator() as sim:
        yield sim


def sim_connection(account, sim, **fields) -> BillerConnection:
    return BillerConnectionFactory(
        account=account, name="webFactura", provider="webfactura", emisor_rut=DEFAULT_EMISOR["rut"],
        emisor_razon_social=DEFAULT_EMISOR["razon_social"],
        credentials={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}, config={"qa_url": sim.url}, **fields,
    )


def issued_documents(sim) -> int:
    return sum(sim.state()["issued"].values())


class TestWebFacturaContract(BillerContract):
    provider = "webfactura"

    @pytest.fixture(autouse=True)
    def _simulator(self, simulator):
        simulator.reset()
        self.sim = simulator

    def make_connection(self, account):
        return sim_connection(account, self.sim)

    def arrange_transient(self, connection):
        self.sim.faults.add(route="send_dte", kind="status", status=503, times=1)

    def arrange_rejection(self, connection):
        # An emisor this OAuth client may not issue for: webFactura answers EstadoDTE 2.
        connection.emisor_rut = "76086428-5"
        connection.save(update_fields=["emisor_rut"])

    def arrange_lost_answer(self, connection):
        self.sim.faults.add(route="send_dte", kind="lost_answer", times=1)

    def issued_count(self, connection) -> int:
        return issued_documents(self.sim)

    def test_declared_beta_until_confirmed(self):
        assert biller_adapter_for(BillerConnection(provider="webfactura")).display_name() == "webFactura (beta)"

    def test_a_factura_and_its_files(self, connection):
        adapter = biller_adapter_for(connection)
        issued = adapter.issue(self.request(adapter, sale=factura_sale()), Checkpoint())
        assert (issued.tipo_dte, issued.folio, issued.total) == (33, 1, 54990)
        assert b"<Folio>1</Folio>" in issued.xml and issued.pdf.startswith(b"%PDF")
        assert issued.pdf_url.startswith(self.sim.url)

    def test_an_expired_token_is_replaced_once(self, connection):
        adapter = biller_adapter_for(connection)
        adapter.issue(self.request(adapter, reference="r-1"), Checkpoint())
        requests.post(f"{self.sim.url}/_sim/expire_tokens", json={}, timeout=5).raise_for_status()
        adapter.issue(self.request(adapter, reference="r-2"), Checkpoint())
        counters = self.sim.counters
        assert (counters["requests:token"], counters["requests:send_dte"], issued_documents(self.sim)) == (2, 3, 2)

    def test_connection_test_gets_a_token(self, connection):
        report = biller_adapter_for(connection).test_connection()
        assert report.ok
        [oauth] = [item for item in report.items if item.label == "Credenciales OAuth"]
        assert oauth.ok is True and "127.0.0.1" in oauth.detail and "certificación (QA)" in oauth.detail


# --- at the transport ----------------------------------------------------------------------------


def connection(environment: str = "certification", **config) -> BillerConnection:
    return BillerConnection(
        provider="webfactura", environment=environment, emisor_rut="76192083-9", emisor_razon_social="Empresa Demo SpA",
        emisor_giro="Venta al por menor por internet", emisor_acteco=479100, emisor_address="Av. Providencia 1234",
        emisor_comuna="Providencia", credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, config=config,
    )


def adapter(environment: str = "certification", **config):
    return biller_adapter_for(connection(environment, **config))


def issue(wf, sale=None, reference="bms-1-1-F1"):
    sale = sale or boleta_sale()
    return wf.issue(IssueRequest(sale=sale, reference=reference, fecha=FECHA, prepared=wf.check(sale, fecha=FECHA)), Checkpoint())


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def token_query():
    return matchers.query_param_matcher({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "client_credentials"})


def mock_token(api, base=QA, **kwargs):
    return api.get(f"{base}/oauth/v2/token", match=[token_query()], **({"json": fixture("token_response.json")} | kwargs))


def mock_files(api, answer=None):
    answer = answer or fixture("send_dte_response_ok.json")
    api.get(answer["Documentos"][0]["UrlXml"], body=b'<?xml version="1.0" encoding="ISO-8859-1"?><DTE version="1.0"/>')
    api.get(answer["Documentos"][0]["UrlPdf"], body=b"%PDF-1.4 webfactura", content_type="application/pdf")


def test_issue_gets_a_token_and_posts_the_envelope_with_our_totals(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    mock_files(api)

    issued = issue(adapter())

    token_call, send_call = api.calls[0], api.calls[1]
    assert token_call.request.method == "GET" and "Authorization" not in token_call.request.headers
    assert (send_call.request.method, send_call.request.url) == ("POST", f"{QA}/api/v3/pos/dte/sendDTEJson.json")
    assert send_call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert send_call.request.headers["Content-Type"] == "application/json"
    assert json.loads(send_call.request.body) == fixture("send_dte_request_boleta.json")
    assert (issued.tipo_dte, issued.folio, issued.fecha, issued.biller_document_id) == (39, 1543, FECHA, "webfactura-39-1543")
    assert issued.totals == {"MntNeto": 31059, "IVA": 5901, "MntTotal": 36960}
    assert issued.pdf_url == fixture("send_dte_response_ok.json")["Documentos"][0]["UrlPdf"]
    assert issued.xml.startswith(b"<?xml") and issued.pdf == b"%PDF-1.4 webfactura"
    # The files are links without credentials: no token goes with them.
    assert all("Authorization" not in call.request.headers for call in api.calls[2:])


def test_a_factura_carries_mntbruto_one_acteco_and_gross_lines(api):
    mock_token(api)
    answer = {"Documentos": [{"TipoDTE": 33, "Folio": 88, "EstadoDTE": 0, "Glosa": "DTE recibido", "MntTotal": 54990}]}
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=answer)
    issued = issue(adapter(), factura_sale())
    dte = json.loads(api.calls[1].request.body)["DteSend"]["Dte"][0]
    assert dte["Encabezado"]["IdDoc"] == {"TipoDTE": "33", "FchEmis": "2026-11-25", "MntBruto": "1"}
    assert dte["Encabezado"]["Emisor"]["RznSoc"] == "Empresa Demo SpA" and dte["Encabezado"]["Emisor"]["Acteco"] == "479100"
    assert dte["Encabezado"]["Totales"] == {"MntNeto": "46210", "TasaIVA": "19", "IVA": "8780", "MntTotal": "54990"}
    assert dte["Detalles"] == [{"NroLinDet": 1, "NmbItem": "Taladro percutor", "QtyItem": "1", "PrcItem": "54990", "MontoItem": "54990"}]
    assert (issued.folio, issued.total, issued.xml, issued.pdf, issued.pdf_url) == (88, 54990, b"", b"", "")


def test_settings_numbers_as_json_and_folio_zero(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    issue(adapter(amounts_as_text=False, folio_zero=True, download_files=False))
    dte = json.loads(api.calls[1].request.body)["DteSend"]["Dte"][0]
    assert dte["Encabezado"]["IdDoc"] == {"TipoDTE": 39, "Folio": 0, "FchEmis": "2026-11-25", "IndServicio": 3}
    assert dte["Encabezado"]["Totales"] == {"MntNeto": 31059, "IVA": 5901, "MntTotal": 36960}
    assert len(api.calls) == 2


def test_production_and_overridden_urls_by_environment(api):
    mock_token(api, base=PROD)
    api.post(f"{PROD}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    issue(adapter("production", download_files=False))
    mock_token(api, base="https://qa.example.cl")
    api.post("https://qa.example.cl/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    issue(adapter(qa_url="https://qa.example.cl/", download_files=False))
    assert [call.request.url.split("?")[0] for call in api.calls] == [
        f"{PROD}/oauth/v2/token", f"{PROD}/api/v3/pos/dte/sendDTEJson.json",
        "https://qa.example.cl/oauth/v2/token", "https://qa.example.cl/api/v3/pos/dte/sendDTEJson.json",
    ]


def test_token_by_post_form(api):
    api.post(f"{QA}/oauth/v2/token", json=fixture("token_response.json"))
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    issue(adapter(token_method="post", download_files=False))
    token_call = api.calls[0].request
    assert token_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_call.body) == {"client_id": [CLIENT_ID], "client_secret": [CLIENT_SECRET], "grant_type": ["client_credentials"]}
    assert "?" not in token_call.url


def test_the_token_is_cached_per_connection_until_it_expires(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    wf = adapter(download_files=False)
    issue(wf, reference="r-1")
    issue(adapter(download_files=False), reference="r-2")
    assert [call.request.method for call in api.calls] == ["GET", "POST", "POST"]
    # Other credentials never reuse that token.
    other = connection(download_files=False)
    other.credentials = {"client_id": CLIENT_ID, "client_secret": "otro-secreto"}
    api.get(f"{QA}/oauth/v2/token", json={**fixture("token_response.json"), "access_token": "otro"})
    issue(biller_adapter_for(other), reference="r-3")
    assert api.calls[-1].request.headers["Authorization"] == "Bearer otro"


def test_a_token_about_to_expire_is_replaced_before_use(api):
    mock_token(api, json={**fixture("token_response.json"), "expires_in": 30})
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    issue(adapter(download_files=False), reference="r-1")
    issue(adapter(download_files=False), reference="r-2")
    assert [call.request.method for call in api.calls] == ["GET", "POST", "GET", "POST"]


def test_concurrent_first_calls_fetch_one_token(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=fixture("send_dte_response_ok.json"))
    errors = []

    def run(n):
        try:
            issue(adapter(download_files=False), reference=f"r-{n}")
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [call.request.method for call in api.calls].count("GET") == 1


def expired(status=401):
    return {"status": status, "json": {"error": "invalid_grant", "error_description": "The access token provided has expired."},
            "headers": {"WWW-Authenticate": 'Bearer realm="Service", error="invalid_grant"'}}


def test_an_expired_token_is_refreshed_once_and_the_document_sent_again(api):
    mock_token(api)
    api.get(f"{QA}/oauth/v2/token", json={**fixture("token_response.json"), "access_token": "nuevo"})
    send = f"{QA}/api/v3/pos/dte/sendDTEJson.json"
    api.post(send, match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})], **expired())
    api.post(send, match=[matchers.header_matcher({"Authorization": "Bearer nuevo"})], json=fixture("send_dte_response_ok.json"))
    issued = issue(adapter(download_files=False))
    assert issued.folio == 1543
    assert [call.request.method for call in api.calls] == ["GET", "POST", "GET", "POST"]


def test_a_refused_new_token_is_a_rejection(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", **expired())
    with pytest.raises(RejectedBillerError) as caught:
        issue(adapter())
    assert "token recién emitido" in caught.value.message and caught.value.status == 401
    assert [call.request.method for call in api.calls] == ["GET", "POST", "GET", "POST"]


def test_an_outage_after_the_refresh_is_transient(api):
    mock_token(api)
    send = f"{QA}/api/v3/pos/dte/sendDTEJson.json"
    api.post(send, **expired())
    api.post(send, status=503, body="Service Unavailable")
    with pytest.raises(TransientBillerError) as caught:
        issue(adapter())
    assert "HTTP 503" in caught.value.message


@pytest.mark.parametrize("status, body, words", [
    (400, {"error": "invalid_client", "error_description": "The client credentials are invalid"},
     "no aceptó el client_id y client_secret de la conexión (invalid_client: The client credentials are invalid)"),
    (400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type parameter or parameter missing"},
     "no entrega tokens de tipo client_credentials"),
    (401, {"error": "access_denied", "error_description": "OAuth2 authentication required"}, "no aceptó el client_id y client_secret"),
    (403, "<html>Forbidden</html>", "rechazó el pedido de token (HTTP 403)"),
])
def test_a_refused_token_request_says_what_to_fix(api, status, body, words):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    api.get(f"{QA}/oauth/v2/token", status=status, **kwargs)
    with pytest.raises(RejectedBillerError) as caught:
        issue(adapter())
    assert words in caught.value.message and CLIENT_SECRET not in caught.value.message and len(api.calls) == 1


@pytest.mark.parametrize("kwargs", [{"status": 500, "body": "error"}, {"status": 200, "json": {"token_type": "bearer"}},
                                    {"body": requests.ConnectTimeout("connect timeout")}])
def test_an_unavailable_token_endpoint_is_transient(api, kwargs):
    api.get(f"{QA}/oauth/v2/token", **kwargs)
    with pytest.raises(TransientBillerError) as caught:
        issue(adapter())
    assert CLIENT_SECRET not in caught.value.message


@pytest.mark.parametrize("status, body, error, words", [
    (400, {"error": "invalid_request", "error_description": 'Se espera {"DteSend": {"Dte": [ ... ]}} con al menos un DTE.'},
     RejectedBillerError, "webFactura rechazó el documento (HTTP 400, invalid_request): Se espera"),
    (403, {"error": "access_denied", "error_description": "Forbidden"}, RejectedBillerError, "HTTP 403"),
    (422, {"message": "RUTRecep inválido"}, RejectedBillerError, "RUTRecep inválido"),
    (429, {"error": "rate_limited"}, TransientBillerError, "limitó las solicitudes (HTTP 429); Retry-After: 10"),
    (500, {"error": "server_error"}, TransientBillerError, "webFactura falló (HTTP 500)"),
    (502, "<html>Bad Gateway</html>", TransientBillerError, "HTTP 502"),
])
def test_every_failure_of_the_document_is_transient_or_rejected_in_spanish(api, status, body, error, words):
    mock_token(api)
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", status=status, headers={"Retry-After": "10"} if status == 429 else {}, **kwargs)
    with pytest.raises(error) as caught:
        issue(adapter())
    assert words in caught.value.message and caught.value.status == status
    assert TOKEN not in caught.value.message and len(api.calls) == 2  # a document is never posted twice but for a 401


def test_a_timeout_on_the_document_is_transient(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(TransientBillerError) as caught:
        issue(adapter())
    assert "api-qa.webfactura.cl" in caught.value.message


@pytest.mark.parametrize("estado, words", [
    (1, "webFactura rechazó el documento (error de esquema): "),
    (2, "webFactura rechazó el documento (error en los datos): Totales inconsistentes"),
    ("3", "webFactura rechazó el documento (folio duplicado): "),
])
def test_a_refused_document_is_rejected_with_the_glosa(api, estado, words):
    mock_token(api)
    answer = fixture("send_dte_response_data_error.json")
    answer["Documentos"][0]["EstadoDTE"] = estado
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=answer)
    with pytest.raises(RejectedBillerError) as caught:
        issue(adapter())
    assert caught.value.message.startswith(words)


@pytest.mark.parametrize("answer", [
    "<?php Warning: Undefined index",
    json.dumps(["DTE recibido"]),
    json.dumps({"EstadoEnvio": 0}),
    json.dumps({"Documentos": [{"EstadoDTE": 7, "Glosa": "En proceso"}]}),
    json.dumps({"Documentos": [{"EstadoDTE": 0, "Glosa": "DTE recibido"}]}),
])
def test_an_answer_that_does_not_say_what_was_issued_leaves_the_outcome_unknown(api, answer):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", body=answer, content_type="application/json")
    with pytest.raises(TransientBillerError):
        issue(adapter())


def test_a_single_result_object_is_read_too(api):
    mock_token(api)
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json={"EstadoDTE": "0", "Folio": "77", "TipoDTE": "39"})
    assert issue(adapter(download_files=False)).folio == 77


def test_a_different_total_at_webfactura_is_a_mismatch(api):
    mock_token(api)
    answer = fixture("send_dte_response_ok.json")
    answer["Documentos"][0]["MntTotal"] = 36950
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=answer)
    with pytest.raises(BillerMismatch) as caught:
        issue(adapter(download_files=False))
    assert "$36.950" in caught.value.message and "$36.960" in caught.value.message


def test_files_that_cannot_be_downloaded_leave_the_document_issued(api):
    mock_token(api)
    answer = fixture("send_dte_response_ok.json")
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=answer)
    api.get(answer["Documentos"][0]["UrlXml"], status=404, json={"error": "not_found"})
    api.get(answer["Documentos"][0]["UrlPdf"], body=b"<html>login</html>")
    issued = issue(adapter())
    assert (issued.folio, issued.xml, issued.pdf) == (1543, b"", b"")


def test_links_to_another_site_are_neither_fetched_nor_kept(api):
    mock_token(api)
    answer = fixture("send_dte_response_ok.json")
    answer["Documentos"][0].update(UrlXml="https://169.254.169.254/latest/meta-data", UrlPdf="https://evil.example/x.pdf")
    api.post(f"{QA}/api/v3/pos/dte/sendDTEJson.json", json=answer)
    issued = issue(adapter())
    assert (issued.xml, issued.pdf, issued.pdf_url) == (b"", b"", "") and len(api.calls) == 2


@pytest.mark.parametrize("url, base, same", [
    ("https://api-qa.webfactura.cl/pdf/1.pdf", QA, True),
    ("https://archivos.webfactura.cl/pdf/1.pdf", PROD, True),
    ("https://webfactura.cl.evil.example/1.pdf", PROD, False),
    ("http://api.webfactura.cl/pdf/1.pdf", PROD, False),
    ("http://127.0.0.1:8123/pdf/1.pdf", "http://127.0.0.1:8123", True),
    ("http://10.0.0.1/pdf/1.pdf", "http://127.0.0.1:8123", False),
])
def test_same_site(url, base, same):
    assert same_site(url, base) is same


def test_missing_credentials_are_refused_before_any_request(api):
    wf = adapter()
    wf.connection.credentials = {"client_id": CLIENT_ID}
    with pytest.raises(RejectedBillerError) as caught:
        issue(wf)
    assert "client_secret" in caught.value.message and not api.calls


def test_declarations():
    wf = adapter()
    assert wf.beta and wf.can(Capability.TEST_CONNECTION) and not wf.can(Capability.LOOKUP_BY_REFERENCE)
    assert {f.name for f in wf.credentials_spec} == {"client_id", "client_secret"}
    assert [f.name for f in wf.credentials_spec if f.secret] == ["client_secret"]


def test_connection_test_reports_bad_credentials(api):
    api.get(f"{QA}/oauth/v2/token", status=400, json={"error": "invalid_client", "error_description": "The client credentials are invalid"})
    report = adapter().test_connection()
    assert not report.ok
    [oauth] = [item for item in report.items if item.label == "Credenciales OAuth"]
    assert oauth.ok is False and "client_id" in oauth.detail


# --- the pipeline, over real HTTP ------------------------------------------------------------------


def test_an_order_becomes_one_document_through_the_pipeline(account, simulator):
    simulator.reset()
    gateway = GatewayFactory(account=account, biller=sim_connection(account, simulator))
    payload = sample_order(number=8001)
    paid = int(Decimal(payload["total_price"]))

    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.READY, order.status_reason
    [document] = run_pending(order)

    order.refresh_from_db()
    assert order.status == OrderStatus.ISSUED
    assert (document.tipo_dte, document.folio, document.mnt_total, document.certification) == (39, 1, paid, True)
    assert b"<Folio>1</Folio>" in bytes(document.xml) and bytes(document.pdf).startswith(b"%PDF")
    assert Document.objects.filter(order=order).count() == 1 and issued_documents(simulator) == 1
