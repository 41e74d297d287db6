"""The signed DTE XML: ``<DTE><Documento>…<TED/><TmstFirma/></Documento><Signature/></DTE>``, ISO-8859-1.

Signing is XMLDSig as the SII requires (see reference/platform-notes.md), done directly with lxml's C14N
and ``cryptography`` rather than signxml, because the SII profile is fixed and small and this is about
ten times faster than a general-purpose signer:

* RSA-SHA1 over inclusive C14N (``REC-xml-c14n-20010315``), SHA-1 digest;
* one ``Reference`` to ``#<Documento ID>`` with a single C14N ``Transform`` (the schema allows only one,
  which rules out the enveloped-signature transform);
* the ``Signature`` in the default (unprefixed) XMLDSig namespace, after ``Documento``;
* ``KeyInfo`` with ``KeyValue/RSAKeyValue`` before ``X509Data`` (the schema's order).

The TED's ``DD`` is built on its own, without namespace or whitespace, stamped with the CAF key over
its ISO-8859-1 bytes (``FRMT``), then copied into the document. The document is indented before it is
signed, so schema errors point at real line numbers and the signature still covers the bytes sent.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
from decimal import Decimal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from .c14n import canonical
from .credentials import DteSigner
from .document import Document, family, present_fields
from .errors import InvalidDocument
from .sanitize import fit

SII_NS = "http://www.sii.cl/SiiDte"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
_S = f"{{{SII_NS}}}"
_D = f"{{{DS_NS}}}"


def document_id(doc: Document) -> str:
    """The ``Documento/@ID`` the signature refers to, in the style of the SII's example (F60T33)."""
    return f"F{doc.encabezado.id_doc.folio}T{doc.tipo_dte}"


def _text(value) -> str:
    if isinstance(value, Decimal):
        # Plain notation without trailing zeros: the XSD decimals accept neither "1E+2" nor "2.50".
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _append(parent: etree._Element, tag: str, value, kind: str, ns: str = _S) -> None:
    if isinstance(value, tuple):
        for item in value:
            _append(parent, tag, item, kind, ns)
        return
    child = etree.SubElement(parent, ns + tag)
    if hasattr(value, "__dataclass_fields__"):
        for sub_tag, sub_value in present_fields(value, kind):
            _append(child, sub_tag, sub_value, kind, ns)
    else:
        child.text = _text(value)


def _timbre(doc: Document, signer: DteSigner, timestamp: str) -> etree._Element:
    enc = doc.encabezado
    caf = signer.caf_for(doc.tipo_dte, enc.id_doc.folio)
    dd = etree.Element("DD")
    for tag, text in (
        ("RE", enc.emisor.rut),
        ("TD", str(doc.tipo_dte)),
        ("F", str(enc.id_doc.folio)),
        ("FE", enc.id_doc.fch_emis.isoformat()),
        ("RR", enc.receptor.rut),
        ("RSR", fit(enc.receptor.razon_social or enc.receptor.rut, 40)),
        ("MNT", str(enc.totales.mnt_total)),
        ("IT1", fit(doc.detalle[0].nmb_item, 40) or "-"),
    ):
        etree.SubElement(dd, tag).text = text
    dd.append(_copy(caf.caf_element, ""))
    etree.SubElement(dd, "TSTED").text = timestamp
    frmt = caf.stamp(canonical(dd).decode("utf-8").encode("iso-8859-1"))
    ted = etree.Element(_S + "TED", version="1.0")
    ted.append(_copy(dd, _S))
    etree.SubElement(ted, _S + "FRMT", algoritmo="SHA1withRSA").text = frmt
    return ted


def _copy(element: etree._Element, ns: str) -> etree._Element:
    """Copy a namespace-less tree, moving every element into ``ns`` ("" keeps it namespace-less)."""
    copy = etree.Element(ns + etree.QName(element).localname, dict(element.attrib))
    copy.text = element.text
    for child in element:
        copy.append(_copy(child, ns))
    return copy


def _check_ready(doc: Document) -> None:
    enc = doc.encabezado
    if enc.totales is None or enc.totales.mnt_total is None or any(d.monto_item is None for d in doc.detalle):
        raise InvalidDocument("the document has no totals: normalise it before building the XML")
    if not enc.id_doc.folio or enc.id_doc.fch_emis is None:
        raise InvalidDocument("the document needs a Folio and a FchEmis before it can be stamped")


def build_dte_xml(doc: Document, *, signer: DteSigner, timestamp: datetime.datetime | None = None) -> bytes:
    """The stamped (TED) and signed (XMLDSig) ``<DTE>`` of a normalised document, as ISO-8859-1 bytes."""
    _check_ready(doc)
    kind = family(doc.tipo_dte)
    stamp = (timestamp or datetime.datetime.now()).strftime("%Y-%m-%dT%H:%M:%S")
    ref_id = document_id(doc)

    root = etree.Element(_S + "DTE", nsmap={None: SII_NS}, version="1.0")
    documento = etree.SubElement(root, _S + "Documento", ID=ref_id)
    for tag, value in present_fields(doc, kind):
        _append(documento, tag, value, kind)
    documento.append(_timbre(doc, signer, stamp))
    etree.SubElement(documento, _S + "TmstFirma").text = stamp

    signature = etree.SubElement(root, _D + "Signature", nsmap={None: DS_NS})
    signed_info = etree.SubElement(signature, _D + "SignedInfo")
    etree.SubElement(signed_info, _D + "CanonicalizationMethod", Algorithm=C14N)
    etree.SubElement(signed_info, _D + "SignatureMethod", Algorithm=RSA_SHA1)
    reference = etree.SubElement(signed_info, _D + "Reference", URI="#" + ref_id)
    transforms = etree.SubElement(reference, _D + "Transforms")
    etree.SubElement(transforms, _D + "Transform", Algorithm=C14N)
    etree.SubElement(reference, _D + "DigestMethod", Algorithm=SHA1)
    digest_value = etree.SubElement(reference, _D + "DigestValue")
    signature_value = etree.SubElement(signature, _D + "SignatureValue")
    key_info = etree.SubElement(signature, _D + "KeyInfo")
    rsa_key_value = etree.SubElement(etree.SubElement(key_info, _D + "KeyValue"), _D + "RSAKeyValue")
    etree.SubElement(rsa_key_value, _D + "Modulus").text = signer.modulus_b64
    etree.SubElement(rsa_key_value, _D + "Exponent").text = signer.exponent_b64
    x509_data = etree.SubElement(key_info, _D + "X509Data")
    etree.SubElement(x509_data, _D + "X509Certificate").text = signer.certificate_b64

    etree.indent(root, space=" ")
    digest = hashlib.sha1(canonical(documento)).digest()
    digest_value.text = base64.b64encode(digest).decode("ascii")
    signature_value.text = signer.sign(canonical(signed_info))
    return etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)


def flattened_ted_part(element: etree._Element) -> etree._Element:
    """A namespace-less copy of ``element`` without the whitespace-only text between its children."""
    copy = etree.Element(etree.QName(element).localname, dict(element.attrib))
    copy.text = element.text if len(element) == 0 or (element.text or "").strip() else None
    for child in element:
        copy.append(flattened_ted_part(child))
    return copy


def verify_signatures(xml_bytes: bytes) -> list[str]:
    """Check every XMLDSig signature and every TED stamp in a DTE or envelope; return the problems.

    Signatures are checked with the certificate they carry (trust in that certificate is a separate
    question), TEDs with the public key inside their CAF. An empty list means everything verifies.
    """
    root = etree.fromstring(xml_bytes, etree.XMLParser(resolve_entities=False, no_network=True))
    problems = []
    for signature in root.iter(_D + "Signature"):
        signed_info = signature.find(_D + "SignedInfo")
        uri = signed_info.find(f"{_D}Reference").get("URI", "")
        targets = [e for e in root.iter() if e.get("ID") == uri.lstrip("#")]
        if len(targets) != 1:
            problems.append(f"signature reference {uri!r} matches {len(targets)} elements")
            continue
        digest = base64.b64encode(hashlib.sha1(canonical(targets[0])).digest()).decode()
        if digest != "".join(signed_info.findtext(f"{_D}Reference/{_D}DigestValue").split()):
            problems.append(f"digest of {uri} does not match")
        cert_b64 = "".join(signature.findtext(f"{_D}KeyInfo/{_D}X509Data/{_D}X509Certificate").split())
        public_key = x509.load_der_x509_certificate(base64.b64decode(cert_b64)).public_key()
        try:
            public_key.verify(
                base64.b64decode(signature.findtext(_D + "SignatureValue")),
                canonical(signed_info),
                padding.PKCS1v15(),
                hashes.SHA1(),
            )
        except InvalidSignature:
            problems.append(f"signature value over SignedInfo of {uri} does not verify")
    for ted in root.iter(_S + "TED"):
        dd = ted.find(_S + "DD")
        rsapk = dd.find(f"{_S}CAF/{_S}DA/{_S}RSAPK")
        numbers = rsa.RSAPublicNumbers(
            e=int.from_bytes(base64.b64decode(rsapk.findtext(_S + "E")), "big"),
            n=int.from_bytes(base64.b64decode(rsapk.findtext(_S + "M")), "big"),
        )
        signed = canonical(flattened_ted_part(dd)).decode("utf-8").encode("iso-8859-1")
        try:
            numbers.public_key().verify(
                base64.b64decode(ted.findtext(_S + "FRMT")), signed, padding.PKCS1v15(), hashes.SHA1()
            )
        except InvalidSignature:
            problems.append(f"TED stamp (FRMT) of folio {dd.findtext(_S + 'F')} does not verify with its CAF key")
    return problems
