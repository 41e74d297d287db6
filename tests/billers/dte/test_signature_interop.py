"""Our XMLDSig signatures verify with xmlsec (libxmlsec1), an implementation independent of ours —
the check the SII's own validator makes. A digest computed over a wrongly canonicalised subtree
passes our own verifier but fails here."""
import datetime
from decimal import Decimal

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from billers.dte import build_document, build_dte_xml, credentials
from billers.dte.c14n import canonical
from billers.dte.sale import Emisor, Receptor, Reference, Sale, SaleLine

EMISOR = Emisor(rut="76192083-9", razon_social="Tienda Ñuñoa SpA", giro="Venta al por menor", acteco=479100,
                address="Av. Irarrázaval 123", comuna="Ñuñoa")
FACTURA_RECEPTOR = Receptor(rut="60803000-K", razon_social="Servicio de Impuestos Internos", giro="Gobierno",
                            address="Teatinos 120", comuna="Santiago")


def xmlsec_verify(xml: bytes, certificate) -> None:
    root = etree.fromstring(xml)
    xmlsec.tree.add_ids(root, ["ID"])
    signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(certificate.public_bytes(serialization.Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem)
    ctx.verify(signature)


@pytest.mark.parametrize("tipo", [33, 34, 39, 41, 56, 61])
def test_signature_verifies_with_xmlsec(tipo):
    exempt = tipo in (34, 41)
    sale = Sale(
        tipo_dte=tipo,
        lines=(SaleLine("Café de grano «tostado» 1 kg", Decimal(2), Decimal(15990), exempt=exempt),),
        paid_total=31980,
        receptor=FACTURA_RECEPTOR if tipo not in (39, 41) else Receptor(),
        references=(Reference(tipo_doc=33, folio=10, fecha="2026-11-01", cod_ref=1, razon="Anula documento"),)
        if tipo in (56, 61) else (),
    )
    signer = credentials.test_signer()
    xml = build_dte_xml(build_document(sale, emisor=EMISOR, folio=7, fecha=datetime.date(2026, 11, 21)), signer=signer)
    xmlsec_verify(xml, signer.certificate)


def test_tampered_document_fails_xmlsec():
    signer = credentials.test_signer()
    sale = Sale(tipo_dte=39, lines=(SaleLine("Polera", Decimal(1), Decimal(12990)),), paid_total=12990)
    xml = build_dte_xml(build_document(sale, emisor=EMISOR, folio=8, fecha=datetime.date(2026, 11, 21)), signer=signer)
    with pytest.raises(xmlsec.VerificationError):
        xmlsec_verify(xml.replace(b"<MntTotal>12990<", b"<MntTotal>1299<"), signer.certificate)


def test_subtree_canonicalisation_carries_no_spurious_empty_namespace():
    root = etree.fromstring(b'<a xmlns="urn:x"><b ID="1"><c><d>1</d></c></b></a>')
    assert canonical(root[0]) == b'<b xmlns="urn:x" ID="1"><c><d>1</d></c></b>'


def test_text_correction_note_verifies_with_xmlsec():
    signer = credentials.test_signer()
    sale = Sale(
        tipo_dte=61, lines=(SaleLine("Corrige razón social", Decimal(1), Decimal(0)),), paid_total=0, price_basis="net",
        receptor=FACTURA_RECEPTOR,
        references=(Reference(tipo_doc=33, folio=10, fecha="2026-11-01", cod_ref=2, razon="Corrige razón social del receptor"),),
    )
    xml = build_dte_xml(build_document(sale, emisor=EMISOR, folio=9, fecha=datetime.date(2026, 11, 21)), signer=signer)
    xmlsec_verify(xml, signer.certificate)
