"""Contract suites every store adapter's tests inherit (as django-anymail's backends share theirs).

``StoreWebhookContract``: a signed delivery through the real webhook view — good, bad, missing,
non-ASCII and stale-secret signatures, a store without a secret, a replay, another shop, a topic we do
not handle, and authentic bodies that cannot be read (kept as unread orders with the reason, never a
500). ``StoreWriteBackContract``: the document written back to the store, and what every HTTP failure
becomes (4xx rejected; 5xx, 429 and timeouts transient; a 2xx that does not confirm the write
unconfirmed; a redirect never followed; a write never repeated).

A subclass sets ``platform`` and fills in the hooks marked "subclass"; ``tests/test_contracts.py``
fails when a registered adapter has no subclass here.
"""
import json
from urllib.parse import urlsplit

import pytest
import requests
import responses

from gateways.models import InboundEvent, Order
from sources.base import IssuedDocumentInfo, WebhookRejected
from sources.errors import SourceRejectedError, SourceTransientError
from sources.models import SourceConnection
from sources.registry import SOURCE_ADAPTERS, source_adapter_for
from tests.gateways.factories import GatewayFactory


class StoreWebhookContract:
    platform: str
    secret = "contract-secret-7Kq2Lr9T"
    previous_secret = "contract-old-secret-0Aa1Bb2C"
    store_url = ""
    order_topic: str
    ignored_topic = "products/update"
    # A delivery id the store repeats on retries, or None when deduplication is on the body's hash.
    delivery_header: str | None = None

    def order_body(self) -> bytes:  # subclass: a real-shaped signed order body
        raise NotImplementedError

    def headers(self, body: bytes, *, secret: str | None, topic: str, host: str | None = None,
                delivery_id: str = "delivery-1", signature: str | None = None) -> dict:  # subclass
        raise NotImplementedError

    other_host: str | None = None  # a host header value naming another store; None: no host check

    # --- plumbing --------------------------------------------------------------------------------

    @pytest.fixture
    def gateway(self, account):
        return GatewayFactory(
            account=account, source__platform=self.platform, source__store_url=self.store_url,
            source__credentials={"webhook_secret": self.secret},
        )

    def deliver(self, client, gateway, body: bytes, *, secret: str | None = "default", topic: str | None = None, **kwargs):
        headers = self.headers(body, secret=self.secret if secret == "default" else secret,
                               topic=self.order_topic if topic is None else topic, **kwargs)
        return client.post(f"/hooks/{gateway.webhook_token}/", body, content_type="application/json", headers=headers)

    # --- the contract ----------------------------------------------------------------------------

    def test_the_platform_is_registered(self):
        assert SOURCE_ADAPTERS[self.platform].platform == self.platform

    def test_signed_order_is_stored_once(self, gateway, client):
        response = self.deliver(client, gateway, self.order_body())
        assert response.status_code == 200, response.content
        assert response.json()["duplicate"] is False
        event = InboundEvent.objects.get(gateway=gateway)
        assert event.status == InboundEvent.Status.PENDING and event.payload is not None

    def test_replayed_delivery_is_one_event(self, gateway, client):
        first = self.deliver(client, gateway, self.order_body())
        again = self.deliver(client, gateway, self.order_body())
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json()["duplicate"] is True and again.json()["event"] == first.json()["event"]
        assert InboundEvent.objects.filter(gateway=gateway).count() == 1

    def test_wrong_signature_is_401_and_nothing_is_stored(self, gateway, client):
        response = self.deliver(client, gateway, self.order_body(), secret="not-the-secret")
        assert response.status_code == 401
        assert "Firma de webhook inválida" in response.json()["error"]
        assert not InboundEvent.objects.exists()

    def test_missing_signature_is_401(self, gateway, client):
        response = self.deliver(client, gateway, self.order_body(), secret=None)
        assert response.status_code == 401
        assert not InboundEvent.objects.exists()

    def test_non_ascii_signature_is_401_not_a_crash(self, gateway, client):
        response = self.deliver(client, gateway, self.order_body(), signature="fírma-ñ")
        assert response.status_code == 401

    def test_previous_secret_is_accepted_during_a_rotation(self, account, client):
        gateway = GatewayFactory(
            account=account, source__platform=self.platform, source__store_url=self.store_url,
            source__credentials={"webhook_secret": self.secret, "previous_webhook_secret": self.previous_secret},
        )
        assert self.deliver(client, gateway, self.order_body(), secret=self.previous_secret).status_code == 200

    def test_store_without_a_secret_refuses_every_delivery(self, account, client):
        gateway = GatewayFactory(account=account, source__platform=self.platform, source__store_url=self.store_url,
                                 source__credentials={})
        response = self.deliver(client, gateway, self.order_body())
        assert response.status_code == 401
        assert "no tiene secreto de webhook" in response.json()["error"]
        assert not InboundEvent.objects.exists()

    def test_reserialised_body_fails_the_raw_body_signature(self, gateway, client):
        body = self.order_body()
        reserialised = json.dumps(json.loads(body), ensure_ascii=False, indent=1).encode()
        signature = type(source_adapter_for(gateway.source).webhook_reader).sign(body, self.secret)
        assert self.deliver(client, gateway, reserialised, signature=signature).status_code == 401

    def test_delivery_from_another_store_is_401(self, gateway, client):
        if self.other_host is None:
            # A store whose deliveries name no sender: its reader declares no header to check.
            assert SOURCE_ADAPTERS[self.platform].webhook_reader.host_header is None
            return
        response = self.deliver(client, gateway, self.order_body(), host=self.other_host)
        assert response.status_code == 401
        assert not InboundEvent.objects.exists()

    def test_topic_we_do_not_handle_is_acknowledged_and_not_stored(self, gateway, client):
        response = self.deliver(client, gateway, self.order_body(), topic=self.ignored_topic)
        assert response.status_code == 200 and "ignored" in response.json()
        assert not InboundEvent.objects.exists()

    @pytest.mark.parametrize("body, problem", [
        (b'{"id": 5812340098113, "line_items": [', "no es JSON válido"),
        (b"[1, 2, 3]", "no es un objeto JSON"),
        (b'{"order": {"no_id": 1}}', "no trae un 'id' válido"),
        (b'{"id": {"nested": true}}', "no trae un 'id' válido"),
        (b'{"id": "' + b"9" * 500 + b'"}', "500 caracteres"),
        (b"[" * 100_000 + b"]" * 100_000, "profundidad"),
        (b'{"id": 1, "total_price": NaN}', "no es JSON válido"),
        (b'{"id": 1, "note": "a\\u0000b"}', "caracteres nulos"),
    ])
    def test_authentic_unreadable_body_is_kept_as_an_unread_order(self, gateway, client, body, problem):
        response = self.deliver(client, gateway, body, delivery_id=f"bad-{len(body)}-{hash(body)}")
        assert response.status_code == 200, response.content
        assert problem in response.json()["unreadable"]
        event = InboundEvent.objects.get(gateway=gateway)
        assert event.status == InboundEvent.Status.REJECTED and problem in event.error
        assert event.payload is None and event.body_text

    def test_accepted_order_becomes_an_order(self, gateway, client):
        from gateways import services

        self.deliver(client, gateway, self.order_body())
        order = services.inbound_event_process(event_id=InboundEvent.objects.get(gateway=gateway).pk)
        assert order is not None and Order.objects.filter(gateway=gateway).count() == 1
        assert InboundEvent.objects.get(gateway=gateway).status == InboundEvent.Status.PROCESSED

    def test_reader_refuses_without_secrets(self):
        reader = SOURCE_ADAPTERS[self.platform].webhook_reader
        body = self.order_body()
        with pytest.raises(WebhookRejected):
            reader.read(headers=self.headers(body, secret=self.secret, topic=self.order_topic), body=body,
                        secrets=[], store_url=self.store_url)


class StoreWriteBackContract:
    platform: str
    store_url: str
    write_method = "POST"

    def connection_fields(self) -> dict:  # subclass: credentials / config that can write
        raise NotImplementedError

    def write_url(self, document: IssuedDocumentInfo) -> str:  # subclass
        raise NotImplementedError

    def success(self, document: IssuedDocumentInfo) -> dict:  # subclass: the store's 2xx answer
        raise NotImplementedError

    document = IssuedDocumentInfo(
        order_external_id="727", tipo_dte=39, folio=123, total=36960, certification=True,
        note="Boleta electrónica N° 123 por $36.960 (certificación)", pdf_url="https://docs.example.cl/dte/39/123.pdf",
    )

    @pytest.fixture
    def store(self):
        with responses.RequestsMock() as mock:
            yield mock

    def connection(self, **overrides) -> SourceConnection:
        fields = {"platform": self.platform, "store_url": self.store_url, "config": {}, **self.connection_fields()}
        return SourceConnection(**{**fields, **overrides})

    def push(self, **overrides) -> str:
        return source_adapter_for(self.connection(**overrides)).push_document(self.document)

    def answer(self, store, **kwargs):
        store.add(self.write_method, self.write_url(self.document), **kwargs)

    def test_a_confirmed_write_says_what_was_written(self, store):
        self.answer(store, status=201, json=self.success(self.document))
        written = self.push()
        assert written and len(store.calls) == 1
        assert store.calls[0].request.headers["User-Agent"].startswith("BillMySales/")

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    def test_refusals_are_rejected_with_the_status(self, store, status):
        self.answer(store, status=status, json={"errors": "nope", "message": "nope"})
        with pytest.raises(SourceRejectedError) as caught:
            self.push()
        assert caught.value.status == status and f"HTTP {status}" in caught.value.message
        assert len(store.calls) == 1

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_server_errors_are_transient_and_the_write_is_not_repeated(self, store, status):
        self.answer(store, status=status, body="<html>Service unavailable</html>")
        with pytest.raises(SourceTransientError) as caught:
            self.push()
        assert caught.value.status == status and f"HTTP {status}" in caught.value.message
        assert "Service unavailable" in caught.value.message
        assert len(store.calls) == 1

    def test_rate_limit_is_transient_with_the_retry_after(self, store):
        self.answer(store, status=429, json={"errors": "Too Many Requests"}, headers={"Retry-After": "2.0"})
        with pytest.raises(SourceTransientError) as caught:
            self.push()
        assert caught.value.status == 429 and caught.value.retry_after == "2.0"
        assert "HTTP 429" in caught.value.message and "Retry-After: 2.0" in caught.value.message

    def test_rate_limit_without_retry_after_is_still_transient(self, store):
        self.answer(store, status=429, json={"errors": "Too Many Requests"})
        with pytest.raises(SourceTransientError, match="HTTP 429") as caught:
            self.push()
        assert "Retry-After" not in caught.value.message

    @pytest.mark.parametrize("error", [requests.exceptions.ReadTimeout(), requests.exceptions.ConnectTimeout(),
                                       requests.exceptions.ConnectionError()])
    def test_timeouts_and_connection_errors_are_transient(self, store, error):
        self.answer(store, body=error)
        with pytest.raises(SourceTransientError, match=type(error).__name__) as caught:
            self.push()
        assert urlsplit(self.store_url).hostname in caught.value.message
        assert len(store.calls) == 1

    @pytest.mark.parametrize("body", ["<html>Verify you are human</html>", "", "[]"])
    def test_a_success_that_does_not_confirm_the_write_is_transient(self, store, body):
        self.answer(store, status=200, body=body, content_type="text/html")
        with pytest.raises(SourceTransientError, match="pudo haberse escrito") as caught:
            self.push()
        assert caught.value.status == 200

    def test_a_redirect_is_not_followed(self, store):
        self.answer(store, status=301, headers={"Location": "https://elsewhere.example.cl/"})
        with pytest.raises(SourceRejectedError, match="HTTP 301.*elsewhere.example.cl") as caught:
            self.push()
        assert caught.value.status == 301 and len(store.calls) == 1

    def test_plain_http_store_url_is_refused_before_any_request(self, store):
        with pytest.raises(SourceRejectedError, match="https://"):
            self.push(store_url=self.store_url.replace("https://", "http://"))
        assert len(store.calls) == 0
