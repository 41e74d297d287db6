"""The printed DTE: real signed documents from our own core, rendered and read back with pypdf.

No PDF417 decoder is available in pure Python, so the timbre is checked one step earlier: the image in
the PDF must be module-for-module the barcode of the TED bytes, and those bytes are derived here from
the raw XML independently of ``pdf.py``.
"""
import datetime
import io
import re
from decimal import Decimal

import pdf417gen
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pdf417gen.error_correction import compute_error_correction_code_words
from pypdf import PdfReader

from billers.dte import build_document, build_dte_xml, credentials
from billers.dte.pdf import CERTIFICATION_MARK, pdf417_error_correction, render_pdf, ted_barcode_bytes
from billers.dte.sale import Emisor, Receptor, Reference, Sale, SaleLine

EMISOR = Emisor(rut="76192083-9", razon_social="Tienda Ñuñoa SpA", giro="Venta al por menor", acteco=479100,
                address="Av. Irarrázaval 123", comuna="Ñuñoa")
FACTURA_RECEPTOR = Receptor(rut="60803000-K", razon_social="Servicio de Impuestos Internos", giro="Gobierno",
                            address="Teatinos 120", comuna="Santiago")
ITEM = "Café ñandú «tostado» 1 kg"
FOLIO = 4711
NAMES = {33: "FACTURA ELECTRÓNICA", 34: "FACTURA NO AFECTA O EXENTA ELECTRÓNICA", 39: "BOLETA ELECTRÓNICA",
         61: "NOTA DE CRÉDITO ELECTRÓNICA"}


@pytest.fixture(scope="module")
def signer():
    return credentials.test_signer()


def signed_xml(signer, tipo, lines=None):
    lines = lines or (SaleLine(ITEM, Decimal(2), Decimal(15990), exempt=tipo == 34),)
    sale = Sale(
        tipo_dte=tipo,
        lines=lines,
        paid_total=sum(int(line.quantity * line.unit_price) for line in lines),
        receptor=Receptor() if tipo == 39 else FACTURA_RECEPTOR,
        references=(Reference(tipo_doc=33, folio=10, fecha="2026-11-01", cod_ref=1, razon="Devolución de mercadería"),)
        if tipo == 61 else (),
    )
    doc = build_document(sale, emisor=EMISOR, folio=FOLIO, fecha=datetime.date(2026, 11, 21))
    return build_dte_xml(doc, signer=signer, timestamp=datetime.datetime(2026, 11, 21, 10, 30))


def pdf_pages(pdf: bytes) -> list[str]:
    """Each page's text with runs of whitespace made single spaces: long names wrap inside the red box."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def expected_ted(xml: bytes) -> bytes:
    """The TED as it stands in the signed XML, with the indentation between its elements removed."""
    raw = re.search(rb"<TED .*?</TED>", xml, re.S).group(0)
    return re.sub(rb">\s+<", b"><", raw)


@pytest.mark.parametrize("tipo", [39, 33, 61])
def test_one_page_with_the_document_data(signer, tipo):
    pdf = render_pdf(signed_xml(signer, tipo), certification=False)

    assert pdf.startswith(b"%PDF-")
    [text] = pdf_pages(pdf)
    assert "R.U.T.: 76.192.083-9" in text
    assert NAMES[tipo] in text
    assert f"N° {FOLIO}" in text
    assert "S.I.I. - ÑUÑOA" in text
    assert "Tienda Ñuñoa SpA" in text and "Av. Irarrázaval 123, Ñuñoa" in text
    assert "21-11-2026" in text
    assert ITEM in text and "$ 15.990" in text
    assert re.search(r"Total\s+\$ 31.980", text)
    assert re.search(r"Neto\s+\$ 26.874", text) and re.search(r"IVA 19%\s+\$ 5.106", text)
    assert "Exento" not in text
    assert "Timbre Electrónico SII" in text and "Verifique documento: www.sii.cl" in text


def test_factura_shows_the_receptor(signer):
    [text] = pdf_pages(render_pdf(signed_xml(signer, 33), certification=False))
    for value in ("60.803.000-K", "Servicio de Impuestos Internos", "Gobierno", "Teatinos 120", "Santiago"):
        assert value in text


def test_credit_note_shows_its_reference(signer):
    [text] = pdf_pages(render_pdf(signed_xml(signer, 61), certification=False))
    assert "Referencias" in text
    assert re.search(r"Factura electrónica\s+10\s+01-11-2026\s+Devolución de mercadería", text)


def test_exempt_invoice_shows_only_the_totals_present(signer):
    [text] = pdf_pages(render_pdf(signed_xml(signer, 34), certification=False))
    assert NAMES[34] in text
    assert re.search(r"Exento\s+\$ 31.980", text) and re.search(r"Total\s+\$ 31.980", text)
    assert "Neto" not in text and "IVA" not in text


@pytest.mark.parametrize("certification", [True, False])
def test_certification_mark(signer, certification):
    [text] = pdf_pages(render_pdf(signed_xml(signer, 39), certification=certification))
    assert (CERTIFICATION_MARK in text) is certification
    assert ("SIN VALIDEZ TRIBUTARIA" in text) is certification


def test_resolution_caption(signer):
    [text] = pdf_pages(render_pdf(signed_xml(signer, 39), certification=False, resolution_number=80, resolution_year=2014))
    assert "Res. Ex. SII N° 80 de 2014 - Verifique documento: www.sii.cl" in text


@pytest.mark.parametrize("tipo", [39, 33, 61])
def test_ted_bytes_are_the_flattened_ted_in_latin1(signer, tipo):
    xml = signed_xml(signer, tipo)
    ted = ted_barcode_bytes(xml)

    assert ted == expected_ted(xml)
    assert ted.startswith(b'<TED version="1.0"><DD><RE>76192083-9</RE>')
    assert f"<F>{FOLIO}</F>".encode() in ted
    assert b"xmlns" not in ted and b"<?xml" not in ted
    assert "<IT1>Café ñandú «tostado» 1 kg</IT1>".encode("iso-8859-1") in ted
    assert b"\xf1" in ted and b"\xc3\xb1" not in ted
    # No XML declaration (the SII's form), so the parser must be told the encoding.
    assert etree.fromstring(ted, etree.XMLParser(encoding="iso-8859-1")).findtext("DD/IT1") == ITEM


def test_the_pdf_carries_the_barcode_of_the_ted(signer):
    xml = signed_xml(signer, 33)
    codes = pdf417gen.encode(expected_ted(xml), columns=12, security_level=5)
    modules = ["".join(format(value, "b") for value in row) for row in codes]

    [image] = PdfReader(io.BytesIO(render_pdf(xml, certification=True))).pages[0].images
    pixels = image.image.convert("L")
    assert pixels.size == (len(modules[0]), len(modules))
    drawn = [
        "".join("1" if pixels.getpixel((x, y)) < 128 else "0" for x in range(pixels.width))
        for y in range(pixels.height)
    ]
    assert drawn == modules


@settings(max_examples=300, deadline=None)
@given(level=st.integers(0, 8), words=st.lists(st.integers(0, 928), min_size=1, max_size=900))
def test_error_correction_words_are_pdf417gens(level, words):
    # The packed shift register (billers/dte/pdf.py) against the library's plain loop, at every level.
    assert pdf417_error_correction(words, level) == compute_error_correction_code_words(words, level)


def test_many_lines_flow_onto_more_pages_with_totals_on_the_last(signer):
    lines = tuple(SaleLine(f"Artículo {i:03d}", Decimal(1), Decimal(1000 + i)) for i in range(1, 61))
    pages = pdf_pages(render_pdf(signed_xml(signer, 33, lines), certification=False))

    assert len(pages) > 1
    assert all(f"Página {n} de {len(pages)}" in text for n, text in enumerate(pages, start=1))
    assert all(f"N° {FOLIO}" in text and "R.U.T.: 76.192.083-9" in text for text in pages)
    assert all(f"Artículo {i:03d}" in "".join(pages) for i in range(1, 61))
    assert [("Timbre Electrónico SII" in text, "Total" in text) for text in pages] == \
        [(False, False)] * (len(pages) - 1) + [(True, True)]


def test_rendering_is_deterministic(signer):
    xml = signed_xml(signer, 61)
    assert render_pdf(xml, certification=True) == render_pdf(xml, certification=True)


def test_refuses_what_is_not_a_stamped_dte():
    with pytest.raises(ValueError, match="DTE"):
        render_pdf(b'<EnvioDTE xmlns="http://www.sii.cl/SiiDte"/>', certification=False)
    with pytest.raises(ValueError, match="TED"):
        ted_barcode_bytes(b'<DTE xmlns="http://www.sii.cl/SiiDte"><Documento ID="F1T33"/></DTE>')
