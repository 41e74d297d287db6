"""Connecting Multivende from the dashboard: start → Multivende's consent → callback, through the real views,
with Multivende's token endpoint and /api/d/info mocked; success, consent denied, state mismatch, a replayed
callback, a return without ``state``, another browser session, reconnecting and who may do it."""
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from django.contrib.messages import get_messages
from django.db import connection as db_connection
from django.test import Client

from accounts.models import Role
from sources.models import ConnectAttempt, SourceConnection
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.sources.factories import SourceConnectionFactory
from tests.sources.test_multivende_client import (
    BASE,
    CLIENT_SECRET,
    INFO_URL,
    MERCHANT,
    TOKEN_URL,
    credentials,
    fixture,
    multivende_app,  # noqa: F401  (autouse: our app's settings)
    token_answer,
)

START = "/connect/multivende/"
CALLBACK = "/connect/multivende/callback/"
PUBLIC = "https://billmysales.test"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.BMS_PUBLIC_URL = PUBLIC


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def start(client, **form) -> str:
    """Presses the button; returns the state sent to Multivende."""
    response = client.post(START, {"name": "Multivende Tienda Chile", **form})
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{BASE}/apps/authorize"
    return dict(parse_qsl(location.query))["state"]


def multivende_answers(api, *, merchant=MERCHANT, token="at-2", refresh="rt-2"):
    api.post(TOKEN_URL, json={**token_answer(token, refresh), "MerchantId": merchant})
    api.get(INFO_URL, json={**fixture("info.json"), "MerchantId": merchant})


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_start_page_shows_the_button(session_client):
    response = session_client.get(START)
    assert response.status_code == 200
    assert b"Conectar con Multivende" in response.content and b'name="name"' in response.content


def test_the_button_sends_the_browser_to_multivende_with_a_state_bound_to_the_session(session_client, account):
    response = session_client.post(START, {"name": "Multivende Tienda Chile", "next": "/gateways/7/"})

    query = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert query == {"response_type": "code", "client_id": "1234", "redirect_uri": f"{PUBLIC}{CALLBACK}",
                     "scope": "read:checkouts write:checkouts", "state": query["state"]}
    attempt = ConnectAttempt.objects.get(state=query["state"])
    assert (attempt.account, attempt.platform, attempt.used_at) == (account, "multivende", None)
    assert attempt.data == {"name": "Multivende Tienda Chile", "next": "/gateways/7/"}
    assert attempt.session_hash


def test_a_connection_needs_a_name(session_client):
    response = session_client.post(START, {"name": "  "})
    assert response.status_code == 400 and "Indique un nombre" in response.content.decode()
    assert not ConnectAttempt.objects.exists()


def test_a_successful_return_saves_the_connection_encrypted_and_shows_the_merchant(session_client, account, api):
    state = start(session_client, next="/gateways/7/")
    multivende_answers(api)

    response = session_client.get(CALLBACK, {"code": "ac-5e6f", "state": state})

    assert response.status_code == 302 and response["Location"] == "/gateways/7/"
    assert flashed(response) == ["Multivende conectado: cuenta Comercializadora Andina SpA, origen «Multivende Tienda Chile»."]
    exchange, info = api.calls
    assert json.loads(exchange.request.body) == {"client_id": 1234, "client_secret": CLIENT_SECRET,
                                                 "grant_type": "authorization_code", "code": "ac-5e6f"}
    assert info.request.headers["Authorization"] == "Bearer at-2"
    source = SourceConnection.objects.get(account=account, platform="multivende")
    assert (source.name, source.store_url, source.status) == ("Multivende Tienda Chile", BASE, SourceConnection.Status.ACTIVE)
    assert source.credentials["access_token"] == "at-2" and source.credentials["refresh_token"] == "rt-2"
    assert source.credentials["merchant_id"] == MERCHANT and source.credentials["refresh_token_expires_at"]
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT credentials::text FROM sources_sourceconnection WHERE id = %s", [source.pk])
        stored = cursor.fetchone()[0]
    assert "rt-2" not in stored and MERCHANT not in stored  # encrypted at rest
    authorization = source.config["authorization"]
    assert authorization["merchant_id"] == MERCHANT and authorization["merchant_name"] == "Comercializadora Andina SpA"
    assert authorization["scopes"] == "read:checkouts write:checkouts"
    assert authorization["access_expires_at"] == source.credentials["access_token_expires_at"]
    assert ConnectAttempt.objects.get(state=state).used_at is not None


def test_consent_denied_saves_nothing(session_client, api):
    state = start(session_client)

    response = session_client.get(CALLBACK, {"error": "access_denied", "state": state})

    assert response["Location"] == "/"
    assert flashed(response) == ["Multivende no autorizó la conexión (se rechazó el permiso); no se guardó nada."]
    assert len(api.calls) == 0 and not SourceConnection.objects.filter(platform="multivende").exists()
    attempt = ConnectAttempt.objects.get(state=state)
    assert attempt.used_at is not None and "se rechazó el permiso" in attempt.error


def test_a_state_that_is_not_ours_is_rejected_before_any_request(session_client, api):
    state = start(session_client)

    response = session_client.get(CALLBACK, {"code": "ac-5e6f", "state": "forged-state"})

    assert "state desconocido" in flashed(response)[0]
    assert len(api.calls) == 0 and not SourceConnection.objects.filter(platform="multivende").exists()
    assert ConnectAttempt.objects.get(state=state).used_at is None


def test_a_replayed_callback_is_refused_and_the_code_is_exchanged_once(session_client, api):
    state = start(session_client)
    multivende_answers(api)
    session_client.get(CALLBACK, {"code": "ac-5e6f", "state": state})

    again = session_client.get(CALLBACK, {"code": "ac-5e6f", "state": state})

    assert "ya se usó" in flashed(again)[-1]
    assert [call.request.url for call in api.calls].count(TOKEN_URL) == 1
    assert SourceConnection.objects.filter(platform="multivende").count() == 1


def test_a_return_without_state_completes_the_attempt_this_session_started(session_client, account, api):
    state = start(session_client)
    multivende_answers(api)

    response = session_client.get(CALLBACK, {"code": "ac-5e6f"})

    assert flashed(response)[0].startswith("Multivende conectado")
    assert ConnectAttempt.objects.get(state=state).used_at is not None
    assert SourceConnection.objects.filter(account=account, platform="multivende").count() == 1


def test_a_return_without_state_and_no_attempt_in_this_session_is_refused(session_client, api):
    response = session_client.get(CALLBACK, {"code": "ac-5e6f"})
    assert "state desconocido" in flashed(response)[0] and len(api.calls) == 0


def test_a_return_in_another_browser_session_is_refused(session_client, user, api):
    state = start(session_client)
    other = Client()
    other.force_login(user)  # same person, another browser: a new session

    response = other.get(CALLBACK, {"code": "ac-5e6f", "state": state})

    assert "otra sesión" in flashed(response)[0] and len(api.calls) == 0


def test_a_refused_code_says_why_and_saves_nothing(session_client, api):
    state = start(session_client)
    api.post(TOKEN_URL, status=400, json={"statusCode": 400, "message": "Código de autorización inválido o expirado"})

    response = session_client.get(CALLBACK, {"code": "ac-old", "state": state})

    assert "Código de autorización inválido o expirado" in flashed(response)[0]
    assert not SourceConnection.objects.filter(platform="multivende").exists()
    assert "inválido" in ConnectAttempt.objects.get(state=state).error


def test_reconnecting_renews_the_same_connection_and_makes_it_active(session_client, account, api):
    source = SourceConnectionFactory(account=account, name="Multivende", platform="multivende", store_url=BASE,
                                     credentials=credentials(), status=SourceConnection.Status.RECONNECT,
                                     status_message="No se pudo renovar el acceso")
    state = start(session_client, name="", connection=source.pk)
    multivende_answers(api, token="at-new", refresh="rt-new")

    session_client.get(CALLBACK, {"code": "ac-5e6f", "state": state})

    source.refresh_from_db()
    assert (source.status, source.status_message) == (SourceConnection.Status.ACTIVE, "")
    assert (source.credentials["access_token"], source.credentials["refresh_token"]) == ("at-new", "rt-new")
    assert SourceConnection.objects.filter(platform="multivende").count() == 1


def test_reconnecting_with_another_merchant_changes_nothing(session_client, account, api):
    source = SourceConnectionFactory(account=account, name="Multivende", platform="multivende", store_url=BASE,
                                     credentials=credentials())
    state = start(session_client, name="", connection=source.pk)
    multivende_answers(api, merchant="99999999-8888-4777-8666-555555555555")

    response = session_client.get(CALLBACK, {"code": "ac-5e6f", "state": state})

    assert "es de la cuenta" in flashed(response)[0]
    source.refresh_from_db()
    assert source.credentials["access_token"] == "at-1"


def test_connecting_a_merchant_already_connected_renews_that_connection(session_client, account, api):
    state = start(session_client)
    multivende_answers(api)
    session_client.get(CALLBACK, {"code": "ac-1", "state": state})
    state = start(session_client, name="Otra vez")
    multivende_answers(api, token="at-3", refresh="rt-3")

    session_client.get(CALLBACK, {"code": "ac-2", "state": state})

    [source] = SourceConnection.objects.filter(account=account, platform="multivende")
    assert (source.name, source.credentials["access_token"]) == ("Multivende Tienda Chile", "at-3")


def test_a_next_address_on_another_site_is_ignored(session_client, api):
    state = start(session_client, next="https://evil.example.com/")
    multivende_answers(api)
    assert session_client.get(CALLBACK, {"code": "ac-1", "state": state})["Location"] == "/"


def test_without_our_app_configured_the_button_says_so(session_client, settings):
    settings.BMS_MULTIVENDE_CLIENT_ID = ""
    response = session_client.post(START, {"name": "Multivende"})
    assert response.status_code == 503 and "no está configurada" in response.content.decode()
    assert not ConnectAttempt.objects.exists()


def test_a_viewer_can_neither_start_nor_finish(client, account, api):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)

    assert client.get(START).status_code == 403
    assert client.post(START, {"name": "Multivende"}).status_code == 403
    response = client.get(CALLBACK, {"code": "ac-1", "state": "x"})
    assert response["Location"] == "/" and "solo permite ver" in flashed(response)[0]
    assert not ConnectAttempt.objects.exists() and len(api.calls) == 0


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get(CALLBACK, {"code": "ac-1"})["Location"].startswith("/login/")
    assert client.post(START, {"name": "x"})["Location"].startswith("/login/")
