"""What the adapter kit fixed, as a new user and a fault probe found it: unregistered vendors, the test
sale per store, signed bodies of the wrong shape, crashing ingests, and the 500s of the probe."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import User
from billers.models import BillerConnection, Environment
from billers.registry import BILLER_ADAPTERS
from gateways import services
from gateways.emission import emission_run
from gateways.models import EmissionAttempt, EmissionStatus, InboundEvent, Order, OrderStatus
from gateways.sweeper import stuck_work_requeue
from sources.demo.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER, DemoWebhookReader
from sources.registry import SOURCE_ADAPTERS
from sources.services import source_connection_create
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.sources.factories import DEMO_SECRET

ROOT = Path(__file__).resolve().parents[2]
NOT_REGISTERED_BILLERS = [name for name in ("libredte", "bhexpress", "webfactura", "acme-facturas") if name not in BILLER_ADAPTERS]
NOT_REGISTERED_SOURCES = [name for name in ("multivende", "prestashop") if name not in SOURCE_ADAPTERS]


def demo_post(client, gateway, body: bytes, delivery_id: str, topic: str = "orders/paid"):
    headers = {SIGNATURE_HEADER: DemoWebhookReader.sign(body, DEMO_SECRET), DELIVERY_HEADER: delivery_id, TOPIC_HEADER: topic}
    return client.post(f"/hooks/{gateway.webhook_token}/", body, content_type="application/json", headers=headers)


# --- the registries own the vocabulary ---------------------------------------------------------


@pytest.mark.parametrize("provider", NOT_REGISTERED_BILLERS)
def test_a_biller_without_an_adapter_cannot_be_chosen(api_client, account, provider):
    response = api_client.post("/api/v1/billers/", {
        "name": "Mi facturador", "provider": provider, "emisor_rut": "76086428-5",
        "emisor_razon_social": "Comercial Los Andes SpA", "emisor_giro": "Comercio",
    }, format="json")
    assert response.status_code == 400
    assert provider in json.dumps(response.json(), ensure_ascii=False)
    assert not BillerConnection.objects.exists()


@pytest.mark.parametrize("platform", NOT_REGISTERED_SOURCES)
def test_a_store_without_an_adapter_cannot_be_chosen(api_client, account, platform):
    response = api_client.post("/api/v1/sources/", {"name": "Mi tienda", "platform": platform, "store_url": "https://x.cl"},
                               format="json")
    assert response.status_code == 400
    assert platform in json.dumps(response.json(), ensure_ascii=False)


def test_the_api_offers_only_registered_vendors(api_client, account):
    biller = api_client.options("/api/v1/billers/").json()["actions"]["POST"]["provider"]["choices"]
    source = api_client.options("/api/v1/sources/").json()["actions"]["POST"]["platform"]["choices"]
    assert {c["value"] for c in biller} == set(BILLER_ADAPTERS)
    assert {c["value"] for c in source} == set(SOURCE_ADAPTERS)


def test_an_order_for_an_old_row_naming_an_unregistered_biller_is_held_with_the_reason(account):
    gateway = GatewayFactory(account=account, biller__provider="acme-facturas")

    order = services.order_ingest(gateway=gateway, raw=sample_order(number=61))

    assert order.status == OrderStatus.HELD
    assert "acme-facturas" in order.status_reason and "no está disponible" in order.status_reason
    assert not order.emissions.exists()


def test_an_emission_whose_biller_lost_its_adapter_is_held_not_left_issuing(account, actor):
    gateway = GatewayFactory(account=account)
    order = services.order_ingest(gateway=gateway, raw=sample_order(number=62))
    emission = order.emissions.get()
    BillerConnection.objects.filter(pk=gateway.biller_id).update(provider="acme-facturas")

    assert emission_run(emission_id=emission.pk) is None

    emission.refresh_from_db()
    order.refresh_from_db()
    assert (emission.status, order.status) == (EmissionStatus.HELD, OrderStatus.HELD)
    assert "acme-facturas" in order.status_reason
    assert list(emission.attempts.values_list("outcome", flat=True)) == [EmissionAttempt.Outcome.UNKNOWN]
    # The way out exists: the order can be skipped with a reason.
    assert services.order_skip(order=order, reason="facturador dado de baja", actor=actor).status == OrderStatus.SKIPPED


def test_webhook_of_a_store_without_an_adapter_is_a_clear_400(account, client):
    gateway = GatewayFactory(account=account, source__platform="prestashop")
    response = client.post(f"/hooks/{gateway.webhook_token}/", b"{}", content_type="application/json")
    assert response.status_code == 400
    assert "prestashop" in response.json()["error"]


# --- the test sale runs on every store, in the store's own shape ---------------------------------


@pytest.mark.parametrize("platform, store_url", [
    ("demo", ""), ("shopify", "https://tienda-chile.myshopify.com"), ("woocommerce", "https://tiendavalpo.cl"),
])
def test_the_test_sale_passes_on_each_store_with_the_sandbox(account, actor, platform, store_url):
    gateway = GatewayFactory(account=account, source__platform=platform, source__store_url=store_url, active=False)

    report = services.gateway_test_sale(gateway=gateway, actor=actor)

    assert report.ok, report.as_dict()
    assert [step.name for step in report.steps] == [
        "Facturador en certificación", "Orden de prueba recibida", "Reglas", "Emisión", "Cuadre",
    ]
    order = Order.objects.get(pk=report.order_id)
    assert order.is_test and order.status == OrderStatus.ISSUED


# --- signed bodies of the wrong shape: read, refused with the reason, shown -------------------------


def _shaped(patch) -> dict:
    order = sample_order(number=77)
    patch(order)
    return order


MALFORMED = [
    ("billing_address is a string", lambda o: o.update(billing_address="Av. Providencia 1234"), "billing_address debe ser un objeto"),
    ("customer is a list", lambda o: o.update(billing_address=None, shipping_address=None, customer=[1, 2]),
     "customer debe ser un objeto"),
    ("price of 1e30", lambda o: o["line_items"][0].update(price=1e30), "excede el máximo"),
    ("line_items is an object", lambda o: o.update(line_items={"id": 1}), "line_items debe ser una lista de objetos"),
    ("quantity is text", lambda o: o["line_items"][0].update(quantity="dos"), "quantity no es un número"),
    ("currency is not a code", lambda o: o.update(currency="CL$"), "no es un código de moneda"),
    ("currency is a sentence", lambda o: o.update(currency="PESOS CHILENOS"), "currency tiene 14 caracteres"),
    ("created_at is a number", lambda o: o.update(created_at=20261129), "created_at no es una fecha ISO 8601"),
    ("name is an object", lambda o: o["line_items"][0].update(name={"es": "Polera"}), "line_items[0].name debe ser texto"),
    ("email is a list", lambda o: o.update(email=["a@b.cl"]), "email debe ser texto"),
    ("refunds is an object", lambda o: o.update(refunds={"id": 1}), "refunds debe ser una lista de objetos"),
    ("total of 10^13", lambda o: o.update(total_price="10000000000000.00"), "excede el máximo"),
    ("line id of 500 characters", lambda o: o["line_items"][0].update(id="x" * 500), "line_items[0].id tiene 500 caracteres"),
]


@pytest.mark.parametrize("label, patch, reason", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_signed_body_of_the_wrong_shape_is_rejected_with_the_reason_and_shown(account, client, session_client, label, patch, reason):
    gateway = GatewayFactory(account=account)
    healthy = demo_post(client, gateway, json.dumps(sample_order(number=78)).encode(), "healthy")
    response = demo_post(client, gateway, json.dumps(_shaped(patch)).encode(), "malformed")
    assert (healthy.status_code, response.status_code) == (200, 200)

    for event in InboundEvent.objects.filter(gateway=gateway).order_by("id"):
        services.inbound_event_process(event_id=event.pk)

    event = InboundEvent.objects.get(gateway=gateway, delivery_id="malformed")
    assert event.status == InboundEvent.Status.REJECTED and reason in event.error, event.error
    # Nothing else affected: the healthy order of the same gateway went through.
    assert InboundEvent.objects.get(gateway=gateway, delivery_id="healthy").status == InboundEvent.Status.PROCESSED
    assert Order.objects.filter(gateway=gateway).count() == 1
    page = session_client.get(f"/gateways/{gateway.pk}/").content.decode()
    assert "Pedidos no leídos" in page and reason in page.replace("&#x27;", "'")
    # Read, refused and shown: never queued again.
    assert stuck_work_requeue() == {"events": 0, "emissions": 0, "webhooks": 0, "voids": 0}


def test_an_ingest_that_keeps_crashing_is_parked_after_n_attempts(account, actor, client, monkeypatch, settings):
    gateway = GatewayFactory(account=account)
    demo_post(client, gateway, json.dumps(sample_order(number=79)).encode(), "crashes")
    event = InboundEvent.objects.get(gateway=gateway)

    def boom(**kwargs):
        raise RuntimeError("numeric field overflow")

    monkeypatch.setattr("gateways.services.ingest._order_ingest", boom)
    for _ in range(settings.BMS_INGEST_MAX_ATTEMPTS + 2):
        services.inbound_event_process(event_id=event.pk)
    event.refresh_from_db()

    assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, settings.BMS_INGEST_MAX_ATTEMPTS)
    assert "numeric field overflow" in event.error
    settings.BMS_STUCK_AFTER_SECONDS = 0
    assert stuck_work_requeue()["events"] == 0

    monkeypatch.undo()
    services.inbound_event_reprocess(event=event, actor=actor)
    services.inbound_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED and Order.objects.filter(gateway=gateway).count() == 1


# --- the probe's 500s ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/gateways/{pk}/activate.json", "/api/v1/gateways/{pk}/test-sale.json",
                                  "/api/v1/gateways.json"])
def test_a_json_suffix_is_a_404_not_a_500(api_client, account, path):
    gateway = GatewayFactory(account=account)
    assert api_client.post(path.format(pk=gateway.pk), {}, format="json").status_code == 404


@pytest.mark.parametrize("field, value", [
    ("exclude_tags", "demo"), ("exclude_skus", 5), ("factura_choice_values", {"a": 1}), ("field_mapping", ["rut"]),
    ("field_mapping", {"rut": {"path": "x"}}), ("min_amount", "mucho"), ("paid_only", "quizás"), ("exempt_tags", [[1], {}]),
])
def test_rule_fields_of_the_wrong_json_type_are_a_400(api_client, account, field, value):
    gateway = GatewayFactory(account=account)
    response = api_client.patch(f"/api/v1/gateways/{gateway.pk}/rules/", {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_rules_form_with_a_field_mapping_that_is_not_an_object_shows_the_error(session_client, account):
    gateway = GatewayFactory(account=account)
    response = session_client.post(f"/gateways/{gateway.pk}/rules/", {
        "default_document_type": 39, "price_basis": "gross", "mode": "auto", "min_amount": 0, "field_mapping": "[1, 2]",
    })
    assert response.status_code == 200
    assert "Debe ser un objeto" in response.content.decode()


def test_a_signed_body_nested_100000_levels_is_kept_as_unread_not_a_500(account, client):
    gateway = GatewayFactory(account=account)
    response = demo_post(client, gateway, b"[" * 100_000 + b"]" * 100_000, "deep")
    assert response.status_code == 200
    assert InboundEvent.objects.get(gateway=gateway).status == InboundEvent.Status.REJECTED


def test_an_api_body_nested_100000_levels_is_a_400(api_client, account):
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api_client.post("/api/v1/sources/", body, content_type="application/json")
    assert response.status_code == 400


def test_bodies_over_the_limit_get_413_with_a_json_error(account, client, api_client, settings):
    settings.BMS_MAX_BODY_BYTES = 5 * 1024 * 1024
    gateway = GatewayFactory(account=account)
    big = b'{"id": 1, "note": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    assert demo_post(client, gateway, big, "big").status_code == 413
    answer = api_client.post("/api/v1/sources/", big, content_type="application/json")
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    assert not InboundEvent.objects.exists()


def test_the_largest_real_orders_fit_under_the_limit(account, client, settings):
    # 900 lines, each with the customisation properties that personalised products carry: about 4.5 MB.
    order = sample_order(number=80)
    properties = [{"name": f"Grabado {k}", "value": "Texto personalizado del cliente " * 4} for k in range(35)]
    order["line_items"] = [dict(order["line_items"][0], id=n, properties=properties) for n in range(900)]
    body = json.dumps(order).encode()
    assert settings.BMS_MAX_BODY_BYTES >= 5 * 1024 * 1024
    assert 4_000_000 < len(body) < settings.BMS_MAX_BODY_BYTES
    assert demo_post(client, GatewayFactory(account=account), body, "big-real").status_code == 200


# --- the Demo store, the demo seed, the encryption keys ------------------------------------------


def test_the_demo_store_can_only_be_wired_to_a_certification_biller(account, actor):
    gateway = GatewayFactory(account=account)
    production = BillerConnection.objects.create(
        account=account, name="Producción", provider="sandbox", environment=Environment.PRODUCTION,
        emisor_rut="76086428-5", emisor_razon_social="X", emisor_giro="Y",
    )
    with pytest.raises(ValidationError, match="solo se puede conectar a un facturador en certificación"):
        services.gateway_create(account=account, name="x", source=gateway.source, biller=production,
                                environment="production", actor=actor)


def test_a_demo_connection_always_gets_a_webhook_secret(account, actor):
    source = source_connection_create(account=account, actor=actor, name="Demo", platform="demo")
    assert len(source.credentials["webhook_secret"]) >= 32


def test_seed_demo_refuses_under_settings_that_do_not_allow_it(db, settings):
    settings.BMS_DEMO_SEED_ALLOWED = False
    with pytest.raises(CommandError, match="demo"):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_seed_demo_user_is_not_staff_and_the_support_user_is_separate(db, settings):
    settings.BMS_DEMO_SEED_ALLOWED = True
    call_command("seed_demo", stdout=open(os.devnull, "w"))
    assert User.objects.get(email="demo@billmysales.local").is_staff is False
    assert User.objects.get(email="soporte-demo@billmysales.local").is_staff is True


def test_production_settings_do_not_allow_the_demo_seed():
    text = (ROOT / "billmysales" / "settings" / "production.py").read_text()
    assert "BMS_DEMO_SEED_ALLOWED = False" in text


def test_a_malformed_encryption_key_stops_the_process_naming_the_setting():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "billmysales.settings.local", "FIELD_ENCRYPTION_KEYS": "not-a-key",
           "BMS_VAR_DIR": str(ROOT / "var" / "keys-test")}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 1 of 1 is not a valid Fernet key" in result.stderr
