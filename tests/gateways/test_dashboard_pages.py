"""The everyday pages through Django's test client: home (gateway states, charts), orders (filters, search,
keyset pages, live rows, bulk actions with progress, unread deliveries) and one order's page (Spanish
labels, preview, documents, actions where they apply, masked payload), with tenancy and read-only roles."""
import copy
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from gateways import selectors, services
from gateways.models import BulkJob, InboundEvent, Order, OrderStatus
from gateways.services.bulk_jobs import bulk_job_run
from sources.models import SourceConnection
from sources.shopify.samples import sample_order
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.gateways.factories import GatewayFactory, OrderFactory
from tests.gateways.pipeline_helpers import run_pending, with_refund

FACTURA_NOTES = [
    {"name": "documento", "value": "factura"},
    {"name": "rut", "value": "76.086.428-5"},
    {"name": "razon_social", "value": "Comercial Los Andes SpA"},
    {"name": "giro", "value": "Venta de artículos de regalo"},
]
# Codes of the engine, the pipeline and Python that must never reach a person on the order page.
RAW_CODES = re.compile(
    r">\s*(paid|emit|hold|skip|wait|issued|failed|held|rejected|success|transient|invoice|credit_note|store_writeback|"
    r"pending|not_paid|auto_mode|manual_mode|currency|RejectedError|TransientError|RejectedBillerError)\s*<"
)


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account, name="Tienda Shopify Chile")


def issue(gateway, number: int, **changes):
    order = services.order_ingest(gateway=gateway, raw={**sample_order(number=number), **changes})
    run_pending(order)
    order.refresh_from_db()
    return order


def fail(gateway, number: int, message: str = "Sin folios disponibles para boletas: cargue folios"):
    gateway.biller.config = {"reject_all": message}
    gateway.biller.save()
    order = issue(gateway, number)
    gateway.biller.config = {}
    gateway.biller.save()
    return order


def page(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="order-(\d+)"', html)]


@pytest.fixture
def viewer_client(client, account):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)
    return client


# --- Home ------------------------------------------------------------------------------------------

def test_home_shows_each_gateway_state_with_the_link_that_fixes_it(session_client, account, gateway):
    healthy = GatewayFactory(account=account, name="Tienda sin problemas")
    issue(healthy, 10)
    fail(gateway, 11)
    issue(gateway, 12, currency="USD")
    InboundEvent.objects.create(account=account, gateway=gateway, delivery_id="d-1", payload={"id": 1},
                                status=InboundEvent.Status.REJECTED, error="Falta el total del pedido (total_price).")
    SourceConnection.objects.filter(pk=gateway.source_id).update(
        status=SourceConnection.Status.RECONNECT, status_message="El token de la tienda fue revocado.")
    inactive = GatewayFactory(account=account, name="Tienda nueva", active=False)

    html = page(session_client, "/")

    cards = dict(re.findall(r'<article class="card h-100 bms-gateway bms-gateway-(\w+)" aria-labelledby="gateway-(\d+)-name"', html))
    assert {int(pk): state for state, pk in cards.items()} == {
        gateway.pk: "needs_attention", healthy.pk: "active", inactive.pk: "inactive"}
    assert "El token de la tienda fue revocado." in html and "Reconectar la tienda" in html
    assert "El facturador no tiene folios" in html and "Sin folios disponibles para boletas" in html
    assert "1 orden fallida" in html and "1 orden retenida para revisión" in html and "1 pedido no leído" in html
    assert f'href="/orders/?status=failed&amp;gateway={gateway.pk}"' in html
    assert f'href="/orders/?status=held&amp;gateway={gateway.pk}"' in html


def test_home_charts_are_server_drawn_svg_with_their_data(session_client, account, gateway):
    first, second = issue(gateway, 20), issue(gateway, 21)
    fail(gateway, 22)
    total = first.documents.get().mnt_total + second.documents.get().mnt_total

    html = page(session_client, "/")

    assert html.count("<svg") == 3
    assert len(re.findall(r'<rect class="bms-bar-t39" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+">', html)) == 1
    assert '<rect class="bms-bar-amount"' in html and '<rect class="bms-bar-failure"' in html
    assert 'Documentos por día <span class="text-muted small">(2)</span>' in html
    assert f'Monto facturado por día <span class="text-muted small">(${total:,})</span>'.replace(",", ".") in html
    assert "Sin folios en el facturador" in html
    assert "style=" not in html and "<script>" not in html


def test_home_without_orders_says_so(session_client, account, gateway):
    html = page(session_client, "/")
    assert "Ninguna orden falló ni quedó retenida en este período." in html
    assert "Sin datos en el período" in html


def test_home_without_gateways_leads_writers_to_the_setup(session_client, account):
    assert 'href="/setup/">Crear la primera pasarela' in page(session_client, "/")


def test_home_without_gateways_offers_viewers_no_setup(viewer_client, account):
    html = page(viewer_client, "/")
    assert "Aún no hay pasarelas" in html and 'href="/setup/"' not in html


# --- Orders: filters, search, pages --------------------------------------------------------------

def test_orders_filter_by_status_gateway_dates_and_document_type(session_client, account, gateway):
    other_gateway = GatewayFactory(account=account, name="Otra tienda")
    boleta = issue(gateway, 30)
    factura = issue(gateway, 31, note_attributes=copy.deepcopy(FACTURA_NOTES))
    held = issue(other_gateway, 32, currency="USD")
    old = OrderFactory(account=account, gateway=gateway, status=OrderStatus.SKIPPED)
    Order.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=40))

    assert row_ids(page(session_client, "/orders/", status="held")) == [held.pk]
    assert row_ids(page(session_client, "/orders/", gateway=other_gateway.pk)) == [held.pk]
    assert row_ids(page(session_client, "/orders/", tipo=33)) == [factura.pk]
    assert row_ids(page(session_client, "/orders/", tipo=39)) == [boleta.pk]
    day = timezone.localdate() - timedelta(days=40)
    assert row_ids(page(session_client, "/orders/", desde=day.isoformat(), hasta=day.isoformat())) == [old.pk]
    assert row_ids(page(session_client, "/orders/", desde=timezone.localdate().isoformat())) == [held.pk, factura.pk, boleta.pk]
    html = page(session_client, "/orders/", desde="2026-02-10", hasta="2026-02-01")
    assert "La fecha final es anterior a la inicial." in html


def test_orders_are_found_by_number_buyer_rut_folio_and_external_id(session_client, account, gateway):
    boleta = issue(gateway, 40)
    factura = issue(gateway, 41, note_attributes=copy.deepcopy(FACTURA_NOTES), email="compras@losandes.cl")
    OrderFactory(account=account, gateway=gateway, number="#9999")
    folio = boleta.documents.get().folio

    assert row_ids(page(session_client, "/orders/", q="#1040")) == []
    assert row_ids(page(session_client, "/orders/", q=boleta.number)) == [boleta.pk]
    assert row_ids(page(session_client, "/orders/", q=boleta.number.lstrip("#"))) == [boleta.pk]
    assert row_ids(page(session_client, "/orders/", q="76.086.428-5")) == [factura.pk]
    assert row_ids(page(session_client, "/orders/", q="COMPRAS@losandes.cl")) == [factura.pk]
    same_folio = sorted({boleta.pk, *Order.objects.filter(documents__folio=folio).values_list("pk", flat=True)}, reverse=True)
    assert row_ids(page(session_client, "/orders/", q=str(folio))) == same_folio
    assert row_ids(page(session_client, "/orders/", q=factura.external_id)) == [factura.pk]


def test_orders_are_keyset_paginated_newest_first_without_counting(session_client, account, gateway, django_assert_max_num_queries):
    orders = [OrderFactory(account=account, gateway=gateway) for _ in range(55)]
    newest = [o.pk for o in reversed(orders)]

    with django_assert_max_num_queries(12):
        first = page(session_client, "/orders/")
    assert row_ids(first) == newest[:50]
    older = re.search(r'href="\?before=(\d+)" rel="next"', first).group(1)
    second = page(session_client, "/orders/", before=older)
    assert row_ids(second) == newest[50:]
    assert 'rel="next"' not in second
    newer = re.search(r'href="\?after=(\d+)" rel="prev"', second).group(1)
    assert row_ids(page(session_client, "/orders/", after=newer)) == newest[:50]
    assert "COUNT(" not in str(selectors.order_rows(selectors.order_filtered(account=account)).query)


def test_order_rows_of_another_account_are_never_listed(session_client, account, other_account, gateway):
    mine = OrderFactory(account=account, gateway=gateway)
    theirs = OrderFactory(account=other_account)
    assert row_ids(page(session_client, "/orders/")) == [mine.pk]
    assert row_ids(page(session_client, "/orders/", q=theirs.number)) == []
    assert session_client.get(f"/orders/{theirs.pk}/").status_code == 404


# --- Orders: live rows ---------------------------------------------------------------------------

def test_rows_poll_fast_while_an_order_is_in_progress(session_client, account, gateway):
    ready = services.order_ingest(gateway=gateway, raw=sample_order(number=50))
    assert ready.status == OrderStatus.READY
    html = page(session_client, "/orders/")
    assert 'hx-trigger="every 2s"' in html and 'hx-get="/orders/rows/?&amp;' not in html

    rows = page(session_client, "/orders/rows/")
    assert rows.lstrip().startswith('<tbody id="order-rows"') and "Lista para emitir" in rows
    assert '<div id="orders-live" hx-swap-oob="innerHTML">1 orden en proceso.</div>' in rows
    run_pending(ready)
    rows = page(session_client, "/orders/rows/")
    assert "Emitida" in rows and 'hx-trigger="every 5s"' in rows and f"top={ready.pk}" in rows


def test_idle_first_page_asks_for_newer_orders_and_gets_204_when_none(session_client, account, gateway):
    issued = issue(gateway, 60)
    html = page(session_client, "/orders/", status="issued")
    assert f'hx-get="/orders/rows/?status=issued&amp;top={issued.pk}" hx-trigger="every 5s"' in html

    assert session_client.get("/orders/rows/", {"status": "issued", "top": issued.pk}).status_code == 204
    newer = issue(gateway, 61)
    response = session_client.get("/orders/rows/", {"status": "issued", "top": issued.pk})
    assert response.status_code == 200 and row_ids(response.content.decode()) == [newer.pk, issued.pk]


def test_older_pages_do_not_poll(session_client, account, gateway):
    orders = [OrderFactory(account=account, gateway=gateway) for _ in range(3)]
    html = page(session_client, "/orders/", before=orders[-1].pk)
    assert "hx-trigger" not in html.split('<tbody id="order-rows"')[1].split(">")[0]


def test_polled_rows_keep_the_checked_boxes(session_client, account, gateway):
    order = OrderFactory(account=account, gateway=gateway, status=OrderStatus.READY)
    rows = session_client.get("/orders/rows/", {"order": [order.pk]}).content.decode()
    assert f'id="sel-{order.pk}" checked' in rows


# --- Orders: bulk actions with progress ------------------------------------------------------------

def test_bulk_emit_of_selected_orders_runs_as_a_job_with_progress(
    session_client, account, gateway, django_capture_on_commit_callbacks
):
    gateway.ruleset.mode = "manual"
    gateway.ruleset.save()
    waiting = [services.order_ingest(gateway=gateway, raw=sample_order(number=n)) for n in (70, 71, 72)]
    assert {o.status for o in waiting} == {OrderStatus.WAITING}

    with django_capture_on_commit_callbacks(execute=False):
        response = session_client.post("/orders/bulk/", {"action": "emit", "scope": "selected", "order": [o.pk for o in waiting[:2]]})
    assert response.status_code == 302
    job = BulkJob.objects.get(account=account)
    assert (job.kind, job.total, job.status, sorted(job.item_ids)) == ("emit", 2, "pending", sorted(o.pk for o in waiting[:2]))
    html = page(session_client, "/orders/")
    assert f'<progress class="bms-progress" max="2" value="0" aria-labelledby="job-{job.pk}-label">' in html
    assert 'hx-get="/jobs/" hx-trigger="every 2s"' in html

    job = bulk_job_run(job_id=job.pk)
    assert (job.status, job.processed, job.succeeded, job.failed) == ("done", 2, 2, 0)
    assert [Order.objects.get(pk=o.pk).status for o in waiting] == [OrderStatus.READY, OrderStatus.READY, OrderStatus.WAITING]
    panel = page(session_client, "/jobs/")
    assert 'max="2" value="2"' in panel and "2 de 2 (100 %)" in panel and "hx-trigger" not in panel


def test_bulk_retry_of_all_filtered_orders_takes_only_those_it_applies_to(session_client, account, gateway):
    failed = [fail(gateway, n) for n in (80, 81)]
    issue(gateway, 82)
    response = session_client.post("/orders/bulk/", {"action": "retry", "scope": "filtered", "gateway": gateway.pk})
    assert response.status_code == 302 and response["Location"] == f"/orders/?gateway={gateway.pk}"
    job = BulkJob.objects.get(account=account)
    assert sorted(job.item_ids) == sorted(o.pk for o in failed)
    job = bulk_job_run(job_id=job.pk)
    assert (job.succeeded, job.failed) == (2, 0)
    for order in failed:
        run_pending(order)
        assert Order.objects.get(pk=order.pk).status == OrderStatus.ISSUED


def test_bulk_job_records_each_refusal_and_runs_in_chunks(account, gateway, actor, monkeypatch, django_capture_on_commit_callbacks):
    from gateways.services import bulk_jobs

    monkeypatch.setattr(bulk_jobs, "CHUNK", 2)
    issued = issue(gateway, 90)
    held = issue(gateway, 91, currency="USD")
    with django_capture_on_commit_callbacks(execute=False):
        job = bulk_jobs.bulk_job_create(account=account, kind="emit", item_ids=[issued.pk, held.pk, 999999999],
                                        description="prueba", actor=actor)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        job = bulk_job_run(job_id=job.pk)
    assert (job.status, job.processed, job.failed) == ("running", 2, 2) and len(queued) == 1
    job = bulk_job_run(job_id=job.pk)
    assert (job.status, job.processed, job.succeeded, job.failed) == ("done", 3, 0, 3)
    messages = {f["id"]: f["message"] for f in job.failures}
    assert "ya está emitida" in messages[issued.pk]
    assert messages[held.pk].startswith("Retenida para revisión: ") and "CLP" in messages[held.pk]
    assert messages[999999999] == "no encontrada"


def test_a_second_delivery_of_the_job_task_does_nothing_while_the_first_holds_the_lease(account, gateway, actor):
    job = BulkJob.objects.create(account=account, kind="emit", item_ids=[1], total=1, status="running",
                                 lease_until=timezone.now() + timedelta(minutes=1))
    assert bulk_job_run(job_id=job.pk).processed == 0


def test_the_sweeper_queues_again_a_job_nobody_advanced(account, settings, django_capture_on_commit_callbacks):
    from gateways.sweeper import stuck_work_requeue

    settings.BMS_STUCK_AFTER_SECONDS = 60
    stale = BulkJob.objects.create(account=account, kind="retry", item_ids=[1, 2], total=2, status="running")
    leased = BulkJob.objects.create(account=account, kind="retry", item_ids=[1], total=1, status="running",
                                    lease_until=timezone.now() + timedelta(minutes=1))
    done = BulkJob.objects.create(account=account, kind="retry", item_ids=[1], total=1, processed=1, status="done")
    BulkJob.objects.filter(pk__in=[stale.pk, leased.pk, done.pk]).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        stuck_work_requeue()
    assert len(queued) == 1
    with django_capture_on_commit_callbacks(execute=False) as queued:
        stuck_work_requeue()  # stamped: not sent again before the threshold
    assert queued == []


def test_viewers_see_no_bulk_actions_and_are_refused(viewer_client, account, gateway):
    order = OrderFactory(account=account, gateway=gateway, status=OrderStatus.WAITING)
    html = page(viewer_client, "/orders/")
    assert 'id="bulk-form"' not in html and 'name="order"' not in html
    viewer_client.post("/orders/bulk/", {"action": "emit", "scope": "selected", "order": [order.pk]})
    assert not BulkJob.objects.exists()


# --- Orders: unread deliveries ---------------------------------------------------------------------

def test_unread_deliveries_are_listed_with_their_reason_and_can_be_read_again(
    session_client, account, gateway, other_account, django_capture_on_commit_callbacks
):
    event = InboundEvent.objects.create(account=account, gateway=gateway, delivery_id="d-7", payload=sample_order(number=7),
                                        status=InboundEvent.Status.REJECTED, error="El pedido no trae el total (total_price).")
    html = page(session_client, "/orders/")
    assert f'<tr id="unread-{event.pk}">' in html and "El pedido no trae el total (total_price)." in html

    with django_capture_on_commit_callbacks(execute=False):
        response = session_client.post(f"/orders/unread/{event.pk}/reprocess/")
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PENDING

    foreign_gateway = GatewayFactory(account=other_account)
    foreign = InboundEvent.objects.create(account=other_account, gateway=foreign_gateway, delivery_id="x", payload={"id": 1},
                                          status=InboundEvent.Status.REJECTED, error="x")
    assert session_client.post(f"/orders/unread/{foreign.pk}/reprocess/").status_code == 404


def test_all_unread_deliveries_are_read_again_as_a_job(session_client, account, gateway, django_capture_on_commit_callbacks):
    events = [InboundEvent.objects.create(account=account, gateway=gateway, delivery_id=f"d-{n}", payload=sample_order(number=n),
                                          status=InboundEvent.Status.REJECTED, error="x") for n in (1, 2)]
    InboundEvent.objects.create(account=account, gateway=gateway, delivery_id="no-json", payload=None, body_text="<html>",
                                status=InboundEvent.Status.REJECTED, error="No es JSON")
    with django_capture_on_commit_callbacks(execute=False):
        session_client.post("/orders/unread/reprocess/")
    job = BulkJob.objects.get(account=account, kind="reprocess")
    assert sorted(job.item_ids) == sorted(e.pk for e in events)
    with django_capture_on_commit_callbacks(execute=False):
        assert bulk_job_run(job_id=job.pk).succeeded == 2
    assert InboundEvent.objects.filter(pk__in=job.item_ids, status=InboundEvent.Status.PENDING).count() == 2


# --- One order -----------------------------------------------------------------------------------

def test_order_page_speaks_spanish_with_reasons_preview_documents_and_masked_payload(session_client, account, gateway):
    raw = sample_order(number=100)
    raw["note_attributes"] = [*copy.deepcopy(FACTURA_NOTES), {"name": "api_token", "value": "tok-SECRETO-123"}]
    order = issue(gateway, 100, note_attributes=raw["note_attributes"])
    document = order.documents.get()

    html = page(session_client, f"/orders/{order.pk}/")

    assert '<span class="badge st-issued" id="order-status">Emitida</span>' in html
    assert '<span id="decision">Emitir</span> · Factura electrónica' in html
    assert "Pedido pagado." in html and '<dd class="col-7" id="payment-status">Pagado</dd>' in html
    assert not RAW_CODES.search(html), RAW_CODES.search(html)
    assert f'<td class="folio">{document.folio}</td>' in html
    assert f'href="/documents/{document.pk}/pdf/"' in html and f'href="/documents/{document.pk}/xml/"' in html
    assert "El documento de venta" in html and 'id="preview-lines"' in html
    assert "Comercial Los Andes SpA · RUT 76.086.428-5" in html
    assert f"{document.mnt_total:,}".replace(",", ".") in html.split('id="preview-totals"')[1]
    assert "tok-SECRETO-123" not in html and "••••••••" in html
    assert "Correo al comprador" in html or "Escritura en la tienda" in html


def test_a_waiting_order_previews_the_document_the_rules_would_emit(session_client, account, gateway):
    gateway.ruleset.mode = "manual"
    gateway.ruleset.save()
    order = services.order_ingest(gateway=gateway, raw=sample_order(number=110))
    html = page(session_client, f"/orders/{order.pk}/")
    assert "Vista previa del documento que se emitiría" in html
    assert "el folio lo asigna el facturador al emitir" in html and "Boleta electrónica" in html
    assert 'id="action-emit"' in html and 'id="action-retry"' not in html


def test_a_failed_order_says_why_in_spanish_and_offers_retry_emit_and_skip(session_client, account, gateway):
    order = fail(gateway, 120, "Sin folios disponibles para boletas: cargue folios")
    html = page(session_client, f"/orders/{order.pk}/")
    assert '<span class="badge st-failed" id="order-status">Fallida</span>' in html
    assert "Rechazado por el facturador: Sandbox: Sin folios disponibles" in html
    assert "<td>Rechazado</td>" in html
    assert 'id="action-retry"' in html and 'id="action-emit"' in html and 'id="skip-form"' in html
    assert 'id="credit-note-form"' not in html and 'id="text-correction-form"' not in html
    assert not RAW_CODES.search(html), RAW_CODES.search(html)

    session_client.post(f"/orders/{order.pk}/", {"action": "retry"})
    run_pending(order)
    assert page(session_client, f"/orders/{order.pk}/").count('id="order-status">Emitida<') == 1


def test_an_issued_boleta_offers_only_a_credit_note(session_client, account, gateway):
    order = issue(gateway, 130)
    html = page(session_client, f"/orders/{order.pk}/")
    assert 'id="credit-note-form"' in html
    for absent in ('id="action-emit"', 'id="action-retry"', 'id="skip-form"', 'id="text-correction-form"'):
        assert absent not in html


def test_viewer_sees_no_actions_and_is_refused(viewer_client, account, gateway):
    order = fail(gateway, 140)
    html = page(viewer_client, f"/orders/{order.pk}/")
    assert 'id="actions"' not in html
    viewer_client.post(f"/orders/{order.pk}/", {"action": "skip", "reason": "no"})
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FAILED


def test_skip_needs_a_reason_shown_on_the_field(session_client, account, gateway):
    order = fail(gateway, 150)
    response = session_client.post(f"/orders/{order.pk}/", {"action": "skip", "reason": ""})
    assert response.status_code == 400
    assert 'id="id_reason_error">Este campo es requerido.' in response.content.decode()
    session_client.post(f"/orders/{order.pk}/", {"action": "skip", "reason": "Pedido duplicado"})
    order.refresh_from_db()
    assert (order.status, order.status_reason) == (OrderStatus.SKIPPED, "Omitida a mano: Pedido duplicado")


def test_full_credit_note_by_hand_is_shown_on_the_order(session_client, account, gateway):
    order = issue(gateway, 160)
    invoice = order.documents.get()
    response = session_client.post(f"/orders/{order.pk}/", {"action": "credit_note", "nc-scope": "all", "nc-reason": "Anulación"})
    assert response.status_code == 302
    [note] = run_pending(order)
    assert (note.tipo_dte, note.mnt_total, note.credited_document_id) == (61, invoice.mnt_total, invoice.pk)
    html = page(session_client, f"/orders/{order.pk}/")
    assert f"sobre Boleta electrónica N° {invoice.folio}" in html and 'id="credit-note-form"' not in html


def test_credit_note_by_lines_and_its_form_errors(session_client, account, gateway):
    order = issue(gateway, 170)
    line = order.raw["line_items"][0]
    response = session_client.post(f"/orders/{order.pk}/", {"action": "credit_note", "nc-scope": "lines", "nc-reason": "x"})
    assert response.status_code == 400 and "Indique cuántas unidades de al menos una línea se acreditan." in response.content.decode()
    response = session_client.post(f"/orders/{order.pk}/", {
        "action": "credit_note", "nc-scope": "lines", "nc-reason": "Devolución", f"nc-qty_{line['id']}": "1"})
    assert response.status_code == 302
    [note] = run_pending(order)
    assert note.mnt_total == int(float(line["price"]))


def test_text_correction_of_an_issued_factura(session_client, account, gateway):
    order = issue(gateway, 180, note_attributes=copy.deepcopy(FACTURA_NOTES))
    html = page(session_client, f"/orders/{order.pk}/")
    assert 'id="text-correction-form"' in html and 'value="Venta de artículos de regalo"' in html
    receptor = selectors.order_current_receptor(order=selectors.order_detail_queryset().get(pk=order.pk))
    form = {f"tc-{name}": getattr(receptor, name) for name in ("razon_social", "giro", "address", "comuna", "city")}
    response = session_client.post(f"/orders/{order.pk}/", {
        **form, "action": "text_correction", "tc-address": "", "tc-reason": "La dirección no va"})
    assert response.status_code == 400 and "La dirección de una factura no puede quedar vacía." in response.content.decode()
    response = session_client.post(f"/orders/{order.pk}/", {
        **form, "action": "text_correction", "tc-giro": "Venta al por menor de regalos", "tc-reason": "El cliente informó otro giro"})
    assert response.status_code == 302, response.content.decode()[:2000]
    [note] = run_pending(order)
    assert (note.tipo_dte, note.mnt_total) == (61, 0)


def test_refused_refunds_and_side_effects_are_explained(session_client, account, gateway):
    order = issue(gateway, 190)
    refunded = with_refund(order.raw, refund_id=5, amount=int(float(order.raw["total_price"])))
    services.order_ingest(gateway=gateway, raw=refunded)
    [note] = run_pending(order)
    Order.objects.filter(pk=order.pk).update(decision={
        **order.decision, "credit_notes": [{"refund": "6", "action": "skip", "reasons": [
            {"code": "nothing_to_credit", "message": "La devolución no tiene monto que acreditar."}]}]})
    html = page(session_client, f"/orders/{order.pk}/")
    assert "Reembolsos sin nota de crédito" in html and "La devolución no tiene monto que acreditar." in html
    assert html.count('<td class="folio">') == 2


def test_order_page_polls_only_while_something_is_in_progress(session_client, account, gateway):
    order = services.order_ingest(gateway=gateway, raw=sample_order(number=200))
    assert 'hx-select="#order-live"' in page(session_client, f"/orders/{order.pk}/")
    run_pending(order)
    assert 'hx-select="#order-live"' not in page(session_client, f"/orders/{order.pk}/")


def test_order_list_and_page_of_another_account_are_404(session_client, other_account):
    order = OrderFactory(account=other_account)
    assert session_client.get(f"/orders/{order.pk}/").status_code == 404
    assert session_client.post(f"/orders/{order.pk}/", {"action": "emit"}).status_code == 404


# --- Error pages ---------------------------------------------------------------------------------

def test_404_page_uses_the_layout(session_client):
    response = session_client.get("/orders/999999999/")
    html = response.content.decode()
    assert response.status_code == 404 and "No encontramos esa página" in html and 'class="bms-header' in html


def test_500_page_renders_without_the_database(rf):
    from billmysales.views import server_error

    # No database fixture: any query here would raise.
    response = server_error(rf.get("/orders/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Algo falló de nuestro lado" in html and "bms-header" in html and "style=" not in html
    api = server_error(rf.get("/api/v1/orders/"))
    assert api.status_code == 500 and b'"server_error"' in api.content



# --- Small pieces --------------------------------------------------------------------------------

def test_unit_prices_keep_their_decimals_in_the_money_format():
    from decimal import Decimal

    from gateways.views.orders import format_price

    assert [format_price(Decimal(v)) for v in ("12990", "12990.00", "8394.958", "0.5")] == ["$12.990", "$12.990", "$8.394,958", "$0,5"]


@pytest.mark.parametrize(("status", "reason", "decision", "held", "expected"), [
    ("failed", "Rechazado por el facturador: LibreDTE no tiene folios disponibles (o el CAF venció)", {}, False, "no_folios"),
    ("failed", "Rechazado por el facturador: RUT receptor inválido", {}, False, "biller_rejected"),
    ("held", "x", {"action": "hold", "reasons": [{"code": "paid"}, {"code": "invalid_rut"}]}, False, "invalid_rut"),
    ("held", "x", {"action": "hold", "reasons": [{"code": "something_new"}]}, False, "rules_hold"),
    ("held", "El total no cuadra", {"action": "emit", "reasons": []}, False, "biller_check"),
    ("held", "Resultado desconocido", {"action": "emit"}, True, "uncertain"),
])
def test_failures_are_grouped_by_reason(status, reason, decision, held, expected):
    from gateways.labels import FAILURE_LABELS, failure_category

    key = failure_category(status=status, status_reason=reason, decision=decision, emission_held=held)
    assert key == expected and key in FAILURE_LABELS


def test_chart_axes_use_whole_steps():
    from datetime import date

    from gateways.views import charts

    days = [date(2026, 11, d) for d in range(1, 31)]
    chart = charts.stacked_by_day(days, {39: [0] * 29 + [3], 33: [0] * 29 + [4]}, css=lambda k: f"c{k}", label=str)
    assert [tick.text for tick in chart.y_ticks] == ["0", "2", "4", "6", "8", "10"]
    assert [tick.text for tick in chart.x_ticks][-1] == "30 Nov" and len(chart.x_ticks) == 5
    assert [bar.title for bar in chart.bars] == ["30 Nov: 3 39", "30 Nov: 4 33"]
    assert chart.bars[1].y + chart.bars[1].height == chart.bars[0].y
