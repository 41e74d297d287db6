"""Validation of DTE XML against the SII schemas (parsed once per process and cached).

What is validated, by root element:

* ``EnvioDTE`` → ``EnvioDTE_v10.xsd``; ``EnvioBOLETA`` → ``EnvioBOLETA_v11.xsd``;
* a bare ``DTE`` of type 33/34/56/61 → ``DTE_v10.xsd``, which declares ``DTE`` as a global element;
* a bare ``DTE`` of type 39/41 → the boleta definition ``BOLETADefType`` of ``EnvioBOLETA_v11.xsd``,
  through a two-line wrapper schema that includes it and declares ``DTE`` of that type. The document is
  validated as it is (not re-wrapped in an envelope), so error line numbers are the file's own and no
  envelope signature is needed.

Schemas come from ``schema_dir`` or ``default_schema_dir()``: ``$BMS_SHARED_DIR/sii/xsd`` (default
``<project root>/../shared/sii/xsd``), falling back to cl-sii's bundled copy, which has no boleta
schema: validating 39/41 or EnvioBOLETA there raises ``SchemaUnavailable`` saying so.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from lxml import etree

from .errors import SchemaError, SchemaUnavailable

SII_NS = "http://www.sii.cl/SiiDte"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DTE_SCHEMA = "DTE_v10.xsd"
ENVIO_DTE_SCHEMA = "EnvioDTE_v10.xsd"
ENVIO_BOLETA_SCHEMA = "EnvioBOLETA_v11.xsd"
_BOLETA_DTE_WRAPPER = (
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:SiiDte="http://www.sii.cl/SiiDte" '
    'targetNamespace="http://www.sii.cl/SiiDte" elementFormDefault="qualified">'
    f'<xs:include schemaLocation="{ENVIO_BOLETA_SCHEMA}"/>'
    '<xs:element name="DTE" type="SiiDte:BOLETADefType"/>'
    "</xs:schema>"
)


def cl_sii_schema_dir() -> Path:
    import cl_sii

    return Path(cl_sii.__file__).resolve().parent / "data" / "ref" / "factura_electronica" / "schemas-xml"


def default_schema_dir() -> Path:
    shared = Path(os.environ.get("BMS_SHARED_DIR") or PROJECT_ROOT.parent / "shared")
    xsd_dir = shared / "sii" / "xsd"
    return xsd_dir if (xsd_dir / DTE_SCHEMA).is_file() else cl_sii_schema_dir()


@lru_cache(maxsize=16)
def load_schema(schema_dir: str, name: str) -> etree.XMLSchema:
    """Compile one schema (``name`` or ``"boleta-dte"``) from ``schema_dir``; cached per process."""
    directory = Path(schema_dir)
    boleta = name in ("boleta-dte", ENVIO_BOLETA_SCHEMA)
    if boleta and not (directory / ENVIO_BOLETA_SCHEMA).is_file():
        raise SchemaUnavailable(
            f"{ENVIO_BOLETA_SCHEMA} is not in {directory}: boletas (39, 41) need the SII schemas in "
            "$BMS_SHARED_DIR/sii/xsd (cl-sii's bundled schemas do not include the boleta schema)"
        )
    if name == "boleta-dte":
        wrapper = etree.fromstring(_BOLETA_DTE_WRAPPER.encode(), base_url=(directory / "boleta-dte.xsd").as_uri())
        return etree.XMLSchema(wrapper)
    path = directory / name
    if not path.is_file():
        raise SchemaUnavailable(f"{name} is not in {directory}")
    return etree.XMLSchema(etree.parse(str(path)))


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _schema_for(root: etree._Element) -> str | None:
    qname = etree.QName(root)
    if qname.namespace != SII_NS:
        return None
    if qname.localname == "EnvioDTE":
        return ENVIO_DTE_SCHEMA
    if qname.localname == "EnvioBOLETA":
        return ENVIO_BOLETA_SCHEMA
    if qname.localname == "DTE":
        tipo = root.findtext(f"{{{SII_NS}}}Documento/{{{SII_NS}}}Encabezado/{{{SII_NS}}}IdDoc/{{{SII_NS}}}TipoDTE")
        return "boleta-dte" if (tipo or "").strip() in ("39", "41") else DTE_SCHEMA
    return None


def validate_dte_xml(xml_bytes: bytes, *, schema_dir: str | Path | None = None) -> list[SchemaError]:
    """Schema errors of a DTE, EnvioDTE or EnvioBOLETA document; an empty list means valid.

    Malformed XML is reported the same way (as errors with their line), never raised.
    """
    try:
        root = etree.fromstring(xml_bytes, _PARSER)
    except etree.XMLSyntaxError as exc:
        return [SchemaError(exc.lineno or 0, f"not well-formed XML: {exc.msg}")]
    name = _schema_for(root)
    if name is None:
        return [SchemaError(root.sourceline or 1, f"unexpected root element {root.tag}: expected an SII DTE, EnvioDTE or EnvioBOLETA")]
    schema = load_schema(str(Path(schema_dir) if schema_dir else default_schema_dir()), name)
    if schema.validate(root):
        return []
    return [SchemaError(e.line, e.message) for e in schema.error_log]
