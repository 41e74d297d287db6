"""The BHExpress simulator over real HTTP: token and emisor headers, issuing with retention, lists,
PDF, e-mail, voiding, the gross/net calculators and receptors."""
import threading

import pytest
import requests

from simulators.bhexpress import DEFAULT_EMISOR, DEFAULT_TOKEN, BHExpressSimulator, bruto_for, retention_rate

HEADERS = {"Authorization": f"Token {DEFAULT_TOKEN}", "X-Bhexpress-Emisor": DEFAULT_EMISOR,
           "Accept": "application/json"}


@pytest.fixture(scope="module")
def server():
    with BHExpressSimulator(page_size=3) as simulator:
        yield simulator


@pytest.fixture
def sim(server):
    server.reset()
    return server


def url(sim, path):
    return f"{sim.url}/api/v1/bhe/{path}"


def boleta(fecha="2026-03-06", receptor="66666666-6", detalle=None, tipo_retencion=1):
    """The official clients' test boleta (bhexpress-api-client-php tests/bhe/boletas/EmitirBheTest.php)."""
    return {
        "Encabezado": {
            "IdDoc": {"FchEmis": fecha, "TipoRetencion": tipo_retencion},
            "Emisor": {"RUTEmisor": DEFAULT_EMISOR},
            "Receptor": {"RUTRecep": receptor, "RznSocRecep": "Receptor generico", "DirRecep": "Santa Cruz",
                         "CmnaRecep": "Santa Cruz"},
        },
        "Detalle": detalle or [
            {"NmbItem": "Item con monto básico", "MontoItem": 100},
            {"CdgItem": "CASO2", "NmbItem": "Item con monto y codigo", "MontoItem": 300},
            {"NmbItem": "Item con precio unit y cantidad", "QtyItem": 1, "PrcItem": 120},
            {"NmbItem": "Item con precio unit y cantidad decimal", "QtyItem": 0.5, "PrcItem": 120},
            {"CdgItem": "CASO2", "NmbItem": "Item con codigo, precio unit y cantidad.", "QtyItem": 2, "PrcItem": 250},
            {"CdgItem": "COMPLETO", "NmbItem": "Con dcto porcentual", "QtyItem": 10, "PrcItem": 75, "DescuentoPct": 10},
            {"CdgItem": "COMPLETO", "NmbItem": "Con dcto fijo", "QtyItem": 10, "PrcItem": 75, "DescuentoMonto": 50},
            {"NmbItem": "MontoItem descartado", "QtyItem": 2, "PrcItem": 10, "MontoItem": 100},
        ],
    }


def emitir(sim, body, headers=HEADERS):
    return requests.post(url(sim, "emitir"), json=body, headers=headers, timeout=5)


def test_headers_are_required_and_errors_carry_message_and_code(sim):
    cases = (
        ({"X-Bhexpress-Emisor": DEFAULT_EMISOR}, 401),
        ({"Authorization": "Token " + "0" * 32, "X-Bhexpress-Emisor": DEFAULT_EMISOR}, 401),
        ({"Authorization": f"Bearer {DEFAULT_TOKEN}", "X-Bhexpress-Emisor": DEFAULT_EMISOR}, 401),
        ({"Authorization": f"Token {DEFAULT_TOKEN}"}, 400),
        ({"Authorization": f"Token {DEFAULT_TOKEN}", "X-Bhexpress-Emisor": "76192083-9"}, 403),
    )
    for headers, status in cases:
        answer = requests.get(url(sim, "boletas"), headers=headers, timeout=5)
        assert answer.status_code == status, headers
        assert answer.json()["code"] == status and answer.json()["message"]


def test_emitir_computes_gross_honorarios_and_the_years_retention(sim):
    first = emitir(sim, boleta())
    assert first.status_code == 200
    b = first.json()
    # 100 + 300 + 120 + 60 + 500 + (750 − 75) + (750 − 50) + 2 × 10 (MontoItem ignored) = 2475;
    # 15.25 % in 2026: 377.44 → 377
    assert (b["numero"], b["bruto"], b["retencion"], b["liquido"], b["tasa_retencion"]) == (1, 2475, 377, 2098, 15.25)
    assert b["Encabezado"]["Totales"] == {"MntBruto": 2475, "MntRetencion": 377, "MntNeto": 2098}
    assert b["Encabezado"]["IdDoc"]["Folio"] == 1 and b["periodo"] == 202603
    assert [line["MontoItem"] for line in b["Detalle"]] == [100, 300, 120, 60, 500, 675, 700, 20]
    assert b["receptor"]["codigo"] == 66666666 and b["anulada"] is False
    older = emitir(sim, boleta(fecha="2025-12-31", detalle=[{"NmbItem": "Asesoría", "MontoItem": 100000}])).json()
    assert (older["numero"], older["retencion"], older["tasa_retencion"]) == (2, 14500, 14.5)


def test_emitir_refuses_invalid_boletas(sim):
    assert emitir(sim, boleta(tipo_retencion=0)).status_code == 400
    assert emitir(sim, boleta(receptor="12345678-9")).status_code == 400  # wrong check digit
    assert emitir(sim, boleta(fecha="2999-01-01")).status_code == 400
    assert emitir(sim, boleta(detalle=[{"NmbItem": "Sin monto"}])).status_code == 400
    assert emitir(sim, {**boleta(), "Detalle": []}).status_code == 400
    other = boleta()
    other["Encabezado"]["Emisor"]["RUTEmisor"] = "76192083-9"
    assert emitir(sim, other).json()["code"] == 400
    assert requests.post(url(sim, "emitir"), data=b"{", headers=HEADERS, timeout=5).status_code == 400
    assert sim.counters["issued"] == 0


def test_numbers_are_per_emisor(sim):
    requests.post(f"{sim.url}/_sim/emisores", json={"rut": "76192083-9", "token": DEFAULT_TOKEN,
                                                    "numero_siguiente": 500}, timeout=5).raise_for_status()
    assert emitir(sim, boleta()).json()["numero"] == 1
    other = boleta()
    other["Encabezado"]["Emisor"]["RUTEmisor"] = "76192083-9"
    assert emitir(sim, other, {**HEADERS, "X-Bhexpress-Emisor": "76.192.083-9"}).json()["numero"] == 500
    assert emitir(sim, boleta()).json()["numero"] == 2


def test_list_detail_and_pdf(sim):
    for fecha in ("2026-01-15", "2026-02-10", "2026-02-20", "2026-03-01"):
        emitir(sim, boleta(fecha=fecha))
    emitir(sim, boleta(fecha="2026-03-02", receptor="76192083-9"))
    page = requests.get(url(sim, "boletas"), headers=HEADERS, timeout=5).json()
    assert page["count"] == 5 and [r["numero"] for r in page["results"]] == [5, 4, 3]
    assert "Detalle" not in page["results"][0] and page["previous"] is None
    second = requests.get(page["next"], headers=HEADERS, timeout=5).json()
    assert [r["numero"] for r in second["results"]] == [2, 1] and second["next"] is None

    def numeros(**params):
        answer = requests.get(url(sim, "boletas"), params=params, headers=HEADERS, timeout=5).json()
        return [r["numero"] for r in answer["results"]]

    assert numeros(periodo="202602") == [3, 2]
    assert numeros(fecha_desde="2026-02-15", fecha_hasta="2026-03-01") == [4, 3]
    assert numeros(receptor_codigo="76192083") == [5]
    bad_periodo = requests.get(url(sim, "boletas"), params={"periodo": "2026-02"}, headers=HEADERS, timeout=5)
    assert bad_periodo.status_code == 400
    detail = requests.get(url(sim, "boletas/2"), headers=HEADERS, timeout=5).json()
    assert detail["fecha"] == "2026-02-10" and len(detail["Detalle"]) == 8
    assert requests.get(url(sim, "boletas/99"), headers=HEADERS, timeout=5).status_code == 404
    pdf = requests.get(url(sim, "pdf/2"), headers=HEADERS, timeout=5)
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_email_and_voiding(sim):
    emitir(sim, boleta())
    sent = requests.post(url(sim, "email/1"), json={"destinatario": {"email": "cliente@example.cl"}},
                         headers=HEADERS, timeout=5)
    assert sent.json() == {"numero": 1, "destinatario": {"email": "cliente@example.cl"}, "enviado": True}
    assert requests.post(url(sim, "email/1"), json={"destinatario": {}}, headers=HEADERS, timeout=5).status_code == 400
    assert requests.post(url(sim, "anular/1"), json={"causa": 7}, headers=HEADERS, timeout=5).status_code == 400
    voided = requests.post(url(sim, "anular/1"), json={"causa": 3}, headers=HEADERS, timeout=5).json()
    assert voided["anulada"] is True and voided["anulacion"]["glosa"] == "Error de digitación"
    again = requests.post(url(sim, "anular/1"), json={"causa": 3}, headers=HEADERS, timeout=5)
    assert again.status_code == 409
    state = requests.get(f"{sim.url}/_sim/state", timeout=5).json()["state"]
    assert state["emisores"][DEFAULT_EMISOR]["anuladas"] == 1 and state["emails"] == 1


def test_net_and_gross_calculators_round_half_up(sim):
    def get(path):
        return requests.get(url(sim, path), headers=HEADERS, timeout=5)

    # 200 × 15.25 % = 30.5: half up is 31 (Python's round() would say 30)
    assert get("liquido/200/202601").json() == {"periodo": 202601, "tasa": 15.25, "bruto": 200, "retencion": 31,
                                                "liquido": 169}
    assert get("liquido/100000/202512").json()["retencion"] == 14500
    assert get("bruto/84750/202601").json()["bruto"] == 100000
    assert get("liquido/100/201501").status_code == 400
    assert get("bruto/100/2026-01").status_code == 400


def test_bruto_for_reaches_every_net_amount():
    rate = retention_rate(202601)
    for liquido in range(1, 3000):
        bruto = bruto_for(liquido, rate)
        net = bruto - int((bruto * rate / 100).quantize(1, rounding="ROUND_HALF_UP"))
        assert net >= liquido
        previous = bruto - 1
        assert previous - int((previous * rate / 100).quantize(1, rounding="ROUND_HALF_UP")) < liquido


def test_receptores(sim):
    emitir(sim, boleta())
    emitir(sim, boleta(receptor="76192083-9"))
    page = requests.get(url(sim, "receptores"), headers=HEADERS, timeout=5).json()
    assert [r["rut"] for r in page["results"]] == ["66666666-6", "76192083-9"]
    detail = requests.get(url(sim, "receptores/76192083-9"), headers=HEADERS, timeout=5).json()
    assert detail["razon_social"] == "Receptor generico"
    assert requests.get(url(sim, "receptores/11111111-1"), headers=HEADERS, timeout=5).status_code == 404


def test_concurrent_issues_get_distinct_numbers(sim):
    numbers = []

    def one():
        numbers.append(emitir(sim, boleta()).json()["numero"])

    threads = [threading.Thread(target=one) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 31))
