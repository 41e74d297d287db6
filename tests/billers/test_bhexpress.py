"""BHEXPRESS (boletas de honorarios): the biller contract over the simulator, the sale → BHE mapping with
its retention, every outgoing request and failure at the transport (``responses``), reconciliation,
voiding, and one order through the pipeline to a ``Document`` over real HTTP."""
import dataclasses
import datetime
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from django.utils import timezone

from billers.base import BillerMismatch, BillerNeedsPerson, Capability, Checkpoint, IssueRequest, RejectedBillerError, TransientBillerError
from billers.bhexpress.mapping import allocate
from billers.bhexpress.retention import bruto_for, retention, retention_rate
from billers.dte.errors import MappingRefused
from billers.dte.sale import Receptor, Reference, Sale, SaleLine
from billers.dte.types import BOLETA_HONORARIOS
from billers.models import BillerConnection
from billers.registry import biller_adapter_for
from billmysales.integrations.errors import UnsupportedFeature
from gateways import services
from gateways.models import Document, DocumentKind, EmissionAttempt, OrderStatus, VoidStatus
from gateways.services.documents import document_files_fetch
from simulators.bhexpress import DEFAULT_EMISOR, DEFAULT_TOKEN, BHExpressSimulator
from sources.shopify.samples import sample_order
from tests.billers.contracts import FECHA, BillerContract, boleta_sale, factura_sale
from tests.billers.factories import BillerConnectionFactory
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending, with_refund

FIXTURES = Path(__file__).resolve().parents[2] / "billers" / "bhexpress" / "fixtures"
API = "https://app.bhexpress.cl/api/v1"
TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def simulator():
    with BHExpressSimulator() as sim:
        yield sim


def sim_connection(account, sim, **config) -> BillerConnection:
    return BillerConnectionFactory(
        account=account, name="BHExpress", provider="bhexpress", emisor_rut=DEFAULT_EMISOR, emisor_razon_social="Profesional Demo",
        emisor_giro="Asesorías", emisor_acteco=None, credentials={"api_token": DEFAULT_TOKEN}, config={"base_url": sim.url, **config},
    )


def issued_boletas(sim) -> int:
    return sim.state()["emisores"][DEFAULT_EMISOR]["boletas"]


class TestBHExpressContract(BillerContract):
    provider = "bhexpress"
    # The checkpoint records what was posted before each emitir, so a retry looks the boleta up first.
    multi_step = True

    @pytest.fixture(autouse=True)
    def _simulator(self, simulator):
        simulator.reset()
        self.sim = simulator

    def make_connection(self, account):
        return sim_connection(account, self.sim)

    def arrange_transient(self, connection):
        self.sim.faults.add(route="emitir", kind="status", status=503, times=1)

    def arrange_rejection(self, connection):
        body = {"message": "RUTRecep 66666666-7 inválido: se espera un RUT con dígito verificador.", "code": 400}
        self.sim.faults.add(route="emitir", kind="status", status=400, body=body)

    def arrange_lost_answer(self, connection):
        self.sim.faults.add(route="emitir", kind="lost_answer", times=1)

    def arrange_crash_after_first_step(self, connection):
        # The boleta is issued and the answer lost: the resumed issue must find it, not post it again.
        self.sim.faults.add(route="emitir", kind="lost_answer", times=1)

    def issued_count(self, connection) -> int:
        return issued_boletas(self.sim)

    def test_issued_boleta_is_a_bhe_with_the_years_retention(self, connection):
        adapter = biller_adapter_for(connection)
        issued = adapter.issue(self.request(adapter), Checkpoint())
        # 36.960 × 15,25 % = 5.636,4 → 5.636
        assert (issued.tipo_dte, issued.folio, issued.fecha) == (BOLETA_HONORARIOS, 1, FECHA)
        assert issued.totals == {"MntBruto": 36960, "MntRetencion": 5636, "MntNeto": 31324, "MntTotal": 36960}

    def test_receptor_withholding_grosses_up_so_the_buyer_pays_the_liquido(self, connection):
        connection.config = {**connection.config, "retention": "receptor"}
        adapter = biller_adapter_for(connection)
        issued = adapter.issue(self.request(adapter), Checkpoint())
        assert issued.totals["MntNeto"] == issued.total == 36960
        assert issued.totals["MntBruto"] - issued.totals["MntRetencion"] == 36960

    def test_voiding_twice_is_done_once(self, connection):
        adapter = biller_adapter_for(connection)
        issued = adapter.issue(self.request(adapter), Checkpoint())
        adapter.void(folio=issued.folio, causa=2)
        adapter.void(folio=issued.folio, causa=2)
        assert self.sim.state()["emisores"][DEFAULT_EMISOR]["anuladas"] == 1

    def test_pdf_by_number(self, connection):
        adapter = biller_adapter_for(connection)
        issued = adapter.issue(self.request(adapter), Checkpoint())
        assert adapter.fetch_pdf(tipo_dte=BOLETA_HONORARIOS, folio=issued.folio).startswith(b"%PDF")

    def test_connection_test_lists_the_months_boletas(self, connection):
        report = biller_adapter_for(connection).test_connection()
        assert report.ok
        assert [item.label for item in report.items] == ["RUT emisor", "Token de la API", "Retención"]


# --- the retention -------------------------------------------------------------------------------


@pytest.mark.parametrize("fecha, rate", [
    (datetime.date(2016, 7, 31), None), (datetime.date(2016, 8, 1), Decimal("10.00")), (datetime.date(2024, 6, 1), Decimal("13.75")),
    (datetime.date(2025, 12, 31), Decimal("14.50")), (datetime.date(2026, 1, 1), Decimal("15.25")), (datetime.date(2026, 11, 25), Decimal("15.25")),
    (datetime.date(2027, 1, 1), Decimal("16.00")), (datetime.date(2031, 5, 1), Decimal("17.00")),
])
def test_retention_rate_by_period(fecha, rate):
    assert retention_rate(fecha) == rate


def test_retention_rounds_half_up_in_whole_pesos():
    rate = Decimal("15.25")
    assert retention(100000, rate) == 15250
    assert retention(36960, rate) == 5636  # 5.636,4
    assert retention(2, rate) == 0 and retention(4, rate) == 1  # 0,305 → 0; 0,61 → 1
    assert retention(200, Decimal("14.50")) == 29  # exactly 29,0


def test_the_gross_for_any_net_is_exact_and_smallest():
    for rate in (Decimal("14.50"), Decimal("15.25"), Decimal("17.00")):
        for liquido in (*range(400), 36960, 54990, 999_999):
            bruto = bruto_for(liquido, rate)
            assert bruto - retention(bruto, rate) == liquido
            assert bruto == 0 or (bruto - 1) - retention(bruto - 1, rate) < liquido


def test_allocation_keeps_the_total_in_whole_pesos():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(7, [25980, 10980]) == [5, 2]
    assert sum(allocate(12345, [3, 0, 997, 1])) == 12345 and allocate(5, [0, 10])[0] == 0


# --- check: sale → BHE ---------------------------------------------------------------------------


def connection(**config) -> BillerConnection:
    return BillerConnection(
        provider="bhexpress", environment="production", emisor_rut="12345678-5", emisor_razon_social="Profesional Demo",
        emisor_giro="Asesorías", credentials={"api_token": TOKEN}, config=config,
    )


def adapter(**config):
    return biller_adapter_for(connection(**config))


def test_check_prepares_the_bhe_body_in_the_official_clients_shape():
    prepared = adapter().check(boleta_sale(), fecha=FECHA)
    expected = fixture("emitir_request.json")
    expected["Detalle"][0].pop("CdgItem")  # our reference is added when issuing
    assert prepared["bhe"] == expected
    assert prepared["totals"] == {"MntBruto": 36960, "MntRetencion": 5636, "MntNeto": 31324, "MntTotal": 36960}
    assert (prepared["paid_total"], prepared["tasa_retencion"], prepared["periodo"]) == (36960, "15.25", 202611)
    json.dumps(prepared)  # stored on the emission as JSON


def test_factura_sales_carry_the_receptor_and_by_document_makes_it_withhold():
    prepared = adapter(retention="by_document").check(factura_sale(), fecha=FECHA)
    encabezado = prepared["bhe"]["Encabezado"]
    assert encabezado["IdDoc"]["TipoRetencion"] == 1
    assert encabezado["Receptor"] == {"RUTRecep": "76086428-5", "RznSocRecep": "Ferretería El Roble SpA", "DirRecep": "Los Carrera 455",
                                      "CmnaRecep": "Concepción"}
    # The buyer paid 54.990 líquido: 64.885 gross − 9.895 retention (15,25 % of 64.885 = 9.894,96).
    assert prepared["totals"] == {"MntBruto": 64885, "MntRetencion": 9895, "MntNeto": 54990, "MntTotal": 54990}
    assert prepared["bhe"]["Detalle"] == [{"NmbItem": "Taladro percutor", "MontoItem": 64885}]
    assert adapter(retention="by_document").check(boleta_sale(), fecha=FECHA)["bhe"]["Encabezado"]["IdDoc"]["TipoRetencion"] == 2


def test_receptor_withholding_grosses_every_line_up_in_proportion():
    prepared = adapter(retention="receptor").check(boleta_sale(), fecha=FECHA)
    lines = prepared["bhe"]["Detalle"]
    bruto = prepared["totals"]["MntBruto"]
    assert bruto - retention(bruto, Decimal("15.25")) == 36960
    assert [set(line) for line in lines] == [{"NmbItem", "MontoItem"}] * 2
    assert sum(line["MontoItem"] for line in lines) == bruto
    assert lines[0]["MontoItem"] * 10980 == pytest.approx(lines[1]["MontoItem"] * 25980, rel=1e-4)


def test_global_discount_is_spread_over_the_lines_as_line_discounts():
    sale = Sale(
        tipo_dte=39, paid_total=30000, global_discount=6960,
        lines=(SaleLine(name="Sesión de coaching", quantity=Decimal(2), unit_price=Decimal(12990)),
               SaleLine(name="Despacho", quantity=Decimal(1), unit_price=Decimal(10980))),
    )
    lines = adapter().check(sale, fecha=FECHA)["bhe"]["Detalle"]
    # 6.960 over 25.980 and 10.980: 4.892,3 and 2.067,7 → 4.892 and 2.068.
    assert lines == [{"NmbItem": "Sesión de coaching", "QtyItem": 2, "PrcItem": 12990, "DescuentoMonto": 4892},
                     {"NmbItem": "Despacho", "QtyItem": 1, "PrcItem": 10980, "DescuentoMonto": 2068}]


def test_fractional_quantities_are_sent_as_amounts_and_free_lines_left_out():
    sale = Sale(
        tipo_dte=41, paid_total=15495,
        lines=(SaleLine(name="Asesoría (horas)", quantity=Decimal("1.5"), unit_price=Decimal(10330), exempt=True),
               SaleLine(name="Regalo", quantity=Decimal(1), unit_price=Decimal(0), exempt=True),
               SaleLine(name="", sku="MAT-9", quantity=Decimal(3), unit_price=Decimal(1000), discount=3000, exempt=True)),
    )
    assert adapter().check(sale, fecha=FECHA)["bhe"]["Detalle"] == [{"NmbItem": "Asesoría (horas)", "MontoItem": 15495}]


def test_lines_beyond_the_limit_are_grouped_into_one_never_cut():
    names = ["Clase de yoga", "Clase de pilates", "Masaje", "Evaluación", "Plan nutricional", "Seguimiento"]
    sale = Sale(tipo_dte=39, paid_total=21000,
                lines=tuple(SaleLine(name=name, quantity=Decimal(1), unit_price=Decimal(1000 * n)) for n, name in enumerate(names, 1)))
    lines = adapter().check(sale, fecha=FECHA)["bhe"]["Detalle"]
    assert [line["MontoItem"] for line in lines] == [1000, 2000, 3000, 15000]
    assert lines[3]["NmbItem"] == "Otros 3 ítems: Evaluación, Plan nutricional, Seguimiento"
    assert len(adapter(max_lines=60).check(sale, fecha=FECHA)["bhe"]["Detalle"]) == 6


@pytest.mark.parametrize("sale, config, code", [
    (dataclasses.replace(boleta_sale(), paid_total=36961), {}, "total_mismatch"),
    (dataclasses.replace(boleta_sale(), currency="USD"), {}, "currency"),
    (dataclasses.replace(boleta_sale(), price_basis="net"), {}, "bhe_iva_charged"),
    (dataclasses.replace(boleta_sale(), receptor=Receptor(rut="76086428-4")), {}, "invalid_receptor_rut"),
    (dataclasses.replace(factura_sale(), receptor=Receptor(rut="76086428-5", razon_social="")), {}, "incomplete_receptor"),
    (boleta_sale(), {"sales": "exempt"}, "document_type_not_supported"),
    (Sale(tipo_dte=61, paid_total=36960, lines=boleta_sale().lines,
          references=(Reference(tipo_doc=BOLETA_HONORARIOS, folio=41, fecha="2026-11-25", cod_ref=1),)), {}, "document_type_not_supported"),
    (dataclasses.replace(boleta_sale(), global_discount=40000, paid_total=-3040), {}, "non_positive_total"),
])
def test_what_cannot_be_a_bhe_is_refused_with_a_code_and_a_spanish_reason(sale, config, code):
    with pytest.raises(MappingRefused) as refused:
        adapter(**config).check(sale, fecha=FECHA)
    assert refused.value.code == code and refused.value.message


def test_notes_are_refused_saying_a_bhe_is_voided():
    sale = Sale(tipo_dte=61, paid_total=1000, lines=(SaleLine(name="x", quantity=Decimal(1), unit_price=Decimal(1000)),))
    with pytest.raises(MappingRefused) as refused:
        adapter().check(sale, fecha=FECHA)
    assert "no emite nota de crédito electrónica (61)" in refused.value.message and "se anula" in refused.value.message


def test_an_invalid_emisor_rut_is_refused():
    broken = connection()
    broken.emisor_rut = "12345678-0"
    with pytest.raises(MappingRefused) as refused:
        biller_adapter_for(broken).check(boleta_sale(), fecha=FECHA)
    assert refused.value.code == "invalid_emisor"


def test_declares_capabilities_and_its_void():
    bhe = adapter()
    assert bhe.can(Capability.VOID) and bhe.can(Capability.FETCH_PDF) and bhe.can(Capability.LOOKUP_BY_REFERENCE)
    assert not bhe.can(Capability.FETCH_XML) and str(bhe.display_name()) == "BHEXPRESS (boletas de honorarios)"


# --- issue at the transport ----------------------------------------------------------------------


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def issue_request(bhe, sale: Sale | None = None, fecha=FECHA) -> IssueRequest:
    sale = sale or boleta_sale()
    return IssueRequest(sale=sale, reference="bms-1-1-F1", fecha=fecha, prepared=bhe.check(sale, fecha=fecha))


def test_issue_posts_the_boleta_with_token_and_emisor_headers(api):
    api.post(f"{API}/bhe/emitir", json=fixture("emitir_response.json"))
    bhe = adapter()
    saved = []
    issued = bhe.issue(issue_request(bhe), Checkpoint(saver=saved.append))

    [call] = api.calls
    assert (call.request.method, call.request.url) == ("POST", f"{API}/bhe/emitir")
    assert call.request.headers["Authorization"] == f"Token {TOKEN}"
    assert call.request.headers["X-Bhexpress-Emisor"] == "12345678-5"
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["Accept"] == "application/json"
    assert json.loads(call.request.body) == fixture("emitir_request.json")
    assert (issued.tipo_dte, issued.folio, issued.fecha, issued.biller_document_id) == (BOLETA_HONORARIOS, 41, FECHA, "bhe-41")
    assert issued.totals == {"MntBruto": 36960, "MntRetencion": 5636, "MntNeto": 31324, "MntTotal": 36960}
    assert issued.raw["codigo_barras"] == "7F3A9C21B04E"
    # What was posted is recorded before posting it, so a lost answer can be looked up.
    assert saved == [{"bhe": {"fecha": "2026-11-25", "tipo_retencion": 2, "rut_receptor": "66666666-6",
                              "totals": {"MntBruto": 36960, "MntRetencion": 5636, "MntNeto": 31324, "MntTotal": 36960}}}]


def test_base_url_and_no_reference_code_when_turned_off(api):
    api.post("https://bhexpress.cl/api/v1/bhe/emitir", json=fixture("emitir_response.json"))
    bhe = adapter(base_url="https://bhexpress.cl/", reference_in_code=False)
    bhe.issue(issue_request(bhe), Checkpoint())
    assert "CdgItem" not in json.loads(api.calls[0].request.body)["Detalle"][0]


def test_an_answer_with_only_the_sii_shaped_part_is_read(api):
    answer = fixture("emitir_response.json")
    answer = {"Encabezado": answer["Encabezado"], "Detalle": answer["Detalle"]}
    api.post(f"{API}/bhe/emitir", json=answer)
    bhe = adapter()
    issued = bhe.issue(issue_request(bhe), Checkpoint())
    assert (issued.folio, issued.total, issued.totals["MntRetencion"]) == (41, 36960, 5636)


def test_a_different_amount_at_bhexpress_is_a_mismatch_never_resent(api):
    answer = fixture("emitir_response.json")
    answer["bruto"] = 36950
    api.post(f"{API}/bhe/emitir", json=answer)
    bhe = adapter()
    with pytest.raises(BillerMismatch) as caught:
        bhe.issue(issue_request(bhe), Checkpoint())
    assert "$36.950" in caught.value.message and "$36.960" in caught.value.message


def test_a_new_years_rate_prepares_the_boleta_again_for_the_day_of_issue(api):
    api.post(f"{API}/bhe/emitir", json={"numero": 3})
    bhe = adapter(retention="receptor")
    sale = boleta_sale()
    request = IssueRequest(sale=sale, reference="r", fecha=datetime.date(2027, 1, 4),
                           prepared=bhe.check(sale, fecha=datetime.date(2026, 12, 31)))
    issued = bhe.issue(request, Checkpoint())
    body = json.loads(api.calls[0].request.body)
    assert body["Encabezado"]["IdDoc"]["FchEmis"] == "2027-01-04"
    bruto = sum(line["MontoItem"] for line in body["Detalle"])
    assert bruto == bruto_for(36960, Decimal("16.00")) != bruto_for(36960, Decimal("15.25"))
    # The answer had only the number: the amounts are what we sent.
    assert issued.totals["MntNeto"] == issued.total == 36960


@pytest.mark.parametrize("status, body, error, words", [
    (400, {"message": "Falta la razón social o nombre del receptor (RznSocRecep).", "code": 400}, RejectedBillerError,
     "BHExpress rechazó la boleta de honorarios (HTTP 400): Falta la razón social"),
    (401, {"message": "Token de la API inválido.", "code": 401}, RejectedBillerError, "Perfil de usuario → Token"),
    (403, {"message": "No está autorizado a operar con el emisor 12345678-5.", "code": 403}, RejectedBillerError,
     "no permite que este token opere con el emisor 12345678-5"),
    (404, {"exception": "NotFound", "code": 404}, RejectedBillerError, "HTTP 404"),
    (422, {"message": "La fecha de emisión no puede ser futura.", "code": 422}, RejectedBillerError, "no puede ser futura"),
    (429, {"message": "Demasiadas solicitudes"}, TransientBillerError, "limitó las solicitudes (HTTP 429); Retry-After: 30"),
    (500, {"message": "Error interno"}, TransientBillerError, "BHExpress falló (HTTP 500): Error interno"),
    (503, "<html>Service Unavailable</html>", TransientBillerError, "HTTP 503"),
])
def test_every_failure_is_mapped_to_transient_or_rejected_in_spanish(api, status, body, error, words):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    api.post(f"{API}/bhe/emitir", status=status, headers={"Retry-After": "30"} if status == 429 else {}, **kwargs)
    bhe = adapter()
    with pytest.raises(error) as caught:
        bhe.issue(issue_request(bhe), Checkpoint())
    assert words in caught.value.message and caught.value.status == status
    assert TOKEN not in caught.value.message
    assert len(api.calls) == 1  # a write is never retried blindly; a static token has nothing to refresh


@pytest.mark.parametrize("failure", [requests.ReadTimeout("read timed out"), requests.ConnectionError("reset")])
def test_a_timeout_or_a_dropped_connection_is_transient(api, failure):
    api.post(f"{API}/bhe/emitir", body=failure)
    bhe = adapter()
    with pytest.raises(TransientBillerError) as caught:
        bhe.issue(issue_request(bhe), Checkpoint())
    assert "app.bhexpress.cl" in caught.value.message


@pytest.mark.parametrize("answer", ["<?php Warning: ... ?>{", json.dumps(["not", "an", "object"]), json.dumps({"ok": True})])
def test_a_garbage_answer_or_one_without_a_number_leaves_the_outcome_unknown(api, answer):
    api.post(f"{API}/bhe/emitir", body=answer, content_type="application/json")
    bhe = adapter()
    with pytest.raises(TransientBillerError):
        bhe.issue(issue_request(bhe), Checkpoint())


def test_a_missing_token_is_refused_before_any_request(api):
    bhe = adapter()
    bhe.connection.credentials = {}
    with pytest.raises(RejectedBillerError) as caught:
        bhe.issue(issue_request(bhe), Checkpoint())
    assert "token" in caught.value.message and not api.calls


def test_plain_http_is_refused_outside_loopback(api):
    bhe = adapter(base_url="http://app.bhexpress.cl")
    with pytest.raises(RejectedBillerError) as caught:
        bhe.issue(issue_request(bhe), Checkpoint())
    assert "https" in caught.value.message and not api.calls


# --- reconciliation ------------------------------------------------------------------------------

SENT = {"bhe": {"fecha": "2026-11-25", "tipo_retencion": 2, "rut_receptor": "66666666-6",
                "totals": {"MntBruto": 36960, "MntRetencion": 5636, "MntNeto": 31324, "MntTotal": 36960}}}
LIST_URL = f"{API}/bhe/boletas"


def list_matcher(page: int = 1):
    return responses.matchers.query_param_matcher(
        {"fecha_desde": "2026-11-25", "fecha_hasta": "2026-11-25", "receptor_codigo": "66666666", "page": str(page)}
    )


def test_lookup_lists_the_day_for_the_receptor_and_matches_our_code(api):
    api.get(LIST_URL, json=fixture("boletas_response.json"), match=[list_matcher()])
    api.get(f"{API}/bhe/boletas/41", json=fixture("emitir_response.json"))
    found = adapter().find_by_reference("bms-1-1-F1", Checkpoint(SENT))
    assert (found.tipo_dte, found.folio, found.total, found.fecha) == (BOLETA_HONORARIOS, 41, 36960, FECHA)
    # Boleta 40 is for another amount: its detail is never read.
    assert [call.request.url.split("?")[0] for call in api.calls] == [LIST_URL, f"{API}/bhe/boletas/41"]
    assert all(call.request.headers["Authorization"] == f"Token {TOKEN}" for call in api.calls)


def test_lookup_with_nothing_sent_asks_nothing():
    assert adapter().find_by_reference("bms-1-1-F1", Checkpoint()) is None


def test_lookup_finds_none_when_the_candidates_carry_other_codes(api):
    other = fixture("emitir_response.json")
    other["Detalle"][0]["CdgItem"] = "bms-1-2-F1"
    api.get(LIST_URL, json=fixture("boletas_response.json"))
    api.get(f"{API}/bhe/boletas/41", json=other)
    assert adapter().find_by_reference("bms-1-1-F1", Checkpoint(SENT)) is None


def test_lookup_reads_every_page(api):
    first = {**fixture("boletas_response.json"), "next": f"{LIST_URL}?page=2", "results": []}
    first["results"] = [dict(fixture("boletas_response.json")["results"][1])]
    api.get(LIST_URL, json=first, match=[list_matcher(1)])
    api.get(LIST_URL, json=fixture("boletas_response.json"), match=[list_matcher(2)])
    api.get(f"{API}/bhe/boletas/41", json=fixture("emitir_response.json"))
    assert adapter().find_by_reference("bms-1-1-F1", Checkpoint(SENT)).folio == 41


def test_lookup_that_cannot_tell_holds_for_a_person(api):
    detail = fixture("emitir_response.json")
    for line in detail["Detalle"]:
        line.pop("CdgItem", None)
    api.get(LIST_URL, json=fixture("boletas_response.json"))
    api.get(f"{API}/bhe/boletas/41", json=detail)
    with pytest.raises(BillerNeedsPerson) as caught:
        adapter().find_by_reference("bms-1-1-F1", Checkpoint(SENT))
    assert "N° 41" in caught.value.message and "$36.960" in caught.value.message


def test_two_boletas_with_our_code_hold_for_a_person(api):
    twice = fixture("boletas_response.json")
    twice["results"][1]["bruto"] = 36960
    api.get(LIST_URL, json=twice)
    api.get(f"{API}/bhe/boletas/41", json=fixture("emitir_response.json"))
    api.get(f"{API}/bhe/boletas/40", json={**fixture("emitir_response.json"), "numero": 40})
    with pytest.raises(BillerNeedsPerson) as caught:
        adapter().find_by_reference("bms-1-1-F1", Checkpoint(SENT))
    assert "2 boletas" in caught.value.message and "41, 40" in caught.value.message


def test_without_our_code_a_lost_answer_cannot_be_looked_up():
    with pytest.raises(UnsupportedFeature):
        adapter(reference_in_code=False).find_by_reference("bms-1-1-F1", Checkpoint(SENT))


def test_a_retry_after_a_lost_answer_finds_the_boleta_instead_of_posting_again(api):
    api.get(LIST_URL, json=fixture("boletas_response.json"))
    api.get(f"{API}/bhe/boletas/41", json=fixture("emitir_response.json"))
    bhe = adapter()
    issued = bhe.issue(issue_request(bhe), Checkpoint(SENT))
    assert issued.folio == 41 and not [call for call in api.calls if call.request.method == "POST"]


# --- PDF, void, connection -------------------------------------------------------------------------


def test_pdf_by_number(api):
    api.get(f"{API}/bhe/pdf/41", body=b"%PDF-1.4 boleta", content_type="application/pdf")
    assert adapter().fetch_pdf(tipo_dte=BOLETA_HONORARIOS, folio=41) == b"%PDF-1.4 boleta"
    assert api.calls[0].request.headers["X-Bhexpress-Emisor"] == "12345678-5"


def test_a_pdf_that_is_not_a_pdf_is_transient(api):
    api.get(f"{API}/bhe/pdf/41", body=b"<html>login</html>")
    with pytest.raises(TransientBillerError):
        adapter().fetch_pdf(tipo_dte=BOLETA_HONORARIOS, folio=41)


def test_void_posts_the_cause(api):
    api.post(f"{API}/bhe/anular/41", json={**fixture("emitir_response.json"), "anulada": True},
             match=[responses.matchers.json_params_matcher({"causa": 1})])
    adapter().void(folio=41, causa=1)
    assert len(api.calls) == 1


def test_voiding_a_voided_boleta_is_done(api):
    api.post(f"{API}/bhe/anular/41", status=409, json={"message": "La boleta de honorarios N° 41 ya está anulada.", "code": 409})
    api.get(f"{API}/bhe/boletas/41", json={**fixture("emitir_response.json"), "anulada": True})
    adapter().void(folio=41, causa=3)


def test_a_void_refused_for_another_reason_says_so(api):
    api.post(f"{API}/bhe/anular/41", status=400, json={"message": "Plazo de anulación vencido.", "code": 400})
    api.get(f"{API}/bhe/boletas/41", json=fixture("emitir_response.json"))
    with pytest.raises(RejectedBillerError) as caught:
        adapter().void(folio=41, causa=1)
    assert "no anuló la boleta de honorarios N° 41 (no pago)" in caught.value.message and "Plazo de anulación vencido" in caught.value.message


def test_void_needs_a_known_cause():
    with pytest.raises(ValueError):
        adapter().void(folio=41, causa=4)


def test_connection_test_reports_a_bad_token(api):
    api.get(LIST_URL, status=401, json={"message": "Token de la API inválido.", "code": 401})
    report = adapter().test_connection()
    assert not report.ok
    [token] = [item for item in report.items if item.label == "Token de la API"]
    assert token.ok is False and "Perfil de usuario → Token" in token.detail


# --- the pipeline, over real HTTP ------------------------------------------------------------------


def test_an_order_becomes_one_bhe_document_through_the_pipeline(account, simulator):
    simulator.reset()
    biller = sim_connection(account, simulator)
    gateway = GatewayFactory(account=account, biller=biller)
    payload = sample_order(number=7001)
    paid = int(Decimal(payload["total_price"]))

    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.READY, order.status_reason
    [document] = run_pending(order)

    order.refresh_from_db()
    assert order.status == OrderStatus.ISSUED
    assert (document.tipo_dte, document.folio, document.mnt_total) == (BOLETA_HONORARIOS, 1, paid)
    assert document.totals["MntBruto"] == paid and document.totals["MntBruto"] - document.totals["MntRetencion"] == document.totals["MntNeto"]
    assert Document.objects.filter(order=order).count() == 1 and issued_boletas(simulator) == 1
    assert EmissionAttempt.objects.get(emission__order=order).outcome == "success"
    assert bytes(document_files_fetch(document=document).pdf).startswith(b"%PDF")


def issued_bhe_order(account, simulator, number: int):
    simulator.reset()
    gateway = GatewayFactory(account=account, biller=sim_connection(account, simulator))
    payload = sample_order(number=number)
    order = services.order_ingest(gateway=gateway, raw=payload)
    [document] = run_pending(order)
    return gateway, payload, order, document


def anuladas(sim) -> int:
    return sim.state()["emisores"][DEFAULT_EMISOR]["anuladas"]


def test_a_full_refund_voids_the_bhe_once_instead_of_a_credit_note(account, simulator):
    gateway, payload, order, document = issued_bhe_order(account, simulator, 7101)
    paid = int(Decimal(payload["total_price"]))

    services.order_ingest(gateway=gateway, raw=with_refund(payload, refund_id=1, amount=paid))
    assert services.order_refunds_sync(order_id=order.pk) == []
    document.refresh_from_db()
    assert document.void_status == VoidStatus.PENDING
    services.document_void_run(document_id=document.pk)

    document.refresh_from_db()
    assert (document.void_status, anuladas(simulator)) == (VoidStatus.DONE, 1)
    assert "anulada en el facturador" in document.void_message
    assert not order.emissions.filter(kind=DocumentKind.CREDIT_NOTE).exists()
    order.refresh_from_db()
    assert "se anula en el facturador (devolución total)" in order.decision["credit_notes"][-1]["reasons"][0]["message"]
    # The same refund seen again (a webhook repeated, a poll) asks nothing more.
    services.order_refunds_sync(order_id=order.pk)
    assert services.document_void_run(document_id=document.pk) is None and anuladas(simulator) == 1


def test_a_partial_refund_of_a_bhe_is_left_for_a_person_with_the_reason(account, simulator):
    gateway, payload, order, document = issued_bhe_order(account, simulator, 7102)

    services.order_ingest(gateway=gateway, raw=with_refund(payload, refund_id=2, amount=1000))
    services.order_refunds_sync(order_id=order.pk)

    document.refresh_from_db()
    order.refresh_from_db()
    assert document.void_status == VoidStatus.NONE and anuladas(simulator) == 0
    [note] = order.decision["credit_notes"]
    assert note["action"] == "hold" and "no admite devoluciones parciales ($1.000)" in note["reasons"][0]["message"]


def test_a_void_the_biller_cannot_answer_is_retried_later_and_a_refusal_is_shown(account, simulator, settings):
    settings.BMS_RETRY_DELAYS = [60]
    gateway, payload, order, document = issued_bhe_order(account, simulator, 7103)
    services.order_ingest(gateway=gateway, raw=with_refund(payload, refund_id=3, amount=int(Decimal(payload["total_price"]))))
    services.order_refunds_sync(order_id=order.pk)

    simulator.faults.add(route="anular", kind="status", status=503, times=1)
    services.document_void_run(document_id=document.pk)
    document.refresh_from_db()
    assert (document.void_status, document.void_attempts) == (VoidStatus.PENDING, 1)
    assert "se reintenta" in document.void_message
    assert services.document_void_run(document_id=document.pk) is None  # not due yet

    Document.objects.filter(pk=document.pk).update(void_at=timezone.now())
    simulator.faults.add(route="anular", kind="status", status=400, body="La boleta no se puede anular: fuera de plazo")
    services.document_void_run(document_id=document.pk)
    document.refresh_from_db()
    order.refresh_from_db()
    assert document.void_status == VoidStatus.FAILED and "no se anuló" in document.void_message
    assert order.status_reason == document.void_message[:500]


def test_a_void_whose_message_was_lost_is_queued_again_by_the_sweeper(account, simulator, settings):
    from gateways.sweeper import stuck_work_requeue

    gateway, payload, order, document = issued_bhe_order(account, simulator, 7104)
    services.order_ingest(gateway=gateway, raw=with_refund(payload, refund_id=4, amount=int(Decimal(payload["total_price"]))))
    services.order_refunds_sync(order_id=order.pk)
    assert stuck_work_requeue()["voids"] == 0  # just asked: its own message is on its way

    Document.objects.filter(pk=document.pk).update(void_at=timezone.now() - timedelta(seconds=settings.BMS_STUCK_AFTER_SECONDS + 1))
    assert stuck_work_requeue()["voids"] == 1
