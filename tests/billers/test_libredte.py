"""The LibreDTE adapter at the transport (``responses``): each outgoing request as LibreDTE's code and docs
expect it (URL, ``X:<hash>`` Basic auth, query parameters, JSON body), each answer parsed, every error
mapped to what the merchant must do; and the biller contract on a small stateful LibreDTE built from the
package's fixtures (emitir keeps a temporary document, generar turns it into an issued one)."""
import base64
import dataclasses
import datetime
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from django.core.exceptions import ValidationError
from lxml import etree

import billers.libredte
from billers.base import (
    BillerMismatch,
    BillerNeedsPerson,
    Checkpoint,
    IssueRequest,
    RejectedBillerError,
    TransientBillerError,
)
from billers.dte import credentials
from billers.dte.mapping import build_document
from billers.dte.sale import Emisor, Reference, Sale, SaleLine
from billers.dte.xml import build_dte_xml, verify_signatures
from billers.libredte.adapter import MAX_CANDIDATES, LibreDTEAdapter
from billers.registry import biller_adapter_for
from billmysales.integrations.spec import validate_connection_values
from tests.billers.contracts import FECHA, BillerContract, boleta_sale, factura_sale
from tests.billers.factories import BillerConnectionFactory

BASE = "https://libredte.example.cl"
API = f"{BASE}/api/dte"
HASH = "Wq3m9ZpL7vT2xK8cR4nB6yD1hF5jS0aE"
EMISOR = 76192083
AUTHORIZATION = "Basic " + base64.b64encode(f"X:{HASH}".encode()).decode()
CONTEXT = {"_contribuyente_rut": "76192083", "_contribuyente_certificacion": "1"}
FIXTURES = Path(billers.libredte.__file__).parent / "fixtures"
ERRORS = json.loads((FIXTURES / "errors.json").read_text())
EMITIR = f"{API}/documentos/emitir"
GENERAR = f"{API}/documentos/generar"
BUSCAR = f"{API}/dte_emitidos/buscar/{EMISOR}"
TMP_BUSCAR = f"{API}/dte_tmps/buscar/{EMISOR}"


def fixture(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def make_connection(account, environment="certification", **config):
    return BillerConnectionFactory(
        account=account, name="LibreDTE", provider="libredte", environment=environment, emisor_rut="76192083-9",
        emisor_razon_social="Empresa Demo SpA", credentials={"api_hash": HASH}, config={"base_url": BASE, **config},
    )


def request_for(adapter, sale: Sale | None = None, reference: str = "bms-1-1-F1") -> IssueRequest:
    sale = sale or boleta_sale()
    return IssueRequest(sale=sale, reference=reference, fecha=FECHA, prepared=adapter.check(sale, fecha=FECHA))


def query(call) -> dict:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def path(call) -> str:
    return urlsplit(call.request.url).path


def body(call):
    return json.loads(call.request.body)


def with_reference(document: dict, reference: str, as_text: bool = False) -> dict:
    extra = {"billmysales": {"referencia": reference}}
    return {**document, "extra": json.dumps(extra) if as_text else extra}


class FakeLibreDTE:
    """LibreDTE as the adapter sees it, answering from the fixtures: emitir keeps a temporary document,
    generar issues it (numbering folios, keeping ``extra``) and deletes it, buscar and info find them.
    ``issued`` holds what generar issued, including documents whose answer was lost."""

    def __init__(self, mock: responses.RequestsMock):
        self.tmps: dict[str, dict] = {}
        self.issued: list[dict] = []
        self.faults: dict[str, list] = {"emitir": [], "generar": []}
        mock.add_callback(responses.POST, EMITIR, callback=self.emitir)
        mock.add_callback(responses.POST, GENERAR, callback=self.generar)
        mock.add_callback(responses.POST, BUSCAR, callback=self.buscar)
        mock.add_callback(responses.GET, re.compile(rf"{API}/dte_emitidos/info/(\d+)/(\d+)/{EMISOR}"), callback=self.info)
        mock.add_callback(responses.POST, TMP_BUSCAR, callback=self.tmp_buscar)
        mock.add_callback(responses.GET, re.compile(rf"{API}/dte_tmps/info/\d+/\d+/(\w+)/{EMISOR}"), callback=self.tmp_info)

    def fail_next(self, step: str, status: int, message: str) -> None:
        self.faults[step].append((status, message))

    def lose_next_generar(self) -> None:
        self.faults["generar"].append("lost")

    @staticmethod
    def _answer(status: int, data) -> tuple:
        return status, {"Content-Type": "application/json"}, json.dumps(data)

    @staticmethod
    def _check(request) -> None:
        """Every call authenticates as ``X:<hash>`` and names the company and the environment."""
        assert request.headers["Authorization"] == AUTHORIZATION
        assert {k: v for k, v in parse_qsl(urlsplit(request.url).query) if k.startswith("_")} == CONTEXT

    def emitir(self, request):
        self._check(request)
        if self.faults["emitir"]:
            return self._answer(*self.faults["emitir"].pop(0))
        dte = json.loads(request.body)
        tipo = dte["Encabezado"]["IdDoc"]["TipoDTE"]
        codigo = hashlib.md5(f"{len(self.tmps)}-{request.body}".encode()).hexdigest()
        tmp = {**fixture(f"emitir_{tipo}"), "codigo": codigo}
        self.tmps[codigo] = {**fixture(f"dte_tmps_info_{tipo}"), **tmp, "fecha": dte["Encabezado"]["IdDoc"]["FchEmis"],
                             "extra": dte["LibreDTE"]["extra"]}
        return self._answer(200, tmp)

    def generar(self, request):
        self._check(request)
        fault = self.faults["generar"].pop(0) if self.faults["generar"] else None
        if isinstance(fault, tuple):
            return self._answer(*fault)
        tmp = self.tmps.pop(json.loads(request.body)["codigo"], None)
        if tmp is None:
            return self._answer(404, ERRORS["404_temporal"])
        issued = {**fixture(f"generar_{tmp['dte']}"), "folio": len(self.issued) + 1, "fecha": tmp["fecha"],
                  "extra": json.dumps(tmp["extra"])}
        self.issued.append(issued)
        if fault == "lost":
            raise requests.ConnectionError("Connection reset by peer")
        return self._answer(200, issued)

    def buscar(self, request):
        self._check(request)
        f = json.loads(request.body)
        rows = [{**fixture(f"dte_emitidos_buscar_{d['dte']}")[0], "folio": d["folio"], "fecha": d["fecha"]}
                for d in reversed(self.issued)
                if d["dte"] == f["dte"] and d["fecha"] == f["fecha"] and f["total_desde"] <= d["total"] <= f["total_hasta"]]
        return self._answer(200, rows[:f["limit"]]) if rows else self._answer(404, ERRORS["404_buscar"])

    def info(self, request):
        self._check(request)
        dte, folio = (int(x) for x in re.search(r"/info/(\d+)/(\d+)/", request.url).groups())
        for d in self.issued:
            if (d["dte"], d["folio"]) == (dte, folio):
                return self._answer(200, {**fixture(f"dte_emitidos_info_{dte}"), **d, "extra": json.loads(d["extra"])})
        return self._answer(404, f"No existe el documento solicitado T{dte}F{folio}.")

    def tmp_buscar(self, request):
        self._check(request)
        return self._answer(200, [{**fixture(f"dte_tmps_buscar_{t['dte']}")[0], "codigo": t["codigo"]} for t in self.tmps.values()])

    def tmp_info(self, request):
        self._check(request)
        tmp = self.tmps.get(re.search(r"/info/\d+/\d+/(\w+)/", request.url).group(1))
        return self._answer(200, tmp) if tmp else self._answer(404, "No existe el documento temporal solicitado.")


class TestLibreDTEContract(BillerContract):
    provider = "libredte"
    multi_step = True

    @pytest.fixture(autouse=True)
    def libredte(self):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self.fake = FakeLibreDTE(mock)
            yield self.fake

    def make_connection(self, account):
        return make_connection(account)

    def arrange_transient(self, connection):
        self.fake.fail_next("emitir", 503, "Service Unavailable")

    def arrange_rejection(self, connection):
        self.fake.fail_next("emitir", 400, ERRORS["400"])

    def arrange_lost_answer(self, connection):
        self.fake.lose_next_generar()

    def arrange_crash_after_first_step(self, connection):
        self.fake.fail_next("generar", 503, "Service Unavailable")

    def issued_count(self, connection) -> int:
        return len(self.fake.issued)

    def test_a_lost_answer_is_reconciled_once_and_never_issued_again(self, connection):
        self.fake.lose_next_generar()
        adapter = biller_adapter_for(connection)
        checkpoint = Checkpoint()
        with pytest.raises(TransientBillerError):
            adapter.issue(request_for(adapter), checkpoint)
        found = adapter.find_by_reference("bms-1-1-F1", checkpoint)
        assert (found.tipo_dte, found.folio, found.total) == (39, 1, 36960)
        assert len(self.fake.issued) == 1 and self.fake.tmps == {}


@pytest.fixture
def mock():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def connection(account):
    return make_connection(account)


@pytest.fixture
def adapter(connection):
    return biller_adapter_for(connection)


def add_emitir(mock, tipo: int = 39, **overrides):
    mock.add(responses.POST, EMITIR, json={**fixture(f"emitir_{tipo}"), **overrides})


def add_generar(mock, tipo: int = 39, reference: str = "bms-1-1-F1", **overrides):
    mock.add(responses.POST, GENERAR, json={**with_reference(fixture(f"generar_{tipo}"), reference, as_text=True), **overrides})


def recorded(mock) -> tuple[Checkpoint, list]:
    """A checkpoint whose saves record how many requests had been made at the time."""
    saves = []
    return Checkpoint(saver=lambda data: saves.append((len(mock.calls), data))), saves


# --- issuing: what is sent, what is read ---------------------------------------------------------------


def test_a_boleta_is_emitted_then_generated_as_libredte_documents_it(mock, adapter):
    add_emitir(mock)
    add_generar(mock)
    checkpoint, saves = recorded(mock)

    issued = adapter.issue(request_for(adapter), checkpoint)

    emitir, generar = mock.calls
    assert (emitir.request.method, path(emitir)) == ("POST", "/api/dte/documentos/emitir")
    assert emitir.request.headers["Authorization"] == AUTHORIZATION
    assert emitir.request.headers["Content-Type"] == "application/json"
    assert query(emitir) == {**CONTEXT, "normalizar": "1", "formato": "json", "links": "0", "email": "0"}
    assert body(emitir) == fixture("emitir_request_39")
    assert (generar.request.method, path(generar)) == ("POST", "/api/dte/documentos/generar")
    assert generar.request.headers["Authorization"] == AUTHORIZATION
    assert query(generar) == {**CONTEXT, "email": "0", "links": "0"}
    assert body(generar) == fixture("emitir_39")
    # The temporary document was saved (committed) before generar was asked for.
    assert saves[1] == (1, {"dte": 39, "fecha": "2026-11-25", "receptor": 66666666, "total": 36960,
                            "codigo": fixture("emitir_39")["codigo"], "folio": None})
    assert saves[-1][1]["folio"] == 143
    assert (issued.tipo_dte, issued.folio, issued.fecha) == (39, 143, datetime.date(2026, 11, 25))
    assert issued.totals == {"MntTotal": 36960, "MntNeto": 31059, "IVA": 5901}
    assert (issued.biller_document_id, issued.sii_track_id, issued.sii_status) == ("T39F143", "", "not_sent")


def test_a_factura_sent_to_the_sii_carries_its_track_id(mock, adapter):
    add_emitir(mock, 33)
    add_generar(mock, 33)

    issued = adapter.issue(request_for(adapter, factura_sale()), Checkpoint())

    assert body(mock.calls[0]) == fixture("emitir_request_33")
    assert issued.totals == {"MntTotal": 54990, "MntNeto": 46210, "IVA": 8780, "TasaIVA": 19}
    assert (issued.tipo_dte, issued.folio, issued.sii_track_id, issued.sii_status) == (33, 87, "3658843314", "sent")


@pytest.mark.parametrize("environment, config, expected", [
    ("certification", {}, {"email": "0", "links": "0"}),
    ("production", {"email_receptor": True, "sii_intentos": 0, "sii_gzip": "1"},
     {"email": "1", "links": "0", "retry": "0", "gzip": "1"}),
    ("certification", {"sii_intentos": 3, "sii_gzip": "0"}, {"email": "0", "links": "0", "retry": "3", "gzip": "0"}),
])
def test_generar_follows_the_connection_settings(mock, account, environment, config, expected):
    adapter = biller_adapter_for(make_connection(account, environment, **config))
    add_emitir(mock)
    add_generar(mock)

    adapter.issue(request_for(adapter), Checkpoint())

    certificacion = "1" if environment == "certification" else "0"
    for call in mock.calls:
        assert query(call)["_contribuyente_certificacion"] == certificacion
    assert query(mock.calls[1]) == {**CONTEXT, "_contribuyente_certificacion": certificacion, **expected}


def test_the_default_server_is_libredte_cl(mock, account):
    connection = make_connection(account)
    connection.config = {}
    adapter = biller_adapter_for(connection)
    mock.add(responses.POST, "https://libredte.cl/api/dte/documentos/emitir", json=fixture("emitir_39"))
    mock.add(responses.POST, "https://libredte.cl/api/dte/documentos/generar", json=fixture("generar_39"))

    assert adapter.issue(request_for(adapter), Checkpoint()).folio == 143


def test_credentials_never_leave_over_plain_http(mock, account):
    adapter = biller_adapter_for(make_connection(account, base_url="http://libredte.example.cl"))
    with pytest.raises(RejectedBillerError) as caught:
        adapter.issue(request_for(adapter), Checkpoint())
    assert "https" in caught.value.message and HASH not in caught.value.message
    assert len(mock.calls) == 0


# --- errors: what the merchant must do ---------------------------------------------------------------------

ERROR_CASES = [
    pytest.param("emitir", 401, ERRORS["401"], RejectedBillerError, "no aceptó el hash de usuario", id="401-hash"),
    pytest.param("emitir", 403, ERRORS["403"], RejectedBillerError, "Pida al administrador de la empresa", id="403-user"),
    pytest.param("emitir", 403, ERRORS["403_tipo"], RejectedBillerError, "No está habilitado en LibreDTE el tipo de documento",
                 id="403-type"),
    pytest.param("emitir", 404, ERRORS["404_emitir"], RejectedBillerError, "RUT 76192083-9 no está registrada en LibreDTE",
                 id="404-company"),
    pytest.param("emitir", 400, ERRORS["400"], RejectedBillerError,
                 "LibreDTE rechazó el documento: Su configuración no permite emitir con una fecha más antigua que 90 días",
                 id="400"),
    pytest.param("emitir", 507, "No fue posible guardar el DTE temporal", TransientBillerError, "HTTP 507", id="507"),
    pytest.param("emitir", 429, "Too Many Requests", TransientBillerError, "HTTP 429", id="429"),
    pytest.param("generar", 506, ERRORS["506"], RejectedBillerError,
                 "firma electrónica (certificado digital) vigente para la empresa RUT 76192083-9", id="506-certificate"),
    pytest.param("generar", 508, ERRORS["508"], RejectedBillerError,
                 "cargue folios para boleta electrónica (39) en LibreDTE", id="508-folios"),
    pytest.param("generar", 510, ERRORS["510"], BillerNeedsPerson, "saltó un folio, que debe anularse en el SII", id="510-burnt"),
    pytest.param("generar", 409, ERRORS["409"], TransientBillerError, "folio ya usado", id="409"),
    pytest.param("generar", 500, "Error interno", TransientBillerError, "LibreDTE falló (HTTP 500): Error interno", id="500"),
    pytest.param("generar", 502, "<html><body>Bad gateway</body></html>", TransientBillerError, "HTTP 502", id="502-html"),
    pytest.param("generar", 404, ERRORS["404_emitir"], RejectedBillerError, "no está registrada en LibreDTE",
                 id="404-company-at-generar"),
]


@pytest.mark.parametrize("step, status, message, error, says", ERROR_CASES)
def test_libredte_errors_say_what_to_do(mock, adapter, step, status, message, error, says):
    answer = {"json": message} if not message.startswith("<") else {"body": message}
    if step == "emitir":
        mock.add(responses.POST, EMITIR, status=status, **answer)
    else:
        add_emitir(mock)
        mock.add(responses.POST, GENERAR, status=status, **answer)

    with pytest.raises(error) as caught:
        adapter.issue(request_for(adapter), Checkpoint())

    assert says in caught.value.message
    assert caught.value.status == status
    assert HASH not in caught.value.message and "](" not in caught.value.message and "<br" not in caught.value.message


def test_libredte_markdown_links_are_kept_readable(mock, adapter):
    add_emitir(mock)
    mock.add(responses.POST, GENERAR, status=506, json=ERRORS["506"])
    with pytest.raises(RejectedBillerError) as caught:
        adapter.issue(request_for(adapter), Checkpoint())
    assert "subir una firma electrónica vigente (https://libredte.cl/dte/admin/firma_electronicas/agregar)" in caught.value.message


@pytest.mark.parametrize("failure", [requests.ConnectTimeout("connect"), requests.ReadTimeout("read"),
                                     requests.ConnectionError("reset")])
def test_a_generar_that_does_not_answer_is_transient_and_keeps_the_temporary_document(mock, adapter, failure):
    add_emitir(mock)
    mock.add(responses.POST, GENERAR, body=failure)
    checkpoint = Checkpoint()
    with pytest.raises(TransientBillerError) as caught:
        adapter.issue(request_for(adapter), checkpoint)
    assert "libredte.example.cl" in caught.value.message
    assert checkpoint.get("codigo") == fixture("emitir_39")["codigo"]


@pytest.mark.parametrize("step, answer", [
    ("emitir", {"body": "<html>Warning: pg_connect()</html>"}),
    ("emitir", {"json": {"emisor": EMISOR, "dte": 39}}),
    ("emitir", {"json": ["no", "un", "objeto"]}),
    ("generar", {"json": {**fixture("generar_39"), "folio": "sin folio"}}),
    ("generar", {"json": {**fixture("generar_39"), "fecha": None}}),
])
def test_unreadable_answers_are_transient(mock, adapter, step, answer):
    if step == "emitir":
        mock.add(responses.POST, EMITIR, **answer)
    else:
        add_emitir(mock)
        mock.add(responses.POST, GENERAR, **answer)
    with pytest.raises(TransientBillerError):
        adapter.issue(request_for(adapter), Checkpoint())


def credit_note_for_boleta() -> Sale:
    return Sale(
        tipo_dte=61, lines=(SaleLine(name="Polera algodón orgánico", quantity=Decimal(1), unit_price=Decimal(12990)),),
        paid_total=12990, references=(Reference(tipo_doc=39, folio=143, fecha="2026-11-25", cod_ref=1, razon="Anula boleta"),),
    )


@pytest.mark.parametrize("message, error, says", [
    (ERRORS["400_boleta_no_enviada"], RejectedBillerError, "no fue enviado al SII. En LibreDTE Edición Comunidad las boletas "
                                                           "se envían al SII solo a través de API Gateway"),
    (ERRORS["400_sin_estado_final"], TransientBillerError, "espera que el SII termine de validar el documento referenciado"),
    (ERRORS["400_rechazado"], RejectedBillerError, "fue rechazado por el SII"),
])
def test_a_credit_note_libredte_will_not_reference_says_why(mock, adapter, message, error, says):
    mock.add(responses.POST, EMITIR, status=400, json=message)
    with pytest.raises(error) as caught:
        adapter.issue(request_for(adapter, credit_note_for_boleta()), Checkpoint())
    assert says in caught.value.message and message.split(".")[0] in caught.value.message
    sent = body(mock.calls[0])
    assert sent["Referencia"] == [{"NroLinRef": 1, "TpoDocRef": "39", "FolioRef": "143", "FchRef": "2026-11-25", "CodRef": 1,
                                   "RazonRef": "Anula boleta"}]


# --- LibreDTE issuing something else ---------------------------------------------------------------------


def test_a_type_libredte_would_change_fails_before_generar_and_leaves_nothing(mock, adapter):
    changed = {**fixture("emitir_33"), "dte": 34}
    mock.add(responses.POST, EMITIR, json=changed)
    info = f"{API}/dte_tmps/info/{changed['receptor']}/34/{changed['codigo']}/{EMISOR}"
    mock.add(responses.GET, info, json={**fixture("dte_tmps_info_33"), "dte": 34, "total": 46210})
    mock.add(responses.GET, info.replace("/info/", "/eliminar/"), json=True)

    with pytest.raises(BillerMismatch) as caught:
        adapter.issue(request_for(adapter, factura_sale()), Checkpoint())

    message = caught.value.message
    assert "factura no afecta o exenta electrónica (34) por $46.210" in message
    assert "se pidió factura electrónica (33) por $54.990" in message and "No se generó ningún documento" in message
    assert [path(call) for call in mock.calls][-1].startswith("/api/dte/dte_tmps/eliminar/")
    assert all("generar" not in path(call) for call in mock.calls)


def test_totals_libredte_computed_differently_fail_with_both_figures(mock, adapter):
    add_emitir(mock)
    add_generar(mock, total=36961, iva=5902)
    checkpoint = Checkpoint()

    with pytest.raises(BillerMismatch) as caught:
        adapter.issue(request_for(adapter), checkpoint)

    assert "boleta electrónica (39) N° 143 por $36.961" in caught.value.message
    assert "se pidió boleta electrónica (39) por $36.960" in caught.value.message
    assert checkpoint.get("folio") == 143


# --- the temporary document: lost answers, replaced documents --------------------------------------------


SAVED = {"dte": 39, "fecha": "2026-11-25", "receptor": 66666666, "total": 36960, "codigo": fixture("emitir_39")["codigo"],
         "folio": None}


def test_a_retry_continues_with_generar_on_the_saved_codigo(mock, adapter):
    add_generar(mock)
    issued = adapter.issue(request_for(adapter), Checkpoint(SAVED))
    assert [path(call) for call in mock.calls] == ["/api/dte/documentos/generar"]
    assert body(mock.calls[0])["codigo"] == SAVED["codigo"] and issued.folio == 143


def test_generar_on_a_temporary_document_already_generated_finds_the_document(mock, adapter):
    mock.add(responses.POST, GENERAR, status=404, json=ERRORS["404_temporal"])
    mock.add(responses.POST, BUSCAR, json=fixture("dte_emitidos_buscar_39"))
    mock.add(responses.GET, f"{API}/dte_emitidos/info/39/143/{EMISOR}", json=fixture("dte_emitidos_info_39"))

    issued = adapter.issue(request_for(adapter), Checkpoint(SAVED))

    assert (issued.tipo_dte, issued.folio, issued.total) == (39, 143, 36960)
    assert body(mock.calls[1]) == {"dte": 39, "fecha": "2026-11-25", "receptor": 66666666, "total_desde": 36591,
                                   "total_hasta": 37329, "limit": MAX_CANDIDATES + 1}
    assert not any(path(call).endswith("/emitir") for call in mock.calls)


def test_a_temporary_document_gone_with_nothing_issued_is_emitted_again(mock, adapter):
    mock.add(responses.POST, GENERAR, status=404, json=ERRORS["404_temporal"])
    mock.add(responses.POST, BUSCAR, status=404, json=ERRORS["404_buscar"])
    add_emitir(mock, codigo="f" * 32)
    add_generar(mock)
    checkpoint = Checkpoint(SAVED)

    issued = adapter.issue(request_for(adapter), checkpoint)

    assert [path(call).rsplit("/", 2)[-2:] for call in mock.calls] == [
        ["documentos", "generar"], ["buscar", str(EMISOR)], ["documentos", "emitir"], ["documentos", "generar"]]
    assert body(mock.calls[3])["codigo"] == "f" * 32 and issued.folio == 143


def test_a_codigo_another_emission_reused_is_not_claimed(mock, account):
    # With our code kept out of the DTE, two identical boletas emitted in the same second share LibreDTE's
    # codigo; the other one's data replaced ours, so what generar issued carries its reference.
    adapter = biller_adapter_for(make_connection(account, referencia_en_dte=False))
    add_emitir(mock)
    add_generar(mock, reference="bms-1-2-F1")
    mock.add(responses.POST, BUSCAR, json=fixture("dte_emitidos_buscar_39"))
    mock.add(responses.GET, f"{API}/dte_emitidos/info/39/143/{EMISOR}",
             json=with_reference(fixture("dte_emitidos_info_39"), "bms-1-2-F1"))
    add_emitir(mock, codigo="e" * 32)
    add_generar(mock, folio=144)

    issued = adapter.issue(request_for(adapter), Checkpoint())

    assert issued.folio == 144
    assert "CdgIntRecep" not in body(mock.calls[0])["Encabezado"]["Receptor"]
    assert [path(call) for call in mock.calls] == [
        "/api/dte/documentos/emitir", "/api/dte/documentos/generar", f"/api/dte/dte_emitidos/buscar/{EMISOR}",
        f"/api/dte/dte_emitidos/info/39/143/{EMISOR}", "/api/dte/documentos/emitir", "/api/dte/documentos/generar"]
    assert body(mock.calls[5])["codigo"] == "e" * 32


def test_our_document_issued_by_the_other_emission_s_call_is_ours(mock, account):
    adapter = biller_adapter_for(make_connection(account, referencia_en_dte=False))
    add_emitir(mock)
    add_generar(mock, reference="bms-1-2-F1", folio=144)
    mock.add(responses.POST, BUSCAR, json=fixture("dte_emitidos_buscar_39"))
    mock.add(responses.GET, f"{API}/dte_emitidos/info/39/143/{EMISOR}", json=fixture("dte_emitidos_info_39"))

    issued = adapter.issue(request_for(adapter), Checkpoint())

    assert issued.folio == 143 and len(mock.calls) == 4


# --- find_by_reference ------------------------------------------------------------------------------------


def test_nothing_to_find_when_nothing_was_emitted(mock, adapter):
    assert adapter.find_by_reference("bms-1-1-F1", Checkpoint()) is None
    assert len(mock.calls) == 0


def test_a_saved_folio_is_read_back_directly(mock, adapter):
    mock.add(responses.GET, f"{API}/dte_emitidos/info/39/143/{EMISOR}", json=fixture("dte_emitidos_info_39"))
    found = adapter.find_by_reference("bms-1-1-F1", Checkpoint({**SAVED, "folio": 143}))
    assert (found.folio, found.totals, found.sii_status) == (143, {"MntTotal": 36960, "MntNeto": 31059, "IVA": 5901}, "not_sent")
    assert len(mock.calls) == 1 and query(mock.calls[0]) == CONTEXT


def test_documents_of_others_with_the_same_figures_are_not_ours(mock, adapter):
    rows = [{**fixture("dte_emitidos_buscar_39")[0], "folio": folio} for folio in (145, 144, 143)]
    mock.add(responses.POST, BUSCAR, json=rows)
    for folio, reference in ((145, "bms-1-9-F1"), (144, None), (143, "bms-1-1-F1")):
        info = {**fixture("dte_emitidos_info_39"), "folio": folio}
        mock.add(responses.GET, f"{API}/dte_emitidos/info/39/{folio}/{EMISOR}",
                 json=with_reference(info, reference) if reference else {**info, "extra": None})
    mock.add(responses.GET, f"{API}/dte_tmps/info/66666666/39/{SAVED['codigo']}/{EMISOR}", status=404,
             json="No existe el documento temporal solicitado.")

    assert adapter.find_by_reference("bms-1-1-F1", Checkpoint(SAVED)).folio == 143
    assert adapter.find_by_reference("bms-1-5-F1", checkpoint := Checkpoint(SAVED)) is None
    assert checkpoint.get("codigo") is None  # gone and nothing issued: the next issue emits again


def test_two_documents_carrying_our_reference_are_held_for_a_person(mock, adapter):
    rows = [{**fixture("dte_emitidos_buscar_39")[0], "folio": folio} for folio in (144, 143)]
    mock.add(responses.POST, BUSCAR, json=rows)
    for folio in (144, 143):
        mock.add(responses.GET, f"{API}/dte_emitidos/info/39/{folio}/{EMISOR}",
                 json=with_reference({**fixture("dte_emitidos_info_39"), "folio": folio}, "bms-1-1-F1"))
    with pytest.raises(BillerNeedsPerson) as caught:
        adapter.find_by_reference("bms-1-1-F1", Checkpoint(SAVED))
    assert "2 documentos emitidos con la referencia bms-1-1-F1 (folios 144, 143)" in caught.value.message


def test_too_many_look_alikes_are_held_rather_than_issued_again(mock, adapter):
    rows = [{**fixture("dte_emitidos_buscar_39")[0], "folio": 1000 + n} for n in range(MAX_CANDIDATES + 1)]
    mock.add(responses.POST, BUSCAR, json=rows)
    mock.add(responses.GET, re.compile(rf"{API}/dte_emitidos/info/39/\d+/{EMISOR}"),
             json=with_reference(fixture("dte_emitidos_info_39"), "bms-9-9-F1"))
    with pytest.raises(BillerNeedsPerson) as caught:
        adapter.find_by_reference("bms-1-1-F1", Checkpoint(SAVED))
    assert f"más de {MAX_CANDIDATES} documentos" in caught.value.message
    assert len([c for c in mock.calls if "/info/" in path(c)]) == MAX_CANDIDATES


def test_a_temporary_document_still_there_is_generated_by_the_retry(mock, adapter):
    mock.add(responses.POST, BUSCAR, status=404, json=ERRORS["404_buscar"])
    mock.add(responses.GET, f"{API}/dte_tmps/info/66666666/39/{SAVED['codigo']}/{EMISOR}", json=fixture("dte_tmps_info_39"))
    checkpoint = Checkpoint(SAVED)
    assert adapter.find_by_reference("bms-1-1-F1", checkpoint) is None
    assert checkpoint.get("codigo") == SAVED["codigo"]


INTENT = {key: SAVED[key] for key in ("dte", "fecha", "receptor", "total")}  # emitir's answer never arrived


def test_an_orphan_temporary_document_of_ours_is_reused_without_searching_the_issued_ones(mock, adapter):
    orphan = fixture("dte_tmps_buscar_39")[0]
    mock.add(responses.POST, TMP_BUSCAR, json=[{**orphan, "codigo": "a" * 32}, orphan])
    mock.add(responses.GET, f"{API}/dte_tmps/info/66666666/39/{'a' * 32}/{EMISOR}",
             json=with_reference(fixture("dte_tmps_info_39"), "bms-1-3-F1"))
    mock.add(responses.GET, f"{API}/dte_tmps/info/66666666/39/{orphan['codigo']}/{EMISOR}", json=fixture("dte_tmps_info_39"))
    checkpoint = Checkpoint(INTENT)

    assert adapter.find_by_reference("bms-1-1-F1", checkpoint) is None

    assert checkpoint.get("codigo") == orphan["codigo"]
    assert body(mock.calls[0]) == {"dte": 39, "fecha": "2026-11-25", "receptor": 66666666, "total_desde": 36591,
                                   "total_hasta": 37329, "limit": MAX_CANDIDATES + 1}
    # A temporary document is removed when generated: ours still there means nothing of ours was issued, so
    # the issued documents are not read (in a busy boleta store more look-alikes than the search reads would
    # hold the order for a person).
    assert [path(c) for c in mock.calls].count(urlsplit(BUSCAR).path) == 0


def test_without_our_temporary_document_the_issued_ones_are_searched(mock, adapter):
    # emitir's answer was lost and a person generated our temporary document in LibreDTE meanwhile.
    mock.add(responses.POST, TMP_BUSCAR, json=[])  # LibreDTE answers 200 with the list, empty when none matches
    mock.add(responses.POST, BUSCAR, json=[{**fixture("dte_emitidos_buscar_39")[0], "folio": 143}])
    mock.add(responses.GET, f"{API}/dte_emitidos/info/39/143/{EMISOR}",
             json=with_reference(fixture("dte_emitidos_info_39"), "bms-1-1-F1"))

    found = adapter.find_by_reference("bms-1-1-F1", Checkpoint(INTENT))

    assert found.folio == 143
    assert [path(c) for c in mock.calls] == [urlsplit(TMP_BUSCAR).path, urlsplit(BUSCAR).path, f"/api/dte/dte_emitidos/info/39/143/{EMISOR}"]


# --- files and SII status -----------------------------------------------------------------------------------


def test_the_pdf_is_libredte_s(mock, adapter):
    pdf = b"%PDF-1.4\n% LibreDTE\n"
    mock.add(responses.GET, f"{API}/dte_emitidos/pdf/39/143/{EMISOR}", body=pdf, content_type="application/pdf")
    assert adapter.fetch_pdf(tipo_dte=39, folio=143) == pdf
    assert query(mock.calls[0]) == CONTEXT and mock.calls[0].request.headers["Authorization"] == AUTHORIZATION


def test_a_pdf_that_is_not_one_is_transient(mock, adapter):
    mock.add(responses.GET, f"{API}/dte_emitidos/pdf/39/143/{EMISOR}", body=b"<html>login</html>")
    with pytest.raises(TransientBillerError):
        adapter.fetch_pdf(tipo_dte=39, folio=143)


def envio_boleta(dte_xml: bytes) -> bytes:
    sii = "http://www.sii.cl/SiiDte"
    root = etree.Element(f"{{{sii}}}EnvioBOLETA", nsmap={None: sii}, version="1.0")
    set_dte = etree.SubElement(root, f"{{{sii}}}SetDTE", ID="LibreDTE_SetDoc")
    etree.SubElement(set_dte, f"{{{sii}}}Caratula", version="1.0")
    set_dte.append(etree.fromstring(dte_xml))
    return etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)


def test_the_xml_is_the_signed_dte_out_of_libredte_s_envelope(mock, adapter):
    emisor = Emisor(rut="76192083-9", razon_social="Empresa Demo SpA", giro="Venta al por menor", address="Av. 1", comuna="Santiago")
    dte_xml = build_dte_xml(build_document(boleta_sale(), emisor=emisor, folio=143, fecha=FECHA),
                            signer=credentials.test_signer("76192083-9", "Empresa Demo SpA"))
    mock.add(responses.GET, f"{API}/dte_emitidos/xml/39/143/{EMISOR}", json=base64.b64encode(envio_boleta(dte_xml)).decode())

    xml = adapter.fetch_xml(tipo_dte=39, folio=143)

    root = etree.fromstring(xml)
    assert etree.QName(root).localname == "DTE" and root.findtext(".//{http://www.sii.cl/SiiDte}Folio") == "143"
    assert verify_signatures(xml) == []


@pytest.mark.parametrize("answer", ["no es base64!", base64.b64encode(b"<html>").decode()])
def test_an_unreadable_xml_is_transient(mock, adapter, answer):
    mock.add(responses.GET, f"{API}/dte_emitidos/xml/39/143/{EMISOR}", json=answer)
    with pytest.raises(TransientBillerError):
        adapter.fetch_xml(tipo_dte=39, folio=143)


INFO_33 = fixture("dte_emitidos_info_33")


@pytest.mark.parametrize("info, update, expected", [
    pytest.param(fixture("dte_emitidos_info_39"), None, ("not_sent", "solo a través de API Gateway"), id="boleta-not-sent"),
    pytest.param({**INFO_33, "track_id": None}, None, ("not_sent", "no lo envió al SII"), id="factura-not-sent"),
    pytest.param(INFO_33, fixture("actualizar_estado_rec"), ("sent", "REC - Envío Recibido (track id 3658843314)"), id="sent"),
    pytest.param(INFO_33, fixture("actualizar_estado_epr"), ("accepted", "EPR - Envío Procesado: DTE aceptado"), id="accepted"),
    pytest.param(INFO_33, {**fixture("actualizar_estado_epr"), "revision_estado": "RLV - DTE Aceptado con Reparos Leves",
                           "revision_detalle": None}, ("objections", "RLV - DTE Aceptado con Reparos Leves"), id="objections"),
    pytest.param(INFO_33, {**fixture("actualizar_estado_epr"), "revision_estado": "RCH - DTE Rechazado",
                           "revision_detalle": "(CRT-3-19) Fecha/Número Resolución Inválido"},
                 ("rejected", "RCH - DTE Rechazado: (CRT-3-19) Fecha/Número Resolución Inválido"), id="rejected"),
    pytest.param({**INFO_33, "revision_estado": "EPR - Envío Procesado", "revision_detalle": "DTE aceptado"}, None,
                 ("accepted", "DTE aceptado"), id="already-final"),
])
def test_sii_status_reads_libredte_and_asks_it_to_update_until_final(mock, adapter, info, update, expected):
    tipo, folio = info["dte"], info["folio"]
    mock.add(responses.GET, f"{API}/dte_emitidos/info/{tipo}/{folio}/{EMISOR}", json=info)
    if update is not None:
        mock.add(responses.GET, f"{API}/dte_emitidos/actualizar_estado/{tipo}/{folio}/{EMISOR}", json=update)

    status, detail = adapter.sii_status(tipo_dte=tipo, folio=folio)

    assert status == expected[0] and expected[1] in detail
    if update is not None:
        assert query(mock.calls[1]) == {**CONTEXT, "usarWebservice": "1"}
    assert len(mock.calls) == (2 if update is not None else 1)


def test_sii_status_of_a_document_libredte_does_not_have_is_a_rejection(mock, adapter):
    mock.add(responses.GET, f"{API}/dte_emitidos/info/39/9/{EMISOR}", status=404, json="No existe el documento solicitado T39F9.")
    with pytest.raises(RejectedBillerError):
        adapter.sii_status(tipo_dte=39, folio=9)


# --- the connection test ----------------------------------------------------------------------------------


def add_company_check(mock, **answer):
    mock.add(responses.POST, TMP_BUSCAR, **(answer or {"json": []}))


def add_folios(mock, tipo: int, **answer):
    mock.add(responses.GET, f"{API}/admin/dte_folios/info/{tipo}/{EMISOR}", **answer)


def test_connection_reports_the_company_and_each_document_type(mock, adapter):
    add_company_check(mock)
    mock.add(responses.GET, f"{API}/contribuyentes/config/{EMISOR}", json=fixture("contribuyentes_config"))
    add_folios(mock, 39, json=fixture("dte_folios_info_39"))
    add_folios(mock, 33, json={**fixture("dte_folios_info_39"), "dte": 33, "disponibles": 0, "siguiente": 101})
    add_folios(mock, 34, status=404, json="No existe el mantenedor de folios para el tipo de DTE 34.")
    add_folios(mock, 61, json={**fixture("dte_folios_info_39"), "dte": 61, "disponibles": "12", "siguiente": "9"})

    report = adapter.test_connection()

    items = {item.label: (item.ok, item.detail) for item in report.items}
    assert items["Hash de usuario y empresa"][0] is True
    assert items["Boleta electrónica (39)"] == (True, "857 folios disponibles (siguiente: 144). LibreDTE no informa por su API "
                                                      "si el CAF sigue vigente.")
    assert items["Boleta exenta electrónica (41)"][0] is False and "No está habilitado" in items["Boleta exenta electrónica (41)"][1]
    assert items["Factura electrónica (33)"][0] is False and "cargue folios para factura electrónica (33)" in items["Factura electrónica (33)"][1]
    assert items["Factura no afecta o exenta electrónica (34)"][0] is False
    assert items["Nota de crédito electrónica (61)"][0] is True
    assert items["Firma electrónica"][0] is None
    assert report.ok is False
    assert body(mock.calls[0]) == {"limit": 1} and mock.calls[0].request.headers["Authorization"] == AUTHORIZATION
    assert all(query(call) == CONTEXT for call in mock.calls)
    assert not any("/41/" in path(call) for call in mock.calls)


def test_connection_says_plainly_what_libredte_would_not_tell(mock, account):
    adapter = biller_adapter_for(make_connection(account, base_url="https://facturas.mitienda.cl"))
    mock.add(responses.POST, f"https://facturas.mitienda.cl/api/dte/dte_tmps/buscar/{EMISOR}", json=[])
    mock.add(responses.GET, f"https://facturas.mitienda.cl/api/dte/contribuyentes/config/{EMISOR}", status=401,
             json=ERRORS["401_admin"])
    mock.add(responses.GET, re.compile(r"https://facturas\.mitienda\.cl/api/dte/admin/dte_folios/info/.*"), status=404,
             json="Recurso /api/dte/admin/dte_folios/info/39/76192083 no encontrado.")

    report = adapter.test_connection()

    items = {item.label: (item.ok, item.detail) for item in report.items}
    assert items["Tipos de documento habilitados"] == (
        None, "No se pudieron consultar (solo un administrador de la empresa en LibreDTE puede hacerlo): " + ERRORS["401_admin"])
    assert items["Boleta electrónica (39)"][0] is None and "no encontrado" in items["Boleta electrónica (39)"][1]
    assert items["Envío de boletas al SII"][0] is None and "API Gateway" in items["Envío de boletas al SII"][1]
    assert report.ok is True


@pytest.mark.parametrize("answer, ok, says", [
    ({"status": 401, "json": ERRORS["401"]}, False, "no aceptó el hash de usuario"),
    ({"status": 404, "json": ERRORS["404_emisor"]}, False, "no está registrada en LibreDTE"),
    ({"status": 403, "json": ERRORS["403"]}, False, "Pida al administrador"),
    ({"body": requests.ConnectionError("refused")}, None, "No se pudo consultar LibreDTE"),
])
def test_connection_stops_at_the_hash_or_the_company(mock, adapter, answer, ok, says):
    add_company_check(mock, **answer)
    report = adapter.test_connection()
    [item] = report.items
    assert item.ok is ok and says in item.detail and HASH not in item.detail


# --- declarations -------------------------------------------------------------------------------------------


def test_the_hash_and_the_server_are_validated(account):
    with pytest.raises(ValidationError) as caught:
        validate_connection_values(LibreDTEAdapter, credentials={"api_hash": "corto"}, config={"base_url": "http://libredte.cl"})
    assert set(caught.value.message_dict) == {"credentials.api_hash", "config.base_url"}
    credentials, config = validate_connection_values(LibreDTEAdapter, credentials={"api_hash": HASH}, config={})
    assert credentials == {"api_hash": HASH} and config == {}


def test_a_connection_without_a_usable_hash_is_refused_before_any_call(mock, account):
    connection = make_connection(account)
    connection.credentials = {}
    adapter = biller_adapter_for(connection)
    with pytest.raises(RejectedBillerError) as caught:
        adapter.issue(request_for(adapter), Checkpoint())
    assert "hash de usuario" in caught.value.message and len(mock.calls) == 0


def test_our_reference_goes_in_the_receptor_code_unless_turned_off(account):
    adapter = biller_adapter_for(make_connection(account))
    long_reference = "bms-12345-123456789-NC12"
    sent = adapter.build_payload(request_for(adapter, reference=long_reference), adapter.check(boleta_sale(), fecha=FECHA))
    code = sent.body["Encabezado"]["Receptor"]["CdgIntRecep"]
    assert len(code) == 20 and code.startswith("bms") and code != long_reference[:20]
    assert sent.body["LibreDTE"] == {"extra": {"billmysales": {"referencia": long_reference}}}
    turned_off = biller_adapter_for(make_connection(account, referencia_en_dte=False))
    sent = turned_off.build_payload(request_for(turned_off), turned_off.check(boleta_sale(), fecha=FECHA))
    assert "CdgIntRecep" not in sent.body["Encabezado"]["Receptor"]


def test_a_factura_is_looked_up_by_our_code_in_its_xml(mock, adapter):
    mock.add(responses.POST, BUSCAR, json=fixture("dte_emitidos_buscar_33"))
    mock.add(responses.GET, f"{API}/dte_emitidos/info/33/87/{EMISOR}", json=fixture("dte_emitidos_info_33"))
    saved = {"dte": 33, "fecha": "2026-11-25", "receptor": 76086428, "total": 54990, "codigo": "c" * 32, "folio": None}

    found = adapter.find_by_reference("bms-1-1-F1", Checkpoint(saved))

    assert (found.tipo_dte, found.folio, found.sii_track_id) == (33, 87, "3658843314")
    assert body(mock.calls[0]) == {"dte": 33, "fecha": "2026-11-25", "receptor": 76086428, "total_desde": 54441,
                                   "total_hasta": 55539, "limit": MAX_CANDIDATES + 1,
                                   "xml": {"Encabezado/Receptor/CdgIntRecep": "bms-1-1-F1"}}


def test_the_emitted_document_leaves_libredte_to_number_date_and_total_it(adapter):
    prepared = adapter.check(factura_sale(), fecha=FECHA)
    sent = adapter.build_payload(dataclasses.replace(request_for(adapter, factura_sale()), fecha=datetime.date(2026, 11, 26)),
                                 prepared)
    assert "Folio" not in sent.body["Encabezado"]["IdDoc"] and "Totales" not in sent.body["Encabezado"]
    assert sent.body["Encabezado"]["IdDoc"]["FchEmis"] == "2026-11-26"
    assert sent.body["Encabezado"]["Emisor"] == {"RUTEmisor": "76192083-9"}
    assert sent.body["Encabezado"]["IdDoc"]["MntBruto"] == 1
    assert (sent.tipo_dte, sent.total, sent.receptor) == (33, 54990, 76086428)
