"""Store connections: tokens refreshed once whoever asks (real PostgreSQL, concurrent threads), a refused
refresh marked "reconnect", connect flows bound to their account and session, used once."""
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from sources.errors import SourceRejectedError
from sources.models import ConnectAttempt, SourceConnection
from sources.services import (
    ConnectRefused,
    connect_attempt_start,
    connect_attempt_use,
    credentials_refresh,
    source_connection_test,
)
from tests.sources.factories import SourceConnectionFactory


def expired(credentials: dict) -> bool:
    return credentials.get("access_token") == "old"


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_refresh_once_and_both_get_the_new_token(account):
    source = SourceConnectionFactory(account=account, platform="shopify", store_url="https://x.myshopify.com",
                                     credentials={"access_token": "old", "refresh_token": "r1", "webhook_secret": "s"})
    calls = []

    def refresh(credentials):
        calls.append(credentials["refresh_token"])
        time.sleep(0.5)
        return {"access_token": "new", "refresh_token": "r2"}

    seen = []

    def worker():
        try:
            fresh = credentials_refresh(connection=SourceConnection.objects.get(pk=source.pk), needs_refresh=expired, refresh=refresh)
            seen.append(fresh.credentials["access_token"])
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert calls == ["r1"]
    assert seen == ["new"] * 4
    source.refresh_from_db()
    assert source.credentials == {"access_token": "new", "refresh_token": "r2", "webhook_secret": "s"}
    assert source.refresh_lease_until is None


@pytest.mark.django_db
def test_a_refused_refresh_marks_the_connection_for_reconnection(account):
    source = SourceConnectionFactory(account=account, credentials={"access_token": "old"})

    def refresh(credentials):
        raise SourceRejectedError("Multivende rechazó la solicitud (HTTP 401): Refresh token expired")

    with pytest.raises(SourceRejectedError):
        credentials_refresh(connection=source, needs_refresh=expired, refresh=refresh)
    source.refresh_from_db()
    assert source.status == SourceConnection.Status.RECONNECT
    assert "Refresh token expired" in source.status_message and "Vuelva a conectar" in source.status_message
    assert source.refresh_lease_until is None


@pytest.mark.django_db
def test_a_connect_attempt_comes_back_once_to_its_own_session(account, actor):
    attempt = connect_attempt_start(account=account, actor=actor, platform="shopify", session_key="sess-1", data={"shop": "x"})

    with pytest.raises(ConnectRefused, match="otra sesión"):
        connect_attempt_use(state=attempt.state, platform="shopify", session_key="sess-2")
    used = connect_attempt_use(state=attempt.state, platform="shopify", session_key="sess-1")
    assert used.pk == attempt.pk and used.data == {"shop": "x"}
    with pytest.raises(ConnectRefused, match="ya se usó"):
        connect_attempt_use(state=attempt.state, platform="shopify", session_key="sess-1")


@pytest.mark.django_db
@pytest.mark.parametrize("state, platform, message", [("nope", "shopify", "state desconocido"), (None, "woocommerce", "state desconocido")])
def test_a_connect_return_with_an_unknown_state_or_platform_is_refused(account, actor, state, platform, message):
    attempt = connect_attempt_start(account=account, actor=actor, platform="shopify", session_key="s")
    with pytest.raises(ConnectRefused, match=message):
        connect_attempt_use(state=state or attempt.state, platform=platform, session_key="s")


@pytest.mark.django_db
def test_an_expired_connect_attempt_is_refused(account, actor):
    attempt = connect_attempt_start(account=account, actor=actor, platform="shopify", session_key="s")
    ConnectAttempt.objects.filter(pk=attempt.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ConnectRefused, match="expiró"):
        connect_attempt_use(state=attempt.state, platform="shopify", session_key="s")


@pytest.mark.django_db
def test_a_store_without_a_connection_check_says_so(account):
    report = source_connection_test(connection=SourceConnectionFactory(account=account))
    assert report.ok and report.items[0].ok is None and "no tiene una prueba" in report.items[0].detail


@pytest.mark.django_db
def test_the_connection_test_api_answers_in_words(api_client, account):
    source = SourceConnectionFactory(account=account, platform="prestashop")
    body = api_client.post(f"/api/v1/sources/{source.pk}/test/").json()
    assert body["ok"] is False and "prestashop" in body["items"][0]["detail"]
