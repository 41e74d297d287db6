"""The only code that speaks HTTP to Shopify: the Admin REST API of one shop.

Writing the issued document back follows Shopify's REST Admin reference for the Metafield resource,
https://shopify.dev/docs/api/admin-rest/latest/resources/metafield (read as stored from
https://shopify.dev/docs/api/admin-rest/2024-10/resources/metafield), example "Create a metafield for an
order": ``POST /admin/api/{version}/orders/{order_id}/metafields.json`` with
``{"metafield": {"namespace", "key", "type", "value"}}`` and the header ``X-Shopify-Access-Token``
(https://shopify.dev/docs/api/admin-rest), answered ``201 Created`` with ``{"metafield": {"id", ...}}``.
The value is "always stored as a string, regardless of the metafield's type", so the ``json`` type gets
a JSON-encoded string, as in the reference's Shop example. The REST Admin API is legacy since
2024-10-01 but still served for existing and custom apps.

Choices:

- A metafield rather than ``note_attributes``: it is the app's own field, so nothing the merchant or
  another app wrote on the order can be overwritten, and the data stays typed JSON.
- Namespace ``billmysales``, one key per document, ``dte_<tipo>_<folio>`` (3-64 characters, as the
  reference requires): an order gets its invoice and later its credit notes, each written back on its
  own; under one shared key a credit note would replace the invoice. The reference does not say
  whether creating a metafield whose namespace and key already exist on the order updates it or fails,
  so the design does not depend on it.
- API version: ``connection.config["api_version"]``, default 2026-04: listed in that reference's version
  picker, released 2026-04-01 on the quarterly schedule and supported for at least twelve months
  (https://shopify.dev/docs/api/usage/versioning), so until April 2027 at least; it is also the version
  our webhook fixtures carry.
- Rate limits: a 429 is reported with its Retry-After (``sources/http.py``); nothing here sleeps.
"""
import json
import re

from ..base import IssuedDocumentInfo
from ..errors import SourceRejectedError
from ..http import StoreHttpClient, order_path_id

API_VERSION = "2026-04"
METAFIELD_NAMESPACE = "billmysales"
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"


class ShopifyClient(StoreHttpClient):
    vendor = "Shopify"

    def __init__(self, *, store_url: str, access_token: str, api_version: str = API_VERSION):
        super().__init__()
        self.base_url = self.checked_url(store_url, "URL de la tienda")
        self.access_token = access_token
        self.api_version = api_version

    @classmethod
    def for_connection(cls, connection) -> "ShopifyClient":
        """Built from the tenant's connection; refuses before any request when it cannot authenticate."""
        access_token = (connection.credentials or {}).get("access_token")
        if not access_token:
            raise SourceRejectedError("La conexión de Shopify no tiene access_token: no se puede escribir en la tienda.")
        api_version = (connection.config or {}).get("api_version", API_VERSION)
        if not re.fullmatch(r"\d{4}-\d{2}", str(api_version)):
            raise SourceRejectedError(f"Versión de la API de Shopify inválida en la configuración: {api_version!r}.")
        return cls(store_url=connection.store_url, access_token=access_token, api_version=api_version)

    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Creates the document's metafield on the order; returns what was written, with its id."""
        order_id = order_path_id(self.vendor, document.order_external_id)
        key = f"dte_{document.tipo_dte}_{document.folio}"
        value = {"note": document.note, **document.as_data()}
        response = self.request(
            "POST",
            f"{self.base_url}/admin/api/{self.api_version}/orders/{order_id}/metafields.json",
            json={"metafield": {"namespace": METAFIELD_NAMESPACE, "key": key, "type": "json",
                                "value": json.dumps(value, ensure_ascii=False)}},
            headers={ACCESS_TOKEN_HEADER: self.access_token},
        )
        metafield = self.created_object(response, field="metafield")
        return f"Metafield {METAFIELD_NAMESPACE}.{key} en la orden {order_id} de Shopify (id {metafield['id']})"
