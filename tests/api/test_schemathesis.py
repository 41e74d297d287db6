"""The published OpenAPI schema is true: schemathesis calls every operation with generated data (a bounded
number of examples each, every check) through the WSGI app, authenticated with a write key, against real
PostgreSQL; no 5xx, no answer outside the schema."""
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from accounts.services import Actor, api_key_create
from billmysales.api.throttling import ClientRateThrottle
from billmysales.wsgi import application
from tests.accounts.factories import AccountFactory
from tests.gateways.factories import DocumentFactory, GatewayFactory

pytestmark = pytest.mark.django_db


# Schema-valid requests the business rules refuse (a RUT whose check digit is wrong, a config key the biller
# does not declare, a test sale whose biller is in production) are answered 400/422 with the error body;
# every other check runs with schemathesis's defaults. Generating the schema reads no database rows.
CONFIG = SchemathesisConfig.from_dict({
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422", "429"]}},
})
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Django closes the database connection after each request; in the test transaction it must stay open
    (the test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def write_key(monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "100000/min", "anon": "100000/min"})
    account = AccountFactory()
    # Objects the generated ids may hit: a gateway with an issued document.
    GatewayFactory(account=account)
    DocumentFactory(account=account)
    _key, raw = api_key_create(account=account, name="schemathesis", scope="write", actor=Actor())
    return raw


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, write_key):
    case.call_and_validate(headers={"Authorization": f"Bearer {write_key}"})
