"""Signed XML, TED, and validation against the SII schemas (including ``manage.py dte_validate``)."""
import datetime
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from lxml import etree

from billers.dte import (
    CafError,
    SchemaUnavailable,
    build_document,
    build_dte_xml,
    credentials,
    validate_dte_xml,
    verify_signatures,
)
from billers.dte.sale import Emisor, Receptor, Reference, Sale, SaleLine
from billers.dte.xsd import cl_sii_schema_dir

EMISOR = Emisor(rut="76192083-9", razon_social="Tienda Ñuñoa SpA", giro="Venta al por menor", acteco=479100,
                address="Av. Irarrázaval 123", comuna="Ñuñoa", city="Santiago")
EMPRESA = Receptor(rut="60803000-K", razon_social="Servicio de Impuestos Internos", giro="Gobierno",
                   address="Teatinos 120", comuna="Santiago", email="dte@example.cl")
FECHA = datetime.date(2026, 11, 21)
SIGNER = credentials.test_signer()


def sale(tipo, **kw):
    lines = kw.pop("lines", (SaleLine("Polera 😀 “edición” limitada", Decimal(2), Decimal(9990)), SaleLine("Despacho", Decimal(1), Decimal(3990))))
    paid = kw.pop("paid_total", 23970)
    return Sale(tipo_dte=tipo, lines=lines, paid_total=paid, **kw)


def built(tipo, **kw):
    doc = build_document(sale(tipo, **kw), emisor=EMISOR, folio=42, fecha=FECHA)
    return doc, build_dte_xml(doc, signer=SIGNER, timestamp=datetime.datetime(2026, 11, 21, 10, 0, 0))


@pytest.mark.parametrize(
    "tipo, kw",
    [
        (33, {"receptor": EMPRESA}),
        (39, {}),
        (41, {"lines": (SaleLine("Curso", Decimal(1), Decimal(23970), exempt=True),)}),
        (34, {"receptor": EMPRESA, "lines": (SaleLine("Asesoría", Decimal(1), Decimal(23970), exempt=True),)}),
        (61, {"receptor": EMPRESA, "references": (Reference(33, 41, "2026-11-20", 1, "Anula factura"),)}),
        (56, {"receptor": EMPRESA, "references": (Reference(61, 9, "2026-11-20", 1, "Anula nota de crédito"),)}),
    ],
)
def test_built_documents_are_signed_stamped_and_schema_valid(schema_dir, tipo, kw):
    doc, xml = built(tipo, **kw)
    assert doc.totales.mnt_total == 23970
    assert validate_dte_xml(xml, schema_dir=schema_dir) == []
    assert verify_signatures(xml) == []
    root = etree.fromstring(xml)
    ns = {"s": "http://www.sii.cl/SiiDte"}
    assert root.findtext("s:Documento/s:TED/s:DD/s:MNT", namespaces=ns) == "23970"
    assert root.xpath("string(s:Documento/@ID)", namespaces=ns) == f"F42T{tipo}"
    assert xml.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")


def test_text_is_iso_8859_1_with_unencodable_characters_replaced(schema_dir):
    _, xml = built(39)
    text = xml.decode("iso-8859-1")
    assert "<NmbItem>Polera ? \"edición\" limitada</NmbItem>" in text
    assert "&#" not in text  # nothing escaped as a character reference: it all fits ISO-8859-1


def test_tampering_breaks_the_signature_and_the_stamp():
    _, xml = built(33, receptor=EMPRESA)
    tampered = xml.replace(b"<MntTotal>23970</MntTotal>", b"<MntTotal>23971</MntTotal>")
    assert any("digest" in p for p in verify_signatures(tampered))
    tampered_ted = xml.replace(b"<MNT>23970</MNT>", b"<MNT>1</MNT>")
    assert any("TED" in p for p in verify_signatures(tampered_ted))


def test_schema_errors_come_with_line_numbers(schema_dir):
    _, xml = built(33, receptor=EMPRESA)
    broken = xml.replace(b"<RznSocRecep>", b"<Bogus/><RznSocRecep>")
    errors = validate_dte_xml(broken, schema_dir=schema_dir)
    line = broken.decode("iso-8859-1").splitlines().index(next(text for text in broken.decode("iso-8859-1").splitlines() if "<Bogus/>" in text)) + 1
    assert errors and errors[0].line == line and "Bogus" in errors[0].message


def test_malformed_xml_is_reported_not_raised(schema_dir):
    errors = validate_dte_xml(b"<?xml version='1.0'?>\n<DTE>\n<oops>\n</DTE>", schema_dir=schema_dir)
    assert errors[0].line == 4 and "not well-formed" in errors[0].message


def test_boleta_validation_without_the_shared_schemas_says_why():
    _, xml = built(39)
    with pytest.raises(SchemaUnavailable, match="cl-sii's bundled schemas do not include the boleta schema"):
        validate_dte_xml(xml, schema_dir=cl_sii_schema_dir())


def test_factura_validates_with_cl_sii_bundled_schemas_too():
    _, xml = built(33, receptor=EMPRESA)
    assert validate_dte_xml(xml, schema_dir=cl_sii_schema_dir()) == []


def test_folio_outside_the_caf_is_refused():
    doc = build_document(sale(39), emisor=EMISOR, folio=42, fecha=FECHA)
    narrow = credentials.test_signer(tipos=(39,), folio_hasta=10)
    with pytest.raises(CafError, match="no CAF covers folio 42"):
        build_dte_xml(doc, signer=narrow)


def test_signing_material_is_built_once():
    assert credentials.test_signer() is SIGNER


def _validate(path):
    out = io.StringIO()
    call_command("dte_validate", str(path), stdout=out)
    return out.getvalue()


def test_official_sii_example_validates_through_dte_validate(shared):
    assert "is valid" in _validate(shared / "sii" / "F60T33-ejemplo-oficial-SII.xml")


def test_corrupted_official_example_fails_with_a_readable_error(shared, tmp_path):
    original = (shared / "sii" / "F60T33-ejemplo-oficial-SII.xml").read_bytes()
    corrupted = tmp_path / "corrupted.xml"
    corrupted.write_bytes(original.replace(b"<RUTRecep>77777777-7</RUTRecep>", b"<RUTRecep>77.777.777-7</RUTRecep>"))
    out = io.StringIO()
    with pytest.raises(CommandError) as exc_info:
        call_command("dte_validate", str(corrupted), stdout=out)
    assert exc_info.value.returncode == 1
    report = out.getvalue()
    assert f"{corrupted}:35:" in report and "RUTRecep" in report and "77.777.777-7" in report


def test_dte_validate_accepts_a_bare_boleta(shared, tmp_path):
    _, xml = built(39)
    path = tmp_path / "boleta.xml"
    path.write_bytes(xml)
    assert "is valid" in _validate(path)
