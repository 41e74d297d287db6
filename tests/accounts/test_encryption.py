import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts import crypto
from accounts.fields import Secret
from sources.models import SourceConnection
from tests.gateways.factories import BillerConnectionFactory, SourceConnectionFactory


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def keys(settings):
    """Two fresh keys; the test decides which is current. Clears the cached MultiFernet around it."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    crypto.reset_fernet_cache()
    yield old, new
    crypto.reset_fernet_cache()


def test_secrets_are_ciphertext_in_the_database(account, keys):
    source = SourceConnectionFactory(account=account, credentials={"access_token": "shpat_0123456789abcdef"})
    stored = raw_column("sources_sourceconnection", "credentials", source.pk)
    assert "shpat_0123456789abcdef" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert SourceConnection.objects.get(pk=source.pk).credentials == {"access_token": "shpat_0123456789abcdef"}


def test_rotation_reencrypts_every_secret_with_the_newest_key(account, keys, settings):
    old, new = keys
    source = SourceConnectionFactory(account=account, credentials={"token": "t-1"})
    biller = BillerConnectionFactory(account=account, credentials={"api_key": "k-2"})
    before = raw_column("billers_billerconnection", "credentials", biller.pk)

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    crypto.reset_fernet_cache()
    call_command("rotate_secrets")

    settings.FIELD_ENCRYPTION_KEYS = [new]
    crypto.reset_fernet_cache()
    after = raw_column("billers_billerconnection", "credentials", biller.pk)
    assert after != before
    assert Fernet(new.encode()).decrypt(after.encode()) == b'{"api_key": "k-2"}'
    assert SourceConnection.objects.get(pk=source.pk).credentials == {"token": "t-1"}


def test_without_the_key_secrets_cannot_be_read(account, keys, settings):
    source = SourceConnectionFactory(account=account, credentials={"token": "t-1"})
    settings.FIELD_ENCRYPTION_KEYS = [keys[1]]
    crypto.reset_fernet_cache()
    with pytest.raises(crypto.InvalidToken):
        SourceConnection.objects.get(pk=source.pk)


def test_secret_values_never_print_in_full():
    secret = Secret("shpat_0123456789abcdef")
    assert "0123456789" not in repr(secret)
    assert repr(secret).endswith("cdef')")


def test_api_never_shows_credentials(api_client, account):
    source = SourceConnectionFactory(account=account, credentials={"access_token": "shpat_0123456789abcdef"})
    body = api_client.get(f"/api/v1/sources/{source.pk}/").json()
    assert "shpat_0123456789abcdef" not in str(body)
    assert body["credentials_masked"]["access_token"].endswith("cdef")


def test_credentials_sent_again_are_merged_and_the_change_audited(api_client, account):
    source = SourceConnectionFactory(account=account, platform="shopify", store_url="https://tienda.myshopify.com",
                                     credentials={"access_token": "shpat_old", "webhook_secret": "whsec"})
    response = api_client.patch(f"/api/v1/sources/{source.pk}/", {"credentials": {"access_token": "shpat_new"}}, format="json")
    assert response.status_code == 200, response.content
    source.refresh_from_db()
    assert source.credentials == {"access_token": "shpat_new", "webhook_secret": "whsec"}
    assert account.audit_logs.filter(action="sourceconnection.update", object_id=str(source.pk)).exists()
