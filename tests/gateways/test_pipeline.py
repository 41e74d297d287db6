"""The pipeline's services end to end in one process: ingest → rules → emission → document → credit notes."""
import copy
from datetime import UTC
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from billers.base import Checkpoint
from billers.models import Environment, SandboxDocument
from billers.sandbox.adapter import SandboxAdapter
from gateways import services
from gateways.emission import emission_run
from gateways.models import Document, DocumentKind, Emission, EmissionAttempt, EmissionStatus, OrderStatus, SideEffect
from gateways.services import gateway_test_sale
from gateways.side_effects import document_side_effects_run
from gateways.sweeper import stuck_work_requeue
from sources.base import DocumentWriteBack, SourceError
from sources.demo.adapter import DemoSource
from sources.registry import SOURCE_ADAPTERS
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory
from tests.gateways.pipeline_helpers import run_pending, with_refund


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account)


@pytest.fixture
def payload():
    return sample_order(number=5001)


def paid(payload) -> int:
    return int(Decimal(payload["total_price"]))


def test_paid_order_becomes_one_boleta_for_what_was_paid(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.READY
    [document] = run_pending(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.ISSUED
    assert (document.tipo_dte, document.folio, document.mnt_total) == (39, 1, paid(payload))
    assert document.totals["MntNeto"] + document.totals["IVA"] == paid(payload)
    assert EmissionAttempt.objects.get(emission__order=order).outcome == "success"


def test_redelivered_order_updates_its_row_and_is_never_reissued(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    run_pending(order)
    changed = copy.deepcopy(payload)
    changed["line_items"][0]["quantity"] += 5
    again = services.order_ingest(gateway=gateway, raw=changed)
    assert again.pk == order.pk
    assert run_pending(again) == []
    assert Document.objects.filter(order=order).count() == 1
    assert SandboxDocument.objects.count() == 1


def test_emission_run_twice_issues_once(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    emission_run(emission_id=emission.pk)
    assert emission_run(emission_id=emission.pk) is None
    assert SandboxDocument.objects.count() == 1


def test_full_refund_annuls_with_one_credit_note_and_a_repeat_adds_none(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    [invoice] = run_pending(order)
    refunded = with_refund(payload, refund_id=77, amount=paid(payload))
    services.order_ingest(gateway=gateway, raw=refunded)
    [credit_note] = run_pending(order)
    assert (credit_note.kind, credit_note.tipo_dte, credit_note.mnt_total) == (DocumentKind.CREDIT_NOTE, 61, paid(payload))
    assert credit_note.credited_document == invoice
    xml = bytes(credit_note.xml).decode("latin-1")
    assert "<CodRef>1</CodRef>" in xml and f"<FolioRef>{invoice.folio}</FolioRef>" in xml
    services.order_ingest(gateway=gateway, raw=refunded)
    services.order_ingest(gateway=gateway, raw=with_refund(refunded, refund_id=78, amount=1000))
    assert run_pending(order) == []
    assert Document.objects.filter(order=order, kind=DocumentKind.CREDIT_NOTE).count() == 1


def test_partial_refund_corrects_amounts_then_cancellation_credits_only_the_rest(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    [invoice] = run_pending(order)
    line = payload["line_items"][0]
    line_gross = int(Decimal(line["price"]))
    partial = with_refund(payload, refund_id=90, amount=line_gross, lines=[(line["id"], 1, line_gross)])
    services.order_ingest(gateway=gateway, raw=partial)
    [credit_note] = run_pending(order)
    assert credit_note.mnt_total == line_gross
    assert "<CodRef>3</CodRef>" in bytes(credit_note.xml).decode("latin-1")
    cancelled = copy.deepcopy(partial)
    cancelled["cancelled_at"] = payload["created_at"]
    cancelled = with_refund(cancelled, refund_id=91, amount=paid(payload) - line_gross)
    services.order_ingest(gateway=gateway, raw=cancelled)
    [rest] = run_pending(order)
    assert rest.mnt_total == invoice.mnt_total - line_gross
    assert sum(d.mnt_total for d in order.documents.filter(kind=DocumentKind.CREDIT_NOTE)) == invoice.mnt_total


def test_refund_arriving_while_invoice_is_in_flight_becomes_a_credit_note_after_issue(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    services.order_ingest(gateway=gateway, raw=with_refund(payload, refund_id=5, amount=paid(payload)))
    assert order.emissions.count() == 1
    run_pending(order)
    services.order_refunds_sync(order_id=order.pk)
    [credit_note] = run_pending(order)
    assert credit_note.mnt_total == paid(payload)


def test_manual_mode_waits_for_a_person(gateway, payload, actor):
    gateway.ruleset.mode = "manual"
    gateway.ruleset.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.WAITING and "manual" in order.status_reason.lower()
    assert not order.emissions.exists()
    services.order_emit_now(order=order, actor=actor)
    [document] = run_pending(order)
    assert document.mnt_total == paid(payload)
    with pytest.raises(ValidationError, match="ya está"):
        services.order_emit_now(order=order, actor=actor)


def test_factura_with_invalid_rut_is_held_not_downgraded(gateway, payload):
    payload["note_attributes"] = [
        {"name": "documento", "value": "Factura"},
        {"name": "rut", "value": "76.086.428-4"},
        {"name": "razon_social", "value": "Comercial Los Andes SpA"},
        {"name": "giro", "value": "Comercio"},
    ]
    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.HELD
    assert "76.086.428-4" in order.status_reason
    assert not order.emissions.exists()


def test_factura_with_valid_rut_is_issued_as_33_squared_to_the_peso(gateway, payload):
    payload["note_attributes"] = [
        {"name": "documento", "value": "factura"},
        {"name": "rut", "value": "76.086.428-5"},
        {"name": "razon_social", "value": "Comercial Los Andes SpA"},
        {"name": "giro", "value": "Venta de artículos de regalo"},
    ]
    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.READY, order.status_reason
    [document] = run_pending(order)
    assert document.tipo_dte == 33
    assert document.mnt_total == paid(payload)
    assert "<RUTRecep>76086428-5</RUTRecep>" in bytes(document.xml).decode("latin-1")


def test_foreign_currency_is_held_with_a_reason(gateway, payload):
    payload["currency"] = "USD"
    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.HELD
    assert "USD" in order.status_reason


def test_rejected_document_fails_at_once_with_the_billers_message(gateway, payload):
    gateway.biller.config = {"reject_all": "RUT emisor sin autorización para boletas"}
    gateway.biller.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    run_pending(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert "sin autorización" in order.status_reason
    assert list(EmissionAttempt.objects.filter(emission__order=order).values_list("outcome", flat=True)) == ["rejected"]


def test_transient_errors_back_off_then_fail_and_show(gateway, payload, settings):
    settings.BMS_RETRY_DELAYS = [0, 0]
    gateway.biller.config = {"fail_rate": 1}
    gateway.biller.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    emission_run(emission_id=emission.pk)
    emission.refresh_from_db()
    assert emission.status == EmissionStatus.PENDING and emission.next_attempt_at is not None
    for _ in range(2):
        Emission.objects.filter(pk=emission.pk).update(next_attempt_at=None)
        emission_run(emission_id=emission.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert "3 intentos" in order.status_reason
    assert EmissionAttempt.objects.filter(emission=emission, outcome="transient").count() == 3
    assert SandboxDocument.objects.count() == 0


def test_retry_delays_grow_with_jitter(gateway, settings):
    from gateways.emission import _retry_delay

    settings.BMS_RETRY_DELAYS = [60, 300, 1800, 7200, 43200]
    assert 48 <= _retry_delay(1) <= 72
    assert 34560 <= _retry_delay(5) <= 51840
    assert _retry_delay(6) is None


def test_lost_answer_is_reconciled_not_reissued(gateway, payload):
    gateway.biller.config = {"lost_answer_rate": 1}
    gateway.biller.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    emission_run(emission_id=emission.pk)
    assert SandboxDocument.objects.count() == 1
    Emission.objects.filter(pk=emission.pk).update(next_attempt_at=None)
    document = emission_run(emission_id=emission.pk)
    assert document is not None and SandboxDocument.objects.count() == 1
    outcomes = list(EmissionAttempt.objects.filter(emission=emission).order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["transient", "reconciled"]


def test_dead_worker_attempt_is_reconciled_after_the_lease(gateway, payload, settings):
    settings.BMS_EMISSION_LEASE_SECONDS = 0
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    from gateways.emission import emission_claim

    assert emission_claim(emission_id=emission.pk) is not None  # the worker claimed it, then died
    document = emission_run(emission_id=emission.pk)
    assert document is not None
    outcomes = list(EmissionAttempt.objects.filter(emission=emission).order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["unknown", "success"]


def test_in_flight_attempt_is_left_alone_within_the_lease(gateway, payload, settings):
    settings.BMS_EMISSION_LEASE_SECONDS = 600
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    from gateways.emission import emission_claim

    emission_claim(emission_id=emission.pk)
    assert emission_run(emission_id=emission.pk) is None
    assert SandboxDocument.objects.count() == 0


def test_sweeper_requeues_stuck_work(gateway, payload, settings, purge_broker, django_capture_on_commit_callbacks):
    settings.BMS_STUCK_AFTER_SECONDS = 0
    settings.BMS_EMISSION_LEASE_SECONDS = 0
    order = services.order_ingest(gateway=gateway, raw=payload)
    Emission.objects.filter(order=order).update(updated_at=order.updated_at.replace(year=2025))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = stuck_work_requeue()
    assert counts["emissions"] == 1 and len(callbacks) == 1
    settings.BMS_STUCK_AFTER_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert stuck_work_requeue() == {"events": 0, "emissions": 0, "webhooks": 0, "voids": 0}  # just re-queued: not again yet
    assert callbacks == []


def test_skip_and_retry_actions(gateway, payload, actor):
    gateway.biller.config = {"reject_all": "folios agotados"}
    gateway.biller.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    run_pending(order)
    gateway.biller.config = {}
    gateway.biller.save()
    services.order_retry(order=order, actor=actor)
    [document] = run_pending(order)
    assert document.folio == 1
    with pytest.raises(ValidationError):
        services.order_skip(order=order, reason="duplicado", actor=actor)


def test_skip_needs_a_reason_and_is_audited(gateway, payload, actor):
    gateway.ruleset.mode = "manual"
    gateway.ruleset.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    with pytest.raises(ValidationError):
        services.order_skip(order=order, reason=" ", actor=actor)
    services.order_skip(order=order, reason="pedido de prueba interno", actor=actor)
    order.refresh_from_db()
    assert order.status == OrderStatus.SKIPPED and "prueba interno" in order.status_reason
    assert order.account.audit_logs.filter(action="order.skip").exists()


def test_orders_before_activation_wait_for_a_backfill(gateway, payload, actor):
    gateway.active = False
    gateway.save()
    services.gateway_activate(gateway=gateway, actor=actor, reason="probado a mano")
    old = copy.deepcopy(payload)
    old["created_at"] = "2026-01-05T10:00:00-03:00"
    order = services.order_ingest(gateway=gateway, raw=old)
    assert order.status == OrderStatus.SKIPPED
    from datetime import datetime

    count = services.orders_backfill(
        gateway=gateway, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 2, 1, tzinfo=UTC), actor=actor
    )
    order.refresh_from_db()
    assert count == 1 and order.status == OrderStatus.READY


def test_side_effects_email_the_buyer_once(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=payload)
    [document] = run_pending(order)
    document_side_effects_run(document_id=document.pk)
    document_side_effects_run(document_id=document.pk)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [payload["email"]]
    names = [attachment[0] for attachment in mail.outbox[0].attachments]
    assert names == [f"DTE_T39_F{document.folio}.pdf", f"DTE_T39_F{document.folio}.xml"]
    assert mail.outbox[0].attachments[0][1].startswith(b"%PDF")
    outcomes = dict(SideEffect.objects.filter(document=document).values_list("kind", "outcome"))
    assert outcomes == {"email": "done", "store_writeback": "n/a", "webhook": "n/a"}


def test_test_sale_reports_each_step_in_certification(gateway, actor):
    report = gateway_test_sale(gateway=gateway, actor=actor)
    assert report.ok, report.as_dict()
    assert [s.name for s in report.steps] == ["Facturador en certificación", "Orden de prueba recibida", "Reglas", "Emisión", "Cuadre"]
    document = Document.objects.get(pk=report.document_id)
    assert document.certification and document.order.is_test


def test_test_sale_refuses_a_production_biller(gateway, actor):
    gateway.biller.environment = Environment.PRODUCTION
    gateway.biller.save()
    report = gateway_test_sale(gateway=gateway, actor=actor)
    assert not report.ok
    assert "certificación" in report.steps[0].detail
    assert not Document.objects.exists()


def test_certification_gateway_requires_a_certification_biller(account, actor):
    gateway = GatewayFactory(account=account, biller__environment=Environment.PRODUCTION, environment="production")
    with pytest.raises(ValidationError, match="certificación"):
        services.gateway_create(
            account=account, name="x", source=gateway.source, biller=gateway.biller, environment="certification", actor=actor
        )


def test_emit_now_after_a_rejection_builds_a_new_document_from_corrected_data(gateway, payload, actor):
    gateway.biller.config = {"reject_all": "RUT receptor no autorizado"}
    gateway.biller.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    run_pending(order)
    gateway.biller.config = {}
    gateway.biller.save()
    order = services.order_emit_now(order=order, actor=actor)
    assert order.status == OrderStatus.READY
    [document] = run_pending(order)
    assert document.sequence == 2 and order.emissions.count() == 2


def test_emit_now_never_replaces_an_emission_that_may_have_been_issued(gateway, payload, actor, settings):
    settings.BMS_RETRY_DELAYS = []
    gateway.biller.config = {"lost_answer_rate": 1}
    gateway.biller.save()
    order = services.order_ingest(gateway=gateway, raw=payload)
    run_pending(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED  # one transient error, no retries configured
    gateway.biller.config = {}
    gateway.biller.save()
    order = services.order_emit_now(order=order, actor=actor)
    [document] = run_pending(order)
    assert order.emissions.count() == 1
    assert SandboxDocument.objects.count() == 1
    assert EmissionAttempt.objects.filter(emission__order=order).order_by("-number").first().outcome == "reconciled"


def test_emit_now_reports_when_the_rules_still_say_no(gateway, payload, actor):
    payload["currency"] = "USD"
    order = services.order_ingest(gateway=gateway, raw=payload)
    order = services.order_emit_now(order=order, actor=actor)
    assert order.status == OrderStatus.HELD and "USD" in order.status_reason
    assert not order.emissions.exists()


class _RefusingStore(DemoSource, DocumentWriteBack):
    def push_document(self, document):
        raise SourceError("403 Forbidden: token sin permiso write_orders")


class _WritingStore(DemoSource, DocumentWriteBack):
    pushed: list = []

    def push_document(self, document):
        self.pushed.append(document)
        return f"Nota en la orden {document.order_external_id}: DTE {document.tipo_dte} N° {document.folio}"


@pytest.mark.parametrize("store, outcome, message", [
    (_RefusingStore, "failed", "write_orders"),
    (_WritingStore, "done", "N° 1"),
])
def test_store_write_back_is_recorded_and_never_touches_the_document(gateway, payload, monkeypatch, store, outcome, message):
    monkeypatch.setitem(SOURCE_ADAPTERS, "demo", store)
    order = services.order_ingest(gateway=gateway, raw=payload)
    [document] = run_pending(order)
    document_side_effects_run(document_id=document.pk)
    effect = SideEffect.objects.get(document=document, kind="store_writeback")
    assert effect.outcome == outcome and message in effect.message
    document.refresh_from_db()
    assert document.folio == 1 and Document.objects.filter(order=order).count() == 1


def test_document_pdf_downloads_from_dashboard_and_api(gateway, payload, session_client, api_client):
    order = services.order_ingest(gateway=gateway, raw=payload)
    [document] = run_pending(order)
    for client, url in ((session_client, f"/documents/{document.pk}/pdf/"), (api_client, f"/api/v1/documents/{document.pk}/pdf/")):
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        assert f'DTE_T39_F{document.folio}.pdf' in response["Content-Disposition"]


def test_redelivery_of_an_order_held_for_review_leaves_the_held_emission_in_charge(gateway, payload, settings):
    settings.BMS_EMISSION_LEASE_SECONDS = 0
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    Emission.objects.filter(pk=emission.pk).update(status=EmissionStatus.HELD, status_reason="Resultado desconocido")
    order.__class__.objects.filter(pk=order.pk).update(status=OrderStatus.HELD, status_reason="Resultado desconocido")
    again = services.order_ingest(gateway=gateway, raw=payload)
    again.refresh_from_db()
    assert again.status == OrderStatus.HELD and again.status_reason == "Resultado desconocido"
    assert again.emissions.count() == 1


def _many_lines(payload: dict, count: int) -> dict:
    payload = copy.deepcopy(payload)
    template = payload["line_items"][0]
    payload["line_items"] = [
        {**template, "id": 9000 + n, "sku": f"SKU-{n}", "title": f"Artículo {n}", "name": f"Artículo {n}", "quantity": 1, "price": "1990.00"}
        for n in range(count)
    ]
    total = 1990 * count + sum(int(Decimal(s["price"])) for s in payload["shipping_lines"])
    payload["total_price"] = payload["current_total_price"] = f"{total}.00"
    return payload


def test_a_boleta_takes_more_than_60_lines(gateway, payload):
    order = services.order_ingest(gateway=gateway, raw=_many_lines(payload, 75))
    [document] = run_pending(order)
    assert document.tipo_dte == 39 and document.mnt_total == int(Decimal(order.paid_total))
    assert bytes(document.xml).count(b"<NroLinDet>") >= 75


def test_a_factura_over_60_lines_is_held_with_the_reason(gateway, payload):
    payload = _many_lines(payload, 61)
    payload["note_attributes"] = [
        {"name": "documento", "value": "factura"}, {"name": "rut", "value": "76.086.428-5"},
        {"name": "razon_social", "value": "Comercial Los Andes SpA"}, {"name": "giro", "value": "Comercio"},
    ]
    order = services.order_ingest(gateway=gateway, raw=payload)
    assert order.status == OrderStatus.HELD
    assert "60" in order.status_reason
    assert not order.emissions.exists()


def test_a_late_answer_after_another_worker_recorded_the_document_keeps_one_document(gateway, payload, settings):
    from gateways.emission import Outcome, _record_success, emission_claim

    settings.BMS_EMISSION_LEASE_SECONDS = 0
    order = services.order_ingest(gateway=gateway, raw=payload)
    emission = order.emissions.get()
    slow_claim = emission_claim(emission_id=emission.pk)  # worker A claims, then stalls past the lease
    recorded = emission_run(emission_id=emission.pk)  # worker B reconciles and issues
    late = _record_success(slow_claim, SandboxAdapter(gateway.biller).find_by_reference(emission.reference, Checkpoint()), 0.0, Outcome.SUCCESS)
    assert late == recorded
    assert Document.objects.filter(order=order).count() == 1
