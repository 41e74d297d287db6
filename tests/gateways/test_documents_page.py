"""The documents page through Django's test client: filters, keyset pages, SII status, the CSV export for
Excel (UTF-8 with BOM, ";" separated, Spanish headers, whole-peso amounts), tenancy and files."""
import copy
import csv
import io
import re
from datetime import date

import pytest

from accounts.models import Role
from gateways import services
from gateways.models import Document, SiiStatus
from sources.shopify.samples import sample_order
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.gateways.factories import DocumentFactory, GatewayFactory
from tests.gateways.pipeline_helpers import run_pending

FACTURA_NOTES = [
    {"name": "documento", "value": "factura"},
    {"name": "rut", "value": "76.086.428-5"},
    {"name": "razon_social", "value": "Comercial Los Andes SpA"},
    {"name": "giro", "value": "Venta de artículos de regalo"},
]


@pytest.fixture
def gateway(account):
    return GatewayFactory(account=account, name="Tienda Shopify Chile")


def issued(gateway, number: int, **changes) -> Document:
    order = services.order_ingest(gateway=gateway, raw={**sample_order(number=number), **changes})
    [document] = run_pending(order)
    return document


def listed(client, **params) -> list[int]:
    response = client.get("/documents/", params)
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'<tr id="document-(\d+)"', response.content.decode())]


def export(client, **params) -> tuple[bytes, list[list[str]]]:
    response = client.get("/documents/export.csv", params)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="documentos-')
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_documents_filter_by_gateway_type_dates_folio_and_sii_status(session_client, account, gateway):
    other = GatewayFactory(account=account, name="Otra tienda")
    boleta = issued(gateway, 1)
    factura = issued(gateway, 2, note_attributes=copy.deepcopy(FACTURA_NOTES))
    elsewhere = issued(other, 3)
    old = DocumentFactory(account=account, emission__order__gateway=gateway, fecha=date(2026, 1, 15), folio=777)
    Document.objects.filter(pk=factura.pk).update(sii_status=SiiStatus.ACCEPTED)

    assert listed(session_client) == [old.pk, elsewhere.pk, factura.pk, boleta.pk]
    assert listed(session_client, gateway=other.pk) == [elsewhere.pk]
    assert listed(session_client, tipo=33) == [factura.pk]
    assert listed(session_client, folio=777) == [old.pk]
    assert listed(session_client, sii="accepted") == [factura.pk]
    assert listed(session_client, desde="2026-01-01", hasta="2026-01-31") == [old.pk]
    assert listed(session_client, desde=boleta.fecha.isoformat()) == [elsewhere.pk, factura.pk, boleta.pk]
    html = session_client.get("/documents/").content.decode()
    assert "Aceptado por el SII" in html and f'href="/documents/{boleta.pk}/pdf/"' in html
    assert f'href="/orders/{boleta.order_id}/"' in html and "Factura electrónica" in html


def test_documents_are_keyset_paginated_also_within_a_date_range(session_client, account, gateway):
    documents = [DocumentFactory(account=account, emission__order__gateway=gateway, fecha=date(2026, 3, 1 + n % 3)) for n in range(53)]
    newest = [d.pk for d in reversed(documents)]
    first = session_client.get("/documents/").content.decode()
    older = re.search(r'href="\?before=(\d+)" rel="next"', first).group(1)
    assert listed(session_client, before=older) == newest[50:]

    by_date = sorted(documents, key=lambda d: (d.fecha, d.pk), reverse=True)
    params = {"desde": "2026-03-01", "hasta": "2026-03-31"}
    page_one = listed(session_client, **params)
    assert page_one == [d.pk for d in by_date[:50]]
    page_two = listed(session_client, **params, before=page_one[-1])
    assert page_two == [d.pk for d in by_date[50:]]
    assert listed(session_client, **params, after=page_two[0]) == page_one


def test_csv_export_for_excel(session_client, account, gateway):
    boleta = issued(gateway, 10)
    factura = issued(gateway, 11, note_attributes=copy.deepcopy(FACTURA_NOTES))

    body, rows = export(session_client)

    assert body.startswith(b"\xef\xbb\xbf")
    assert rows[0] == ["Fecha", "Tipo", "Documento", "Folio", "Neto", "IVA", "Exento", "Total", "Orden", "Pasarela", "Ambiente",
                       "Estado en el SII", "Emitido el"]
    assert [row[1] for row in rows[1:]] == ["33", "39"]
    row = rows[1]
    assert row[0] == factura.fecha.isoformat() and row[2] == "Factura electrónica" and row[3] == str(factura.folio)
    assert [int(value) for value in row[4:8]] == [factura.totals["MntNeto"], factura.totals["IVA"], 0, factura.mnt_total]
    assert int(row[4]) + int(row[5]) == int(row[7])
    assert row[8] == factura.order.number and row[9] == "Tienda Shopify Chile" and row[10] == "Certificación"
    assert row[11] == "Sin información del SII"
    assert rows[2][7] == str(boleta.mnt_total) and "." not in rows[2][7]


def test_csv_export_follows_the_filters(session_client, account, gateway):
    documents = [DocumentFactory(account=account, emission__order__gateway=gateway, tipo_dte=39) for _ in range(5)]
    DocumentFactory(account=account, emission__order__gateway=gateway, tipo_dte=41)
    _body, rows = export(session_client, tipo=39)
    assert [int(row[3]) for row in rows[1:]] == [d.folio for d in reversed(documents)]
    _body, rows = export(session_client, folio=documents[0].folio)
    assert [int(row[3]) for row in rows[1:]] == [documents[0].folio]


def test_document_export_iter_reads_every_row_in_keyset_chunks(account, gateway, django_assert_num_queries):
    from gateways.selectors import document_export_iter, document_filtered

    documents = [DocumentFactory(account=account, emission__order__gateway=gateway) for _ in range(5)]
    with django_assert_num_queries(3):
        read = [d.pk for d in document_export_iter(document_filtered(account=account), chunk=2)]
    assert read == [d.pk for d in reversed(documents)]


def test_another_accounts_documents_are_neither_listed_nor_exported_nor_served(session_client, account, other_account, gateway):
    mine = DocumentFactory(account=account, emission__order__gateway=gateway)
    theirs = DocumentFactory(account=other_account)
    assert listed(session_client) == [mine.pk]
    assert listed(session_client, folio=theirs.folio) == ([mine.pk] if mine.folio == theirs.folio else [])
    _body, rows = export(session_client)
    assert len(rows) == 2
    assert session_client.get(f"/documents/{theirs.pk}/pdf/").status_code == 404
    assert session_client.get(f"/documents/{theirs.pk}/xml/").status_code == 404


def test_viewers_read_documents_and_export(client, account, gateway):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)
    document = DocumentFactory(account=account, emission__order__gateway=gateway)
    assert listed(client) == [document.pk]
    assert len(export(client)[1]) == 2


def test_documents_page_is_in_the_navigation(session_client):
    assert '<a class="mr-3" href="/documents/">Documentos</a>' in session_client.get("/").content.decode()
