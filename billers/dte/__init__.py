"""The DTE core: plain Python, no Django. See each module's docstring for the rules it implements."""
from .credentials import Caf, DteSigner, generate_test_caf, generate_test_certificate, test_signer
from .document import Document, document_from_libredte_json, document_to_libredte_json
from .errors import CafError, DteError, InvalidDocument, MappingRefused, SchemaError, SchemaUnavailable
from .mapping import build_document
from .normalize import normalize
from .xml import build_dte_xml, verify_signatures
from .xsd import default_schema_dir, validate_dte_xml

__all__ = [
    "Caf",
    "CafError",
    "Document",
    "DteError",
    "DteSigner",
    "InvalidDocument",
    "MappingRefused",
    "SchemaError",
    "SchemaUnavailable",
    "build_document",
    "build_dte_xml",
    "default_schema_dir",
    "document_from_libredte_json",
    "document_to_libredte_json",
    "generate_test_caf",
    "generate_test_certificate",
    "normalize",
    "test_signer",
    "validate_dte_xml",
    "verify_signatures",
]
