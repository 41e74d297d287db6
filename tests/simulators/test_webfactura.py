"""The webFactura simulator over real HTTP: client-credentials tokens (expiry included) and sendDTEJson with
caller-computed totals checked against LibreDTE's normaliser, folios per emisor and type, PDF links."""
import pytest
import requests

from billers.dte.xml import verify_signatures
from simulators.webfactura import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, WebFacturaSimulator

CREDENTIALS = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
               "grant_type": "client_credentials"}


@pytest.fixture(scope="module")
def server():
    with WebFacturaSimulator() as simulator:
        yield simulator


@pytest.fixture
def sim(server):
    server.reset()
    return server


def token(sim):
    return requests.get(f"{sim.url}/oauth/v2/token", params=CREDENTIALS, timeout=5).json()["access_token"]


def dte(tipo="33", lines=(("Asesoría", "2", "1000"),), totales=None, folio="0"):
    """A document in the unofficial client's shape: ``Detalles``, every value a string."""
    return {
        "Encabezado": {
            "IdDoc": {"TipoDTE": tipo, "Folio": folio, "FchEmis": "2026-11-02"},
            "Emisor": {"RUTEmisor": "76192083-9", "RznSoc": "Empresa Demo SpA", "GiroEmis": "Comercio",
                       "Acteco": "479100", "DirOrigen": "Calle 1", "CmnaOrigen": "Santiago"},
            "Receptor": {"RUTRecep": "60803000-K", "RznSocRecep": "SII", "GiroRecep": "Gobierno",
                         "DirRecep": "Teatinos 120", "CmnaRecep": "Santiago"},
            "Totales": totales if totales is not None else {"MntNeto": "2000", "TasaIVA": "19", "IVA": "380",
                                                            "MntTotal": "2380"},
        },
        "Detalles": [{"NroLinDet": str(n), "NmbItem": name, "QtyItem": qty, "PrcItem": price}
                     for n, (name, qty, price) in enumerate(lines, start=1)],
    }


def send(sim, *dtes, access_token=None):
    headers = {"Authorization": f"Bearer {access_token or token(sim)}"}
    return requests.post(f"{sim.url}/api/v3/pos/dte/sendDTEJson.json", json={"DteSend": {"Dte": list(dtes)}},
                         headers=headers, timeout=10)


def test_token_endpoint_answers_like_fosoauth(sim):
    answer = requests.get(f"{sim.url}/oauth/v2/token", params=CREDENTIALS, timeout=5).json()
    assert set(answer) == {"access_token", "expires_in", "token_type", "scope"}
    assert (answer["token_type"], answer["expires_in"]) == ("bearer", 3600)
    wrong = requests.get(f"{sim.url}/oauth/v2/token", params={**CREDENTIALS, "client_secret": "x"}, timeout=5)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")
    no_grant = requests.get(f"{sim.url}/oauth/v2/token", params={"client_id": DEFAULT_CLIENT_ID}, timeout=5)
    assert (no_grant.status_code, no_grant.json()["error"]) == (400, "invalid_request")
    password = requests.get(f"{sim.url}/oauth/v2/token", params={**CREDENTIALS, "grant_type": "password"}, timeout=5)
    assert password.json()["error"] == "unsupported_grant_type"


def test_missing_invalid_and_expired_tokens_answer_401(sim):
    url = f"{sim.url}/api/v3/pos/dte/sendDTEJson.json"
    missing = requests.post(url, json={"DteSend": {"Dte": [dte()]}}, timeout=5)
    assert (missing.status_code, missing.json()["error"]) == (401, "access_denied")
    assert "WWW-Authenticate" in missing.headers
    invalid = send(sim, dte(), access_token="nope")
    assert (invalid.status_code, invalid.json()["error_description"]) == (401, "The access token provided is invalid.")
    access_token = token(sim)
    assert send(sim, dte(), access_token=access_token).status_code == 200
    requests.post(f"{sim.url}/_sim/expire_tokens", json={}, timeout=5).raise_for_status()
    expired = send(sim, dte(), access_token=access_token)
    assert (expired.status_code, expired.json()["error_description"]) == (401, "The access token provided has expired.")


def test_consistent_documents_are_issued_with_folios_per_emisor_and_type(sim):
    boleta = dte(tipo="39", lines=(("Polera", "1", "11900"),),
                 totales={"MntNeto": "10000", "IVA": "1900", "MntTotal": "11900"})
    answer = send(sim, dte(), dte(), boleta)
    assert answer.status_code == 200
    body = answer.json()
    assert body["EstadoEnvio"] == 0
    assert [(d["TipoDTE"], d["Folio"], d["EstadoDTE"], d["MntTotal"]) for d in body["Documentos"]] == [
        (33, 1, 0, 2380), (33, 2, 0, 2380), (39, 1, 0, 11900)]
    first = body["Documentos"][0]
    assert requests.get(first["UrlPdf"], timeout=5).content.startswith(b"%PDF")
    assert verify_signatures(requests.get(first["UrlXml"], timeout=5).content) == []
    assert sim.state()["issued"] == {"76192083-9:33": 2, "76192083-9:39": 1}


def test_inconsistent_totals_and_duplicate_folios_are_refused_per_document(sim):
    wrong_iva = dte(totales={"MntNeto": "2000", "IVA": "381", "MntTotal": "2381"})
    wrong_line = dte()
    wrong_line["Detalles"][0]["MontoItem"] = "1999"
    answer = send(sim, wrong_iva, dte(folio="7"), wrong_line, dte(folio="7")).json()
    assert answer["EstadoEnvio"] == 1
    assert [d["EstadoDTE"] for d in answer["Documentos"]] == [2, 0, 2, 3]
    assert "IVA declarado 381, calculado 380" in answer["Documentos"][0]["Glosa"]
    assert "línea 1: MontoItem declarado 1999" in answer["Documentos"][2]["Glosa"]
    assert answer["Documentos"][1]["Folio"] == 7
    assert send(sim, dte()).json()["Documentos"][0]["Folio"] == 8


def test_malformed_requests(sim):
    headers = {"Authorization": f"Bearer {token(sim)}"}
    url = f"{sim.url}/api/v3/pos/dte/sendDTEJson.json"
    assert requests.post(url, json={"Dte": []}, headers=headers, timeout=5).status_code == 400
    no_lines = dte()
    del no_lines["Detalles"]
    assert send(sim, no_lines).json()["Documentos"][0]["EstadoDTE"] == 1
    stranger = dte()
    stranger["Encabezado"]["Emisor"]["RUTEmisor"] = "11111111-1"
    assert send(sim, stranger).json()["Documentos"][0]["EstadoDTE"] == 2
