"""Multivende's OAuth client (authlib over our HTTP base) and one merchant's API client: the exact requests,
token renewal before expiry and after a 401/403 (once, for every worker), reconnect when the refresh token
is gone, the rate limit shared through Redis, and what every failure becomes."""
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
import requests
import responses
from django.conf import settings as django_settings
from django.db import connection as db_connection

from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.multivende import ratelimit
from sources.multivende.client import MultivendeClient, MultivendeOAuth
from sources.registry import source_adapter_for
from sources.services import source_connection_test
from tests.sources.factories import SourceConnectionFactory

FIXTURES = Path(__file__).resolve().parents[2] / "sources" / "multivende" / "fixtures"
BASE = "https://app.multivende.com"
MERCHANT = "0b2e6f90-5a41-4c7d-8e3f-6d1c2b3a4f50"
CLIENT_ID = "1234"
CLIENT_SECRET = "app-secret-Qw3"
TOKEN_URL = f"{BASE}/oauth/access-token"
INFO_URL = f"{BASE}/api/d/info"
CALLBACK = "https://billmysales.test/connect/multivende/callback/"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def credentials(**overrides) -> dict:
    return {"access_token": "at-1", "refresh_token": "rt-1", "access_token_expires_at": iso(timedelta(hours=5)),
            "refresh_token_expires_at": iso(timedelta(hours=40)), "merchant_id": MERCHANT, **overrides}


def token_answer(token="at-2", refresh="rt-2", *, hours=6) -> dict:
    """The token endpoint's answer ([help-token] fields), valid from now."""
    now = datetime.now(UTC)
    return {**fixture("token_authorization_code.json"), "token": token, "refreshToken": refresh,
            "expiresAt": (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "refreshTokenExpiresAt": (now + timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}


def multivende_connection(account, **credential_overrides) -> SourceConnection:
    return SourceConnectionFactory(account=account, name="Multivende", platform="multivende", store_url=BASE,
                                   credentials=credentials(**credential_overrides))


@pytest.fixture(autouse=True)
def multivende_app(settings):
    settings.BMS_MULTIVENDE_CLIENT_ID = CLIENT_ID
    settings.BMS_MULTIVENDE_CLIENT_SECRET = CLIENT_SECRET
    settings.BMS_MULTIVENDE_BASE_URL = BASE
    settings.BMS_MULTIVENDE_SCOPES = ["read:checkouts", "write:checkouts"]
    # Each test starts with the merchant's rate-limit window empty.
    redis.Redis.from_url(django_settings.REDIS_URL).delete(ratelimit.KEY_PREFIX + MERCHANT)
    return settings


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


# --- OAuth ---------------------------------------------------------------------------------------


def test_authorize_url_names_our_app_the_callback_the_scopes_and_the_state():
    url = MultivendeOAuth.from_settings(redirect_uri=CALLBACK).authorization_url(state="st-123")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/apps/authorize"
    assert dict(parse_qsl(parts.query)) == {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK,
                                            "scope": "read:checkouts write:checkouts", "state": "st-123"}


def test_the_code_is_exchanged_with_a_json_body_and_a_numeric_client_id(api):
    api.post(TOKEN_URL, json=fixture("token_authorization_code.json"))

    grant = MultivendeOAuth.from_settings(redirect_uri=CALLBACK).exchange_code("ac-0f1e2d3c")

    [call] = api.calls
    assert json.loads(call.request.body) == {"client_id": 1234, "client_secret": CLIENT_SECRET,
                                             "grant_type": "authorization_code", "code": "ac-0f1e2d3c"}
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["Cache-Control"] == "no-cache"
    assert call.request.headers["User-Agent"].startswith("BillMySales/")
    assert "Authorization" not in call.request.headers  # the secret travels in the body, as Multivende documents
    assert call.request.req_kwargs["timeout"] == (5, 15)
    assert (grant.access_token, grant.refresh_token, grant.merchant_id, grant.scopes) == (
        fixture("token_authorization_code.json")["token"], "rt-8c7b6a59-4d3e-4f2a-9b1c-0d9e8f7a6b5c", MERCHANT,
        "read:checkouts write:checkouts")
    assert grant.expires_at == datetime(2026, 11, 21, 1, 45, 34, tzinfo=UTC)
    assert grant.refresh_expires_at == datetime(2026, 11, 22, 19, 45, 34, tzinfo=UTC)
    assert grant.credentials() == {
        "access_token": grant.access_token, "refresh_token": grant.refresh_token, "merchant_id": MERCHANT,
        "access_token_expires_at": "2026-11-21T01:45:34+00:00", "refresh_token_expires_at": "2026-11-22T19:45:34+00:00"}


def test_a_refresh_sends_the_refresh_token_and_gets_a_new_pair(api):
    api.post(TOKEN_URL, json=token_answer("at-9", "rt-9"))

    grant = MultivendeOAuth.from_settings().refresh("rt-1")

    assert json.loads(api.calls[0].request.body) == {"client_id": 1234, "client_secret": CLIENT_SECRET,
                                                     "grant_type": "refresh_token", "refresh_token": "rt-1"}
    assert (grant.access_token, grant.refresh_token) == ("at-9", "rt-9")


def test_a_refused_code_is_rejected_with_what_multivende_said(api):
    api.post(TOKEN_URL, status=400, json={"statusCode": 400, "error": "Bad Request",
                                          "message": "Código de autorización inválido o expirado"})
    with pytest.raises(SourceRejectedError, match="HTTP 400.*Código de autorización inválido") as caught:
        MultivendeOAuth.from_settings().exchange_code("ac-used")
    assert caught.value.status == 400


@pytest.mark.parametrize("answer", [{"token": "at-2"}, {**fixture("token_authorization_code.json"), "expiresAt": "mañana"}, []])
def test_a_token_answer_without_a_usable_token_is_transient(api, answer):
    api.post(TOKEN_URL, json=answer)
    with pytest.raises(SourceTransientError, match="sin un token completo"):
        MultivendeOAuth.from_settings().exchange_code("ac-1")


def test_the_app_must_be_configured_before_anything_is_sent(api, settings):
    settings.BMS_MULTIVENDE_CLIENT_SECRET = ""
    with pytest.raises(SourceRejectedError, match="no está configurada"):
        MultivendeOAuth.from_settings()
    assert len(api.calls) == 0


@pytest.mark.parametrize("url, state, expected", [
    (f"{CALLBACK}?code=ac-1&state=s1", "s1", "ac-1"),
    (f"{CALLBACK}?code=ac-1", None, "ac-1"),
])
def test_the_callback_code_is_read_with_its_state(url, state, expected):
    assert MultivendeOAuth.callback_code(url, state=state) == expected


@pytest.mark.parametrize("url, message", [
    (f"{CALLBACK}?code=ac-1&state=other", "state devuelto"),
    (f"{CALLBACK}?code=ac-1", "state devuelto"),
    (f"{CALLBACK}?state=s1", "sin código"),
])
def test_a_callback_with_another_state_or_no_code_is_refused(url, message):
    with pytest.raises(SourceRejectedError, match=message):
        MultivendeOAuth.callback_code(url, state="s1")


# --- the API client: tokens ---------------------------------------------------------------------


@pytest.mark.django_db
def test_api_calls_carry_the_bearer_token(api, account):
    api.get(INFO_URL, json=fixture("info.json"))

    assert MultivendeClient(multivende_connection(account)).info()["MerchantId"] == MERCHANT
    assert api.calls[0].request.headers["Authorization"] == "Bearer at-1"


@pytest.mark.django_db
def test_a_403_renews_the_token_once_and_retries_once(api, account):
    source = multivende_connection(account)
    api.get(INFO_URL, status=403, json={"statusCode": 403, "error": "Forbidden", "message": "Token expired"})
    api.post(TOKEN_URL, json=token_answer("at-2", "rt-2"))
    api.get(INFO_URL, json=fixture("info.json"))

    assert MultivendeClient(source).info()["MerchantId"] == MERCHANT

    assert [(c.request.method, c.request.url) for c in api.calls] == [("GET", INFO_URL), ("POST", TOKEN_URL), ("GET", INFO_URL)]
    assert api.calls[0].request.headers["Authorization"] == "Bearer at-1"
    assert json.loads(api.calls[1].request.body)["refresh_token"] == "rt-1"
    assert api.calls[2].request.headers["Authorization"] == "Bearer at-2"
    source.refresh_from_db()
    assert (source.credentials["access_token"], source.credentials["refresh_token"]) == ("at-2", "rt-2")
    assert source.credentials["merchant_id"] == MERCHANT and source.refresh_lease_until is None


@pytest.mark.django_db
def test_a_second_403_after_the_renewal_is_final(api, account):
    api.get(INFO_URL, status=403, json={"message": "Forbidden"})
    api.post(TOKEN_URL, json=token_answer())
    with pytest.raises(SourceRejectedError) as caught:
        MultivendeClient(multivende_connection(account)).info()
    assert caught.value.status == 403
    assert [c.request.method for c in api.calls] == ["GET", "POST", "GET"]


@pytest.mark.django_db
def test_a_token_about_to_expire_is_renewed_before_the_call(api, account):
    source = multivende_connection(account, access_token_expires_at=iso(timedelta(minutes=2)))
    source.config = {"authorization": {"merchant_id": MERCHANT, "merchant_name": "Comercializadora Andina SpA"}}
    source.save()
    api.post(TOKEN_URL, json=token_answer("at-2", "rt-2"))
    api.get(INFO_URL, json=fixture("info.json"))

    renewed = []
    MultivendeClient(source, on_renewed=renewed.append).info()

    assert [c.request.method for c in api.calls] == ["POST", "GET"]
    assert api.calls[1].request.headers["Authorization"] == "Bearer at-2"
    assert [grant.access_token for grant in renewed] == ["at-2"]


@pytest.mark.django_db
def test_the_adapter_shows_the_renewed_expiry_on_the_connection(api, account):
    source = multivende_connection(account, access_token_expires_at=iso(timedelta(minutes=1)))
    source.config = {"authorization": {"merchant_id": MERCHANT, "merchant_name": "Comercializadora Andina SpA"}}
    source.save()
    answer = token_answer("at-2", "rt-2")
    api.post(TOKEN_URL, json=answer)
    api.get(INFO_URL, json=fixture("info.json"))

    source_adapter_for(source).client().info()

    source.refresh_from_db()
    authorization = source.config["authorization"]
    assert authorization["merchant_name"] == "Comercializadora Andina SpA"
    assert authorization["access_expires_at"] == datetime.fromisoformat(answer["expiresAt"].replace("Z", "+00:00")).isoformat()
    assert authorization["refresh_expires_at"].startswith(answer["refreshTokenExpiresAt"][:16])


@pytest.mark.django_db
def test_an_expired_refresh_token_marks_the_connection_for_reconnection_without_calling(api, account):
    source = multivende_connection(account, access_token_expires_at=iso(timedelta(hours=-1)),
                                   refresh_token_expires_at=iso(timedelta(minutes=-5)))
    with pytest.raises(SourceRejectedError, match="autorización de Multivende venció"):
        MultivendeClient(source).info()
    assert len(api.calls) == 0
    source.refresh_from_db()
    assert source.status == SourceConnection.Status.RECONNECT
    assert "Vuelva a conectar" in source.status_message and "venció" in source.status_message


@pytest.mark.django_db
def test_a_refresh_multivende_refuses_marks_the_connection_for_reconnection(api, account):
    source = multivende_connection(account, access_token_expires_at=iso(timedelta(hours=-1)))
    api.post(TOKEN_URL, status=401, json={"statusCode": 401, "error": "Unauthorized", "message": "Refresh token expired"})
    with pytest.raises(SourceRejectedError):
        MultivendeClient(source).info()
    source.refresh_from_db()
    assert source.status == SourceConnection.Status.RECONNECT
    assert "Refresh token expired" in source.status_message
    assert source.credentials["refresh_token"] == "rt-1"


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_refresh_once(account):
    source = multivende_connection(account, access_token_expires_at=iso(timedelta(minutes=1)))
    seen, errors = [], []

    def token_endpoint(request):
        time.sleep(0.4)  # both workers are past their check while the first one renews
        return 200, {}, json.dumps(token_answer("at-2", "rt-2"))

    def worker():
        try:
            seen.append(MultivendeClient(SourceConnection.objects.get(pk=source.pk)).info()["MerchantId"])
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            db_connection.close()

    with responses.RequestsMock() as api:
        api.add_callback("POST", TOKEN_URL, callback=token_endpoint)
        api.get(INFO_URL, json=fixture("info.json"))
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refreshes = [c for c in api.calls if c.request.url == TOKEN_URL]
        bearers = {c.request.headers["Authorization"] for c in api.calls if c.request.url == INFO_URL}

    assert errors == [] and seen == [MERCHANT] * 3
    assert len(refreshes) == 1 and bearers == {"Bearer at-2"}
    source.refresh_from_db()
    assert source.credentials["refresh_token"] == "rt-2"


@pytest.mark.django_db
def test_a_rate_limit_403_is_transient_and_does_not_renew(api, account):
    api.get(INFO_URL, status=403, json={"statusCode": 403, "error": "Forbidden", "message": "Rate limit exceeded"})
    with pytest.raises(SourceTransientError, match="limitó") as caught:
        MultivendeClient(multivende_connection(account)).info()
    assert caught.value.retry_after == "1" and len(api.calls) == 1


@pytest.mark.django_db
def test_a_429_is_transient_with_its_retry_after(api, account):
    api.get(INFO_URL, status=429, json={"message": "Too Many Requests"}, headers={"Retry-After": "1"})
    with pytest.raises(SourceTransientError, match="HTTP 429") as caught:
        MultivendeClient(multivende_connection(account)).info()
    assert caught.value.retry_after == "1"


@pytest.mark.django_db
@pytest.mark.parametrize("answer, error, message", [
    ({"body": requests.exceptions.ReadTimeout()}, SourceTransientError, "no respondió a tiempo"),
    ({"body": requests.exceptions.ConnectionError()}, SourceTransientError, "No se pudo conectar"),
    ({"status": 200, "body": "<html>Mantención</html>", "content_type": "text/html"}, SourceTransientError, "no es JSON legible"),
    ({"status": 200, "json": ["not", "an", "object"]}, SourceTransientError, "no es un objeto JSON"),
    ({"status": 404, "json": {"message": "Not Found"}}, SourceRejectedError, "HTTP 404"),
    ({"status": 302, "headers": {"Location": "https://login.multivende.com/"}}, SourceRejectedError, "redirigió"),
])
def test_failures_become_transient_or_rejected(api, account, answer, error, message):
    api.get(INFO_URL, **answer)
    with pytest.raises(error, match=message):
        MultivendeClient(multivende_connection(account)).info()


@pytest.mark.django_db
def test_server_errors_on_reads_are_retried_then_transient(api, account):
    api.get(INFO_URL, status=503, body="<html>Service unavailable</html>")
    with pytest.raises(SourceTransientError, match="HTTP 503"):
        MultivendeClient(multivende_connection(account)).info()
    assert len(api.calls) == 3  # the HTTP base retries reads twice


@pytest.mark.django_db
@pytest.mark.parametrize("store_url, message", [
    ("http://app.multivende.com", "https://"),
    ("https://evil.example.com", "no es la dirección de Multivende"),
])
def test_a_connection_naming_another_address_is_refused_before_any_request(api, account, store_url, message):
    source = multivende_connection(account)
    source.store_url = store_url
    with pytest.raises(SourceRejectedError, match=message):
        MultivendeClient(source)
    assert len(api.calls) == 0


@pytest.mark.django_db
def test_a_connection_without_tokens_is_not_authorized(account):
    source = SourceConnectionFactory(account=account, platform="multivende", credentials={})
    with pytest.raises(SourceRejectedError, match="Conectar con Multivende"):
        MultivendeClient(source)


@pytest.mark.django_db
def test_a_merchant_id_that_is_not_an_id_never_reaches_a_path(api, account):
    source = multivende_connection(account, merchant_id="../../admin")
    with pytest.raises(SourceRejectedError, match="no es un id"):
        MultivendeClient(source).checkouts_light(page=1, start=datetime.now(UTC) - timedelta(hours=1), end=datetime.now(UTC))
    assert len(api.calls) == 0


# --- the rate limit ------------------------------------------------------------------------------


def test_the_local_limiter_lets_five_through_then_spaces_the_sixth():
    limiter = ratelimit.LocalLimiter()
    delays = [limiter.reserve("m-1") for _ in range(7)]
    assert all(delay < 0.05 for delay in delays[:5])
    assert ratelimit.WINDOW - 0.05 < delays[5] <= ratelimit.WINDOW
    assert limiter.reserve("m-2") < 0.05  # another merchant has its own window


def test_two_processes_share_one_limit_per_merchant_through_redis():
    key = f"test-{time.monotonic_ns()}"
    first, second = ratelimit.RedisLimiter(django_settings.REDIS_URL), ratelimit.RedisLimiter(django_settings.REDIS_URL)
    delays = [limiter.reserve(key) for limiter in (first, second) * 5]
    assert sorted(delays)[:5] == pytest.approx([0] * 5, abs=0.05)
    assert all(ratelimit.WINDOW - 0.05 < delay <= ratelimit.WINDOW + 0.05 for delay in sorted(delays)[5:])
    assert first.reserve(f"{key}-other") < 0.05


def test_requests_are_paced_to_five_per_window_for_one_merchant(settings):
    redis.Redis.from_url(settings.REDIS_URL).delete(ratelimit.KEY_PREFIX + "m-pace")
    started = time.monotonic()
    for _ in range(6):
        ratelimit.wait_turn("m-pace")
    assert time.monotonic() - started >= ratelimit.WINDOW - 0.05


def test_without_redis_the_limit_is_kept_in_the_process(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert ratelimit.reserve(f"m-{time.monotonic_ns()}") < 0.05
    settings.REDIS_URL = ""
    assert ratelimit.reserve(f"m-{time.monotonic_ns()}") < 0.05


# --- "Probar conexión" ---------------------------------------------------------------------------


def light_url() -> str:
    return f"{BASE}/api/m/{MERCHANT}/checkouts/light/p/1"


@pytest.mark.django_db
def test_the_connection_test_checks_token_merchant_scopes_expiry_and_one_page(api, account):
    source = multivende_connection(account)
    source.config = {"provider": "billmysales", "emitter_id": "4d3c2b1a-0f9e-4d8c-b7a6-958473625140"}
    source.save()
    api.get(INFO_URL, json=fixture("info.json"))
    api.get(light_url(), json=fixture("checkouts_light_page.json"))

    report = source_connection_test(connection=source)

    assert report.ok
    items = {item.label: (item.ok, item.detail) for item in report.items}
    assert items["Token de acceso"][0] is True and "se renueva solo" in items["Token de acceso"][1]
    assert "la autorización caduca si no se usa hasta" in items["Token de acceso"][1]
    assert items["Cuenta de Multivende"] == (True, f"Comercializadora Andina SpA ({MERCHANT}).")
    assert items["Permisos"] == (True, "read:checkouts, write:checkouts.")
    assert items["Lectura de ventas"] == (True, "3 ventas actualizadas en las últimas 2 horas.")
    assert items["Documentos a Multivende"][0] is True
    params = api.calls[1].request.params
    start = datetime.strptime(params["_updated_at_from"], "%Y-%m-%d %H:%M:%S")
    assert datetime.strptime(params["_updated_at_to"], "%Y-%m-%d %H:%M:%S") - start == timedelta(hours=2)


@pytest.mark.django_db
def test_the_connection_test_says_what_is_wrong(api, account):
    source = multivende_connection(account)
    api.get(INFO_URL, json={**fixture("info.json"), "MerchantId": "99999999-8888-4777-8666-555555555555",
                            "Merchant": {"_id": "99999999-8888-4777-8666-555555555555", "name": "Otra"},
                            "scopes": "read:checkouts"})
    api.get(light_url(), status=400, json={"message": "El rango máximo permitido por consulta es de 2 horas"})

    report = source_connection_test(connection=source)

    assert not report.ok
    items = {item.label: (item.ok, item.detail) for item in report.items}
    assert items["Cuenta de Multivende"][0] is False and "vuelva a conectar" in items["Cuenta de Multivende"][1]
    assert items["Permisos"] == (False, "Faltan permisos: write:checkouts. Vuelva a conectar y déjelos activados.")
    assert items["Lectura de ventas"][0] is False and "HTTP 400" in items["Lectura de ventas"][1]
    assert items["Documentos a Multivende"][0] is None and "provider" in items["Documentos a Multivende"][1]


@pytest.mark.django_db
def test_the_connection_test_of_a_refused_token_is_one_failed_item(api, account):
    api.get(INFO_URL, status=401, json={"statusCode": 401, "message": "Unauthorized"})
    api.post(TOKEN_URL, status=401, json={"statusCode": 401, "message": "Invalid refresh token"})

    report = source_connection_test(connection=multivende_connection(account))

    [item] = report.items
    assert (item.label, item.ok) == ("Token de acceso", False) and "Invalid refresh token" in item.detail


@pytest.mark.django_db
def test_tokens_saved_by_another_worker_just_before_the_lease_are_not_renewed_again(account):
    """The race the thread test can hit: this worker reads the old tokens, another saves fresh ones and
    frees its lease, then this worker takes the lease. It must read again, not spend the rotated token."""
    from sources.services import credentials_refresh

    source = multivende_connection(account, access_token_expires_at=iso(timedelta(minutes=1)))
    checks, refreshes = [], []

    def needs_refresh(stored: dict) -> bool:
        checks.append(stored["access_token"])
        if len(checks) == 1:  # another worker finishes its renewal right after this read
            SourceConnection.objects.filter(pk=source.pk).update(credentials=credentials(access_token="at-2", refresh_token="rt-2"))
            return True
        return stored["access_token"] == "at-1"

    fresh = credentials_refresh(connection=source, needs_refresh=needs_refresh, refresh=refreshes.append)

    assert refreshes == [] and checks == ["at-1", "at-2"]
    assert fresh.credentials["refresh_token"] == "rt-2" and fresh.refresh_lease_until is None
    source.refresh_from_db()
    assert source.refresh_lease_until is None  # the lease taken for nothing is given back
