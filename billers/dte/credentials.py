"""Signing material: the emisor's certificate and key (XMLDSig) and the CAFs that stamp the TED.

Keys are parsed once into ``cryptography`` objects and kept on a ``DteSigner``: parsing PEM per
document costs ~35 ms, signing with a loaded key well under 1 ms.

``test_signer()`` builds, once per process and arguments, a self-signed certificate and one test CAF
per document type (IDK 100, the SII's certification key id, signed by a throwaway "SII" key). It is
what the Sandbox biller and the tests sign with; nothing it signs is acceptable to the real SII.
"""
from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from .c14n import canonical
from .errors import CafError

CERTIFICATION_IDK = 100
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


def _b64_int(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode("ascii")


def rsa_sha1_sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    """Base64 RSA-SHA1 (PKCS#1 v1.5) signature: what both the SII's TED and its XMLDSig require."""
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA1())).decode("ascii")


@dataclass(frozen=True)
class Caf:
    """One CAF (Código de Autorización de Folios): a folio range for one document type, with its key."""

    tipo_dte: int
    folio_desde: int
    folio_hasta: int
    rut_emisor: str
    private_key: rsa.RSAPrivateKey
    caf_element: etree._Element = field(repr=False)  # <CAF>, no namespace, as the SII issued it

    @classmethod
    def from_xml(cls, data: bytes) -> Caf:
        """Read the SII's ``<AUTORIZACION>`` file (CAF + RSASK private key + RSAPUBK)."""
        try:
            root = etree.fromstring(data, _SAFE_PARSER)
            caf = root.find("CAF")
            da = caf.find("DA")
            key = serialization.load_pem_private_key(root.findtext("RSASK").strip().encode("ascii"), password=None)
            return cls(
                tipo_dte=int(da.findtext("TD")),
                folio_desde=int(da.findtext("RNG/D")),
                folio_hasta=int(da.findtext("RNG/H")),
                rut_emisor=da.findtext("RE"),
                private_key=key,
                caf_element=caf,
            )
        except (etree.XMLSyntaxError, AttributeError, TypeError, ValueError) as exc:
            raise CafError(f"unreadable CAF: {exc}") from None

    def covers(self, tipo_dte: int, folio: int) -> bool:
        return tipo_dte == self.tipo_dte and self.folio_desde <= folio <= self.folio_hasta

    def stamp(self, dd_latin1: bytes) -> str:
        """FRMT: the CAF key's RSA-SHA1 signature over the flattened DD in ISO-8859-1."""
        return rsa_sha1_sign(self.private_key, dd_latin1)


class DteSigner:
    """The emisor's signing key and certificate, and its CAFs. Build once, reuse for every document."""

    def __init__(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate, cafs: list[Caf]):
        self.private_key = private_key
        self.certificate = certificate
        self.cafs = tuple(cafs)
        numbers = private_key.public_key().public_numbers()
        self.modulus_b64 = _b64_int(numbers.n)
        self.exponent_b64 = _b64_int(numbers.e)
        self.certificate_b64 = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, caf_xmls: list[bytes], password: bytes | None = None) -> DteSigner:
        key = serialization.load_pem_private_key(key_pem, password=password)
        return cls(key, x509.load_pem_x509_certificate(cert_pem), [Caf.from_xml(c) for c in caf_xmls])

    def caf_for(self, tipo_dte: int, folio: int) -> Caf:
        for caf in self.cafs:
            if caf.covers(tipo_dte, folio):
                return caf
        raise CafError(f"no CAF covers folio {folio} of document type {tipo_dte}")

    def sign(self, data: bytes) -> str:
        return rsa_sha1_sign(self.private_key, data)


def generate_test_certificate(rut: str, name: str, key_size: int = 2048) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed certificate shaped like a Chilean e-signature one (the RUT in the subject serial)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CL"),
        x509.NameAttribute(NameOID.COMMON_NAME, name[:64]),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, rut),
    ])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def generate_test_caf(
    rut_emisor: str,
    razon_social: str,
    tipo_dte: int,
    folio_desde: int,
    folio_hasta: int,
    *,
    fecha: datetime.date | None = None,
    sii_key: rsa.RSAPrivateKey | None = None,
) -> bytes:
    """An ``<AUTORIZACION>`` file like the SII's, for a certification (IDK 100) folio range."""
    caf_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    sii_key = sii_key or rsa.generate_private_key(public_exponent=65537, key_size=1024)
    numbers = caf_key.public_key().public_numbers()
    root = etree.Element("AUTORIZACION")
    caf = etree.SubElement(root, "CAF", version="1.0")
    da = etree.SubElement(caf, "DA")
    for tag, text in (("RE", rut_emisor), ("RS", razon_social[:40]), ("TD", str(tipo_dte))):
        etree.SubElement(da, tag).text = text
    rng = etree.SubElement(da, "RNG")
    etree.SubElement(rng, "D").text = str(folio_desde)
    etree.SubElement(rng, "H").text = str(folio_hasta)
    etree.SubElement(da, "FA").text = (fecha or datetime.date.today()).isoformat()
    rsapk = etree.SubElement(da, "RSAPK")
    etree.SubElement(rsapk, "M").text = _b64_int(numbers.n)
    etree.SubElement(rsapk, "E").text = _b64_int(numbers.e)
    etree.SubElement(da, "IDK").text = str(CERTIFICATION_IDK)
    frma = etree.SubElement(caf, "FRMA", algoritmo="SHA1withRSA")
    frma.text = rsa_sha1_sign(sii_key, canonical(da))
    etree.SubElement(root, "RSASK").text = caf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")
    etree.SubElement(root, "RSAPUBK").text = caf_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)


TEST_TYPES = (33, 34, 39, 41, 56, 61)


@lru_cache(maxsize=16)
def test_signer(
    rut_emisor: str = "76192083-9",
    razon_social: str = "BillMySales Sandbox",
    tipos: tuple[int, ...] = TEST_TYPES,
    folio_hasta: int = 9_999_999_999,
) -> DteSigner:
    """A signer with a self-signed certificate and test CAFs for folios 1..``folio_hasta``; cached."""
    key, cert = generate_test_certificate(rut_emisor, razon_social)
    sii_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cafs = [
        Caf.from_xml(generate_test_caf(rut_emisor, razon_social, tipo, 1, folio_hasta, sii_key=sii_key))
        for tipo in tipos
    ]
    return DteSigner(key, cert, cafs)
