"""Multivende's webhook hints through the gateway's real webhook view.

A hint is unsigned and only names a checkout (``{"CheckoutId", "OauthClient": {"client_id"}}``), so the
signed-webhook contract (signatures, secrets, rotation) cannot apply; this suite checks the hint receiver
instead, and ``tests/test_contracts.py`` counts it by ``unsigned_webhook_platform``: the checkout is
fetched with the merchant's token and stored under its change key, once; nothing in the body is trusted
beyond the id; an unknown checkout is a 404, another merchant's a 403, a body that is not a hint a 400,
and Multivende being unreachable a 503 (nothing stored, the hint can come again).
"""
import json

import pytest
import requests
import responses

from gateways import services
from gateways.models import InboundEvent, Order
from sources.base import WebhookReceiver
from sources.models import SourceConnection
from sources.registry import SOURCE_ADAPTERS
from tests.gateways.factories import GatewayFactory
from tests.sources.test_multivende_client import (
    BASE,
    CLIENT_ID,
    fixture,
    multivende_app,  # noqa: F401  (autouse: our app's settings)
    multivende_connection,
)

CHECKOUT = "7f3c2b1a-9d84-4e6f-a1b2-3c4d5e6f7a81"
CHECKOUT_URL = f"{BASE}/api/checkouts/{CHECKOUT}"
KEY = f"checkout:{CHECKOUT}@2026-11-19T17:30:40.118Z"

pytestmark = pytest.mark.django_db


def hint(checkout_id: str = CHECKOUT, **extra) -> bytes:
    return json.dumps({"CheckoutId": checkout_id, "OauthClient": {"client_id": int(CLIENT_ID)}, **extra}).encode()


class TestMultivendeHintWebhooks:
    unsigned_webhook_platform = "multivende"

    @pytest.fixture
    def gateway(self, account):
        return GatewayFactory(account=account, source=multivende_connection(account))

    @pytest.fixture
    def api(self):
        with responses.RequestsMock() as mock:
            yield mock

    def deliver(self, client, gateway, body: bytes):
        return client.post(f"/hooks/{gateway.webhook_token}/", body, content_type="application/json")

    def test_multivende_receives_hints(self):
        assert issubclass(SOURCE_ADAPTERS["multivende"], WebhookReceiver)

    def test_a_hint_stores_the_checkout_multivende_answers_once(self, gateway, client, api):
        api.get(CHECKOUT_URL, json=fixture("checkout_mercadolibre_boleta.json"))

        first = self.deliver(client, gateway, hint())
        again = self.deliver(client, gateway, hint())

        assert first.status_code == 200, first.content
        assert first.json()["duplicate"] is False and again.json() == {**first.json(), "duplicate": True}
        event = InboundEvent.objects.get(gateway=gateway)
        assert (event.delivery_id, event.topic, event.payload) == (KEY, "checkout", fixture("checkout_mercadolibre_boleta.json"))
        assert api.calls[0].request.headers["Authorization"] == "Bearer at-1"

    def test_nothing_in_the_body_but_the_id_is_used(self, gateway, client, api):
        api.get(CHECKOUT_URL, json=fixture("checkout_mercadolibre_boleta.json"))

        response = self.deliver(client, gateway, hint(gross=1, paymentStatus="completed", _id="other", Client={"email": "x@evil.cl"}))

        assert response.status_code == 200
        payload = InboundEvent.objects.get(gateway=gateway).payload
        assert (payload["gross"], payload["Client"]["email"]) == (38470, "jcontreras.8f21b@mail.mercadolibre.cl")

    def test_a_hint_and_a_poll_of_the_same_change_are_one_event(self, gateway, client, api):
        services.inbound_event_receive(gateway=gateway, delivery_id=KEY, topic="poll", payload=fixture("checkout_mercadolibre_boleta.json"))
        api.get(CHECKOUT_URL, json=fixture("checkout_mercadolibre_boleta.json"))

        assert self.deliver(client, gateway, hint()).json()["duplicate"] is True
        assert InboundEvent.objects.filter(gateway=gateway).count() == 1

    def test_an_accepted_hint_becomes_an_order(self, gateway, client, api):
        api.get(CHECKOUT_URL, json=fixture("checkout_mercadolibre_boleta.json"))
        self.deliver(client, gateway, hint())

        order = services.inbound_event_process(event_id=InboundEvent.objects.get(gateway=gateway).pk)

        assert order is not None and Order.objects.get(gateway=gateway).external_id == CHECKOUT

    def test_a_checkout_multivende_does_not_know_is_404(self, gateway, client, api):
        api.get(CHECKOUT_URL, status=404, json={"statusCode": 404, "message": "Checkout no encontrado"})
        response = self.deliver(client, gateway, hint())
        assert response.status_code == 404 and CHECKOUT in response.json()["error"]
        assert not InboundEvent.objects.exists()

    def test_another_merchants_checkout_is_403_and_the_tokens_are_not_rotated(self, gateway, client, api):
        api.get(CHECKOUT_URL, status=403, json={"statusCode": 403, "error": "Forbidden", "message": "Forbidden"})
        response = self.deliver(client, gateway, hint())
        assert response.status_code == 403 and "no es de la cuenta" in response.json()["error"]
        assert len(api.calls) == 1 and not InboundEvent.objects.exists()
        assert SourceConnection.objects.get(pk=gateway.source_id).credentials["refresh_token"] == "rt-1"

    def test_a_checkout_answered_for_another_merchant_is_403(self, gateway, client, api):
        api.get(CHECKOUT_URL, json={**fixture("checkout_mercadolibre_boleta.json"), "MerchantId": "ffffffff-0000-4000-8000-000000000000"})
        assert self.deliver(client, gateway, hint()).status_code == 403
        assert not InboundEvent.objects.exists()

    @pytest.mark.parametrize("body, problem", [
        (b"CheckoutId=7f3c2b1a", "no es JSON"),
        (b"[1, 2]", "no nombra una venta"),
        (b'{"OauthClient": {"client_id": 1234}}', "no nombra una venta"),
        (b'{"CheckoutId": 42}', "no nombra una venta"),
        (b'{"CheckoutId": "../../api/d/info"}', "no nombra una venta"),
        (b"[" * 5000 + b"]" * 5000, "no es JSON"),
        (b'{"CheckoutId": "' + b"a" * 20_000 + b'"}', "solo debe nombrar la venta"),
    ])
    def test_a_body_that_is_not_a_hint_is_400_without_asking_multivende(self, gateway, client, api, body, problem):
        response = self.deliver(client, gateway, body)
        assert response.status_code == 400 and problem in response.json()["error"]
        assert len(api.calls) == 0 and not InboundEvent.objects.exists()

    @pytest.mark.parametrize("answer", [
        {"status": 503, "body": "<html>Mantención</html>"},
        {"body": requests.exceptions.ConnectTimeout()},
        {"status": 200, "body": "<html>ok</html>", "content_type": "text/html"},
    ])
    def test_multivende_unreachable_is_503_and_nothing_is_stored(self, gateway, client, api, answer):
        api.get(CHECKOUT_URL, **answer)
        response = self.deliver(client, gateway, hint())
        assert response.status_code == 503 and "reintente" in response.json()["error"]
        assert not InboundEvent.objects.exists()

    def test_a_connection_not_yet_authorized_is_503(self, account, client, api):
        gateway = GatewayFactory(account=account, source__platform="multivende", source__credentials={})
        response = self.deliver(client, gateway, hint())
        assert response.status_code == 503 and "Conectar con Multivende" in response.json()["error"]
        assert len(api.calls) == 0
